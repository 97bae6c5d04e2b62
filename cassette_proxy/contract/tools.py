"""``tools[]`` and ``tool_choice``: the tools a model may use, and how it must choose among them.

Shared by the Response (which echoes them) and the create request (which sets them). Variants
follow the seed's ``tools[]`` (12 schemas) and ``tool_choice`` sections; where the seed leaves a
``type`` out, the OpenAI spec and the ``openai`` client fill it in (reference section 2.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import Discriminator, Field, Tag

from cassette_proxy.contract.base import (
    UNION_TAGS,
    ContractModel,
    KnownValues,
    Unknown,
    UnknownVariant,
    dispatch_on_type,
    rebuild_models,
    tagged_union,
)

ToolChoiceMode = Annotated[str, KnownValues("none", "auto", "required")]

# ---------------------------------------------------------------------------------------------
# tool_choice
# ---------------------------------------------------------------------------------------------


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
    name: str | None = None


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
UNION_TAGS.add("ToolChoiceMode")


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


# ---------------------------------------------------------------------------------------------
# tools[]: a tool that can be used to generate a response (the seed's 12 variants, then the
# client's others)
# ---------------------------------------------------------------------------------------------

Callers = list[Annotated[str, KnownValues("direct", "programmatic")]]
ContextSize = Annotated[str, KnownValues("low", "medium", "high")]


class FunctionTool(ContractModel):
    """``function``: a function the model may call (the spec requires strict and parameters)."""

    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: Unknown
    strict: Unknown
    allowed_callers: Callers | None = None
    async_: bool | None = Field(default=None, alias="async")
    defer_loading: bool | None = None
    output_schema: Unknown = None


class FileSearchRankingHybridSearch(ContractModel):
    """Weights of the embedding and text parts of a hybrid search."""

    embedding_weight: float
    text_weight: float


class FileSearchRankingOptions(ContractModel):
    """Ranking options for file search."""

    ranker: Annotated[str, KnownValues("auto", "default-2024-11-15")] | None = None
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
    environment: Annotated[str, KnownValues("windows", "mac", "linux", "ubuntu", "browser")]
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
    search_context_size: ContextSize | None = None
    external_web_access: bool | None = None


class McpTool(ContractModel):
    """``mcp``: tools on a remote MCP server."""

    type: Literal["mcp"]
    server_label: str
    server_url: str | None = None
    connector_id: (
        Annotated[
            str,
            KnownValues(
                "connector_dropbox",
                "connector_gmail",
                "connector_googlecalendar",
                "connector_googledrive",
                "connector_microsoftteams",
                "connector_outlookcalendar",
                "connector_outlookemail",
                "connector_sharepoint",
            ),
        ]
        | None
    ) = None
    authorization: str | None = None
    server_description: str | None = None
    headers: Unknown = None
    allowed_tools: Unknown = None
    require_approval: Unknown = None
    allowed_callers: Callers | None = None
    defer_loading: bool | None = None
    tunnel_id: str | None = None


class CodeInterpreterTool(ContractModel):
    """``code_interpreter``: run Python code in a container."""

    type: Literal["code_interpreter"]
    container: Unknown
    allowed_callers: Callers | None = None


class ProgrammaticToolCallingTool(ContractModel):
    """``programmatic_tool_calling``: let the model write programs that call tools."""

    type: Literal["programmatic_tool_calling"]


class ImageGenerationInputImageMask(ContractModel):
    """The mask for inpainting: an image URL or a file ID."""

    image_url: str | None = None
    file_id: str | None = None


class ImageGenerationTool(ContractModel):
    """``image_generation``: generate images."""

    type: Literal["image_generation"]
    model: str | None = None
    quality: Annotated[str, KnownValues("low", "medium", "high", "xhigh", "max", "auto")] | None = (
        None
    )
    size: str | None = None
    output_format: Annotated[str, KnownValues("png", "webp", "jpeg", "gif", "svg")] | None = None
    output_compression: int | None = None
    moderation: Annotated[str, KnownValues("auto", "low")] | None = None
    background: Annotated[str, KnownValues("transparent", "opaque", "auto")] | None = None
    input_fidelity: Annotated[str, KnownValues("high", "low")] | None = None
    input_image_mask: ImageGenerationInputImageMask | None = None
    partial_images: int | None = None
    action: Annotated[str, KnownValues("generate", "edit", "auto")] | None = None
    complexity: Annotated[str, KnownValues("low", "medium", "high")] | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    svg: Unknown = None


class LocalShellTool(ContractModel):
    """``local_shell``: run shell commands locally."""

    type: Literal["local_shell"]


class ShellTool(ContractModel):
    """``shell``: run shell commands."""

    type: Literal["shell"]
    allowed_callers: Callers | None = None
    environment: Unknown = None


class CustomTool(ContractModel):
    """``custom``: a custom tool with free-form or grammar-constrained input."""

    type: Literal["custom"]
    name: str
    description: str | None = None
    format: Unknown = None
    allowed_callers: Callers | None = None
    async_: bool | None = Field(default=None, alias="async")
    defer_loading: bool | None = None


class NamespaceTool(ContractModel):
    """``namespace``: a named group of function and custom tools."""

    type: Literal["namespace"]
    name: str
    description: str
    tools: Unknown


class ToolSearchTool(ContractModel):
    """``tool_search``: let the model search for tools."""

    type: Literal["tool_search"]
    description: str | None = None
    execution: Annotated[str, KnownValues("server", "client")] | None = None
    parameters: Unknown = None


class WebSearchPreviewTool(ContractModel):
    """``web_search_preview`` (alias ``web_search_preview_2025_03_11``)."""

    type: Literal["web_search_preview", "web_search_preview_2025_03_11"]
    user_location: Unknown = None
    search_context_size: ContextSize | None = None
    search_content_types: list[Annotated[str, KnownValues("text", "image")]] | None = None


class ApplyPatchTool(ContractModel):
    """``apply_patch``: create, update and delete files with diffs."""

    type: Literal["apply_patch"]
    allowed_callers: Callers | None = None


class UnknownTool(UnknownVariant):
    """A ``tools[]`` type the contract does not list."""

    what = "tool"


if TYPE_CHECKING:
    Tool: TypeAlias = ContractModel
else:
    Tool = tagged_union(
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
        ProgrammaticToolCallingTool,
        NamespaceTool,
        ToolSearchTool,
    )


rebuild_models(globals())
