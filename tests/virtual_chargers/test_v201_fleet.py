"""The fleet runs 2.0.1 stations from a plan: sessions become transactions, ISO 15118 EVs send their needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.csms import Csms
from virtual_chargers.fleet import FleetOptions, PlannedCharger, plan_quick, run_chargers
from virtual_chargers.testing import ChargerSet


def test_fleet_of_201_stations_with_iso15118_evs(arun: Any, tmp_path: Path) -> None:
    """Planned sessions run as 2.0.1 transactions; ISO 15118 sessions tell their departure; 1.6 keys configure."""

    async def scenario() -> None:
        quick = plan_quick(4, 3 * 3600.0, seed=3, prefix="CS")
        plans = [
            PlannedCharger(p.spec, tuple(dataclasses.replace(s, iso15118=i % 2 == 0) for s in p.sessions))
            for i, p in enumerate(quick)
        ]
        async with Csms() as csms:
            opts = FleetOptions(
                csms.url, ocpp="2.0.1", speed=7200.0, duration_s=3 * 3600.0, config={"MeterValueSampleInterval": "600"}
            )
            summary = await run_chargers(plans, opts, None, tmp_path)
            rec = csms.records201
        planned = sum(1 for p in plans for s in p.sessions if s.t_s + s.dwell_s < opts.duration_s - 600)
        assert summary.transactions_ended >= planned > 0
        assert summary.violation_count == 0
        iso_stations = {p.spec.id for i, p in enumerate(plans) if i % 2 == 0 and p.sessions}
        assert {station for station, _ in rec.charging_needs} == iso_stations
        for station, txs in ((s, rec.transactions(s)) for s in {e.charger for e in rec.tx_events}):
            for events in txs.values():
                assert [e.seq_no for e in events] == list(range(len(events))), station
                updates = [e for e in events if e.trigger_reason == "MeterValuePeriodic"]
                assert all("meterValue" in e.payload for e in updates)

    arun(scenario(), timeout_s=60)


def test_unknown_16_key_fails_fast(arun: Any) -> None:
    """A 1.6 key without a 2.0.1 variable is an error that names the way out."""

    async def scenario() -> None:
        async with ChargerSet("ws://127.0.0.1:1") as fleet:
            with pytest.raises(ValueError, match="SampledDataCtrlr.TxUpdatedInterval"):
                await fleet.add("CS1", ocpp="2.0.1", start=False, config={"LocalAuthListEnabled": "true"})
            cp = await fleet.add("CS2", ocpp="2.0.1", start=False, config={"MeterValueSampleInterval": "15"})
            assert cp.meter_interval_s() == 15.0
            with pytest.raises(ValueError, match="not valid"):
                await fleet.add("CS3", ocpp="2.0.1", start=False, variables={"TxCtrlr.TxStartPoint": "Sometime"})

    arun(scenario())


pytest_plugins = ["pytester"]

EXAMPLE_201 = Path(__file__).resolve().parents[2] / "virtual_chargers" / "examples" / "test_my_csms_201.py"


@pytest.mark.slow
def test_pytest_plugin_runs_the_201_example(pytester: pytest.Pytester) -> None:
    """``--csms-ocpp 2.0.1``: the ``virtual_charger`` fixture gives 2.0.1 stations and the 2.0.1 example passes."""
    pytester.makepyfile(test_example=EXAMPLE_201.read_text())
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--csms-speed", "600", "--csms-ocpp", "2.0.1", "-W", "error"
    )
    result.assert_outcomes(passed=1)
