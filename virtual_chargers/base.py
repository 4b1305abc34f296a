"""`VirtualCharger`: the version-independent life of an emulated charge point.

It owns the connection (connect with backoff, reconnect, security profile), the clock, the
connectors with their meters and charging-profile limits, the persisted queue of transaction
messages, frame logging, CSMS-violation handling and fault injection. A subclass per OCPP version
(`virtual_chargers.v16.V16Charger`, `virtual_chargers.v201`) mixes in that version's
``ocpp.<version>.ChargePoint`` and provides the messages: boot, heartbeat, status, transactions and
the ``@on`` handlers for what the CSMS sends.

Life of a charger::

    run() ─ connect (backoff + jitter) ─ boot() until Accepted ─ after_boot() ─┬─ heartbeat loop
                    ▲                                                          ├─ queue delivery loop
                    └──────── connection lost / reboot / CSMS unreachable ◄────┘
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import ssl
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ocpp.charge_point import ChargePoint
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from sim.charging_profiles import (
    ChargingProfile,
    ProfileSet,
    charger_max_at,
    in_force_span,
    limit_at,
    next_change_t_s,
)
from sim.ev import ProfileCache
from virtual_chargers.clock import ChargerClock, SimClock, ocpp_time, parse_ocpp_time
from virtual_chargers.connection import Backoff, SecurityConfig, charger_url, connect_charger
from virtual_chargers.faults import (
    ClockDrift,
    ConnectorFault,
    CsmsUnreachable,
    DropConnection,
    Fault,
    MeterJump,
    MeterStuck,
    MissingResponses,
    Reboot,
    SlowResponses,
)
from virtual_chargers.framelog import FrameLog
from virtual_chargers.meter import EVSession, Meter
from virtual_chargers.rpc import (
    CALL_ERROR_CODES,
    FrameError,
    RpcError,
    call_error_code,
    csms_at_fault,
    parse_frame,
)
from virtual_chargers.txqueue import QueuedMessage, TxStore
from virtual_chargers.wire import handle_call, snake_keys, to_wire, validate

__all__ = [
    "ChargerContext",
    "ChargerSpec",
    "Connector",
    "ConnectorSpec",
    "CsmsCallError",
    "OfflineError",
    "VirtualCharger",
]


class OfflineError(ConnectionError):
    """A request was made while the charger has no accepted connection."""


class CsmsCallError(Exception):
    """The CSMS answered our request with a CallError."""

    def __init__(self, action: str, error: OCPPError) -> None:
        """Keep the action and the library's error."""
        super().__init__(f"{action}: CSMS answered {error.code}: {error.description}")
        self.action = action
        self.error = error


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """One connector's hardware: rating, AC or DC, voltage, phases and its OCPP 2.0.1 ConnectorType.

    ``connector_type`` None: ``cCCS2`` for DC, ``cType2`` for AC.
    """

    max_power_kw: float
    dc: bool = False
    voltage_v: float = 230.0
    phases: int = 3
    connector_type: str | None = None
    discharge_kw: float = 0.0  # > 0: bidirectional (V2X), it accepts negative charging-profile limits (2.0.1)


@dataclass(frozen=True)
class ChargerSpec:
    """What a charger is: its id (the last part of its URL), connectors and identity strings.

    ``shared_power_kw``: a cabinet whose connectors share this power, split equally among those drawing
    (as `sim.hardware` does); None: every connector has its own rating.
    """

    id: str
    connectors: tuple[ConnectorSpec, ...] = (ConnectorSpec(22.0),)
    vendor: str = "chargetwin"
    model: str = "virtual"
    serial: str | None = None
    firmware: str = "1.0.0"
    shared_power_kw: float | None = None

    def __post_init__(self) -> None:
        """Fail fast on an id the URL cannot carry or a charger without connectors."""
        if not self.id or any(c in self.id for c in "/?# "):
            raise ValueError(f"charger id {self.id!r} must be non-empty without '/', '?', '#' or spaces")
        if not self.connectors:
            raise ValueError(f"charger {self.id}: needs at least one connector")
        if self.shared_power_kw is not None and not self.shared_power_kw > 0:
            raise ValueError(f"charger {self.id}: shared_power_kw(={self.shared_power_kw}) must be > 0")


