"""JSON the proxy keeps takes its own length in memory, not orjson's whole output buffer."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cassette_proxy.kept import dumps_kept

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
