"""Helpers for virtual-charger tests: a coroutine run with a hard timeout in a fresh event loop, a paced run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.paced_run import PacedResult, PacedRun


@pytest.fixture
def arun() -> Callable[..., Any]:
    """Run ``coro`` to completion in a new loop, failing after ``timeout_s`` wall seconds."""

    def run(coro: Awaitable[Any], timeout_s: float = 60.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout_s)

        return asyncio.run(bounded())

    return run


PacedRunner = Callable[..., Awaitable[tuple[PacedResult, Any]]]
"""``await paced_run(scenario, during=None, *, run_timeout_s=60.0, **PacedRun_kwargs)`` → (result, during's)."""


@pytest.fixture
def paced_run(tmp_path: Path) -> PacedRunner:
    """A bridged run of a scenario against the test's CSMS (started before, stopped after), to its end.

    The run keeps its transaction queues in ``tmp_path / "state"`` and waits at most 10 wall seconds for
    the chargers' boots (other `PacedRun` arguments as keywords). ``during(runner)``, when given, runs once
    the simulation started (within 15 wall seconds) and its value is returned beside the result; the run
    then ends within ``run_timeout_s`` wall seconds. Whatever happens the run is stopped and awaited.
    """

    async def run(
        scenario: Any,
        during: Callable[[PacedRun], Awaitable[Any]] | None = None,
        *,
        run_timeout_s: float = 60.0,
        **kwargs: Any,
    ) -> tuple[PacedResult, Any]:
        runner = PacedRun(scenario, **{"state_dir": tmp_path / "state", "boot_timeout_s": 10.0, **kwargs})
        task = asyncio.ensure_future(runner.run())
        try:
            out = None
            if during is not None:
                await asyncio.wait_for(runner.started.wait(), 15)
                out = await during(runner)
            result = await asyncio.wait_for(task, run_timeout_s)
        finally:
            runner.stop()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return result, out

    return run


class RawCsms:
    """A CSMS of raw frames over `websockets`, strict and minimal like a third-party one (127.0.0.1, port 0).

    It answers what chargers send with fixed, schema-valid payloads (``answers`` overrides them by action;
    an override returning None leaves the request for the test to answer),
    remembers every frame, the path each charger connected to and the transactions it considers open, and
    lets a test send any text and await the answer to a message id.
    """

    def __init__(self, answers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] | None = None) -> None:
        self.answers = answers or {}
        self.paths: list[str] = []  # request path (with the query string) of every connection, in order
        self.received: list[tuple[str, list[Any]]] = []  # (path, frame) of every frame a charger sent
        self.open_tx: dict[str, dict[str, Any]] = {}  # transaction id → its start payload
        self.ended: list[dict[str, Any]] = []  # StopTransaction / TransactionEvent Ended payloads
        self._ws: dict[str, Any] = {}  # path → connection
        self._replies: dict[str, asyncio.Future[list[Any]]] = {}
        self._next_tx = 0
        self._server: Any = None
        self.url = ""
        self.changed = asyncio.Event()

    async def __aenter__(self) -> RawCsms:
        from websockets.asyncio.server import serve
        from websockets.typing import Subprotocol

        self._server = await serve(
            self._serve, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 10)

    def calls(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the requests ``action`` chargers sent, in order."""
        return [f[3] for _, f in self.received if f[0] == 2 and len(f) == 4 and f[2] == action]

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait (wall seconds) until ``predicate()`` holds after some frame arrived."""

        async def poll() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(poll(), timeout_s)

    async def send(self, path: str, text: str, reply_id: str | None = None, timeout_s: float = 5.0) -> Any:
        """Send ``text`` as it is to the charger connected at ``path``; with ``reply_id``, return its answer."""
        waiter = asyncio.get_running_loop().create_future() if reply_id is not None else None
        if waiter is not None:
            self._replies[reply_id] = waiter  # type: ignore[index]
        await self._ws[path].send(text)
        return None if waiter is None else await asyncio.wait_for(waiter, timeout_s)

    def _answer(self, action: str, payload: dict[str, Any], v201: bool) -> dict[str, Any] | None:
        if action in self.answers:
            return self.answers[action](payload)
        now = "2026-01-01T00:00:00Z"
        accepted = {"status": "Accepted"}
        if action == "BootNotification":
            return {"currentTime": now, "interval": 300, "status": "Accepted"}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "Authorize":
            return {"idTokenInfo": accepted} if v201 else {"idTagInfo": accepted}
        if action == "StartTransaction":
            self._next_tx += 1
            self.open_tx[str(self._next_tx)] = payload
            return {"transactionId": self._next_tx, "idTagInfo": accepted}
        if action == "StopTransaction":
            self.open_tx.pop(str(payload.get("transactionId")), None)
            self.ended.append(payload)
            return {}
        if action == "TransactionEvent":
            tx_id = payload["transactionInfo"]["transactionId"]
            if payload["eventType"] == "Started":
                self.open_tx[tx_id] = payload
            elif payload["eventType"] == "Ended":
                self.open_tx.pop(tx_id, None)
                self.ended.append(payload)
            return {}
        if action in ("NotifyEVChargingNeeds",):
            return accepted
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        return {}

    async def _serve(self, ws: Any) -> None:
        import json

        path = ws.request.path
        self.paths.append(path)
        self._ws[path] = ws
        v201 = ws.subprotocol == "ocpp2.0.1"
        self.changed.set()
        async for raw in ws:
            frame = json.loads(raw)
            self.received.append((path, frame))
            self.changed.set()
            if frame[0] in (3, 4):
                waiter = self._replies.pop(frame[1], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                continue
            body = self._answer(frame[2], frame[3], v201)
            if body is not None:  # None: the test answers itself
                await ws.send(json.dumps([3, frame[1], body]))


@pytest.fixture
def raw_csms() -> Callable[..., RawCsms]:
    """The `RawCsms` class, for ``async with`` in a test (answers by action as its argument)."""
    return RawCsms