@dataclass
class ChargerContext:
    """What all chargers of a process share: clock, frame log, queue store, CSMS address and settings.

    Times ending in ``_s`` are simulated seconds except ``response_timeout_s`` and ``open_timeout_s``,
    which are wall seconds (network waits do not speed up with the clock).
    """

    clock: SimClock
    log: FrameLog
    store: TxStore
    csms_url: str
    security: SecurityConfig = field(default_factory=SecurityConfig)
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    profiles: ProfileCache = field(default_factory=ProfileCache)
    seed: int = 0
    response_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    boot_time_s: float = 30.0
    backoff_base_s: float = 10.0
    backoff_max_s: float = 600.0
    history: int = 500  # frames each charger keeps in memory for assertions (the file keeps all)
    run_end_t_s: float = math.inf  # when the run ends (a profile in force only after it is a QA warning)


class Connector:
    """State of one connector: its meter, charging profiles, status and the session on it."""

    def __init__(self, connector_id: int, spec: ConnectorSpec, profiles: ProfileCache) -> None:
        """An available connector with no EV."""
        self.id = connector_id
        self.spec = spec
        self.meter = Meter(spec.max_power_kw, spec.dc, spec.voltage_v, spec.phases, profiles)
        self.profile_set = ProfileSet()
        self.status = "Available"
        self.error_code = "NoError"
        self.operative = True
        self.pending_operative: bool | None = None  # ChangeAvailability scheduled until the session ends
        self.fault: str | None = None  # error code of an injected fault
        self.ev: EVSession | None = None
        self.id_tag: str | None = None
        self.tx_ref: str | None = None  # our reference of the running transaction
        self.tx_id: str | None = None  # the CSMS's id (1.6) or ours (2.0.1)
        self.tx_start_t_s: float | None = None
        self.meter_start_wh = 0.0
        self.reservation_id: int | None = None
        self._limit_t_s = 0.0
        self.share_kw = math.inf  # this connector's part of a shared cabinet's power
        self.drawing = 1  # connectors of the charger drawing power, which share its ChargePointMax limit
        self.meter_task: asyncio.Task[None] | None = None

    def _cap_kw(self, t_s: float) -> float:
        profiles = self.profile_set.profiles
        limit_kw = limit_at(profiles, t_s, self.profile_set.tx_start_t_s)
        return min(limit_kw, self.share_kw, charger_max_at(profiles, t_s) / self.drawing)

    def sync(self, t_s: float) -> None:
        """Bring the meter up to ``t_s`` under the installed profiles, breakpoint by breakpoint."""
        profiles, tx_start = self.profile_set.profiles, self.profile_set.tx_start_t_s
        t = self._limit_t_s
        if profiles:
            while (nxt := next_change_t_s(profiles, t, tx_start)) <= t_s:
                self.meter.set_limit_kw(self._cap_kw(nxt), nxt)
                t = nxt
            self.meter.set_limit_kw(self._cap_kw(t_s), t_s)
        else:
            self.meter.set_limit_kw(self.share_kw, t_s)
        self.meter.advance(t_s)
        self._limit_t_s = max(self._limit_t_s, t_s)

    def limit_kw(self, t_s: float) -> float:
        """The composite charging-profile limit at ``t_s`` (inf: none)."""
        return limit_at(self.profile_set.profiles, t_s, self.profile_set.tx_start_t_s)


