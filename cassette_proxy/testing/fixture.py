"""The proxy a test runs: its options resolved, started on a thread, stopped and reported.

Loaded by :mod:`cassette_proxy.pytest_plugin` when a test first asks for the ``cassette_proxy``
fixture. Configuration, most specific first: the ``@pytest.mark.cassette_proxy(...)`` marker, the
``cassette_proxy_config`` fixture (a dict, any scope), the command line
(``--cassette-record-mode``, ``--cassette-upstream``), the ini options
(``cassette_proxy_record_mode``, ``cassette_proxy_upstream``), ``[tool.cassette-proxy]`` in the
project's ``pyproject.toml`` (the keys ``serve --config`` takes; those of a test's proxy are
used), then the defaults (record mode ``none``). Nothing else: ``CASSETTE_PROXY_*`` variables,
which configure ``serve``, are not read, so a shell's exports cannot change a test's outcome;
the one exception is the key recordings are made with, ``CASSETTE_PROXY_UPSTREAM_API_KEY``.
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

from cassette_proxy import config_file
from cassette_proxy.errors import CassetteLocked, StartupError
from cassette_proxy.matching.hints import PytestHints
from cassette_proxy.models.events import ExchangeEvent, LifecycleEvent, MessageRecord
from cassette_proxy.models.faults import FaultRule
from cassette_proxy.pytest_plugin import CassetteProxyWarning
from cassette_proxy.serving.app import PIPELINE, build_app
from cassette_proxy.serving.observers.log import AuditLog
from cassette_proxy.serving.process.serve import ServerThread
from cassette_proxy.settings import (
    TEST_OPTIONS,
    ExpiryAction,
    GivenSettings,
    RecordMode,
    Settings,
    TestSettings,
    ValidationMode,
)
from cassette_proxy.store import hygiene
from cassette_proxy.store.cassette import Cassette, Interaction
from cassette_proxy.store.filters import RecordFilters
from cassette_proxy.store.journal import CassetteLock, journal_path
from cassette_proxy.store.recorder import Recorder
from cassette_proxy.testing.hooks import HookError, split
from cassette_proxy.testing.names import (
    BY_COMMAND_LINE,
    BY_CONFIG,
    BY_DEFAULT,
    BY_INI,
    BY_MARKER,
    BY_PROJECT,
    HOOK_OPTIONS,
    INI_MATCH_IGNORE,
    INI_RECORD_MODE,
    INI_UPSTREAM,
    KEY_VARIABLE,
    MARKER,
    RECORD_MODES,
    REWRITE,
)

# What the marker and cassette_proxy_config take: the settings' and Python's.
OPTIONS: Final = TEST_OPTIONS | set(HOOK_OPTIONS)
# What a test takes from [tool.cassette-proxy]: a test's own options but its cassette (one per
# test); the table's other keys configure `serve` (port, log file, workers...), not a test.
PROJECT_OPTIONS: Final = TEST_OPTIONS - {"cassette"}
# Errors of the proxy's own that mean the test did not see what it thinks it saw.
FAILING_CODES: Final = frozenset(
    {"cassette_miss", "cassette_chain_broken", "contract_violation", "upstream_unreachable",
     "upstream_broken", "upstream_timeout", "recording_failed", "internal_error", "hook_failed"}
)  # fmt: skip
# Answers passed on but not recorded for a reason that makes the cassette miss on replay: the
# test must not pass as if its recording were whole.
FAILING_NOT_RECORDED: Final = (hygiene.AUTH_FAILURE, hygiene.NEAR_DUPLICATE)


# How long a test waits for another process (an xdist worker) recording the same cassette.
LOCK_WAIT: Final = 300.0
_UNSAFE_NAME_CHARS: Final = str.maketrans(dict.fromkeys("<>?%*:|\"'/\\", "-"))


class _CollectingLog(AuditLog):
    """The audit log, also kept in memory for the test to inspect and for teardown checks."""

    serialized_only = False  # tests read the events' bodies

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
    _reported: int = field(default=0, repr=False)  # failures already in a report
    options: TestSettings = field(default_factory=TestSettings)
    failed: bool = False  # the test's call failed

    @property
    def _recorder(self) -> Recorder:
        recorder = self._app[PIPELINE].recorder
        assert recorder is not None
        return recorder

    @property
    def _cassette(self) -> Cassette:
        return self._recorder.cassette

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

    def fault(self, **rule: Any) -> int:
        """Install a fault rule (the fields of ``POST /_proxy/faults``: ``status=429,
        headers={"Retry-After": "1"}, times=1``, ``error_after_events=2``, ...) for the rest of
        the test; its number, as the log's ``fault.rule`` names it."""
        try:
            checked = FaultRule(**rule)
        except ValidationError as error:
            first = error.errors()[0]
            where = "/".join(str(part) for part in first["loc"]) or "rule"
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"invalid fault rule ({where}): {message}") from None
        return self._app[PIPELINE].steering.faults.install(checked).id

    def clear_faults(self) -> int:
        """Remove every fault rule (those of the marker too); how many there were."""
        return self._app[PIPELINE].steering.faults.clear()

    def failures(self) -> list[ExchangeEvent]:
        """Exchanges the proxy answered with an error that must fail the test, or whose
        answer it could not record for a reason the next replay would miss on."""
        return [
            e
            for e in self._log.exchanges
            if e.error in FAILING_CODES or (e.not_recorded or "").startswith(FAILING_NOT_RECORDED)
        ]

    def _take_failures(self) -> list[ExchangeEvent]:
        """The failures not reported yet, now reported."""
        failures = self.failures()
        new, self._reported = failures[self._reported :], len(failures)
        return new


