"""The one immutable, validated settings object, built at the edge.

The command line and the environment (``CASSETTE_PROXY_<OPTION>``) both feed it; options given on
the command line win. Each field's description is its ``--help`` text.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Self

import orjson
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cassette_proxy import config_file
from cassette_proxy.models.faults import FaultRule

ENV_PREFIX: Final = "CASSETTE_PROXY_"

# The matcher names vcrpy knows (vcr/matchers.py) that make sense for a proxy.
MATCHERS: Final = (
    "method",
    "scheme",
    "host",
    "port",
    "path",
    "query",
    "body",
    "raw_body",
    "uri",
    "headers",
)
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
        # What makes a cassette shareable (store/placeholders.py, matching/ignore.py,
        # store/filters.py) and keeps it clean (store/hygiene.py).
        "match_ignore",
        "match_headers",
        "placeholders",
        "folder_placeholders",
        "filter_headers",
        "filter_query_parameters",
        "filter_post_data_parameters",
        "record_auth_failures",
        "drop_unused_requests",
        "re_record_interval",
        "re_record_action",
    }
)
MIN_ADMIN_TOKEN: Final = 16  # characters: a token guards file writes, so it must not be guessable


class RecordMode(StrEnum):
    """vcrpy's record modes, with vcrpy's meaning."""

    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    NONE = "none"
    ALL = "all"


# The record modes that record whatever the cassette holds ('once' records only a new one).
_ALWAYS_RECORDING: Final = frozenset({RecordMode.ALL, RecordMode.NEW_EPISODES})


def workers_cannot_record(workers: int, why: str) -> str:
    return (
        f"--workers {workers} cannot record ({why}): a cassette has one recorder (its lock, "
        "its journal, its save on stop), so record with one worker and replay with many "
        "(--record-mode none)"
    )


class ReplayTiming(StrEnum):
    OFF = "off"  # as fast as possible (tests)
    RECORDED = "recorded"  # the recorded time to headers and gaps, divided by --replay-speed


class ExpiryAction(StrEnum):
    """What a cassette older than ``--re-record-interval`` does (Polly's ``expiryStrategy``)."""

    WARN = "warn"  # say so, replay it
    FAIL = "fail"  # refuse it, with the command that records it again
    RECORD = "record"  # record it again (record mode all), as Ruby VCR's re_record_interval


class ValidationMode(StrEnum):
    OFF = "off"
    WARN = "warn"
    STRICT = "strict"


class LogBodies(StrEnum):
    """How much of each body a log line shows (a request that sends
    ``x-data-logging-enabled: false`` gets none, whatever this says)."""

    FULL = "full"  # up to 64 KiB, then its first 2 KiB
    HEAD = "head"  # its first 512 bytes
    NONE = "none"  # no body; its size only


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to listen on) reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _described(character: str) -> str:
    if character == " ":
        return "a space"
    if character in "\r\n":
        return "a line break"
    if not character.isascii():
        return "not ASCII"
    return f"the control character U+{ord(character):04X}"


