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
