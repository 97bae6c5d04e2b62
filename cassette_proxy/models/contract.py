"""The documented contract of ``POST /v1/responses/{response_id}/cancel``.

The source is Yandex AI Studio's API reference for cancelResponse (the "seed"). It has a JSON
skeleton plus field tables, and this module follows it section by section: the 200 ``Response``
(three allOf parts merged into one model), its sub-schemas in the seed's order, every ``tools[]``
and ``output[]`` variant, then the 404 error. Where the seed elides a value (enums, the ``type`` of
each variant, which keys of a nested item are required), the OpenAI spec fills it in, as recorded
in ``shared/reference/responses-api.md`` section 2.3.

How strict the models are:

- Every model is ``strict``, so a wrong JSON type is a validation error (``"12"`` for an integer,
  ``1`` for a boolean). A float field still accepts an integer.
- Every model is ``extra="allow"``. Unknown keys are kept in ``model_extra``, and
  :mod:`cassette_proxy.contract_check` reports them as drift.
- Enums are plain strings marked :class:`KnownValues`. An unlisted value is drift, not an error.
- Each tagged union has an :class:`UnknownVariant` fallback, so an unlisted ``type`` is drift,
  not an error.
- An optional field may be ``null`` only when the seed says "Any of X | null"
  (:data:`Nullable`) or gives the type as ``unknown``. Any other ``null`` is accepted, and
  reported as a warning.
- :class:`Tolerated` marks a requirement that real servers break (``usage`` on a cancelled
  response). Breaking it is a warning.

This module only declares the contract. :mod:`cassette_proxy.contract_check` interprets the markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

# ---------------------------------------------------------------------------------------------
# Markers, base classes and tagged-union plumbing
# ---------------------------------------------------------------------------------------------


class KnownValues:
    """Marks a string as an enum. A value outside ``values`` is drift (a warning), not an error."""

    __slots__ = ("values",)

    def __init__(self, *values: str) -> None:
        self.values = values

    def __repr__(self) -> str:
        return f"KnownValues{self.values!r}"


@dataclass(frozen=True, slots=True)
class DocumentedNull:
    """Marks a field the seed documents as "Any of X | null": ``null`` is part of the contract."""


@dataclass(frozen=True, slots=True)
class Tolerated:
    """A documented requirement that real servers break. Breaking it is a warning, with ``reason``.

    ``required`` means the seed marks the field required, so its absence is reported too.
    """

    reason: str
    required: bool = False


T = TypeVar("T")

Nullable: TypeAlias = Annotated[T | None, DocumentedNull()]
"""The seed's "Any of X | null"."""

Unknown: TypeAlias = Any
"""The seed's ``unknown``: the page does not say, so any JSON value (``null`` included) is fine."""


class ContractModel(BaseModel):
    """Base of every schema: wrong types are errors, unknown keys are kept (and reported)."""

    model_config = ConfigDict(extra="allow", strict=True)


class UnknownVariant(ContractModel):
    """Fallback member of a tagged union: an object whose ``type`` the contract does not list."""

    what: ClassVar[str] = "variant"
    documented: ClassVar[tuple[str, ...]] = ()
    hint: ClassVar[str] = ""  # said instead of the documented list, when that is too long

    type: str


_union_tags: set[str] = set()


def dispatch_on_type(
    fallback: type[UnknownVariant], *members: type[ContractModel]
) -> Callable[[Any], str]:
    """A pydantic ``Discriminator`` callable that routes an object by its ``type`` value.

    Each member is tagged with its class name. The ``type`` values come from the member's
    ``Literal`` annotation, aliases included. Anything else goes to ``fallback``, so an unknown
    type is drift and not a validation error. A value that is not an object also goes to
    ``fallback``, whose validation then reports "expected object".
    """
    table: dict[str, str] = {}
    for member in members:
        for value in get_args(member.model_fields["type"].annotation):
            table[value] = member.__name__
    fallback.documented = tuple(table)
    _union_tags.update(table.values())
    _union_tags.add(fallback.__name__)
    unknown = fallback.__name__

    def tag_of(value: Any) -> str:
        if isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str):
                return table.get(kind, unknown)
        return unknown

    return tag_of


