"""The control API's routes: each checks the token, parses its input, calls the steering and
answers what the proxy's state now is. Errors are raised as
:class:`~cassette_proxy.errors.ProxyError` and answered by the application's one middleware,
in the OpenAI envelope. Control requests are not exchanges: they are never logged as such (the
token is in their headers); what they change is logged as lifecycle events.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from cassette_proxy.errors import (
    CassetteUnavailable,
    ControlRejected,
    ControlUnauthorized,
    ProxyRouteNotFound,
)
from cassette_proxy.models.faults import FaultRule
from cassette_proxy.models.http import CASSETTE_HEADER
from cassette_proxy.serving.app import AUDIT_LOG, EXCHANGE, PIPELINE
from cassette_proxy.serving.cassettes import Cassettes, Changed, checked_name
from cassette_proxy.serving.control.bodies import (
    CassetteAnswer,
    CassetteState,
    ClosedState,
    FaultsAnswer,
    FaultState,
)
from cassette_proxy.serving.observers.recent import RecentExchanges
from cassette_proxy.serving.steering import Steering

_RULES: Final = TypeAdapter(list[FaultRule])
NOTHING_CHANGED: Final = "nothing changed"  # what a refused control request did

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Guard:
    """The token the control API requires, if one is set."""

    token: SecretStr | None

    def check(self, request: web.Request) -> None:
        """Refuse a request without the token, comparing in constant time (no early exit on
        the first differing byte, so the time taken does not reveal how much was right)."""
        if self.token is None:
            return
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        expected = self.token.get_secret_value().encode()
        sent = value.strip().encode("utf-8", "surrogateescape")
        right = hmac.compare_digest(sent, expected) and scheme.lower() == "bearer"
        if right:
            return
        reason = "missing" if not given else "wrong"
        request.app[AUDIT_LOG].lifecycle(
            "control_refused", method=request.method, path=request.path, token=reason
        )
        raise ControlUnauthorized(
            f"the control API needs its token ({reason} here): send 'Authorization: Bearer "
            f"<token>', the token the proxy was started with (CASSETTE_PROXY_ADMIN_TOKEN); "
            f"{request.method} {request.path} changed nothing"
        )


GUARD = web.AppKey("control_guard", Guard)


def _guarded(route: Route) -> Route:
    """A control route: never logged as an exchange; the token checked first."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        request[EXCHANGE].logged = False
        request.app[GUARD].check(request)
        return await route(request)

    guarded.__name__ = route.__name__
    return guarded


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=model.model_dump_json().encode(), content_type="application/json"
    )


def _steering(request: web.Request) -> Steering:
    return request.app[PIPELINE].steering


def _cassettes(request: web.Request) -> Cassettes:
    cassettes = _steering(request).cassettes
    assert cassettes is not None
    return cassettes


def _name(request: web.Request) -> str | None:
    """The per-request cassette the control request is about (its header), if any: refused, as
    on a proxied request, by a proxy without --cassette-dir or for a name that is not one."""
    name = request.headers.get(CASSETTE_HEADER)
    if name is None:
        return None
    _cassettes(request).serves_names(outcome=NOTHING_CHANGED)
    return checked_name(name, outcome=NOTHING_CHANGED)


async def _body(request: web.Request, example: str) -> Any:
    data = await request.read()
    if not data.strip():
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ControlRejected(
            f"the body of {request.method} {request.path} is not JSON ({exc}); send an object "
            f"such as {example}"
        ) from None


def _answer(cassettes: Cassettes, name: str | None, changed: Changed | None = None) -> web.Response:
    recorder = changed.current if changed is not None else cassettes.current(name)
    previous = changed.previous if changed is not None else None
    startup = cassettes.startup
    return _json(
        CassetteAnswer(
            name=name,
            mode=recorder.mode.value if recorder is not None else "pass-through",
            cassette=CassetteState.of(recorder) if recorder is not None else None,
            previous=ClosedState.of(previous) if previous is not None else None,
            startup=str(startup.cassette) if startup.cassette is not None else None,
            cassette_dir=str(cassettes.folder) if cassettes.folder is not None else None,
            open=cassettes.named(),
        )
    )


@_guarded
async def get_cassette(request: web.Request) -> web.StreamResponse:
    return _answer(_cassettes(request), _name(request))


@_guarded
async def put_cassette(request: web.Request) -> web.StreamResponse:
    name = _name(request)
    options = await _body(request, '{"path": "cassettes/case.yaml", "record_mode": "none"}')
    if not isinstance(options, dict):
        raise ControlRejected(
            f"PUT /_proxy/cassette takes a JSON object of options, not {type(options).__name__}"
        )
    cassettes = _cassettes(request)
    return _answer(cassettes, name, await cassettes.load(name, options))


