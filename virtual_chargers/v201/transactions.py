"""OCPP 2.0.1 functional blocks E and J, Transactions and MeterValues, and the driver who starts them.

Transactions follow TxCtrlr.TxStartPoint and TxStopPoint. Every TransactionEvent goes through the
persisted queue, numbered by ``seqNo`` from 0 within its transaction, with ``offline: true`` when the
station had no accepted connection as it happened, and meter values (SampledDataCtrlr measurands)
at the start, every TxUpdatedInterval and at the end. The driver plugs in, presents a token, unplugs;
an ISO 15118 EV also sends NotifyEVChargingNeeds. A reboot or a fault ends or suspends what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OCPPError
from ocpp.v201 import call

from virtual_chargers.base import Connector, CsmsCallError, OfflineError
from virtual_chargers.clock import ocpp_time
from virtual_chargers.meter import EVSession, kw_to_amps, kw_to_w
from virtual_chargers.txqueue import QueuedMessage
from virtual_chargers.v201.authorization import AuthorizationMixin
from virtual_chargers.v201.station import TxState

__all__ = ["TransactionsMixin"]


_UNITS = {
    "Energy.Active.Import.Register": ("Wh", "Outlet"),
    "Energy.Active.Export.Register": ("Wh", "Outlet"),
    "Power.Active.Import": ("W", "Outlet"),
    "Current.Import": ("A", "Outlet"),
    "Voltage": ("V", "Outlet"),
    "SoC": ("Percent", "EV"),
    "Power.Offered": ("W", "Outlet"),
    "Current.Offered": ("A", "Outlet"),
}


_START_ON_PLUG = {"EVConnected", "ParkingBayOccupancy"}


_STOP_ON_UNPLUG = {"EVConnected", "ParkingBayOccupancy", "PowerPathClosed", "EnergyTransfer"}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


class TransactionsMixin(AuthorizationMixin):
    """Functional blocks E and J (Transactions, MeterValues) of a `V201Charger`, and the driver who starts them."""

    if TYPE_CHECKING:

        async def _reset_now(self) -> None:  # noqa: D102 (provisioning's: a reset waiting for idle)
            ...

    async def plug_in(
        self,
        connector_id: int = 1,
        ev: EVSession | None = None,
        id_tag: str = "TAG0001",
        *,
        iso15118: bool = False,
        departure_s: float | None = None,
        contract: list[dict[str, str]] | None = None,
    ) -> None:
        """An EV plugs into EVSE ``connector_id`` and its driver presents ``id_tag``.

        Args:
            connector_id: The EVSE.
            ev: The vehicle (the default EV if None).
            id_tag: The token presented (ISO14443), or the EV's eMAID with ``contract``.
            iso15118: The EV speaks ISO 15118: NotifyEVChargingNeeds follows the authorization.
            departure_s: Simulated seconds until the driver leaves (ISO 15118 departure time).
            contract: Plug & Charge: the OCSP data of the EV's contract certificate; ``id_tag`` is then an
                eMAID token (type eMAID) authorised with it (use case C07).
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
        token = self._token(id_tag, "eMAID" if contract is not None else "ISO14443")
        if not self.reservation_admits(c, token) or not await self.authorize(token, contract):
            return
        if iso15118:  # the EV told its departure at plug-in; the authorization took time since
            left_s = None if departure_s is None else max(0.0, departure_s - (self.clock.t_s() - t_s))
            await self.send_charging_needs(c, left_s)
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
    ) -> TxState:
        """Start a transaction on ``c`` and queue its Started event."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        tx = TxState(id=str(uuid.uuid4()), id_token=token, remote_start_id=remote_start_id)
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
            "Energy.Active.Export.Register": r.export_wh,
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
