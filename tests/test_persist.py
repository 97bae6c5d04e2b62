"""Cassette files: vcrpy reads what the proxy writes, the proxy reads what vcrpy writes, and a
file the proxy cannot trust is refused, never overwritten."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import openai
import pytest
import vcr

from cassette_proxy.cassette import Interaction
from cassette_proxy.errors import CassetteFileError
from cassette_proxy.persist import (
    file_state,
    load_cassette,
    read_cassette,
    save_cassette,
    write_atomically,
)
from cassette_proxy.recorder import Recorder
from cassette_proxy.settings import Settings
from tests import vectors
from tests.conftest import DUMMY_KEY, StartProxy
from tests.fake_upstream import FakeUpstream


async def test_vcrpy_replays_a_cassette_the_proxy_recorded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "by-proxy.yaml"
    proxy = await start_proxy(cassette=cassette, record_mode="once")
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key=DUMMY_KEY, max_retries=0
    ) as client:
        through_proxy = await client.responses.cancel(vectors.V3_ID)
        gzipped = await client.responses.cancel("resp_gzip_1")
    await proxy.stop()
    received = len(fake_upstream.received)

    def replay_with_vcrpy() -> tuple[openai.types.responses.Response, ...]:
        with vcr.use_cassette(str(cassette), record_mode="none"):
            # Straight at the upstream's URL: vcrpy answers from the proxy's cassette.
            client = openai.OpenAI(base_url=upstream_url + "/v1", api_key="x", max_retries=0)
            with client:
                return (
                    client.responses.cancel(vectors.V3_ID),
                    client.responses.cancel("resp_gzip_1"),
                )

    by_vcrpy = await asyncio.to_thread(replay_with_vcrpy)
    assert by_vcrpy == (through_proxy, gzipped)
    assert len(fake_upstream.received) == received


async def test_the_proxy_replays_a_cassette_vcrpy_recorded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, tmp_path: Path, upstream_url: str
) -> None:
    cassette = tmp_path / "by-vcrpy.yaml"

    def record_with_vcrpy() -> tuple[object, ...]:
        with vcr.use_cassette(str(cassette), record_mode="once"):
            client = openai.OpenAI(base_url=upstream_url + "/v1", api_key="x", max_retries=0)
            with client:
                found = client.responses.cancel(vectors.V4_ID)
                gzipped = client.responses.cancel("resp_gzip_2")
                with pytest.raises(openai.NotFoundError) as missing:
                    client.responses.cancel("resp_does_not_exist_123")
                return found, gzipped, missing.value.body

    recorded = await asyncio.to_thread(record_with_vcrpy)
    assert "!!binary" in cassette.read_text()  # vcrpy kept the gzip bytes as they came
    received = len(fake_upstream.received)

    proxy = await start_proxy(cassette=cassette, record_mode="none")
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as client:
        found = await client.responses.cancel(vectors.V4_ID)
        gzipped = await client.responses.cancel("resp_gzip_2")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.responses.cancel("resp_does_not_exist_123")
    assert (found, gzipped, missing.value.body) == recorded
    assert len(fake_upstream.received) == received
    assert {e["source"] for e in proxy.exchanges()} == {"cassette"}
    assert {e["verdict"] for e in proxy.exchanges()} == {"passed"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("interactions: [\n  {request: ", "not a vcrpy cassette"),
        ("!!python/object/apply:os.system ['true']\n", "not a vcrpy cassette"),
        ("version: 1\nnothing: here\n", "not a vcrpy cassette"),
        ("\udcff", "not UTF-8"),
    ],
    ids=["corrupt-yaml", "python-tag", "wrong-shape", "not-utf8"],
)
def test_untrustworthy_cassettes_are_refused_and_left_untouched(
    tmp_path: Path, content: str, reason: str
) -> None:
    cassette = tmp_path / "bad.yaml"
    cassette.write_bytes(content.encode("utf-8", "surrogateescape"))
    before = cassette.read_bytes()
    settings = Settings(cassette=cassette, record_mode="all")
    with pytest.raises(CassetteFileError, match=reason) as caught:
        Recorder(settings)
    assert str(cassette) in str(caught.value)
    assert cassette.read_bytes() == before


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cassette = tmp_path / "atomic.yaml"
    interaction = Interaction(
        vcr.request.Request("POST", "https://h/v1/responses/x/cancel", b"", {}),
        200,
        "OK",
        (("Content-Type", "application/json"),),
        vectors.V1_BODY,
    )
    save_cassette(cassette, [interaction])
    save_cassette(cassette, [interaction, interaction])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.yaml"]
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [vectors.V1_BODY, vectors.V1_BODY]
    # A private cassette stays private when it is rewritten (saved again, or redacted).
    cassette.chmod(0o600)
    save_cassette(cassette, [interaction])
    assert cassette.stat().st_mode & 0o777 == 0o600


def test_json_cassettes_use_vcrpys_json_serializer(tmp_path: Path) -> None:
    cassette = tmp_path / "cassette.json"
    interaction = Interaction(
        vcr.request.Request("POST", "https://h/v1/responses/x/cancel", b"", {}),
        404,
        "Not Found",
        (),
        vectors.V5A_BODY,
    )
    save_cassette(cassette, [interaction])
    requests, responses = vcr.serialize.deserialize(
        cassette.read_text(), vcr.serializers.jsonserializer
    )
    assert requests[0].uri == "https://h/v1/responses/x/cancel"
    assert responses[0]["body"]["string"] == vectors.V5A_BODY


def test_an_unreadable_cassette_is_refused(tmp_path: Path) -> None:
    # Running as root, file permissions do not stop a read; a directory in its place does.
    cassette = tmp_path / "unreadable.yaml"
    cassette.mkdir()
    with pytest.raises(CassetteFileError, match="cannot read cassette"):
        Recorder(Settings(cassette=cassette, record_mode="none"))
    assert cassette.is_dir()


def a_recording(marker: str) -> Interaction:
    return Interaction(
        vcr.request.Request("POST", f"https://h/v1/responses/{marker}/cancel", b"", {}),
        200,
        "OK",
        (),
        marker.encode(),
    )


def test_a_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "c.yaml"
    target.parent.mkdir()
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    save_cassette(link, [a_recording("one")])
    save_cassette(link, [a_recording("one"), a_recording("two")])
    assert link.is_symlink()
    loaded = load_cassette(target)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"one", b"two"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.yaml"]  # no temporary left


def test_a_symlink_planted_at_a_temporary_name_is_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "c.yaml"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    # The name the proxy used to write to, and the name it will draw first now: both planted.
    (tmp_path / f".c.yaml.{os.getpid()}.tmp").symlink_to(victim)
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(names))
    (tmp_path / ".c.yaml.guessed.tmp").symlink_to(victim)
    save_cassette(cassette, [a_recording("one")])
    assert victim.read_bytes() == b"precious"
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"one"]
    assert not (tmp_path / ".c.yaml.fresh.tmp").exists()


def test_a_write_made_only_if_unchanged_leaves_a_changed_file_alone(tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    save_cassette(cassette, [a_recording("one")])
    seen = read_cassette(cassette).state
    assert seen is not None
    assert file_state(cassette) == seen
    save_cassette(cassette, [a_recording("edited")])  # someone else's change
    assert not write_atomically(cassette, "version: 1\ninteractions: []\n", only_if=seen)
    loaded = load_cassette(cassette)
    assert loaded is not None
    assert [i.body for i in loaded] == [b"edited"]
    assert write_atomically(cassette, "", only_if=file_state(cassette))
    assert not write_atomically(tmp_path / "absent.yaml", "", only_if=seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
