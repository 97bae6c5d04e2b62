"""The Response object: what create, retrieve and cancel answer with, and lifecycle events carry.

The source is Yandex AI Studio's API reference for cancelResponse (the "seed"). It has a JSON
skeleton plus field tables, and this module follows it section by section: the ``Response``
(three allOf parts merged into one model) and its sub-schemas in the seed's order. Where the seed
elides a value (enums), the OpenAI spec fills it in, as recorded in ``shared/reference/
responses-api.md`` section 2.3. Its ``tools`` are in :mod:`cassette_proxy.contract.tools`, its
``output`` items in :mod:`cassette_proxy.contract.items`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from cassette_proxy.contract.base import (
    ContractModel,
    KnownValues,
    Nullable,
    Tolerated,
    Unknown,
    UnknownVariant,
    dispatch_on_type,
    rebuild_models,
)
from cassette_proxy.contract.items import OutputItem
from cassette_proxy.contract.tools import Tool, ToolChoice

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


rebuild_models(globals())
