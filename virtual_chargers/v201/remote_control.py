"""OCPP 2.0.1 functional blocks F and P, RemoteControl and DataTransfer.

RequestStart/StopTransaction (a remote start on an EVSE without an EV plugs in the default EV),
UnlockConnector, TriggerMessage for what the station can send, and DataTransfer both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.base import Connector, CsmsCallError, OfflineError
from virtual_chargers.v201.provisioning import ProvisioningMixin
from virtual_chargers.v201.smart_charging import ProfileError

__all__ = ["RemoteControlMixin"]


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


class RemoteControlMixin(ProvisioningMixin):
    """Functional blocks F and P, RemoteControl and DataTransfer of a `V201Charger`."""

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
