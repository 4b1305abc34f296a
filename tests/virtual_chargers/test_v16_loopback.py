"""OCPP 1.6J chargers against the reference CSMS on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

SPEED = 600.0  # ten simulated minutes per wall second


def test_boot_authorize_transaction_with_meter_values_and_stop(arun: Any, tmp_path: Path) -> None:
    """Boot, Authorize, StartTransaction, periodic MeterValues with rising energy, StopTransaction."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", config={"MeterValueSampleInterval": "60"})
            await fleet.wait_booted(cp)
            await cp.plug_in(1, id_tag="ALICE")
            rec = csms.records16
            await rec.wait_for(lambda: len(rec.meter_values) >= 3, 10)
            await cp.unplug(1)
            await rec.wait_for(lambda: len(rec.stops) == 1, 10)
            assert rec.boots[0][1]["chargePointVendor"] == "chargetwin"
            assert rec.authorizations == [("CP1", "ALICE")]
            (tx,) = rec.transactions.values()
            assert tx.start["idTag"] == "ALICE" and tx.stop is not None
            assert tx.stop["reason"] == "EVDisconnected"
            energies = [
                float(s["value"])
                for mv in tx.meter_values
                for s in mv["meterValue"][0]["sampledValue"]
                if s["measurand"] == "Energy.Active.Import.Register"
            ]
            assert energies == sorted(energies) and energies[-1] > energies[0]
            assert tx.stop["meterStop"] >= energies[-1] - 1
            statuses = [p["status"] for c, p in rec.statuses if p["connectorId"] == 1]
            assert statuses[:3] == ["Available", "Preparing", "Charging"]
            assert statuses[-1] == "Available"
            assert fleet.log.summary.transactions_confirmed == 1

    arun(scenario())
