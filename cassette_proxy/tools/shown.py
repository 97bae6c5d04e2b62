"""Untrusted text as the offline tools show it: on a terminal, in a page, in JSON.

Logs and cassettes are untrusted input: a field name, an enum value or an event type an upstream
made up is shown by ``audit`` and ``cassette check``. Written as it is, an ESC starts a terminal
sequence (an OSC that sets the window title or a hyperlink), a CR overwrites the line, a line
feed forges one, and a bidirectional control (U+202E) shows the text after it reversed; a
100 KB name widens a page to hundreds of thousands of pixels. So:

- :func:`shown` (text and HTML): control characters (C0, DEL, C1), line and paragraph
  separators, and the invisible format characters that reorder or hide text (bidirectional
  controls, zero-width characters, the byte-order mark) become visible escapes (``\\x1b``,
  ``\\u202e``), and a long value is cut, saying how much was;
- :func:`json_text` (JSON): the same characters, which JSON lets through raw, escaped as
  ``\\uXXXX`` in the serialized document; the values a machine parses are unchanged.
"""

from __future__ import annotations

import re
from typing import Final

NAME: Final = 100  # characters of a name shown (a route, a source, an event type, a code)
TEXT: Final = 1000  # of a longer text (a message, a pointer, a reason)
PATH: Final = 4096  # of a file's path

# What a terminal or a browser would act on, or that hides or reorders the text around it.
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
# The same, less what JSON's encoder escapes itself (C0 controls) and its own layout uses.
_UNSAFE_IN_JSON: Final = re.compile(
    "[\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(value: object, limit: int = NAME) -> str:
    """``value`` as text safe to write to a terminal or into a page: at most ``limit``
    characters of it, each unsafe one as a visible escape."""
    text = str(value)
    if len(text) <= limit and text.isprintable():  # nearly every value: one C call
        return text
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    text = _UNSAFE.sub(_escaped, text)
    return f"{text}… ({cut:,} more characters)" if cut > 0 else text


def json_text(serialized: str) -> str:
    """A serialized JSON document with the characters a terminal could act on escaped as
    ``\\uXXXX``: they can only stand inside its strings, whose values stay as they were."""
    if serialized.isascii():
        return serialized
    return _UNSAFE_IN_JSON.sub(_json_escaped, serialized)


def _json_escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    if code < 0x10000:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON spells these as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