def default_cassette_path(request: pytest.FixtureRequest) -> Path:
    """``<test dir>/cassettes/<module>/<test name>.yaml``, as pytest-recording names them."""
    node = request.node
    name = node.name if request.cls is None else f"{request.cls.__name__}.{node.name}"
    module = request.path.stem
    return request.path.parent / "cassettes" / module / f"{name.translate(_UNSAFE_NAME_CHARS)}.yaml"


@dataclass(frozen=True)
class Resolved:
    """A test's options, and where the two that hints name were set (``BY_*``)."""

    options: dict[str, Any]
    record_mode_by: str
    upstream_by: str
    filters: RecordFilters | None = None  # vcrpy's hooks given as Python


def resolve_options(request: pytest.FixtureRequest, config: Mapping[str, Any]) -> Resolved:
    """The options for this test: marker over ``cassette_proxy_config`` over the command line
    over the ini file over the defaults."""
    marker = request.node.get_closest_marker(MARKER)
    from_marker: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
    options: dict[str, Any] = {"validation": ValidationMode.STRICT.value}
    set_by = {"record_mode": BY_DEFAULT, "upstream": BY_DEFAULT}
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (BY_PROJECT, project_options(request.config)),
        (BY_INI, _ini_options(request.config)),
        (BY_COMMAND_LINE, _command_line_options(request.config)),
        (BY_CONFIG, config),
        (BY_MARKER, from_marker),
    ]
    for source, values in layers:
        unknown = set(values) - OPTIONS
        if unknown:
            pytest.fail(
                f"{source} has unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(OPTIONS))}",
                pytrace=False,
            )
        options.update(values)
        set_by.update(dict.fromkeys(set(values) & set(set_by), source))
    options.setdefault("record_mode", RecordMode.NONE.value)
    invalid: str | None = None
    try:
        options, filters = split(options)
    except HookError as error:
        invalid = str(error)
    if invalid is not None:  # failed outside the except, so pytest prints no chained error
        pytest.fail(f"invalid cassette_proxy option: {invalid}", pytrace=False)
    cassette = Path(options.get("cassette") or default_cassette_path(request))
    options["cassette"] = cassette if cassette.is_absolute() else request.path.parent / cassette
    if options["record_mode"] not in RECORD_MODES:
        pytest.fail(
            f"record_mode {options['record_mode']!r} is not one of {', '.join(RECORD_MODES)} "
            f"(set by {set_by['record_mode']})",
            pytrace=False,
        )
    return Resolved(options, set_by["record_mode"], set_by["upstream"], filters)


_PROJECT: Final = pytest.StashKey[dict[str, Any]]()


def project_options(config: pytest.Config) -> dict[str, Any]:
    """The test options in ``[tool.cassette-proxy]`` of the project's ``pyproject.toml`` (read
    once a run); a key that is no option of ``serve`` fails the test in one line."""
    found = config.stash.get(_PROJECT, None)
    if found is None:
        path = config.rootpath / config_file.PYPROJECT
        failure: str | None = None
        try:
            table = config_file.read_table(path) if path.is_file() else {}
            values = config_file.options(table, Settings.model_fields, path)
        except config_file.ConfigFileError as error:
            failure = str(error)
        if failure is not None:  # failed outside the except block: one message, no cause
            pytest.fail(failure, pytrace=False)
        found = config.stash[_PROJECT] = {
            name: value for name, value in values.items() if name in PROJECT_OPTIONS
        }
    return found


