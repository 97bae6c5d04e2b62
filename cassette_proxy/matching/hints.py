"""What a miss tells its reader to do, in the words of whoever runs the proxy.

The cassette and the recorder diagnose a miss; the advice at its end names settings, and each
front end names them its own way: ``serve`` by its flags (:data:`SERVE`), the control API by the
``PUT`` that loads a cassette (:class:`ControlHints`), the pytest plugin by its marker arguments
and options (:class:`PytestHints`). A hint
must name something that works where the reader is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cassette_proxy.testing.names import (
    BY_COMMAND_LINE,
    BY_CONFIG,
    BY_MARKER,
    INI_UPSTREAM,
    KEY_VARIABLE,
    MARKER,
)

REWIND: Final = "POST /_proxy/cassette/rewind"  # the control request that starts playback over


class Hints(Protocol):
    def repeats(self) -> str:
        """How to serve recordings again once all were played."""
        ...

    def other_upstream(self, origin: str, match_on: tuple[str, ...]) -> str:
        """How to replay recordings made from ``origin``, or to match on ``match_on``
        (the configured matchers without scheme, host and port)."""
        ...

    def record(self) -> str:
        """How to record what missed."""
        ...

    def record_more(self) -> str:
        """How to record one more interaction for a request whose recordings were all played
        (re-recording is not what helps there)."""
        ...

    def ignore(self, pointers: list[str]) -> str:
        """How to leave body fields that change from run to run out of matching."""
        ...

    def placeholder(self, pointers: list[str]) -> str:
        """How to give a value that changes inside a text (a prompt) a placeholder."""
        ...

    def rerecord(self, *, chain: bool = True) -> str:
        """How to record the whole run (test) again: what a request that continues a replayed
        response needs, since the upstream never issued the ids it carries (``chain``), or
        what a cassette past its ``re_record_interval`` asks for."""
        ...

    def key(self) -> str:
        """How to record with a key the upstream takes, or to record its refusal on purpose."""
        ...

    def replay_only(self) -> str:
        """How to replay the cassette without recording (another process records it)."""
        ...


@dataclass(frozen=True)
class ServeHints:
    """``cassette-proxy serve``'s flags; ``rewind``: the control request that starts this
    cassette's playback over, when the proxy serves the control API (a suite run again against
    a long-lived proxy needs it)."""

    rewind: str | None = None

    def repeats(self) -> str:
        if self.rewind is not None:
            return (
                f"start its playback over with {self.rewind}, as a suite run again against this "
                "proxy must, or use --allow-playback-repeats to serve them again"
            )
        return "use --allow-playback-repeats to serve them again"

    def other_upstream(self, origin: str, match_on: tuple[str, ...]) -> str:
        without = f" (--match-on {','.join(match_on)})" if match_on else ""
        return (
            f"To replay it, run the proxy with --upstream {origin} or match without scheme, "
            f"host and port{without}."
        )

    def record(self) -> str:
        return (
            "To record it, run the proxy with --record-mode new_episodes (keeps what is "
            "recorded) or all (re-records)."
        )

    def record_more(self) -> str:
        return (
            "To record one more interaction for it instead, run the proxy with --record-mode "
            "new_episodes (keeps what is recorded and adds the new one)."
        )

    def ignore(self, pointers: list[str]) -> str:
        flags = " ".join(f"--match-ignore {pointer}" for pointer in pointers)
        return (
            f"To match it, ignore them: run the proxy with {flags} "
            f"(or CASSETTE_PROXY_MATCH_IGNORE={','.join(pointers)})."
        )

    def placeholder(self, pointers: list[str]) -> str:
        return (
            f"To match it, give the value that changes inside {', '.join(pointers)} a "
            "placeholder: run the proxy with --placeholder NAME=<the value this run uses>, so "
            "it is recorded and matched as <NAME> (and the rest of the text still compared)."
        )

    def rerecord(self, *, chain: bool = True) -> str:
        if not chain:
            return (
                "Record it again: move the cassette away and run the proxy with --record-mode once."
            )
        return (
            "Only recording the whole run again works: move the cassette away and run the "
            "proxy with --record-mode once (recording every request of the run, so each id the "
            "upstream issues is the one the next request carries)."
        )

    def key(self) -> str:
        return (
            "Record with a key the upstream takes (CASSETTE_PROXY_UPSTREAM_API_KEY=<key>), or "
            "run the proxy with --record-auth-failures to record the refusal on purpose."
        )

    def replay_only(self) -> str:
        return "replay it (--record-mode none)"


SERVE: Final = ServeHints()


@dataclass(frozen=True)
class ControlHints:
    """Hints for a cassette loaded by the control API: its options are those its ``PUT`` gave
    (``serve``'s flags do not reach it), so each hint is that ``PUT`` again with one option
    changed and the others as given. A secret option's value (a placeholder's) is never
    repeated: it is left out of the body, and the hint asks for it again by name.

    ``put``: the request line (and header) that loaded it; ``given``: the options it gave, as
    checked (:meth:`of` takes the secret ones out); ``withheld``: what was taken out, named."""

    put: str
    given: dict[str, Any]
    withheld: tuple[str, ...] = ()

    @classmethod
    def of(cls, put: str, given: dict[str, Any], secret: frozenset[str]) -> ControlHints:
        withheld = tuple(
            f'"{key}" ({", ".join(sorted(value))})' if isinstance(value, dict) else f'"{key}"'
            for key, value in given.items()
            if key in secret and value
        )
        kept = {key: value for key, value in given.items() if key not in secret}
        return cls(put, kept, withheld)

    def again(self, **changes: Any) -> str:
        body = json.dumps(self.given | changes, ensure_ascii=False)
        if not self.withheld:
            return f"{self.put} {body}"
        return (
            f"{self.put} {body}, adding {' and '.join(self.withheld)} as you gave them before "
            "(their values are not shown here)"
        )

    def repeats(self) -> str:
        rewind = self.put.replace("PUT /_proxy/cassette", REWIND, 1)
        return (
            f"start its playback over with {rewind}, as a suite run again against this proxy "
            "must, or load it again allowing repeats to serve them again: "
            + self.again(allow_playback_repeats=True)
        )

    def other_upstream(self, origin: str, match_on: tuple[str, ...]) -> str:
        without = (
            f", or load it again matching without scheme, host and port: "
            f"{self.again(match_on=list(match_on))}"
            if match_on
            else ""
        )
        return f"To replay it, run the proxy with --upstream {origin}{without}."

    def record(self) -> str:
        return (
            'To record it, load it again with "record_mode": "new_episodes" (keeps what is '
            f'recorded) or "all" (re-records): {self.again(record_mode="new_episodes")}.'
        )

    def record_more(self) -> str:
        return (
            "To record one more interaction for it instead, load it again with "
            '"record_mode": "new_episodes" (keeps what is recorded and adds the new one): '
            f"{self.again(record_mode='new_episodes')}."
        )

    def ignore(self, pointers: list[str]) -> str:
        kept = [p for p in self.given.get("match_ignore", ()) if p not in pointers]
        return f"To match it, ignore them: {self.again(match_ignore=[*kept, *pointers])}."

    def placeholder(self, pointers: list[str]) -> str:
        return (
            f"To match it, give the value that changes inside {', '.join(pointers)} a "
            "placeholder, NAME here, with the value this run uses: "
            f"{self.again(placeholders={'NAME': '<the value this run uses>'})}; it is recorded "
            "and matched as <NAME>, and the rest of the text is still compared."
        )

    def rerecord(self, *, chain: bool = True) -> str:
        load = self.again(record_mode="once")
        if not chain:
            return f"Record it again: move the cassette away and load it with {load}."
        return (
            f"Only recording the whole run again works: move the cassette away, load it with "
            f"{load} and send every request of the run again, so each id the upstream issues "
            "is the one the next request carries."
        )

    def key(self) -> str:
        return (
            "Record with a key the upstream takes (the proxy's "
            "CASSETTE_PROXY_UPSTREAM_API_KEY=<key>), or load it again recording the refusal on "
            f"purpose: {self.again(record_auth_failures=True)}."
        )

    def replay_only(self) -> str:
        return f"replay it: {self.again(record_mode='none')}"


@dataclass(frozen=True)
class PytestHints:
    """Hints in the plugin's words (marker arguments, options), each a change or a command that
    works for this test: the upstream is named where the command line set it, and a record mode
    pinned by the marker or the config fixture is changed there, since it wins over the options."""

    nodeid: str
    record_mode: str
    upstream: str
    record_mode_by: str
    upstream_by: str

    @property
    def pinned(self) -> bool:
        return self.record_mode_by in {BY_MARKER, BY_CONFIG}

    def command(self, *options: str) -> str:
        """The pytest command that runs this test with ``options``, recording if it may."""
        if self.upstream_by == BY_COMMAND_LINE:
            options = (*options, f"--cassette-upstream={self.upstream}")
        return " ".join((f"{KEY_VARIABLE}=<key> pytest {self.nodeid!r}", *options))

    def repeats(self) -> str:
        return f"add allow_playback_repeats=True to @pytest.mark.{MARKER}(...) to serve them again"

    def other_upstream(self, origin: str, match_on: tuple[str, ...]) -> str:
        if self.upstream_by in {BY_MARKER, BY_CONFIG}:
            replay = f"set upstream={origin!r} in {self.upstream_by}"
        else:
            replay = (
                f"run pytest {self.nodeid!r} --cassette-upstream={origin} (or set "
                f"{INI_UPSTREAM} = {origin} in the ini file)"
            )
        without = (
            f"; or match without scheme, host and port: "
            f"@pytest.mark.{MARKER}(match_on={','.join(match_on)!r})"
            if match_on
            else ""
        )
        return f"To replay it, {replay}{without}."

    def record(self) -> str:
        return self._new_episodes("this call", "To record it")

    def record_more(self) -> str:
        return self._new_episodes(
            "one more interaction for this call", "To record one more interaction for it instead"
        )

    def _new_episodes(self, what: str, lead: str) -> str:
        """How to run this test in new_episodes (which keeps what is recorded), where it works."""
        if self.pinned:
            return (
                f"This test's record_mode {self.record_mode!r} is set by {self.record_mode_by}, "
                f"which wins over --cassette-record-mode: to record {what}, set "
                f"record_mode='new_episodes' there and run:\n    {self.command()}"
            )
        return (
            f"{lead} (from "
            f"{self.upstream}):\n    {self.command('--cassette-record-mode=new_episodes')}"
        )

    def _option(self, name: str, value: str) -> str:
        return (
            f"@pytest.mark.{MARKER}({name}={value}) (or in the cassette_proxy_config fixture, "
            "for every test under it)"
        )

    def ignore(self, pointers: list[str]) -> str:
        return f"To match it, ignore them: {self._option('match_ignore', repr(pointers))}."

    def placeholder(self, pointers: list[str]) -> str:
        return (
            f"To match it, give the value that changes inside {', '.join(pointers)} a "
            "placeholder: return {'placeholders': {'NAME': <the value this run uses>}} from "
            "the cassette_proxy_config fixture (the value your test generates), so it is "
            "recorded and matched as <NAME> and the rest of the text is still compared."
        )

    def rerecord(self, *, chain: bool = True) -> str:
        only = "Only recording the whole test again works" if chain else "Record it again"
        if self.pinned:
            return (
                f"{only}. This test's record_mode "
                f"{self.record_mode!r} is set by {self.record_mode_by}: delete its cassette, set "
                f"record_mode='once' there and run:\n    {self.command()}"
            )
        command = self.command("--cassette-record-mode=rewrite")
        why = " (each id the upstream issues is then the one the next request carries)"
        return f"{only}{why if chain else ''}:\n    {command}"

    def key(self) -> str:
        # In the record mode it was recording in (the default, none, would not record).
        again = () if self.pinned else (f"--cassette-record-mode={self.record_mode}",)
        return (
            f"Record with a key the upstream takes:\n    {self.command(*again)}"
            f"\n(or set record_auth_failures=True in @pytest.mark.{MARKER}(...) to record the "
            "refusal on purpose)."
        )

    def not_recorded(self, cassette: Path) -> str:
        """For a test that would replay a cassette that does not exist."""
        if self.pinned:
            return (
                f"cassette {cassette} does not exist and this test's record_mode 'none' is set "
                f"by {self.record_mode_by}, so the proxy could only answer 501. To record it "
                f"from {self.upstream}, set record_mode='once' there and run:\n"
                f"    {self.command()}\nthen commit the cassette."
            )
        return (
            f"cassette {cassette} does not exist and the record mode is 'none', so the proxy "
            f"could only answer 501. Record it once from {self.upstream}:\n"
            f"    {self.command('--cassette-record-mode=once')}\n"
            f"then commit the cassette (set {INI_UPSTREAM} in the ini file to record from "
            "another upstream)."
        )

    def locked(self, cassette: Path, holder: str) -> str:
        """For a test whose cassette another process (``holder``) records."""
        replay = (
            f"set record_mode='none' in {self.record_mode_by}"
            if self.pinned
            else f"run pytest {self.nodeid!r} --cassette-record-mode=none"
        )
        return (
            f"cassette {cassette} is being recorded by process {holder}; "
            "two proxies recording one cassette would lose each other's interactions. Run this "
            f"test once that process has finished, or replay the cassette: {replay}"
        )

    def replay_only(self) -> str:
        if self.pinned:
            return f"replay it (record_mode='none' in {self.record_mode_by})"
        return "replay it (--cassette-record-mode=none)"
