"""The pytest plugin's vocabulary: marker, options, ini keys, record modes. Plain constants, so
the entry point pytest loads in every run can register them without importing the proxy."""

from __future__ import annotations

from typing import Final

MARKER: Final = "cassette_proxy"
INI_UPSTREAM: Final = "cassette_proxy_upstream"
INI_RECORD_MODE: Final = "cassette_proxy_record_mode"
INI_MATCH_IGNORE: Final = "cassette_proxy_match_ignore"  # JSON pointers, one a line
KEY_VARIABLE: Final = "CASSETTE_PROXY_UPSTREAM_API_KEY"  # settings.ENV_PREFIX + the key's name
REWRITE: Final = "rewrite"  # delete the cassette, then record it again (new_episodes)
# vcrpy's record modes (settings.RecordMode), and rewrite.
RECORD_MODES: Final = ("once", "new_episodes", "none", "all", REWRITE)
RUN_STARTED_KEY: Final = "cassette_proxy_run_started"  # in pytest-xdist's workerinput
# Options only Python can give (vcrpy's names): the marker and cassette_proxy_config take them
# beside settings.TEST_OPTIONS; functions may also be among match_on's and filter_*'s items.
HOOK_OPTIONS: Final = ("before_record_request", "before_record_response")

# Where a test's option was set, as its hints name it.
BY_MARKER: Final = f"@pytest.mark.{MARKER}"
BY_CONFIG: Final = "the cassette_proxy_config fixture"
BY_COMMAND_LINE: Final = "the command line"
BY_INI: Final = "the ini file"
BY_PROJECT: Final = "[tool.cassette-proxy] in pyproject.toml"
BY_DEFAULT: Final = "the default"
