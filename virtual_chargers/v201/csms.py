"""The OCPP 2.0.1 side of the reference CSMS: one `Csms201Handler` per connected charging station.

It keeps what stations tell it in a shared, in-memory `Csms201Records` (boots, every TransactionEvent
in arrival order with its seqNo, meter values, EV charging needs, reports, firmware statuses), accepts
every id token unless told otherwise, and offers the CSMS-initiated requests tests need as coroutines
(`request_start`, `reset`, `set_charging_profile`, `get_variables`, `get_base_report` …). `send_raw`
puts any text on the wire, so a test can play a CSMS that breaks the protocol.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.clock import ocpp_time
from virtual_chargers.wire import RawReplies, handle_call, send_request

__all__ = ["Csms201Handler", "Csms201Records", "TxEventRecord"]


@dataclass(frozen=True, slots=True)
class TxEventRecord:
    """One TransactionEvent as received (payload camelCase, as on the wire)."""

    charger: str
    payload: dict[str, Any]

    @property
    def event_type(self) -> str:
        """Started, Updated or Ended."""
        return str(self.payload["eventType"])

    @property
    def seq_no(self) -> int:
        """The event's seqNo."""
        return int(self.payload["seqNo"])

    @property
    def transaction_id(self) -> str:
        """transactionInfo.transactionId."""
        return str(self.payload["transactionInfo"]["transactionId"])

    @property
    def offline(self) -> bool:
        """Whether the station generated it while offline."""
        return bool(self.payload.get("offline", False))

    @property
    def trigger_reason(self) -> str:
        """The event's triggerReason."""
        return str(self.payload["triggerReason"])


@dataclass
class Csms201Records:
    """What 2.0.1 stations told the CSMS, plus how it answers them.

    Attributes:
        registration: BootNotification answer: Accepted, Pending or Rejected.
        boot_interval_s: ``interval`` of the BootNotification answer (heartbeat, or retry when not Accepted).
        rejected_tokens: id tokens answered Invalid (every other one is Accepted).
        boots: (station, BootNotification payload) in arrival order.
        tx_events: Every TransactionEvent in arrival order.
        status: Last connectorStatus per (station, evseId, connectorId).
        charging_needs: (station, NotifyEVChargingNeeds payload).
        reports: (station, requestId) → NotifyReport payloads in arrival order.
        firmware: (station, FirmwareStatusNotification status) in arrival order.
        meter_values: (station, MeterValues payload) outside transactions.
        authorizations: (station, idToken) asked for.
        heartbeats: Heartbeats per station.
        data_transfers: (station, DataTransfer payload).
        notifications: (station, action, payload) of the notifications only acknowledged (reservation
            status, charging limits and profiles reported, log status, monitoring reports).
        scripted: action → answers to give instead of the normal one, oldest first: a payload (sent
            as a CallResult without schema checks) or a string (sent as the whole frame, ``{id}``
            replaced by the request's message id). For tests of a CSMS that breaks the protocol.
        changed: Notified on every received message, for tests that wait for something.
    """

    registration: str = "Accepted"
    boot_interval_s: int = 300
    rejected_tokens: set[str] = field(default_factory=set)
    boots: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tx_events: list[TxEventRecord] = field(default_factory=list)
    status: dict[tuple[str, int, int], str] = field(default_factory=dict)
    charging_needs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reports: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    firmware: list[tuple[str, str]] = field(default_factory=list)
    meter_values: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[tuple[str, str]] = field(default_factory=list)
    heartbeats: dict[str, int] = field(default_factory=dict)
    data_transfers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    notifications: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    scripted: dict[str, list[Any]] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def transactions(self, charger: str | None = None) -> dict[str, list[TxEventRecord]]:
        """TransactionEvents grouped by transaction id, in arrival order (of one station, or all)."""
        out: dict[str, list[TxEventRecord]] = {}
        for rec in self.tx_events:
            if charger is None or rec.charger == charger:
                out.setdefault(rec.transaction_id, []).append(rec)
        return out

    def events_of(self, charger: str) -> list[TxEventRecord]:
        """A station's TransactionEvents in arrival order."""
        return [r for r in self.tx_events if r.charger == charger]

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


def _now() -> str:
    return ocpp_time(datetime.now(UTC))


