"""``output[]``: the items a Response is made of, and the content inside them.

The seed's ``output[]`` variants, in its order; required keys and status enums follow the OpenAI
spec where the seed elides them (reference section 2.3).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Tag

from cassette_proxy.contract.base import (
    ContractModel,
    KnownValues,
    Unknown,
    UnknownVariant,
    dispatch_on_type,
    rebuild_models,
)

Role = Annotated[str, KnownValues("assistant")]
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
ApplyPatchStatus = Annotated[str, KnownValues("in_progress", "completed")]
ApplyPatchOutputStatus = Annotated[str, KnownValues("completed", "failed")]
McpCallStatus = Annotated[
    str, KnownValues("in_progress", "completed", "incomplete", "calling", "failed")
]


# ---------------------------------------------------------------------------------------------
# output[]: message content, annotations and log probabilities
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


Annotation = Annotated[
    Annotated[FileCitation, Tag("FileCitation")]
    | Annotated[UrlCitation, Tag("UrlCitation")]
    | Annotated[ContainerFileCitation, Tag("ContainerFileCitation")]
    | Annotated[FilePath, Tag("FilePath")]
    | Annotated[UnknownAnnotation, Tag("UnknownAnnotation")],
    Discriminator(
        dispatch_on_type(
            UnknownAnnotation, FileCitation, UrlCitation, ContainerFileCitation, FilePath
        )
    ),
]


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


class UnknownContent(UnknownVariant):
    """A message content type the contract does not list."""

    what = "content"


OutputContent = Annotated[
    Annotated[OutputText, Tag("OutputText")]
    | Annotated[Refusal, Tag("Refusal")]
    | Annotated[UnknownContent, Tag("UnknownContent")],
    Discriminator(dispatch_on_type(UnknownContent, OutputText, Refusal)),
]


# ---------------------------------------------------------------------------------------------
# output[]: the items (required keys follow the OpenAI spec, reference section 2.3)
# ---------------------------------------------------------------------------------------------


class OutputMessage(ContractModel):
    """``message``: an output message from the model."""

    id: str
    type: Literal["message"]
    role: Role
    content: list[OutputContent]
    status: ItemStatus


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


class WebSearchSource(ContractModel):
    """A source consulted by a web search."""

    type: Annotated[str, KnownValues("url")]
    url: str


class WebSearchActionSearch(ContractModel):
    """``search``: a web search query."""

    type: Literal["search"]
    query: str | None = None
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


WebSearchAction = Annotated[
    Annotated[WebSearchActionSearch, Tag("WebSearchActionSearch")]
    | Annotated[WebSearchActionOpenPage, Tag("WebSearchActionOpenPage")]
    | Annotated[WebSearchActionFind, Tag("WebSearchActionFind")]
    | Annotated[UnknownWebSearchAction, Tag("UnknownWebSearchAction")],
    Discriminator(
        dispatch_on_type(
            UnknownWebSearchAction,
            WebSearchActionSearch,
            WebSearchActionOpenPage,
            WebSearchActionFind,
        )
    ),
]


class WebSearchCall(ContractModel):
    """``web_search_call``: the results of a web search."""

    id: str
    type: Literal["web_search_call"]
    status: WebSearchStatus
    action: WebSearchAction


class PendingSafetyCheck(ContractModel):
    """A safety check pending for a computer call."""

    id: str
    code: Unknown = None
    message: Unknown = None


class ComputerCall(ContractModel):
    """``computer_call``: a call to the computer use tool."""

    type: Literal["computer_call"]
    id: str
    call_id: str
    action: Unknown = None
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
    encrypted_content: Unknown = None
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
    timeout_ms: Unknown = None
    working_directory: Unknown = None
    env: dict[str, str]
    user: Unknown = None


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
    timeout_ms: Unknown = None
    max_output_length: Unknown = None


class ShellCall(ContractModel):
    """``shell_call``: a call to run shell commands."""

    type: Literal["shell_call"]
    id: str
    call_id: str
    action: ShellAction
    status: ItemStatus
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
    max_output_length: Unknown
    created_by: str | None = None


class ApplyPatchCall(ContractModel):
    """``apply_patch_call``: a file operation for the apply_patch tool."""

    type: Literal["apply_patch_call"]
    id: str
    call_id: str
    status: ApplyPatchStatus
    operation: Unknown
    created_by: str | None = None


class ApplyPatchCallOutput(ContractModel):
    """``apply_patch_call_output``: the result of an apply_patch call."""

    type: Literal["apply_patch_call_output"]
    id: str
    call_id: str
    status: ApplyPatchOutputStatus
    output: Unknown = None
    created_by: str | None = None


class McpCall(ContractModel):
    """``mcp_call``: an invocation of a tool on an MCP server."""

    type: Literal["mcp_call"]
    id: str
    server_label: str
    name: str
    arguments: str
    output: Unknown = None
    error: Unknown = None
    status: McpCallStatus | None = None
    approval_request_id: Unknown = None


class McpToolInfo(ContractModel):
    """A tool available on an MCP server."""

    name: str
    description: Unknown = None
    input_schema: dict[str, Unknown]
    annotations: Unknown = None


class McpListTools(ContractModel):
    """``mcp_list_tools``: the tools available on an MCP server."""

    type: Literal["mcp_list_tools"]
    id: str
    server_label: str
    tools: list[McpToolInfo]
    error: Unknown = None


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


class UnknownOutputItem(UnknownVariant):
    """An output item type the contract does not list."""

    what = "output item"


OutputItem = Annotated[
    Annotated[OutputMessage, Tag("OutputMessage")]
    | Annotated[FileSearchCall, Tag("FileSearchCall")]
    | Annotated[FunctionCall, Tag("FunctionCall")]
    | Annotated[WebSearchCall, Tag("WebSearchCall")]
    | Annotated[ComputerCall, Tag("ComputerCall")]
    | Annotated[ReasoningItem, Tag("ReasoningItem")]
    | Annotated[Compaction, Tag("Compaction")]
    | Annotated[ImageGenerationCall, Tag("ImageGenerationCall")]
    | Annotated[CodeInterpreterCall, Tag("CodeInterpreterCall")]
    | Annotated[LocalShellCall, Tag("LocalShellCall")]
    | Annotated[ShellCall, Tag("ShellCall")]
    | Annotated[ShellCallOutput, Tag("ShellCallOutput")]
    | Annotated[ApplyPatchCall, Tag("ApplyPatchCall")]
    | Annotated[ApplyPatchCallOutput, Tag("ApplyPatchCallOutput")]
    | Annotated[McpCall, Tag("McpCall")]
    | Annotated[McpListTools, Tag("McpListTools")]
    | Annotated[McpApprovalRequest, Tag("McpApprovalRequest")]
    | Annotated[CustomToolCall, Tag("CustomToolCall")]
    | Annotated[UnknownOutputItem, Tag("UnknownOutputItem")],
    Discriminator(
        dispatch_on_type(
            UnknownOutputItem,
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
        )
    ),
]


rebuild_models(globals())
