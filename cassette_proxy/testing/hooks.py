"""vcrpy's recording hooks as the pytest plugin takes them: Python, with vcrpy's names, shapes and
meaning, from ``@pytest.mark.cassette_proxy(...)`` or the ``cassette_proxy_config`` fixture.

The plugin runs the proxy in the test's process, so it can take functions, which no command line
or environment can carry:

- ``before_record_request`` and ``before_record_response``: a function or a list of them;
- ``filter_headers``, ``filter_query_parameters`` and ``filter_post_data_parameters``: names, or
  ``(name, replacement)`` pairs whose replacement is text, None (removed), or a function of
  ``(key, value, request)``;
- ``match_on``: matcher names, and functions ``f(r1, r2)`` that raise ``AssertionError`` (or
  return False) when two requests differ.

Whatever is declarative (names, text) goes to the settings, as ``serve``'s flags would give it;
a list with a function in it is kept whole, in its order, for vcrpy's own builder
(:class:`cassette_proxy.store.shaping.RecordFilters`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from cassette_proxy.store.filters import RecordFilters, Replacement
from cassette_proxy.testing.names import HOOK_OPTIONS

FILTERS: Final = ("filter_headers", "filter_query_parameters", "filter_post_data_parameters")


class HookError(ValueError):
    """An option given in a shape vcrpy would not take either."""


def _functions(name: str, given: Any) -> tuple[Callable[..., Any], ...]:
    """``before_record_*``: one function or several, as vcrpy takes them."""
    if given is None:
        return ()
    hooks = tuple(given) if isinstance(given, Iterable) and not isinstance(given, str) else (given,)
    for hook in hooks:
        if not callable(hook):
            raise HookError(f"{name} takes a function or a list of functions, not {hook!r}")
    return hooks


def _replacements(name: str, given: Any) -> tuple[Replacement, ...]:
    if isinstance(given, str) or not isinstance(given, Iterable):
        raise HookError(f"{name} takes a list of names or (name, replacement) pairs")
    items: list[Replacement] = []
    for item in given:
        if isinstance(item, str):
            items.append(item)
        elif isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
            items.append((item[0], item[1]))
        else:
            raise HookError(
                f"{name} takes names or (name, replacement) pairs, not {item!r} (a replacement "
                "is text, None to remove, or a function of key, value and request)"
            )
    return tuple(items)


def _declarative(items: tuple[Replacement, ...]) -> tuple[str, ...] | None:
    """The items as the settings' ``NAME`` / ``NAME=VALUE``, or None if a function is among
    them."""
    declared = []
    for item in items:
        if isinstance(item, str):
            declared.append(item)
        elif item[1] is None:
            declared.append(item[0])
        elif isinstance(item[1], str):
            declared.append(f"{item[0]}={item[1]}")
        else:
            return None
    return tuple(declared)


def split(options: Mapping[str, Any]) -> tuple[dict[str, Any], RecordFilters | None]:
    """The options with the Python left out (for the settings), and the Python (for the
    proxy's filters), or None if there is none. Raises :class:`HookError` for a shape vcrpy
    would refuse too."""
    plain = {name: value for name, value in options.items() if name not in HOOK_OPTIONS}
    python: dict[str, Any] = {
        name: _functions(name, options.get(name)) for name in HOOK_OPTIONS if name in options
    }
    for name in FILTERS:
        if name not in options:
            continue
        items = _replacements(name, options[name])
        declared = _declarative(items)
        if declared is None:
            python[name] = items
            del plain[name]
        else:
            plain[name] = declared
    match_on = options.get("match_on")
    if match_on is not None and not isinstance(match_on, str):
        matchers = list(match_on) if isinstance(match_on, Iterable) else [match_on]
        functions = tuple(m for m in matchers if callable(m))
        names = [m for m in matchers if not callable(m)]
        if functions:
            if not names:
                raise HookError(
                    "match_on has only functions: name at least one matcher beside them "
                    "(such as 'method'), which finds the recordings the functions then judge"
                )
            python["custom_matchers"] = functions
            plain["match_on"] = tuple(names)
    if not python:
        return plain, None
    return plain, RecordFilters(**python)
