"""A CSMS of our own for bridged-run tests: OCPP 1.6 or 2.0.1 as raw JSON frames over `websockets`.

It behaves the way third-party CSMSs were seen to: it can answer late (``delay_s`` wall seconds on
every answer), freeze (hold every answer until `thaw`), turn id tags away (``authorize`` /
``start_status``), and send its own requests (`call`). Every frame it receives is recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Received:
    """One Call from a charger."""

    charger: str
    action: str
    payload: dict[str, Any]
    wall_s: float
    unique_id: str = ""


@dataclass
class RawCsms:
    """The CSMS: `start` binds 127.0.0.1 on a free port, `url` is the chargers' base URL.

    Attributes:
        version: ``"1.6"`` or ``"2.0.1"`` (the subprotocol and the shape of its answers).
        delay_s: Wall seconds added before every answer (the latency of a slow backend).
        authorize: ``idTagInfo.status`` (``idTokenInfo.status``) of Authorize answers.
        start_status: ``idTagInfo.status`` of StartTransaction answers (1.6).
        after: Called with (csms, charger, action, payload, answer) once an answer is sent.
    """

    version: str = "1.6"
    delay_s: float = 0.0
    authorize: str = "Accepted"
    start_status: str = "Accepted"
    after: Callable[[RawCsms, str, str, dict[str, Any], dict[str, Any]], Awaitable[None] | None] | None = None
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    replies: list[tuple[str, Any]] = field(default_factory=list)  # (charger, answer to one of our calls)
    connections: dict[str, ServerConnection] = field(default_factory=dict)
    _server: Server | None = None
    _thawed: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _tx: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        """Not frozen at first."""
        self._thawed.set()

    async def start(self) -> RawCsms:
        """Listen on 127.0.0.1, port 0."""
        protocol = "ocpp2.0.1" if self.version == "2.0.1" else "ocpp1.6"
        self._server = await serve(self._serve, "127.0.0.1", 0, subprotocols=[protocol])  # type: ignore[list-item]
        return self

    @property
    def url(self) -> str:
        """The chargers' base URL."""
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close every connection and the server."""
        self._thawed.set()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def freeze(self) -> None:
        """Hold every answer until `thaw`."""
        self._thawed.clear()

    def thaw(self) -> None:
        """Send the held answers."""
        self._thawed.set()

    def of(self, action: str, charger: str | None = None) -> list[Received]:
        """The Calls of one action (of one charger, if given), in arrival order."""
        return [r for r in self.received if r.action == action and charger in (None, r.charger)]

    async def call(self, charger: str, action: str, payload: dict[str, Any], timeout_s: float = 10.0) -> Any:
        """Send a Call to a charger and return its answer's payload (or the CallError frame)."""
        ws = self.connections[charger]
        uid = f"csms-{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[uid] = fut
        await ws.send(json.dumps([2, uid, action, payload]))
        try:
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._pending.pop(uid, None)

    def _answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": _now(), "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": _now()}
        if action == "Authorize" and self.version == "2.0.1":
            return {"idTokenInfo": {"status": self.authorize}}
        if action == "Authorize":
            return {"idTagInfo": {"status": self.authorize}}
        if action == "NotifyEVChargingNeeds":
            return {"status": "Accepted"}
        if action == "StartTransaction":
            return {"transactionId": next(self._tx), "idTagInfo": {"status": self.start_status}}
        if action == "StopTransaction":
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        return {}

    async def _reply(self, ws: ServerConnection, charger: str, uid: str, action: str, payload: dict[str, Any]) -> None:
        await self._thawed.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        answer = self._answer(action, payload)
        try:
            await ws.send(json.dumps([3, uid, answer]))
        except ConnectionClosed:
            return
        self.answers.append((charger, action, answer))
        if self.after is not None:
            res = self.after(self, charger, action, payload, answer)
            if res is not None:
                await res

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, ws: ServerConnection) -> None:
        charger = (ws.request.path if ws.request is not None else "/?").rstrip("/").rsplit("/", 1)[-1]
        self.connections[charger] = ws
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == 2:
                    self.received.append(Received(charger, msg[2], msg[3], time.monotonic(), msg[1]))
                    self._spawn(self._reply(ws, charger, msg[1], msg[2], msg[3]))
                elif msg[0] in (3, 4):
                    self.replies.append((charger, msg[2] if msg[0] == 3 else msg))
                    fut = self._pending.get(msg[1])
                    if fut is not None and not fut.done():
                        fut.set_result(msg[2] if msg[0] == 3 else msg)
        except ConnectionClosed:
            pass
