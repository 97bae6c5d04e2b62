"""A pytest plugin that puts the proxy in front of the code under test.

Installed with the package (entry point ``pytest11``). The ``cassette_proxy`` fixture starts a
proxy on a free loopback port for one test, on a thread of its own, so sync tests (the
``openai.OpenAI`` client) and async tests (``openai.AsyncOpenAI`` under pytest-aiohttp or
pytest-asyncio) can both use it; it stops the proxy, saving the cassette, after the test.

Configuration, most specific first: the ``@pytest.mark.cassette_proxy(...)`` marker, the
``cassette_proxy_config`` fixture (a dict, any scope), the command line
(``--cassette-record-mode``, default ``none``; ``--cassette-upstream``), then the defaults.

A failure the code under test might swallow still fails the test: at teardown, any replay miss,
strict validation failure or upstream error the proxy answered is raised with its diagnosis.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from pydantic import ValidationError

from cassette_proxy.app import PIPELINE, build_app
from cassette_proxy.cassette import Cassette, Interaction
from cassette_proxy.errors import CassetteLocked
from cassette_proxy.journal import CassetteLock, journal_path
from cassette_proxy.log import AuditLog
from cassette_proxy.models.events import ExchangeEvent, LifecycleEvent
from cassette_proxy.serve import ServerThread
from cassette_proxy.settings import RecordMode, Settings, ValidationMode

REWRITE: Final = "rewrite"  # delete the cassette, then record it again (new_episodes)
RECORD_MODES: Final = (*(mode.value for mode in RecordMode), REWRITE)
MARKER: Final = "cassette_proxy"
OPTIONS: Final = frozenset(
    {"record_mode", "match_on", "validation", "upstream", "cassette", "allow_playback_repeats"}
)
# Errors of the proxy's own that mean the test did not see what it thinks it saw.
FAILING_CODES: Final = frozenset(
    {"cassette_miss", "contract_violation", "upstream_unreachable", "upstream_broken",
     "upstream_timeout", "recording_failed", "internal_error"}
)  # fmt: skip
# When this test run started: ``rewrite`` deletes only cassettes older than that, so tests
# sharing a cassette, in one process or across pytest-xdist workers, add to one new recording.
_RUN_STARTED: Final = pytest.StashKey[float]()
RUN_STARTED_KEY: Final = "cassette_proxy_run_started"  # in xdist's workerinput
# How long a test waits for another process (an xdist worker) recording the same cassette.
LOCK_WAIT: Final = 300.0
_UNSAFE_NAME_CHARS: Final = str.maketrans(dict.fromkeys("<>?%*:|\"'/\\", "-"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cassette-proxy", "record/replay through cassette-proxy")
    group.addoption(
        "--cassette-record-mode",
        choices=RECORD_MODES,
        default=None,
        help="Record mode for the cassette_proxy fixture (default: none, so tests never reach "
        "the network); 'rewrite' deletes each cassette, then records it like new_episodes.",
    )
    group.addoption(
        "--cassette-upstream",
        default=None,
        help="Upstream the cassette_proxy fixture records from "
        "(default: CASSETTE_PROXY_UPSTREAM or https://ai.api.cloud.yandex.net).",
    )


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    config.stash[_RUN_STARTED] = (
        float(workerinput[RUN_STARTED_KEY]) if workerinput is not None else time.time()
    )
    config.addinivalue_line(
        "markers",
        f"{MARKER}(record_mode=..., match_on=..., validation=..., upstream=..., cassette=..., "
        "allow_playback_repeats=...): configure the cassette_proxy fixture for this test.",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker gets the controller's start time."""
    node.workerinput[RUN_STARTED_KEY] = node.config.stash[_RUN_STARTED]


