"""OCPP 2.0.1 stations against the reference CSMS on 127.0.0.1: transactions, remote control, smart charging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet
from virtual_chargers.v201.csms import TxEventRecord

SPEED = 600.0  # ten simulated minutes per wall second
FAST = {"SampledDataCtrlr.TxUpdatedInterval": "60"}


def _sampled(rec: TxEventRecord, measurand: str) -> float | None:
    for mv in rec.payload.get("meterValue", []):
        for s in mv["sampledValue"]:
            if s.get("measurand") == measurand:
                return float(s["value"])
    return None


def _assert_sequence(events: list[TxEventRecord]) -> None:
    """One transaction's events: Started first, Ended last, seqNo 0, 1, 2 … in arrival order."""
    assert [e.seq_no for e in events] == list(range(len(events)))
    assert events[0].event_type == "Started"
    assert events[-1].event_type == "Ended"
    assert all(e.event_type == "Updated" for e in events[1:-1])


def test_boot_authorize_transaction_with_meter_values_and_stop(arun: Any, tmp_path: Path) -> None:
    """Boot, Authorize, TransactionEvent Started/Updated (periodic meter values)/Ended, statuses per EVSE."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1", variables=FAST)
            await fleet.wait_booted(cp)
            rec = csms.records201
            await cp.plug_in(1, id_tag="ALICE")
            await rec.wait_for(lambda: sum(e.event_type == "Updated" for e in rec.tx_events) >= 3, 10)
            await cp.unplug(1)
            await rec.wait_for(lambda: any(e.event_type == "Ended" for e in rec.tx_events), 10)
            await fleet.wait_queues_empty(10)
            boot = rec.boots[0][1]
            assert boot["reason"] == "PowerUp"
            assert boot["chargingStation"]["vendorName"] == "chargetwin"
            assert rec.authorizations == [("CS1", "ALICE")]
            (events,) = rec.transactions("CS1").values()
            _assert_sequence(events)
            started, ended = events[0], events[-1]
            assert started.trigger_reason == "Authorized"
            assert started.payload["idToken"] == {"idToken": "ALICE", "type": "ISO14443"}
            assert started.payload["evse"] == {"id": 1, "connectorId": 1}
            assert started.payload["transactionInfo"]["chargingState"] == "Charging"
            assert not any(e.offline for e in events)
            periodic = [e for e in events if e.trigger_reason == "MeterValuePeriodic"]
            assert len(periodic) >= 3
            energies = [_sampled(e, "Energy.Active.Import.Register") for e in periodic]
            assert all(x is not None for x in energies)
            assert energies == sorted(energies)
            assert energies[-1] > energies[0]
            assert _sampled(periodic[-1], "Power.Active.Import") == min(22.0, cp.default_ev.model.ac_max_kw) * 1000
            assert ended.trigger_reason == "EVCommunicationLost"
            assert ended.payload["transactionInfo"]["stoppedReason"] == "EVDisconnected"
            assert ended.payload["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
            assert _sampled(ended, "Energy.Active.Import.Register") >= energies[-1]
            assert rec.status[("CS1", 1, 1)] == "Available"
            assert fleet.log.summary.transactions_confirmed == 1
            assert fleet.log.summary.violation_count == 0
            assert cp.errors == []

    arun(scenario())


def _ended(rec: Any) -> list[TxEventRecord]:
    return [e for e in rec.tx_events if e.event_type == "Ended"]


def test_request_start_and_request_stop(arun: Any, tmp_path: Path) -> None:
    """RequestStartTransaction starts on the asked EVSE (RemoteStart, remoteStartId); RequestStop ends it (Remote)."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1", connectors=2)
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CS1")
            rec = csms.records201
            res = await handler.request_start("BOB", evse_id=2, remote_start_id=42)
            assert res.status == "Accepted"
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            started = rec.tx_events[0]
            assert started.event_type == "Started"
            assert started.trigger_reason == "RemoteStart"
            assert started.payload["transactionInfo"]["remoteStartId"] == 42
            assert started.payload["evse"]["id"] == 2
            assert started.payload["idToken"]["idToken"] == "BOB"
            await rec.wait_for(lambda: rec.status.get(("CS1", 2, 1)) == "Occupied", 10)
            assert (await handler.request_start("CAROL", evse_id=2, remote_start_id=43)).status == "Rejected"
            assert (await handler.request_stop("no-such-transaction")).status == "Rejected"
            assert (await handler.request_stop(started.transaction_id)).status == "Accepted"
            await rec.wait_for(lambda: len(_ended(rec)) == 1, 10)
            (ended,) = _ended(rec)
            assert ended.trigger_reason == "RemoteStop"
            assert ended.payload["transactionInfo"]["stoppedReason"] == "Remote"
            _assert_sequence(rec.transactions("CS1")[started.transaction_id])
            assert fleet.log.summary.violation_count == 0

    arun(scenario())


def _periodic(rec: Any, after: int = 0) -> list[TxEventRecord]:
    return [e for e in rec.tx_events[after:] if e.trigger_reason == "MeterValuePeriodic"]