class Csms201Handler(RawReplies, ChargePoint):  # type: ignore[misc]
    """The CSMS end of one 2.0.1 station's websocket.

    Args:
        charger_id: The station id from the URL path.
        connection: The server-side websocket.
        records: Shared records of all 2.0.1 stations.
        response_timeout_s: How long a CSMS request waits for the station's answer (wall seconds).
        on_frame: Called with (direction, raw text) for every frame, e.g. to log it.
    """

    def __init__(
        self,
        charger_id: str,
        connection: Any,
        records: Csms201Records,
        response_timeout_s: float = 10.0,
        on_frame: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=response_timeout_s)
        self.records = records
        self.received_raw: list[str] = []
        self._on_frame = on_frame
        self._raw_replies: dict[str, asyncio.Future[list[Any]]] = {}
        self._wire: dict[str, Any] = {}

    # Wire -------------------------------------------------------------------------------------

    async def route_message(self, raw_msg: str) -> None:
        """Record the frame, hand replies to `send_raw` waiters, then route as the library does."""
        self.received_raw.append(raw_msg)
        if self._on_frame is not None:
            self._on_frame("rx", raw_msg)
        try:
            msg = json.loads(raw_msg)
        except ValueError:
            msg = None
        # Handlers record the payload as it came on the wire, not the library's snake_case round trip.
        self._wire = msg[3] if isinstance(msg, list) and len(msg) == 4 and isinstance(msg[3], dict) else {}
        if self.take_reply(msg):
            return
        if isinstance(msg, list) and len(msg) == 4 and msg[0] == 2 and self.records.scripted.get(str(msg[2])):
            answer = self.records.scripted[str(msg[2])].pop(0)
            if isinstance(answer, str):
                await self._send(answer.replace("{id}", str(msg[1])))
            else:
                await self._send(json.dumps([3, msg[1], answer], separators=(",", ":")))
        else:
            await super().route_message(raw_msg)
        await self.records._notify()

    async def _handle_call(self, msg: Any) -> Any:
        """The library's handling with precompiled schemas (`virtual_chargers.wire.handle_call`), as in 1.6."""
        return await handle_call(self, msg)

    async def _send(self, message: str) -> None:
        if self._on_frame is not None:
            self._on_frame("tx", message)
        await super()._send(message)

    # Station → CSMS -----------------------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(self, **kwargs: Any) -> call_result.BootNotification:
        """Record the boot and answer with the configured registration status."""
        self.records.boots.append((self.id, self._wire))
        return call_result.BootNotification(
            current_time=_now(), interval=self.records.boot_interval_s, status=self.records.registration
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        """Count the heartbeat and give the time."""
        self.records.heartbeats[self.id] = self.records.heartbeats.get(self.id, 0) + 1
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(
        self, evse_id: int, connector_id: int, connector_status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        """Keep the connector's last status."""
        self.records.status[(self.id, evse_id, connector_id)] = connector_status
        return call_result.StatusNotification()

    def _token_info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        ok = id_token["id_token"] not in self.records.rejected_tokens
        return {"status": "Accepted" if ok else "Invalid"}

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> call_result.Authorize:
        """Accept the token unless it is in ``rejected_tokens``."""
        self.records.authorizations.append((self.id, id_token["id_token"]))
        return call_result.Authorize(id_token_info=self._token_info(id_token))

    @on(Action.transaction_event)
    def on_transaction_event(self, **kwargs: Any) -> call_result.TransactionEvent:
        """Record the event; answer idTokenInfo when it carries a token."""
        self.records.tx_events.append(TxEventRecord(self.id, self._wire))
        id_token = kwargs.get("id_token")
        return call_result.TransactionEvent(id_token_info=self._token_info(id_token) if id_token else None)

    @on(Action.meter_values)
    def on_meter_values(self, **kwargs: Any) -> call_result.MeterValues:
        """Record meter values sent outside a transaction."""
        self.records.meter_values.append((self.id, self._wire))
        return call_result.MeterValues()

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, **kwargs: Any) -> call_result.NotifyReport:
        """Collect a page of a report."""
        self.records.reports.setdefault((self.id, request_id), []).append(self._wire)
        return call_result.NotifyReport()

    @on(Action.notify_ev_charging_needs)
    def on_notify_ev_charging_needs(self, **kwargs: Any) -> call_result.NotifyEVChargingNeeds:
        """Record the EV's needs and accept them."""
        self.records.charging_needs.append((self.id, self._wire))
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, status: str, **kwargs: Any) -> call_result.FirmwareStatusNotification:
        """Record the firmware status."""
        self.records.firmware.append((self.id, status))
        return call_result.FirmwareStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        """Record it; this CSMS knows no vendor extensions."""
        self.records.data_transfers.append((self.id, self._wire))
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.security_event_notification)
    def on_security_event_notification(self, **kwargs: Any) -> call_result.SecurityEventNotification:
        """Acknowledge."""
        return call_result.SecurityEventNotification()

    @on(Action.notify_event)
    def on_notify_event(self, **kwargs: Any) -> call_result.NotifyEvent:
        """Acknowledge."""
        return call_result.NotifyEvent()

    def _acknowledge(self, action: str, response: Any) -> Any:
        self.records.notifications.append((self.id, action, self._wire))
        return response

    @on(Action.reservation_status_update)
    def on_reservation_status_update(self, **kwargs: Any) -> call_result.ReservationStatusUpdate:
        """Record and acknowledge (H04)."""
        return self._acknowledge("ReservationStatusUpdate", call_result.ReservationStatusUpdate())

    @on(Action.notify_charging_limit)
    def on_notify_charging_limit(self, **kwargs: Any) -> call_result.NotifyChargingLimit:
        """Record and acknowledge (K12)."""
        return self._acknowledge("NotifyChargingLimit", call_result.NotifyChargingLimit())

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, **kwargs: Any) -> call_result.ReportChargingProfiles:
        """Record and acknowledge (K09)."""
        return self._acknowledge("ReportChargingProfiles", call_result.ReportChargingProfiles())

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **kwargs: Any) -> call_result.LogStatusNotification:
        """Record and acknowledge (N01)."""
        return self._acknowledge("LogStatusNotification", call_result.LogStatusNotification())

    @on(Action.notify_monitoring_report)
    def on_notify_monitoring_report(self, **kwargs: Any) -> call_result.NotifyMonitoringReport:
        """Record and acknowledge (N02)."""
        return self._acknowledge("NotifyMonitoringReport", call_result.NotifyMonitoringReport())

    # CSMS → station -----------------------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send a request dataclass of ``ocpp.v201.call`` and return the station's answer.

        Raises:
            OCPPError: When the station answers with a CallError.
            TimeoutError: When it does not answer in time.
        """
        return await send_request(self, payload)

    async def request_start(
        self, id_token: str, evse_id: int | None = 1, remote_start_id: int = 1, charging_profile: Any = None
    ) -> call_result.RequestStartTransaction:
        """RequestStartTransaction with an ISO14443 token."""
        return await self.request(
            call.RequestStartTransaction(
                id_token={"id_token": id_token, "type": "ISO14443"},
                remote_start_id=remote_start_id,
                evse_id=evse_id,
                charging_profile=charging_profile,
            )
        )

    async def request_stop(self, transaction_id: str) -> call_result.RequestStopTransaction:
        """RequestStopTransaction."""
        return await self.request(call.RequestStopTransaction(transaction_id=transaction_id))

    async def reset(self, kind: str = "Immediate", evse_id: int | None = None) -> call_result.Reset:
        """Reset Immediate or OnIdle."""
        return await self.request(call.Reset(type=kind, evse_id=evse_id))

    async def set_charging_profile(self, evse_id: int, profile: dict[str, Any]) -> call_result.SetChargingProfile:
        """SetChargingProfile with a ChargingProfileType in snake_case."""
        return await self.request(call.SetChargingProfile(evse_id=evse_id, charging_profile=profile))

    async def clear_charging_profile(
        self, profile_id: int | None = None, criteria: dict[str, Any] | None = None
    ) -> call_result.ClearChargingProfile:
        """ClearChargingProfile by id or criteria."""
        return await self.request(
            call.ClearChargingProfile(charging_profile_id=profile_id, charging_profile_criteria=criteria)
        )

    async def get_composite_schedule(
        self, evse_id: int, duration_s: int, unit: str | None = None
    ) -> call_result.GetCompositeSchedule:
        """GetCompositeSchedule."""
        return await self.request(
            call.GetCompositeSchedule(duration=duration_s, evse_id=evse_id, charging_rate_unit=unit)
        )

    async def get_variables(self, items: Sequence[dict[str, Any]]) -> call_result.GetVariables:
        """GetVariables with GetVariableDataType items in snake_case."""
        return await self.request(call.GetVariables(get_variable_data=list(items)))

    async def set_variables(self, items: Sequence[dict[str, Any]]) -> call_result.SetVariables:
        """SetVariables with SetVariableDataType items in snake_case."""
        return await self.request(call.SetVariables(set_variable_data=list(items)))

    async def get_base_report(self, request_id: int, base: str = "FullInventory") -> call_result.GetBaseReport:
        """GetBaseReport; the pages arrive as NotifyReport in ``records.reports[(id, request_id)]``."""
        return await self.request(call.GetBaseReport(request_id=request_id, report_base=base))

    async def trigger_message(self, message: str, evse: dict[str, Any] | None = None) -> call_result.TriggerMessage:
        """TriggerMessage."""
        return await self.request(call.TriggerMessage(requested_message=message, evse=evse))

    async def change_availability(
        self, status: str, evse: dict[str, Any] | None = None
    ) -> call_result.ChangeAvailability:
        """ChangeAvailability Operative or Inoperative."""
        return await self.request(call.ChangeAvailability(operational_status=status, evse=evse))

    async def unlock_connector(self, evse_id: int, connector_id: int = 1) -> call_result.UnlockConnector:
        """UnlockConnector."""
        return await self.request(call.UnlockConnector(evse_id=evse_id, connector_id=connector_id))

    async def update_firmware(
        self, request_id: int, location: str, retrieve_at: datetime, retries: int | None = None
    ) -> call_result.UpdateFirmware:
        """UpdateFirmware from ``location`` at ``retrieve_at``."""
        return await self.request(
            call.UpdateFirmware(
                request_id=request_id,
                firmware={"location": location, "retrieve_date_time": ocpp_time(retrieve_at)},
                retries=retries,
            )
        )

    async def data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None) -> Any:
        """DataTransfer to the station."""
        return await self.request(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))
