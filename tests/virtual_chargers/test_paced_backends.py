"""Bridged runs against CSMSs of our own that behave like third-party ones (raw frames, `raw_csms`).

Small runs (one site, 2 chargers × 2 connectors, half a simulated day) on 127.0.0.1 port 0; every
wait is bounded and every server and run a test starts is stopped by it.
"""

import asyncio
import math
from pathlib import Path

import pandas as pd

from sim.metrics import BIN_S
from tests.virtual_chargers.raw_csms import RawCsms
from tests.virtual_chargers.test_bridge import scenario
from virtual_chargers.paced_run import PacedRun, write_paced_results


async def paced(csms: RawCsms, tmp_path: Path, make=scenario, *, during=None, **kwargs):
    """Run `make(url)` against `csms`; `during(runner)` runs alongside; everything is stopped at the end."""
    await csms.start()
    s = make(csms.url)
    runner = PacedRun(s, state_dir=tmp_path / "state", boot_timeout_s=10.0, drain_timeout_s=10.0, **kwargs)
    task = asyncio.ensure_future(runner.run())
    try:
        if during is not None:
            await during(runner)
        return await asyncio.wait_for(task, 60), runner
    finally:
        runner.stop()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await csms.stop()


def test_csms_profile_changing_exactly_at_the_horizon_writes_results(tmp_path, arun):
    """A CSMS profile whose limit changes exactly at the horizon: the run ends and writes its full folder."""
    s = scenario("ws://127.0.0.1:1")
    start = s.start.astimezone().isoformat()

    async def send_profile(csms, charger, action, payload, answer):
        if action == "BootNotification":
            profile = {
                "chargingProfileId": 9,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "startSchedule": start,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 22000.0},
                        {"startPeriod": int(s.horizon_s), "limit": 3000.0},
                    ],
                },
            }
            await csms.call(charger, "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile})

    csms = RawCsms(after=send_profile)
    result, _ = arun(paced(csms, tmp_path), timeout_s=90)
    assert [a for _, a in csms.replies if isinstance(a, dict)] == [{"status": "Accepted"}] * 2
    assert result.qa["bridge"]["commands_applied"] == {"SetChargingProfile": 2}
    assert (result.tables.intervals["t0_s"] < s.horizon_s).all()
    kpis = write_paced_results(result, tmp_path / "out")
    load = pd.read_parquet(tmp_path / "out" / "load.parquet")
    assert len(load) == math.ceil(s.horizon_s / BIN_S)
    assert kpis["network"]["energy_delivered_kwh"] > 0
