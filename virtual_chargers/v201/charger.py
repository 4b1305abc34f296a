"""`V201Charger`: an OCPP 2.0.1 charging station on the `VirtualCharger` core.

Each connector of the `ChargerSpec` is one EVSE (ids 1..n) with one connector (id 1). Settings live in
the device model (`virtual_chargers.v201.device_model`), which the CSMS reads and writes with
Get/SetVariables and GetBaseReport; the station reads its intervals, start and stop points and retry
counts from it at the moment it needs them.

Transactions follow TxCtrlr.TxStartPoint and TxStopPoint. Every TransactionEvent goes through the
persisted queue, numbered by ``seqNo`` from 0 within its transaction, with ``offline: true`` when the
station had no accepted connection as it happened, and meter values (SampledDataCtrlr measurands)
at the start, every TxUpdatedInterval and at the end.

Firmware updates take simulated time; a location containing ``fail-download`` or ``fail-install``
makes that step fail. A RequestStartTransaction on an EVSE without an EV plugs in the default EV.
Frames from the CSMS that are not OCPP-J get RpcFrameworkError or MessageTypeNotSupported.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from ocpp.exceptions import (
    OccurrenceConstraintViolationError,
    OCPPError,
)
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as LibChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from sim.charging_profiles import ChargingProfilePurpose, composite_schedule
from virtual_chargers.base import (
    ChargerContext,
    ChargerSpec,
    Connector,
    CsmsCallError,
    OfflineError,
    VirtualCharger,
)
from virtual_chargers.clock import ocpp_time, parse_ocpp_time
from virtual_chargers.meter import EVSession, kw_to_amps, kw_to_w
from virtual_chargers.txqueue import QueuedMessage
from virtual_chargers.v16.charger import DEFAULT_EV
from virtual_chargers.v16.profiles import schedule_to_ocpp
from virtual_chargers.v201.certificates import CertificatesMixin
from virtual_chargers.v201.device_model import (
    Attribute,
    ComponentKey,
    DeviceModel,
    ReportBase,
    SetStatus,
    VariableKey,
    standard_device_model,
)
from virtual_chargers.v201.local_list import LocalListMixin
from virtual_chargers.v201.reservation import ReservationMixin
from virtual_chargers.v201.smart_charging import PURPOSES, ProfileError, StationProfiles, profile_from_ocpp

__all__ = ["KEYS_16", "V201Charger"]

_UNITS = {
    "Energy.Active.Import.Register": ("Wh", "Outlet"),
    "Power.Active.Import": ("W", "Outlet"),
    "Current.Import": ("A", "Outlet"),
    "Voltage": ("V", "Outlet"),
    "SoC": ("Percent", "EV"),
    "Power.Offered": ("W", "Outlet"),
    "Current.Offered": ("A", "Outlet"),
}
_START_ON_PLUG = {"EVConnected", "ParkingBayOccupancy"}
_STOP_ON_UNPLUG = {"EVConnected", "ParkingBayOccupancy", "PowerPathClosed", "EnergyTransfer"}
_TRIGGERABLE = {
    "BootNotification",
    "SignChargingStationCertificate",  # A02/M02: a CSR in SignCertificate (`virtual_chargers.v201.certificates`)
    "SignV2GCertificate",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "StatusNotification",
    "TransactionEvent",
}


# 1.6 configuration keys the fleet, the CLI's --config and the pytest plugin may give, as 2.0.1 variables.
KEYS_16 = {
    "HeartbeatInterval": "OCPPCommCtrlr.HeartbeatInterval",
    "MeterValueSampleInterval": "SampledDataCtrlr.TxUpdatedInterval",
    "MeterValuesSampledData": "SampledDataCtrlr.TxUpdatedMeasurands",
    "StopTxnSampledData": "SampledDataCtrlr.TxEndedMeasurands",
    "ClockAlignedDataInterval": "AlignedDataCtrlr.Interval",
    "MeterValuesAlignedData": "AlignedDataCtrlr.Measurands",
    "TransactionMessageAttempts": "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
    "TransactionMessageRetryInterval": "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]",
    "ConnectionTimeOut": "TxCtrlr.EVConnectionTimeOut",
    "StopTransactionOnInvalidId": "TxCtrlr.StopTxOnInvalidId",
    "AuthorizeRemoteTxRequests": "AuthCtrlr.AuthorizeRemoteStart",
    "LocalAuthorizeOffline": "AuthCtrlr.LocalAuthorizeOffline",
    "LocalPreAuthorize": "AuthCtrlr.LocalPreAuthorize",
    "AllowOfflineTxForUnknownId": "AuthCtrlr.OfflineTxForUnknownIdEnabled",
    "ChargeProfileMaxStackLevel": "SmartChargingCtrlr.ProfileStackLevel",
    "ChargingScheduleMaxPeriods": "SmartChargingCtrlr.PeriodsPerSchedule",
}
"""1.6 key → ``Component.Variable[Instance]`` of the 2.0.1 device model."""


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass
class _Tx:
    """What the station remembers of a running transaction beyond the connector's state."""

    id: str
    seq_no: int = 0
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None
    charging_state: str | None = None
    charging_since_t_s: float | None = None
    charging_s: float = 0.0