# ---------------------------------------------------------------------------------------------
# Enums the seed elides (reference section 2.3: the OpenAI spec, plus values newer SDKs know)
# ---------------------------------------------------------------------------------------------

ResponseObject = Annotated[str, KnownValues("response")]
ResponseStatus = Annotated[
    str, KnownValues("completed", "failed", "in_progress", "cancelled", "queued", "incomplete")
]
ServiceTier = Annotated[
    str, KnownValues("auto", "default", "flex", "scale", "priority", "fast", "ultrafast")
]
PromptCacheRetention = Annotated[str, KnownValues("in_memory", "24h")]
Truncation = Annotated[str, KnownValues("auto", "disabled")]
ReasoningEffort = Annotated[
    str, KnownValues("none", "minimal", "low", "medium", "high", "xhigh", "max")
]
ReasoningSummary = Annotated[str, KnownValues("auto", "concise", "detailed")]
Verbosity = Annotated[str, KnownValues("low", "medium", "high")]
ToolChoiceMode = Annotated[str, KnownValues("none", "auto", "required")]
ResponseErrorCode = Annotated[
    str,
    KnownValues(
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
        "misalignment_policy_violation",
    ),
]
IncompleteReason = Annotated[
    str, KnownValues("max_output_tokens", "content_filter", "max_messages", "steered")
]
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
# Response (HTTP 200)
# ---------------------------------------------------------------------------------------------


class Response(ContractModel):
    """The 200 body: the cancelled (or already final) Response object."""

    # allOf[0]: model response properties
    metadata: Unknown = None  # [CURRENTLY NOT SUPPORTED]
    top_logprobs: Nullable[int] = None  # "an integer between 0 and 20"
    temperature: Nullable[float] = None  # "between 0 and 1"
    top_p: Nullable[float] = None
    user: Annotated[str | None, Tolerated("real servers send null on cancelled responses")] = None
    safety_identifier: Unknown = None  # [CURRENTLY NOT SUPPORTED]
    prompt_cache_key: Unknown = None  # [CURRENTLY NOT SUPPORTED]
    service_tier: Nullable[ServiceTier] = None  # [CURRENTLY NOT SUPPORTED]
    prompt_cache_retention: Nullable[PromptCacheRetention] = None  # [CURRENTLY NOT SUPPORTED]

    # allOf[1]: response properties
    previous_response_id: Nullable[str] = None
    model: Unknown = None  # "Any of unknown | enum": a model URI such as gpt://<folder>/<model>
    reasoning: Nullable[Reasoning] = None
    background: Nullable[bool] = None
    max_output_tokens: Nullable[int] = None
    max_tool_calls: Nullable[int] = None
    text: ResponseTextParam | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    prompt: Nullable[Prompt] = None
    truncation: Nullable[Truncation] = None  # [CURRENTLY NOT SUPPORTED]

    # allOf[2]: the Response's own fields
    id: str
    object: ResponseObject
    status: ResponseStatus | None = None
    created_at: float
    error: Nullable[ResponseError] = None
    incomplete_details: Nullable[IncompleteDetails] = None
    output: list[OutputItem]
    instructions: Unknown = None  # "Any of unknown | null"
    output_text: Nullable[str] = None
    usage: Annotated[
        ResponseUsage | None,
        Tolerated("real servers omit it or send null on cancelled responses", required=True),
    ] = None
    parallel_tool_calls: bool
    conversation: Nullable[Conversation] = None

    # Named by the top-level field descriptions, though not by the schema
    completed_at: Nullable[float] = None  # "if it was completed"
    store: bool | None = None
    presence_penalty: Nullable[float] = None
    frequency_penalty: Nullable[float] = None


class Reasoning(ContractModel):
    """Reasoning configuration [CURRENTLY NOT SUPPORTED]."""

    effort: Nullable[ReasoningEffort] = None
    summary: Nullable[ReasoningSummary] = None
    generate_summary: Nullable[ReasoningSummary] = None


