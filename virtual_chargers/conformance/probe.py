"""`Probe`: one test charger's websocket to the CSMS under test, frame by frame.

Conformance cases need exact control over what goes on the wire (a wrong message type id, a reused
message id, a truncated frame), which a full virtual charger would never send, so a case talks through a
probe: ``call`` sends a request and waits for its answer, ``send_text`` sends any text, ``expect`` waits
for a request from the CSMS. Every frame is recorded in the case's list (for the report) and in the
run's `FrameLog` (the frame log and counts of ``chargetwin chargers``). Requests of the CSMS nobody waits
for are answered with a minimal valid response, so a CSMS that sends GetConfiguration after every boot is
not left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from virtual_chargers.connection import SecurityConfig, connect_charger
from virtual_chargers.framelog import FrameLog
from virtual_chargers.wire import validate

__all__ = ["ConnectError", "Incoming", "Probe", "Reply", "default_answer"]


class ConnectError(Exception):
    """The CSMS refused or never completed the websocket handshake; the message says how."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reply:
    """The CSMS's answer to one request: a CallResult, a CallError, nothing in time, or a closed socket.

    Attributes:
        kind: "result", "error", "timeout" or "closed".
        payload: CallResult payload (or CallError details).
        error_code: CallError code ("" otherwise).
        description: CallError description.
        rtt_s: Wall seconds until the answer.
    """

    kind: str
    payload: Any = None
    error_code: str = ""
    description: str = ""
    rtt_s: float = 0.0

    def __str__(self) -> str:
        if self.kind == "result":
            return f"CallResult {json.dumps(self.payload, separators=(',', ':'))[:300]}"
        if self.kind == "error":
            return f"CallError {self.error_code} ({self.description[:120]})"
        return {"timeout": "no answer in time", "closed": "the connection was closed"}[self.kind]


@dataclass(frozen=True)
class Incoming:
    """A request the CSMS sent."""

    unique_id: str
    action: str
    payload: Any
    schema_error: str = ""  # why the request breaks its schema ("" if it is valid)


# Minimal valid answers to CSMS requests nobody waits for (status Accepted where there is one).
_DEFAULT_ANSWERS: dict[str, dict[str, dict[str, Any]]] = {
    "1.6": {
        "GetConfiguration": {"configurationKey": [], "unknownKey": []},
        "GetLocalListVersion": {"listVersion": 0},
        "GetDiagnostics": {},
        "UpdateFirmware": {},
        "GetCompositeSchedule": {"status": "Rejected"},
        "UnlockConnector": {"status": "Unlocked"},
        "DataTransfer": {"status": "UnknownVendorId"},
        "TriggerMessage": {"status": "Accepted"},
        "ClearChargingProfile": {"status": "Accepted"},
    },
    "2.0.1": {
        "GetVariables": {"getVariableResult": []},
        "SetVariables": {"setVariableResult": []},
        "GetLocalListVersion": {"versionNumber": 0},
        "GetCompositeSchedule": {"status": "Rejected"},
        "UnlockConnector": {"status": "Unlocked"},
        "DataTransfer": {"status": "UnknownVendorId"},
        "GetLog": {"status": "Accepted", "filename": "log.txt"},
        "GetTransactionStatus": {"messagesInQueue": False},
        "ClearChargingProfile": {"status": "Accepted"},
        "GetChargingProfiles": {"status": "NoProfiles"},
        "GetInstalledCertificateIds": {"status": "NotFound"},
        "ClearVariableMonitoring": {"clearMonitoringResult": []},
        "SetVariableMonitoring": {"setMonitoringResult": []},
        "CustomerInformation": {"status": "Accepted"},
        "GetDisplayMessages": {"status": "Unknown"},
        "ClearDisplayMessage": {"status": "Unknown"},
        "SetDisplayMessage": {"status": "Accepted"},
        "CostUpdated": {},
        "ClearedChargingLimit": {},
    },
}


def default_answer(ocpp: str, action: str) -> dict[str, Any] | None:
    """A minimal valid CallResult payload for a CSMS request (None: unknown action)."""
    table = _DEFAULT_ANSWERS[ocpp]
    if action in table:
        return dict(table[action])
    payload: dict[str, Any] = {"status": "Accepted"}
    try:
        validate(ocpp, MessageType.CallResult, action, payload)
    except OCPPError:
        return None
    return payload


