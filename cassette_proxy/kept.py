"""What the request path keeps past a request: JSON bytes of their own length, and caches bounded
in both count and size.

- orjson returns its output in an allocation of about 4 KiB whatever its length (10,000 results
  of 131 bytes held 39 MiB of RSS, measured); a copy holds only its length. Anything kept past
  the request that made it goes through :func:`dumps_kept`.
- A cache of a function of what a client sends (its path, its headers) must not let the client
  fill memory with long values: :func:`remembered` keeps only results for short arguments, so
  it holds at most ``maxsize`` times ``max_chars`` characters of them; longer ones are computed
  each time, as they would be without a cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

R = TypeVar("R")


def dumps_kept(value: Any, option: int | None = None) -> bytes:
    """``orjson.dumps(value, option=option)``, in bytes of their own length."""
    return bytes(bytearray(orjson.dumps(value, option=option)))


def _chars(*args: Any) -> int:
    return sum(len(arg) for arg in args if arg is not None)


def remembered(
    maxsize: int, max_chars: int, size: Callable[..., int] = _chars
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """``functools.lru_cache(maxsize)``, remembering only calls whose arguments ``size`` at most
    ``max_chars`` (by default: strings or bytes, their lengths all together); the least recently
    used is forgotten first."""

    def wrap(function: Callable[..., R]) -> Callable[..., R]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(*args: Any) -> R:
            if size(*args) > max_chars:
                return function(*args)
            return cached(*args)

        call.cache_info = cached.cache_info  # type: ignore[attr-defined]  # for tests
        return call

    return wrap
