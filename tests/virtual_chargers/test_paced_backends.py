"""Bridged runs against CSMSs of our own that behave like third-party ones (raw frames, `raw_csms`).

Small runs (one site, 2 chargers × 2 connectors, half a simulated day) on 127.0.0.1 port 0; every
wait is bounded and every server and run a test starts is stopped by it.
"""

import asyncio
import functools
import json
import math
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.config import ScenarioError, validate_data
from sim.metrics import BIN_S, sessions_frame
from tests.conftest import scenario_data
from tests.virtual_chargers.raw_csms import RawCsms
from tests.virtual_chargers.test_bridge import CsmsThread, scenario
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


@pytest.mark.slow
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


def short(url: str, **manager):
    """The bridge scenario over 2.4 simulated hours, with manager fields changed."""
    s = scenario(url, **manager)
    return s.model_copy(update={"horizon_days": 0.1})


@pytest.mark.slow
def test_slow_csms_shows_as_backend_lag_in_simulated_time_and_slows_the_pace(tmp_path, arun):
    """A CSMS adding 100 ms to every answer: lag in simulated s, a warning, the speed halved to its floor.

    At 600× an answer 0.1 wall s late is 60 simulated s late, above the 30 s bound; slow_down then
    halves the speed once, to min_speed 300, where each answer is still at least 0.1 × 300 = 30 s late.
    While the chargers boot the simulated clock stands still.
    """
    csms = RawCsms(delay_s=0.1)
    at_boot = []

    async def during(runner):
        while not csms.of("BootNotification"):
            await asyncio.sleep(0.005)
        at_boot.append(runner.clock.t_s())  # the answer is 100 ms away: nobody has booted yet

    make = functools.partial(short, speed=600.0, warn_backend_lag_s=30.0, slow_down=True, min_speed=300.0)
    result, _ = arun(paced(csms, tmp_path, make, during=during), timeout_s=120)
    assert at_boot == [0.0]
    qa = result.qa
    lag = qa["backend_lag_sim_s"]
    assert lag["BootNotification"]["max"] == 0.0  # answered while the clock stood still
    assert lag["StartTransaction"]["n"] >= 1
    assert lag["StartTransaction"]["p50"] >= 0.1 * 300.0
    assert qa["bridge"]["backend_lag_warnings"] >= 1
    assert [c["speed"] for c in qa["bridge"]["speed_changes"]] == [300.0]
    kpis = write_paced_results(result, tmp_path / "out")
    assert kpis["pacing"]["speed"] == 600.0
    assert kpis["pacing"]["speed_final"] == 300.0
    assert kpis["ocpp"]["backend_lag_sim_s"]["StartTransaction"]["p50"] >= 30.0
    assert kpis["ocpp"]["backend_lag_warnings"] == qa["bridge"]["backend_lag_warnings"]


