"""The create request: the body of ``POST /v1/responses``.

Every parameter the ``openai`` client can send (``ResponseCreateParams``) is known here, so none of
them is drift; the shared objects (``tools``, ``tool_choice``, ``text``, ``reasoning``,
``prompt``) are checked with the same models as the Response that echoes them. ``input`` is text
or a list of items: messages are checked field by field, item references too; the other item types
(a tool call's output sent back, say) are known, their fields not checked here.

``model`` is optional to the client, since a stored ``prompt`` can name one; a request with
neither cannot be served, so :mod:`cassette_proxy.contract.validation` reports it as an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import ConfigDict

from cassette_proxy.contract.base import (
    ContractModel,
    KnownValues,
    Unknown,
    UnknownVariant,
    dispatch_on_type,
    rebuild_models,
    union_of,
)
from cassette_proxy.contract.items import MessageRole, Phase
from cassette_proxy.contract.queries import Includable
from cassette_proxy.contract.response import (
    Prompt,
    PromptCacheRetention,
    Reasoning,
    ResponseTextParam,
    ServiceTier,
    Truncation,
)
from cassette_proxy.contract.tools import Tool, ToolChoice

if TYPE_CHECKING:
    InputContent: TypeAlias = ContractModel
else:
    from cassette_proxy.contract.items import MessageContent as InputContent


class InputMessage(ContractModel):
    """A message in ``input``: ``{role, content}`` (``type: "message"`` optional)."""

    type: Literal["message"] | None = None
    role: MessageRole
    content: str | list[InputContent]
    id: str | None = None
    status: Annotated[str, KnownValues("in_progress", "completed", "incomplete")] | None = None
    phase: Phase | None = None


class ItemReference(ContractModel):
    """``item_reference``: an earlier item, by id."""

    type: Literal["item_reference"] | None = None
    id: str


class OtherInputItem(ContractModel):
    """An input item of a type the client knows (a tool call, or its output sent back): only its
    ``type`` is checked."""

    model_config = ConfigDict(extra="ignore")

    type: Literal[
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "web_search_call",
        "function_call",
        "function_call_output",
        "tool_search_call",
        "tool_search_output",
        "additional_tools",
        "configuration_update",
        "reasoning",
        "compaction",
        "compaction_trigger",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "custom_tool_call_output",
        "custom_tool_call",
        "program",
        "program_output",
    ]


class UnknownInputItem(UnknownVariant):
    """An input item type the contract does not list."""

    what = "input item"


_by_type = dispatch_on_type(UnknownInputItem, InputMessage, ItemReference, OtherInputItem)


def _input_item_tag(value: Any) -> str:
    if isinstance(value, dict) and "type" not in value:
        return "InputMessage" if "role" in value else "ItemReference"
    return _by_type(value)


if TYPE_CHECKING:
    InputItem: TypeAlias = ContractModel
else:
    InputItem = union_of(
        (InputMessage, ItemReference, OtherInputItem, UnknownInputItem), _input_item_tag
    )


class StreamOptions(ContractModel):
    """``stream_options``."""

    include_obfuscation: bool | None = None


class CreateRequest(ContractModel):
    """``POST /v1/responses``: the parameters of a new response."""

    model: str | None = None  # see the module's docstring
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    text: ResponseTextParam | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    background: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: Unknown = None
    metadata: dict[str, str] | None = None
    include: list[Includable] | None = None
    truncation: Truncation | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt: Prompt | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: PromptCacheRetention | None = None
    service_tier: ServiceTier | None = None
    # Declared by the openai client, not modelled deeper
    access_programs: Unknown = None
    background_options: Unknown = None
    context_management: Unknown = None
    image: Unknown = None
    moderation: Unknown = None
    prompt_cache_options: Unknown = None


rebuild_models(globals())