def _t_s(rec: TxEventRecord) -> float:
    from virtual_chargers.clock import parse_ocpp_time

    return parse_ocpp_time(rec.payload["meterValue"][0]["timestamp"]).timestamp()


def test_set_charging_profile_lowers_power_in_following_meter_values(arun: Any, tmp_path: Path) -> None:
    """A 6 A TxProfile caps the next meter values at 6 A x 230 V x 3 = 4140 W and energy grows by exactly that.

    Clearing it restores the EV's power; a 3 kW ChargingStationMaxProfile on EVSE 0 caps it again;
    profiles on the wrong EVSE are Rejected.
    """

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1", power_kw=11.0, variables=FAST)
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CS1")
            rec = csms.records201
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(_periodic(rec)) >= 2, 10)
            assert _sampled(_periodic(rec)[-1], "Power.Active.Import") == 11000.0
            tx_id = rec.tx_events[0].transaction_id
            limit_a = 6.0
            limit_w = limit_a * 230.0 * 3
            profile = {
                "id": 7,
                "stack_level": 1,
                "charging_profile_purpose": "TxProfile",
                "charging_profile_kind": "Relative",
                "transaction_id": tx_id,
                "charging_schedule": [
                    {"id": 1, "charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 6}]}
                ],
            }
            assert (await handler.set_charging_profile(0, profile)).status == "Rejected"  # TxProfile needs an EVSE
            assert (await handler.set_charging_profile(1, profile)).status == "Accepted"
            n = len(rec.tx_events)
            await rec.wait_for(lambda: len(_periodic(rec, n)) >= 3, 10)
            a, b = _periodic(rec, n)[-2:]
            assert _sampled(a, "Power.Active.Import") == limit_w
            assert _sampled(b, "Power.Active.Import") == limit_w
            interval_s = _t_s(b) - _t_s(a)
            delta_wh = _sampled(b, "Energy.Active.Import.Register") - _sampled(a, "Energy.Active.Import.Register")
            assert abs(delta_wh - limit_w * interval_s / 3600.0) <= 0.5  # the register is rounded to 0.1 Wh
            assert interval_s >= 60.0
            composite = await handler.get_composite_schedule(1, 3600, "W")
            assert composite.status == "Accepted"
            assert composite.schedule["charging_schedule_period"][0]["limit"] == limit_w
            assert (await handler.clear_charging_profile(profile_id=7)).status == "Accepted"
            assert (await handler.clear_charging_profile(profile_id=7)).status == "Unknown"
            n = len(rec.tx_events)
            await rec.wait_for(lambda: len(_periodic(rec, n)) >= 2, 10)
            assert _sampled(_periodic(rec, n)[-1], "Power.Active.Import") == 11000.0
            station_max = {
                "id": 8,
                "stack_level": 0,
                "charging_profile_purpose": "ChargingStationMaxProfile",
                "charging_profile_kind": "Absolute",
                "charging_schedule": [
                    {
                        "id": 2,
                        "start_schedule": "2000-01-01T00:00:00Z",
                        "charging_rate_unit": "W",
                        "charging_schedule_period": [{"start_period": 0, "limit": 3000}],
                    }
                ],
            }
            assert (await handler.set_charging_profile(1, station_max)).status == "Rejected"  # station-wide: EVSE 0
            assert (await handler.set_charging_profile(0, station_max)).status == "Accepted"
            n = len(rec.tx_events)
            await rec.wait_for(lambda: len(_periodic(rec, n)) >= 2, 10)
            assert _sampled(_periodic(rec, n)[-1], "Power.Active.Import") == 3000.0
            station = await handler.get_composite_schedule(0, 600, "W")
            assert station.schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 3000.0}]
            assert fleet.log.summary.violation_count == 0

    arun(scenario())


def test_reset_reboots_and_boots_again(arun: Any, tmp_path: Path) -> None:
    """Reset Immediate ends the transaction (ResetCommand, ImmediateReset), reboots and boots (RemoteReset)."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path, boot_time_s=30) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CS1")
            rec = csms.records201
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            assert (await handler.reset("Immediate")).status == "Accepted"
            await rec.wait_for(lambda: len(rec.boots) == 2, 10)
            await rec.wait_for(lambda: len(_ended(rec)) == 1, 10)
            (ended,) = _ended(rec)
            assert ended.trigger_reason == "ResetCommand"
            assert ended.payload["transactionInfo"]["stoppedReason"] == "ImmediateReset"
            assert rec.boots[1][1]["reason"] == "RemoteReset"
            await fleet.wait_booted(cp)
            assert cp.boot_count == 2
            # OnIdle waits for the running transaction.
            handler = await csms.wait_connected("CS1")
            await cp.unplug(1)
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 3, 10)
            assert (await handler.reset("OnIdle")).status == "Scheduled"
            await cp.unplug(1)
            await rec.wait_for(lambda: len(rec.boots) == 3, 10)
            assert _ended(rec)[-1].payload["transactionInfo"]["stoppedReason"] == "EVDisconnected"

    arun(scenario())
