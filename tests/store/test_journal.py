"""The journal: records a torn write cannot poison, files no planted symlink can redirect, and
the cassette lock: one recorder per cassette, also when a holder releases it mid-acquire."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from vcr.request import Request as VcrRequest

from cassette_proxy.errors import CassetteFileError
from cassette_proxy.settings import DEFAULT_MATCH_ON, Settings
from cassette_proxy.store.cassette import Interaction
from cassette_proxy.store.journal import (
    CassetteLock,
    Journal,
    JournalHeader,
    journal_path,
    lock_path,
    read_journal,
)
from cassette_proxy.store.persist import save_cassette
from cassette_proxy.store.recorder import Recorder
from tests.conftest import DUMMY_KEY
from tests.processes import ProxyProcess, files_in, refused_start, running

HEADER = JournalHeader("new_episodes", DEFAULT_MATCH_ON)


def test_a_lock_released_and_unlinked_during_acquire_is_taken_on_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "tape.yaml"
    real_flock = fcntl.flock
    calls = 0

    def holder_releases_meanwhile(fd: int, operation: int) -> None:
        # The previous holder unlinks the lock file between our open() and our flock(): the
        # lock we get is on a file no one else will ever open.
        nonlocal calls
        calls += 1
        if calls == 1:
            lock_path(cassette).unlink()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", holder_releases_meanwhile)
    lock = CassetteLock(cassette)
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.touch()
    assert lock.acquire()
    assert calls == 2  # it noticed, and locked the file that is at the path now
    monkeypatch.undo()
    other = CassetteLock(cassette)
    assert not other.acquire()  # so a second recorder is refused, as it must be
    lock.release()
    assert other.acquire()
    other.release()


# -- torn writes ---------------------------------------------------------------------------------


def interaction(n: int, body: bytes = b"") -> Interaction:
    request = VcrRequest("POST", f"https://h/v1/responses/resp_{n}/cancel", body, {"A": "1"})
    return Interaction(request, 404, "Not Found", (("X-N", str(n)),), f"answer {n}".encode())


def recorded_ids(path: Path) -> list[str]:
    contents = read_journal(path)
    assert contents is not None
    return [i.body.decode() for i in contents.interactions]


class FullDisk:
    """``os.write`` as on a disk that fills: the next ``fit`` bytes go in, then ENOSPC."""

    def __init__(self, fit: int) -> None:
        self.fit = fit
        self.real_write = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if self.fit <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.real_write(fd, bytes(data[: self.fit]))
        self.fit -= written
        return written


def broken_ftruncate(fd: int, length: int) -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))


@pytest.mark.parametrize("truncating", ["works", "fails too"])
def test_a_write_the_disk_cuts_short_never_poisons_the_records_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, truncating: str
) -> None:
    path = tmp_path / "tape.yaml.journal"
    journal = Journal(path, HEADER)
    journal.append(interaction(1))
    with monkeypatch.context() as disk:
        disk.setattr(os, "write", FullDisk(fit=40))  # part of the next record goes in
        if truncating == "fails too":
            disk.setattr(os, "ftruncate", broken_ftruncate)
        for n in (2, 3):
            with pytest.raises(OSError, match="No space left"):
                journal.append(interaction(n))
    journal.append(interaction(4))  # the disk has room again
    journal.append(interaction(5))
    journal.close()
    assert recorded_ids(path) == ["answer 1", "answer 4", "answer 5"]
    contents = read_journal(path)
    assert contents is not None
    assert contents.torn == (1 if truncating == "fails too" else 0)


def test_a_record_torn_by_a_crash_is_skipped_and_a_tampered_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "tape.yaml.journal"
    journal = Journal(path, HEADER)
    for n in (1, 2):
        journal.append(interaction(n))
    journal.close()
    whole = path.read_bytes()
    for cut in range(1, len(whole.splitlines()[-1])):  # killed at any byte of the last record
        path.write_bytes(whole[: len(whole) - cut - 1])
        assert recorded_ids(path) == ["answer 1"], cut
    # A whole-length record whose bytes changed is not a torn write: refused, in one line.
    path.write_bytes(whole.replace(b"answer 1", b"answer 7"))
    with pytest.raises(CassetteFileError, match="line 2 is corrupt") as refused:
        read_journal(path)
    assert "checksum" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_version_1_journals_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml.journal"
    record = (
        b'{"request":{"method":"POST","uri":"https://h/v1/responses/r/cancel","headers":[],'
        b'"body":{"text":""}},"response":{"status":404,"reason":"Not Found",'
        b'"headers":[["X","1"]],"body":{"base64":"b2xk"}}}'
    )
    header = b'{"journal":1,"record_mode":"once","match_on":["method","path"]}'
    path.write_bytes(header + b"\n" + record + b"\n" + record[:30])  # torn last line
    contents = read_journal(path)
    assert contents is not None
    assert contents.header == JournalHeader("once", ("method", "path"))
    assert [i.body for i in contents.interactions] == [b"old"]


# -- symlinks ------------------------------------------------------------------------------------


def test_a_lock_takes_away_only_the_empty_folders_it_made(tmp_path: Path) -> None:
    made = tmp_path / "cassettes" / "test_module"
    lock = CassetteLock(made / "tape.yaml")
    assert lock.acquire()
    other = CassetteLock(made / "other.yaml")  # a second cassette's lock in the same folder
    assert other.acquire()
    lock.release()
    assert made.is_dir()  # not empty: the other lock is in it
    other.release()  # it made no folder: it takes none away
    assert made.is_dir()
    kept = CassetteLock(made / "kept.yaml")
    assert kept.acquire()
    (made / "kept.yaml").write_text("interactions: []\n")  # saved: the folder stays
    kept.release()
    assert (made / "kept.yaml").exists()
    fresh = CassetteLock(tmp_path / "a" / "b" / "tape.yaml")
    assert fresh.acquire()
    fresh.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cassettes"]  # a/ and a/b/ gone


def test_a_folder_taken_away_during_acquire_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another holder may take the empty folder away between our mkdir and our open: made
    again, and both levels it made are taken away on release."""
    cassette = tmp_path / "cassettes" / "module" / "tape.yaml"
    real_open = os.open
    calls = 0

    def folder_removed_meanwhile(path: str | Path, flags: int, mode: int = 0o777) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            Path(path).parent.rmdir()
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", folder_removed_meanwhile)
    lock = CassetteLock(cassette)
    assert lock.acquire()
    monkeypatch.undo()
    assert calls == 2
    assert lock.held
    lock.release()
    assert not (tmp_path / "cassettes").exists()


