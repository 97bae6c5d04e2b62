"""A recorded response as a source of headers and frames, with or without its timing.

Replay sends what was recorded the way it arrived: an event stream one event per write (so the
client sees the recorded event boundaries), any other body in one write, or, with
``--replay-timing recorded``, each recorded frame at its recorded time after the recorded time to
headers, divided by ``--replay-speed``. Work that depends only on the recording (the frames, the
stream's summary) is done once, on first play, and kept on the response.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

from cassette_proxy.models.events import StreamRecord
from cassette_proxy.models.http import ProxyResponse, ResponseHead, Timing
from cassette_proxy.serving.relay import Frame
from cassette_proxy.settings import ReplayTiming
from cassette_proxy.sse import TERMINAL_TYPES, decode_all, frame_ends, is_event_stream
from cassette_proxy.store.cassette import Interaction


class FramesBody:
    """Recorded frames as a :class:`~cassette_proxy.models.http.BodyStream`, each at its time
    (seconds after the first is asked for): how a replay streams through the relay when a fault
    rule acts on it, as an upstream's body would."""

    def __init__(self, frames: list[Frame]) -> None:
        self._frames = frames

    def arrived(self) -> bool:
        return False

    async def aclose(self) -> None:
        return None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        started = time.perf_counter()
        for frame in self._frames:
            wait = frame.at - (time.perf_counter() - started)
            if wait > 0:
                await asyncio.sleep(wait)
            yield bytes(frame.data)


def head_of(response: ProxyResponse) -> ResponseHead:
    return ResponseHead(response.status, response.reason, response.headers)


def frames_of(
    interaction: Interaction, timing: ReplayTiming, speed: float
) -> tuple[float, list[Frame]]:
    """Seconds to wait before the headers, and the frames of the body with their times."""
    response = interaction.replay
    body = response.body
    recorded = interaction.timing if timing is ReplayTiming.RECORDED else None
    ends = _ends(response)
    if recorded is None:  # the same frames on every play: made once, never changed
        frames = response.memo.get("frames")
        if frames is None:
            # Views, not copies: kept for the run, they hold no second copy of the body.
            view = memoryview(body) if len(ends) > 1 else body
            frames = [Frame(view[start:end]) for start, end in _pairs(ends)]
            response.memo["frames"] = frames
        return 0.0, frames
    times = _times(recorded, ends)
    frames = [
        Frame(body[start:end], at / 1000 / speed)
        for (start, end), at in zip(_pairs(ends), times, strict=True)
    ]
    return recorded.headers_ms / 1000 / speed, frames


def _ends(response: ProxyResponse) -> list[int]:
    """Where the body splits: after each event of an event stream, else nowhere."""
    ends = response.memo.get("frame_ends")
    if ends is None:
        body = response.body
        if is_event_stream(response.headers.get("Content-Type")) and body:
            ends = frame_ends(body)
        else:
            ends = [len(body)]
        response.memo["frame_ends"] = ends
    return list(ends)


def _pairs(ends: list[int]) -> list[tuple[int, int]]:
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends, strict=True))


def _times(recorded: Timing, ends: list[int]) -> list[float]:
    """When each frame was recorded to arrive (ms after the headers): a frame is sent when the
    recorded chunk that completed it arrived. Frames the timing does not cover (a body split more
    finely than it arrived) go with the chunk that carried them."""
    marks = recorded.frames
    if not marks:
        return [0.0] * len(ends)
    times = []
    mark = 0
    for end in ends:
        while mark < len(marks) - 1 and marks[mark][0] < end:
            mark += 1
        times.append(marks[mark][1])
    return times


def stream_record(response: ProxyResponse) -> StreamRecord | None:
    """The log's summary of a recorded event stream (once per response)."""
    if not is_event_stream(response.headers.get("Content-Type")):
        return None
    record = response.memo.get("stream")
    if record is None:
        types = Counter(event.type for event in decode_all(response.body))
        record = response.memo["stream"] = StreamRecord(
            events=sum(types.values()),
            types=dict(types),
            complete=any(kind in TERMINAL_TYPES for kind in types),
        )
    assert isinstance(record, StreamRecord)
    return record