FOLDER_PLACEHOLDER: Final = "FOLDER_ID"  # <FOLDER_ID>, then <FOLDER_ID_2>, ... (placeholders.py)
_PLACEHOLDER_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]*")
MIN_PLACEHOLDER_VALUE: Final = 3  # shorter values would be found all over a body
_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _items(value: object) -> object:
    """A repeatable option: its values as given (the command line gives a tuple), or the
    environment's comma-separated text."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def seconds(value: object) -> object:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d`` or ``2w`` as seconds; anything else as it is."""
    if isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            raise ValueError(
                f"{value!r} is not a duration: give seconds, or a number with s, m, h, d or w "
                "(30d is thirty days)"
            )
        return float(found[1]) * _SECONDS[found[2]]
    return value


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
    log_bodies: LogBodies = Field(
        default=LogBodies.FULL,
        description="Bodies in the log: full (up to 64 KiB), head (the first 512 bytes) or none"
        " (sizes only). A request with x-data-logging-enabled: false is logged without bodies"
        " whatever this says; recording is not affected.",
    )
    instance: str | None = Field(
        default=None,
        description="This proxy's name in every log line and span, so audit can tell sidecars"
        " apart.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Processes serving one port (SO_REUSEPORT); metrics are summed over all of"
        " them. Recording needs one.",
    )
    drain_delay: float = Field(
        default=0.0,
        ge=0,
        description="Seconds after SIGTERM during which /_proxy/ready answers 503 while requests"
        " are still served, before the proxy stops accepting connections.",
    )
    config: Path | None = Field(
        default=None,
        description="TOML file of options (keys are the long option names); flags and"
        " environment variables win over it.",
    )
    admin: bool = Field(
        default=False,
        description="Serve the control API under /_proxy/ (cassettes, exchanges, faults); on a"
        " host other than loopback it needs --admin-token.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the control API requires (prefer the environment variable,"
        " which ps does not show); required with --admin on a host other than loopback.",
    )
    cassette_dir: Path | None = Field(
        default=None,
        description="Folder of per-request cassettes: a request with 'X-Cassette-Proxy-Cassette:"
        " NAME' is recorded to or replayed from DIR/NAME.yaml.",
    )
    faults: Annotated[tuple[FaultRule, ...], NoDecode] = Field(
        default=(),
        description="Fault rules installed at start, as a JSON list (see the README).",
    )
    match_ignore: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="A JSON pointer into request bodies that takes no part in body matching"
        " (/metadata/ts; * is any one key or index: /input/*/id); repeat it for more.",
        json_schema_extra={"repeatable": True},
    )
    match_headers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="A header the headers matcher compares (repeat it for more); without any,"
        " it compares every header, as vcrpy's does.",
        json_schema_extra={"repeatable": True},
    )
    placeholders: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="NAME=VALUE: VALUE is recorded as <NAME>, matched as <NAME> on both sides"
        " and replayed as VALUE (repeat it for more).",
        json_schema_extra={
            "repeatable": True,
            "flag": "placeholder",
            "metavar": "NAME=VALUE",
            "secret": True,  # a placeholder may stand for a secret: errors never quote it
        },
    )
    folder_placeholders: bool = Field(
        default=True,
        description="Record Yandex folder ids (from model URIs such as gpt://<folder>/..., and"
        " the OpenAI-Project and x-folder-id headers) as <FOLDER_ID>, match with it, and"
        " replay the client's own folder in its place.",
    )
    filter_headers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="NAME (removed) or NAME=VALUE (replaced): a request header as recorded"
        " and matched, as vcrpy's filter_headers (repeat it for more).",
        json_schema_extra={"repeatable": True, "metavar": "NAME[=VALUE]"},
    )
    filter_query_parameters: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="NAME or NAME=VALUE: a query parameter as recorded and matched, as vcrpy's"
        " filter_query_parameters (repeat it for more).",
        json_schema_extra={"repeatable": True, "metavar": "NAME[=VALUE]"},
    )
    filter_post_data_parameters: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="NAME or NAME=VALUE: a form or top-level JSON body field as recorded and"
        " matched, as vcrpy's filter_post_data_parameters (repeat it for more).",
        json_schema_extra={"repeatable": True, "metavar": "NAME[=VALUE]"},
    )
    record_auth_failures: bool = Field(
        default=False,
        description="Record the upstream's 401 and 403 answers too (by default they are passed"
        " on but not recorded: a recording of a rejected key fails every replay).",
    )
    drop_unused_requests: bool = Field(
        default=False,
        description="On stop, rewrite the cassette without the loaded interactions that were"
        " never played (vcrpy's drop_unused_requests).",
    )
    re_record_interval: Annotated[float | None, NoDecode] = Field(
        default=None,
        gt=0,
        description="A cassette whose oldest recording is older than this (seconds, or 12h,"
        " 30d) is expired: see --re-record-action.",
        json_schema_extra={"metavar": "DURATION"},
    )
    re_record_action: ExpiryAction = Field(
        default=ExpiryAction.RECORD,
        description="What an expired cassette does: warn (replay it), fail (refuse it), or"
        " record (record it again, in record mode all; in none, it warns).",
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

    @field_validator(
        "match_ignore",
        "match_headers",
        "filter_headers",
        "filter_query_parameters",
        "filter_post_data_parameters",
        mode="before",
    )
    @classmethod
    def _split_items(cls, value: object) -> object:
        return _items(value)

    @field_validator("match_ignore")
    @classmethod
    def _pointers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pointer in value:
            if not pointer.startswith("/"):
                raise ValueError(
                    f"{pointer!r} is not a JSON pointer: it starts with / and names a field by "
                    "its path, such as /metadata/ts or /input/*/id"
                )
        return value

    @field_validator("match_headers")
    @classmethod
    def _header_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name.lower() for name in value)

    @field_validator("placeholders", mode="before")
    @classmethod
    def _named_values(cls, value: object) -> object:
        """``NAME=VALUE`` items (the command line, the environment) or a mapping (the plugin);
        a JSON object in the environment as well."""
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object of names and values ({exc})") from None
        items = _items(value)
        if isinstance(items, tuple | list):
            pairs: dict[str, str] = {}
            for number, item in enumerate(items, start=1):
                name, sep, given = str(item).partition("=")
                if not sep:
                    raise ValueError(
                        f"placeholder {number} is not NAME=VALUE (such as TEAM=ml-platform)"
                    )
                pairs[name.strip()] = given
            return pairs
        return value

    @field_validator("placeholders")
    @classmethod
    def _placeholder_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, given in value.items():
            if not _PLACEHOLDER_NAME.fullmatch(name):
                raise ValueError(
                    f"placeholder name {name!r} must be capital letters, digits and _ (it is "
                    "recorded as <NAME>), such as TEAM or ORDER_ID"
                )
            if name == FOLDER_PLACEHOLDER or name.startswith(FOLDER_PLACEHOLDER + "_"):
                raise ValueError(
                    f"placeholder name {name!r} is the folder's own (folder ids are found and "
                    "replaced by themselves; --no-folder-placeholders turns that off)"
                )
            if len(given) < MIN_PLACEHOLDER_VALUE:
                raise ValueError(
                    f"the value of placeholder {name} has {len(given)} character(s); give at "
                    f"least {MIN_PLACEHOLDER_VALUE}, or it would be found all over every body"
                )
        return value

    @field_validator("re_record_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return seconds(value)

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

    @field_validator("admin_token")
    @classmethod
    def _sendable_token(cls, value: SecretStr | None) -> SecretStr | None:
        """A token travels in a header and guards file writes: printable ASCII, no spaces, and
        long enough not to be guessed. Never quoted."""
        if value is None:
            return None
        token = value.get_secret_value()
        for position, character in enumerate(token, start=1):
            if not "!" <= character <= "~":
                raise ValueError(
                    f"character {position} of the token ({len(token)} characters) is "
                    f"{_described(character)}, which a header cannot carry; use printable "
                    "ASCII without spaces"
                )
        if len(token) < MIN_ADMIN_TOKEN:
            raise ValueError(
                f"the token has {len(token)} characters; use at least {MIN_ADMIN_TOKEN} "
                "(e.g. $(openssl rand -hex 16))"
            )
        return value

    @field_validator("faults", mode="before")
    @classmethod
    def _faults_from_json(cls, value: object) -> object:
        """From the command line or the environment: a JSON list of rules (or one rule)."""
        if isinstance(value, str | bytes):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"not JSON ({exc}); give a list of rules") from exc
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _admin_guarded(self) -> Self:
        if self.admin and self.admin_token is None and not is_loopback(self.host):
            raise ValueError(
                f"--admin on --host {self.host} (not loopback) lets anyone who reaches the port "
                "load cassettes and write files: set CASSETTE_PROXY_ADMIN_TOKEN (or "
                "--admin-token), or listen on 127.0.0.1"
            )
        return self

    @model_validator(mode="after")
    def _workers_can_serve(self) -> Self:
        """Options several workers cannot serve together, whatever the files say (a usage
        error); what depends on files, such as a cassette record mode 'once' would record, is
        refused when the workers start (:mod:`cassette_proxy.serving.process.workers`)."""
        if self.workers < 2:
            return self
        if self.cassette is not None and self.record_mode in _ALWAYS_RECORDING:
            raise ValueError(workers_cannot_record(
                self.workers, f"record mode {self.record_mode.value!r} records"
            ))  # fmt: skip
        if (
            self.cassette is not None
            and self.record_mode is not RecordMode.NONE
            and self.re_record_interval is not None
            and self.re_record_action is ExpiryAction.RECORD
        ):
            raise ValueError(workers_cannot_record(
                self.workers,
                "--re-record-interval with --re-record-action record records the cassette "
                "again once it expires; --re-record-action warn or fail keeps replaying",
            ))  # fmt: skip
        steered = [flag for flag, on in (("--admin", self.admin),
                   ("--cassette-dir", self.cassette_dir is not None)) if on]  # fmt: skip
        if steered:
            raise ValueError(
                f"--workers {self.workers} cannot serve {' and '.join(steered)}: the control "
                "API and per-request cassettes act on the worker a request reaches, not on the "
                "others (a cassette put on one, recorded by one), so steer a proxy with one "
                "worker"
            )
        return self

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

    @field_validator("instance")
    @classmethod
    def _instance_name(cls, value: str | None) -> str:
        """The host name by default; a name fit for a log line and a span attribute."""
        name = socket.gethostname() if value is None else value
        if not name or len(name) > 128 or not name.isprintable() or " " in name:
            raise ValueError(
                "the instance name must be 1 to 128 printable characters without spaces "
                "(such as a host, pod or service name)"
            )
        return name

    @field_validator("cassette")
    @classmethod
    def _cassette_format(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in {".yaml", ".yml", ".json"}:
            raise ValueError(f"cassette {str(value)!r} must end in .yaml, .yml or .json")
        return value

    @field_validator("cassette_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a folder")
        return value

    @property
    def upstream_base(self) -> str:
        """The upstream URL without a trailing slash, ready to prefix a raw path."""
        return str(self.upstream).rstrip("/")

    @property
    def instance_name(self) -> str:
        """The instance's name (set, or the host name: never None once validated)."""
        return self.instance or socket.gethostname()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (given as values), then the environment, then the --config file."""
        return (init_settings, env_settings, ConfigFileSource(settings_cls))


class ConfigFileSource(PydanticBaseSettingsSource):
    """The values of the ``--config`` file (or ``CASSETTE_PROXY_CONFIG``), below flags and the
    environment: the file is named by them, so it is found from what they gave."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config") or os.environ.get(f"{ENV_PREFIX}CONFIG") or None
        if path is None:
            return {}
        return config_file.load(Path(path), self.settings_cls.model_fields)


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


class TestSettings(BaseModel):
    """What only a test can be told: the pytest plugin's options beyond the cassette's (a test
    passes or fails; ``serve`` has no such outcome). Declared here with the rest."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_on_failure: bool = Field(
        default=False,
        description="Keep what a failing test recorded (by default it is not saved: a failing"
        " test's recordings are rarely what a passing one needs).",
    )
    allow_unused: bool = Field(
        default=True,
        description="Let a test pass without playing every interaction of its cassette (Ruby"
        " VCR's allow_unused_http_interactions); False fails it, naming those left unplayed.",
    )


TEST_OPTIONS: Final = (
    CASSETTE_OPTIONS | {"validation", "upstream", "faults"} | set(TestSettings.model_fields)
)


def _secret(name: str) -> bool:
    field = Settings.model_fields[name]
    extra = field.json_schema_extra
    return field.annotation == SecretStr | None or (
        isinstance(extra, dict) and bool(extra.get("secret"))
    )


# Options whose values are never shown: not in an error, not in what the control API answers.
SECRET_OPTIONS: Final = frozenset(name for name in Settings.model_fields if _secret(name))
