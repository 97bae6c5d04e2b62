"""A fast stand-in for the Responses API, for the benchmark: every cancel gets a ~1.5 KB body.

python scripts/fast_upstream.py PORT [--low-level]

With ``--low-level`` the same answer comes from aiohttp's low-level server (``web.Server``: no
application, router or middleware), for every path and method: the floor of any aiohttp server
answering this body, which the benchmark sets replay's own cost against.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvloop
from aiohttp import web

BODY = orjson.dumps(
    {
        "id": "resp_5a6b7c8d9e0f11223344556677889900aabbccddeeff0011",
        "object": "response",
        "created_at": 1755575233,
        "status": "cancelled",
        "background": True,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": "You are a concise assistant. Answer in the language of the question.",
        "max_output_tokens": 4096,
        "model": "gpt://b1gexamplefolder000/yandexgpt/rc",
        "output": [
            {
                "type": "message",
                "id": "msg_5a6b7c8d9e0f1122334455667788",
                "status": "incomplete",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "The first three points of the plan: 1. collect the requirements "
                        "and the constraints of the deployment; 2. choose the model and the "
                        "prompt, and measure them on a fixed set of questions; 3. roll the "
                        "change out behind a flag, watching latency and the error rate, and",
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        ],
        "parallel_tool_calls": False,
        "previous_response_id": "resp_4f5e6d7c8b9a00112233445566778899aabbccddeeff0011",
        "reasoning": {"effort": "low", "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 0.6,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "none",
        "tools": [],
        "top_p": 0.9,
        "truncation": "auto",
        "usage": {
            "input_tokens": 1840,
            "input_tokens_details": {"cached_tokens": 1024},
            "output_tokens": 96,
            "output_tokens_details": {"reasoning_tokens": 64},
            "total_tokens": 1936,
        },
        "metadata": {"tenant": "acme", "trace": "7f3c"},
    }
)
HEADERS = {
    "Content-Type": "application/json",
    "x-request-id": "req_0123456789abcdef0123456789abcdef",
}


async def cancel(request: web.BaseRequest) -> web.Response:
    return web.Response(body=BODY, headers=HEADERS)


def main() -> None:
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--low-level"]):
        sys.exit("usage: python scripts/fast_upstream.py PORT [--low-level]")
    port = int(sys.argv[1])
    if sys.argv[2:] == ["--low-level"]:
        uvloop.run(_low_level(port))
        return
    app = web.Application()
    app.router.add_post("/v1/responses/{response_id}/cancel", cancel)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop())  # fmt: skip


async def _low_level(port: int) -> None:
    runner = web.ServerRunner(web.Server(cancel, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    main()
