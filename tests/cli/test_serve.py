"""`llmscope serve`: the page and its WebSocket answer only the served page holding the launch token.

The subprocess tests drive the real command on loopback with raw HTTP and WebSocket handshakes (as a
hostile page's browser would send them); the in-process tests run the server on a fake app to check
the session cap and that no shell is involved.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp import ClientSession, WSMsgType
from aiohttp.test_utils import TestServer

from llmscope.cli.serving import GuardedServer, is_loopback, served_argv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def handshake(port: int, path: str, origin: str | None, host: str | None = None) -> str:
    """Send a raw WebSocket upgrade and return the status line of the answer."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return connection.recv(4096).split(b"\r\n", 1)[0].decode()


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def served():
    """`llmscope serve` on loopback; yields (port, token)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmscope", "serve", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "300"},
        text=True,
    )
    try:
        banner = server.stderr.readline()  # the first line names the URL (a non-loopback host warns first)
        found = re.search(r"\?token=([A-Za-z0-9_-]+)", banner)
        assert found, banner
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port, found.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_page_needs_the_token(served):
    port, token = served
    status, page = fetch(f"http://127.0.0.1:{port}/?token={token}")
    assert status == 200 and "llmscope" in page and "<html" in page.lower()
    assert f"ws://127.0.0.1:{port}/ws/{token}" in page
    assert fetch(f"http://127.0.0.1:{port}/")[0] == 403
    assert fetch(f"http://127.0.0.1:{port}/?token=guess")[0] == 403


def test_websocket_from_a_foreign_origin_is_refused(served):
    port, token = served
    assert " 403 " in handshake(port, f"/ws/{token}", "http://evil.example")
    assert " 403 " in handshake(port, f"/ws/{token}", f"http://127.0.0.1:{port + 1}")
    assert " 403 " in handshake(port, f"/ws/{token}", None)
    assert " 403 " in handshake(port, "/ws/wrong-token", f"http://127.0.0.1:{port}")


def test_dns_rebinding_host_is_refused(served):
    """A hostile name resolving to 127.0.0.1 sends its own Host and Origin: the Host check stops it."""
    port, token = served
    rebound = f"evil.example:{port}"
    assert " 403 " in handshake(port, f"/ws/{token}", f"http://{rebound}", host=rebound)


def test_non_loopback_host_needs_public_and_command_gets_no_shell(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "llmscope", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "--public" in result.stderr and "Traceback" not in result.stderr
    marker = tmp_path / "X"
    result = subprocess.run(
        [sys.executable, "-m", "llmscope", "serve", "--port", str(free_port()), "--command", f"models; touch {marker}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not marker.exists()


def test_served_argv_is_an_argument_list():
    assert served_argv("py", "tui --model 'tiny dense'") == ["py", "-m", "llmscope", "tui", "--model", "tiny dense"]
    assert served_argv("py", "replay 'a; touch X'")[-1] == "a; touch X"
    for bad in ("models; touch X", "", "'unclosed", "rm -rf /"):
        with pytest.raises(ValueError):
            served_argv("py", bad)
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org") and not is_loopback("192.168.1.2")


FAKE_APP = r"""
import json, sys
out = sys.stdout.buffer
out.write(b"__GANGLION__\n")
payload = b"fake app ready"
out.write(b"D" + len(payload).to_bytes(4, "big") + payload)
out.flush()
source = sys.stdin.buffer
while True:
    kind = source.read(1)
    if not kind:
        break
    data = source.read(int.from_bytes(source.read(4), "big"))
    if kind == b"M" and json.loads(data).get("type") == "quit":
        break
"""


async def _cap_scenario(tmp_path: Path) -> list[str]:
    port = free_port()
    server = GuardedServer([sys.executable, "-c", FAKE_APP], host="127.0.0.1", port=port, max_sessions=1)
    test_server = TestServer(await server._make_app(), host="127.0.0.1", port=port)
    await test_server.start_server()
    seen: list[str] = []
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    url = f"http://127.0.0.1:{port}/ws/{server.token}?width=80&height=24"

    async def first_data(ws) -> str:
        message = await asyncio.wait_for(ws.receive(), 20)
        assert message.type == WSMsgType.BINARY, message
        return message.data.decode()

    try:
        async with ClientSession() as client:
            first = await client.ws_connect(url, headers=origin)
            seen.append(await first_data(first))
            second = await client.ws_connect(url, headers=origin)
            seen.append(await first_data(second))
            assert server.active_sessions == 1
            await first.close()
            seen.append(await first_data(second))
            await second.close()
            for _ in range(100):
                if server.active_sessions == 0:
                    break
                await asyncio.sleep(0.05)
            seen.append(f"active={server.active_sessions}")
    finally:
        await test_server.close()
    return seen


def test_session_cap_queues_with_a_message(tmp_path: Path):
    seen = asyncio.run(_cap_scenario(tmp_path))
    assert seen[0] == "fake app ready"
    assert "already open" in seen[1] and "Waiting" in seen[1]
    assert seen[2] == "fake app ready"  # the queued browser got the app once the first one left
    assert seen[3] == "active=0"
