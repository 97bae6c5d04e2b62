"""The settings object: environment, validation, and the help the CLI shows from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from cassette_proxy.cli import main
from cassette_proxy.cli.serve import flag_of
from cassette_proxy.settings import (
    DEFAULT_MATCH_ON,
    GivenSettings,
    RecordMode,
    Settings,
    ValidationMode,
)


def test_defaults_are_a_safe_pass_through() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.cassette is None
    assert settings.record_mode is RecordMode.ONCE
    assert settings.validation is ValidationMode.WARN
    assert settings.match_on == DEFAULT_MATCH_ON
    assert settings.upstream_base == "https://ai.api.cloud.yandex.net"


def test_every_option_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM", "https://rest-assistant.api.cloud.yandex.net/")
    monkeypatch.setenv("CASSETTE_PROXY_PORT", "0")
    monkeypatch.setenv("CASSETTE_PROXY_CASSETTE", "tape.json")
    monkeypatch.setenv("CASSETTE_PROXY_RECORD_MODE", "new_episodes")
    monkeypatch.setenv("CASSETTE_PROXY_MATCH_ON", "method, path")
    monkeypatch.setenv("CASSETTE_PROXY_ALLOW_PLAYBACK_REPEATS", "true")
    monkeypatch.setenv("CASSETTE_PROXY_VALIDATION", "strict")
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_TIMEOUT", "2.5")
    monkeypatch.setenv("CASSETTE_PROXY_MAX_BODY_SIZE", "1024")
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", "AQVN-secret")
    settings = Settings()
    assert settings.upstream_base == "https://rest-assistant.api.cloud.yandex.net"
    assert settings.port == 0
    assert settings.cassette == Path("tape.json")
    assert settings.record_mode is RecordMode.NEW_EPISODES
    assert settings.match_on == ("method", "path")
    assert settings.allow_playback_repeats is True
    assert settings.validation is ValidationMode.STRICT
    assert settings.upstream_timeout == 2.5
    assert settings.max_body_size == 1024
    assert settings.upstream_api_key is not None
    assert "AQVN-secret" not in repr(settings)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deployment template's KEY= must not make the proxy send "Api-Key " with no key.
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", "")
    monkeypatch.setenv("CASSETTE_PROXY_CASSETTE", "")
    settings = Settings()
    assert settings.upstream_api_key is None
    assert settings.cassette is None


def test_explicit_values_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASSETTE_PROXY_PORT", "9000")
    assert Settings(port=9100).port == 9100


def test_settings_are_immutable() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("match_on", "", "at least one matcher"),
        ("match_on", "method,cookies", "unknown matcher 'cookies'"),
        ("port", 70000, "less than or equal to 65535"),
        ("max_body_size", 0, "greater than 0"),
        ("cassette", "tape.txt", ".yaml, .yml or .json"),
    ],
)
def test_bad_values_are_explained(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})


def test_help_is_the_field_descriptions() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for name, info in Settings.model_fields.items():
        if info.exclude:
            assert "--" + name.replace("_", "-") not in result.output  # secrets: env only
            continue
        assert flag_of(name) in result.output
        assert f"CASSETTE_PROXY_{name.upper()}" in result.output


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ("http://bob:hunter2@127.0.0.1:9", "no credentials in the upstream URL"),
        ("http://127.0.0.1:9/?a=1", "without a query or fragment"),
        ("http://127.0.0.1:9/#top", "without a query or fragment"),
    ],
)
def test_upstream_urls_that_would_leak_or_misroute_are_refused(upstream: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(upstream=upstream)
    assert "hunter2" not in str(refused.value).split("input_value")[0]


def test_an_upstream_path_prefix_is_kept() -> None:
    assert Settings(upstream="http://127.0.0.1:9/prefix/").upstream_base == (
        "http://127.0.0.1:9/prefix"
    )


FAKE_KEY = "AQVN" + "3k9Lr0Xq7Tz2Wb5Hc8Ym1Dn4Fp6Gs9Jv2Kx0Lp"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (FAKE_KEY + "\n", "ends in a newline"),  # a mounted secret, as Kubernetes writes one
        (FAKE_KEY + "\r\n", "ends in a newline"),
        (
            FAKE_KEY[:8] + "\x01" + FAKE_KEY[8:],
            f"character 9 of the key ({len(FAKE_KEY) + 1} characters) is the control character "
            "U+0001",
        ),
        (FAKE_KEY + "\x7f", "the control character U+007F"),
        (FAKE_KEY[:8] + "\n" + FAKE_KEY[8:], "is a line break"),
        (
            "Api-Key " + FAKE_KEY,
            f"character 8 of the key ({len(FAKE_KEY) + 8} characters) is a space",
        ),
        (FAKE_KEY + "é", "is not ASCII"),
    ],
    ids=["newline", "crlf", "control", "del", "inner-newline", "with-scheme", "non-ascii"],
)
def test_a_key_a_header_cannot_carry_stops_start_up_in_one_line_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, key: str, reason: str
) -> None:
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", key)
    with pytest.raises(ValidationError, match=re.escape(reason)) as refused:
        Settings()
    assert FAKE_KEY[4:] not in str(refused.value)

    def started(*_: object) -> None:
        raise AssertionError("the proxy started with a key it cannot send")

    monkeypatch.setattr("cassette_proxy.cli.serve.run", started)
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: invalid value for CASSETTE_PROXY_UPSTREAM_API_KEY: ")
    assert reason in line
    assert FAKE_KEY[4:] not in line  # no part of the key


def test_an_ordinary_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (FAKE_KEY, "t1.9euelZqNk5-Xz8aQk5LJyZqLnJiTmO3rnpWajc2ZyZ6My5fHx8mUmJnPl5Q"):
        monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM_API_KEY", key)
        secret = Settings().upstream_api_key
        assert secret is not None
        assert secret.get_secret_value() == key


def test_help_shows_defaults_as_users_type_them() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click wraps the help text
    assert "default: https://ai.api.cloud.yandex.net]" in text  # no trailing slash
    assert "default: 600]" in text  # --upstream-timeout, not 600.0
    assert "default: 30]" in text  # --shutdown-timeout
    assert "default: off]" in text  # --allow-playback-repeats
    assert "default: None" not in text
    assert "default: False" not in text
    assert "CASSETTE_PROXY_CASSETTE]" in text  # no default to show


@pytest.mark.parametrize(
    ("upstream", "without"),
    [
        ("https://ai.api.cloud.yandex.net/v1", "https://ai.api.cloud.yandex.net"),
        ("https://ai.api.cloud.yandex.net/v1/", "https://ai.api.cloud.yandex.net"),
        ("http://127.0.0.1:9/openai/v1", "http://127.0.0.1:9/openai"),
    ],
)
def test_an_upstream_ending_in_v1_is_refused_with_the_url_to_give(
    upstream: str, without: str
) -> None:
    # Clients' paths start with /v1 already: kept, every request would go to /v1/v1/... (404).
    with pytest.raises(ValidationError, match="ends in /v1") as refused:
        Settings(upstream=upstream)
    assert f"give it without /v1: {without} " in str(refused.value)


def test_an_upstream_path_that_only_looks_like_v1_is_kept() -> None:
    assert Settings(upstream="http://127.0.0.1:9/v10").upstream_base == "http://127.0.0.1:9/v10"
    assert Settings(upstream="http://127.0.0.1:9/v1/x").upstream_base == "http://127.0.0.1:9/v1/x"


def test_given_settings_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASSETTE_PROXY_MATCH_ON", "method,path")
    monkeypatch.setenv("CASSETTE_PROXY_ALLOW_PLAYBACK_REPEATS", "true")
    monkeypatch.setenv("CASSETTE_PROXY_UPSTREAM", "http://127.0.0.1:9")
    settings = GivenSettings(validation="strict")
    assert settings.match_on == DEFAULT_MATCH_ON
    assert settings.allow_playback_repeats is False
    assert settings.upstream_base == "https://ai.api.cloud.yandex.net"
    assert settings.validation is ValidationMode.STRICT


def test_an_upstream_without_a_scheme_says_which_to_add() -> None:
    result = CliRunner().invoke(main, ["serve", "--upstream", "host.example"])
    assert result.exit_code == 2
    assert "needs a scheme: https://host.example" in result.output


def test_repeatable_options_read_commas_from_the_environment_and_lists_from_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASSETTE_PROXY_MATCH_IGNORE", "/metadata/ts, /input/*/id")
    monkeypatch.setenv("CASSETTE_PROXY_MATCH_HEADERS", "X-Tenant")
    monkeypatch.setenv("CASSETTE_PROXY_PLACEHOLDERS", "TEAM=ml-platform,ORDER_ID=o-123")
    monkeypatch.setenv("CASSETTE_PROXY_FILTER_HEADERS", "x-secret,x-keep=KEPT")
    monkeypatch.setenv("CASSETTE_PROXY_FOLDER_PLACEHOLDERS", "false")
    monkeypatch.setenv("CASSETTE_PROXY_RE_RECORD_INTERVAL", "30d")
    settings = Settings()
    assert settings.match_ignore == ("/metadata/ts", "/input/*/id")
    assert settings.match_headers == ("x-tenant",)
    assert settings.placeholders == {"TEAM": "ml-platform", "ORDER_ID": "o-123"}
    assert settings.filter_headers == ("x-secret", "x-keep=KEPT")
    assert settings.folder_placeholders is False
    assert settings.re_record_interval == 30 * 86400
    monkeypatch.setenv("CASSETTE_PROXY_PLACEHOLDERS", '{"TEAM": "a,b"}')  # JSON, for commas
    assert Settings().placeholders == {"TEAM": "a,b"}
    assert Settings(placeholders=("A_1=xyz", "B=uvw=")).placeholders == {"A_1": "xyz", "B": "uvw="}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("match_ignore", ("metadata/ts",), "is not a JSON pointer: it starts with /"),
        ("placeholders", {"team": "ml-platform"}, "must be capital letters"),
        ("placeholders", {"FOLDER_ID": "b1gAAAA"}, "is the folder's own"),
        ("placeholders", {"TEAM": "ml"}, "give at least 3"),
        ("placeholders", ("TEAM",), "placeholder 1 is not NAME=VALUE"),
        ("re_record_interval", "a month", "is not a duration"),
    ],
)
def test_bad_sharing_options_are_explained(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})


def test_placeholder_values_are_never_quoted_by_the_command_line() -> None:
    result = CliRunner().invoke(main, ["serve", "--placeholder", "TEAM=s3"])
    assert result.exit_code == 2
    assert "s3" not in result.output.replace("--placeholder", "")
    assert "give at least 3" in result.output
