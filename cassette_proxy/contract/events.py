"""The Responses API's stream events: what each ``data:`` of a ``text/event-stream`` holds.

Every event is an object with ``type`` and an increasing ``sequence_number``; each type has its
own fields, checked here (pointers like ``/events/12/delta``). The six lifecycle events carry the
whole ``response`` (checked with the Response contract); ``output_item.*`` carry an ``item`` and
``content_part.*`` a ``part`` (checked with the item and content contracts). ``error`` comes in
the documented flat shape (``{code, message, param}``) and in the nested shape real servers send
and the ``openai`` client raises on (``{"error": {type, code, message, param}}``).

Sources: the OpenAI spec's ``ResponseStreamEvent`` and the ``openai`` client's
``types/responses`` (reference ``streaming.md`` section 2); delta events may carry
``obfuscation`` (same section). Yandex's reference has no streaming page. Events with the same
fields share a model, whose ``type`` lists them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias

from pydantic import TypeAdapter

from cassette_proxy.contract.base import (
    ContractModel,
    KnownValues,
    Unknown,
    UnknownVariant,
    dispatch_on_type,
    rebuild_models,
    union_of,
)
from cassette_proxy.contract.errors import Error
from cassette_proxy.contract.items import OutputItem, Part
from cassette_proxy.contract.response import ResponseBody

if TYPE_CHECKING:
    Annotation: TypeAlias = ContractModel
else:
    from cassette_proxy.contract.items import Annotation

LIFECYCLE: Final = (
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.completed",
    "response.failed",
    "response.incomplete",
)
TERMINAL: Final = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "error"}
)


class Event(ContractModel):
    """What every event has."""

    sequence_number: int


class ItemEvent(Event):
    """An event about one output item."""

    item_id: str
    output_index: int


class ContentEvent(ItemEvent):
    """An event about one content part of an output item."""

    content_index: int


# ---------------------------------------------------------------------------------------------
# Lifecycle, items and parts
# ---------------------------------------------------------------------------------------------


class LifecycleEvent(Event):
    """``response.created`` … ``response.incomplete``: the Response as it stands."""

    type: Literal[
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.failed",
        "response.incomplete",
    ]
    response: ResponseBody


class OutputItemEvent(Event):
    """``response.output_item.added`` / ``.done``: an item as it starts and as it ends."""

    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: OutputItem


class ContentPartEvent(ContentEvent):
    """``response.content_part.added`` / ``.done``."""

    type: Literal["response.content_part.added", "response.content_part.done"]
    part: Part


# ---------------------------------------------------------------------------------------------
# Text, refusals and reasoning
# ---------------------------------------------------------------------------------------------


class EventTopLogprob(ContractModel):
    """One of the most likely tokens, as text events carry it (no ``bytes``)."""

    token: str | None = None
    logprob: float | None = None


class EventLogprob(ContractModel):
    """The log probability of one token, as text events carry it (no ``bytes``)."""

    token: str
    logprob: float
    top_logprobs: list[EventTopLogprob] | None = None


class TextDeltaEvent(ContentEvent):
    """``response.output_text.delta``: more text (``logprobs`` required by the spec)."""

    type: Literal["response.output_text.delta"]
    delta: str
    logprobs: list[EventLogprob]
    obfuscation: str | None = None


class TextDoneEvent(ContentEvent):
    """``response.output_text.done``: the whole text of a part."""

    type: Literal["response.output_text.done"]
    text: str
    logprobs: list[EventLogprob]


class AnnotationAddedEvent(ContentEvent):
    """``response.output_text.annotation.added``."""

    type: Literal["response.output_text.annotation.added"]
    annotation_index: int
    annotation: Annotation | None = None


class DeltaEvent(ContentEvent):
    """``response.refusal.delta`` and ``response.reasoning_text.delta``."""

    type: Literal["response.refusal.delta", "response.reasoning_text.delta"]
    delta: str
    obfuscation: str | None = None


class RefusalDoneEvent(ContentEvent):
    """``response.refusal.done``."""

    type: Literal["response.refusal.done"]
    refusal: str


class ReasoningTextDoneEvent(ContentEvent):
    """``response.reasoning_text.done``."""

    type: Literal["response.reasoning_text.done"]
    text: str


class SummaryPart(ContractModel):
    """A part of a reasoning summary, as the summary events carry it."""

    type: Annotated[str, KnownValues("summary_text")]
    text: str


class SummaryPartEvent(ItemEvent):
    """``response.reasoning_summary_part.added`` / ``.done``."""

    type: Literal["response.reasoning_summary_part.added", "response.reasoning_summary_part.done"]
    summary_index: int
    part: SummaryPart
    status: Annotated[str, KnownValues("incomplete")] | None = None


class SummaryTextDeltaEvent(ItemEvent):
    """``response.reasoning_summary_text.delta``."""

    type: Literal["response.reasoning_summary_text.delta"]
    summary_index: int
    delta: str
    obfuscation: str | None = None


class SummaryTextDoneEvent(ItemEvent):
    """``response.reasoning_summary_text.done``."""

    type: Literal["response.reasoning_summary_text.done"]
    summary_index: int
    text: str


# ---------------------------------------------------------------------------------------------
# Tool calls: arguments and input as they stream, then whole
# ---------------------------------------------------------------------------------------------


class ArgumentsDeltaEvent(ItemEvent):
    """More of a call's arguments, code or input."""

    type: Literal[
        "response.function_call_arguments.delta",
        "response.mcp_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.code_interpreter_call_code.delta",
    ]
    delta: str
    obfuscation: str | None = None