@pytest.mark.slow
def test_run_without_a_reachable_csms_exits_1_and_writes_nothing(tmp_path, capsys):
    """No CSMS listening: `chargetwin run` says so and exits 1 after the boot timeout, with no results folder."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = short(f"ws://127.0.0.1:{port}", boot_timeout_s=2.0)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(s.model_dump(mode="json")))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"no charger reached the CSMS at ws://127.0.0.1:{port}" in err
    assert "nothing was simulated" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_openadr_with_a_csms_manager_is_refused_with_the_reason(tmp_path, capsys):
    """OpenADR caps cannot reach a CSMS: the scenario, and --csms on an OpenADR scenario, are refused (exit 2)."""
    openadr = {"vtn_url": "http://127.0.0.1:1/OpenADR2/Simple/2.0b"}
    data = scenario_data(grid={"demand_response": {"openadr": openadr}})
    with pytest.raises(ScenarioError) as info:
        validate_data({**data, "manager": {"kind": "ocpp", "csms": "ws://127.0.0.1:1"}}, "s.yaml", tmp_path)
    assert "grid.demand_response.openadr" in str(info.value)
    assert "cannot share a run" in str(info.value)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--csms", "ws://127.0.0.1:1", "--out", str(tmp_path / "o")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--csms with grid.demand_response.openadr" in err
    assert "built-in manager" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_keeps_partial_results_and_no_stray_frame_log(tmp_path, sig, code):
    """Ctrl-C or SIGTERM mid-run: the results up to then are written, no hidden frame log is left, exit 130/143."""
    with CsmsThread() as csms:
        s = short(csms.url, speed=300.0)  # 2.4 simulated hours: 29 wall seconds
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(s.model_dump(mode="json")))
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "run", str(path), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while len(csms.records16.boots) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(csms.records16.boots) == 2
            time.sleep(3.0)  # about 15 simulated minutes into the run
            proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == code, stderr
    assert f"interrupted ({sig.name})" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]  # no .out.frames.jsonl
    kpis = json.loads((out / "kpis.json").read_text())
    assert (out / "ocpp_frames.jsonl").stat().st_size > 0
    load = pd.read_parquet(out / "load.parquet")
    assert len(load) == math.ceil(s.horizon_s / BIN_S)  # the folder has the run's shape; the tail is zero
    assert kpis["pacing"]["steps"] > 0


@pytest.mark.slow
def test_frozen_csms_late_answers_are_counted_once(tmp_path, arun):
    """A CSMS that freezes past the response timeout: each late answer is one timeout and one late answer, no fault."""
    csms = RawCsms()

    async def during(runner):
        await asyncio.wait_for(runner.started.wait(), 15)
        await asyncio.sleep(0.5)
        csms.freeze()
        await asyncio.sleep(2.5)  # past the 1 s response timeout
        csms.thaw()

    make = functools.partial(short, speed=600.0, response_timeout_s=1.0, meter_interval_s=60)
    result, _ = arun(paced(csms, tmp_path, make, during=during), timeout_s=120)
    qa = result.qa
    timeouts, late = qa["timeouts"], qa["late_answers"]
    assert sum(late.values()) >= 1
    assert all(n <= timeouts.get(action, 0) for action, n in late.items())
    assert qa["csms_violations"] == 0
    kpis = write_paced_results(result, tmp_path / "out")
    assert kpis["ocpp"]["csms_late_answers"] == sum(late.values())


@pytest.mark.slow
@pytest.mark.parametrize("refusing", ["authorize", "start_status"])
def test_csms_refusing_authorization_turns_drivers_away(tmp_path, arun, refusing):
    """Authorize or StartTransaction answered Invalid: the drivers the CSMS heard of leave, rejected (authorization)."""
    csms = RawCsms(**{refusing: "Invalid"})
    result, _ = arun(paced(csms, tmp_path, functools.partial(short, speed=600.0)), timeout_s=120)
    sessions = sessions_frame(result.tables)
    plugged = sessions[sessions["evse_id"].notna()]
    told = {int(r.payload["idTag"][3:]) for r in csms.of("Authorize")}
    assert len(told) >= 2
    refused = plugged[plugged["session_id"].isin(told) & (plugged["outcome"] != "ongoing")]
    assert len(refused) >= 2
    assert set(refused["outcome"]) == {"rejected"}
    assert set(refused["cause"]) == {"authorization"}
    assert result.qa["bridge"]["events_forwarded"]["AuthorizationRefused"] == len(refused)
    # they leave when the answer arrives: within a few round trips (at 600×, 10 wall seconds = 100 simulated min)
    stayed_s = refused["departure_t_s"] - refused["plug_t_s"]
    assert (stayed_s < 600.0 * 10.0).all()
    assert (refused["energy_delivered_kwh"] <= 22.0 * stayed_s / 3600.0 + 1e-9).all()
    if refusing == "authorize":  # turned away before a transaction started
        assert csms.of("StartTransaction") == []
    else:  # the transaction started, the answer ended it
        assert len(csms.of("StopTransaction")) >= len(refused)
        assert {r.payload.get("reason") for r in csms.of("StopTransaction")} == {"DeAuthorized"}
