"""The wheel, installed into another project that has its own ``proxy`` package and module: its
pytest runs (the plugin loads through the ``pytest11`` entry point) and uses the fixture, and
``python -m cassette_proxy`` and the ``cassette-proxy`` script work there.

The import name was ``proxy`` once: such a project's ``pytest`` then stopped before collecting
anything (``No module named 'proxy.pytest_plugin'``), since its own ``proxy`` won.

The wheel is built once per session from a copy of the source, offline, with the setuptools of
the running environment. The project's venv gets the wheel alone (``--no-deps``); the
dependencies come from this environment's site-packages through a ``.pth`` line (which does not
run this environment's editable-install hook), so ``cassette_proxy`` there is the wheel's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.make_demo_cassette import DEMO, DEMO_IDS

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - this interpreter, pip and the built project
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "cassette_proxy",
        source / "cassette_proxy",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", out, source)  # fmt: skip
    [built] = out.glob("cassette_proxy-*.whl")
    return built


USERS_TEST = f"""
import openai
import pytest

import cassette_proxy
import proxy


def test_the_projects_own_proxy_is_its_own():
    assert proxy.OWNER == "the project"


@pytest.mark.cassette_proxy(cassette="cassettes/demo.yaml", record_mode="none")
def test_the_fixture_replays(cassette_proxy):
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="d", max_retries=0) as client:
        assert client.responses.cancel("{DEMO_IDS[0]}").id == "{DEMO_IDS[0]}"
    assert cassette_proxy.played == 1


def test_the_plugin_is_the_wheels(request):
    plugin = request.config.pluginmanager.get_plugin("cassette_proxy")
    assert plugin is not None
    assert plugin.__file__.startswith(str(request.config.rootpath / "venv"))
    assert cassette_proxy.__file__.startswith(str(request.config.rootpath / "venv"))
"""


def test_the_wheel_works_in_a_project_with_its_own_proxy_package_and_module(
    wheel: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "proxy").mkdir(parents=True)
    (project / "proxy" / "__init__.py").write_text('OWNER = "the project"\n')
    (project / "tests" / "cassettes").mkdir(parents=True)
    (project / "tests" / "proxy.py").write_text('OWNER = "the project"\n')
    (project / "tests" / "test_app.py").write_text(USERS_TEST)
    shutil.copy(DEMO, project / "tests" / "cassettes" / "demo.yaml")
    (project / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    venv = project / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel)  # fmt: skip
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    launcher = venv / "bin" / "pytest"  # what pip writes for pytest's console script
    launcher.write_text(f"#!{python}\nimport sys\nfrom pytest import console_main\n"
                        "sys.exit(console_main())\n")  # fmt: skip
    launcher.chmod(0o755)

    for pytest_command in ([venv / "bin" / "pytest"], [python, "-m", "pytest"]):
        # python -m pytest puts the project first on sys.path: its proxy/ package comes first.
        tested = run(*pytest_command, "-p", "no:cacheprovider", cwd=project)
        assert "3 passed" in tested.stdout, tested.stdout
    assert run(venv / "bin" / "cassette-proxy", "--version", cwd=project).stdout.startswith(
        "cassette-proxy, version "
    )
    helped = run(python, "-m", "cassette_proxy", "serve", "--help", cwd=project)
    assert "--cassette PATH" in helped.stdout
