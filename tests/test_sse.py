"""The event-stream decoder, by the WHATWG rules, however the stream is cut into chunks."""

from __future__ import annotations

import gzip
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from cassette_proxy.models.http import decode_body
from cassette_proxy.sse import SseDecoder, decode_all, frame_ends

STREAM = (
    b"\xef\xbb\xbfevent: response.created\r\n"
    b'data: {"type":"response.created",\r\n'
    b'data: "sequence_number":0}\r\n\r\n'
    b": a comment, a keep-alive\n\n"
    b"event: a\rdata: 2\r\r"
    b"id: 7\nretry: 1500\ndata:3\n\n"
    b"data: no blank line after it"
)


def test_the_whatwg_rules() -> None:
    events = decode_all(STREAM)
    assert [(e.event, e.data) for e in events] == [
        ("response.created", '{"type":"response.created",\n"sequence_number":0}'),
        ("a", "2"),
        ("message", "3"),
    ]
    assert events[0].type == "response.created"  # the data's type
    assert events[0].sequence_number == 0
    assert (events[2].id, events[2].retry) == ("7", 1500)
    assert [e.index for e in events] == [0, 1, 2]
    # Offsets past each blank line (the comment-only block too), then the unfinished rest.
    ends = frame_ends(STREAM)
    assert ends[-1] == len(STREAM)
    assert ends[-2] == events[-1].end
    assert len(ends) == len(events) + 2  # the comment's frame, and the unfinished rest


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_any_chunking_gives_the_same_events_and_offsets(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    decoder = SseDecoder(track_frames=True)
    got = []
    for start, end in itertools.pairwise(bounds):
        got += decoder.feed(STREAM[start:end])
    got += decoder.feed(b"", final=True)
    assert got == decode_all(STREAM)
    assert decoder.frame_ends == [e for e in frame_ends(STREAM) if e < len(STREAM)]


def test_mid_event_says_whether_what_follows_would_join_an_event() -> None:
    decoder = SseDecoder()
    decoder.feed(b"event: x\ndata: 1\n\n")
    assert not decoder.mid_event
    decoder.feed(b'data: {"half')
    assert decoder.mid_event
    decoder.feed(b'"}\n')
    assert decoder.mid_event  # a data line, not yet dispatched
    decoder.feed(b"\n")
    assert not decoder.mid_event


def test_a_long_line_in_small_chunks_is_decoded_whole() -> None:
    line = b"data: " + b"x" * (1 << 20) + b"\n\n"
    decoder = SseDecoder()
    events = []
    for start in range(0, len(line), 512):
        events += decoder.feed(line[start : start + 512])
    assert [len(e.data) for e in events] == [1 << 20]
    assert decoder.pending == 0


def test_a_gzip_body_of_several_members_decodes_whole() -> None:
    body = gzip.compress(b"event: a\ndata: 1\n\n") + gzip.compress(b"event: b\ndata: 2\n\n")
    decoded = decode_body(CIMultiDict({"Content-Encoding": "gzip"}), body)
    assert [e.event for e in decode_all(decoded)] == ["a", "b"]
