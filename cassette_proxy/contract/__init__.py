"""The Responses API contract: the models per object family, which route has which, and the
checks that turn a message into violations.

- :mod:`cassette_proxy.contract.events`: the stream events.
- :mod:`cassette_proxy.contract.stream`: :func:`stream_checker`, one event at a time.
"""

from cassette_proxy.contract.stream import StreamChecker, stream_checker

__all__ = ["StreamChecker", "stream_checker"]