class ResponseTextParam(ContractModel):
    """Configuration options for a text response: plain text or structured JSON data."""

    format: TextFormat | None = None
    verbosity: Nullable[Verbosity] = None


class ResponseFormatText(ContractModel):
    """Default response format, used to generate text responses."""

    type: Literal["text"]


class TextResponseFormatJsonSchema(ContractModel):
    """JSON Schema response format, used to generate structured JSON responses."""

    type: Literal["json_schema"]
    description: str | None = None
    name: str
    schema_: dict[str, Unknown] = Field(alias="schema")
    strict: Nullable[bool] = None


class ResponseFormatJsonObject(ContractModel):
    """JSON object response format: the older way to generate JSON responses."""

    type: Literal["json_object"]


class UnknownTextFormat(UnknownVariant):
    """A ``text.format`` type the contract does not list."""

    what = "text format"


TextFormat = Annotated[
    Annotated[ResponseFormatText, Tag("ResponseFormatText")]
    | Annotated[TextResponseFormatJsonSchema, Tag("TextResponseFormatJsonSchema")]
    | Annotated[ResponseFormatJsonObject, Tag("ResponseFormatJsonObject")]
    | Annotated[UnknownTextFormat, Tag("UnknownTextFormat")],
    Discriminator(
        dispatch_on_type(
            UnknownTextFormat,
            ResponseFormatText,
            TextResponseFormatJsonSchema,
            ResponseFormatJsonObject,
        )
    ),
]


class ToolChoiceAllowed(ContractModel):
    """Constrains the tools available to the model to a pre-defined set."""

    type: Literal["allowed_tools"]
    mode: Annotated[str, KnownValues("auto", "required")]
    tools: list[dict[str, Unknown]]


class ToolChoiceTypes(ContractModel):
    """The model should use a built-in tool to generate a response."""

    type: Literal[
        "file_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "computer",
        "computer_use",
        "computer_use_preview",
        "image_generation",
        "code_interpreter",
        "programmatic_tool_calling",
    ]


class ToolChoiceFunction(ContractModel):
    """Force the model to call a specific function."""

    type: Literal["function"]
    name: str


class ToolChoiceMCP(ContractModel):
    """Force the model to call a specific tool on a remote MCP server."""

    type: Literal["mcp"]
    server_label: str
    name: Nullable[str] = None


class ToolChoiceCustom(ContractModel):
    """Force the model to call a specific custom tool."""

    type: Literal["custom"]
    name: str


class SpecificApplyPatchParam(ContractModel):
    """Force the model to call the apply_patch tool."""

    type: Literal["apply_patch"]


class SpecificFunctionShellParam(ContractModel):
    """Force the model to call the shell tool."""

    type: Literal["shell"]


class UnknownToolChoice(UnknownVariant):
    """A ``tool_choice`` object whose type the contract does not list."""

    what = "tool_choice type"


_tool_choice_object = dispatch_on_type(
    UnknownToolChoice,
    ToolChoiceAllowed,
    ToolChoiceTypes,
    ToolChoiceFunction,
    ToolChoiceMCP,
    ToolChoiceCustom,
    SpecificApplyPatchParam,
    SpecificFunctionShellParam,
)
_union_tags.add("ToolChoiceMode")


def _tool_choice_tag(value: Any) -> str:
    return "ToolChoiceMode" if isinstance(value, str) else _tool_choice_object(value)


ToolChoice = Annotated[
    Annotated[ToolChoiceMode, Tag("ToolChoiceMode")]
    | Annotated[ToolChoiceAllowed, Tag("ToolChoiceAllowed")]
    | Annotated[ToolChoiceTypes, Tag("ToolChoiceTypes")]
    | Annotated[ToolChoiceFunction, Tag("ToolChoiceFunction")]
    | Annotated[ToolChoiceMCP, Tag("ToolChoiceMCP")]
    | Annotated[ToolChoiceCustom, Tag("ToolChoiceCustom")]
    | Annotated[SpecificApplyPatchParam, Tag("SpecificApplyPatchParam")]
    | Annotated[SpecificFunctionShellParam, Tag("SpecificFunctionShellParam")]
    | Annotated[UnknownToolChoice, Tag("UnknownToolChoice")],
    Discriminator(_tool_choice_tag),
]
"""Any of enum (none, auto, required) | ToolChoiceAllowed | ToolChoiceTypes | ..."""


