"""A pytest plugin that puts the proxy in front of the code under test.

Installed with the package (entry point ``pytest11``), so pytest loads this module in every run:
it registers the options, the marker and the fixtures, and imports nothing else of the proxy.
The machinery (:mod:`cassette_proxy.testing.fixture`) is loaded when a test first asks for the
``cassette_proxy`` fixture, so a run that never does pays nothing for it.

The ``cassette_proxy`` fixture starts a proxy on a free loopback port for one test, on a thread
of its own, so sync tests (the ``openai.OpenAI`` client) and async tests (``openai.AsyncOpenAI``
under pytest-aiohttp or pytest-asyncio) can both use it; it stops the proxy, saving the
cassette, after the test.

A failure the code under test might swallow still fails the test, once, with the proxy's
diagnosis: a replay miss, strict validation failure or upstream error the proxy answered fails a
test that passed, and is added to the report of one that failed.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import pytest

from cassette_proxy.testing.names import (
    INI_RECORD_MODE,
    INI_UPSTREAM,
    MARKER,
    RECORD_MODES,
    RUN_STARTED_KEY,
)

if TYPE_CHECKING:
    from pluggy import Result

    from cassette_proxy.testing.fixture import CassetteProxy

__all__ = ["CassetteProxy"]

# When this test run started: ``rewrite`` deletes only cassettes older than that, so tests
# sharing a cassette, in one process or across pytest-xdist workers, add to one new recording.
_RUN_STARTED: Final = pytest.StashKey[float]()
_PROXY: Final = pytest.StashKey["CassetteProxy"]()


def __getattr__(name: str) -> Any:
    """``from cassette_proxy.pytest_plugin import CassetteProxy`` (for type hints) loads the
    machinery then, not when pytest loads the plugin."""
    if name == "CassetteProxy":
        from cassette_proxy.testing.fixture import CassetteProxy  # noqa: PLC0415 - on first use

        return CassetteProxy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cassette-proxy", "record/replay through cassette-proxy")
    group.addoption(
        "--cassette-record-mode",
        choices=RECORD_MODES,
        default=None,
        help=f"Record mode for the cassette_proxy fixture (default: the ini option "
        f"{INI_RECORD_MODE}, else none, so tests never reach the network); 'rewrite' deletes "
        "each cassette, then records it like new_episodes.",
    )
    group.addoption(
        "--cassette-upstream",
        default=None,
        help=f"Upstream the cassette_proxy fixture records from (default: the ini option "
        f"{INI_UPSTREAM}, else https://ai.api.cloud.yandex.net).",
    )
    parser.addini(
        INI_UPSTREAM,
        "Upstream the cassette_proxy fixture records from, and replays as (matching includes "
        "its scheme, host and port); --cassette-upstream overrides it.",
    )
    parser.addini(
        INI_RECORD_MODE,
        f"Default record mode of the cassette_proxy fixture ({', '.join(RECORD_MODES)}; "
        "none if unset); --cassette-record-mode overrides it.",
    )


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    config.stash[_RUN_STARTED] = (
        float(workerinput[RUN_STARTED_KEY]) if workerinput is not None else time.time()
    )
    config.addinivalue_line(
        "markers",
        f"{MARKER}(record_mode=..., match_on=..., validation=..., upstream=..., cassette=..., "
        "allow_playback_repeats=..., replay_timing=..., replay_speed=..., faults=[...]): "
        "configure the cassette_proxy fixture for this test.",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker gets the controller's start time."""
    node.workerinput[RUN_STARTED_KEY] = node.config.stash[_RUN_STARTED]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    """A test whose proxy answered with an error it may have swallowed fails, with the proxy's
    diagnosis (:func:`cassette_proxy.testing.fixture.report_failures`)."""
    outcome = yield
    report = outcome.get_result()
    proxy = item.stash.get(_PROXY, None)
    if proxy is None or report.when != "call" or hasattr(report, "wasxfail"):
        return
    from cassette_proxy.testing.fixture import report_failures  # noqa: PLC0415 - loaded already

    report_failures(proxy, report)


@pytest.fixture
def cassette_proxy_config() -> dict[str, Any]:
    """Override in a conftest.py (any scope) to configure every ``cassette_proxy`` under it."""
    return {}


@pytest.fixture
def cassette_proxy(
    request: pytest.FixtureRequest, cassette_proxy_config: Mapping[str, Any]
) -> Iterator[CassetteProxy]:
    """A proxy in front of the code under test, replaying (or recording) this test's cassette."""
    from cassette_proxy.testing.fixture import run_proxy  # noqa: PLC0415 - the first use

    proxies = run_proxy(request, cassette_proxy_config, request.config.stash[_RUN_STARTED])
    proxy = next(proxies)
    request.node.stash[_PROXY] = proxy
    yield proxy
    next(proxies, None)
