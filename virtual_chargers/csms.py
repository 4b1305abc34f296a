"""`chargetwin csms`: a small reference CSMS for loopback tests and demos (in memory, 127.0.0.1 by default).

It records what chargers tell it (boots, transactions, meter values, statuses…), accepts every id tag
unless told otherwise, and sends commands for tests (remote start/stop, reset, charging profiles,
configuration, triggers, firmware…). It answers by websocket subprotocol: ``ocpp1.6`` here
(`Csms16Handler`), ``ocpp2.0.1`` with ``virtual_chargers.v201.csms.Csms201Handler`` when that module is
installed (otherwise the subprotocol is refused). `send_raw` puts any text on the wire, so a test can
play a CSMS that breaks the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from virtual_chargers.clock import ocpp_time
from virtual_chargers.wire import RawReplies, from_frame, handle_call, send_request

__all__ = ["CapRule", "Csms", "Csms16Handler", "Csms16Records", "Transaction16"]


def _now() -> str:
    return ocpp_time(datetime.now(UTC))


@dataclass(frozen=True)
class CapRule:
    """A smart-charging rule of the reference CSMS: cap every connector to ``limit_kw`` from ``start`` to ``end``.

    Times are ``HH:MM`` at ``utc_offset`` (e.g. ``+01:00``), every day; an ``end`` before the ``start``
    runs past midnight. The cap is sent as a daily recurring profile in W: a TxDefaultProfile for the
    whole charger (connector 0) on every boot, or a TxProfile on the connector of every transaction
    that starts (``on="transaction"``).
    """

    limit_kw: float
    start: str = "17:00"
    end: str = "20:00"
    utc_offset: str = "+00:00"
    on: str = "boot"
    profile_id: int = 1700
    stack_level: int = 1

    def __post_init__(self) -> None:
        """Fail fast on a rule no charger could follow."""
        if not self.limit_kw >= 0:
            raise ValueError(f"limit_kw(={self.limit_kw}) must be >= 0")
        if self.on not in ("boot", "transaction"):
            raise ValueError(f"on(={self.on!r}) must be 'boot' or 'transaction'")
        if self.window_s() == 0:
            raise ValueError(f"start and end are both {self.start}: the window would be empty")
        self.anchor()

    @classmethod
    def parse(cls, text: str, on: str = "boot") -> CapRule:
        """``KW@HH:MM-HH:MM`` with an optional UTC offset, e.g. ``7@17:00-20:00+01:00``."""
        try:
            kw, _, window = text.partition("@")
            start, _, rest = window.partition("-")
            end, offset = rest[:5], rest[5:] or "+00:00"
            return cls(float(kw), start, end, offset, on)
        except ValueError as exc:
            raise ValueError(f"cap {text!r}: write KW@HH:MM-HH:MM[+HH:MM], e.g. 7@17:00-20:00+01:00 ({exc})") from None

    def anchor(self) -> datetime:
        """The first start of the window (a fixed past day: only its time of day matters to a daily profile)."""
        return datetime.fromisoformat(f"2000-01-01T{self.start}:00{self.utc_offset}")

    def window_s(self) -> int:
        """Length of the window in seconds."""
        start = datetime.fromisoformat(f"2000-01-01T{self.start}:00{self.utc_offset}")
        end = datetime.fromisoformat(f"2000-01-01T{self.end}:00{self.utc_offset}")
        return int((end - start).total_seconds()) % 86400

    def profile16(self, purpose: str = "TxDefaultProfile") -> dict[str, Any]:
        """The rule as a 1.6 ``csChargingProfiles`` (camelCase)."""
        return {
            "chargingProfileId": self.profile_id,
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Recurring",
            "recurrencyKind": "Daily",
            "chargingSchedule": {
                "startSchedule": ocpp_time(self.anchor()),
                "duration": self.window_s(),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(self.limit_kw * 1000.0, 1)}],
            },
        }


@dataclass
class Transaction16:
    """A 1.6 transaction as the CSMS saw it."""

    transaction_id: int
    charger: str
    start: dict[str, Any]
    meter_values: list[dict[str, Any]] = field(default_factory=list)
    stop: dict[str, Any] | None = None


@dataclass
class Csms16Records:
    """What 1.6 chargers told the CSMS, plus how it answers them.

    Attributes:
        registration: BootNotification answer: Accepted, Pending or Rejected.
        heartbeat_interval_s: ``interval`` of the BootNotification answer.
        rejected_tags: id tags answered Invalid (every other one is Accepted).
        boots: (charger, payload) in arrival order.
        transactions: By transactionId.
        starts, stops, meter_values, statuses, firmware, diagnostics, data_transfers: (charger, payload).
        authorizations: (charger, idTag).
        heartbeats: Heartbeats per charger.
        cap_rule: A smart-charging rule sent to every charger (None: no smart charging).
        profiles_sent: (charger, connector, status of the answer or the error) of every profile the rule sent.
        changed: Notified on every received message, for tests that wait for something.
    """

    registration: str = "Accepted"
    heartbeat_interval_s: int = 300
    rejected_tags: set[str] = field(default_factory=set)
    boots: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    transactions: dict[int, Transaction16] = field(default_factory=dict)
    starts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    meter_values: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    firmware: list[tuple[str, str]] = field(default_factory=list)
    diagnostics: list[tuple[str, str]] = field(default_factory=list)
    data_transfers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[tuple[str, str]] = field(default_factory=list)
    heartbeats: dict[str, int] = field(default_factory=dict)
    cap_rule: CapRule | None = None
    profiles_sent: list[tuple[str, int, str]] = field(default_factory=list)  # (charger, connector, status)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _start_ids: dict[tuple[Any, ...], int] = field(default_factory=dict)  # (charger, connector, tag, time, meter)

    def of(self, charger: str) -> list[Transaction16]:
        """Transactions of one charger, in start order."""
        return [t for t in self.transactions.values() if t.charger == charger]

    def status_of(self, charger: str, connector_id: int) -> str | None:
        """Last status a connector reported."""
        for c, p in reversed(self.statuses):
            if c == charger and p["connectorId"] == connector_id:
                return str(p["status"])
        return None

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds (checked on every received message).

        Raises:
            TimeoutError: When it does not hold within ``timeout_s`` wall seconds.
        """
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout_s)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class Csms16Handler(RawReplies, ChargePoint):  # type: ignore[misc]
    """The CSMS end of one 1.6 charger's websocket.

    Args:
        charger_id: The charger id from the URL path.
        connection: The server-side websocket.
        records: Shared records of all 1.6 chargers.
        response_timeout_s: How long a CSMS request waits for the charger's answer (wall seconds).
        on_frame: Called with (direction, raw text) for every frame, e.g. to log it.
    """

    def __init__(
        self,
        charger_id: str,
        connection: Any,
        records: Csms16Records,
        response_timeout_s: float = 10.0,
        on_frame: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=response_timeout_s)
        self.records = records
        self._on_frame = on_frame
        self._raw_replies: dict[str, asyncio.Future[list[Any]]] = {}
        self._wire: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def route_message(self, raw_msg: str) -> None:
        """Record the frame, hand replies to `send_raw` waiters, then route as the library does."""
        if self._on_frame is not None:
            self._on_frame("rx", raw_msg)
        try:
            msg = json.loads(raw_msg)
        except ValueError:
            msg = None
        self._wire = msg[3] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[3], dict) else {}
        if self.take_reply(msg):
            return
        try:
            message = from_frame(msg) if isinstance(msg, list) else unpack(raw_msg)
        except OCPPError:
            return  # not OCPP-J: dropped, as the library does
        if message.message_type_id == MessageType.Call:
            try:
                await self._handle_call(message)
            except OCPPError as error:
                await self._send(message.create_call_error(error).to_json())
        else:
            self._response_queue.put_nowait(message)
        await self.records._notify()

    async def _handle_call(self, msg: Any) -> Any:
        """The library's handling with precompiled schemas (`virtual_chargers.wire.handle_call`)."""
        return await handle_call(self, msg)

    async def _send(self, message: str) -> None:
        if self._on_frame is not None:
            self._on_frame("tx", message)
        await self._connection.send(message)

    # what chargers send ------------------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(self, **kwargs: Any) -> Any:
        """Record the boot; answer with the configured registration status."""
        self.records.boots.append((self.id, self._wire))
        return call_result.BootNotification(
            current_time=_now(), interval=self.records.heartbeat_interval_s, status=self.records.registration
        )

    @after(Action.boot_notification)
    def after_boot_notification(self, **kwargs: Any) -> None:
        """Send the cap rule's TxDefaultProfile to the whole charger."""
        rule = self.records.cap_rule
        if rule is not None and rule.on == "boot" and self.records.registration == "Accepted":
            self._spawn(self._send_cap(0, rule.profile16("TxDefaultProfile")))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_cap(self, connector_id: int, profile: dict[str, Any]) -> None:
        try:
            res = await self.set_charging_profile(connector_id, profile)
            status = str(res.status)
        except (OCPPError, TimeoutError, ConnectionClosed) as exc:
            status = type(exc).__name__
        self.records.profiles_sent.append((self.id, connector_id, status))
        await self.records._notify()

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        """Count it."""
        self.records.heartbeats[self.id] = self.records.heartbeats.get(self.id, 0) + 1
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(self, **kwargs: Any) -> Any:
        """Record the status."""
        self.records.statuses.append((self.id, self._wire))
        return call_result.StatusNotification()

    def _tag_info(self, id_tag: str) -> dict[str, Any]:
        return {"status": "Invalid" if id_tag in self.records.rejected_tags else "Accepted"}

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        """Accepted unless the tag is in ``rejected_tags``."""
        self.records.authorizations.append((self.id, id_tag))
        return call_result.Authorize(id_tag_info=self._tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start_transaction(self, id_tag: str, **kwargs: Any) -> Any:
        """Give the transaction an id and record it; a start received again (a retry) gets the same id."""
        w = self._wire
        key = (self.id, w.get("connectorId"), w.get("idTag"), w.get("timestamp"), w.get("meterStart"))
        known = self.records._start_ids.get(key)
        if known is not None:
            return call_result.StartTransaction(transaction_id=known, id_tag_info=self._tag_info(id_tag))
        tx_id = self.records._start_ids[key] = next(self.records._ids)
        self.records.transactions[tx_id] = Transaction16(tx_id, self.id, self._wire)
        self.records.starts.append((self.id, self._wire))
        return call_result.StartTransaction(transaction_id=tx_id, id_tag_info=self._tag_info(id_tag))

    @after(Action.start_transaction)
    def after_start_transaction(self, connector_id: int, **kwargs: Any) -> None:
        """Send the cap rule's TxProfile to the transaction's connector."""
        rule = self.records.cap_rule
        if rule is not None and rule.on == "transaction":
            self._spawn(self._send_cap(connector_id, rule.profile16("TxProfile")))

    @on(Action.stop_transaction)
    def on_stop_transaction(self, transaction_id: int, **kwargs: Any) -> Any:
        """Record the stop."""
        self.records.stops.append((self.id, self._wire))
        tx = self.records.transactions.get(transaction_id)
        if tx is not None:
            tx.stop = self._wire
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, transaction_id: int | None = None, **kwargs: Any) -> Any:
        """Record the values (and on their transaction)."""
        self.records.meter_values.append((self.id, self._wire))
        tx = self.records.transactions.get(transaction_id) if transaction_id is not None else None
        if tx is not None:
            tx.meter_values.append(self._wire)
        return call_result.MeterValues()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> Any:
        """Record it."""
        self.records.firmware.append((self.id, status))
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> Any:
        """Record it."""
        self.records.diagnostics.append((self.id, status))
        return call_result.DiagnosticsStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        """Record it; accept vendor ``chargetwin``, answer UnknownVendorId to any other (OCPP 1.6 §4.3)."""
        self.records.data_transfers.append((self.id, self._wire))
        return call_result.DataTransfer(status="Accepted" if vendor_id == "chargetwin" else "UnknownVendorId")

    # what the CSMS asks -------------------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send a request and return the answer (raises the library's error on a CallError)."""
        return await send_request(self, payload)

    async def remote_start(
        self, id_tag: str, connector_id: int | None = None, profile: dict[str, Any] | None = None
    ) -> Any:
        """RemoteStartTransaction."""
        return await self.request(
            call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id, charging_profile=profile)
        )

    async def remote_stop(self, transaction_id: int) -> Any:
        """RemoteStopTransaction."""
        return await self.request(call.RemoteStopTransaction(transaction_id=transaction_id))

    async def reset(self, kind: str = "Soft") -> Any:
        """Reset Soft or Hard."""
        return await self.request(call.Reset(type=kind))

    async def set_charging_profile(self, connector_id: int, profile: dict[str, Any]) -> Any:
        """SetChargingProfile with a csChargingProfiles dict (camelCase)."""
        return await self.request(call.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=profile))

    async def clear_charging_profile(self, **criteria: Any) -> Any:
        """ClearChargingProfile (id, connector_id, charging_profile_purpose, stack_level)."""
        return await self.request(call.ClearChargingProfile(**criteria))

    async def get_composite_schedule(self, connector_id: int, duration_s: int, unit: str | None = None) -> Any:
        """GetCompositeSchedule."""
        return await self.request(
            call.GetCompositeSchedule(connector_id=connector_id, duration=duration_s, charging_rate_unit=unit)
        )

    async def get_configuration(self, keys: Sequence[str] | None = None) -> Any:
        """GetConfiguration."""
        return await self.request(call.GetConfiguration(key=list(keys) if keys else None))

    async def change_configuration(self, key: str, value: str) -> Any:
        """ChangeConfiguration."""
        return await self.request(call.ChangeConfiguration(key=key, value=value))

    async def change_availability(self, connector_id: int, kind: str) -> Any:
        """ChangeAvailability Operative or Inoperative."""
        return await self.request(call.ChangeAvailability(connector_id=connector_id, type=kind))

    async def trigger_message(self, message: str, connector_id: int | None = None) -> Any:
        """TriggerMessage."""
        return await self.request(call.TriggerMessage(requested_message=message, connector_id=connector_id))

    async def unlock_connector(self, connector_id: int) -> Any:
        """UnlockConnector."""
        return await self.request(call.UnlockConnector(connector_id=connector_id))

    async def clear_cache(self) -> Any:
        """ClearCache."""
        return await self.request(call.ClearCache())

    async def update_firmware(self, location: str, retrieve_date: str | None = None, retries: int = 0) -> Any:
        """UpdateFirmware (retrieve now unless a date is given)."""
        return await self.request(
            call.UpdateFirmware(location=location, retrieve_date=retrieve_date or _now(), retries=retries)
        )

    async def get_diagnostics(self, location: str) -> Any:
        """GetDiagnostics."""
        return await self.request(call.GetDiagnostics(location=location))

    async def send_local_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> Any:
        """SendLocalList."""
        return await self.request(
            call.SendLocalList(list_version=version, update_type=update_type, local_authorization_list=entries)
        )

    async def get_local_list_version(self) -> Any:
        """GetLocalListVersion."""
        return await self.request(call.GetLocalListVersion())

    async def reserve_now(self, connector_id: int, expiry: str, id_tag: str, reservation_id: int) -> Any:
        """ReserveNow."""
        return await self.request(
            call.ReserveNow(connector_id=connector_id, expiry_date=expiry, id_tag=id_tag, reservation_id=reservation_id)
        )

    async def cancel_reservation(self, reservation_id: int) -> Any:
        """CancelReservation."""
        return await self.request(call.CancelReservation(reservation_id=reservation_id))

    async def data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        """DataTransfer to the charger."""
        return await self.request(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))