def _ini_options(config: pytest.Config) -> dict[str, Any]:
    values = {
        "upstream": config.getini(INI_UPSTREAM),
        "record_mode": config.getini(INI_RECORD_MODE),
    }
    options: dict[str, Any] = {name: str(v).strip() for name, v in values.items() if v}
    ignored = [line.strip() for line in config.getini(INI_MATCH_IGNORE) if line.strip()]
    if ignored:
        options["match_ignore"] = tuple(ignored)
    return options


def _command_line_options(config: pytest.Config) -> dict[str, Any]:
    values = {
        "upstream": config.getoption("--cassette-upstream"),
        "record_mode": config.getoption("--cassette-record-mode"),
    }
    return {name: value for name, value in values.items() if value}


def _settings(options: dict[str, Any]) -> tuple[Settings, TestSettings]:
    """The proxy's settings, from ``options`` and the upstream key only (no other variable),
    and the test's own, or a one-line failure naming the option that is wrong."""
    key = os.environ.get(KEY_VARIABLE) or None
    tests = {name: options.pop(name) for name in TestSettings.model_fields if name in options}
    try:
        settings = GivenSettings(**options, host="127.0.0.1", port=0, upstream_api_key=key)
        return settings, TestSettings(**tests)
    except ValidationError as error:
        first = error.errors()[0]
        options |= tests
    # Failed outside the except block, so pytest does not print pydantic's error as its cause.
    name = str(first["loc"][0]) if first["loc"] else "settings"
    message = first["msg"].removeprefix("Value error, ")
    hidden = name in {"upstream_api_key", "placeholders"}  # a placeholder may be a secret
    shown = "<hidden>" if hidden else repr(options.get(name))
    pytest.fail(f"invalid cassette_proxy option {name}={shown}: {message}", pytrace=False)


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
    settings: Settings,
    log: _CollectingLog,
    hints: PytestHints,
    *,
    rewrite_before: float | None,
    wait: bool,
    filters: RecordFilters | None = None,
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
            server = ServerThread(lambda: _app(settings, log, hints, filters))
            server.start()
        except CassetteLocked:
            locked = hints.locked(settings.cassette, CassetteLock(settings.cassette).holder())
            if wait and time.monotonic() <= deadline:
                time.sleep(0.1)
                continue
            failure = locked if not wait else f"{locked} (waited {LOCK_WAIT:g} s)"
        except StartupError as error:  # a cassette it cannot read, or record beside
            failure = f"cassette-proxy could not start: {error}"
        else:
            return server
        # Failed outside the except, so pytest prints the one line, not the error it replaces.
        pytest.fail(failure, pytrace=False)


def _app(
    settings: Settings, log: _CollectingLog, hints: PytestHints, filters: RecordFilters | None
) -> web.Application:
    # A miss (and any advice) in the plugin's words; vcrpy's hooks as the test gave them.
    return build_app(settings, audit_log=log, filters=filters, hints=hints)


def _failure_report(
    proxy: CassetteProxy, failures: list[ExchangeEvent], *, swallowed: bool = True
) -> str:
    intro = f"cassette-proxy answered {len(failures)} request(s) of this test with an error"
    lines = [
        f"{intro} the code under test may have swallowed (cassette {proxy.cassette}, record "
        f"mode {proxy.record_mode!r}, validation {proxy.settings.validation.value!r}):"
        if swallowed
        else f"{intro}:"
    ]
    for event in failures:
        why = event.error or "not recorded"
        lines.append(f"\n{event.method} {event.path} -> {event.status} {why}")
        # This log keeps plain values (serialized_only is False): nothing comes pre-serialized.
        assert isinstance(event.response, MessageRecord)
        assert isinstance(event.validation, dict)
        body = event.response.body
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if event.error is None and event.not_recorded:
            message = f"not recorded ({event.not_recorded})"
        if message:
            lines.append("  " + str(message).replace("\n", "\n  "))
        for side, record in event.validation.items():
            for violation in record.violations:
                if violation["severity"] == "error":
                    lines.append(f"  {side} {violation['pointer'] or '/'}: {violation['message']}")
    return "\n".join(lines)