def test_a_cassette_and_a_symlink_to_it_share_one_lock(tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    link = tmp_path / "elsewhere" / "link.yaml"
    link.parent.mkdir()
    link.symlink_to(cassette)
    first = CassetteLock(cassette)
    assert first.acquire()
    try:
        assert not CassetteLock(link).acquire()
    finally:
        first.release()
    assert journal_path(link) == journal_path(cassette)


@pytest.mark.parametrize("planted", ["journal", "lock"])
@pytest.mark.parametrize("victim_exists", [True, False], ids=["existing-file", "new-file"])
def test_a_planted_symlink_never_chooses_where_the_proxy_writes(
    tmp_path: Path, planted: str, victim_exists: bool
) -> None:
    cassette = tmp_path / "shared" / "c.yaml"
    cassette.parent.mkdir()
    victim = tmp_path / "victim"
    if victim_exists:
        victim.write_bytes(b"precious")
    trap = journal_path(cassette) if planted == "journal" else lock_path(cassette)
    trap.symlink_to(victim)
    with pytest.raises(CassetteFileError) as refused:
        Recorder(Settings(cassette=cassette, record_mode="once"))
    message = str(refused.value)
    assert str(trap) in message
    assert "symlink" in message.replace(str(trap), "")
    assert "\n" not in message
    assert (victim.read_bytes() if victim_exists else victim.exists()) == (
        b"precious" if victim_exists else False
    )
    assert trap.is_symlink()  # left for the user to look at


def test_a_journal_is_created_exclusively(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml.journal"
    path.write_bytes(b"someone else's")
    with pytest.raises(CassetteFileError, match="something is already there"):
        Journal(path, HEADER)
    assert path.read_bytes() == b"someone else's"


# -- a real full disk ----------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of its own: mount(2) needs root or CAP_SYS_ADMIN (CI runs as root)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    target = str(mount_point).encode()
    if _libc().mount(b"tmpfs", target, b"tmpfs", 0, b"size=1m,mode=0700") != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {os.strerror(ctypes.get_errno())}")
    try:
        yield mount_point
    finally:
        _libc().umount2(target, 2)  # MNT_DETACH


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to the last byte, then free ``leave`` bytes of it."""
    filler = disk / "filler"
    free = os.statvfs(disk)
    size = free.f_bavail * free.f_frsize
    with filler.open("wb") as file:
        os.posix_fallocate(file.fileno(), 0, size)
    os.truncate(filler, size - leave)
    now = os.statvfs(disk)
    assert now.f_bavail * now.f_frsize == leave
    return filler


async def post(proxy: ProxyProcess, response_id: str, body: bytes) -> tuple[int, bytes, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        session.post(
            f"{proxy.url}/v1/responses/{response_id}/cancel",
            data=body,
            headers={"Authorization": f"Bearer {DUMMY_KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        return response.status, await response.read(), response.headers["X-Proxy-Source"]


@pytest.mark.slow
async def test_a_disk_that_fills_for_a_moment_loses_nothing_answered_after_it(
    small_disk: Path, tmp_path: Path, upstream_url: str
) -> None:
    """The issue's attack: a full disk tears a journal write; space comes back; kill -9."""
    cassette = small_disk / "tape.yaml"
    body = b'{"padding": "' + b"x" * 20_000 + b'"}'  # a record of five pages or so
    answered: dict[str, bytes] = {}
    failed: list[str] = []
    args = ("--upstream", upstream_url, "--cassette", str(cassette), "--record-mode", "all")
    async with running(*args, log_file=tmp_path / "record.log") as proxy:
        for n in range(10):
            status, answer, _ = await post(proxy, f"resp_before_{n}", body)
            assert status == 404
            answered[f"resp_before_{n}"] = answer
        filler = fill(small_disk, leave=8192)  # room for part of one record
        for n in range(3):
            # The journal write before the last byte fails: a body that had all arrived with
            # its headers is answered with the 502; one that was streaming is cut. Either way
            # the client never gets the upstream's whole answer.
            try:
                status, answer, source = await post(proxy, f"resp_full_{n}", body)
            except aiohttp.ClientPayloadError:
                pass
            else:
                assert (status, source) == (502, "proxy")
                assert orjson.loads(answer)["error"]["code"] == "recording_failed"
            failed.append(f"resp_full_{n}")
        filler.unlink()  # the disk recovers
        for n in range(10):
            status, answer, _ = await post(proxy, f"resp_after_{n}", body)
            assert status == 404
            answered[f"resp_after_{n}"] = answer
        proxy.process.kill()  # SIGKILL: no chance to save
        await proxy.process.wait()
    assert not cassette.exists()
    replay_args = ("--upstream", upstream_url, "--cassette", str(cassette), "--record-mode", "none")
    async with running(*replay_args, log_file=tmp_path / "replay.log") as replay:
        for response_id, answer in answered.items():
            assert await post(replay, response_id, body) == (404, answer, "cassette"), response_id
        for response_id in failed:  # never acknowledged, so never recorded
            status, _, _ = await post(replay, response_id, body)
            assert status == 501


# -- a journal the cassette reader would refuse ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", ["none", "all"]
)  # a replayer folds under a lock it takes; a recorder holds one
@pytest.mark.parametrize(
    "broken",
    [
        {"headers": (("X-Injected", "a\r\nSet-Cookie: x=1"),)},
        {"headers": (("Bad Name", "1"),)},
        {"reason": "OK\r\nX: 1"},
    ],
    ids=["crlf-in-header", "space-in-name", "crlf-in-reason"],
)
async def test_a_journal_the_cassette_could_not_hold_stops_start_up_and_leaves_every_file(
    tmp_path: Path, mode: str, broken: dict[str, object]
) -> None:
    """A start that fails leaves no file behind: the journal's interaction is refused before
    anything is folded in, and nothing is written (issue 22, item 11)."""
    cassette = tmp_path / "c.yaml"
    save_cassette(cassette, [interaction(1)])
    before = cassette.read_bytes()
    journal = Journal(journal_path(cassette), HEADER)
    good, bad = interaction(2), interaction(3)
    journal.append(good)
    journal.append(
        Interaction(
            bad.request,
            bad.status,
            str(broken.get("reason", bad.reason)),
            broken.get("headers", bad.headers),  # type: ignore[arg-type]
            bad.body,
        )
    )
    journal.close()
    journalled = journal_path(cassette).read_bytes()
    code, _, stderr = await refused_start("--cassette", str(cassette), "--record-mode", mode)
    assert code == 1
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith(f"Error: journal {str(journal_path(cassette))!r} line 3 is corrupt")
    assert "left untouched" in line
    assert cassette.read_bytes() == before
    assert journal_path(cassette).read_bytes() == journalled
    assert files_in(tmp_path) == ["c.yaml", "c.yaml.journal"]  # no lock, no temporary file
