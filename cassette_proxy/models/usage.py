"""What a Responses API answer says about itself: which response, which model, how it ended, and
the tokens it used (``usage``). Read from a Response body, or from the terminal event of a stream
(``response.completed`` and the like carry the whole Response).

Model URIs name the folder they are billed to (``gpt://<folder>/yandexgpt/latest``): the folder
is cut off everywhere the model is shown or counted, so a label, a log line or a span says
``yandexgpt/latest`` and no folder id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from cassette_proxy.kept import remembered

MAX_MODEL_CHARS: Final = 100  # of a model name as shown; a longer one is cut
# The types of token a usage counts, as metrics and the log name them.
TOKEN_TYPES: Final = ("input", "cached", "output", "reasoning")
# Statuses after which a Response's usage is final (queued and in_progress have none yet).
FINISHED: Final = frozenset({"completed", "incomplete", "failed", "cancelled"})


def model_name(model: object) -> str | None:
    """``gpt://b1g.../yandexgpt/latest`` as ``yandexgpt/latest``: a model URI without its folder
    (any ``scheme://<folder>/`` prefix); another name as it is. Printable, at most 100 chars."""
    if not isinstance(model, str) or not model:
        return None
    return _shown_model(model)


@remembered(maxsize=256, max_chars=256)  # a service has few models, named on every response
def _shown_model(model: str) -> str | None:
    scheme, separator, rest = model.partition("://")
    if separator and scheme.isalnum():
        folder, _, name = rest.partition("/")
        model = name or ("(unnamed)" if folder else rest)
    shown = model[:MAX_MODEL_CHARS]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else "?" for c in shown)
    return shown or None


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0  # not a bool, not negative


# Slotted, not frozen: built for every response, and a frozen dataclass's __init__ costs several
# times a plain one's. Nothing changes them once built.
@dataclass(slots=True)
class Usage:
    """Token counts as the API reports them: ``input`` includes ``cached``, ``output`` includes
    ``reasoning``."""

    input: int = 0
    cached: int = 0
    output: int = 0
    reasoning: int = 0

    @classmethod
    def of(cls, usage: object) -> Usage | None:
        """From a Response's ``usage`` object (None if it has none)."""
        if not isinstance(usage, dict):
            return None
        given = usage.get("input_tokens_details")
        made = usage.get("output_tokens_details")
        return cls(
            _count(usage.get("input_tokens")),
            _count(given.get("cached_tokens")) if type(given) is dict else 0,
            _count(usage.get("output_tokens")),
            _count(made.get("reasoning_tokens")) if type(made) is dict else 0,
        )

    def by_type(self) -> dict[str, int]:
        """``{"input": ..., "cached": ..., "output": ..., "reasoning": ...}``."""
        return {"input": self.input, "cached": self.cached, "output": self.output,
                "reasoning": self.reasoning}  # fmt: skip


@dataclass(slots=True)
class Answered:
    """A Response as the proxy saw it answered: id, model (folder cut off), status, usage."""

    response_id: str | None
    model: str | None
    status: str | None
    usage: Usage | None
    incomplete_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def finish_reasons(self) -> tuple[str, ...]:
        """The GenAI conventions' finish reasons: ``stop`` for a completed response, the
        ``incomplete_details.reason`` (``max_output_tokens``, ``content_filter``) for an
        incomplete one, else the status."""
        if self.status == "completed":
            return ("stop",)
        if self.status == "incomplete" and self.incomplete_reason:
            return (self.incomplete_reason,)
        return (self.status,) if self.status else ()

    @classmethod
    def of(cls, response: object) -> Answered | None:
        """From a parsed Response object (None if it is not one)."""
        if not isinstance(response, dict) or response.get("object", "response") != "response":
            return None
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        response_id = response.get("id")
        status = response.get("status")
        return cls(
            response_id=response_id if isinstance(response_id, str) else None,
            model=model_name(response.get("model")),
            status=status if isinstance(status, str) else None,
            usage=Usage.of(response.get("usage")),
            incomplete_reason=reason if isinstance(reason, str) else None,
        )

    @classmethod
    def of_event(cls, event: object) -> Answered | None:
        """From a stream's terminal event (``response.completed`` ...), whose ``response`` is
        the whole Response."""
        if not isinstance(event, dict):
            return None
        return cls.of(event.get("response"))

    @classmethod
    def of_body(cls, body: bytes) -> Answered | None:
        """From a JSON body (decoded); None for a body that is not a Response. A body with
        neither ``"response"`` (its ``object``) nor ``"usage"`` is not parsed: error bodies are
        skipped without a parse."""
        if b'"response"' not in body and b'"usage"' not in body:
            return None
        try:
            return cls.of(orjson.loads(body))
        except orjson.JSONDecodeError:
            return None


def requested_model(body: bytes) -> str | None:
    """The ``model`` a create request names (folder cut off), or None."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return model_name(parsed.get("model")) if isinstance(parsed, dict) else None