class V201Charger(VirtualCharger, LibChargePoint, ReservationMixin, LocalListMixin, CertificatesMixin):  # type: ignore[misc]
    """An emulated OCPP 2.0.1 charging station.

    Args:
        spec: What the station is.
        ctx: What all chargers of the process share.
        variables: Device-model values to set at start, keyed ``"Component.Variable"`` or
            ``"Component.Variable[Instance]"`` (e.g. ``{"SampledDataCtrlr.TxUpdatedInterval": "60"}``);
            ReadOnly ones too, as a station's configuration. Invalid values raise ValueError.
        default_ev: The EV a remote start or a bare `plug_in` plugs in.
        firmware_step_s: Simulated seconds each firmware step (download, install) takes.
        config: What the fleet, the CLI and the pytest plugin pass for both versions: ``Component.Variable``
            names, or 1.6 keys that have a 2.0.1 variable (`KEYS_16`).
    """

    subprotocol: ClassVar[str] = "ocpp2.0.1"
    ocpp_version: ClassVar[str] = "2.0.1"

    def __init__(
        self,
        spec: ChargerSpec,
        ctx: ChargerContext,
        variables: Mapping[str, str] | None = None,
        default_ev: EVSession = DEFAULT_EV,
        firmware_step_s: float = 60.0,
        config: Mapping[str, str] | None = None,
    ) -> None:
        """A stopped station; `run` brings it up."""
        self.dm: DeviceModel = standard_device_model(
            vendor_name=spec.vendor,
            model=spec.model,
            serial_number=spec.serial or spec.id,
            firmware_version=spec.firmware,
            evse_max_power_w=[kw_to_w(c.max_power_kw) for c in spec.connectors],
            connector_types=["cCCS2" if c.dc else "cType2" for c in spec.connectors],
            security_profile=ctx.security.profile,
            basic_auth_password=ctx.password or "",
            identity=spec.id,
        )
        for key, value in (config or {}).items():
            name = KEYS_16.get(key, key)
            if "." not in name:
                raise ValueError(
                    f"config: {key} is a 1.6 key without a 2.0.1 variable here; give Component.Variable "
                    f"(e.g. SampledDataCtrlr.TxUpdatedInterval) or one of {', '.join(sorted(KEYS_16))}"
                )
            self._configure(name, value)
        for name, value in (variables or {}).items():
            self._configure(name, value)
        self.default_ev = default_ev
        self.firmware_step_s = firmware_step_s
        self.registration = "Unknown"  # last BootNotification status
        self.firmware_status = "Idle"
        self._firmware_request_id: int | None = None
        self._firmware_task: asyncio.Task[Any] | None = None
        self._installed_request_id: int | None = None  # "Installed" is reported after the reboot
        self._needs_boot = True  # a BootNotification is due after (re)boot, not after a reconnect
        self._boot_reason = "PowerUp"
        self._reboot_cause = ("AbnormalCondition", "PowerLoss")  # trigger and stoppedReason of a hard reboot
        self._reset_when_idle = False
        self._pending_report: tuple[int, list[dict[str, object]]] | None = None
        self._boot_now = asyncio.Event()  # a triggered BootNotification while Pending or Rejected
        self._reconnect_after_answer = False
        self._txs: dict[int, _Tx] = {}
        self._init_reservations()
        self._init_local_list()
        self._init_certificates()
        super().__init__(spec, ctx)
        self.profiles = StationProfiles({c.id: c.profile_set for c in self.connectors.values()})
        self.heartbeat_interval_s = float(self.dm.int_value("OCPPCommCtrlr", "HeartbeatInterval"))

    def _configure(self, name: str, value: str) -> None:
        component, _, variable = name.partition(".")
        instance = None
        if variable.endswith("]") and "[" in variable:
            variable, _, rest = variable.partition("[")
            instance = rest[:-1]
        key = (ComponentKey(component), VariableKey(variable, instance))
        found = self.dm.find(*key)
        if found is None:
            raise ValueError(f"variables: no {name} in the device model (e.g. SampledDataCtrlr.TxUpdatedInterval)")
        reason = found.check(value)
        if reason is not None:
            raise ValueError(f"variables: {name}={value!r} is not valid ({reason})")
        self.dm.write(*key, value)

    # ------------------------------------------------------------------ settings from the device model

    def meter_interval_s(self) -> float:
        """SampledDataCtrlr.TxUpdatedInterval."""
        return float(self.dm.int_value("SampledDataCtrlr", "TxUpdatedInterval"))

    def transaction_attempts(self) -> int:
        """OCPPCommCtrlr.MessageAttempts[TransactionEvent]."""
        return max(1, self.dm.int_value("OCPPCommCtrlr", "MessageAttempts", instance="TransactionEvent"))

    def transaction_retry_interval_s(self) -> float:
        """OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]."""
        return float(self.dm.int_value("OCPPCommCtrlr", "MessageAttemptInterval", instance="TransactionEvent"))

    def _items_per_message(self, kind: str) -> int:
        return self.dm.int_value("DeviceDataCtrlr", "ItemsPerMessage", instance=kind)

    # ------------------------------------------------------------------ boot, heartbeat, status

    async def boot(self) -> None:
        """BootNotification until Accepted (waiting the interval while Pending or Rejected); not on a reconnect."""
        if not self._needs_boot:
            return
        payload = call.BootNotification(
            charging_station={
                "model": self.spec.model,
                "vendor_name": self.spec.vendor,
                "serial_number": self.spec.serial or self.spec.id,
                "firmware_version": self.dm.value("ChargingStation", "FirmwareVersion"),
            },
            reason=self._boot_reason,
        )
        while True:
            try:
                res = await self.request(payload)
            except (CsmsCallError, TimeoutError, OCPPError):
                await self.clock.sleep(self.backoff.next_s())
                continue
            self.registration = str(res.status)
            self.note_csms_time(res.current_time)
            interval_s = float(res.interval)
            if res.status == "Accepted":
                if interval_s > 0:
                    self.heartbeat_interval_s = interval_s
                    self.dm.write(ComponentKey("OCPPCommCtrlr"), VariableKey("HeartbeatInterval"), str(int(interval_s)))
                self._needs_boot = False
                self._boot_reason = "PowerUp"
                return
            self._boot_now.clear()
            waits = {
                asyncio.ensure_future(self.clock.sleep(interval_s if interval_s > 0 else self.heartbeat_interval_s)),
                asyncio.ensure_future(self._boot_now.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await self._cancel(waits)
            if self._boot_now.is_set():
                payload.reason = "Triggered"

    async def after_boot(self) -> None:
        """StatusNotification of every connector; Installed after a firmware reboot."""
        for c in self.connectors.values():
            await self.send_status(c)
        if self._installed_request_id is not None:
            request_id, self._installed_request_id = self._installed_request_id, None
            await self._firmware_status("Installed", request_id)

    async def send_heartbeat(self) -> None:
        """One Heartbeat."""
        await self.request(call.Heartbeat())

    async def send_status(self, c: Connector) -> None:
        """StatusNotification of the connector's status (skipped while offline)."""
        if not self.accepted:
            return
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(
                call.StatusNotification(
                    timestamp=self.clock.timestamp(), connector_status=c.status, evse_id=c.id, connector_id=1
                )
            )

    def _status_of(self, c: Connector) -> str:
        if c.fault is not None:
            return "Faulted"
        if c.ev is not None or c.tx_ref is not None:
            return "Occupied"
        if not c.operative:
            return "Unavailable"
        if c.reservation_id is not None:
            return "Reserved"
        return "Available"

    async def update_status(self, c: Connector) -> None:
        """Recompute the connector's status; tell the CSMS and the device model when it changed."""
        status = self._status_of(c)
        if status == c.status:
            return
        c.status = status
        available = "true" if status in ("Available", "Occupied", "Reserved") else "false"
        for component in (ComponentKey("EVSE", evse_id=c.id), ComponentKey("Connector", evse_id=c.id, connector_id=1)):
            self.dm.write(component, VariableKey("AvailabilityState"), status)
            self.dm.write(component, VariableKey("Available"), available)
        await self.send_status(c)

    # ------------------------------------------------------------------ authorization

    async def authorize(self, id_token: dict[str, Any]) -> bool:
        """Ask the CSMS when online; offline, AuthCtrlr.OfflineTxForUnknownIdEnabled decides."""
        if not self.dm.bool_value("AuthCtrlr", "Enabled"):
            return True
        local = self.local_decision(id_token, online=self.accepted)
        if local is not None:
            return local
        if self.accepted:
            try:
                res = await self.request(call.Authorize(id_token=id_token))
            except (TimeoutError, OfflineError, CsmsCallError, OCPPError):
                return self._offline_authorize()
            return bool(res.id_token_info["status"] == "Accepted")
        return self._offline_authorize()

    def _offline_authorize(self) -> bool:
        return self.dm.bool_value("AuthCtrlr", "LocalAuthorizeOffline") and self.dm.bool_value(
            "AuthCtrlr", "OfflineTxForUnknownIdEnabled"
        )

    @staticmethod
    def _token(id_tag: str, kind: str = "ISO14443") -> dict[str, Any]:
        return {"idToken": id_tag, "type": kind}

    # ------------------------------------------------------------------ the driver

    async def plug_in(
        self,
        connector_id: int = 1,
        ev: EVSession | None = None,
        id_tag: str = "TAG0001",
        *,
        iso15118: bool = False,
        departure_s: float | None = None,
    ) -> None:
        """An EV plugs into EVSE ``connector_id`` and its driver presents ``id_tag``.

        Args:
            connector_id: The EVSE.
            ev: The vehicle (the default EV if None).
            id_tag: The token presented (ISO14443).
            iso15118: The EV speaks ISO 15118: NotifyEVChargingNeeds follows the authorization.
            departure_s: Simulated seconds until the driver leaves (ISO 15118 departure time).
        """
        c = self._connector(connector_id)
        if c.ev is not None:
            raise ValueError(f"{self.spec.id} EVSE {connector_id}: an EV is already plugged in")
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.ev = ev or self.default_ev
        c.meter.plug(c.ev, t_s)
        await self.update_status(c)
        if c.fault is not None or not c.operative:
            return
        if c.tx_ref is None and _START_ON_PLUG & set(self._start_points()):
            self._start_tx(c, "CablePluggedIn")
        elif c.tx_ref is not None:
            self._tx_event(c, "Updated", "CablePluggedIn")
        if c.tx_ref is not None:
            self.spawn(self._ev_connection_timeout(c, c.tx_ref))
        token = self._token(id_tag)
        if not self.reservation_admits(c, token) or not await self.authorize(token):
            return
        if iso15118:
            await self.send_charging_needs(c, departure_s)
        self._authorized_on(c, token, "Authorized")

    async def _ev_connection_timeout(self, c: Connector, tx_id: str) -> None:
        """End a transaction started on plug-in that no token authorized within TxCtrlr.EVConnectionTimeOut."""
        await self.clock.sleep(self.dm.int_value("TxCtrlr", "EVConnectionTimeOut"))
        tx = self._txs.get(c.id)
        if tx is not None and tx.id == tx_id and tx.id_token is None:
            await self.end_transaction(c, "EVConnectTimeout", "Timeout")

    async def unplug(self, connector_id: int = 1) -> None:
        """The EV leaves: the transaction ends (EVCommunicationLost, EVDisconnected) and the EVSE frees up."""
        c = self._connector(connector_id)
        stops = bool(_STOP_ON_UNPLUG & set(self._stop_points())) or self.dm.bool_value(
            "TxCtrlr", "StopTxOnEVSideDisconnect"
        )
        if c.tx_ref is not None and stops:
            await self.end_transaction(c, "EVCommunicationLost", "EVDisconnected")
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.meter.unplug(t_s)
        c.ev = None
        await self.update_status(c)

    async def present_token(self, connector_id: int, id_tag: str) -> None:
        """The driver presents a token again: the same token stops the transaction (StopAuthorized, Local)."""
        c = self._connector(connector_id)
        tx = self._txs.get(c.id)
        if tx is not None and tx.id_token is not None and tx.id_token["idToken"] == id_tag:
            await self.end_transaction(c, "StopAuthorized", "Local", id_token=self._token(id_tag))

    async def send_charging_needs(self, c: Connector, departure_s: float | None) -> None:
        """NotifyEVChargingNeeds for the EV on ``c``: its energy need and, if known, departure time."""
        ev = c.ev
        if ev is None or not self.accepted:
            return
        need_wh = max(0.0, (ev.target_soc_frac - c.meter.soc_frac) * ev.model.capacity_kwh * 1000.0)
        needs: dict[str, Any] = {}
        if departure_s is not None:
            needs["departure_time"] = ocpp_time(self.clock.now() + timedelta(seconds=departure_s))
        if c.spec.dc:
            max_kw = max(p for _, p in ev.model.dc_curve)
            needs["requested_energy_transfer"] = "DC"
            needs["dc_charging_parameters"] = {
                "ev_max_current": int(kw_to_amps(max_kw, c.spec.voltage_v, 1)),
                "ev_max_voltage": int(c.spec.voltage_v),
                "energy_amount": round(need_wh),
                "ev_max_power": int(kw_to_w(max_kw)),
                "state_of_charge": int(round(c.meter.soc_frac * 100)),
                "ev_energy_capacity": int(ev.model.capacity_kwh * 1000),
                "full_soc": int(round(ev.target_soc_frac * 100)),
            }
        else:
            phases = c.meter.phases
            needs["requested_energy_transfer"] = "AC_three_phase" if phases == 3 else "AC_single_phase"
            needs["ac_charging_parameters"] = {
                "energy_amount": round(need_wh),
                "ev_min_current": 6,
                "ev_max_current": int(kw_to_amps(ev.model.ac_max_kw, c.spec.voltage_v, phases)),
                "ev_max_voltage": int(c.spec.voltage_v),
            }
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=c.id))

    # ------------------------------------------------------------------ transactions

    def _start_points(self) -> tuple[str, ...]:
        return self.dm.list_value("TxCtrlr", "TxStartPoint")

    def _stop_points(self) -> tuple[str, ...]:
        return self.dm.list_value("TxCtrlr", "TxStopPoint")

    def _authorized_on(
        self, c: Connector, token: dict[str, Any], trigger: str, remote_start_id: int | None = None
    ) -> None:
        """The driver is authorized on ``c``: start the transaction (or add the token to it) and the energy."""
        if c.tx_ref is None:
            self._start_tx(c, trigger, token, remote_start_id)
            return
        tx = self._txs[c.id]
        tx.id_token = token
        if remote_start_id is not None:
            tx.remote_start_id = remote_start_id
        c.id_tag = token["idToken"]
        self._energize(c)
        self._tx_event(c, "Updated", trigger, with_token=True)

    def _start_tx(
        self,
        c: Connector,
        trigger: str,
        token: dict[str, Any] | None = None,
        remote_start_id: int | None = None,
    ) -> _Tx:
        """Start a transaction on ``c`` and queue its Started event."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        tx = _Tx(id=str(uuid.uuid4()), id_token=token, remote_start_id=remote_start_id)
        self._txs[c.id] = tx
        c.tx_ref = c.tx_id = tx.id
        c.id_tag = token["idToken"] if token else None
        c.tx_start_t_s = t_s
        c.profile_set.start_transaction(t_s)
        self._energize(c)
        c.meter_start_wh = c.meter.read(t_s).energy_wh
        self.ctx.log.summary.transactions_started += 1
        measurands = self.dm.list_value("SampledDataCtrlr", "TxStartedMeasurands")
        self._tx_event(c, "Started", trigger, with_token=True, measurands=measurands, context="Transaction.Begin")
        self.start_meter_loop(c)
        return tx

    def _energize(self, c: Connector) -> None:
        """Let energy flow when an EV is plugged in, a token authorized and the EVSE can deliver."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        tx = self._txs.get(c.id)
        if c.ev is not None and tx is not None and tx.id_token is not None and c.operative and c.fault is None:
            if not c.meter.charging:
                c.meter.start(t_s)
                self.share_power()
        elif c.meter.charging:
            c.meter.suspend(t_s)
            self.share_power()

    def _charging_state(self, c: Connector) -> str:
        tx = self._txs.get(c.id)
        if c.ev is None:
            return "Idle"
        if tx is None or tx.id_token is None:
            return "EVConnected"
        if c.meter.full():
            return "SuspendedEV"
        if not c.meter.charging or c.limit_kw(self.clock.t_s()) <= 0:
            return "SuspendedEVSE"
        return "Charging"

    def _tx_event(
        self,
        c: Connector,
        event_type: str,
        trigger: str,
        *,
        with_token: bool = False,
        measurands: tuple[str, ...] = (),
        context: str = "Sample.Periodic",
        stopped_reason: str | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> None:
        """Queue a TransactionEvent of ``c``'s transaction (the charging state goes along when it changed)."""
        tx = self._txs[c.id]
        t_s = self.clock.t_s()
        state = self._charging_state(c) if event_type != "Ended" else None
        if tx.charging_state == "Charging" and state != "Charging" and tx.charging_since_t_s is not None:
            tx.charging_s += t_s - tx.charging_since_t_s
            tx.charging_since_t_s = None
        if state == "Charging" and tx.charging_state != "Charging":
            tx.charging_since_t_s = t_s
        info: dict[str, Any] = {"transactionId": tx.id}
        if state is not None and state != tx.charging_state:
            info["chargingState"] = state
            tx.charging_state = state
        if event_type == "Ended":
            if tx.charging_since_t_s is not None:
                tx.charging_s += t_s - tx.charging_since_t_s
                tx.charging_since_t_s = None
            info["timeSpentCharging"] = round(tx.charging_s)
            info["stoppedReason"] = stopped_reason or "Local"
        if tx.remote_start_id is not None and (event_type == "Started" or trigger == "RemoteStart"):
            info["remoteStartId"] = tx.remote_start_id
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": self.clock.timestamp(),
            "triggerReason": trigger,
            "seqNo": tx.seq_no,
            "transactionInfo": info,
        }
        tx.seq_no += 1
        if not self.accepted:
            payload["offline"] = True
        if event_type == "Started":
            payload["evse"] = {"id": c.id, "connectorId": 1}
        token = id_token or (tx.id_token if with_token else None)
        if token is not None:
            payload["idToken"] = token
            reservation_id = self.take_used_reservation(c.id)
            if reservation_id is not None:
                payload["reservationId"] = reservation_id
        mv = self._meter_value(c, measurands, context) if measurands else None
        if mv is not None:
            payload["meterValue"] = [mv]
        self.enqueue("TransactionEvent", payload, tx.id)

    def _meter_value(self, c: Connector, measurands: tuple[str, ...], context: str) -> dict[str, Any] | None:
        """A MeterValueType (wire form) of ``measurands`` now, or None when none can be measured."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        r = c.meter.read(t_s)
        offered_kw = min(c.meter.cap_kw(), c.spec.max_power_kw)
        values = {
            "Energy.Active.Import.Register": r.energy_wh,
            "Power.Active.Import": r.power_w,
            "Current.Import": r.current_a,
            "Voltage": r.voltage_v,
            "SoC": r.soc_pct,
            "Power.Offered": round(kw_to_w(offered_kw), 1),
            "Current.Offered": round(kw_to_amps(offered_kw, c.spec.voltage_v, c.meter.phases), 1),
        }
        sampled = []
        for m in measurands:
            value = values.get(m)
            if value is None:
                continue
            unit, location = _UNITS[m]
            sampled.append(
                {
                    "value": value,
                    "context": context,
                    "measurand": m,
                    "location": location,
                    "unitOfMeasure": {"unit": unit},
                }
            )
        if not sampled:
            return None
        return {"timestamp": self.clock.timestamp(), "sampledValue": sampled}

    async def end_transaction(
        self, c: Connector, trigger: str, stopped_reason: str, id_token: dict[str, Any] | None = None
    ) -> None:
        """End the transaction on ``c`` and queue its Ended event with the TxEndedMeasurands."""
        if c.tx_ref is None or c.id not in self._txs:
            return
        t_s = self.clock.t_s()
        c.sync(t_s)
        measurands = self.dm.list_value("SampledDataCtrlr", "TxEndedMeasurands")
        if c.meter.charging:
            c.meter.suspend(t_s)
        self._tx_event(
            c,
            "Ended",
            trigger,
            measurands=measurands,
            context="Transaction.End",
            stopped_reason=stopped_reason,
            id_token=id_token,
        )
        self.ctx.log.summary.transactions_ended += 1
        del self._txs[c.id]
        c.tx_ref = c.tx_id = c.id_tag = None
        c.tx_start_t_s = None
        c.profile_set.stop_transaction()
        self.profiles.forget_missing()
        self._count_profiles()
        c.sync(t_s)
        if c.meter_task is not None and c.meter_task is not asyncio.current_task():
            c.meter_task.cancel()
        c.meter_task = None
        self.share_power()
        if c.pending_operative is not None:
            c.operative, c.pending_operative = c.pending_operative, None
        await self.update_status(c)
        if self._reset_when_idle and not self._txs:
            self._reset_when_idle = False
            self.spawn(self._reset_now())

    async def sample_meter(self, c: Connector) -> None:
        """Queue an Updated event (MeterValuePeriodic) with the TxUpdatedMeasurands."""
        if c.tx_ref is None or c.id not in self._txs:
            return
        measurands = self.dm.list_value("SampledDataCtrlr", "TxUpdatedMeasurands")
        self._tx_event(c, "Updated", "MeterValuePeriodic", measurands=measurands)

    def _report_charging_state(self, c: Connector) -> None:
        """Queue an Updated event (ChargingStateChanged) if the charging state changed."""
        tx = self._txs.get(c.id)
        if tx is not None and self._charging_state(c) != tx.charging_state:
            self._tx_event(c, "Updated", "ChargingStateChanged")

    async def send_queued(self, msg: QueuedMessage) -> None:
        """Send a queued TransactionEvent; an idToken the CSMS does not accept ends the transaction."""
        kwargs = {_snake(k): v for k, v in msg.payload.items()}
        res = await self.request(call.TransactionEvent(**kwargs))
        if msg.payload.get("eventType") == "Ended":
            self.ctx.log.summary.transactions_confirmed += 1
            return
        info = res.id_token_info
        if info is not None and info.get("status") != "Accepted":
            for c in self.connectors.values():
                if c.tx_ref == msg.tx_ref and self.dm.bool_value("TxCtrlr", "StopTxOnInvalidId"):
                    self.spawn(self.end_transaction(c, "Deauthorized", "DeAuthorized"))

    # ------------------------------------------------------------------ reboot and faults

    async def on_reboot(self, hard: bool) -> None:
        """End what still runs (a power loss), put RebootRequired values in effect, boot again."""
        trigger, reason = self._reboot_cause
        self._reboot_cause = ("AbnormalCondition", "PowerLoss")
        for c in self.connectors.values():
            if c.tx_ref is not None:
                await self.end_transaction(c, trigger, reason)
            c.reservation_id = None
        self.dm.reboot()
        self.heartbeat_interval_s = float(self.dm.int_value("OCPPCommCtrlr", "HeartbeatInterval"))
        self.registration = "Unknown"
        self._needs_boot = True

    async def stop_transactions_locally(self) -> None:
        """TransactionEvent Ended for every running transaction, stopped at the station (StopAuthorized, Local)."""
        for c in self.connectors.values():
            if c.tx_ref is not None:
                await self.end_transaction(c, "StopAuthorized", "Local")

    async def on_connector_fault(self, c: Connector, error_code: str | None) -> None:
        """Faulted (energy stops, SuspendedEVSE); back to its status when it clears."""
        self._energize(c)
        await self.update_status(c)
        if c.tx_ref is not None:
            self._tx_event(c, "Updated", "AbnormalCondition" if error_code else "ChargingStateChanged")

    # ------------------------------------------------------------------ helpers

    def _connector(self, evse_id: int) -> Connector:
        c = self.connectors.get(evse_id)
        if c is None:
            raise ValueError(f"{self.spec.id} has EVSEs 1..{len(self.connectors)}, not {evse_id}")
        return c

    def _by_tx_id(self, transaction_id: str) -> Connector | None:
        for c in self.connectors.values():
            if c.tx_ref is not None and c.tx_ref == transaction_id:
                return c
        return None

    def _count_profiles(self) -> None:
        self.dm.write(
            ComponentKey("SmartChargingCtrlr"), VariableKey("EntriesChargingProfiles"), str(self.profiles.count)
        )

    def _refresh_live_values(self) -> None:
        """Update measured values (power, clock) before the CSMS reads the device model."""
        t_s = self.clock.t_s()
        total_w = 0.0
        for c in self.connectors.values():
            power_w = c.meter.read(t_s).power_w
            total_w += power_w
            self.dm.write(ComponentKey("EVSE", evse_id=c.id), VariableKey("Power"), f"{power_w:g}")
        self.dm.write(ComponentKey("ChargingStation"), VariableKey("Power"), f"{total_w:g}")
        self.dm.write(
            ComponentKey("ClockCtrlr"), VariableKey("DateTime"), self.clock.timestamp().replace("Z", "+00:00")
        )

    # ------------------------------------------------------------------ Provisioning

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        """GetVariables over the device model (more items than ItemsPerMessage is a CallError)."""
        limit = self._items_per_message("GetVariables")
        if len(get_variable_data) > limit:
            raise OccurrenceConstraintViolationError(
                description=f"{len(get_variable_data)} getVariableData items, ItemsPerMessage is {limit}"
            )
        self._refresh_live_values()
        results = []
        for item in get_variable_data:
            attribute = Attribute(item.get("attribute_type", "Actual"))
            res = self.dm.get(
                ComponentKey.from_ocpp(item["component"]), VariableKey.from_ocpp(item["variable"]), attribute
            )
            result: dict[str, Any] = {
                "attribute_status": res.status.value,
                "attribute_type": attribute.value,
                "component": item["component"],
                "variable": item["variable"],
            }
            if res.value is not None:
                result["attribute_value"] = res.value
            if res.reason is not None:
                result["attribute_status_info"] = {"reason_code": res.reason}
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        """SetVariables over the device model; accepted values take effect at once (or at reboot)."""
        limit = self._items_per_message("SetVariables")
        if len(set_variable_data) > limit:
            raise OccurrenceConstraintViolationError(
                description=f"{len(set_variable_data)} setVariableData items, ItemsPerMessage is {limit}"
            )
        results = []
        for item in set_variable_data:
            attribute = Attribute(item.get("attribute_type", "Actual"))
            component = ComponentKey.from_ocpp(item["component"])
            variable = VariableKey.from_ocpp(item["variable"])
            value = str(item["attribute_value"])
            res = self.dm.set(component, variable, value, attribute)
            if res.status is SetStatus.ACCEPTED:
                self._variable_changed(component, variable, value)
            result: dict[str, Any] = {
                "attribute_status": res.status.value,
                "attribute_type": attribute.value,
                "component": item["component"],
                "variable": item["variable"],
            }
            if res.reason is not None:
                result["attribute_status_info"] = {"reason_code": res.reason}
            results.append(result)
        return call_result.SetVariables(set_variable_result=results)

    def _variable_changed(self, component: ComponentKey, variable: VariableKey, value: str) -> None:
        name = (component.name.casefold(), variable.name.casefold())
        if name == ("ocppcommctrlr", "heartbeatinterval"):
            self.heartbeat_interval_s = float(value)
        elif name == ("securityctrlr", "basicauthpassword"):
            self.ctx.log.add_secret(value)
            self.password = value
            # A.2: reconnect with the new password once the answer is out (see `after_set_variables`).
            self._reconnect_after_answer = self.ctx.security.profile in (1, 2)

    @after(Action.set_variables)
    def after_set_variables(self, **kwargs: Any) -> None:
        """Reconnect when the basic-auth password changed."""
        if self._reconnect_after_answer:
            self._reconnect_after_answer = False
            self.spawn(self._close_ws())

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **kwargs: Any) -> Any:
        """GetBaseReport: Accepted, the report follows as NotifyReport pages of ItemsPerMessage."""
        self._refresh_live_values()
        rows = self.dm.report(ReportBase(report_base))
        self._pending_report = (request_id, rows)
        return call_result.GetBaseReport(status="Accepted" if rows else "EmptyResultSet")

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **kwargs: Any) -> None:
        """Send the pages."""
        pending = self._pending_report
        if pending is not None and pending[0] == request_id and pending[1]:
            self._pending_report = None
            self.spawn(self._send_report(request_id, pending[1]))

    async def _send_report(self, request_id: int, rows: list[dict[str, object]]) -> None:
        per_page = max(1, self._items_per_message("GetReport"))
        pages = [rows[i : i + per_page] for i in range(0, len(rows), per_page)]
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            for seq_no, page in enumerate(pages):
                await self.request(
                    call.NotifyReport(
                        request_id=request_id,
                        generated_at=self.clock.timestamp(),
                        seq_no=seq_no,
                        report_data=page,
                        tbc=seq_no < len(pages) - 1,
                    )
                )

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> Any:  # noqa: A002 - OCPP's name
        """Reset Immediate (transactions end, then reboot) or OnIdle (Scheduled while transactions run)."""
        if evse_id is not None:
            c = self.connectors.get(evse_id)
            if c is None:
                return call_result.Reset(status="Rejected")
            if c.tx_ref is not None and type == "OnIdle":
                return call_result.Reset(status="Scheduled")
            if c.tx_ref is not None:
                self.spawn(self.end_transaction(c, "ResetCommand", "ImmediateReset"))
            return call_result.Reset(status="Accepted")
        if type == "OnIdle" and self._txs:
            self._reset_when_idle = True
            return call_result.Reset(status="Scheduled")
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> None:  # noqa: A002
        """Reboot once the answer is out (a station-wide reset that was not scheduled)."""
        if evse_id is None and not self._reset_when_idle:
            self.spawn(self._reset_now())

    async def _reset_now(self) -> None:
        """End every transaction while still online (ResetCommand, ImmediateReset), then reboot."""
        await asyncio.sleep(0)
        for c in self.connectors.values():
            await self.end_transaction(c, "ResetCommand", "ImmediateReset")
        # Give the Ended events a chance to go out before the connection closes (they stay queued if not).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue_drained(), self.ctx.response_timeout_s)
        self._boot_reason = "RemoteReset"
        self._reboot_cause = ("ResetCommand", "ImmediateReset")
        self.request_reboot(hard=False)

    async def _queue_drained(self) -> None:
        while len(self.queue) and self.accepted:
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ Availability

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """ChangeAvailability: Accepted, or Scheduled while a transaction runs on an EVSE it concerns."""
        if evse is not None and evse.get("id", 0) != 0:
            c = self.connectors.get(int(evse["id"]))
            if c is None or evse.get("connector_id", 1) != 1:
                return call_result.ChangeAvailability(status="Rejected")
            targets = [c]
        else:
            targets = list(self.connectors.values())
        operative = operational_status == "Operative"
        scheduled = False
        for c in targets:
            if c.tx_ref is not None and not operative:
                c.pending_operative = operative
                scheduled = True
            else:
                c.operative, c.pending_operative = operative, None
                self.spawn(self.update_status(c))
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, evse_id: int, connector_id: int, **kwargs: Any) -> Any:
        """UnlockConnector: refused while an authorized transaction runs (F05.FR.02)."""
        c = self.connectors.get(evse_id)
        if c is None or connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        tx = self._txs.get(c.id)
        if tx is not None and tx.id_token is not None:
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        return call_result.UnlockConnector(status="Unlocked")

    # ------------------------------------------------------------------ Remote control

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """RequestStartTransaction: Accepted on a free, operative EVSE (with the id of a transaction it joins)."""
        candidates = [self.connectors.get(evse_id)] if evse_id else list(self.connectors.values())
        c = next(
            (
                x
                for x in candidates
                if x is not None
                and x.operative
                and x.fault is None
                and (x.tx_ref is None or self._txs[x.id].id_token is None)
            ),
            None,
        )
        if c is None:
            return call_result.RequestStartTransaction(status="Rejected")
        if charging_profile is not None and charging_profile.get("charging_profile_purpose") != "TxProfile":
            return call_result.RequestStartTransaction(status="Rejected")
        token = {"idToken": id_token["id_token"], "type": id_token["type"]}
        self.spawn(self._remote_start(c, token, remote_start_id, charging_profile))
        return call_result.RequestStartTransaction(status="Accepted", transaction_id=c.tx_ref)

    async def _remote_start(
        self, c: Connector, token: dict[str, Any], remote_start_id: int, profile: dict[str, Any] | None
    ) -> None:
        await asyncio.sleep(0)  # the answer goes out first
        if self.dm.bool_value("AuthCtrlr", "AuthorizeRemoteStart") and not await self.authorize(token):
            return
        if c.ev is None:
            t_s = self.clock.t_s()
            c.sync(t_s)
            c.ev = self.default_ev
            c.meter.plug(c.ev, t_s)
            await self.update_status(c)
        if c.tx_ref is not None and self._txs[c.id].id_token is not None:
            return
        self._authorized_on(c, token, "RemoteStart", remote_start_id)
        if profile is not None and c.tx_ref is not None:
            with contextlib.suppress(ProfileError):
                self._install_profile(c.id, profile)

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id: str, **kwargs: Any) -> Any:
        """RequestStopTransaction: Accepted for a running transaction of ours; it ends (RemoteStop, Remote)."""
        c = self._by_tx_id(transaction_id)
        if c is None:
            return call_result.RequestStopTransaction(status="Rejected")
        self.spawn(self.end_transaction(c, "RemoteStop", "Remote"))
        return call_result.RequestStopTransaction(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """TriggerMessage: Accepted for what we can send (sent right after), Rejected for an unknown EVSE."""
        if evse is not None and evse.get("id", 0) not in (0, *self.connectors):
            return call_result.TriggerMessage(status="Rejected")
        if requested_message not in _TRIGGERABLE:
            return call_result.TriggerMessage(status="NotImplemented")
        if requested_message == "BootNotification" and self.registration == "Accepted":
            return call_result.TriggerMessage(status="Rejected")  # F06.FR.17
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Send what was asked for."""
        if requested_message in _TRIGGERABLE:
            self.spawn(self._triggered(requested_message, int(evse["id"]) if evse and evse.get("id") else None))

    async def _triggered(self, what: str, evse_id: int | None) -> None:
        await asyncio.sleep(0)
        targets = [self.connectors[evse_id]] if evse_id else list(self.connectors.values())
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            if what == "BootNotification":
                self._boot_now.set()
            elif what == "Heartbeat":
                await self.send_heartbeat()
            elif what == "StatusNotification":
                for c in targets:
                    await self.send_status(c)
            elif what == "MeterValues":
                measurands = self.dm.list_value("AlignedDataCtrlr", "Measurands")
                for c in targets:
                    mv = self._meter_value(c, measurands, "Trigger")
                    if mv is not None:
                        await self.request(call.MeterValues(evse_id=c.id, meter_value=[mv]))
            elif what == "TransactionEvent":
                measurands = self.dm.list_value("SampledDataCtrlr", "TxUpdatedMeasurands")
                for c in targets:
                    if c.id in self._txs:
                        self._tx_event(c, "Updated", "Trigger", measurands=measurands, context="Trigger")
            elif what == "FirmwareStatusNotification":
                await self.request(
                    call.FirmwareStatusNotification(
                        status=self.firmware_status,
                        request_id=self._firmware_request_id if self.firmware_status != "Idle" else None,
                    )
                )
            elif what == "LogStatusNotification":
                await self.request(call.LogStatusNotification(status="Idle"))
            elif what == "SignChargingStationCertificate":
                await self.sign_certificate("ChargingStationCertificate")
            elif what == "SignV2GCertificate":
                await self.sign_certificate("V2GCertificate")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        """DataTransfer: our vendor id echoes the data; any other is UnknownVendorId."""
        if vendor_id != self.spec.vendor:
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    async def data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None) -> Any:
        """Send a DataTransfer to the CSMS and return its answer."""
        return await self.request(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))

    # ------------------------------------------------------------------ Smart charging

    def _install_profile(self, evse_id: int, profile: dict[str, Any]) -> None:
        """Convert and install a ChargingProfileType; re-report the charging state it changes."""
        c = self.connectors.get(evse_id) or next(iter(self.connectors.values()))
        schedule = profile["charging_schedule"][0]
        if len(schedule["charging_schedule_period"]) > self.dm.int_value("SmartChargingCtrlr", "PeriodsPerSchedule"):
            raise ProfileError("more periods than SmartChargingCtrlr.PeriodsPerSchedule")
        if int(profile["stack_level"]) > self.dm.int_value("SmartChargingCtrlr", "ProfileStackLevel"):
            raise ProfileError("stackLevel above SmartChargingCtrlr.ProfileStackLevel")
        if schedule["charging_rate_unit"] not in self.dm.list_value("SmartChargingCtrlr", "RateUnit"):
            raise ProfileError(f"chargingRateUnit {schedule['charging_rate_unit']} is not supported")
        t_s = self.clock.t_s()
        converted = profile_from_ocpp(
            profile, self.ctx.clock.t_s_of, c.spec.voltage_v, c.meter.phases, received_t_s=t_s
        )
        for x in self.connectors.values():
            x.sync(t_s)
        running = self.connectors[evse_id].tx_ref if evse_id in self.connectors else None
        self.profiles.install(evse_id, converted, profile.get("transaction_id"), running)
        self._profile_accepted(evse_id, converted)
        self._count_profiles()
        self._after_limit_change(t_s)

    def _after_limit_change(self, t_s: float) -> None:
        for x in self.connectors.values():
            x.sync(t_s)
            self._report_charging_state(x)

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any) -> Any:
        """SetChargingProfile: the limit applies to the simulated power from now on."""
        try:
            self._install_profile(evse_id, charging_profile)
        except ProfileError as exc:
            return call_result.SetChargingProfile(
                status="Rejected", status_info={"reason_code": "InvalidProfile", "additional_info": str(exc)[:512]}
            )
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """ClearChargingProfile by id or criteria: Accepted when something went, else Unknown."""
        criteria = charging_profile_criteria or {}
        purpose_name = criteria.get("charging_profile_purpose")
        t_s = self.clock.t_s()
        for x in self.connectors.values():
            x.sync(t_s)
        removed = self.profiles.clear(
            profile_id=charging_profile_id,
            evse_id=criteria.get("evse_id"),
            purpose=PURPOSES[purpose_name] if purpose_name else None,
            stack_level=criteria.get("stack_level"),
        )
        self._count_profiles()
        self._after_limit_change(t_s)
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> Any:
        """GetCompositeSchedule of an EVSE (0: the station's ChargingStationMaxProfiles) in A or W."""
        if evse_id == 0:
            c = next(iter(self.connectors.values()))
            profiles = tuple(p for p in c.profile_set.profiles if p.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX)
            max_kw = self.spec.shared_power_kw or sum(x.spec.max_power_kw for x in self.connectors.values())
        elif evse_id in self.connectors:
            c = self.connectors[evse_id]
            profiles = c.profile_set.profiles
            max_kw = c.spec.max_power_kw
        else:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or ("W" if c.spec.dc else "A")
        t0_s = float(math.floor(self.clock.t_s()))
        steps = composite_schedule(profiles, t0_s, t0_s + max(1, duration), c.profile_set.tx_start_t_s)
        schedule = schedule_to_ocpp(steps, t0_s, duration, unit, max_kw, c.spec.voltage_v, c.meter.phases)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": ocpp_time(self.ctx.clock.at(t0_s)),
                "charging_rate_unit": unit,
                "charging_schedule_period": schedule["chargingSchedulePeriod"],
            },
        )

    # ------------------------------------------------------------------ Firmware

    @on(Action.update_firmware)
    def on_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """UpdateFirmware: download at retrieveDateTime, install when idle, reboot into the new version.

        A new request cancels one in progress (AcceptedCanceled).
        """
        status = "Accepted"
        if self._firmware_task is not None and not self._firmware_task.done():
            self._firmware_task.cancel()
            status = "AcceptedCanceled"
        self._firmware_request_id = request_id
        self._firmware_task = self.spawn(
            self._update_firmware(request_id, firmware, retries or 0, retry_interval or 60)
        )
        return call_result.UpdateFirmware(status=status)

    async def _firmware_status(self, status: str, request_id: int) -> None:
        self.firmware_status = status
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(call.FirmwareStatusNotification(status=status, request_id=request_id))

    async def _update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int, retry_s: int) -> None:
        await asyncio.sleep(0)  # the answer goes out first
        location = str(firmware["location"])
        with contextlib.suppress(ValueError):
            retrieve_t_s = self.ctx.clock.t_s_of(parse_ocpp_time(firmware["retrieve_date_time"]))
            if retrieve_t_s > self.clock.t_s():
                await self._firmware_status("DownloadScheduled", request_id)
                await self.ctx.clock.sleep_until(retrieve_t_s)
        for attempt in range(retries + 1):
            await self._firmware_status("Downloading", request_id)
            await self.clock.sleep(self.firmware_step_s)
            if "fail-download" not in location:
                break
            await self._firmware_status("DownloadFailed", request_id)
            if attempt == retries:
                self.firmware_status = "Idle"
                return
            await self.clock.sleep(retry_s)
        await self._firmware_status("Downloaded", request_id)
        if firmware.get("signature"):
            await self._firmware_status("SignatureVerified", request_id)
        if self._txs:
            await self._firmware_status("InstallScheduled", request_id)
            while self._txs:
                await self.clock.sleep(self.firmware_step_s)
        await self._firmware_status("Installing", request_id)
        await self.clock.sleep(self.firmware_step_s)
        if "fail-install" in location:
            await self._firmware_status("InstallationFailed", request_id)
            self.firmware_status = "Idle"
            return
        version = location.rstrip("/").rsplit("/", 1)[-1] or self.dm.value("ChargingStation", "FirmwareVersion")
        self.dm.write(ComponentKey("ChargingStation"), VariableKey("FirmwareVersion"), version[:50])
        await self._firmware_status("InstallRebooting", request_id)
        self._installed_request_id = request_id
        self._boot_reason = "FirmwareUpdate"
        self._reboot_cause = ("AbnormalCondition", "Reboot")
        self.request_reboot(hard=False)