class Csms:
    """The reference CSMS server.

    Args:
        host: Address to bind (127.0.0.1 unless you mean to expose it).
        port: TCP port (0: a free one; read `port` after `start`).
        ssl_context: Server TLS context for wss:// (security profiles 2 and 3).
        passwords: charger id → basic-auth password; None accepts chargers without credentials.
        response_timeout_s: How long a CSMS request waits for a charger (wall seconds).
        on_frame: Called with (charger, direction, raw text) for every frame.
    """

    handler16: type[Csms16Handler] = Csms16Handler  # a subclass may answer differently (tests of broken CSMSs)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        passwords: dict[str, str] | Callable[[str], str | None] | None = None,
        response_timeout_s: float = 10.0,
        on_frame: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.passwords = passwords
        self.response_timeout_s = response_timeout_s
        self.on_frame = on_frame
        self.records16 = Csms16Records()
        self.records201: Any = None
        self.handlers: dict[str, Any] = {}
        self.refused: list[tuple[str, str]] = []  # (charger, why) of refused connections
        self._connected = asyncio.Condition()
        self._server: Server | None = None
        self._handler201: Any = None
        with contextlib.suppress(ImportError):
            from virtual_chargers.v201.csms import Csms201Handler, Csms201Records

            self._handler201 = Csms201Handler
            self.records201 = Csms201Records()

    @property
    def url(self) -> str:
        """The ws:// or wss:// URL chargers connect to (add ``/<charger id>``)."""
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{self.host}:{self.port}"

    def subprotocols(self) -> list[str]:
        """The OCPP versions this CSMS speaks."""
        return ["ocpp1.6", "ocpp2.0.1"] if self._handler201 is not None else ["ocpp1.6"]

    async def start(self) -> Csms:
        """Start listening."""
        process_request = None
        if self.passwords is not None:
            process_request = basic_auth(realm="chargetwin", check_credentials=self._check_credentials)
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            subprotocols=[Subprotocol(p) for p in self.subprotocols()],
            process_request=process_request,
            ssl=self.ssl_context,
            compression=None,
            ping_interval=None,
            max_queue=64,
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Csms:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check_credentials(self, username: str, password: str) -> bool:
        expected = self.passwords.get(username) if isinstance(self.passwords, dict) else None
        if callable(self.passwords):
            expected = self.passwords(username)
        ok = expected is not None and hmac.compare_digest(expected.encode(), password.encode())
        if not ok:
            self.refused.append((username, "bad credentials"))
        return ok

    async def _serve(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        charger_id = path.rstrip("/").rsplit("/", 1)[-1]
        if ws.subprotocol is None or not charger_id:
            self.refused.append((charger_id, f"subprotocol {ws.subprotocol}"))
            await ws.close(code=1002, reason="an OCPP subprotocol and a charger id in the path are required")
            return

        def on_frame(direction: str, raw: str) -> None:
            if self.on_frame is not None:
                self.on_frame(charger_id, direction, raw)

        handler: Any
        if ws.subprotocol == "ocpp1.6":
            handler = self.handler16(charger_id, ws, self.records16, self.response_timeout_s, on_frame)
        else:
            handler = self._handler201(charger_id, ws, self.records201, self.response_timeout_s, on_frame)
        self.handlers[charger_id] = handler
        async with self._connected:
            self._connected.notify_all()
        try:
            await handler.start()
        except ConnectionClosed:
            pass
        finally:
            if self.handlers.get(charger_id) is handler:
                del self.handlers[charger_id]

    async def wait_connected(self, charger_id: str, timeout_s: float = 10.0) -> Any:
        """The handler of ``charger_id`` once it is connected (wall ``timeout_s``)."""
        async with self._connected:
            await asyncio.wait_for(self._connected.wait_for(lambda: charger_id in self.handlers), timeout_s)
        return self.handlers[charger_id]