@_guarded
async def delete_cassette(request: web.Request) -> web.StreamResponse:
    name = _name(request)
    cassettes = _cassettes(request)
    return _answer(cassettes, name, await cassettes.unload(name))


@_guarded
async def rewind_cassette(request: web.Request) -> web.StreamResponse:
    name = _name(request)
    cassettes = _cassettes(request)
    if name is not None:  # opened if it is not yet, as its first request would: a suite that
        await cassettes.for_request(name)  # rewinds before it runs sees its cassette's state
    if cassettes.rewind(name) is None:
        raise CassetteUnavailable(
            "no cassette is loaded (the proxy passes requests through), so there is no playback "
            "to start over; load one with PUT /_proxy/cassette"
        )
    return _answer(cassettes, name)


def _recent(request: web.Request) -> RecentExchanges:
    recent = _steering(request).recent
    assert recent is not None
    return recent


@_guarded
async def get_exchanges(request: web.Request) -> web.StreamResponse:
    recent = _recent(request)
    last = request.query.get("last")
    if last is not None and not last.isdigit():
        raise ControlRejected(f"last={last!r} is not a count; give ?last=N, N >= 0")
    lines = recent.lines(cassette=_name(request), last=int(last) if last is not None else None)
    body = (
        b'{"exchanges":['
        + b",".join(lines)
        + b'],"kept":%d,"dropped":%d,"limit":%d,"max_bytes":%d}'
        % (len(recent), recent.dropped, recent.limit, recent.max_bytes)
    )
    return web.Response(body=body, content_type="application/json")


@_guarded
async def delete_exchanges(request: web.Request) -> web.StreamResponse:
    removed = _recent(request).clear()
    request.app[AUDIT_LOG].lifecycle("exchanges_cleared", removed=removed)
    return web.json_response({"exchanges": [], "removed": removed})


def _faults_answer(
    steering: Steering, removed: int | None = None, status: int = 200
) -> web.Response:
    states = [FaultState.of(installed) for installed in steering.faults.listed()]
    return _json(FaultsAnswer(faults=states, removed=removed), status)


@_guarded
async def get_faults(request: web.Request) -> web.StreamResponse:
    return _faults_answer(_steering(request))


@_guarded
async def post_faults(request: web.Request) -> web.StreamResponse:
    given = await _body(request, '{"path": "/v1/responses/*", "status": 429, "times": 1}')
    listed = isinstance(given, list)
    try:
        rules = _RULES.validate_python(given if listed else [given])
    except ValidationError as error:
        first = error.errors()[0]
        index, *inside = first["loc"] or ("",)
        which = f" {index}" if listed else ""  # the rule's place in the list given
        where = f" ({'/'.join(map(str, inside))})" if inside else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ControlRejected(f"invalid fault rule{which}{where}: {message}") from None
    steering = _steering(request)
    for rule in rules:
        installed = steering.faults.install(rule)
        request.app[AUDIT_LOG].lifecycle(
            "fault_installed",
            rule=installed.id,
            action=rule.action,
            method=rule.method,
            path=rule.path,
            cassette=rule.cassette,
            times=rule.times,
            probability=rule.probability,
        )
    return _faults_answer(steering, status=201)


@_guarded
async def delete_faults(request: web.Request) -> web.StreamResponse:
    steering = _steering(request)
    removed = steering.faults.clear()
    request.app[AUDIT_LOG].lifecycle("faults_cleared", removed=removed)
    return _faults_answer(steering, removed)


@_guarded
async def delete_fault(request: web.Request) -> web.StreamResponse:
    steering = _steering(request)
    number = request.match_info["id"]
    if not number.isdigit() or not steering.faults.remove(int(number)):
        raise ProxyRouteNotFound(
            f"no fault rule {number!r} is installed (it may have fired its times already); "
            "GET /_proxy/faults lists those that are"
        )
    request.app[AUDIT_LOG].lifecycle("faults_cleared", removed=1, rule=int(number))
    return _faults_answer(steering, 1)


def add_control_routes(app: web.Application, token: SecretStr | None) -> None:
    """Serve the control API on ``app`` (before its catch-all ``/_proxy/`` route)."""
    app[GUARD] = Guard(token)
    router = app.router
    router.add_get("/_proxy/cassette", get_cassette)
    router.add_put("/_proxy/cassette", put_cassette)
    router.add_delete("/_proxy/cassette", delete_cassette)
    router.add_post("/_proxy/cassette/rewind", rewind_cassette)
    router.add_get("/_proxy/exchanges", get_exchanges)
    router.add_delete("/_proxy/exchanges", delete_exchanges)
    router.add_get("/_proxy/faults", get_faults)
    router.add_post("/_proxy/faults", post_faults)
    router.add_delete("/_proxy/faults", delete_faults)
    router.add_delete("/_proxy/faults/{id}", delete_fault)
