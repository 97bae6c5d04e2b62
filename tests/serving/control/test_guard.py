"""How the control API is guarded: off without ``--admin``; with a token, only for requests that
carry it; the token never in a log line or an answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cassette_proxy.settings import Settings
from tests import vectors
from tests.client import cancel
from tests.conftest import StartProxy
from tests.serving.control.admin import call

TOKEN = "s3cret-admin-token-0123456789abcdef"
ROUTES = [
    ("GET", "/_proxy/cassette"),
    ("PUT", "/_proxy/cassette"),
    ("DELETE", "/_proxy/cassette"),
    ("POST", "/_proxy/cassette/rewind"),
    ("GET", "/_proxy/exchanges"),
    ("DELETE", "/_proxy/exchanges"),
    ("GET", "/_proxy/faults"),
    ("POST", "/_proxy/faults"),
    ("DELETE", "/_proxy/faults"),
    ("DELETE", "/_proxy/faults/1"),
]


async def test_without_admin_every_control_route_is_an_unknown_path(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(cassette=tmp_path / "c.yaml")
    for method, path in ROUTES:
        answer = await call(proxy.url, method, path, {"status": 500}, token=TOKEN)
        assert answer.status == 404, (method, path)
        error = answer.error()
        assert error["code"] == "proxy_route_not_found"
        assert "served with serve --admin only" in error["message"]
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # no fault was installed
    assert not [line for line in proxy.log_lines() if line["event"] == "fault_installed"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x",
     "Bearer " + TOKEN[:-1]],
    ids=["missing", "wrong", "other-scheme", "no-scheme", "longer", "shorter"],
)  # fmt: skip
async def test_with_a_token_every_route_refuses_a_request_without_it(
    start_proxy: StartProxy, authorization: str | None
) -> None:
    proxy = await start_proxy(admin=True, admin_token=TOKEN)
    for method, path in ROUTES:
        answer = await call(proxy.url, method, path, {"status": 500}, authorization=authorization)
        assert answer.status == 401, (method, path)
        assert answer.headers["X-Proxy-Source"] == "proxy"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="cassette-proxy"'
        assert answer.error()["code"] == "proxy_admin_unauthorized"
        assert "changed nothing" in answer.error()["message"]
    refused = [line for line in proxy.log_lines() if line["event"] == "control_refused"]
    assert len(refused) == len(ROUTES)
    assert (await cancel(proxy, vectors.V1_ID)).status == 200  # nothing was installed


async def test_the_right_token_is_served_on_loopback_too_and_never_logged(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = await start_proxy(admin=True, admin_token=TOKEN, cassette_dir=tmp_path / "dir")
    assert (await call(proxy.url, "GET", "/_proxy/cassette")).status == 401  # loopback: still
    installed = await call(proxy.url, "POST", "/_proxy/faults", {"status": 503}, token=TOKEN)
    assert installed.status == 201
    assert (await cancel(proxy, vectors.V1_ID)).status == 503
    for method, path in ROUTES:
        answer = await call(proxy.url, method, path, None, token=TOKEN)
        assert answer.status in {200, 201, 400, 404, 409}, (method, path, answer.body)
        assert TOKEN.encode() not in answer.body
    log = proxy.log_path.read_bytes()
    assert TOKEN.encode() not in log
    assert TOKEN[:12].encode() not in log
    assert b"/_proxy/" not in b"".join(
        line for line in log.splitlines() if b'"event":"exchange"' in line
    )  # control requests are never logged as exchanges


def test_admin_on_another_host_needs_a_token() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        Settings(admin=True, host="0.0.0.0")  # noqa: S104 - what is refused
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert Settings(admin=True, host=host).admin
    assert Settings(admin=True, host="0.0.0.0", admin_token=TOKEN).admin  # noqa: S104


def test_serve_refuses_admin_off_loopback_without_a_token_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cassette_proxy", "serve", "--admin", "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("Error: --admin on --host 0.0.0.0 (not loopback)")
    assert "CASSETTE_PROXY_ADMIN_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("token", "says"),
    [("short", "the token has 5 characters; use at least 16"),
     (TOKEN + " x", "is a space")],
)  # fmt: skip
def test_a_token_is_refused_in_one_line_that_does_not_quote_it(token: str, says: str) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, our own command
        [sys.executable, "-m", "cassette_proxy", "serve", "--admin", "--admin-token", token],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("Error: invalid value for --admin-token: ")
    assert says in done.stderr
    assert token not in done.stderr


async def test_a_method_a_route_does_not_take_is_405_naming_those_it_takes(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(admin=True)
    for method, path, allowed in [
        ("PATCH", "/_proxy/cassette", "DELETE, GET, HEAD, PUT"),
        ("GET", "/_proxy/cassette/rewind", "POST"),
        ("PUT", "/_proxy/faults/7", "DELETE"),
        ("POST", "/_proxy/health", "GET, HEAD"),
    ]:
        answer = await call(proxy.url, method, path, {}, token=None)
        assert answer.status == 405, (method, path)
        assert answer.headers["X-Proxy-Source"] == "proxy"
        assert answer.headers["Allow"] == allowed
        assert answer.error()["code"] == "method_not_allowed"
        assert answer.error()["message"] == f"{method} {path} is not allowed; it takes {allowed}"
    unknown = await call(proxy.url, "PATCH", "/_proxy/cassettes", {}, token=None)
    assert unknown.status == 404  # a path that is not a route stays a 404