class VirtualCharger(ChargePoint):  # type: ignore[misc]
    """An emulated charge point; subclasses add one OCPP version's messages (see the module doc).

    Message ids come from ``_unique_id_generator`` (``uuid.uuid4``), set as the ocpp library's
    ``ChargePoint`` sets it: a test that asserts exact frames replaces it, as with the library.

    Args:
        spec: What the charger is.
        ctx: What all chargers of the process share.
    """

    subprotocol: ClassVar[str]
    ocpp_version: ClassVar[str]

    def __init__(self, spec: ChargerSpec, ctx: ChargerContext) -> None:
        """A stopped charger; `run` brings it up."""
        self.spec = spec
        self.ctx = ctx
        self.clock = ChargerClock(ctx.clock)
        # keyed by the charger's URL, so what was queued for one CSMS never goes to another
        self.queue = ctx.store.queue(charger_url(ctx.csms_url, spec.id))
        self.backoff = Backoff(
            random.Random(f"{ctx.seed}:backoff:{spec.id}"), base_s=ctx.backoff_base_s, max_s=ctx.backoff_max_s
        )
        self.connectors = {i + 1: Connector(i + 1, c, ctx.profiles) for i, c in enumerate(spec.connectors)}
        self.online = asyncio.Event()  # connected, boot accepted and statuses told
        self._session_t_s = -math.inf
        self.accepted = False  # the boot on the current connection was accepted
        self.booted = asyncio.Event()  # set once per boot; cleared by a reboot
        self.boot_count = 0
        self.heartbeat_interval_s = 300.0
        self.last_connect_error: str | None = None
        self.password = ctx.password  # basic-auth password; the CSMS may rotate it (AuthorizationKey)
        self.errors: list[BaseException] = []  # unexpected errors of the charger's own tasks (bugs, not the CSMS)
        # (direction, frame as sent or received): text, parsed only when asked, so that a thousand chargers'
        # histories are not millions of objects for the garbage collector to walk (its pauses were the RTT tail)
        self.history: deque[tuple[str, str | list[Any]]] = deque(maxlen=ctx.history)
        self._history_changed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._bg: set[asyncio.Task[Any]] = set()  # live as long as the charger (meter loops, faults)
        self._session_tasks: set[asyncio.Task[Any]] = set()  # live as long as one connection
        self._stopping = False
        self._reboot = asyncio.Event()
        self._reboot_hard = True
        self._unreachable_until_t_s = -math.inf
        self._slow_until_t_s = -math.inf
        self._slow_delay_s = 0.0
        self._missing_until_t_s = -math.inf
        self._pending_uid: str | None = None  # our request in flight
        self._timed_out: dict[str, str] = {}  # unique id → action of our requests that got no answer in time
        self._reply: asyncio.Future[Any] | None = None  # its answer, set by `route_message`
        self._on_answer: Callable[[dict[str, Any]], None] | None = None  # see `request_wire`
        super().__init__(spec.id, None, response_timeout=ctx.response_timeout_s)

    # ------------------------------------------------------------------ protocol hooks

    @abstractmethod
    async def boot(self) -> None:
        """Send BootNotification until Accepted (honouring Pending/Rejected intervals); set the heartbeat."""

    async def after_boot(self) -> None:
        """Say what the connectors are doing after a boot (StatusNotification / its 2.0.1 equivalent)."""

    @abstractmethod
    async def send_heartbeat(self) -> None:
        """One Heartbeat."""

    @abstractmethod
    async def send_queued(self, msg: QueuedMessage) -> None:
        """Send one queued transaction message; raise `CsmsCallError`, `OfflineError` or TimeoutError on failure."""

    @abstractmethod
    async def plug_in(self, connector_id: int = 1, ev: EVSession | None = None, id_tag: str = "TAG0001") -> None:
        """An EV plugs in and its driver presents ``id_tag``: authorize and start a transaction."""

    @abstractmethod
    async def unplug(self, connector_id: int = 1) -> None:
        """The EV leaves: stop the transaction (reason EVDisconnected) and free the connector."""

    @abstractmethod
    async def sample_meter(self, connector: Connector) -> None:
        """Sample a connector with a transaction and queue its meter values."""

    async def on_reboot(self, hard: bool) -> None:
        """Before a reboot: end transactions (the subclass queues their stop messages)."""

    async def on_connector_fault(self, connector: Connector, error_code: str | None) -> None:
        """A connector became faulted with ``error_code`` (None: the fault cleared)."""

    async def stop_transactions_locally(self) -> None:
        """A graceful shutdown: end every running transaction as stopped at the charger.

        1.6 reason Local, 2.0.1 stoppedReason Local; the stop messages join the queue, delivered while online.
        """

    def meter_interval_s(self) -> float:
        """Simulated seconds between meter samples during a transaction (0: none)."""
        return 60.0

    def transaction_attempts(self) -> int:
        """How often a transaction message the CSMS rejects with a CallError is tried."""
        return 3

    def transaction_retry_interval_s(self) -> float:
        """Wait before retrying a rejected transaction message, times the attempt number."""
        return 60.0

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Connect, boot and serve until `stop`; reconnect whenever the connection is lost."""
        try:
            while not self._stopping:
                await self._serve_once()
                if self._reboot.is_set() and not self._stopping:
                    await self._do_reboot()
        finally:
            await self._cancel(self._session_tasks)
            await self._cancel(self._bg)
            await self._close_ws()

    async def stop(self) -> None:
        """Stop serving and close the connection (the queue keeps what was not delivered)."""
        self._stopping = True
        self._reboot.set()  # wakes `_serve_once`

    def spawn(self, coro: Awaitable[Any], *, session: bool = False) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by the charger (``session``: by the current connection)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        tasks = self._session_tasks if session else self._bg
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """Retrieve a task's error: a lost connection ends it quietly, anything else is recorded."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, OfflineError | ConnectionClosed | TimeoutError):
            self.errors.append(exc)

    async def _serve_once(self) -> None:
        t_s = self.clock.t_s()
        if t_s < self._unreachable_until_t_s:
            await self._wait_or_reboot(self.ctx.clock.sleep_until(self._unreachable_until_t_s))
            return
        try:
            ws = await connect_charger(
                self.ctx.csms_url,
                self.spec.id,
                self.subprotocol,
                self.ctx.security,
                self.password,
                self.ctx.ssl_context,
                self.ctx.open_timeout_s,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.last_connect_error = _describe_connect_error(exc)
            await self._wait_or_reboot(self.clock.sleep(self.backoff.next_s()))
            return
        self.last_connect_error = None
        self._ws = ws
        self._connection = ws
        self._pending_uid = None
        self.ctx.log.summary.connects += 1
        receiver = asyncio.ensure_future(self._receive(ws))
        session = self.spawn(self._session(), session=True)
        reboot = asyncio.ensure_future(self._reboot.wait())
        try:
            await asyncio.wait({receiver, session, reboot}, return_when=asyncio.FIRST_COMPLETED)
            failed = session.exception() if session.done() and not session.cancelled() else None
            if failed is not None and not isinstance(failed, OfflineError):  # a lost connection breaks no rule
                self.ctx.log.violation(self.spec.id, "session", repr(failed))
        finally:
            self.online.clear()
            self.accepted = False
            await self._cancel({receiver, reboot, *self._session_tasks})
            if self._reply is not None and not self._reply.done():  # its answer can no longer come
                self._reply.set_exception(OfflineError(f"{self.spec.id}: connection lost awaiting an answer"))
            await self._close_ws()
            self.ctx.log.summary.disconnects += 1
        if not self._reboot.is_set():
            await self._wait_or_reboot(self.clock.sleep(self.backoff.next_s()))

    async def _wait_or_reboot(self, coro: Awaitable[None]) -> None:
        """Wait for ``coro`` unless a reboot or stop comes first."""
        sleeper = asyncio.ensure_future(coro)
        reboot = asyncio.ensure_future(self._reboot.wait())
        await asyncio.wait({sleeper, reboot}, return_when=asyncio.FIRST_COMPLETED)
        await self._cancel({sleeper, reboot})

    async def _session(self) -> None:
        await self.boot()
        self.boot_count += 1
        self.backoff.reset()
        self.ctx.log.summary.boots_accepted += 1
        self.accepted = True
        self._session_t_s = self.clock.t_s()
        self.spawn(self._deliver_queue(), session=True)
        await self.after_boot()
        self.online.set()
        self.booted.set()
        while True:
            await self.clock.sleep(self.heartbeat_interval_s)
            with contextlib.suppress(CsmsCallError, TimeoutError, OCPPError):
                await self.send_heartbeat()

    async def _do_reboot(self) -> None:
        hard = self._reboot_hard
        self._reboot.clear()
        self.booted.clear()
        await self.on_reboot(hard)
        for c in self.connectors.values():
            if c.meter_task is not None:
                c.meter_task.cancel()
                c.meter_task = None
        await self.clock.sleep(self.ctx.boot_time_s)

    def request_reboot(self, hard: bool) -> None:
        """Close the connection, run `on_reboot`, wait the boot time and boot again."""
        self._reboot_hard = hard
        self._reboot.set()

    async def _receive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                try:
                    await self.route_message(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
                except (ConnectionClosed, OfflineError):
                    raise
                except Exception as exc:  # a bug of ours: record it, but do not stop listening (the charger went deaf)
                    self.errors.append(exc)

    async def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=5.0)

    @staticmethod
    async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
        cancelled = [t for t in list(tasks) if not t.done()]
        pending = set(cancelled)
        while pending:
            for t in pending:
                t.cancel()
            # Python 3.11's asyncio.wait_for swallows a cancellation that races with its result (the
            # library's call() then waits its whole response timeout for the next answer): cancel again.
            _, pending = await asyncio.wait(pending, timeout=0.2)
        if cancelled:
            await asyncio.gather(*cancelled, return_exceptions=True)

    async def _deliver_queue(self) -> None:
        """Send queued transaction messages in order, one at a time, retrying on CallErrors."""
        q = self.queue
        while True:
            q.changed.clear()
            msg = q.peek()
            if msg is None:
                await q.changed.wait()
                continue
            try:
                await self.send_queued(msg)
            except (CsmsCallError, OCPPError):  # a CallError, or an answer that broke the schema (a violation)
                if q.failed_attempt(msg.seq) >= self.transaction_attempts():
                    q.done(msg.seq)
                    self.ctx.log.summary.queued_dropped += 1
                else:
                    await self.clock.sleep(self.transaction_retry_interval_s() * (msg.attempts + 1))
            except TimeoutError:
                await self.clock.sleep(self.transaction_retry_interval_s())
            except OfflineError:
                return  # the connection is gone; the next session delivers it
            else:
                q.done(msg.seq)
                if msg.offline or msg.t_s < self._session_t_s or msg.seq <= q.earlier_run_max_seq:
                    self.ctx.log.summary.queued_delivered += 1  # queued before this connection
                if msg.seq <= q.earlier_run_max_seq:
                    self.ctx.log.summary.queued_from_earlier_run += 1

    def enqueue(self, action: str, payload: dict[str, Any], tx_ref: str | None) -> None:
        """Persist a transaction message; the delivery loop sends it when online, in order."""
        self.queue.put(action, payload, self.clock.t_s(), tx_ref, offline=not self.online.is_set())

    # ------------------------------------------------------------------ requests and frames

    async def request(self, payload: Any) -> Any:
        """Send a request (an ``ocpp.<version>.call`` dataclass) and return the CSMS's answer.

        The request is validated against the official schema before it leaves, and so is the answer
        (`virtual_chargers.wire`: the library's schema files, precompiled). The round trip is timed
        from the frame leaving to its answer arriving.

        Raises:
            OfflineError: No connection.
            CsmsCallError: The CSMS answered with a CallError.
            TimeoutError: No answer within the response timeout.
            OCPPError: The answer broke the schema (also recorded as a CSMS violation).
        """
        return await self.request_wire(type(payload).__name__, to_wire(payload))

    async def request_wire(
        self, action: str, body: dict[str, Any], on_answer: Callable[[dict[str, Any]], None] | None = None
    ) -> Any:
        """`request` with the payload as it goes on the wire (camelCase, no None values), e.g. a queued one.

        ``on_answer`` gets the answer's payload (as received, not yet validated) the moment it arrives, before
        any frame the CSMS sent after it is handled: what the charger learns from an answer (a transaction
        id) is then known to a request the CSMS sends in the same breath.

        Returns the answer as the library's ``call_result`` dataclass; raises as `request` does.
        """
        if self._ws is None:
            raise OfflineError(f"{self.spec.id} has no connection")
        body = validate(self.ocpp_version, MessageType.Call, action, body)
        uid = str(self._unique_id_generator())
        frame = [MessageType.Call, uid, action, body]
        try:
            async with self._call_lock:
                reply = self._reply = asyncio.get_running_loop().create_future()
                self._pending_uid = uid
                self._on_answer = on_answer
                started, started_t_s = time.perf_counter(), self.clock.t_s()
                await self._send_frame(frame)
                try:
                    response = await asyncio.wait_for(reply, self._response_timeout)
                except TimeoutError:
                    self.ctx.log.timeout(action)
                    self._timed_out[uid] = action
                    if len(self._timed_out) > 1000:  # answers that never come must not grow without bound
                        self._timed_out.pop(next(iter(self._timed_out)))
                    timeout_s = self._response_timeout
                    raise TimeoutError(f"{self.spec.id}: no answer to {action} within {timeout_s} s") from None
                rtt_s, rtt_sim_s = time.perf_counter() - started, self.clock.t_s() - started_t_s
        except ConnectionClosed as exc:
            raise OfflineError(f"{self.spec.id}: connection closed during {action}") from exc
        finally:
            self._pending_uid = None
            self._reply = None
            self._on_answer = None
        if response.message_type_id == MessageType.CallError:
            raise CsmsCallError(action, self._received_error(action, response))
        try:
            validate(self.ocpp_version, MessageType.CallResult, action, response.payload)
        except OCPPError as exc:
            self.ctx.log.violation(self.spec.id, f"invalid {action} response", f"{exc.code}: {exc.description}")
            raise
        self.ctx.log.rtt(action, rtt_s, rtt_sim_s)
        return getattr(self._call_result, action)(**snake_keys(response.payload))

    def _received_error(self, action: str, response: Any) -> OCPPError:
        """The CSMS's CallError as an error; a code this version does not define is a violation (GenericError)."""
        code = str(response.error_code)
        if code not in CALL_ERROR_CODES[self.ocpp_version]:
            self.ctx.log.violation(
                self.spec.id, "unknown CallError code", f"{action}: {code!r} is not an OCPP {self.ocpp_version} code"
            )
            code = "GenericError"
        return RpcError(self.ocpp_version, code, str(response.error_details), str(response.error_description))

    async def _send_frame(self, frame: list[Any]) -> None:
        """Log and send a frame we built (no need to parse it again)."""
        ws = self._ws
        if ws is None:
            raise OfflineError(f"{self.spec.id} has no connection")
        message = json.dumps(frame, separators=(",", ":"))
        self.ctx.log.frame(self.spec.id, "tx", message, frame)
        self.history.append(("tx", message))
        self._history_changed.set()
        await ws.send(message)

    async def _send(self, message: str) -> None:
        """Log and send a frame; CallErrors get this version's code and count as CSMS violations."""
        ws = self._ws
        if ws is None:
            raise OfflineError(f"{self.spec.id} has no connection")
        parsed = self.ctx.log.frame(self.spec.id, "tx", message)
        if parsed is not None:
            self.history.append(("tx", message))
            self._history_changed.set()
            if parsed[0] == MessageType.CallError and len(parsed) == 5 and csms_at_fault(str(parsed[2])):
                self.ctx.log.violation(self.spec.id, str(parsed[2]), f"{parsed[4]}"[:300])
        await ws.send(message)

    async def route_message(self, raw_msg: str) -> None:
        """Handle one frame from the CSMS; nothing it sends can stop the charger.

        A frame that is not a valid OCPP-J message gets the CallError its version defines, or, where
        none can answer it, is recorded as unanswerable (`virtual_chargers.rpc.parse_frame`); either way it
        counts as a CSMS violation.
        """
        parsed = self.ctx.log.frame(self.spec.id, "rx", raw_msg)
        if parsed is not None:
            self.history.append(("rx", raw_msg))
            self._history_changed.set()
        try:
            msg = parse_frame(parsed, self.ocpp_version)
        except FrameError as bad:
            if bad.code is None:
                self.ctx.log.unanswerable(self.spec.id, bad.cause, raw_msg)
                return
            description = CALL_ERROR_CODES[self.ocpp_version][bad.code]
            frame = [MessageType.CallError, bad.unique_id, bad.code, description, {"cause": bad.cause}]
            with contextlib.suppress(ConnectionClosed, OfflineError):
                await self._send(json.dumps(frame, separators=(",", ":")))
            return
        if msg.message_type_id == MessageType.Call:
            t_s = self.clock.t_s()
            if t_s < self._missing_until_t_s:
                return
            delay_s = self._slow_delay_s if t_s < self._slow_until_t_s else 0.0
            self.spawn(self._handle_incoming(msg, delay_s), session=True)
            return
        if msg.unique_id != self._pending_uid:
            late = self._timed_out.pop(msg.unique_id, None)
            if late is not None:  # already counted as a timeout
                self.ctx.log.late_answer(late)
                return
            self.ctx.log.violation(
                self.spec.id, "unexpected response", f"response {msg.unique_id!r} to no request of ours in flight"
            )
            return
        if self._reply is not None and not self._reply.done():
            if self._on_answer is not None and msg.message_type_id == MessageType.CallResult:
                self._on_answer(msg.payload)
            self._reply.set_result(msg)

    async def _handle_call(self, msg: Any) -> Any:
        """Run the ``@on`` handler of a CSMS request and answer it (see `virtual_chargers.wire.handle_call`)."""
        return await handle_call(self, msg)

    async def _handle_incoming(self, msg: Any, delay_s: float) -> None:
        if delay_s:
            await self.clock.sleep(delay_s)
        try:
            await self._handle_call(msg)
        except OCPPError as error:
            code, description, details = call_error_code(self.ocpp_version, error)
            frame = [MessageType.CallError, msg.unique_id, code, description, details]
            with contextlib.suppress(ConnectionClosed, OfflineError):
                await self._send(json.dumps(frame, separators=(",", ":"), default=str))
        except (ConnectionClosed, OfflineError):
            pass

    # ------------------------------------------------------------------ helpers for tests and the fleet

    def _calls(self, direction: str, action: str) -> list[dict[str, Any]]:
        """Payloads of the requests ``action`` in the history, sent (``"tx"``) or received (``"rx"``)."""
        out = []
        for d, frame in self.history:
            if d != direction or (isinstance(frame, str) and f'"{action}"' not in frame):
                continue
            m = json.loads(frame) if isinstance(frame, str) else frame
            if isinstance(m, list) and len(m) == 4 and m[0] == MessageType.Call and m[2] == action:
                out.append(m[3])
        return out

    def sent(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the requests with ``action`` this charger sent (latest ``ctx.history`` frames)."""
        return self._calls("tx", action)

    def received(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the requests with ``action`` the CSMS sent this charger."""
        return self._calls("rx", action)

    async def wait_for(
        self,
        action: str,
        direction: str = "rx",
        timeout_s: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
        after: int = 0,
    ) -> dict[str, Any]:
        """Wait (wall ``timeout_s``) for a request ``action`` received (``"rx"``) or sent (``"tx"``).

        ``after`` skips that many earlier matches, so ``wait_for(a, after=len(charger.sent(a)))`` waits
        for the next one. Returns its payload; raises TimeoutError naming what was awaited.
        """

        def matches() -> list[dict[str, Any]]:
            return [p for p in self._calls(direction, action) if where is None or where(p)]

        async def poll() -> dict[str, Any]:
            while True:
                found = matches()
                if len(found) > after:
                    return found[after]
                self._history_changed.clear()
                await self._history_changed.wait()

        try:
            return await asyncio.wait_for(poll(), timeout_s)
        except TimeoutError:
            what = "from the CSMS" if direction == "rx" else "by the charger"
            raise TimeoutError(f"{self.spec.id}: no {action} {what} within {timeout_s} s") from None

    def note_csms_time(self, current_time: str) -> None:
        """Record how far the CSMS's clock (BootNotification currentTime) is off the simulated calendar.

        The charger does not set its clock from it: the simulated calendar drives the whole run (arrivals,
        tariffs, schedules), so the offset goes to the QA summary, which warns when it passes a minute.
        """
        try:
            when = parse_ocpp_time(current_time)
        except ValueError:
            return
        offset_s = (when - self.ctx.clock.now()).total_seconds()
        self.ctx.log.summary.clock_offsets_s[self.spec.id] = round(offset_s, 3)

    def _profile_accepted(self, target: int, profile: ChargingProfile) -> None:
        """A profile was installed: warn when it can never be in force during the run, then `profile_installed`."""
        span = in_force_span(profile)
        now_t_s = self.clock.t_s()
        if span is not None and not (span[0] < self.ctx.run_end_t_s and span[1] > now_t_s):
            clock = self.ctx.clock
            end = "the end of time" if span[1] == math.inf else ocpp_time(clock.at(span[1]))
            run_end = "open-ended" if self.ctx.run_end_t_s == math.inf else ocpp_time(clock.at(self.ctx.run_end_t_s))
            self.ctx.log.summary.warn(
                f"{self.spec.id}: {profile.purpose.value} {profile.profile_id} on {target} is in force from "
                f"{ocpp_time(clock.at(span[0])) if span[0] > -math.inf else 'always'} to {end}, never during the "
                f"run (simulated {ocpp_time(clock.at(now_t_s))} to {run_end}): it limits nothing; was it set "
                "on another clock than the simulated calendar?"
            )
        self.profile_installed(target, profile)

    def profile_installed(self, target: int, profile: ChargingProfile) -> None:
        """A charging profile was installed on connector / EVSE ``target`` (0: the whole charger).

        Nothing here; a bridged charger passes the very profile it installed on to the simulation.
        """

    # ------------------------------------------------------------------ meter and faults

    def share_power(self) -> None:
        """Split the charger-wide limits equally among the connectors drawing power, from now on.

        Those are a shared cabinet's power (``spec.shared_power_kw``) and the ChargePointMax /
        ChargingStationMax profile, a limit on the whole charger (OCPP), not on each connector. Called
        when a transaction starts or stops, a connector faults or clears, and before each meter sample
        (an EV that became full stops drawing).
        """
        t_s = self.clock.t_s()
        connectors = list(self.connectors.values())
        drawing = [c for c in connectors if c.tx_ref is not None and c.fault is None and c.meter.charging]
        n = max(1, len([c for c in drawing if not c.meter.full()]))
        total_kw = self.spec.shared_power_kw
        share_kw = total_kw / n if total_kw is not None else math.inf
        if all(c.share_kw == share_kw and c.drawing == n for c in connectors):
            return
        for c in connectors:
            c.sync(t_s)  # energy up to now under the old shares
        for c in connectors:
            c.share_kw, c.drawing = share_kw, n
            c.sync(t_s)

    def start_meter_loop(self, connector: Connector) -> None:
        """Sample ``connector`` every `meter_interval_s` while its transaction runs."""
        if connector.meter_task is not None:
            connector.meter_task.cancel()
        self.share_power()
        connector.meter_task = self.spawn(self._meter_loop(connector))

    async def _meter_loop(self, connector: Connector) -> None:
        while connector.tx_ref is not None:
            interval_s = self.meter_interval_s()
            await self.clock.sleep(interval_s if interval_s > 0 else 3600.0)
            if connector.tx_ref is not None and interval_s > 0:
                self.share_power()
                await self.sample_meter(connector)

    def schedule_faults(self, faults: Iterable[Fault]) -> None:
        """Apply each fault at its time (simulated seconds since the clock's start)."""
        for fault in faults:
            self.spawn(self._fault_at(fault))

    async def _fault_at(self, fault: Fault) -> None:
        await self.ctx.clock.sleep_until(fault.at_s)
        await self.apply_fault(fault)

    async def apply_fault(self, fault: Fault) -> None:
        """Inject ``fault`` now."""
        t_s = self.clock.t_s()
        if isinstance(fault, DropConnection):
            await self._close_ws()
        elif isinstance(fault, CsmsUnreachable):
            self._unreachable_until_t_s = t_s + fault.duration_s
            await self._close_ws()
        elif isinstance(fault, Reboot):
            self.request_reboot(hard=True)
        elif isinstance(fault, ConnectorFault):
            connector = self.connectors.get(fault.connector)
            if connector is None:
                return
            connector.fault = fault.error_code
            await self.on_connector_fault(connector, fault.error_code)
            if fault.duration_s is not None:
                await self.clock.sleep(fault.duration_s)
                connector.fault = None
                await self.on_connector_fault(connector, None)
        elif isinstance(fault, MeterStuck):
            for c in self.connectors.values():
                c.sync(t_s)
                c.meter.stuck = True
            if fault.duration_s is not None:
                await self.clock.sleep(fault.duration_s)
                for c in self.connectors.values():
                    c.sync(self.clock.t_s())
                    c.meter.stuck = False
        elif isinstance(fault, MeterJump):
            for c in self.connectors.values():
                c.meter.jump_wh += fault.jump_wh
        elif isinstance(fault, SlowResponses):
            self._slow_until_t_s, self._slow_delay_s = t_s + fault.duration_s, fault.delay_s
        elif isinstance(fault, MissingResponses):
            self._missing_until_t_s = t_s + fault.duration_s
        elif isinstance(fault, ClockDrift):
            self.clock.set_error(fault.error_s, fault.drift_ppm)


def _describe_connect_error(exc: BaseException) -> str:
    """One line on why a connection failed (never the credentials)."""
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code == 401:
            return "the CSMS refused the credentials (HTTP 401)"
        return f"the CSMS answered HTTP {code}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"
