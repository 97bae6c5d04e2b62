"""Items: what a Response's ``output[]`` holds, what ``input_items`` lists, and their content.

The seed's ``output[]`` variants come first, in its order; the ``openai`` client's other item
types follow. Required keys and status enums follow the OpenAI spec where the seed elides them
(reference section 2.3), plus whatever the client requires. Fields the client declares without a
shape the contract checks (computer actions, tool call results, callers) are :data:`Unknown`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias

from pydantic import Field

from cassette_proxy.contract.base import (
    ContractModel,
    KnownValues,
    Unknown,
    UnknownVariant,
    rebuild_models,
    tagged_union,
)
from cassette_proxy.contract.tools import Tool

ItemStatus = Annotated[str, KnownValues("in_progress", "completed", "incomplete")]
FileSearchStatus = Annotated[
    str, KnownValues("in_progress", "searching", "completed", "incomplete", "failed")
]
WebSearchStatus = Annotated[
    str, KnownValues("in_progress", "searching", "completed", "failed", "incomplete")
]
ImageGenerationStatus = Annotated[
    str, KnownValues("in_progress", "completed", "generating", "failed")
]
CodeInterpreterStatus = Annotated[
    str, KnownValues("in_progress", "completed", "incomplete", "interpreting", "failed")
]
ComputerOutputStatus = Annotated[
    str, KnownValues("completed", "incomplete", "failed", "in_progress")
]
ApplyPatchStatus = Annotated[str, KnownValues("in_progress", "completed")]
ApplyPatchOutputStatus = Annotated[str, KnownValues("completed", "failed")]
ProgramOutputStatus = Annotated[str, KnownValues("completed", "incomplete")]
McpCallStatus = Annotated[
    str, KnownValues("in_progress", "completed", "incomplete", "calling", "failed")
]
Phase = Annotated[str, KnownValues("commentary", "final_answer")]
Execution = Annotated[str, KnownValues("server", "client")]
MessageRole = Annotated[str, KnownValues("user", "assistant", "system", "developer")]


# ---------------------------------------------------------------------------------------------
# Message content: output text, refusals, annotations, log probabilities, and input parts
# ---------------------------------------------------------------------------------------------


class FileCitation(ContractModel):
    """``file_citation``: a citation to a file."""

    type: Literal["file_citation"]
    file_id: str
    index: int
    filename: str


class UrlCitation(ContractModel):
    """``url_citation``: a citation to a web resource."""

    type: Literal["url_citation"]
    url: str
    start_index: int
    end_index: int
    title: str


class ContainerFileCitation(ContractModel):
    """``container_file_citation``: a citation to a file in a container."""

    type: Literal["container_file_citation"]
    container_id: str
    file_id: str
    start_index: int
    end_index: int
    filename: str


class FilePath(ContractModel):
    """``file_path``: a path to a file."""

    type: Literal["file_path"]
    file_id: str
    index: int


class UnknownAnnotation(UnknownVariant):
    """An annotation type the contract does not list."""

    what = "annotation"


class TopLogprob(ContractModel):
    """One of the most likely tokens at a position."""

    token: str
    logprob: float
    bytes: list[int]


class Logprob(ContractModel):
    """The log probability of one output token."""

    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class OutputText(ContractModel):
    """``output_text``: text output from the model. ``logprobs`` is optional in practice."""

    type: Literal["output_text"]
    text: str
    annotations: list[Annotation]
    logprobs: list[Logprob] | None = None


class Refusal(ContractModel):
    """``refusal``: a refusal from the model."""

    type: Literal["refusal"]
    refusal: str


class ReasoningTextPart(ContractModel):
    """``reasoning_text``: reasoning text, as a content part of a stream's reasoning item."""

    type: Literal["reasoning_text"]
    text: str


class InputText(ContractModel):
    """``input_text``: text the user (or developer) sent."""

    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: Unknown = None


class InputImage(ContractModel):
    """``input_image``: an image sent as input, by URL or file id."""

    type: Literal["input_image"]
    detail: Annotated[str, KnownValues("low", "high", "auto", "original")]
    file_id: str | None = None
    image_url: str | None = None
    prompt_cache_breakpoint: Unknown = None


class InputFile(ContractModel):
    """``input_file``: a file sent as input."""

    type: Literal["input_file"]
    detail: Annotated[str, KnownValues("auto", "low", "high")] | None = None
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None
    prompt_cache_breakpoint: Unknown = None


class UnknownContent(UnknownVariant):
    """A message content type the contract does not list."""

    what = "content"