def report_failures(proxy: CassetteProxy, report: pytest.TestReport) -> None:
    """One failure per failing test, with the proxy's diagnosis in it: a test that passed
    although the proxy answered it with an error fails; one that failed gets the diagnosis.
    What a failing test recorded is not saved, unless ``record_on_failure`` asks for it."""
    failures = proxy._take_failures()
    proxy.failed = report.failed or bool(failures)
    if proxy.failed and not proxy.options.record_on_failure and proxy.recorded:
        proxy._recorder.discard_recorded()
        report.sections.append(
            (
                "cassette-proxy",
                f"the {proxy.recorded} interaction(s) this failing test recorded were not saved "
                f"to {proxy.cassette} (record_on_failure=True in @pytest.mark.{MARKER}(...) "
                "keeps them)",
            )
        )
    if report.passed and not failures and not proxy.options.allow_unused:
        recorder = proxy._recorder
        unused = hygiene.unused(recorder.cassette.loaded, recorder.cassette.play_counts)
        if unused and recorder.policy.replay:
            report.outcome = "failed"
            report.longrepr = _unused_report(proxy, tuple(unused))
            proxy.failed = True
    if not failures:
        return
    if report.passed:
        report.outcome = "failed"
        report.longrepr = _failure_report(proxy, failures)
    elif report.failed:
        report.sections.append(
            ("cassette-proxy", _failure_report(proxy, failures, swallowed=False))
        )


def run_proxy(
    request: pytest.FixtureRequest, config: Mapping[str, Any], run_started: float
) -> Iterator[CassetteProxy]:
    """The ``cassette_proxy`` fixture: a proxy in front of the code under test, replaying (or
    recording) this test's cassette; ``run_started`` is when the test run began (``rewrite``
    deletes only cassettes older than that)."""
    resolved = resolve_options(request, config)
    options = resolved.options
    cassette: Path = options["cassette"]
    mode = options["record_mode"]
    # rewrite: only a cassette from before this run is deleted, so tests sharing one add to the
    # new recording, whichever process (xdist worker) runs them.
    rewrite_before = run_started if mode == REWRITE else None
    if mode == REWRITE:
        options["record_mode"] = RecordMode.NEW_EPISODES.value
    settings, test_options = _settings(options)
    hints = PytestHints(
        request.node.nodeid,
        mode,
        settings.upstream_base,
        resolved.record_mode_by,
        resolved.upstream_by,
    )
    if settings.record_mode is RecordMode.NONE and not cassette.exists():
        pytest.fail(hints.not_recorded(cassette), pytrace=False)
    log = _CollectingLog()
    try:
        xdist_worker = getattr(request.config, "workerinput", None) is not None
        server = _start(
            settings,
            log,
            hints,
            rewrite_before=rewrite_before,
            wait=xdist_worker,
            filters=resolved.filters,
        )
    except BaseException:  # pytest.fail too: the log must still be closed
        log.close()
        raise
    assert server.app is not None
    proxy = CassetteProxy(
        f"{server.url}/v1",
        request.node.nodeid,
        cassette,
        mode,
        settings,
        log,
        server.app,
        options=test_options,
    )
    _warn(request, proxy)
    try:
        yield proxy
    finally:
        server.stop()  # drains, saves the cassette, closes the log
    failures = proxy._take_failures()  # any the test's own report did not carry
    if failures:
        pytest.fail(_failure_report(proxy, failures), pytrace=False)


_WARNED_KEY: Final = pytest.StashKey[bool]()


def _warn(request: pytest.FixtureRequest, proxy: CassetteProxy) -> None:
    """What is worth a line, once: recording with the client's own key (a test's dummy key
    gets the upstream's 401, which is not recorded); a cassette past its re_record_interval."""
    recorder = proxy._recorder
    config = request.config
    if (
        recorder.policy.record
        and proxy.settings.upstream_api_key is None
        and not config.stash.get(_WARNED_KEY, False)
    ):
        config.stash[_WARNED_KEY] = True
        request.node.warn(
            CassetteProxyWarning(
                f"cassette-proxy records without {KEY_VARIABLE}: each test's client sends its "
                "own Authorization upstream (a dummy key gets a 401, which is passed on but not "
                f"recorded); set {KEY_VARIABLE}=<key> to record with your key"
            )
        )
    expired = recorder.expired
    if expired is not None and not (
        expired.action is ExpiryAction.RECORD and recorder.mode is RecordMode.ALL
    ):
        recorder_hints = recorder.hints
        request.node.warn(
            CassetteProxyWarning(f"{expired.describe()}. {recorder_hints.rerecord(chain=False)}")
        )


def _unused_report(proxy: CassetteProxy, unused: tuple[str, ...]) -> str:
    shown = "\n".join(f"  {line}" for line in unused[:20])
    more = f"\n  ... and {len(unused) - 20} more" if len(unused) > 20 else ""
    return (
        f"cassette-proxy: {len(unused)} interaction(s) of {proxy.cassette} were never played "
        f"by this test, and allow_unused is False:\n{shown}{more}\nDelete them, or run the "
        "test once with drop_unused_requests=True, which rewrites the cassette without them "
        "(replaying too)."
    )
