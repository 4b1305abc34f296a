"""OCPP 2.0.1 functional blocks on loopback: ISO 15118 needs, firmware, availability, authorization, triggers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from virtual_chargers.clock import parse_ocpp_time
from virtual_chargers.csms import Csms
from virtual_chargers.faults import ConnectorFault
from virtual_chargers.meter import EVSession
from virtual_chargers.testing import ChargerSet
from virtual_chargers.v16 import DEFAULT_EV

SPEED = 600.0


def test_iso15118_ev_sends_its_charging_needs(arun: Any, tmp_path: Path) -> None:
    """An ISO 15118 EV's departure time and energy need reach the CSMS in NotifyEVChargingNeeds (AC and DC)."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            ac = await fleet.add("AC1", ocpp="2.0.1", power_kw=11.0)
            dc = await fleet.add("DC1", ocpp="2.0.1", power_kw=150.0, dc=True)
            await fleet.wait_all_booted(10)
            rec = csms.records201
            ev = EVSession(DEFAULT_EV.model, soc_in_frac=0.2, target_soc_frac=0.8)
            before = ac.clock.now()
            await ac.plug_in(1, ev, iso15118=True, departure_s=7200)
            after = ac.clock.now()
            await dc.plug_in(1, ev, iso15118=True)
            await rec.wait_for(lambda: len(rec.charging_needs) == 2, 10)
            needs = dict(rec.charging_needs)
            need_wh = round((0.8 - 0.2) * ev.model.capacity_kwh * 1000)
            ac_needs = needs["AC1"]
            assert ac_needs["evseId"] == 1
            assert ac_needs["chargingNeeds"]["requestedEnergyTransfer"] == "AC_three_phase"
            assert ac_needs["chargingNeeds"]["acChargingParameters"]["energyAmount"] == need_wh
            departure = parse_ocpp_time(ac_needs["chargingNeeds"]["departureTime"])
            # Timestamps carry milliseconds: allow the one lost in rounding.
            assert before + timedelta(seconds=7200, milliseconds=-1) <= departure <= after + timedelta(seconds=7200)
            dc_params = needs["DC1"]["chargingNeeds"]["dcChargingParameters"]
            assert needs["DC1"]["chargingNeeds"]["requestedEnergyTransfer"] == "DC"
            assert "departureTime" not in needs["DC1"]["chargingNeeds"]
            assert dc_params["energyAmount"] == need_wh
            assert dc_params["stateOfCharge"] == 20
            assert dc_params["fullSoC"] == 80
            assert dc_params["evEnergyCapacity"] == int(ev.model.capacity_kwh * 1000)
            assert dc_params["evMaxPower"] == int(max(p for _, p in ev.model.dc_curve) * 1000)
            # Needs come after authorization, before the transaction's first event.
            assert fleet.log.summary.violation_count == 0

    arun(scenario())


def test_update_firmware_downloads_installs_and_reboots(arun: Any, tmp_path: Path) -> None:
    """UpdateFirmware: Downloading → Downloaded → Installing → InstallRebooting, boot (FirmwareUpdate), Installed."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path, boot_time_s=10) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            rec = csms.records201
            res = await h.update_firmware(7, "https://fw.example/cs-2.0.0", cp.clock.now())
            assert res.status == "Accepted"
            await rec.wait_for(lambda: ("CS1", "Installed") in rec.firmware, 10)
            assert [s for _, s in rec.firmware] == [
                "Downloading",
                "Downloaded",
                "Installing",
                "InstallRebooting",
                "Installed",
            ]
            assert rec.boots[-1][1]["reason"] == "FirmwareUpdate"
            assert rec.boots[-1][1]["chargingStation"]["firmwareVersion"] == "cs-2.0.0"
            rec.firmware.clear()
            h = await csms.wait_connected("CS1")
            await fleet.wait_booted(cp)
            res = await h.update_firmware(8, "https://fw.example/fail-download", cp.clock.now(), retries=1)
            assert res.status == "Accepted"
            await rec.wait_for(lambda: [s for _, s in rec.firmware].count("DownloadFailed") == 2, 10)
            assert [s for _, s in rec.firmware] == ["Downloading", "DownloadFailed", "Downloading", "DownloadFailed"]
            assert len(rec.boots) == 2

    arun(scenario())


def test_availability_unlock_and_triggers(arun: Any, tmp_path: Path) -> None:
    """ChangeAvailability is Scheduled during a transaction; UnlockConnector refuses while authorized; triggers."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1", connectors=2)
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            rec = csms.records201
            assert (await h.change_availability("Inoperative", {"id": 2})).status == "Accepted"
            await rec.wait_for(lambda: rec.status.get(("CS1", 2, 1)) == "Unavailable", 10)
            assert (await h.request_start("X", evse_id=2)).status == "Rejected"
            assert (await h.change_availability("Operative", {"id": 2})).status == "Accepted"
            await rec.wait_for(lambda: rec.status.get(("CS1", 2, 1)) == "Available", 10)
            assert (await h.change_availability("Inoperative", {"id": 9})).status == "Rejected"
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            assert (await h.unlock_connector(1)).status == "OngoingAuthorizedTransaction"
            assert (await h.unlock_connector(2)).status == "Unlocked"
            assert (await h.unlock_connector(5)).status == "UnknownConnector"
            assert (await h.change_availability("Inoperative")).status == "Scheduled"
            await rec.wait_for(lambda: rec.status.get(("CS1", 2, 1)) == "Unavailable", 10)
            assert rec.status[("CS1", 1, 1)] == "Occupied"
            n = len(rec.tx_events)
            assert (await h.trigger_message("TransactionEvent", {"id": 1})).status == "Accepted"
            await rec.wait_for(lambda: any(e.trigger_reason == "Trigger" for e in rec.tx_events[n:]), 10)
            assert (await h.trigger_message("PublishFirmwareStatusNotification")).status == "NotImplemented"
            assert (await h.trigger_message("StatusNotification", {"id": 7})).status == "Rejected"
            await cp.unplug(1)
            await rec.wait_for(lambda: rec.status.get(("CS1", 1, 1)) == "Unavailable", 10)
            assert (await h.data_transfer("chargetwin", "ping", {"n": 1})).status == "Accepted"
            assert (await h.data_transfer("acme")).status == "UnknownVendorId"
            assert (await cp.data_transfer("chargetwin", "hello")).status == "UnknownVendorId"
            assert rec.data_transfers == [("CS1", {"vendorId": "chargetwin", "messageId": "hello"})]
            assert fleet.log.summary.violation_count == 0

    arun(scenario())