class _CollectingLog(AuditLog):
    """The audit log, also kept in memory for the test to inspect and for teardown checks."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path if path is not None else Path(os.devnull))
        self.exchanges: list[ExchangeEvent] = []

    def write(self, event: ExchangeEvent | LifecycleEvent) -> None:
        if isinstance(event, ExchangeEvent):
            self.exchanges.append(event)
        super().write(event)


@dataclass
class CassetteProxy:
    """What the ``cassette_proxy`` fixture yields: where to point a client, and what happened."""

    url: str  # the base URL for a client, ending in /v1
    nodeid: str
    cassette: Path
    record_mode: str
    settings: Settings
    _log: _CollectingLog = field(repr=False)
    _app: web.Application = field(repr=False)
    _pinned_by: str | None = field(default=None, repr=False)  # what set record_mode, if not the CLI

    @property
    def _cassette(self) -> Cassette:
        recorder = self._app[PIPELINE].recorder
        assert recorder is not None
        return recorder.cassette

    @property
    def played(self) -> int:
        """Responses served from the cassette."""
        return self._cassette.played

    @property
    def recorded(self) -> int:
        """Interactions recorded (forwarded upstream and kept) during the test."""
        return len(self._cassette.recorded)

    @property
    def played_interactions(self) -> list[Interaction]:
        cassette = self._cassette
        return [i for i, n in zip(cassette.loaded, cassette.play_counts, strict=True) if n]

    @property
    def recorded_interactions(self) -> list[Interaction]:
        return list(self._cassette.recorded)

    @property
    def exchanges(self) -> list[ExchangeEvent]:
        """Every exchange the proxy logged, in order (the same events as its JSON log)."""
        return list(self._log.exchanges)

    def failures(self) -> list[ExchangeEvent]:
        """Exchanges the proxy answered with an error that must fail the test."""
        return [e for e in self._log.exchanges if e.error in FAILING_CODES]


def default_cassette_path(request: pytest.FixtureRequest) -> Path:
    """``<test dir>/cassettes/<module>/<test name>.yaml``, as pytest-recording names them."""
    node = request.node
    name = node.name if request.cls is None else f"{request.cls.__name__}.{node.name}"
    module = request.path.stem
    return request.path.parent / "cassettes" / module / f"{name.translate(_UNSAFE_NAME_CHARS)}.yaml"


def resolve_options(request: pytest.FixtureRequest, config: Mapping[str, Any]) -> dict[str, Any]:
    """The options for this test: marker over ``cassette_proxy_config`` over the command line."""
    marker = request.node.get_closest_marker(MARKER)
    from_marker: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
    options: dict[str, Any] = {"validation": ValidationMode.STRICT.value}
    cli_mode = request.config.getoption("--cassette-record-mode")
    options["record_mode"] = cli_mode or RecordMode.NONE.value
    cli_upstream = request.config.getoption("--cassette-upstream")
    if cli_upstream:
        options["upstream"] = cli_upstream
    for source, values in (("cassette_proxy_config", config), (f"@{MARKER}", from_marker)):
        unknown = set(values) - OPTIONS
        if unknown:
            pytest.fail(
                f"{source} has unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(OPTIONS))}",
                pytrace=False,
            )
        options.update(values)
    cassette = Path(options.get("cassette") or default_cassette_path(request))
    options["cassette"] = cassette if cassette.is_absolute() else request.path.parent / cassette
    if options["record_mode"] not in RECORD_MODES:
        pytest.fail(
            f"record_mode {options['record_mode']!r} is not one of {', '.join(RECORD_MODES)}",
            pytrace=False,
        )
    return options


def _settings(options: dict[str, Any]) -> Settings:
    """The proxy's settings, or a one-line failure naming the option that is wrong."""
    try:
        return Settings(**options, host="127.0.0.1", port=0)
    except ValidationError as error:
        first = error.errors()[0]
    # Failed outside the except block, so pytest does not print pydantic's error as its cause.
    name = str(first["loc"][0]) if first["loc"] else "settings"
    message = first["msg"].removeprefix("Value error, ")
    pytest.fail(
        f"invalid cassette_proxy option {name}={options.get(name)!r}: {message}", pytrace=False
    )


def _delete_if_stale(cassette: Path, run_started: float) -> None:
    """``rewrite``: delete the cassette (and its journal) if it predates this run. Under the
    cassette's lock, so a worker recording it now is never disturbed."""
    lock = CassetteLock(cassette)
    if not lock.acquire():
        raise lock.refusal()
    try:
        if cassette.exists() and cassette.stat().st_mtime < run_started:
            for stale in (cassette, journal_path(cassette)):
                stale.unlink(missing_ok=True)
    finally:
        lock.release()


