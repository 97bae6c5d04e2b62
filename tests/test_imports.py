"""What each entry point imports: the pytest plugin and the command line pay only for what they
use (issue 20). Each check runs in a fresh interpreter, so nothing imported by this test run
hides an import; no check is timed (`./scripts/bench` times them)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

import cassette_proxy
from cassette_proxy import cli
from cassette_proxy.settings import (
    CASSETTE_OPTIONS,
    TEST_OPTIONS,
    RecordMode,
    Settings,
    TestSettings,
)
from cassette_proxy.testing.names import KEY_VARIABLE, RECORD_MODES, REWRITE

# The libraries the proxy's request path needs; a front end that does not serve loads none.
HEAVY = ("aiohttp", "pydantic", "vcr", "yaml", "re2", "prometheus_client", "multidict", "uvloop")


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run(  # noqa: S603 - this interpreter, on the test's own code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def heavy(modules: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


def ours(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.startswith("cassette_proxy"))


def test_the_pytest_entry_point_imports_none_of_the_proxy() -> None:
    modules = imported_after("import cassette_proxy.pytest_plugin")
    assert heavy(modules) == []
    assert ours(modules) == [
        "cassette_proxy",
        "cassette_proxy.pytest_plugin",
        "cassette_proxy.testing",
        "cassette_proxy.testing.names",
    ]


def test_the_fixture_type_still_imports_from_the_entry_point() -> None:
    modules = imported_after("from cassette_proxy.pytest_plugin import CassetteProxy")
    assert "cassette_proxy.testing.fixture" in modules


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_click_only(args: list[str]) -> None:
    modules = imported_after(
        f"""
        from cassette_proxy.cli import main
        try:
            main({args!r}, standalone_mode=False)
        except SystemExit:
            pass
        """
    )
    assert heavy(modules) == []
    assert ours(modules) == ["cassette_proxy", "cassette_proxy.cli"]


def test_audit_needs_no_vcrpy_contract_or_http_client() -> None:
    modules = imported_after(
        """
        from cassette_proxy.cli import main
        main(["audit", "--help"], standalone_mode=False)
        """
    )
    assert heavy(modules) == []
    assert not [name for name in ours(modules) if ".contract" in name or ".serving" in name]


def test_serve_needs_none_of_the_offline_tools() -> None:
    modules = imported_after(
        """
        from cassette_proxy.cli import main
        main(["serve", "--help"], standalone_mode=False)
        """
    )
    offline = ("cassette_proxy.tools", "cassette_proxy.testing.fixture", "cassette_proxy.cli.audit")
    assert [name for name in ours(modules) if name.startswith(offline)] == []


def test_the_lazy_group_lists_each_command_with_its_own_help() -> None:
    context = click.Context(cli.main)
    for name, (_, _, shown) in cli.COMMANDS.items():
        command = cli.main.get_command(context, name)
        assert command is not None
        assert command.get_short_help_str(limit=200) == shown


def test_the_plugins_plain_constants_agree_with_the_settings() -> None:
    assert (*(mode.value for mode in RecordMode), REWRITE) == RECORD_MODES
    assert f"CASSETTE_PROXY_{'upstream_api_key'.upper()}" == KEY_VARIABLE
    assert TEST_OPTIONS >= CASSETTE_OPTIONS
    assert set(TEST_OPTIONS) <= set(Settings.model_fields) | set(TestSettings.model_fields)


BUILD_AN_APP = """
import os
from cassette_proxy.serving.app import build_app
from cassette_proxy.settings import Settings
build_app(Settings(upstream="http://127.0.0.1:9", log_file=os.devnull))
"""


def test_serving_without_the_otel_variables_imports_nothing_of_opentelemetry() -> None:
    modules = imported_after(BUILD_AN_APP)
    assert [name for name in modules if name.startswith("opentelemetry")] == []
    assert "cassette_proxy.otel.observer" not in modules


def test_the_otel_variables_without_the_extra_warn_once_and_serve_as_before() -> None:
    """The extra is installed here, so its absence is made: a module set to None in
    sys.modules cannot be imported."""
    probe = "import sys\nsys.modules['opentelemetry'] = None\n" + BUILD_AN_APP
    done = subprocess.run(  # noqa: S603 - this interpreter, on the test's own code
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    )
    [line] = done.stderr.strip().splitlines()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is set, but OpenTelemetry is not installed" in line
    assert "pip install 'cassette-proxy[otel]'" in line


def test_the_otel_variables_with_the_extra_load_the_exporter_only_then() -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    probe = BUILD_AN_APP + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run(  # noqa: S603 - this interpreter, on the test's own code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60,
        env=env,
    )  # fmt: skip
    assert "cassette_proxy.otel.observer" in done.stdout.split()


# The layers, lowest first: a module may import its own layer and those below it, never above.
LAYERS = (
    (
        "sse",
        "kept",
        "pointers",
        "config_file",
        "json_cost",
        "settings",
        "models",
        "redact",
        "errors",
        "contract",
    ),
    ("testing.names", "matching"),
    ("store",),
    ("serving", "otel"),  # otel observes the request path, which calls it through a Protocol
    ("tools", "testing", "cli", "pytest_plugin", "__main__"),
)


def _layer(module: str) -> int:
    """The layer of ``cassette_proxy.<module>`` (its longest matching prefix)."""
    found = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert found, f"cassette_proxy.{module} is in no layer of tests/test_imports.py"
    return max(found)[1]


def test_no_module_imports_a_layer_above_its_own() -> None:
    root = Path(cassette_proxy.__file__).parent
    upward = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        if module == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("cassette_proxy.") or name == "cassette_proxy":
                    continue
                target = name.removeprefix("cassette_proxy.")
                if _layer(target) > _layer(module):
                    upward.append(f"{module} imports {target}")
    assert upward == []


# "About a dozen": the contract keeps a module per object family of the API (it has 13).
MOST_MODULES_A_FOLDER = 14


def test_no_folder_of_the_package_holds_more_than_about_a_dozen_modules() -> None:
    root = Path(cassette_proxy.__file__).parent
    crowded = {
        str(folder.relative_to(root.parent)): count
        for folder in [root, *(path for path in root.rglob("*") if path.is_dir())]
        if "__pycache__" not in folder.parts
        and (count := len([m for m in folder.glob("*.py") if m.name != "__init__.py"]))
        > MOST_MODULES_A_FOLDER
    }
    assert crowded == {}, "group these folders' modules by role, as serving/ is"


def test_the_control_api_is_loaded_only_with_admin() -> None:
    code = """
        from cassette_proxy.serving.app import build_app
        from cassette_proxy.settings import Settings
        build_app(Settings(admin={admin}))
        """
    without = imported_after(code.format(admin=False))
    control = "cassette_proxy.serving.control"
    assert [name for name in ours(without) if name.startswith(control)] == []
    assert "cassette_proxy.serving.control.routes" in imported_after(code.format(admin=True))
