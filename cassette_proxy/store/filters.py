"""vcrpy's recording hooks, with vcrpy's names, shapes and meaning, for the proxy.

``filter_headers``, ``filter_query_parameters`` and ``filter_post_data_parameters`` are names, or
``(name, replacement)`` pairs whose replacement is text, None (removed) or a function of
``(key, value, request)``; ``before_record_request`` and ``before_record_response`` are
functions; custom matchers are functions in ``match_on``. ``serve`` declares the first three
(``--filter-headers NAME[=VALUE]``); the pytest plugin also takes functions
(:mod:`cassette_proxy.testing.hooks`). They are composed by vcrpy's own ``VCR`` builders, so
each does exactly what it does under vcrpy: :mod:`cassette_proxy.store.shaping` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from vcr.config import VCR
from vcr.request import Request as VcrRequest

from cassette_proxy.errors import HookFailed
from cassette_proxy.matching.matchers import CustomMatcher
from cassette_proxy.settings import Settings

# vcrpy's shapes: a name, or (name, replacement) where the replacement is text, None (remove),
# or a function of (key, value, request).
Replacement = str | tuple[str, Any]
RequestHook = Callable[[VcrRequest], VcrRequest | None]
ResponseHook = Callable[[dict[str, Any]], dict[str, Any] | None]


def declared(items: Iterable[str]) -> tuple[Replacement, ...]:
    """The settings' ``NAME`` and ``NAME=VALUE`` as vcrpy's ``name`` and ``(name, value)``."""
    shaped: list[Replacement] = []
    for item in items:
        name, sep, value = item.partition("=")
        shaped.append((name, value) if sep else name)
    return tuple(shaped)


@dataclass(frozen=True)
class RecordFilters:
    """vcrpy's recording hooks, with vcrpy's names and meaning. The declarative ones come from
    the settings (``serve``, the environment, the plugin's options); functions only from the
    pytest plugin, which runs the proxy in the test's process."""

    filter_headers: tuple[Replacement, ...] = ()
    filter_query_parameters: tuple[Replacement, ...] = ()
    filter_post_data_parameters: tuple[Replacement, ...] = ()
    before_record_request: tuple[RequestHook, ...] = ()
    before_record_response: tuple[ResponseHook, ...] = ()
    custom_matchers: tuple[CustomMatcher, ...] = ()  # functions in match_on

    @classmethod
    def of(cls, settings: Settings, given: RecordFilters | None = None) -> RecordFilters:
        """The settings' filters; where ``given`` (the plugin's) has a list, it wins."""
        given = given or cls()
        return cls(
            given.filter_headers or declared(settings.filter_headers),
            given.filter_query_parameters or declared(settings.filter_query_parameters),
            given.filter_post_data_parameters or declared(settings.filter_post_data_parameters),
            given.before_record_request,
            given.before_record_response,
            given.custom_matchers,
        )

    @property
    def changes_requests(self) -> bool:
        return bool(
            self.filter_headers
            or self.filter_query_parameters
            or self.filter_post_data_parameters
            or self.before_record_request
        )

    def has_functions(self) -> bool:
        """Whether any of them is the user's code, which may read anything of a request (so
        a lookup cannot be remembered by the request's method, path and body)."""
        replaced = (
            *self.filter_headers,
            *self.filter_query_parameters,
            *self.filter_post_data_parameters,
        )
        return bool(
            self.before_record_request
            or self.custom_matchers
            or any(isinstance(r, tuple) and callable(r[1]) for r in replaced)
        )

    def request_hook(self) -> RequestHook | None:
        if not self.changes_requests:
            return None
        options: dict[str, Any] = {
            "filter_headers": self.filter_headers,
            "filter_query_parameters": self.filter_query_parameters,
            "filter_post_data_parameters": self.filter_post_data_parameters,
            "before_record_request": self.before_record_request,
        }
        hook: RequestHook = VCR()._build_before_record_request(options)
        answerable: RequestHook = _answerable(
            hook,
            "before_record_request hook (or a filter_* option's function)",
            "the request was neither forwarded nor recorded",
        )
        return answerable

    def response_hook(self) -> ResponseHook | None:
        if not self.before_record_response:
            return None
        hook: ResponseHook = VCR()._build_before_record_response(
            {"before_record_response": self.before_record_response}
        )
        answerable: ResponseHook = _answerable(
            hook, "before_record_response hook", "the upstream's answer was not recorded"
        )
        return answerable


def _answerable(hook: Callable[[Any], Any], what: str, consequence: str) -> Callable[[Any], Any]:
    """``hook``, its exceptions raised as :class:`HookFailed`: the client's answer, the log
    line and the test's report say whose error it is and where it was raised."""

    def call(value: Any) -> Any:
        try:
            return hook(value)
        except Exception as exc:
            raise HookFailed(what, exc, consequence) from exc

    return call
