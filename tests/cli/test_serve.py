"""`llmscope serve` answers a browser on localhost with the textual-serve page (the app starts per connection)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_on_localhost():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmscope", "serve", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        page = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode("utf-8", "replace")
            except OSError:
                time.sleep(0.5)
        assert "llmscope" in page and "<html" in page.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
