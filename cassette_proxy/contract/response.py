"""The Response object: what create, retrieve and cancel answer with, and lifecycle events carry.

The source is Yandex AI Studio's API reference for cancelResponse (the "seed"). It has a JSON
skeleton plus field tables, and this module follows it section by section: the ``Response``
(three allOf parts merged into one model) and its sub-schemas in the seed's order. Where the seed
elides a value (enums), the OpenAI spec fills it in, as recorded in ``shared/reference/
responses-api.md`` section 2.3. Its ``tools`` are in :mod:`cassette_proxy.contract.tools`, its
``output`` items in :mod:`cassette_proxy.contract.items`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Discriminator, Field, Tag

from cassette_proxy.contract.base import (
    UNION_TAGS,
    ContractModel,
    KnownValues,
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
    """The Response object, as create, retrieve and cancel answer it and lifecycle events carry
    it. ``model``, ``tools`` and ``tool_choice`` are required by the client, the rest of the
    required fields by the seed."""

    # allOf[0]: model response properties
    metadata: Unknown = None  # [CURRENTLY NOT SUPPORTED]
    top_logprobs: int | None = None  # "an integer between 0 and 20"
    temperature: float | None = None  # "between 0 and 1"
    top_p: float | None = None
    user: str | None = None
    safety_identifier: str | None = None  # [CURRENTLY NOT SUPPORTED]
    prompt_cache_key: str | None = None  # [CURRENTLY NOT SUPPORTED]
    service_tier: ServiceTier | None = None  # [CURRENTLY NOT SUPPORTED]
    prompt_cache_retention: PromptCacheRetention | None = None  # [CURRENTLY NOT SUPPORTED]

    # allOf[1]: response properties
    previous_response_id: str | None = None
    model: str  # "Any of unknown | enum": a model URI such as gpt://<folder>/<model>
    reasoning: Reasoning | None = None
    background: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    text: ResponseTextParam | None = None
    tools: list[Tool]
    tool_choice: ToolChoice
    prompt: Prompt | None = None
    truncation: Truncation | None = None  # [CURRENTLY NOT SUPPORTED]

    # allOf[2]: the Response's own fields
    id: str
    object: ResponseObject
    status: ResponseStatus | None = None
    created_at: float
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    output: list[OutputItem]
    instructions: Unknown = None  # "Any of unknown | null"
    output_text: str | None = None
    usage: Annotated[
        ResponseUsage | None,
        Tolerated(
            "the seed requires it, the openai client does not; real servers omit it or send null"
        ),
    ] = None  # the seed requires it; the client does not
    parallel_tool_calls: bool
    conversation: Conversation | None = None

    # Named by the top-level field descriptions, though not by the schema
    completed_at: float | None = None  # "if it was completed"
    store: bool | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    # Declared by the openai client, not modelled deeper
    access_programs: Unknown = None
    image: Unknown = None
    input_transformations: Unknown = None
    moderation: Unknown = None
    prompt_cache_diagnostics: Unknown = None
    prompt_cache_options: Unknown = None
    tool_usage: Unknown = None


class PendingResponse(Response):
    """A Response that is not finished (``queued``, ``in_progress``, or a status no source knows):
    it has no ``usage`` yet, so its absence is not worth a warning."""

    usage: ResponseUsage | None = None


_FINISHED: Final = frozenset({"completed", "failed", "cancelled", "incomplete"})
UNION_TAGS.update(("Response", "PendingResponse"))


def _by_status(value: Any) -> str:
    status = value.get("status") if isinstance(value, dict) else None
    pending = isinstance(status, str) and status not in _FINISHED
    return "PendingResponse" if pending else "Response"


ResponseBody = Annotated[
    Annotated[Response, Tag("Response")] | Annotated[PendingResponse, Tag("PendingResponse")],
    Discriminator(_by_status),
]
"""A Response, checked as pending or finished by its ``status``."""


class Reasoning(ContractModel):
    """Reasoning configuration [CURRENTLY NOT SUPPORTED]."""

    effort: ReasoningEffort | None = None
    summary: ReasoningSummary | None = None
    generate_summary: ReasoningSummary | None = None
    context: Annotated[str, KnownValues("auto", "current_turn", "all_turns")] | None = None
    mode: str | None = None  # "standard", "pro" or any other (the client's open enum)


class ResponseTextParam(ContractModel):
    """Configuration options for a text response: plain text or structured JSON data."""

    format: TextFormat | None = None
    verbosity: Verbosity | None = None


class ResponseFormatText(ContractModel):
    """Default response format, used to generate text responses."""

    type: Literal["text"]


class TextResponseFormatJsonSchema(ContractModel):
    """JSON Schema response format, used to generate structured JSON responses."""

    type: Literal["json_schema"]
    description: str | None = None
    name: str
    schema_: dict[str, Unknown] = Field(alias="schema")
    strict: bool | None = None


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
    version: str | None = None
    variables: dict[str, Unknown] | None = None


class ResponseError(ContractModel):
    """ResponseError0: the error returned when the model fails to generate a Response."""

    code: ResponseErrorCode
    message: str
    param: str | None = None
    type: str | None = None
    misalignment: Unknown = None


class IncompleteDetails(ContractModel):
    """IncompleteDetails0: why the response is incomplete."""

    reason: IncompleteReason | None = None


class InputTokensDetails(ContractModel):
    """A detailed breakdown of the input tokens."""

    cached_tokens: int
    cache_write_tokens: Annotated[
        int | None,
        Tolerated(
            "the openai client (3.x) requires it; the seed and servers older than prompt-cache "
            "writes do not send it"
        ),
    ] = None
    cache_write_tokens_details: Unknown = None


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
