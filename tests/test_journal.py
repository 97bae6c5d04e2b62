"""The cassette lock: one recorder per cassette, also when a holder releases it mid-acquire."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from cassette_proxy.journal import CassetteLock, lock_path


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
