"""The README stays true to the code it documents: every option `serve` takes is in its Options
table, every option the pytest marker takes is named where the plugin is described, and every
route under /_proxy/ is documented. (Options are declared once, in settings.py; this keeps the
one document that lists them from drifting.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cassette_proxy.cli.serve import CLI_FIELDS, flag_of
from cassette_proxy.serving.app import build_app
from cassette_proxy.settings import TEST_OPTIONS, Settings
from cassette_proxy.testing.names import HOOK_OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


@pytest.mark.parametrize("name", CLI_FIELDS)
def test_every_serve_option_is_in_the_options_table(name: str) -> None:
    assert f"`{flag_of(name)}" in section("Options"), f"{flag_of(name)} is not in README Options"


@pytest.mark.parametrize("name", sorted(TEST_OPTIONS | set(HOOK_OPTIONS)))
def test_every_option_the_plugin_takes_is_named_in_its_section(name: str) -> None:
    assert f"`{name}" in section("Using it in tests") or f"{name}=" in section(
        "Using it in tests"
    ), f"{name} is not named in README's 'Using it in tests'"


def test_every_route_of_the_proxys_own_is_documented() -> None:
    app = build_app(Settings(admin=True, admin_token="a-token-of-sixteen-chars"))
    paths = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = str(info.get("formatter") or info.get("path") or "")
        if path.startswith("/_proxy/") and "{tail" not in path:  # not the catch-all's 404
            paths.add(re.sub(r"\{[^}]*\}", "{id}", path))
    assert {"/_proxy/health", "/_proxy/ready", "/_proxy/cassette"} <= paths
    for path in sorted(paths):
        assert f"`{path}" in README or f" {path}`" in README, f"{path} is not in the README"
