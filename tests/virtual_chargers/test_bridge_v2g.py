"""A 2.0.1 CSMS discharges a V2G EV through a bidirectional station of a bridged run (V2X over OCPP).

The reference CSMS on 127.0.0.1 (port 0, the real `ocpp` library on the wire) sets a charging profile
with a negative limit on the EVSE of a running transaction: the simulation discharges the EV at that
power, and the station reports the energy it gave back in Energy.Active.Export.Register. A station
that only charges rejects the same profile. Every wait is bounded; everything started is stopped.
"""

from tests.conftest import make_scenario
from virtual_chargers.csms import Csms
from virtual_chargers.paced_run import PacedRun

SPEED = 5000.0
DISCHARGE_W = 5000.0


def scenario(csms_url: str):
    """Site a: one bidirectional 11 kW station, drivers with V2G Leafs; site b: a one-way station, nobody."""
    return make_scenario(
        name="bridge_v2g",
        seed=11,
        start="2026-03-02T12:00:00+01:00",
        horizon_days=0.1,  # the first EV plugs in at about 0.5 h (seed 11); 1 h of discharge fits in 2.4 h
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 1000.0,
                    "chargers": [{"model": "v2g11", "power_kw": 11.0, "current": "ac", "bidirectional": True}],
                },
                {
                    "id": "b",
                    "lat": 52.1,
                    "lon": 4.1,
                    "capacity_kw": 1000.0,
                    "chargers": [{"model": "ac11", "power_kw": 11.0, "current": "ac"}],
                },
            ]
        },  # fmt: skip
        fleet=[
            {
                "preset": "nissan_leaf_40",
                "share": 1,
                "iso15118_share": 1.0,
                "v2g": {"max_discharge_kw": 10.0, "min_soc_frac": 0.2},
            }
        ],  # fmt: skip
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 3.0},
                "dwell_min": 600.0,
                "arrival_soc_frac": 0.9,
                "target_soc_frac": 0.95,
                "max_queue": 0,
            }
        ],  # fmt: skip
        manager={
            "kind": "ocpp",
            "csms": csms_url,
            "ocpp": "2.0.1",
            "speed": SPEED,
            "response_timeout_s": 5.0,
            "meter_interval_s": 300,
        },  # fmt: skip
    )


def _profile(profile_id: int, limit_w: float) -> dict:
    return {
        "id": profile_id,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "start_schedule": "2026-03-02T11:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": limit_w}],
            }
        ],
    }


def _export_wh(records, charger: str) -> list[float]:
    """Every Energy.Active.Export.Register the station sent in its transaction events."""
    out = []
    for rec in records.events_of(charger):
        for mv in rec.payload.get("meterValue", []):
            out += [
                float(v["value"]) for v in mv["sampledValue"] if v.get("measurand") == "Energy.Active.Export.Register"
            ]
    return out


async def discharge(csms: Csms, runner: PacedRun) -> dict:
    """Ask for the export register in meter values, then a −5 kW profile on a and on b; let an hour pass."""
    rec = csms.records201
    a01, b01 = [await csms.wait_connected(c, 10) for c in ("a.01", "b.01")]
    measurands = "Energy.Active.Import.Register,Energy.Active.Export.Register"
    variable = {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedMeasurands"}}
    out = {"measurands": (await a01.set_variables([{**variable, "attribute_value": measurands}])).set_variable_result}
    await rec.wait_for(lambda: any(r.event_type == "Started" for r in rec.events_of("a.01")), 15)
    out["a"] = (await a01.set_charging_profile(1, _profile(7, -DISCHARGE_W))).status
    out["b"] = (await b01.set_charging_profile(1, _profile(8, -DISCHARGE_W))).status
    clock = runner.clock
    assert clock is not None
    await clock.sleep(3600.0)
    return out


def test_a_negative_profile_discharges_the_ev_and_the_station_meters_the_export(arun, paced_run):
    """A bidirectional 2.0.1 station accepts −5 kW: the simulation discharges at 5 kW and the export register grows."""

    async def go() -> tuple:
        csms = Csms(response_timeout_s=5.0)
        await csms.start()
        try:
            result, out = await paced_run(
                scenario(csms.url), lambda runner: discharge(csms, runner), drain_timeout_s=15.0
            )
        finally:
            await csms.stop()
        return result, out, _export_wh(csms.records201, "a.01")

    result, out, export_wh = arun(go(), timeout_s=120)
    assert out["measurands"][0]["attribute_status"] == "Accepted"
    assert (out["a"], out["b"]) == ("Accepted", "Rejected")  # site b's station only charges
    d = result.tables.discharges
    assert d is not None
    assert len(d["t0_s"]) > 0
    assert set((-d["power_kw"]).tolist()) == {DISCHARGE_W / 1000.0}
    # The register counts what the simulation discharged, in Wh (rounded to 0.1 Wh on the wire).
    assert export_wh, "the station sent Energy.Active.Export.Register"
    assert export_wh == sorted(export_wh)  # a register never goes back
    total_wh = float((-d["power_kw"] * (d["t1_s"] - d["t0_s"])).sum() / 3.6)
    assert 0 < export_wh[-1] <= total_wh + 0.1
