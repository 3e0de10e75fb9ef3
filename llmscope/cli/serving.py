"""`llmscope serve`'s web server: textual-serve with an Origin check, a per-launch token and a session cap.

textual-serve alone answers a WebSocket from any page the presenter's browser visits and starts a
full app per connection through a shell. Here a connection must come from the served page itself
(its Origin and Host), carry the secret token printed at start, and wait its turn when the session
cap is reached; the app runs from an argument list, never through a shell.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import shlex
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("textual-serve")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
STOP_GRACE_S = 10.0
"""How long a closed session's app gets to quit before it is killed (a hung app must not hold a slot)."""
SERVABLE_COMMANDS = ("tui", "demo", "replay", "compare")
"""llmscope commands that open a Textual app (the only ones a browser can drive)."""


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (localhost or a loopback address)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def served_argv(python: str, command: str) -> list[str]:
    """The app's argument list for `--command` (split like a shell would, but never run by one)."""
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise ValueError(f"--command {command!r}: {error}") from None
    if not words or words[0] not in SERVABLE_COMMANDS:
        raise ValueError(
            f"--command {command!r}: serve runs one of {', '.join(SERVABLE_COMMANDS)} with its options "
            "(no shell: ';', '|' and '&&' are not special)"
        )
    return [python, "-m", "llmscope", *words]


class ExecAppService(AppService):
    """textual-serve's per-connection app, started from an argument list and killed if it will not quit."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        environment = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the app to quit; after STOP_GRACE_S, kill it."""
        task = self._task
        if task is None:
            return
        await self.send_meta({"type": "quit"})
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_S)
        except asyncio.TimeoutError:
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
            await task
        self._task = None


