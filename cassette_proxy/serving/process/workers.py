"""``--workers N``: N processes serving one port, as nginx and uvicorn do.

The supervisor (the process ``serve`` started as) checks what would stop every worker alike,
binds one listening socket per worker with ``SO_REUSEPORT`` (so the kernel spreads connections
over them, and a port in use is one error line, before any worker starts), then forks the
workers: each builds its own application (cassette, log, metrics), serves its socket, and says
on a pipe that it listens, or the one line that stopped it. Once all listen, the supervisor says
so on stderr, once.

- **Signals.** SIGTERM and SIGINT are passed to every worker, which drain as one proxy does
  (readiness first, ``--drain-delay``, in-flight requests up to ``--shutdown-timeout``); the
  supervisor exits 0 when all have, else with the first worker's failing code. SIGHUP is passed
  on too: each worker reopens the log.
- **A worker that dies** (not asked to) is replaced, on a socket of its own, so the port keeps
  serving; stderr says so.
- **Recording is refused** with several workers, in one line: a cassette has one recorder (its
  lock, its journal that a full disk cuts back, its save on stop), and ``once``/``all`` decide
  what to record from the whole run's view of the cassette. Record with one worker; replay (a
  load-test mock, say) with many.
- **Metrics** are summed over the workers on any scrape
  (:mod:`cassette_proxy.serving.process.peers`).
- **Steering is refused** with several workers (``--admin``, ``--cassette-dir``): the control API
  and per-request cassettes would act on the one worker a request reaches.
- **The log** is appended by every worker, one ``write(2)`` a line: whole lines in a file.
  Through a pipe or a socket, lines longer than ``PIPE_BUF`` (4 KiB) written at once by two
  workers could interleave, so several workers logging to one of those are refused in one line:
  give ``--log-file``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from cassette_proxy.errors import StartupError
from cassette_proxy.serving.process.peers import Peers
from cassette_proxy.serving.process.serve import ineffective, serve
from cassette_proxy.settings import RecordMode, Settings, workers_cannot_record
from cassette_proxy.store.recorder import Policy, refuse_a_missing_cassette

START_TIMEOUT: Final = 300.0  # a worker loading a large cassette may take a while
RESTART_PAUSE: Final = 1.0  # between a worker's death and its replacement
Run = Callable[[Coroutine[Any, Any, None]], None]


@dataclass
class Worker:
    index: int
    pid: int
    ready: int  # the read end of its pipe


def refuse_what_workers_cannot_do(settings: Settings) -> None:
    """One line for what several workers cannot serve here, before any starts: what depends on
    files and stdout (the options' own clashes are usage errors, refused by Settings)."""
    cassette = settings.cassette
    if cassette is not None:
        existed = cassette.exists() and cassette.stat().st_size > 0
        if Policy.of(settings.record_mode, existed=existed).record:
            # Settings refuses the modes that always record: only 'once' is left to record here.
            assert settings.record_mode is RecordMode.ONCE
            raise StartupError(workers_cannot_record(
                settings.workers,
                "the cassette does not exist yet, so record mode 'once' records it",
            ))  # fmt: skip
    if settings.log_file is None:
        mode = os.fstat(sys.stdout.fileno()).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise StartupError(
                f"--workers {settings.workers} would write the log from {settings.workers} "
                "processes into one pipe, where lines over 4 KiB written at once can "
                "interleave; give --log-file (each line is appended whole to a file)"
            )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that other workers' sockets may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _free(host: str, port: int) -> None:
    """Refuse a port in use, by anyone: SO_REUSEPORT alone would let the workers join another
    process's sockets on it (of the same user) and split its traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            hint = (
                "; is another proxy running there? Pick another --port, or --port 0 for a free one"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise StartupError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"
            ) from exc


def _listening_sockets(settings: Settings) -> list[socket.socket]:
    host, port = settings.host, settings.port
    if port != 0:
        _free(host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(settings.workers):
            sock = bind(host, port)
            port = sock.getsockname()[1]  # --port 0: the others join the one chosen
            sockets.append(sock)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sockets


def _worker_main(
    settings: Settings, index: int, sock: socket.socket, pipe: int, *, folder: Path, run: Run
) -> None:
    """A forked worker: serve until told to stop, then exit (never returns)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    code = 0

    def on_ready(_: str) -> None:
        os.write(pipe, b"ready\n")

    try:
        peers = Peers(folder, index, settings.workers)
        run(serve(settings, sock=sock, on_ready=on_ready, peers=peers))
    except StartupError as error:
        with contextlib.suppress(OSError):
            os.write(pipe, b"error " + str(error).replace("\n", " ").encode() + b"\n")
        code = 1
    except BaseException as exc:  # a worker must exit, whatever happened
        with contextlib.suppress(OSError):
            os.write(pipe, f"error worker {index + 1} failed: {exc!r}\n".encode())
        code = 1
    finally:
        with contextlib.suppress(OSError):
            os.close(pipe)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class Supervisor:
    """Starts the workers, passes signals on, replaces those that die, and waits for all."""

    def __init__(self, settings: Settings, run: Run) -> None:
        self.settings = settings
        self.run = run
        self.workers: dict[int, Worker] = {}  # by pid
        self.stopping = False
        self.folder = Path(tempfile.mkdtemp(prefix="cassette-proxy-workers-"))
        self.port = settings.port

    def _fork(self, index: int, sock: socket.socket, others: list[socket.socket]) -> Worker:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read)
            for other in others:
                if other is not sock:
                    other.close()
            for worker in self.workers.values():
                with contextlib.suppress(OSError):
                    os.close(worker.ready)
            _worker_main(self.settings, index, sock, write, folder=self.folder, run=self.run)
        os.close(write)
        sock.close()  # the worker's now: it dies with the worker, queued connections too
        return Worker(index, pid, read)

    def _signal(self, signum: int, _: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            self.stopping = True
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def start(self) -> str:
        """Start every worker and wait until all listen; the URL they share."""
        sockets = _listening_sockets(self.settings)
        self.port = sockets[0].getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._signal)
        for index, sock in enumerate(list(sockets)):
            worker = self._fork(index, sock, sockets)
            self.workers[worker.pid] = worker
        failure = self._await_ready(list(self.workers.values()))
        if failure is not None:
            self._signal(signal.SIGTERM, None)
            self.wait()
            raise StartupError(failure)
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def _await_ready(self, workers: list[Worker]) -> str | None:
        """Wait for each worker's line; the first error, if any (said once by the caller)."""
        waiting = {worker.ready: worker for worker in workers}
        deadline = time.monotonic() + START_TIMEOUT
        failure: str | None = None
        while waiting and failure is None:
            if self.stopping:
                return None  # a signal during start-up: the workers were told to stop too
            left = deadline - time.monotonic()
            if left <= 0:
                failure = f"the workers did not start within {START_TIMEOUT:g} s"
                break
            with contextlib.suppress(InterruptedError):
                ready, _, _ = select.select(list(waiting), [], [], min(left, 0.5))
                for fd in ready:
                    line = os.read(fd, 65536).decode("utf-8", "replace").strip()
                    worker = waiting.pop(fd)
                    os.close(fd)
                    worker.ready = -1
                    if not line.startswith("ready"):
                        failure = line.removeprefix("error ").strip() or (
                            f"worker {worker.index + 1} exited before it listened"
                        )
        for worker in waiting.values():
            os.close(worker.ready)
        return failure

    def wait(self) -> int:
        """Wait for every worker; replace one that dies unasked. The exit code."""
        code = 0
        while self.workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            exit_code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if exit_code != 0 and code == 0:
                    code = exit_code if exit_code > 0 else 1
                continue
            self._replace(worker, exit_code)
        return code

    def _replace(self, dead: Worker, exit_code: int) -> None:
        sys.stderr.write(
            f"cassette-proxy: worker {dead.index + 1} (pid {dead.pid}) exited with "
            f"{exit_code}; starting another\n"
        )
        time.sleep(RESTART_PAUSE)
        if self.stopping:
            return
        try:
            sock = bind(self.settings.host, self.port)
        except OSError as exc:
            sys.stderr.write(f"cassette-proxy: cannot replace worker {dead.index + 1}: {exc}\n")
            return
        worker = self._fork(dead.index, sock, [sock])
        self.workers[worker.pid] = worker
        failure = self._await_ready([worker])
        if failure is not None:
            sys.stderr.write(
                f"cassette-proxy: worker {dead.index + 1} did not restart: {failure}\n"
            )

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def supervise(settings: Settings, run: Run) -> int:
    """Run ``settings.workers`` workers until SIGTERM or SIGINT; the exit code."""
    refuse_a_missing_cassette(settings)
    refuse_what_workers_cannot_do(settings)
    for warning in ineffective(settings):  # once here, not once per worker
        sys.stderr.write(f"cassette-proxy: warning: {warning}\n")
    supervisor = Supervisor(settings, run)
    try:
        url = supervisor.start()
        sys.stderr.write(
            f"cassette-proxy listening on {url} (base_url {url}/v1) with "
            f"{settings.workers} workers, {_doing(settings)}\n"
        )
        sys.stderr.flush()
        return supervisor.wait()
    finally:
        supervisor.close()


def _doing(settings: Settings) -> str:
    if settings.cassette is None:
        return f"forwarding to {settings.upstream_base}"
    return f"replaying {settings.cassette}"
