"""What a miss tells its reader to do, in the words of whoever runs the proxy.

The cassette and the recorder diagnose a miss; the advice at its end names settings, and each
front end names them its own way: ``serve`` by its flags (:data:`SERVE`), the pytest plugin by
its marker arguments and options (:class:`cassette_proxy.pytest_plugin.PytestHints`). A hint
must name something that works where the reader is.
"""

from __future__ import annotations

from typing import Final, Protocol


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


class ServeHints:
    """``cassette-proxy serve``'s flags."""

    def repeats(self) -> str:
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


SERVE: Final = ServeHints()
