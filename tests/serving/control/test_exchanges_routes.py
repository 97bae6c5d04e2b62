"""``/_proxy/exchanges``: the last exchanges, the same events the log writes, bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from cassette_proxy.models.events import ExchangeEvent, LifecycleEvent, MessageRecord
from cassette_proxy.serving.observers.recent import RecentExchanges
from tests import vectors
from tests.client import cancel
from tests.conftest import StartProxy
from tests.serving.control.admin import call


async def test_the_exchanges_are_the_events_the_log_wrote(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True, cassette=tmp_path / "c.yaml")
    for response_id in (vectors.V1_ID, vectors.V2_ID, "resp_missing_1"):
        await cancel(proxy, response_id)
    await call(proxy.url, "GET", "/_proxy/cassette")  # the control API's own: not exchanges
    answer = await call(proxy.url, "GET", "/_proxy/exchanges")
    assert answer.status == 200
    listed = answer.json()
    assert listed["exchanges"] == proxy.exchanges()  # the log's lines, as it wrote them
    assert [e["status"] for e in listed["exchanges"]] == [200, 200, 404]
    assert (listed["kept"], listed["dropped"], listed["limit"]) == (3, 0, 1000)
    last = (await call(proxy.url, "GET", "/_proxy/exchanges?last=1")).json()["exchanges"]
    assert last == proxy.exchanges()[-1:]
    cleared = await call(proxy.url, "DELETE", "/_proxy/exchanges")
    assert cleared.json() == {"exchanges": [], "removed": 3}
    assert (await call(proxy.url, "GET", "/_proxy/exchanges")).json()["exchanges"] == []
    await cancel(proxy, vectors.V3_ID)
    again = (await call(proxy.url, "GET", "/_proxy/exchanges")).json()["exchanges"]
    assert [e["response_id"] for e in again] == [vectors.V3_ID]
    bad = await call(proxy.url, "GET", "/_proxy/exchanges?last=-1")
    assert (bad.status, bad.error()["code"]) == (400, "proxy_control_invalid")


def _event(number: int, cassette: str | None = None) -> ExchangeEvent:
    empty = MessageRecord({}, None, 0)
    return ExchangeEvent(
        time="t", id=str(number), method="POST", path="/", route="cancel", response_id=None,
        status=200, source="upstream", duration_ms=1.0, upstream_ms=None, request=empty,
        response=empty, validation={}, verdict="skipped", cassette=cassette,
    )  # fmt: skip


def _line(event: ExchangeEvent, size: int) -> bytes:
    line = orjson.dumps(event)
    return line[:-1] + b',"pad":"' + b"x" * max(0, size - len(line) - 9) + b'"}\n'


def test_the_exchanges_kept_are_bounded_in_count_and_in_bytes() -> None:
    recent = RecentExchanges(limit=100, max_bytes=64 * 1024)
    for number in range(1000):
        recent.keep(_event(number), _line(_event(number), 200))
    assert (len(recent), recent.dropped) == (100, 900)
    kept: list[dict[str, Any]] = [orjson.loads(line) for line in recent.lines()]
    assert [e["id"] for e in kept] == [str(n) for n in range(900, 1000)]  # the latest, in order
    for number in range(1000):  # large lines: the byte bound holds first
        recent.keep(_event(number), _line(_event(number), 4096))
    assert recent.size <= 64 * 1024
    assert len(recent) == 64 * 1024 // len(_line(_event(999), 4096))
    recent.keep(_event(0), b"x" * (64 * 1024 + 1))  # a line larger than the bound: not kept
    assert recent.size <= 64 * 1024
    recent.keep(LifecycleEvent("t", "listening", {}), b"{}")  # only exchanges are kept
    assert recent.lines()[-1] != b"{}"


def test_a_named_cassettes_exchanges_are_listed_apart() -> None:
    recent = RecentExchanges()
    for number, name in enumerate(["a", "b", None, "a"]):
        recent.keep(_event(number, name), orjson.dumps(_event(number, name)) + b"\n")
    ids = [orjson.loads(line)["id"] for line in recent.lines(cassette="a")]
    assert ids == ["0", "3"]
    assert [orjson.loads(line)["id"] for line in recent.lines(cassette="a", last=1)] == ["3"]
    assert recent.clear() == 4
    assert (len(recent), recent.size) == (0, 0)