def test_authorization_start_points_and_stops(arun: Any, tmp_path: Path) -> None:
    """TxStartPoint EVConnected starts on plug-in; a rejected token is Deauthorized; the same token stops (Local)."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            rec = csms.records201
            rec.rejected_tokens.add("STOLEN")
            cp = await fleet.add("CS1", ocpp="2.0.1", connectors=2, variables={"TxCtrlr.TxStartPoint": "EVConnected"})
            await fleet.wait_booted(cp)
            await cp.plug_in(1, id_tag="ALICE")
            await rec.wait_for(lambda: len(rec.tx_events) >= 2, 10)
            started, authorized = rec.tx_events[:2]
            assert (started.event_type, started.trigger_reason) == ("Started", "CablePluggedIn")
            assert started.payload["transactionInfo"]["chargingState"] == "EVConnected"
            assert "idToken" not in started.payload
            assert (authorized.event_type, authorized.trigger_reason) == ("Updated", "Authorized")
            assert authorized.payload["transactionInfo"]["chargingState"] == "Charging"
            assert authorized.payload["idToken"]["idToken"] == "ALICE"
            await cp.present_token(1, "ALICE")
            await rec.wait_for(lambda: any(e.event_type == "Ended" for e in rec.tx_events), 10)
            ended = rec.tx_events[-1]
            assert (ended.trigger_reason, ended.payload["transactionInfo"]["stoppedReason"]) == (
                "StopAuthorized",
                "Local",
            )
            # A token the CSMS rejects: the transaction started on plug-in stays without authorization.
            await cp.plug_in(2, id_tag="STOLEN")
            await rec.wait_for(lambda: ("CS1", "STOLEN") in rec.authorizations, 10)
            await fleet.wait_queues_empty(10)
            tx2 = [e for e in rec.tx_events if e.payload.get("evse", {}).get("id") == 2]
            assert len(tx2) == 1  # Started on plug-in, and nothing more: no authorization, no energy
            assert cp.connectors[2].meter.charging is False
            # Nobody authorizes it within TxCtrlr.EVConnectionTimeOut (120 s): it ends (EVConnectTimeout, Timeout).
            tx2_id = tx2[0].transaction_id
            await rec.wait_for(lambda: rec.transactions("CS1")[tx2_id][-1].event_type == "Ended", 10)
            timeout = rec.transactions("CS1")[tx2_id][-1]
            assert (timeout.trigger_reason, timeout.payload["transactionInfo"]["stoppedReason"]) == (
                "EVConnectTimeout",
                "Timeout",
            )
            await cp.unplug(2)
            await cp.unplug(1)
            await fleet.wait_queues_empty(10)
            # Offline authorization: the CSMS answers the Started event's idToken Invalid → Deauthorized.
            handler = await csms.wait_connected("CS1")
            await handler.set_variables(
                [
                    {
                        "component": {"name": "TxCtrlr"},
                        "variable": {"name": "TxStartPoint"},
                        "attribute_value": "Authorized",
                    }
                ]
            )
            await handler.set_variables(
                [{"component": {"name": "AuthCtrlr"}, "variable": {"name": "Enabled"}, "attribute_value": "false"}]
            )
            n = len(rec.tx_events)
            await cp.plug_in(1, id_tag="STOLEN")
            await rec.wait_for(lambda: any(e.event_type == "Ended" for e in rec.tx_events[n:]), 10)
            events = rec.tx_events[n:]
            assert events[0].payload["idToken"]["idToken"] == "STOLEN"
            assert events[-1].trigger_reason == "Deauthorized"
            assert events[-1].payload["transactionInfo"]["stoppedReason"] == "DeAuthorized"

    arun(scenario())


def test_connector_fault_suspends_charging(arun: Any, tmp_path: Path) -> None:
    """A connector fault makes the EVSE Faulted and the transaction SuspendedEVSE; when it clears, charging resumes."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            rec = csms.records201
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            cp.spawn(cp.apply_fault(ConnectorFault(at_s=0, kind="connector_fault", duration_s=120)))
            await rec.wait_for(lambda: rec.status.get(("CS1", 1, 1)) == "Faulted", 10)
            await rec.wait_for(
                lambda: any(
                    e.payload["transactionInfo"].get("chargingState") == "SuspendedEVSE" for e in rec.tx_events
                ),
                10,
            )
            await rec.wait_for(lambda: rec.status.get(("CS1", 1, 1)) == "Occupied", 10)
            await rec.wait_for(
                lambda: rec.tx_events[-1].payload["transactionInfo"].get("chargingState") == "Charging", 10
            )
            assert cp.connectors[1].meter.charging

    arun(scenario())