if TYPE_CHECKING:
    Annotation: TypeAlias = ContractModel
    OutputContent: TypeAlias = ContractModel
    Part: TypeAlias = ContractModel
    MessageContent: TypeAlias = ContractModel
else:
    Annotation = tagged_union(
        UnknownAnnotation, FileCitation, UrlCitation, ContainerFileCitation, FilePath
    )
    OutputContent = tagged_union(UnknownContent, OutputText, Refusal)
    Part = tagged_union(UnknownContent, OutputText, Refusal, ReasoningTextPart)
    """A content part as stream events carry it."""
    MessageContent = tagged_union(
        UnknownContent, InputText, InputImage, InputFile, OutputText, Refusal
    )
    """The content of a listed message: input parts (user) or output parts (assistant)."""


# ---------------------------------------------------------------------------------------------
# The seed's output[] items
# ---------------------------------------------------------------------------------------------


class OutputMessage(ContractModel):
    """``message``: an output message from the model."""

    id: str
    type: Literal["message"]
    role: Annotated[str, KnownValues("assistant")]
    content: list[OutputContent]
    status: ItemStatus
    phase: Phase | None = None


class FileSearchCall(ContractModel):
    """``file_search_call``: the results of a file search."""

    id: str
    type: Literal["file_search_call"]
    status: FileSearchStatus
    queries: list[str]
    results: Unknown = None


class FunctionCall(ContractModel):
    """``function_call``: a call to a function the model asked for."""

    id: str | None = None
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    status: ItemStatus | None = None
    async_: bool | None = Field(default=None, alias="async")
    caller: Unknown = None
    namespace: str | None = None


class WebSearchSource(ContractModel):
    """A source consulted by a web search."""

    type: Annotated[str, KnownValues("url")]
    url: str


class WebSearchActionSearch(ContractModel):
    """``search``: a web search query."""

    type: Literal["search"]
    query: str | None = None
    queries: list[str] | None = None
    sources: list[WebSearchSource] | None = None


class WebSearchActionOpenPage(ContractModel):
    """``open_page``: open a page found by the search."""

    type: Literal["open_page"]
    url: str | None = None


class WebSearchActionFind(ContractModel):
    """``find_in_page`` (older name ``find``): search for a pattern in a loaded page."""

    type: Literal["find_in_page", "find"]
    url: str
    pattern: str


class UnknownWebSearchAction(UnknownVariant):
    """A web search action type the contract does not list."""

    what = "web search action"


if TYPE_CHECKING:
    WebSearchAction: TypeAlias = ContractModel
else:
    WebSearchAction = tagged_union(
        UnknownWebSearchAction,
        WebSearchActionSearch,
        WebSearchActionOpenPage,
        WebSearchActionFind,
    )


class WebSearchCall(ContractModel):
    """``web_search_call``: the results of a web search."""

    id: str
    type: Literal["web_search_call"]
    status: WebSearchStatus
    action: WebSearchAction


class PendingSafetyCheck(ContractModel):
    """A safety check pending for a computer call."""

    id: str
    code: str | None = None
    message: str | None = None


class ComputerCall(ContractModel):
    """``computer_call``: a call to the computer use tool."""

    type: Literal["computer_call"]
    id: str
    call_id: str
    action: Unknown = None
    actions: Unknown = None
    pending_safety_checks: list[PendingSafetyCheck]
    status: ItemStatus


class ReasoningSummaryText(ContractModel):
    """One part of a reasoning summary."""

    type: Annotated[str, KnownValues("summary_text")]
    text: str


class ReasoningText(ContractModel):
    """Reasoning text content."""

    type: Annotated[str, KnownValues("reasoning_text")]
    text: str


class ReasoningItem(ContractModel):
    """``reasoning``: the model's chain of thought, summarised."""

    type: Literal["reasoning"]
    id: str
    encrypted_content: str | None = None
    summary: list[ReasoningSummaryText]
    content: list[ReasoningText] | None = None
    status: ItemStatus | None = None


class Compaction(ContractModel):
    """``compaction``: compacted (encrypted) context."""

    type: Literal["compaction"]
    id: str
    encrypted_content: str
    created_by: str | None = None


class ImageGenerationCall(ContractModel):
    """``image_generation_call``: an image generation request."""

    type: Literal["image_generation_call"]
    id: str
    status: ImageGenerationStatus
    result: Unknown
    action: Annotated[str, KnownValues("generate", "edit", "auto")] | None = None
    background: Annotated[str, KnownValues("transparent", "opaque", "auto")] | None = None
    error: Unknown = None
    output_format: Annotated[str, KnownValues("png", "webp", "jpeg", "gif", "svg")] | None = None
    quality: Annotated[str, KnownValues("low", "medium", "high", "xhigh", "max", "auto")] | None = (
        None
    )
    revised_prompt: str | None = None
    size: str | None = None
    svg_usage: Unknown = None