def _start(
    settings: Settings, log: _CollectingLog, *, rewrite_before: float | None, wait: bool
) -> ServerThread:
    """Start the proxy (for ``rewrite``, deleting a cassette older than ``rewrite_before``
    first). If another process is recording the same cassette: under pytest-xdist (``wait``),
    wait for it, up to LOCK_WAIT seconds; otherwise fail now."""
    assert settings.cassette is not None
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            if rewrite_before is not None:
                _delete_if_stale(settings.cassette, rewrite_before)
            server = ServerThread(lambda: build_app(settings, audit_log=log))
            server.start()
        except CassetteLocked as locked:
            if not wait:
                pytest.fail(str(locked), pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{locked} (waited {LOCK_WAIT:g} s)", pytrace=False)
            time.sleep(0.1)
            continue
        return server


def _not_recorded_message(cassette: Path, nodeid: str) -> str:
    return (
        f"cassette {cassette} does not exist and the record mode is 'none', so the proxy could "
        f"only answer 501. Record it once against the upstream:\n"
        f"    CASSETTE_PROXY_UPSTREAM_API_KEY=<key> pytest {nodeid!r} "
        f"--cassette-record-mode=once\n"
        f"(add --cassette-upstream URL to record from somewhere else), then commit the cassette."
    )


def _failure_report(proxy: CassetteProxy, failures: list[ExchangeEvent]) -> str:
    lines = [
        f"cassette-proxy answered {len(failures)} request(s) of this test with an error the code "
        f"under test may have swallowed (cassette {proxy.cassette}, record mode "
        f"{proxy.record_mode!r}, validation {proxy.settings.validation.value!r}):"
    ]
    for event in failures:
        lines.append(f"\n{event.method} {event.path} -> {event.status} {event.error}")
        body = event.response.body
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if message:
            lines.append("  " + str(message).replace("\n", "\n  "))
        if event.error == "cassette_miss" and proxy._pinned_by:
            lines.append(
                f"  This test's record_mode {proxy.record_mode!r} is set by {proxy._pinned_by}, "
                "which wins over --cassette-record-mode: change it there to record this call."
            )
        elif event.error == "cassette_miss":
            lines.append(
                f"  To record it from pytest: pytest {proxy.nodeid!r} "
                "--cassette-record-mode=new_episodes"
            )
        for side, record in event.validation.items():
            for violation in record.violations:
                if violation["severity"] == "error":
                    lines.append(f"  {side} {violation['pointer'] or '/'}: {violation['message']}")
    return "\n".join(lines)


@pytest.fixture
def cassette_proxy_config() -> dict[str, Any]:
    """Override in a conftest.py (any scope) to configure every ``cassette_proxy`` under it."""
    return {}


@pytest.fixture
def cassette_proxy(
    request: pytest.FixtureRequest, cassette_proxy_config: Mapping[str, Any]
) -> Iterator[CassetteProxy]:
    """A proxy in front of the code under test, replaying (or recording) this test's cassette."""
    options = resolve_options(request, cassette_proxy_config)
    cassette: Path = options["cassette"]
    mode = options["record_mode"]
    # rewrite: only a cassette from before this run is deleted, so tests sharing one add to the
    # new recording, whichever process (xdist worker) runs them.
    rewrite_before = request.config.stash[_RUN_STARTED] if mode == REWRITE else None
    if mode == REWRITE:
        options["record_mode"] = RecordMode.NEW_EPISODES.value
    settings = _settings(options)
    if settings.record_mode is RecordMode.NONE and not cassette.exists():
        pytest.fail(_not_recorded_message(cassette, request.node.nodeid), pytrace=False)
    log = _CollectingLog()
    try:
        xdist_worker = getattr(request.config, "workerinput", None) is not None
        server = _start(settings, log, rewrite_before=rewrite_before, wait=xdist_worker)
    except BaseException:  # pytest.fail too: the log must still be closed
        log.close()
        raise
    assert server.app is not None
    marker = request.node.get_closest_marker(MARKER)
    pinned_by = (
        f"@pytest.mark.{MARKER}"
        if marker is not None and "record_mode" in marker.kwargs
        else "the cassette_proxy_config fixture"
        if "record_mode" in cassette_proxy_config
        else None
    )
    proxy = CassetteProxy(
        f"{server.url}/v1",
        request.node.nodeid,
        cassette,
        mode,
        settings,
        log,
        server.app,
        pinned_by,
    )
    try:
        yield proxy
    finally:
        server.stop()  # drains, saves the cassette, closes the log
    failures = proxy.failures()
    if failures:
        pytest.fail(_failure_report(proxy, failures), pytrace=False)
