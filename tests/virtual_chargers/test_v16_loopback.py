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
            assert tx.start["idTag"] == "ALICE"
            assert tx.stop is not None
            assert tx.stop["reason"] == "EVDisconnected"
            energies = [
                float(s["value"])
                for mv in tx.meter_values
                for s in mv["meterValue"][0]["sampledValue"]
                if s["measurand"] == "Energy.Active.Import.Register"
            ]
            assert energies == sorted(energies)
            assert energies[-1] > energies[0]
            assert tx.stop["meterStop"] >= energies[-1] - 1
            statuses = [p["status"] for c, p in rec.statuses if p["connectorId"] == 1]
            assert statuses[:3] == ["Available", "Preparing", "Charging"]
            assert statuses[-1] == "Available"
            await fleet.wait_queues_empty(10)  # the CSMS recorded the stop; its answer may still be on the way
            assert fleet.log.summary.transactions_confirmed == 1

    arun(scenario())


def _power_w(mv: dict[str, Any]) -> float:
    return next(
        float(s["value"]) for s in mv["meterValue"][0]["sampledValue"] if s["measurand"] == "Power.Active.Import"
    )


def test_remote_start_and_remote_stop(arun: Any, tmp_path: Path) -> None:
    """RemoteStartTransaction starts a transaction on a free connector; RemoteStopTransaction ends it (Remote)."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", connectors=2)
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CP1")
            res = await handler.remote_start("BOB", connector_id=2)
            assert res.status == "Accepted"
            rec = csms.records16
            await rec.wait_for(lambda: len(rec.starts) == 1, 10)
            assert rec.starts[0][1]["connectorId"] == 2
            (tx_id,) = rec.transactions
            await rec.wait_for(lambda: rec.status_of("CP1", 2) == "Charging", 10)
            assert (await handler.remote_stop(tx_id + 100)).status == "Rejected"
            assert (await handler.remote_stop(tx_id)).status == "Accepted"
            await rec.wait_for(lambda: len(rec.stops) == 1, 10)
            assert rec.stops[0][1]["reason"] == "Remote"
            assert rec.stops[0][1]["transactionId"] == tx_id

    arun(scenario())


def test_set_charging_profile_lowers_power_in_following_meter_values(arun: Any, tmp_path: Path) -> None:
    """A 6 A TxProfile on a 3-phase 230 V connector caps the next meter values at 4140 W; clearing lifts it."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", power_kw=11.0, config={"MeterValueSampleInterval": "60"})
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CP1")
            await cp.plug_in(1)
            rec = csms.records16
            await rec.wait_for(lambda: len(rec.meter_values) >= 2, 10)
            (tx,) = rec.transactions.values()
            assert _power_w(tx.meter_values[-1]) == 11000.0
            profile = {
                "chargingProfileId": 7,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "transactionId": tx.transaction_id,
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}],
                },
            }
            assert (await handler.set_charging_profile(1, profile)).status == "Accepted"
            n = len(tx.meter_values)
            await rec.wait_for(lambda: len(tx.meter_values) >= n + 2, 10)
            assert _power_w(tx.meter_values[-1]) == 4140.0
            composite = await handler.get_composite_schedule(1, 3600, "W")
            assert composite.status == "Accepted"
            assert composite.charging_schedule["charging_schedule_period"][0]["limit"] == 4140.0
            assert (await handler.clear_charging_profile(id=7)).status == "Accepted"
            n = len(tx.meter_values)
            await rec.wait_for(lambda: len(tx.meter_values) >= n + 2, 10)
            assert _power_w(tx.meter_values[-1]) == 11000.0

    arun(scenario())


def test_reset_reboots_and_boots_again(arun: Any, tmp_path: Path) -> None:
    """A Hard Reset ends the transaction (HardReset), the charger reconnects and sends BootNotification again."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path, boot_time_s=30) as fleet:
            cp = await fleet.add("CP1")
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CP1")
            await cp.plug_in(1)
            rec = csms.records16
            await rec.wait_for(lambda: len(rec.starts) == 1, 10)
            assert (await handler.reset("Hard")).status == "Accepted"
            await rec.wait_for(lambda: len(rec.boots) == 2, 10)
            await rec.wait_for(lambda: len(rec.stops) == 1, 10)
            assert rec.stops[0][1]["reason"] == "HardReset"
            assert cp.boot_count == 2
            await fleet.wait_booted(cp)

    arun(scenario())