class Probe:
    """A test charger's websocket to the CSMS, recording every frame.

    Args:
        url: The CSMS URL (the charger id is added as the last path segment).
        charger_id: The charger id (sent as it is: a case may put odd characters in it on purpose).
        ocpp: "1.6" or "2.0.1".
        log: The run's frame log.
        frames: The case's frame list (dicts appended in order).
        t0: Wall time the case began (frame times are relative to it).
        security, password, ssl_context: How to authenticate.
        timeout_s: Default wall seconds to wait for an answer.
    """

    def __init__(
        self,
        url: str,
        charger_id: str,
        ocpp: str,
        *,
        log: FrameLog,
        frames: list[dict[str, Any]],
        t0: float,
        security: SecurityConfig | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url, self.charger_id, self.ocpp = url, charger_id, ocpp
        self.log, self.frames, self.t0 = log, frames, t0
        self.security = security or SecurityConfig()
        self.password, self.ssl_context = password, ssl_context
        self.timeout_s = timeout_s
        self.ws: ClientConnection | None = None
        self.close_code: int | None = None
        self.unanswered_calls: list[Incoming] = []  # CSMS requests answered by default
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._sent_at: dict[str, float] = {}
        self._expecting: dict[str, asyncio.Queue[Incoming]] = {}
        self._stray: list[str] = []  # answers to no request of ours
        self._reader: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    # connection --------------------------------------------------------------------------------

    async def connect(self, open_timeout_s: float | None = None) -> Probe:
        """Open the websocket.

        Raises:
            ConnectError: The CSMS refused the handshake (HTTP status in ``status``) or could not be reached.
        """
        try:
            self.ws = await connect_charger(
                self.url,
                self.charger_id,
                f"ocpp{self.ocpp}",
                self.security,
                self.password,
                self.ssl_context,
                open_timeout_s=open_timeout_s or self.timeout_s,
            )
        except InvalidStatus as exc:
            raise ConnectError(
                f"handshake refused with HTTP {exc.response.status_code}", exc.response.status_code
            ) from None
        except (OSError, InvalidHandshake, TimeoutError, ConnectionRefusedError) as exc:
            raise ConnectError(f"cannot connect: {type(exc).__name__}: {exc}") from None
        self._closed.clear()
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def close(self) -> None:
        """Close the websocket (if open) and stop reading."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None

    @property
    def is_open(self) -> bool:
        """Whether the websocket is still open."""
        return self.ws is not None and not self._closed.is_set()

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the CSMS to close the connection; True if it did."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # sending -----------------------------------------------------------------------------------

    def next_id(self) -> str:
        """A fresh message id."""
        return f"{self.charger_id[:12]}-{next(self._ids)}"

    async def send_text(self, text: str) -> None:
        """Send ``text`` as it is (recorded like every frame)."""
        if self.ws is None:
            raise RuntimeError("probe not connected")
        self._record("tx", text)
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            self._closed.set()

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        check_schema: bool = True,
        unique_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """Send a request and wait for its answer (a `Reply`, never an exception for what the CSMS did).

        ``check_schema``: refuse to send a request that breaks its schema (a mistake in the case, not the
        CSMS); a negative case turns it off on purpose.
        """
        if check_schema:
            validate(self.ocpp, MessageType.Call, action, payload)
        uid = unique_id or self.next_id()
        text = json.dumps([2, uid, action, payload], separators=(",", ":"))
        return await self.call_text(text, uid, timeout_s)

    async def call_text(self, text: str, reply_id: str, timeout_s: float | None = None) -> Reply:
        """Send ``text`` and wait for the answer carrying ``reply_id``."""
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[reply_id] = fut
        self._sent_at[reply_id] = time.monotonic()
        await self.send_text(text)
        closed: asyncio.Future[Any] = asyncio.ensure_future(self._closed.wait())
        waiting: set[asyncio.Future[Any]] = {fut, closed}
        try:
            done, _ = await asyncio.wait(waiting, timeout=timeout_s or self.timeout_s, return_when="FIRST_COMPLETED")
        finally:
            closed.cancel()
            self._pending.pop(reply_id, None)
        if fut in done:
            return fut.result()
        if closed in done:
            return Reply("closed")
        return Reply("timeout")

    # receiving ---------------------------------------------------------------------------------

    def expect(self, action: str) -> asyncio.Queue[Incoming]:
        """Start waiting for requests ``action`` from the CSMS (call before asking the CSMS to send it)."""
        return self._expecting.setdefault(action, asyncio.Queue())

    async def next_request(self, action: str, timeout_s: float | None = None) -> Incoming | None:
        """The next request ``action`` from the CSMS, or None if none came in time."""
        queue = self.expect(action)
        try:
            return await asyncio.wait_for(queue.get(), timeout_s or self.timeout_s)
        except TimeoutError:
            return None

    async def answer(self, request: Incoming, payload: dict[str, Any]) -> None:
        """Answer a CSMS request with a CallResult."""
        await self.send_text(json.dumps([3, request.unique_id, payload], separators=(",", ":")))

    async def answer_error(self, request: Incoming, code: str, description: str = "") -> None:
        """Answer a CSMS request with a CallError."""
        await self.send_text(json.dumps([4, request.unique_id, code, description, {}], separators=(",", ":")))

    @property
    def stray_answers(self) -> list[str]:
        """Frames that answered no request of ours."""
        return list(self._stray)

    def _record(self, direction: str, text: str) -> None:
        self.frames.append(
            {"t": round(time.monotonic() - self.t0, 4), "charger": self.charger_id, "dir": direction, "frame": text}
        )
        self.log.frame(self.charger_id, direction, text)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                self._record("rx", text)
                await self._dispatch(text)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self._closed.set()

    async def _dispatch(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, list) or len(msg) < 3:
            return
        kind, uid = msg[0], str(msg[1])
        if kind in (3, 4):
            fut = self._pending.get(uid)
            if fut is None or fut.done():
                self._stray.append(text)
                return
            rtt = time.monotonic() - self._sent_at.pop(uid, time.monotonic())
            if kind == 3:
                fut.set_result(Reply("result", msg[2], rtt_s=rtt))
            else:
                code = str(msg[2]) if len(msg) > 2 else ""
                desc = str(msg[3]) if len(msg) > 3 else ""
                fut.set_result(Reply("error", msg[4] if len(msg) > 4 else None, code, desc, rtt))
            return
        if kind == 2 and len(msg) >= 4:
            action, payload = str(msg[2]), msg[3]
            problem = ""
            try:
                validate(self.ocpp, MessageType.Call, action, payload)
            except OCPPError as exc:
                problem = f"{type(exc).__name__}: {exc.description} {exc.details}"
            request = Incoming(uid, action, payload, problem)
            queue = self._expecting.get(action)
            if queue is not None:
                queue.put_nowait(request)
                return
            self.unanswered_calls.append(request)
            answer = default_answer(self.ocpp, action)
            if answer is None:
                await self.answer_error(request, "NotImplemented", f"unknown action {action}")
            else:
                await self.answer(request, answer)
