"""The in-memory cassette: indexed lookup, FIFO order, repeats, and the miss explanation."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from vcr.request import Request as VcrRequest

from cassette_proxy.matching.closest import CANDIDATE_BUDGET, ClosestIndex
from cassette_proxy.matching.matchers import Key, Matcher
from cassette_proxy.settings import DEFAULT_MATCH_ON
from cassette_proxy.store.cassette import Cassette, Interaction

BASE = "https://ai.api.cloud.yandex.net/v1/responses"


def request(response_id: str, body: bytes = b"") -> VcrRequest:
    return VcrRequest("POST", f"{BASE}/{response_id}/cancel", body, {})


def interaction(response_id: str, marker: str) -> Interaction:
    return Interaction(request(response_id), 200, "OK", (("X-Marker", marker),), marker.encode())


class CountingMatcher(Matcher):
    """Counts how many requests get a key computed, to prove lookups do not scan."""

    def __init__(self) -> None:
        super().__init__(DEFAULT_MATCH_ON)
        self.keyed = 0

    def key(self, request: VcrRequest) -> Key:
        self.keyed += 1
        return super().key(request)


def test_lookup_does_not_scan_the_cassette() -> None:
    matcher = CountingMatcher()
    loaded = [interaction(f"resp_{n}", str(n)) for n in range(20_000)]
    cassette = Cassette(Path("big.yaml"), matcher, loaded=loaded)
    assert matcher.keyed == 20_000  # the index is built once, at load
    matcher.keyed = 0
    for n in (19_999, 0, 10_000):
        found = cassette.play(request(f"resp_{n}"))
        assert found is not None
        assert found.body == str(n).encode()
    assert matcher.keyed == 3  # one key per lookup, whatever the cassette's size


def test_identical_requests_are_served_in_recorded_order_then_miss() -> None:
    loaded = [
        interaction("resp_a", "first"),
        interaction("resp_b", "b"),
        interaction("resp_a", "2"),
    ]
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=loaded)
    played = [cassette.play(request("resp_a")) for _ in range(3)]
    assert [p.body if p else None for p in played] == [b"first", b"2", None]
    assert cassette.played == 2
    assert [i.body for i in cassette.never_played] == [b"b"]


def test_repeats_cycle_through_the_recordings() -> None:
    loaded = [interaction("resp_a", "1"), interaction("resp_a", "2")]
    cassette = Cassette(
        Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), allow_playback_repeats=True, loaded=loaded
    )
    played = [cassette.play(request("resp_a")) for _ in range(5)]
    assert [p.body for p in played if p] == [b"1", b"2", b"1", b"2", b"1"]


def test_json_bodies_match_whatever_their_key_order() -> None:
    recorded = Interaction(request("resp_a", b'{"a": 1, "b": [1, 2]}'), 200, "OK", (), b"x")
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=[recorded])
    assert cassette.play(request("resp_a", b'{"b":[1,2],"a":1}')) is recorded


def test_all_mode_save_replaces_what_was_rerecorded() -> None:
    loaded = [interaction("resp_a", "old a"), interaction("resp_b", "old b")]
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=loaded)
    cassette.record(interaction("resp_a", "new a"))
    assert [i.body for i in cassette.replaced_by_recorded()] == [b"old b", b"new a"]


def test_miss_explanation_names_the_closest_and_the_failing_matchers() -> None:
    loaded = [interaction("resp_a", "a"), interaction("resp_a", "again"), interaction("x", "x")]
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=loaded)
    cassette.play(request("resp_a"))
    cassette.play(request("resp_a"))
    explained = cassette.explain_miss(VcrRequest("GET", f"{BASE}/resp_a/cancel", b"", {}))
    assert "failed method: GET != POST" in explained
    assert explained.count(f"{BASE}/resp_a/cancel") == 1  # one line per distinct request
    spent = cassette.explain_miss(request("resp_a"))
    assert "all 2 recorded interaction(s) for it were already played" in spent
    assert "--allow-playback-repeats" in spent


def test_a_miss_recorded_from_another_upstream_says_so_and_how_to_replay_it() -> None:
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=[interaction("r", "r")])
    local = VcrRequest("POST", "http://127.0.0.1:8099/v1/responses/r/cancel", b"", {})
    explained = cassette.explain_miss(local, upstream="http://127.0.0.1:8099")
    recorded_from = "https://ai.api.cloud.yandex.net"
    assert f"differs only in the upstream: it was recorded from {recorded_from}." in explained
    assert f"--upstream {recorded_from} " in explained
    assert "--match-on method,path,query,body" in explained
    # Behind a path prefix the suggested upstream keeps it, and the user's own matchers stay.
    prefixed = Cassette(
        Path("c.yaml"),
        Matcher(("method", "host", "path")),
        loaded=[interaction("r", "r")],
    )
    moved = VcrRequest("POST", "http://127.0.0.1:8099/v1/responses/r/cancel", b"", {})
    hint = prefixed.explain_miss(moved, upstream="http://127.0.0.1:8099/v1/")
    assert "--upstream https://ai.api.cloud.yandex.net/v1 " in hint
    assert "--match-on method,path)" in hint
    # A miss for another reason gets no such hint.
    assert "differs only in the upstream" not in cassette.explain_miss(request("other"))


def test_a_replayed_body_is_never_labelled_with_a_coding_it_is_not_in() -> None:
    labelled = Interaction(
        request("resp_a"), 200, "OK", (("Content-Encoding", "gzip"), ("X-A", "1")), b"{}"
    )
    assert "Content-Encoding" not in labelled.replay.headers
    assert labelled.replay.headers["X-A"] == "1"


# -- a miss in a big cassette ---------------------------------------------------------------------

BIG = 100_000


class Compared(str):
    """A method name that counts how often it is compared: recorded requests a search looks at."""

    comparisons = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        Compared.comparisons += 1
        return str.__eq__(self, other)


class ComparisonCountingMatcher(Matcher):
    def key(self, request: VcrRequest) -> Key:
        method, *rest = super().key(request)
        return (Compared(method), *rest)


@pytest.fixture(scope="module")
def big_cassette() -> Cassette:
    loaded = [interaction(f"resp_{n}", str(n)) for n in range(BIG)]
    return Cassette(Path("big.yaml"), ComparisonCountingMatcher(DEFAULT_MATCH_ON), loaded=loaded)


def median_seconds(action: Callable[[], object], times: int) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


@pytest.mark.slow
def test_a_miss_costs_a_bounded_number_of_comparisons_whatever_the_cassette_size(
    big_cassette: Cassette,
) -> None:
    Compared.comparisons = 0
    explained = big_cassette.explain_miss(request("resp_new"))
    assert 0 < Compared.comparisons <= CANDIDATE_BUDGET + 10  # of 100,000 recorded requests
    assert "6/7 matchers agree; failed path" in explained
    # In time: a miss costs what a few dozen hits cost, not what 100,000 comparisons do
    # (about 0.6 ms against 13 us here; it took 170 ms when every recording was compared).
    hits = iter(range(BIG))
    hit = median_seconds(lambda: big_cassette.play(request(f"resp_{next(hits)}")), 2_000)
    miss = median_seconds(lambda: big_cassette.explain_miss(request("resp_new")), 30)
    assert miss < 200 * hit, f"a miss took {miss * 1e3:.2f} ms, a hit {hit * 1e6:.1f} us"


@pytest.mark.slow
def test_the_closest_recording_is_found_among_100_000(big_cassette: Cassette) -> None:
    # Differs from one recording in the body only: that one is named first.
    near = request("resp_77777", b'{"extra": true}')
    explained = big_cassette.explain_miss(near)
    assert explained.startswith("Closest recorded interactions:\n")  # provably the closest
    first = explained.splitlines()[1]
    assert f"{BASE}/resp_77777/cancel (6/7 matchers agree; failed body" in first
    # Recorded from another upstream: found, with the hint, though every host differs.
    moved = VcrRequest("POST", "http://127.0.0.1:8099/v1/responses/resp_54321/cancel", b"", {})
    explained = big_cassette.explain_miss(moved, upstream="http://127.0.0.1:8099")
    assert f"{BASE}/resp_54321/cancel (4/7 matchers agree" in explained.splitlines()[1]
    assert "differs only in the upstream" in explained
    # Sharing nothing with any recording: the first recordings, which are as close as any.
    far = VcrRequest("GET", "http://elsewhere/v2/other?q=1", b"x", {})
    explained = big_cassette.explain_miss(far)
    assert explained.startswith("Closest recorded interactions:\n")
    assert f"{BASE}/resp_0/cancel (0/7 matchers agree" in explained


def test_a_search_cut_short_by_its_budget_says_how_many_it_compared() -> None:
    keys = [("a", "x", "1"), ("a", "y", "2"), ("a", "z", "3"), ("b", "x", "3")]
    index = ClosestIndex(keys, 3, budget=2)
    found = index.search(("a", "y", "3"), 3)
    assert [(near.key, near.agree) for near in found.near] == [
        (keys[1], 2),
        (keys[2], 2),
        (keys[0], 1),
    ]
    assert found.compared == 3
    assert not found.exhaustive  # keys left out could agree on two, as the last shown does not
    assert index.search(("a", "y", "2"), 1).exhaustive  # all three agree: none can be closer
    # GET for even numbers, a query for the upper half: the first GETs are not the closest.
    mixed = [
        Interaction(
            VcrRequest(
                "GET" if n % 2 == 0 else "POST",
                f"{BASE}/resp_{n}/cancel" + ("?a=1" if n >= 5 else ""),
                b"",
                {},
            ),
            200,
            "OK",
            (),
            b"",
        )
        for n in range(10)
    ]
    cassette = Cassette(Path("c.yaml"), Matcher(DEFAULT_MATCH_ON), loaded=mixed)
    cassette.closest = ClosestIndex(list(cassette._index), len(DEFAULT_MATCH_ON), budget=2)
    miss = VcrRequest("GET", f"{BASE}/resp_new/cancel?a=1", b"{}", {})
    heading = cassette.explain_miss(miss).splitlines()[0]
    assert heading == (
        "Closest recorded interactions (of the 3 compared: those sharing this request's "
        "rarest values, out of 10 distinct):"
    )
