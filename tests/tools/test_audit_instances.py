"""audit over many sidecars: folders of logs (recursively, .jsonl and .jsonl.gz), tables broken
down by instance, tokens by model and route, and their cost by a price table the user gives."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from cassette_proxy.cli import main
from cassette_proxy.tools.audit import summarise
from cassette_proxy.tools.audit.summary import MAX_INSTANCES, OTHER
from tests.conftest import DUMMY_KEY, StartProxy
from tests.responses_upstream import ResponsesUpstream

MODEL_URI = "gpt://b1gexamplefolder000/yandexgpt/rc"
PRICES = """
currency = "USD"
per = 1_000_000
[models."yandexgpt/rc"]
input = 2.0
cached = 0.5
output = 8.0
"""


@pytest.fixture
async def logs(
    start_proxy: StartProxy, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> Path:
    """Two sidecars' logs, as a team would collect them: sidecar-a answered two creates, and
    sidecar-b one create and three replay misses; one log rotated and gzipped, in subfolders."""
    upstream = await aiohttp_server(ResponsesUpstream().app(), host="127.0.0.1")
    url = str(upstream.make_url("")).rstrip("/")
    a = await start_proxy(upstream=url, instance="sidecar-a")
    empty = tmp_path / "empty.yaml"
    empty.write_text("interactions: []\nversion: 1\n")
    b = await start_proxy(upstream=url, instance="sidecar-b")
    b_replay = await start_proxy(upstream=url, instance="sidecar-b", cassette=empty,
                                 record_mode="none")  # fmt: skip
    for proxy, creates in ((a, 2), (b, 1)):
        async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DUMMY_KEY) as client:
            for _ in range(creates):
                await client.responses.create(model=MODEL_URI, input="hi")
    async with openai.AsyncOpenAI(
        base_url=b_replay.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        for _ in range(3):
            with pytest.raises(openai.APIStatusError):
                await client.responses.cancel("resp_missing")
    folder = tmp_path / "logs"
    (folder / "a").mkdir(parents=True)
    (folder / "b" / "2026").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "a" / "proxy.jsonl").write_bytes(a.log_path.read_bytes())
    (folder / "b" / "proxy.jsonl.1.gz").write_bytes(gzip.compress(b.log_path.read_bytes()))
    (folder / "b" / "2026" / "replay.jsonl").write_bytes(b_replay.log_path.read_bytes())
    (folder / ".hidden" / "skipped.jsonl").write_bytes(a.log_path.read_bytes())
    (folder / "b" / "notes.txt").write_text("not a log")
    return folder


def _audit(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args])
    return result.exit_code, result.output


def test_a_folder_of_logs_is_read_recursively_and_broken_down_by_instance(
    logs: Path, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    code, output = _audit(str(logs), "--by-instance", "--prices", str(prices), "--format", "json")
    assert code == 0, output
    report: dict[str, Any] = orjson.loads(output)
    assert len(report["files"]) == 3  # hidden folders and other files skipped
    assert report["exchanges"] == 6
    [tokens] = report["tokens"]
    assert (tokens["model"], tokens["route"]) == ("yandexgpt/rc", "create")
    # The test upstream answers every create with the same response id: each sidecar counts it
    # once (a response is billed once, however often it is seen), so two responses in all.
    assert (tokens["input"], tokens["cached"], tokens["output"]) == (2 * 1840, 2 * 1024, 2 * 96)
    assert tokens["responses"] == 2
    # (1840 - 1024) uncached at 2.0, 1024 cached at 0.5, 96 out at 8.0, per million, twice
    expected = 2 * ((1840 - 1024) * 2.0 + 1024 * 0.5 + 96 * 8.0) / 1_000_000
    assert tokens["cost"] == pytest.approx(expected)
    assert report["currency"] == "USD"
    instances = report["instances"]
    assert set(instances) == {"sidecar-a", "sidecar-b"}
    assert instances["sidecar-a"]["exchanges"] == 2
    assert instances["sidecar-a"]["errors_by_code"] == []
    [miss] = instances["sidecar-b"]["errors_by_code"]
    assert (miss["code"], miss["count"]) == ("cassette_miss", 3)  # which sidecar it was
    assert instances["sidecar-b"]["tokens"][0]["responses"] == 1
    # Each instance's lines and files are its own: sidecar-b's are in two files.
    assert (instances["sidecar-a"]["lines"], len(instances["sidecar-a"]["files"])) == (2, 1)
    assert (instances["sidecar-b"]["lines"], len(instances["sidecar-b"]["files"])) == (4, 2)


def test_the_text_report_shows_tokens_and_each_instance(logs: Path) -> None:
    code, output = _audit(str(logs), "--by-instance")
    assert code == 0, output
    assert "Tokens by model, route and source" in output
    assert "By instance:" in output
    section = output.split("=== instance sidecar-b ===", 1)[1]
    assert "cassette_miss" in section
    assert (
        "cassette_miss"
        not in output.split("=== instance sidecar-a ===", 1)[1].split(
            "=== instance sidecar-b ===", 1
        )[0]
    )


def test_a_model_without_a_price_is_said_not_guessed(logs: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('per = 1000\n[models."other-model"]\ninput = 1\noutput = 2\n')
    code, output = _audit(str(logs), "--prices", str(prices), "--by-instance")
    assert code == 0
    assert "no price in the price table for: yandexgpt/rc" in output
    by_instance = output.split("By instance:", 1)[1].split("===", 1)[0]
    rows = [line.split() for line in by_instance.splitlines() if "sidecar-" in line]
    assert [row[-2:] for row in rows] == [["no", "price"], ["no", "price"]]  # never a 0.0000
    assert "2 exchanges in 2 lines from 1 file(s)" in output.split("=== instance sidecar-a", 1)[1]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[models."m"]\ninput = 1\noutput = 2\n', "needs per = <tokens>"),
        ('per = 1000\n[models."m"]\ninput = "cheap"\noutput = 2\n', "needs input and output"),
        ("per = 1000\n", "has no [models"),
        ("per = [", "is not valid TOML"),
    ],
)
def test_a_bad_price_table_is_a_usage_error(tmp_path: Path, text: str, said: str) -> None:
    log = tmp_path / "empty.jsonl"
    log.write_text("")
    prices = tmp_path / "prices.toml"
    prices.write_text(text)
    code, output = _audit(str(log), "--prices", str(prices))
    assert code == 2
    assert said in output


def test_a_folder_without_logs_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "cassette.yaml").write_text("interactions: []\n")
    code, output = _audit(str(tmp_path))
    assert code == 2
    assert "no log under" in output


def test_instances_broken_down_are_bounded(tmp_path: Path) -> None:
    line = {
        "time": "2026-11-30T13:15:29.245Z", "id": "x", "method": "POST", "path": "/v1/responses",
        "route": "create", "response_id": None, "status": 200, "source": "upstream",
        "duration_ms": 1.0, "upstream_ms": 0.5, "request": {}, "response": {},
        "validation": {}, "verdict": "passed", "event": "exchange",
        "model": "yandexgpt/rc", "tokens": {"input": 1, "cached": 0, "output": 1, "reasoning": 0},
    }  # fmt: skip
    log = tmp_path / "many.jsonl"
    log.write_bytes(b"".join(orjson.dumps(line | {"instance": f"pod-{n}"}) + b"\n"
                             for n in range(MAX_INSTANCES + 50)))  # fmt: skip
    summary = summarise([str(log)], by_instance=True)
    assert len(summary.instances) == MAX_INSTANCES + 1  # the rest pooled
    assert summary.instances[OTHER].exchanges == 50
    assert summary.exchanges == MAX_INSTANCES + 50


async def test_tokens_a_cassette_replayed_are_apart_and_cost_nothing(
    start_proxy: StartProxy, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    upstream = await aiohttp_server(ResponsesUpstream().app(), host="127.0.0.1")
    url = str(upstream.make_url("")).rstrip("/")
    cassette = tmp_path / "c.yaml"
    recording = await start_proxy(upstream=url, cassette=cassette, record_mode="once")
    async with openai.AsyncOpenAI(base_url=recording.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.create(model=MODEL_URI, input="hi")
    recorded = recording.log_path.read_bytes()
    await recording.stop()
    replaying = await start_proxy(upstream=url, cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=replaying.base_url, api_key=DUMMY_KEY) as client:
        await client.responses.create(model=MODEL_URI, input="hi")
    log = tmp_path / "both.jsonl"
    log.write_bytes(recorded + replaying.log_path.read_bytes())
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    code, output = _audit(str(log), "--prices", str(prices), "--format", "json")
    assert code == 0, output
    spent, replayed = orjson.loads(output)["tokens"]
    assert (spent["source"], replayed["source"]) == ("upstream", "cassette")
    assert spent["input"] == replayed["input"] == 1840
    assert spent["cost"] == pytest.approx(((1840 - 1024) * 2.0 + 1024 * 0.5 + 96 * 8.0) / 1e6)
    assert replayed["cost"] is None  # spent when it was recorded
    code, text = _audit(str(log), "--prices", str(prices))
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("yandexgpt")]
    assert [row[2] for row in rows] == ["upstream", "cassette"]
    assert rows[1][-1] == "replayed"
    section = text.split("Tokens by model, route and source", 1)[1].splitlines()
    total = next(line.split() for line in section if line.strip().startswith("(all)"))
    assert float(total[-1]) == pytest.approx(spent["cost"], abs=1e-4)  # the replay not in it
