"""The command line, kept thin: each command lives in a module of its own and is imported only
when it runs, so ``--version``, ``--help`` and each command pay only for what they use.

``cassette-proxy serve`` (:mod:`cassette_proxy.cli.serve`), ``audit``
(:mod:`cassette_proxy.cli.audit`) and ``cassette check|redact``
(:mod:`cassette_proxy.cli.cassette`): options are validated in callbacks or by
:class:`cassette_proxy.settings.Settings`, the bodies only call the library, and domain errors
are printed once, as one line.
"""

from __future__ import annotations

import gc
import importlib
from typing import Final

import click

from cassette_proxy import __version__

# name -> (module, attribute, the one-line help `--help` shows without importing the module)
COMMANDS: Final = {
    "audit": (
        "cassette_proxy.cli.audit",
        "audit",
        "Summarise JSON-lines traffic logs (plain, .gz, folders of them, or - for stdin).",
    ),
    "cassette": ("cassette_proxy.cli.cassette", "cassette", "Inspect and clean cassettes."),
    "serve": (
        "cassette_proxy.cli.serve",
        "serve_command",
        "Forward, validate, log, and record or replay (with --cassette).",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run (click's lazy-loading recipe)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        module, attribute, _ = found
        # A command's imports build many objects that live as long as the process (the
        # contract's models, aiohttp): the collector, which would walk them again and again as
        # they pile up (about a tenth of start-up), is paused meanwhile.
        gc.disable()
        try:
            command = getattr(importlib.import_module(module), attribute)
        finally:
            gc.enable()
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands with their one-line help, without importing them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="cassette-proxy")
def main() -> None:
    """Record/replay reverse proxy for the OpenAI-compatible Responses API."""
