"""The Responses API's stream events: what each ``data:`` of a ``text/event-stream`` holds.

Every event is an object with ``type`` and an increasing ``sequence_number``. The six lifecycle
events carry the whole ``response`` (checked with the Response contract); ``error`` comes in the
documented flat shape (``{code, message, param}``) and in the nested shape real servers send and
the ``openai`` client raises on (``{"error": {type, code, message, param}}``). Sources: the OpenAI
spec's ``ResponseStreamEvent`` and the ``openai`` client's ``types/responses`` (reference
``streaming.md`` section 2); Yandex's reference has no streaming page.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Discriminator, Tag, TypeAdapter

from cassette_proxy.contract.base import UNION_TAGS, ContractModel, Nullable, UnknownVariant
from cassette_proxy.contract.errors import Error
from cassette_proxy.contract.response import Response

LIFECYCLE: Final = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.failed",
        "response.incomplete",
    }
)
TERMINAL: Final = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "error"}
)

# Every other event type the spec and the client know, checked for ``type`` and
# ``sequence_number`` (their own fields follow in :data:`StreamEvent`'s members).
OTHER_EVENTS: Final = frozenset(
    {
        "response.audio.delta",
        "response.audio.done",
        "response.audio.transcript.delta",
        "response.audio.transcript.done",
        "response.code_interpreter_call.completed",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.compaction.compacting",
        "response.content_part.added",
        "response.content_part.done",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.file_search_call.completed",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.image_generation_call.completed",
        "response.image_generation_call.generating",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.partial_image",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_list_tools.completed",
        "response.mcp_list_tools.failed",
        "response.mcp_list_tools.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.annotation.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.shell_call_command.added",
        "response.shell_call_command.delta",
        "response.shell_call_command.done",
        "response.shell_call_output_content.delta",
        "response.shell_call_output_content.done",
        "response.web_search_call.completed",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
    }
)


class LifecycleEvent(ContractModel):
    """``response.created`` … ``response.incomplete``: the Response as it stands."""

    type: str
    response: Response
    sequence_number: int


class FlatErrorEvent(ContractModel):
    """``error`` as the spec documents it: ``{type, code, message, param, sequence_number}``."""

    type: Literal["error"]
    code: Nullable[str] = None
    message: str
    param: Nullable[str] = None
    sequence_number: int


class NestedErrorEvent(ContractModel):
    """``error`` as real servers send it, and as the ``openai`` client raises on."""

    type: Literal["error"]
    error: Error
    sequence_number: int


class OtherEvent(ContractModel):
    """A known event whose own fields are not checked (yet): ``type`` and ``sequence_number``."""

    model_config = ConfigDict(extra="ignore")

    type: str
    sequence_number: int


class UnknownEvent(UnknownVariant):
    """An event type neither the spec nor the client lists."""

    what = "event"
    hint = "the Responses API's stream events (reference streaming.md)"

    sequence_number: int  # every event has one, whatever its type


_TAGS: Final = (
    "LifecycleEvent",
    "FlatErrorEvent",
    "NestedErrorEvent",
    "OtherEvent",
    "UnknownEvent",
)
UNION_TAGS.update(_TAGS)


def _event_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in LIFECYCLE:
        return "LifecycleEvent"
    if kind == "error":
        return "NestedErrorEvent" if isinstance(value.get("error"), dict) else "FlatErrorEvent"
    if kind in OTHER_EVENTS:
        return "OtherEvent"
    return "UnknownEvent"


StreamEvent = Annotated[
    Annotated[LifecycleEvent, Tag("LifecycleEvent")]
    | Annotated[FlatErrorEvent, Tag("FlatErrorEvent")]
    | Annotated[NestedErrorEvent, Tag("NestedErrorEvent")]
    | Annotated[OtherEvent, Tag("OtherEvent")]
    | Annotated[UnknownEvent, Tag("UnknownEvent")],
    Discriminator(_event_tag),
]

STREAM_EVENT: Final[TypeAdapter[StreamEvent]] = TypeAdapter(StreamEvent)
KNOWN_EVENTS: Final = LIFECYCLE | {"error"} | OTHER_EVENTS
