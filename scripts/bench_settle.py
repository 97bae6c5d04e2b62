"""CPU time to settle one exchange, in process: its log event built and serialized, and the token
accounting, for a pass-through cancel (the body as the tee keeps it) and a replayed one.

    .venv/bin/python scripts/bench_settle.py
    PYTHONPATH=/path/to/other/tree .venv/bin/python scripts/bench_settle.py   # to compare

This is the part of the request path issue 24 added to; measured apart from the server, where
each piece costs two to three times its figure here (README, Performance). The median of five
runs of 3,000 exchanges each; nothing is started, nothing is sent.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from aiohttp import web
from fast_upstream import BODY
from multidict import CIMultiDict, CIMultiDictProxy

from cassette_proxy.contract import classify
from cassette_proxy.models.events import MessageRecord
from cassette_proxy.models.http import ProxyRequest, ProxyResponse, ResponseHead
from cassette_proxy.serving.exchange import CASSETTE, UPSTREAM, Exchange
from cassette_proxy.serving.tee import Tee

try:
    from cassette_proxy.serving.observers.tokens import TokenLedger
except ImportError:  # a tree from before token accounting
    TokenLedger = None  # type: ignore[assignment,misc]

PATH = "/v1/responses/resp_1/cancel"
ROUTE = classify("POST", PATH)
JSON = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "x-request-id": "r"}))
CLIENT = CIMultiDictProxy(
    CIMultiDict({"Authorization": "Bearer x", "Content-Type": "application/json"})
)
RECORDED = ProxyResponse(200, "OK", JSON, BODY)
ANSWER = web.Response(status=200)  # what the client got (read only for a response made up)


def settle(source: str, ledger: Any) -> float:
    exchange = Exchange(ROUTE, "POST", PATH)
    exchange.request = ProxyRequest("POST", PATH, CLIENT, b"")
    exchange.source = source
    if source == UPSTREAM:
        tee = Tee(ResponseHead(200, "OK", JSON), 8 << 20, None, 1.0)
        tee.feed(BODY)
        exchange.captured = tee.close(ended=True)
    else:
        exchange.response = RECORDED
    started = time.process_time()
    event = exchange.event(ANSWER, 1.0, serialized_only=True)
    if ledger is not None:
        logged = event.response.body if isinstance(event.response, MessageRecord) else None
        ledger.account(exchange, logged=logged)
    orjson.dumps(event)
    return time.process_time() - started


def main() -> None:
    ledger = TokenLedger() if TokenLedger is not None else None
    for source in (UPSTREAM, CASSETTE):
        for _ in range(500):  # warm-up: caches, memos
            settle(source, ledger)
        runs = [sum(settle(source, ledger) for _ in range(3000)) / 3000 * 1e6 for _ in range(5)]
        print(f"settle a {source} cancel: {statistics.median(runs):.1f} us CPU")


if __name__ == "__main__":
    main()
