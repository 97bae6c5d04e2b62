"""Two tests a newcomer can copy: one replays a recorded call, one shows a miss failing.

pytest tests/examples --cassette-record-mode=rewrite   # record again from the local upstream
pytest tests/examples                                  # replay, offline (record mode none)
"""

from __future__ import annotations

import openai
import pytest

from cassette_proxy.pytest_plugin import CassetteProxy


def cancel_job(client: openai.OpenAI, response_id: str) -> str | None:
    """Code under test: cancels a background response, and swallows errors (as apps do)."""
    try:
        return client.responses.cancel(response_id).status
    except openai.APIError:
        return None


def test_cancel_replays(cassette_proxy: CassetteProxy) -> None:
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="not-needed-for-replay") as client:
        assert cancel_job(client, "resp_example_1") == "cancelled"
    # Replayed from cassettes/test_example/test_cancel_replays.yaml, or recorded into it.
    assert cassette_proxy.played + cassette_proxy.recorded == 1


# record_mode="none" here, whatever the command line says: a run that records would record
# the "miss" too, and this test would stop showing what it is for.
@pytest.mark.cassette_proxy(
    cassette="cassettes/test_example/test_cancel_replays.yaml", record_mode="none"
)
def test_unrecorded_call_fails(cassette_proxy: CassetteProxy) -> None:
    with openai.OpenAI(base_url=cassette_proxy.url, api_key="not-needed-for-replay") as client:
        # Not in the cassette: the proxy answers 501, cancel_job swallows it and returns None...
        assert cancel_job(client, "resp_never_recorded") is None
    # ...and the test still fails, with the proxy's diagnosis of the miss.
