"""What parsing a JSON body would cost, and whether the request path can afford it.

Parsed, JSON takes more memory than its text. A long string costs about its length; but every
value costs at least a pointer, and every object or array a whole Python object:
``[{}, {}, ...]`` takes 30 times its size (about 100 bytes of objects for each 3 bytes of
text), and pydantic's models of what it checks as much again. The proxy parses a body to check
it against the contract and to match it, so a 10 MiB request of empty objects cost 370 MB.

So a body over :data:`ALWAYS` bytes whose values are that dense (more than one in every
:data:`VALUE_COST` / :data:`MOST_PER_BYTE` bytes, counted by its ``,`` and ``:``) is not
parsed: its check says so, and it is matched by its bytes. Real bodies that large are made of
long strings (a conversation, a document, an image as base64), far below the bound.
"""

from __future__ import annotations

from typing import Final

ALWAYS: Final = 1024 * 1024  # bytes of JSON always parsed, whatever their shape
# Bytes a JSON value costs once parsed and checked, about: its Python object (an empty dict is
# 64 bytes, a short string 50 and up) and pydantic's model of it. Measured: 10 MiB of 90-byte
# messages (one value in 14 bytes) cost 125 MiB (13 times their size) to parse and check.
VALUE_COST: Final = 200
MOST_PER_BYTE: Final = 8  # what parsing may cost, in bytes per byte of the body


def values_in(body: bytes) -> int:
    """About how many values ``body`` holds: one more than its separators (in strings too, so
    never fewer than it holds)."""
    return body.count(b",") + body.count(b":") + 1


def too_dense(body: bytes) -> bool:
    """Whether parsing ``body`` would cost more than :data:`MOST_PER_BYTE` times its size."""
    return len(body) > ALWAYS and values_in(body) * VALUE_COST > MOST_PER_BYTE * len(body)


def not_parsed(body: bytes) -> str:
    """Why ``body`` was not parsed, for a message."""
    return (
        f"{len(body):,} bytes of JSON holding about {values_in(body):,} values, whose parsed "
        f"form would take more than {MOST_PER_BYTE} times its size (over "
        f"{ALWAYS // (1024 * 1024)} MiB, the proxy parses JSON of at most one value in "
        f"{VALUE_COST // MOST_PER_BYTE} bytes)"
    )