class CodeInterpreterCall(ContractModel):
    """``code_interpreter_call``: a code interpreter run."""

    type: Literal["code_interpreter_call"]
    id: str
    status: CodeInterpreterStatus
    container_id: str
    code: Unknown
    outputs: Unknown


class LocalShellAction(ContractModel):
    """A command to execute on the local shell."""

    type: Annotated[str, KnownValues("exec")]
    command: list[str]
    timeout_ms: int | None = None
    working_directory: str | None = None
    env: dict[str, str]
    user: str | None = None


class LocalShellCall(ContractModel):
    """``local_shell_call``: a call to run a command on the local shell."""

    type: Literal["local_shell_call"]
    id: str
    call_id: str
    action: LocalShellAction
    status: ItemStatus


class ShellAction(ContractModel):
    """The commands of a shell call."""

    commands: list[str]
    timeout_ms: int | None = None
    max_output_length: int | None = None


class ShellCall(ContractModel):
    """``shell_call``: a call to run shell commands."""

    type: Literal["shell_call"]
    id: str
    call_id: str
    action: ShellAction
    status: ItemStatus
    environment: Unknown = None
    caller: Unknown = None
    created_by: str | None = None


class ShellCallOutputChunk(ContractModel):
    """The output of one shell command."""

    stdout: str
    stderr: str
    outcome: Unknown
    created_by: str | None = None


class ShellCallOutput(ContractModel):
    """``shell_call_output``: the output of a shell call."""

    type: Literal["shell_call_output"]
    id: str
    call_id: str
    output: list[ShellCallOutputChunk]
    status: ItemStatus
    max_output_length: int | None = None
    caller: Unknown = None
    created_by: str | None = None


class ApplyPatchCall(ContractModel):
    """``apply_patch_call``: a file operation for the apply_patch tool."""

    type: Literal["apply_patch_call"]
    id: str
    call_id: str
    status: ApplyPatchStatus
    operation: Unknown
    caller: Unknown = None
    created_by: str | None = None


class ApplyPatchCallOutput(ContractModel):
    """``apply_patch_call_output``: the result of an apply_patch call."""

    type: Literal["apply_patch_call_output"]
    id: str
    call_id: str
    status: ApplyPatchOutputStatus
    output: str | None = None
    caller: Unknown = None
    created_by: str | None = None


class McpCall(ContractModel):
    """``mcp_call``: an invocation of a tool on an MCP server."""

    type: Literal["mcp_call"]
    id: str
    server_label: str
    name: str
    arguments: str
    output: str | None = None
    error: Unknown = None
    status: McpCallStatus | None = None
    approval_request_id: str | None = None


class McpToolInfo(ContractModel):
    """A tool available on an MCP server."""

    name: str
    description: str | None = None
    input_schema: Unknown
    annotations: Unknown = None


class McpListTools(ContractModel):
    """``mcp_list_tools``: the tools available on an MCP server."""

    type: Literal["mcp_list_tools"]
    id: str
    server_label: str
    tools: list[McpToolInfo]
    error: str | None = None


class McpApprovalRequest(ContractModel):
    """``mcp_approval_request``: a request for human approval of a tool invocation."""

    type: Literal["mcp_approval_request"]
    id: str
    server_label: str
    name: str
    arguments: str


class CustomToolCall(ContractModel):
    """``custom_tool_call``: a call to a custom tool."""

    type: Literal["custom_tool_call"]
    id: str | None = None
    call_id: str
    name: str
    input: str
    async_: bool | None = Field(default=None, alias="async")
    caller: Unknown = None
    namespace: str | None = None


# ---------------------------------------------------------------------------------------------
# The client's other output[] items (not in the seed; named by the spec, reference 2.3)
# ---------------------------------------------------------------------------------------------


class FunctionCallOutput(ContractModel):
    """``function_call_output``: what a function call returned."""

    type: Literal["function_call_output"]
    id: str
    call_id: str | None = None
    output: Unknown  # a string, or a list of input parts
    status: ItemStatus
    caller: Unknown = None
    created_by: str | None = None
    name: str | None = None
    namespace: str | None = None


class ComputerCallOutput(ContractModel):
    """``computer_call_output``: a screenshot after a computer call."""

    type: Literal["computer_call_output"]
    id: str
    call_id: str
    output: Unknown
    status: ComputerOutputStatus
    acknowledged_safety_checks: Unknown = None
    created_by: str | None = None


