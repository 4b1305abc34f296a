"""`V16Charger`: an OCPP 1.6J charge point on the `VirtualCharger` core.

Profiles: Core, Smart Charging, Remote Trigger, Firmware Management, Local Auth List Management and
Reservation. Transaction messages (StartTransaction, StopTransaction, MeterValues of a transaction) go
through the persisted queue; a StopTransaction or MeterValues queued before the CSMS answered the
StartTransaction gets the CSMS's transactionId when it is sent.

Firmware and diagnostics take simulated time; a location containing ``fail-download``,
``fail-install`` or ``fail-upload`` makes that step fail, so a CSMS's error handling can be tested.
A RemoteStartTransaction on a connector without an EV plugs in the charger's default EV, as a driver
who plugged in and started from an app.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
from datetime import datetime
from typing import Any, ClassVar

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from sim.charging_profiles import ChargingProfilePurpose, composite_schedule
from sim.ev import PRESETS
from virtual_chargers.base import (
    ChargerContext,
    ChargerSpec,
    Connector,
    CsmsCallError,
    OfflineError,
    VirtualCharger,
)
from virtual_chargers.clock import ocpp_time, parse_ocpp_time
from virtual_chargers.meter import EVSession
from virtual_chargers.txqueue import QueuedMessage
from virtual_chargers.v16.keys import KeyStore
from virtual_chargers.v16.profiles import from_ocpp, schedule_to_ocpp

__all__ = ["DEFAULT_EV", "V16Charger"]

DEFAULT_EV = EVSession(PRESETS["vw_id4_pro"], soc_in_frac=0.3, target_soc_frac=0.9)

_UNITS = {
    "Energy.Active.Import.Register": ("Wh", "Outlet"),
    "Power.Active.Import": ("W", "Outlet"),
    "Current.Import": ("A", "Outlet"),
    "Voltage": ("V", "Outlet"),
    "SoC": ("Percent", "EV"),
    "Power.Offered": ("W", "Outlet"),
    "Current.Offered": ("A", "Outlet"),
}


class V16Charger(VirtualCharger, LibChargePoint):  # type: ignore[misc]
    """An emulated OCPP 1.6J charge point.

    Args:
        spec: What the charger is.
        ctx: What all chargers of the process share.
        config: Configuration keys to set at start (e.g. ``{"MeterValueSampleInterval": "10"}``).
        default_ev: The EV a remote start or a bare `plug_in` plugs in.
        firmware_step_s: Simulated seconds each firmware or diagnostics step takes.
    """

    subprotocol: ClassVar[str] = "ocpp1.6"
    ocpp_version: ClassVar[str] = "1.6"

    def __init__(
        self,
        spec: ChargerSpec,
        ctx: ChargerContext,
        config: dict[str, str] | None = None,
        default_ev: EVSession = DEFAULT_EV,
        firmware_step_s: float = 60.0,
    ) -> None:
        """A stopped charger; `run` brings it up."""
        self.keys = KeyStore(len(spec.connectors), config)
        self.default_ev = default_ev
        self.firmware_step_s = firmware_step_s
        self.firmware_version = spec.firmware
        self.registration = "Unknown"  # last BootNotification status
        self.auth_cache: dict[str, str] = {}
        self.local_list: dict[str, str] = {}
        self.local_list_version = 0
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self._reboot_reason = "PowerLoss"
        self._tx_counter = itertools.count(1)
        super().__init__(spec, ctx)
        self.heartbeat_interval_s = float(self.keys.get_int("HeartbeatInterval"))

    # ------------------------------------------------------------------ settings from keys

    def meter_interval_s(self) -> float:
        """MeterValueSampleInterval."""
        return float(self.keys.get_int("MeterValueSampleInterval"))

    def transaction_attempts(self) -> int:
        """TransactionMessageAttempts."""
        return max(1, self.keys.get_int("TransactionMessageAttempts"))

    def transaction_retry_interval_s(self) -> float:
        """TransactionMessageRetryInterval."""
        return float(self.keys.get_int("TransactionMessageRetryInterval"))

    # ------------------------------------------------------------------ boot, heartbeat, status

    async def boot(self) -> None:
        """BootNotification until Accepted; while Pending or Rejected wait the interval the CSMS gave."""
        self.keys.apply_pending()
        payload = call.BootNotification(
            charge_point_vendor=self.spec.vendor,
            charge_point_model=self.spec.model,
            charge_point_serial_number=self.spec.serial or self.spec.id,
            firmware_version=self.firmware_version,
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
                    self.keys.values["HeartbeatInterval"] = str(int(interval_s))
                return
            await self.clock.sleep(interval_s if interval_s > 0 else self.heartbeat_interval_s)

    async def after_boot(self) -> None:
        """StatusNotification for the charge point (connector 0) and every connector."""
        await self.send_status(0)
        for c in self.connectors.values():
            await self.send_status(c.id)

    async def send_heartbeat(self) -> None:
        """One Heartbeat."""
        await self.request(call.Heartbeat())

    async def send_status(self, connector_id: int) -> None:
        """StatusNotification with the connector's current status (skipped while offline)."""
        if not self.accepted:
            return
        if connector_id == 0:
            operative = any(c.operative for c in self.connectors.values())
            status, error = ("Available" if operative else "Unavailable"), "NoError"
        else:
            c = self.connectors[connector_id]
            status, error = c.status, c.error_code
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(
                call.StatusNotification(
                    connector_id=connector_id, error_code=error, status=status, timestamp=self.clock.timestamp()
                )
            )

    async def set_status(self, c: Connector, status: str, error_code: str = "NoError") -> None:
        """Change a connector's status and tell the CSMS if it changed."""
        if (c.status, c.error_code) == (status, error_code):
            return
        c.status, c.error_code = status, error_code
        await self.send_status(c.id)

    def _idle_status(self, c: Connector) -> str:
        if c.fault is not None:
            return "Faulted"
        if not c.operative:
            return "Unavailable"
        if c.reservation_id is not None:
            return "Reserved"
        return "Finishing" if c.ev is not None else "Available"

    def _charging_status(self, c: Connector) -> str:
        t_s = self.clock.t_s()
        if c.meter.full():
            return "SuspendedEV"
        if c.limit_kw(t_s) <= 0 or c.fault is not None:
            return "SuspendedEVSE"
        return "Charging"

    # ------------------------------------------------------------------ authorization and transactions

    async def authorize(self, id_tag: str) -> bool:
        """Authorize ``id_tag``: the CSMS when online, else the local list, cache or offline rules."""
        if self.accepted:
            if self.keys.get_bool("LocalPreAuthorize") and self._local_status(id_tag) == "Accepted":
                return True
            try:
                res = await self.request(call.Authorize(id_tag=id_tag))
            except (TimeoutError, OfflineError, CsmsCallError, OCPPError):
                return self._offline_authorize(id_tag)
            status = str(res.id_tag_info["status"])
            if self.keys.get_bool("AuthorizationCacheEnabled"):
                self.auth_cache[id_tag] = status
            return status == "Accepted"
        return self._offline_authorize(id_tag)

    def _local_status(self, id_tag: str) -> str | None:
        if self.keys.get_bool("LocalAuthListEnabled") and id_tag in self.local_list:
            return self.local_list[id_tag]
        if self.keys.get_bool("AuthorizationCacheEnabled"):
            return self.auth_cache.get(id_tag)
        return None

    def _offline_authorize(self, id_tag: str) -> bool:
        status = self._local_status(id_tag) if self.keys.get_bool("LocalAuthorizeOffline") else None
        if status is not None:
            return status == "Accepted"
        return self.keys.get_bool("AllowOfflineTxForUnknownId")

    async def plug_in(self, connector_id: int = 1, ev: EVSession | None = None, id_tag: str = "TAG0001") -> None:
        """An EV plugs in and its driver presents ``id_tag``: authorize, then start a transaction."""
        c = self._connector(connector_id)
        if c.ev is not None:
            raise ValueError(f"{self.spec.id} connector {connector_id}: an EV is already plugged in")
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.ev = ev or self.default_ev
        c.meter.plug(c.ev, t_s)
        if c.fault is not None or not c.operative:
            return
        if c.reservation_id is not None and c.id_tag != id_tag:
            return  # reserved for someone else: the EV waits
        await self.set_status(c, "Preparing")
        if c.tx_ref is None and await self.authorize(id_tag):
            await self.start_transaction(c, id_tag)

    async def unplug(self, connector_id: int = 1) -> None:
        """The EV leaves: stop its transaction (EVDisconnected) and free the connector."""
        c = self._connector(connector_id)
        if c.tx_ref is not None and self.keys.get_bool("StopTransactionOnEVSideDisconnect"):
            await self.stop_transaction(c, "EVDisconnected")
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.meter.unplug(t_s)
        c.ev = None
        if c.tx_ref is None:
            await self.set_status(c, self._idle_status(c))

    async def start_transaction(self, c: Connector, id_tag: str, profile: dict[str, Any] | None = None) -> None:
        """Start a transaction on ``c`` and queue StartTransaction (persisted before it is sent)."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        reservation_id, c.reservation_id = c.reservation_id, None
        c.tx_ref = f"{self.spec.id}:{self.boot_count}:{next(self._tx_counter)}:{round(t_s)}"
        c.tx_id = None
        c.id_tag = id_tag
        c.tx_start_t_s = t_s
        c.profile_set.start_transaction(t_s)
        if profile is not None:
            with contextlib.suppress(ValueError):
                converted = self._profile(profile, c)
                c.profile_set.install(converted)
                self._profile_accepted(c.id, converted)
        c.sync(t_s)
        c.meter.start(t_s)
        reading = c.meter.read(t_s)
        c.meter_start_wh = reading.energy_wh
        payload: dict[str, Any] = {
            "connectorId": c.id,
            "idTag": id_tag,
            "meterStart": int(reading.energy_wh),
            "timestamp": self.clock.timestamp(),
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        self.enqueue("StartTransaction", payload, c.tx_ref)
        self.ctx.log.summary.transactions_started += 1
        await self.set_status(c, self._charging_status(c))
        self.start_meter_loop(c)

    async def stop_transaction(self, c: Connector, reason: str, id_tag: str | None = None) -> None:
        """Stop the transaction on ``c`` and queue StopTransaction."""
        if c.tx_ref is None:
            return
        t_s = self.clock.t_s()
        c.sync(t_s)
        reading = c.meter.read(t_s)
        c.meter.suspend(t_s)
        payload: dict[str, Any] = {
            "meterStop": int(reading.energy_wh),
            "timestamp": self.clock.timestamp(),
            "transactionId": -1,  # the CSMS's id is filled in when it is sent
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        stop_data = self.keys.get_list("StopTxnSampledData")
        if stop_data:
            payload["transactionData"] = [self._meter_value(c, stop_data, "Transaction.End")]
        self.enqueue("StopTransaction", payload, c.tx_ref)
        self.ctx.log.summary.transactions_ended += 1
        c.tx_ref = c.tx_id = c.id_tag = None
        c.tx_start_t_s = None
        c.profile_set.stop_transaction()
        c.sync(t_s)
        if c.meter_task is not None and c.meter_task is not asyncio.current_task():
            c.meter_task.cancel()
        c.meter_task = None
        self.share_power()
        if c.pending_operative is not None:
            c.operative, c.pending_operative = c.pending_operative, None
        await self.set_status(c, self._idle_status(c))

    def _meter_value(self, c: Connector, measurands: list[str], context: str) -> dict[str, Any]:
        t_s = self.clock.t_s()
        c.sync(t_s)
        r = c.meter.read(t_s)
        values = {
            "Energy.Active.Import.Register": r.energy_wh,
            "Power.Active.Import": r.power_w,
            "Current.Import": r.current_a,
            "Voltage": r.voltage_v,
            "SoC": r.soc_pct,
            "Power.Offered": min(c.meter.cap_kw(), c.spec.max_power_kw) * 1000.0,
            "Current.Offered": min(c.meter.cap_kw(), c.spec.max_power_kw)
            * 1000.0
            / (c.spec.voltage_v * c.meter.phases),
        }
        sampled = []
        for m in measurands:
            value = values.get(m)
            if value is None or m not in _UNITS:
                continue
            unit, location = _UNITS[m]
            sampled.append(
                {"value": f"{value:g}", "context": context, "measurand": m, "unit": unit, "location": location}
            )
        return {"timestamp": self.clock.timestamp(), "sampledValue": sampled}

    async def sample_meter(self, c: Connector) -> None:
        """Queue MeterValues of the running transaction and follow the EV's state in the status."""
        if c.tx_ref is None:
            return
        mv = self._meter_value(c, self.keys.get_list("MeterValuesSampledData"), "Sample.Periodic")
        self.enqueue("MeterValues", {"connectorId": c.id, "transactionId": -1, "meterValue": [mv]}, c.tx_ref)
        await self.set_status(c, self._charging_status(c))

    async def send_queued(self, msg: QueuedMessage) -> None:
        """Send a queued transaction message with the CSMS's transactionId and act on the answer."""
        payload = dict(msg.payload)
        if msg.action != "StartTransaction" and msg.tx_ref is not None:
            tx_id = self.queue.tx_id(msg.tx_ref)
            if tx_id is not None:
                payload["transactionId"] = int(tx_id)
            elif msg.action == "MeterValues":
                payload.pop("transactionId", None)  # its StartTransaction was given up: no id to give
        on_answer = None
        if msg.action == "StartTransaction" and msg.tx_ref is not None:
            on_answer = functools.partial(self._learn_tx_id, msg.tx_ref)
        res = await self.request_wire(msg.action, payload, on_answer)
        if msg.action == "StartTransaction" and msg.tx_ref is not None:
            self.queue.set_tx_id(msg.tx_ref, str(res.transaction_id))
            for c in self.connectors.values():
                if c.tx_ref == msg.tx_ref:
                    c.tx_id = str(res.transaction_id)
                    status = res.id_tag_info.get("status")
                    if status != "Accepted" and self.keys.get_bool("StopTransactionOnInvalidId"):
                        self.spawn(self.stop_transaction(c, "DeAuthorized"))
        elif msg.action == "StopTransaction" and msg.tx_ref is not None:
            self.queue.forget_tx(msg.tx_ref)
            self.ctx.log.summary.transactions_confirmed += 1

    def _learn_tx_id(self, tx_ref: str, answer: dict[str, Any]) -> None:
        """Take the CSMS's transactionId from its StartTransaction answer as soon as it arrives.

        A CSMS may send a TxProfile for the transaction right behind the answer; it must find the id known.
        """
        tx_id = answer.get("transactionId")
        if isinstance(tx_id, int) and not isinstance(tx_id, bool):
            for c in self.connectors.values():
                if c.tx_ref == tx_ref:
                    c.tx_id = str(tx_id)

    # ------------------------------------------------------------------ reboot and faults

    async def on_reboot(self, hard: bool) -> None:
        """End running transactions (reason from the Reset or PowerLoss) before the restart."""
        reason, self._reboot_reason = self._reboot_reason, "PowerLoss"
        for c in self.connectors.values():
            if c.tx_ref is not None:
                await self.stop_transaction(c, reason)
            c.reservation_id = None
        self.auth_cache.clear() if hard else None
        self.registration = "Unknown"

    async def stop_transactions_locally(self) -> None:
        """StopTransaction with reason Local for every running transaction."""
        for c in self.connectors.values():
            if c.tx_ref is not None:
                await self.stop_transaction(c, "Local")

    async def on_connector_fault(self, c: Connector, error_code: str | None) -> None:
        """Faulted with the error code (charging suspended); back to its status when it clears."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        if error_code is not None:
            c.meter.suspend(t_s)
            self.share_power()
            await self.set_status(c, "Faulted", error_code)
            return
        if c.tx_ref is not None:
            c.meter.start(t_s)
            self.share_power()
            await self.set_status(c, self._charging_status(c))
        else:
            await self.set_status(c, self._idle_status(c))

    # ------------------------------------------------------------------ helpers

    def _connector(self, connector_id: int) -> Connector:
        c = self.connectors.get(connector_id)
        if c is None:
            raise ValueError(f"{self.spec.id} has connectors 1..{len(self.connectors)}, not {connector_id}")
        return c

    def _t_s_of(self, when: datetime) -> float:
        return self.ctx.clock.t_s_of(when)

    def _profile(self, profile: dict[str, Any], c: Connector) -> Any:
        return from_ocpp(profile, self._t_s_of, c.spec.voltage_v, c.meter.phases, received_t_s=self.clock.t_s())

    def _by_tx_id(self, transaction_id: int) -> Connector | None:
        for c in self.connectors.values():
            if c.tx_ref is not None and c.tx_id == str(transaction_id):
                return c
        return None

    # ------------------------------------------------------------------ Core: what the CSMS asks

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
    ) -> Any:
        """RemoteStartTransaction: Accepted on a free, operative connector."""
        candidates = [self.connectors.get(connector_id)] if connector_id else list(self.connectors.values())
        c = next(
            (
                x
                for x in candidates
                if x is not None
                and x.tx_ref is None
                and x.operative
                and x.fault is None
                and (x.reservation_id is None or x.id_tag == id_tag)
            ),
            None,
        )
        if c is None:
            return call_result.RemoteStartTransaction(status="Rejected")
        if charging_profile is not None and charging_profile.get("charging_profile_purpose") != "TxProfile":
            return call_result.RemoteStartTransaction(status="Rejected")
        self.spawn(self._remote_start(c, id_tag, charging_profile))
        return call_result.RemoteStartTransaction(status="Accepted")

    async def _remote_start(self, c: Connector, id_tag: str, profile: dict[str, Any] | None) -> None:
        await asyncio.sleep(0)  # let the answer go out first
        if self.keys.get_bool("AuthorizeRemoteTxRequests") and not await self.authorize(id_tag):
            return
        if c.ev is None:
            t_s = self.clock.t_s()
            c.sync(t_s)
            c.ev = self.default_ev
            c.meter.plug(c.ev, t_s)
            await self.set_status(c, "Preparing")
        if c.tx_ref is None:
            await self.start_transaction(c, id_tag, profile)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> Any:
        """RemoteStopTransaction: Accepted for a running transaction of ours."""
        c = self._by_tx_id(transaction_id)
        if c is None:
            return call_result.RemoteStopTransaction(status="Rejected")
        self.spawn(self.stop_transaction(c, "Remote"))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, type: str) -> Any:  # noqa: A002 - the OCPP field name
        """Reset Soft or Hard: Accepted; transactions stop, then the charger reboots and boots again."""
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str) -> None:  # noqa: A002
        """Reboot once the answer is out."""
        self._reboot_reason = "HardReset" if type == "Hard" else "SoftReset"
        self.request_reboot(hard=type == "Hard")

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id: int, type: str) -> Any:  # noqa: A002
        """ChangeAvailability: Accepted, or Scheduled while a transaction runs on the connector."""
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        operative = type == "Operative"
        scheduled = False
        for c in targets:
            if c.tx_ref is not None and not operative:
                c.pending_operative = operative
                scheduled = True
            else:
                c.operative, c.pending_operative = operative, None
                if c.tx_ref is None:
                    self.spawn(self.set_status(c, self._idle_status(c)))
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        """GetConfiguration over the key store."""
        known, unknown = self.keys.get(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> Any:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        status = self.keys.change(key, value)
        if status == "Accepted":
            if key == "HeartbeatInterval":
                self.heartbeat_interval_s = float(value)
            elif key == "AuthorizationKey":
                self.ctx.log.add_secret(value)
                self.password = value  # used from the next connection on
        return call_result.ChangeConfiguration(status=status)

    @on(Action.clear_cache)
    def on_clear_cache(self) -> Any:
        """ClearCache."""
        self.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> Any:
        """UnlockConnector: ends a running transaction (UnlockCommand) and unlocks."""
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.UnlockConnector(status="NotSupported")
        if c.tx_ref is not None:
            self.spawn(self.stop_transaction(c, "UnlockCommand"))
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        """DataTransfer: our vendor id echoes the data; any other is UnknownVendorId."""
        if vendor_id != self.spec.vendor:
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    async def data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        """Send a DataTransfer to the CSMS and return its answer."""
        return await self.request(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))

    # ------------------------------------------------------------------ Smart Charging

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        """SetChargingProfile: the limit applies to the simulated power from now on."""
        purpose = cs_charging_profiles.get("charging_profile_purpose")
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.SetChargingProfile(status="Rejected")
        if int(cs_charging_profiles.get("stack_level", 0)) > self.keys.get_int("ChargeProfileMaxStackLevel"):
            return call_result.SetChargingProfile(status="Rejected")
        if len(cs_charging_profiles["charging_schedule"]["charging_schedule_period"]) > self.keys.get_int(
            "ChargingScheduleMaxPeriods"
        ):
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "TxProfile":
            c = self.connectors.get(connector_id)
            if c is None or c.tx_ref is None:
                return call_result.SetChargingProfile(status="Rejected")
            tx = cs_charging_profiles.get("transaction_id")
            if tx is not None and str(tx) != c.tx_id:
                return call_result.SetChargingProfile(status="Rejected")
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        t_s = self.clock.t_s()
        try:
            profiles = [self._profile(cs_charging_profiles, c) for c in targets]
            for c in targets:
                c.sync(t_s)
            for c, p in zip(targets, profiles, strict=True):
                c.profile_set.install(p)
        except (ValueError, KeyError):
            return call_result.SetChargingProfile(status="Rejected")
        self._profile_accepted(connector_id, profiles[0])
        for c in targets:
            c.sync(t_s)
            if c.tx_ref is not None:
                self.spawn(self.set_status(c, self._charging_status(c)))
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,  # noqa: A002
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        """ClearChargingProfile: Accepted when something was removed, else Unknown."""
        targets = (
            list(self.connectors.values())
            if not connector_id
            else [c for c in [self.connectors.get(connector_id)] if c]
        )
        purpose = ChargingProfilePurpose(charging_profile_purpose) if charging_profile_purpose else None
        t_s = self.clock.t_s()
        removed = 0
        for c in targets:
            c.sync(t_s)
            removed += c.profile_set.clear(id, purpose, stack_level)
            c.sync(t_s)
            if c.tx_ref is not None:
                self.spawn(self.set_status(c, self._charging_status(c)))
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, charging_rate_unit: str | None = None) -> Any:
        """GetCompositeSchedule from the installed profiles (the rating where none limits).

        Connector 0 is the whole charge point: its ChargePointMaxProfiles over the sum of the ratings (or the
        shared cabinet's power).
        """
        if connector_id == 0:
            c = next(iter(self.connectors.values()))
            profiles = tuple(p for p in c.profile_set.profiles if p.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX)
            max_kw = self.spec.shared_power_kw or sum(x.spec.max_power_kw for x in self.connectors.values())
        elif connector_id in self.connectors:
            c = self.connectors[connector_id]
            profiles = c.profile_set.profiles
            max_kw = c.spec.max_power_kw
        else:
            return call_result.GetCompositeSchedule(status="Rejected")
        t0_s = float(math.floor(self.clock.t_s()))
        steps = composite_schedule(profiles, t0_s, t0_s + max(1, duration), c.profile_set.tx_start_t_s)
        unit = charging_rate_unit or ("W" if c.spec.dc else "A")
        schedule = schedule_to_ocpp(steps, t0_s, duration, unit, max_kw, c.spec.voltage_v, c.meter.phases)
        schedule["startSchedule"] = ocpp_time(self.ctx.clock.at(t0_s))
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=schedule["startSchedule"],
            charging_schedule=schedule,
        )

    # ------------------------------------------------------------------ Remote Trigger

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None) -> Any:
        """TriggerMessage: Accepted for the messages we can send, sent right after the answer."""
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return call_result.TriggerMessage(status="Rejected")
        known = {
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
        }
        return call_result.TriggerMessage(status="Accepted" if requested_message in known else "NotImplemented")

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None) -> None:
        """Send what was asked for."""
        self.spawn(self._triggered(requested_message, connector_id))

    async def _triggered(self, what: str, connector_id: int | None) -> None:
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            if what == "BootNotification":
                res = await self.request(
                    call.BootNotification(
                        charge_point_vendor=self.spec.vendor,
                        charge_point_model=self.spec.model,
                        charge_point_serial_number=self.spec.serial or self.spec.id,
                        firmware_version=self.firmware_version,
                    )
                )
                self.registration = str(res.status)
            elif what == "Heartbeat":
                await self.send_heartbeat()
            elif what == "StatusNotification":
                ids = [connector_id] if connector_id is not None else [0, *self.connectors]
                for i in ids:
                    await self.send_status(i)
            elif what == "MeterValues":
                ids = [connector_id] if connector_id else list(self.connectors)
                for i in ids:
                    c = self.connectors[i]
                    mv = self._meter_value(c, self.keys.get_list("MeterValuesSampledData"), "Trigger")
                    payload: dict[str, Any] = {"connector_id": c.id, "meter_value": [mv]}
                    if c.tx_id is not None:
                        payload["transaction_id"] = int(c.tx_id)
                    await self.request(call.MeterValues(**payload))
            elif what == "FirmwareStatusNotification":
                await self.request(call.FirmwareStatusNotification(status=self.firmware_status))
            elif what == "DiagnosticsStatusNotification":
                await self.request(call.DiagnosticsStatusNotification(status=self.diagnostics_status))

    # ------------------------------------------------------------------ Firmware Management

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, retries: int | None = None, retry_interval: int | None = None
    ) -> Any:
        """UpdateFirmware: download at retrieve_date, install, reboot with the new version."""
        self.spawn(self._update_firmware(location, retrieve_date, retries or 0, retry_interval or 60))
        return call_result.UpdateFirmware()

    async def _firmware_status(self, status: str) -> None:
        self.firmware_status = status
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(call.FirmwareStatusNotification(status=status))

    async def _update_firmware(self, location: str, retrieve_date: str, retries: int, retry_interval_s: int) -> None:
        with contextlib.suppress(ValueError):
            await self.ctx.clock.sleep_until(self._t_s_of(parse_ocpp_time(retrieve_date)))
        for attempt in range(retries + 1):
            await self._firmware_status("Downloading")
            await self.clock.sleep(self.firmware_step_s)
            if "fail-download" not in location:
                break
            await self._firmware_status("DownloadFailed")
            if attempt == retries:
                self.firmware_status = "Idle"
                return
            await self.clock.sleep(retry_interval_s)
        await self._firmware_status("Downloaded")
        await self._firmware_status("Installing")
        await self.clock.sleep(self.firmware_step_s)
        if "fail-install" in location:
            await self._firmware_status("InstallationFailed")
            self.firmware_status = "Idle"
            return
        self.firmware_version = location.rstrip("/").rsplit("/", 1)[-1] or self.firmware_version
        await self._firmware_status("Installed")
        self._reboot_reason = "Reboot"
        self.request_reboot(hard=True)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(
        self,
        location: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
    ) -> Any:
        """GetDiagnostics: names the file, then Uploading → Uploaded (or UploadFailed)."""
        file_name = f"diagnostics-{self.spec.id}-{int(self.clock.t_s())}.log"
        self.spawn(self._upload_diagnostics(location, retries or 0))
        return call_result.GetDiagnostics(file_name=file_name)

    async def _diagnostics_status(self, status: str) -> None:
        self.diagnostics_status = status
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(call.DiagnosticsStatusNotification(status=status))

    async def _upload_diagnostics(self, location: str, retries: int) -> None:
        await asyncio.sleep(0)
        await self._diagnostics_status("Uploading")
        await self.clock.sleep(self.firmware_step_s)
        await self._diagnostics_status("UploadFailed" if "fail-upload" in location else "Uploaded")
        self.diagnostics_status = "Idle"

    # ------------------------------------------------------------------ Local Auth List

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> Any:
        """GetLocalListVersion (-1 when the local list is disabled)."""
        enabled = self.keys.get_bool("LocalAuthListEnabled")
        return call_result.GetLocalListVersion(list_version=self.local_list_version if enabled else -1)

    @on(Action.send_local_list)
    def on_send_local_list(
        self, list_version: int, update_type: str, local_authorization_list: list[dict[str, Any]] | None = None
    ) -> Any:
        """SendLocalList Full or Differential."""
        if not self.keys.get_bool("LocalAuthListEnabled"):
            return call_result.SendLocalList(status="NotSupported")
        entries = local_authorization_list or []
        if len(entries) > self.keys.get_int("SendLocalListMaxLength"):
            return call_result.SendLocalList(status="Failed")
        if update_type == "Differential" and list_version <= self.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        new = {} if update_type == "Full" else dict(self.local_list)
        for e in entries:
            info = e.get("id_tag_info")
            if info is None:
                new.pop(e["id_tag"], None)
            else:
                new[e["id_tag"]] = info["status"]
        if len(new) > self.keys.get_int("LocalAuthListMaxLength"):
            return call_result.SendLocalList(status="Failed")
        self.local_list, self.local_list_version = new, list_version
        return call_result.SendLocalList(status="Accepted")

    # ------------------------------------------------------------------ Reservation

    @on(Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
    ) -> Any:
        """ReserveNow: Accepted on an idle connector until expiry_date."""
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.ReserveNow(status="Rejected")
        if c.fault is not None:
            return call_result.ReserveNow(status="Faulted")
        if not c.operative:
            return call_result.ReserveNow(status="Unavailable")
        if c.tx_ref is not None or c.ev is not None:
            return call_result.ReserveNow(status="Occupied")
        try:
            expiry_t_s = self._t_s_of(parse_ocpp_time(expiry_date))
        except ValueError:
            return call_result.ReserveNow(status="Rejected")
        c.reservation_id, c.id_tag = reservation_id, id_tag
        self.spawn(self.set_status(c, "Reserved"))
        self.spawn(self._expire_reservation(c, reservation_id, expiry_t_s))
        return call_result.ReserveNow(status="Accepted")

    async def _expire_reservation(self, c: Connector, reservation_id: int, expiry_t_s: float) -> None:
        await self.ctx.clock.sleep_until(expiry_t_s)
        if c.reservation_id == reservation_id:
            c.reservation_id = None
            c.id_tag = None if c.tx_ref is None else c.id_tag
            await self.set_status(c, self._idle_status(c))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> Any:
        """CancelReservation: Accepted for a reservation we hold."""
        for c in self.connectors.values():
            if c.reservation_id == reservation_id:
                c.reservation_id = None
                if c.tx_ref is None:
                    c.id_tag = None
                    self.spawn(self.set_status(c, self._idle_status(c)))
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")
