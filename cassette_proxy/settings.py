"""The one immutable, validated settings object, built at the edge.

The command line and the environment (``CASSETTE_PROXY_<OPTION>``) both feed it; options given on
the command line win. Each field's description is its ``--help`` text.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX: Final = "CASSETTE_PROXY_"

# The matcher names vcrpy knows (vcr/matchers.py) that make sense for a proxy.
MATCHERS: Final = ("method", "scheme", "host", "port", "path", "query", "body", "raw_body", "uri")
DEFAULT_MATCH_ON: Final = ("method", "scheme", "host", "port", "path", "query", "body")

# The options that belong to one cassette rather than to the process: what the pytest plugin
# takes per test (with the upstream and the validation mode, which a test may pin as well).
# Declared here, once; every front end that configures a cassette takes these names.
CASSETTE_OPTIONS: Final = frozenset(
    {
        "cassette",
        "record_mode",
        "match_on",
        "allow_playback_repeats",
        "replay_timing",
        "replay_speed",
    }
)
TEST_OPTIONS: Final = CASSETTE_OPTIONS | {"validation", "upstream"}


class RecordMode(StrEnum):
    """vcrpy's record modes, with vcrpy's meaning."""

    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    NONE = "none"
    ALL = "all"


class ReplayTiming(StrEnum):
    OFF = "off"  # as fast as possible (tests)
    RECORDED = "recorded"  # the recorded time to headers and gaps, divided by --replay-speed


class ValidationMode(StrEnum):
    OFF = "off"
    WARN = "warn"
    STRICT = "strict"


def _described(character: str) -> str:
    if character == " ":
        return "a space"
    if character in "\r\n":
        return "a line break"
    if not character.isascii():
        return "not ASCII"
    return f"the control character U+{ord(character):04X}"


class Settings(BaseSettings):
    """Everything ``cassette-proxy serve`` can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # VAR= in a deployment means "not set", as in most tools
        frozen=True,
        extra="forbid",
        validate_default=True,
        hide_input_in_errors=True,  # a refused CASSETTE_PROXY_UPSTREAM_API_KEY is not quoted
    )

    upstream: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://ai.api.cloud.yandex.net"),
        description="Base URL of the API to forward to (scheme, host, optional port and path"
        " prefix).",
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )
    cassette: Path | None = Field(
        default=None,
        description="Cassette file (.yaml/.yml or .json). Without it the proxy is a pure"
        " pass-through.",
    )
    record_mode: RecordMode = Field(
        default=RecordMode.ONCE,
        description="What to do with the cassette, as in vcrpy: once, new_episodes, none or all.",
    )
    match_on: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_MATCH_ON,
        description="Comma-separated vcrpy matcher names used to find a recorded interaction.",
    )
    allow_playback_repeats: bool = Field(
        default=False,
        description="Serve recorded interactions again once all matching ones have been played.",
    )
    validation: ValidationMode = Field(
        default=ValidationMode.WARN,
        description="off; warn (log violations, pass traffic unchanged); strict (reject them).",
    )
    log_file: Path | None = Field(
        default=None, description="Append the JSON-lines audit log here instead of stdout."
    )
    upstream_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds to wait for the upstream's response headers before answering 504.",
    )
    upstream_idle_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds the upstream may send nothing while a body streams before the"
        " proxy cuts it; a stream that keeps sending is never cut.",
    )
    max_capture_size: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Bytes of each response kept for the log, validation and recording; a larger"
        " one still reaches the client whole, but is not recorded.",
    )
    replay_timing: ReplayTiming = Field(
        default=ReplayTiming.OFF,
        description="off (replay at once) or recorded (the recorded time to headers and gaps"
        " between events).",
    )
    replay_speed: float = Field(
        default=1.0,
        gt=0,
        description="With --replay-timing recorded, divide every recorded delay by this.",
    )
    header_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a client has to send a request's headers, from their first byte"
        " (nginx's client_header_timeout).",
    )
    keepalive_timeout: float = Field(
        default=75.0,
        gt=0,
        description="Seconds an idle keep-alive connection stays open (nginx's keepalive_timeout).",
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request body has, from its headers, before 408; each"
        " --body-min-rate bytes received adds a second (nginx's client_body_timeout, Apache's"
        " MinRate).",
    )
    body_min_rate: int = Field(
        default=500,
        gt=0,
        description="Bytes a second a request body must keep to after --body-timeout; under"
        " --max-connections, a body slower than this gives its connection to a new client.",
    )
    max_connections: int = Field(
        default=1000,
        gt=0,
        description="Open client connections at most; beyond it a new one replaces the oldest"
        " idle one, or gets 503 if all are in a request. Also the upstream pool's size.",
    )
    max_body_size: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest request body in bytes the proxy accepts; larger ones get 413.",
    )
    shutdown_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds SIGTERM/SIGINT wait for in-flight requests; those still running then"
        " are cut, and the cassette is saved.",
    )
    upstream_api_key: SecretStr | None = Field(
        default=None,
        description="Environment only: forward 'Authorization: Api-Key <key>' instead of the"
        " client's.",
        exclude=True,
    )

    @field_validator("match_on", mode="before")
    @classmethod
    def _split_match_on(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("match_on")
    @classmethod
    def _known_matchers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in MATCHERS]
        if unknown:
            raise ValueError(
                f"unknown matcher {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(MATCHERS)}"
            )
        if not value:
            raise ValueError(f"give at least one matcher; choose from {', '.join(MATCHERS)}")
        return value

    @field_validator("upstream_api_key")
    @classmethod
    def _sendable_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A key goes into a header: a trailing newline (a file-mounted secret) or another
        character a header cannot carry stops start-up here, naming neither the key nor a part
        of it, instead of failing every forwarded request."""
        if value is None:
            return None
        key = value.get_secret_value()
        if key.rstrip("\r\n") != key and key.rstrip("\r\n").isprintable():
            raise ValueError(
                "the key ends in a newline, as a secret read from a file often does, and a "
                "header cannot carry one; strip it, e.g. "
                "CASSETTE_PROXY_UPSTREAM_API_KEY=\"$(tr -d '\\r\\n' < /path/to/secret)\""
            )
        for position, character in enumerate(key, start=1):
            if not "!" <= character <= "~":
                raise ValueError(
                    f"character {position} of the key ({len(key)} characters) is "
                    f"{_described(character)}, which an API key does not hold and a header "
                    "cannot carry; set the key alone, in printable ASCII"
                )
        return value

    @field_validator("upstream", mode="before")
    @classmethod
    def _with_a_scheme(cls, value: object) -> object:
        if isinstance(value, str) and value and "://" not in value:
            raise ValueError(
                f"the upstream needs a scheme: https://{value} (or http:// for a local server)"
            )
        return value

    @field_validator("upstream")
    @classmethod
    def _plain_origin(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.username or value.password:
            raise ValueError(
                "put no credentials in the upstream URL (they would show in logs and health); "
                "use CASSETTE_PROXY_UPSTREAM_API_KEY"
            )
        if value.query or value.fragment:
            raise ValueError(
                "the upstream URL takes a scheme, host, port and optional path prefix, "
                "without a query or fragment"
            )
        path = (value.path or "").rstrip("/")
        if path.rsplit("/", 1)[-1] == "v1":
            # Clients' paths already start with /v1 (base_url ends in it): kept, every request
            # would go to /v1/v1/... and get the upstream's 404.
            origin = str(value).removesuffix(value.path or "") + path.removesuffix("/v1")
            raise ValueError(
                "the upstream URL ends in /v1, but clients' paths already start with /v1 "
                f"(their base_url is the proxy's /v1), so requests would go to /v1/v1/...; "
                f"give it without /v1: {origin}"
            )
        return value

    @field_validator("cassette")
    @classmethod
    def _cassette_format(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in {".yaml", ".yml", ".json"}:
            raise ValueError(f"cassette {str(value)!r} must end in .yaml, .yml or .json")
        return value

    @property
    def upstream_base(self) -> str:
        """The upstream URL without a trailing slash, ready to prefix a raw path."""
        return str(self.upstream).rstrip("/")


class GivenSettings(Settings):
    """Settings from the values given only, the environment unread: the pytest plugin's, so
    that a ``CASSETTE_PROXY_*`` variable exported in a shell cannot change a test's outcome (its
    caller passes the one variable tests need, the upstream key, explicitly)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