class Program(ContractModel):
    """``program``: a program written for programmatic tool calling."""

    type: Literal["program"]
    id: str
    call_id: str
    code: str
    fingerprint: str


class ProgramOutput(ContractModel):
    """``program_output``: what a program returned."""

    type: Literal["program_output"]
    id: str
    call_id: str
    result: str
    status: ProgramOutputStatus


class ToolSearchCall(ContractModel):
    """``tool_search_call``: a search for tools."""

    type: Literal["tool_search_call"]
    id: str
    arguments: Unknown
    call_id: str | None = None
    execution: Execution
    status: ItemStatus
    created_by: str | None = None


class ToolSearchOutput(ContractModel):
    """``tool_search_output``: the tools a tool search found."""

    type: Literal["tool_search_output"]
    id: str
    call_id: str | None = None
    execution: Execution
    status: ItemStatus
    tools: list[Tool]
    created_by: str | None = None


class AdditionalTools(ContractModel):
    """``additional_tools``: tools added to the conversation."""

    type: Literal["additional_tools"]
    id: str
    role: Annotated[
        str,
        KnownValues(
            "unknown",
            "user",
            "assistant",
            "system",
            "critic",
            "discriminator",
            "developer",
            "tool",
        ),
    ]
    tools: list[Tool]


class LocalShellCallOutput(ContractModel):
    """``local_shell_call_output``: the output of a local shell call."""

    type: Literal["local_shell_call_output"]
    id: str
    output: str
    status: ItemStatus | None = None


class McpApprovalResponse(ContractModel):
    """``mcp_approval_response``: a human's answer to an approval request."""

    type: Literal["mcp_approval_response"]
    id: str
    approval_request_id: str
    approve: bool
    reason: str | None = None


class CustomToolCallOutput(ContractModel):
    """``custom_tool_call_output``: what a custom tool call returned."""

    type: Literal["custom_tool_call_output"]
    id: str
    call_id: str
    output: Unknown  # a string, or a list of input parts
    status: ItemStatus
    caller: Unknown = None
    created_by: str | None = None


class UnknownOutputItem(UnknownVariant):
    """An output item type the contract does not list."""

    what = "output item"


_OUTPUT_ITEMS = (
    OutputMessage,
    FileSearchCall,
    FunctionCall,
    WebSearchCall,
    ComputerCall,
    ReasoningItem,
    Compaction,
    ImageGenerationCall,
    CodeInterpreterCall,
    LocalShellCall,
    ShellCall,
    ShellCallOutput,
    ApplyPatchCall,
    ApplyPatchCallOutput,
    McpCall,
    McpListTools,
    McpApprovalRequest,
    CustomToolCall,
    FunctionCallOutput,
    ComputerCallOutput,
    Program,
    ProgramOutput,
    ToolSearchCall,
    ToolSearchOutput,
    AdditionalTools,
    LocalShellCallOutput,
    McpApprovalResponse,
    CustomToolCallOutput,
)


# ---------------------------------------------------------------------------------------------
# Items as input_items lists them: messages from either side, and ids and statuses always set
# ---------------------------------------------------------------------------------------------


class ListedMessage(ContractModel):
    """``message`` in a list of input items: the user's input or the model's output."""

    id: str
    type: Literal["message"]
    role: MessageRole
    content: list[MessageContent]
    status: ItemStatus | None = None
    phase: Phase | None = None


class ListedFunctionCall(FunctionCall):
    """``function_call`` as stored: with its ``id`` and ``status``."""

    id: str
    status: ItemStatus
    created_by: str | None = None


class ListedCustomToolCall(CustomToolCall):
    """``custom_tool_call`` as stored: with its ``id`` and ``status``."""

    id: str
    status: ItemStatus
    created_by: str | None = None


class ConfigurationUpdate(ContractModel):
    """``configuration_update``: a change of reasoning or text settings between turns."""

    type: Literal["configuration_update"]
    id: str
    reasoning: Unknown = None
    text: Unknown = None


class UnknownListedItem(UnknownVariant):
    """An input item type the contract does not list."""

    what = "input item"


_LISTED_ONLY = {
    OutputMessage: ListedMessage,
    FunctionCall: ListedFunctionCall,
    CustomToolCall: ListedCustomToolCall,
}

if TYPE_CHECKING:
    OutputItem: TypeAlias = ContractModel
    ListedItem: TypeAlias = ContractModel
else:
    OutputItem = tagged_union(UnknownOutputItem, *_OUTPUT_ITEMS)
    ListedItem = tagged_union(
        UnknownListedItem,
        *(_LISTED_ONLY.get(item, item) for item in _OUTPUT_ITEMS),
        ConfigurationUpdate,
    )

rebuild_models(globals())