class Prompt(ContractModel):
    """Prompt0: reference to a prompt template and its variables."""

    id: str
    version: Nullable[str] = None
    variables: Nullable[dict[str, Unknown]] = None


class ResponseError(ContractModel):
    """ResponseError0: the error returned when the model fails to generate a Response."""

    code: ResponseErrorCode
    message: str


class IncompleteDetails(ContractModel):
    """IncompleteDetails0: why the response is incomplete."""

    reason: IncompleteReason | None = None


class InputTokensDetails(ContractModel):
    """A detailed breakdown of the input tokens."""

    cached_tokens: int


class OutputTokensDetails(ContractModel):
    """A detailed breakdown of the output tokens."""

    reasoning_tokens: int


class ResponseUsage(ContractModel):
    """Token usage: input tokens, output tokens, a breakdown of output tokens, and the total."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class Conversation(ContractModel):
    """Conversation-2: the conversation this response belongs to."""

    id: str


# ---------------------------------------------------------------------------------------------
# tools[]: a tool that can be used to generate a response (the seed's 12 variants)
# ---------------------------------------------------------------------------------------------


class FunctionTool(ContractModel):
    """``function``: a function the model may call (the spec requires strict and parameters)."""

    type: Literal["function"]
    name: str
    description: Unknown = None
    parameters: Unknown
    strict: Unknown


class FileSearchRankingHybridSearch(ContractModel):
    """Weights of the embedding and text parts of a hybrid search."""

    embedding_weight: float
    text_weight: float


class FileSearchRankingOptions(ContractModel):
    """Ranking options for file search."""

    ranker: str | None = None
    score_threshold: float | None = None
    hybrid_search: FileSearchRankingHybridSearch | None = None


class FileSearchTool(ContractModel):
    """``file_search``: search uploaded vector stores."""

    type: Literal["file_search"]
    vector_store_ids: list[str]
    max_num_results: int | None = None
    ranking_options: FileSearchRankingOptions | None = None
    filters: Unknown = None


class ComputerUsePreviewTool(ContractModel):
    """``computer_use_preview``: control a virtual computer."""

    type: Literal["computer_use_preview"]
    environment: str
    display_width: int
    display_height: int


class ComputerTool(ContractModel):
    """``computer``: the GA computer tool. It is not in the seed, but the spec lists it."""

    type: Literal["computer"]


class WebSearchTool(ContractModel):
    """``web_search`` (alias ``web_search_2025_08_26``): search the web."""

    type: Literal["web_search", "web_search_2025_08_26"]
    filters: Unknown = None
    user_location: Unknown = None
    search_context_size: str | None = None


class McpTool(ContractModel):
    """``mcp``: tools on a remote MCP server."""

    type: Literal["mcp"]
    server_label: str
    server_url: str | None = None
    connector_id: str | None = None
    authorization: str | None = None
    server_description: str | None = None
    headers: Unknown = None
    allowed_tools: Unknown = None
    require_approval: Unknown = None


class CodeInterpreterTool(ContractModel):
    """``code_interpreter``: run Python code in a container."""

    type: Literal["code_interpreter"]
    container: Unknown


class ImageGenerationInputImageMask(ContractModel):
    """The mask for inpainting: an image URL or a file ID."""

    image_url: str | None = None
    file_id: str | None = None


class ImageGenerationTool(ContractModel):
    """``image_generation``: generate images."""

    type: Literal["image_generation"]
    model: Unknown = None
    quality: str | None = None
    size: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    background: str | None = None
    input_fidelity: Unknown = None
    input_image_mask: ImageGenerationInputImageMask | None = None
    partial_images: int | None = None


class LocalShellTool(ContractModel):
    """``local_shell``: run shell commands locally."""

    type: Literal["local_shell"]


class ShellTool(ContractModel):
    """``shell``: run shell commands."""

    type: Literal["shell"]


class CustomTool(ContractModel):
    """``custom``: a custom tool with free-form or grammar-constrained input."""

    type: Literal["custom"]
    name: str
    description: str | None = None
    format: Unknown = None


class WebSearchPreviewTool(ContractModel):
    """``web_search_preview`` (alias ``web_search_preview_2025_03_11``)."""

    type: Literal["web_search_preview", "web_search_preview_2025_03_11"]
    user_location: Unknown = None
    search_context_size: str | None = None


class ApplyPatchTool(ContractModel):
    """``apply_patch``: create, update and delete files with diffs."""

    type: Literal["apply_patch"]


class UnknownTool(UnknownVariant):
    """A ``tools[]`` type the contract does not list."""

    what = "tool"


Tool = Annotated[
    Annotated[FunctionTool, Tag("FunctionTool")]
    | Annotated[FileSearchTool, Tag("FileSearchTool")]
    | Annotated[ComputerUsePreviewTool, Tag("ComputerUsePreviewTool")]
    | Annotated[ComputerTool, Tag("ComputerTool")]
    | Annotated[WebSearchTool, Tag("WebSearchTool")]
    | Annotated[McpTool, Tag("McpTool")]
    | Annotated[CodeInterpreterTool, Tag("CodeInterpreterTool")]
    | Annotated[ImageGenerationTool, Tag("ImageGenerationTool")]
    | Annotated[LocalShellTool, Tag("LocalShellTool")]
    | Annotated[ShellTool, Tag("ShellTool")]
    | Annotated[CustomTool, Tag("CustomTool")]
    | Annotated[WebSearchPreviewTool, Tag("WebSearchPreviewTool")]
    | Annotated[ApplyPatchTool, Tag("ApplyPatchTool")]
    | Annotated[UnknownTool, Tag("UnknownTool")],
    Discriminator(
        dispatch_on_type(
            UnknownTool,
            FunctionTool,
            FileSearchTool,
            ComputerUsePreviewTool,
            ComputerTool,
            WebSearchTool,
            McpTool,
            CodeInterpreterTool,
            ImageGenerationTool,
            LocalShellTool,
            ShellTool,
            CustomTool,
            WebSearchPreviewTool,
            ApplyPatchTool,
        )
    ),
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


# ---------------------------------------------------------------------------------------------
# Error (HTTP 404): the seed's flat object, or the OpenAI wire envelope around it
# ---------------------------------------------------------------------------------------------


class Error(ContractModel):
    """The flat 404 body: ``{code, message, param, type}``."""

    code: Nullable[str] = None
    message: str
    param: Nullable[str] = None
    type: str


class ErrorEnvelope(ContractModel):
    """``{"error": Error}``: what OpenAI sends and the SDK unwraps (``body.get("error", body)``)."""

    error: Error


_union_tags.update(("ErrorEnvelope", "Error"))


def _error_body_tag(value: Any) -> str:
    return "ErrorEnvelope" if isinstance(value, dict) and "error" in value else "Error"


ErrorBody = Annotated[
    Annotated[ErrorEnvelope, Tag("ErrorEnvelope")] | Annotated[Error, Tag("Error")],
    Discriminator(_error_body_tag),
]
"""The 404 body, in either shape. A body with an ``error`` key is read as the envelope."""


# ---------------------------------------------------------------------------------------------

UNION_TAGS: set[str] = _union_tags
"""Every tag of the tagged unions (here and in modules that declare more). Pydantic puts them in
error locations."""


def _resolve_forward_references() -> None:
    pending: list[type[ContractModel]] = [ContractModel]
    while pending:
        model = pending.pop()
        model.model_rebuild()
        pending.extend(model.__subclasses__())


_resolve_forward_references()
