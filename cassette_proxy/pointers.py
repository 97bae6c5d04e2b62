"""JSON pointers grouped by shape: the same finding at another array index is the same finding."""

from __future__ import annotations

import re
from typing import Final

_INDEX: Final = re.compile(r"/\d+(?=/|$)")


def general_pointer(pointer: str) -> str:
    """``/output/3/content/0/text`` -> ``/output/*/content/*/text``: one group per shape."""
    return _INDEX.sub("/*", pointer)
