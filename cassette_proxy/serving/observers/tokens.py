"""Token accounting: an observer of each exchange once its response is whole.

It reads what the answer says about itself (:class:`~cassette_proxy.models.usage.Answered`: id,
model, status, usage) from what the proxy already has: the final event of a stream (parsed by
the tee on its way), a JSON body the tee kept, or a recording (once per recording). It then
decides which tokens the exchange accounts for: a Response's usage is counted once, the first
time the proxy sees it finished, so retrieving or cancelling a response that was already
counted adds nothing (the ids of the last 16,384 counted responses are remembered).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from cassette_proxy.contract.routes import CANCEL, CREATE, RETRIEVE
from cassette_proxy.models.http import ProxyResponse, UndecodableBody
from cassette_proxy.models.usage import Answered
from cassette_proxy.serving.exchange import CASSETTE, Exchange
from cassette_proxy.serving.tee import Captured
from cassette_proxy.sse import TERMINAL_TYPES, decode_all, is_event_stream

# The routes whose 200 is a Response (or a stream of one).
ANSWERING: Final = frozenset({CREATE, RETRIEVE, CANCEL})
REMEMBERED: Final = 16_384  # ids of counted responses kept (about 1.5 MiB)


def recorded_answer(response: ProxyResponse) -> Answered | None:
    """A recording's answer, read on its first play and kept with it."""
    if "answered" not in response.memo:
        response.memo["answered"] = _answer_of(response)
    answered = response.memo["answered"]
    assert answered is None or isinstance(answered, Answered)
    return answered


def _answer_of(response: ProxyResponse) -> Answered | None:
    try:
        body = response.decoded_body()
    except UndecodableBody:
        return None
    if not is_event_stream(response.headers.get("Content-Type")):
        return Answered.of_body(body)
    for event in reversed(decode_all(body)):
        if event.type in TERMINAL_TYPES:
            try:
                return Answered.of_event(event.json())
            except ValueError:
                return None
    return None


def answer_of(exchange: Exchange, logged: object = None) -> Answered | None:
    """What the client was answered, as a Response (None if it was not one). ``logged``: the
    body as the log line parsed it, if it did (then it is not parsed again)."""
    if exchange.route.name not in ANSWERING:
        return None
    if exchange.source == CASSETTE and exchange.response is not None:
        replayed = exchange.response
        return recorded_answer(replayed) if replayed.status == 200 else None
    captured = exchange.captured
    if captured is None or captured.response.status != 200:
        return None
    if captured.stream is not None:
        return captured.answered
    return _whole_body_answer(captured, logged)


def _whole_body_answer(captured: Captured, logged: object) -> Answered | None:
    """A JSON body's answer; a body not kept whole (over the cap, or past 64 KiB with
    --validation off) says nothing."""
    if captured.truncated or captured.undecodable is not None:
        return None
    if isinstance(logged, dict) and logged.get("object") == "response":
        return Answered.of(logged)  # parsed for the log line already (redaction keeps usage)
    return Answered.of_body(captured.response.decoded_body())


class TokenLedger:
    """Which responses' tokens were counted already (the most recent :data:`REMEMBERED`)."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._counted: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered

    def account(self, exchange: Exchange, logged: object = None) -> None:
        """Set the exchange's answer and the tokens it accounts for (``logged``: the response
        body as the log line parsed it, if it did)."""
        answered = exchange.answered = answer_of(exchange, logged)
        if answered is None or answered.usage is None or not answered.finished:
            return
        response_id = answered.response_id
        if response_id is not None:
            if response_id in self._counted:
                self._counted.move_to_end(response_id)
                return
            self._counted[response_id] = None
            if len(self._counted) > self._remembered:
                self._counted.popitem(last=False)
        exchange.tokens = answered.usage