class ArgumentsDoneEvent(ItemEvent):
    """``response.function_call_arguments.done`` and ``response.mcp_call_arguments.done``."""

    type: Literal["response.function_call_arguments.done", "response.mcp_call_arguments.done"]
    arguments: str
    name: str | None = None  # the spec's function_call_arguments.done names the function


class CustomInputDoneEvent(ItemEvent):
    """``response.custom_tool_call_input.done``."""

    type: Literal["response.custom_tool_call_input.done"]
    input: str


class CodeDoneEvent(ItemEvent):
    """``response.code_interpreter_call_code.done``."""

    type: Literal["response.code_interpreter_call_code.done"]
    code: str


class ProgressEvent(ItemEvent):
    """A hosted tool's progress: searching, interpreting, generating, done or failed."""

    type: Literal[
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_list_tools.failed",
        "response.compaction.compacting",
    ]


class PartialImageEvent(ItemEvent):
    """``response.image_generation_call.partial_image``: a partial image, base64."""

    type: Literal["response.image_generation_call.partial_image"]
    partial_image_b64: str
    partial_image_index: int
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None


class ShellCommandEvent(Event):
    """``response.shell_call_command.added`` / ``.done``: a whole shell command."""

    type: Literal["response.shell_call_command.added", "response.shell_call_command.done"]
    output_index: int
    command_index: int
    command: str


class ShellCommandDeltaEvent(Event):
    """``response.shell_call_command.delta``."""

    type: Literal["response.shell_call_command.delta"]
    output_index: int
    command_index: int
    delta: str
    obfuscation: str | None = None


class ShellOutputDeltaEvent(ItemEvent):
    """``response.shell_call_output_content.delta``: more stdout or stderr."""

    type: Literal["response.shell_call_output_content.delta"]
    command_index: int
    delta: Unknown


class ShellOutputDoneEvent(ItemEvent):
    """``response.shell_call_output_content.done``."""

    type: Literal["response.shell_call_output_content.done"]
    command_index: int
    output: Unknown


class AudioDeltaEvent(Event):
    """``response.audio.delta`` and ``response.audio.transcript.delta``."""

    type: Literal["response.audio.delta", "response.audio.transcript.delta"]
    delta: str


class AudioDoneEvent(Event):
    """``response.audio.done`` and ``response.audio.transcript.done``."""

    type: Literal["response.audio.done", "response.audio.transcript.done"]


# ---------------------------------------------------------------------------------------------
# error, in both shapes
# ---------------------------------------------------------------------------------------------


class FlatErrorEvent(Event):
    """``error`` as the spec documents it: ``{type, code, message, param, sequence_number}``."""

    type: Literal["error"]
    code: str | None = None
    message: str
    param: str | None = None


class NestedErrorEvent(Event):
    """``error`` as real servers send it, and as the ``openai`` client raises on."""

    type: Literal["error"]
    error: Error


class UnknownEvent(UnknownVariant):
    """An event type neither the spec nor the client lists."""

    what = "event"
    hint = "the Responses API's stream events (reference streaming.md)"

    sequence_number: int  # every event has one, whatever its type


_EVENTS: Final = (
    LifecycleEvent,
    OutputItemEvent,
    ContentPartEvent,
    TextDeltaEvent,
    TextDoneEvent,
    AnnotationAddedEvent,
    DeltaEvent,
    RefusalDoneEvent,
    ReasoningTextDoneEvent,
    SummaryPartEvent,
    SummaryTextDeltaEvent,
    SummaryTextDoneEvent,
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    CustomInputDoneEvent,
    CodeDoneEvent,
    ProgressEvent,
    PartialImageEvent,
    ShellCommandEvent,
    ShellCommandDeltaEvent,
    ShellOutputDeltaEvent,
    ShellOutputDoneEvent,
    AudioDeltaEvent,
    AudioDoneEvent,
    FlatErrorEvent,
)
_by_type = dispatch_on_type(UnknownEvent, *_EVENTS)


def _event_tag(value: Any) -> str:
    if isinstance(value, dict) and value.get("type") == "error":
        return "NestedErrorEvent" if isinstance(value.get("error"), dict) else "FlatErrorEvent"
    return _by_type(value)


if TYPE_CHECKING:
    StreamEvent: TypeAlias = ContractModel
else:
    StreamEvent = union_of((*_EVENTS, NestedErrorEvent, UnknownEvent), _event_tag)

KNOWN_EVENTS: Final = frozenset(UnknownEvent.documented)

rebuild_models(globals())

STREAM_EVENT: Final[TypeAdapter[Any]] = TypeAdapter(StreamEvent)
