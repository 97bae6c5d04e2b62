"""JSON the proxy keeps takes its own length in memory, not orjson's whole output buffer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.kept import dumps_kept, remembered
from cassette_proxy.models.events import ValidationRecord
from cassette_proxy.models.violations import Violation, _redacted
from cassette_proxy.redact import redact_path
from cassette_proxy.serving.exchange import _logged_id
from cassette_proxy.serving.observers.log import _headers_record, _redacted_header, headers_record

BODY = {"model": "gpt://b1g/yandexgpt/latest", "input": "Say hi in three words.", "stream": False}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_dumps_kept_is_orjsons_output() -> None:
    assert dumps_kept(BODY) == orjson.dumps(BODY)
    assert dumps_kept(BODY, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        BODY, option=orjson.OPT_SORT_KEYS
    )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_ten_thousand_kept_results_hold_their_length_not_orjsons_buffer() -> None:
    before = rss_mib()
    kept = [dumps_kept(BODY | {"n": n}) for n in range(10_000)]
    grown = rss_mib() - before
    size_mib = sum(len(k) for k in kept) / 2**20
    # orjson's own results held about 4 KiB each (39 MiB for these); a copy, its length.
    assert grown < 3 * size_mib + 2, (grown, size_mib)


def test_caches_of_what_clients_send_keep_only_short_values() -> None:
    """A client sending long paths, ids or header values cannot fill the caches with them: each
    is computed afresh, and the caches hold at most their count of short values."""
    caches: tuple[Any, ...] = (
        redact_path, _logged_id, _redacted_header, _headers_record, _redacted,
    )  # fmt: skip
    before = [cache.cache_info().currsize for cache in caches]
    for n in range(50):
        long = f"{n}" + "a" * 60_000
        assert redact_path("/v1/responses/" + long) == "/v1/responses/" + long
        assert _logged_id("resp_" + long) == "resp_" + long
        headers = CIMultiDictProxy(CIMultiDict([("X-Long", long), ("X-Short", "1")]))
        assert headers_record(headers) == {"x-long": long, "x-short": "1"}
        [record] = ValidationRecord.of(
            "passed",
            [
                Violation(
                    pointer=f"/{long}",
                    message="unknown field",
                    severity="warning",
                    kind="unknown_field",
                )
            ],
        ).violations
        assert record["pointer"] == f"/{long}"
    after = [cache.cache_info().currsize for cache in caches]
    # Only the short header ("X-Short: 1") may have been remembered, once.
    assert [a - b for a, b in zip(after, before, strict=True)] in ([0] * 5, [0, 0, 1, 0, 0])


def test_remembered_forgets_the_least_recently_used_and_skips_long_arguments() -> None:
    calls: list[str] = []

    @remembered(maxsize=3, max_chars=8)
    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    for text in ("a", "b", "c", "a", "d", "a", "b"):  # "a" seen again stays; "b" went first
        assert upper(text) == text.upper()
    assert calls == ["a", "b", "c", "d", "b"]
    assert upper("x" * 9) == "X" * 9
    assert upper("x" * 9) == "X" * 9
    assert calls[-2:] == ["x" * 9, "x" * 9]  # computed each time, never kept
    assert upper.cache_info().currsize == 3  # type: ignore[attr-defined]