class GuardedServer(Server):
    """A textual-serve Server that only the served page, holding the launch token, can drive."""

    def __init__(self, argv: list[str], *, host: str, port: int, max_sessions: int = 1, token: str | None = None):
        super().__init__(shlex.join(argv), host=host, port=port, title="llmscope")
        self.argv = argv
        self.token = token or secrets.token_urlsafe(24)
        self.max_sessions = max_sessions
        self.loopback = is_loopback(host)
        self.active_sessions = 0
        self._slots: asyncio.Semaphore | None = None
        url_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.page_url = f"http://{url_host}:{port}/?token={self.token}"

    # ------------------------------------------------------------------ checks
    def host_problem(self, request: web.Request) -> str | None:
        """On a loopback bind, the Host header must name this machine (defeats DNS rebinding)."""
        if not self.loopback:
            return None
        name = urlsplit(f"//{request.host}").hostname or ""
        allowed = {item.strip("[]") for item in LOOPBACK_NAMES}
        if name.lower() not in allowed or (urlsplit(f"//{request.host}").port or 80) != self.port:
            return f"Host {request.host!r} is not this server"
        return None

    def token_ok(self, given: str) -> bool:
        return secrets.compare_digest(given.encode(), self.token.encode())

    def origin_problem(self, request: web.Request) -> str | None:
        """A browser always sends Origin on a WebSocket: it must be the page's own (same host and port)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return "no Origin header"
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.host.lower():
            return f"Origin {origin!r} is not the served page's"
        return None

    # ------------------------------------------------------------------ routes
    async def _make_app(self) -> web.Application:
        app = web.Application()
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws/{token}", self.handle_websocket, name="websocket"),
                web.static("/static", self.statics_path, show_index=False, name="static"),
            ]
        )
        app.middlewares.append(self._check_host)
        app.on_startup.append(self.on_startup)
        return app

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if problem := self.host_problem(request):
            log.warning("refused %s: %s", request.path, problem)
            raise web.HTTPForbidden(text=f"llmscope serve: {problem}\n")
        return await handler(request)

    async def on_startup(self, app: web.Application) -> None:
        self._slots = asyncio.Semaphore(self.max_sessions)

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, only for the URL with the token (it embeds the token in its WebSocket address)."""
        if not self.token_ok(request.query.get("token", "")):
            raise web.HTTPForbidden(text="llmscope serve: open the exact URL printed at start (it carries a token)\n")
        context = {
            "font_size": min(64, max(6, to_int(request.query.get("fontsize", "16"), 16))),
            "app_websocket_url": f"ws://{request.host}/ws/{self.token}",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Check token and Origin before the upgrade; then wait for a free slot (saying so) and run the app."""
        if not self.token_ok(request.match_info.get("token", "")):
            log.warning("refused a WebSocket without the launch token")
            raise web.HTTPForbidden(text="llmscope serve: wrong token\n")
        if problem := self.origin_problem(request):
            log.warning("refused a WebSocket: %s", problem)
            raise web.HTTPForbidden(text=f"llmscope serve: {problem}\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        size = [
            min(1000, max(10, to_int(request.query.get("width", "80"), 80))),
            min(500, max(5, to_int(request.query.get("height", "24"), 24))),
        ]
        assert self._slots is not None, "on_startup creates the slots"
        if self._slots.locked():
            await websocket.send_bytes(
                f"\r\nllmscope: {self.max_sessions} browser session(s) already open (the limit, --max-sessions). "
                "Waiting for one to close…\r\n".encode()
            )
        acquire = asyncio.ensure_future(self._slots.acquire())
        receive = asyncio.ensure_future(websocket.receive())
        proceed = False
        try:
            while not acquire.done():
                await asyncio.wait({acquire, receive}, return_when=asyncio.FIRST_COMPLETED)
                if receive.done() and not acquire.done():
                    if not await self._while_waiting(websocket, receive.result(), size):
                        return websocket
                    receive = asyncio.ensure_future(websocket.receive())
            proceed = True
        finally:
            if not proceed:
                receive.cancel()
                acquire.cancel()
                if acquire.done() and not acquire.cancelled():
                    self._slots.release()  # the slot arrived just as the browser left
        self.active_sessions += 1
        try:
            await self._run_app(websocket, receive, size)
        finally:
            self.active_sessions -= 1
            self._slots.release()
        return websocket

    async def _while_waiting(self, websocket: web.WebSocketResponse, message: Any, size: list[int]) -> bool:
        """Answer pings and remember resizes while queued; False once the browser has gone."""
        if _closing(message):
            return False
        envelope = _envelope(message)
        if envelope and envelope[0] == "ping":
            await websocket.send_json(["pong", envelope[1] if len(envelope) > 1 else None])
        elif envelope and envelope[0] == "resize" and isinstance(envelope[1], dict):
            size[:] = [to_int(str(envelope[1].get("width")), size[0]), to_int(str(envelope[1].get("height")), size[1])]
        return True

    async def _run_app(self, websocket: web.WebSocketResponse, receive: asyncio.Future[Any], size: list[int]) -> None:
        service = ExecAppService(
            self.argv,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        await service.start(size[0], size[1])
        try:
            while True:
                message = await receive
                if _closing(message):
                    break
                envelope = _envelope(message)
                if envelope:
                    await self._forward(websocket, service, envelope)
                receive = asyncio.ensure_future(websocket.receive())
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            receive.cancel()
            await service.stop()
            if not websocket.closed:
                await websocket.close()

    async def _forward(self, websocket: web.WebSocketResponse, service: AppService, envelope: list[Any]) -> None:
        kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
        if kind == "stdin" and isinstance(data, str):
            await service.send_bytes(data.encode("utf-8", "replace"))
        elif kind == "resize" and isinstance(data, dict):
            await service.set_terminal_size(to_int(str(data.get("width")), 80), to_int(str(data.get("height")), 24))
        elif kind == "ping":
            await websocket.send_json(["pong", data])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()


def _closing(message: Any) -> bool:
    return message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def _envelope(message: Any) -> list[Any] | None:
    """A browser message as [kind, data], or None for anything else (binary, bad JSON)."""
    if message.type != WSMsgType.TEXT:
        return None
    try:
        envelope = json.loads(message.data)
    except ValueError:
        return None
    return envelope if isinstance(envelope, list) and envelope and isinstance(envelope[0], str) else None
