"""A CSMS as the network manager: the reference CSMS drives a paced run through virtual OCPP chargers.

The runs are small (one site, 2 chargers × 2 connectors) and fast (half a simulated day in ~9 s of wall
time), on 127.0.0.1 with port 0; every wait is bounded and everything started is stopped.
"""

import asyncio
import json
import math
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.config.ocpp import OcppManager
from sim.engine import simulate
from sim.ids import ChargerId
from sim.managers.base import SetChargingProfile, Timer
from sim.metrics import sessions_frame
from sim.results import RESULT_FILES, write_results
from tests.conftest import make_scenario
from virtual_chargers.clock import SimClock
from virtual_chargers.csms import CapRule, Csms
from virtual_chargers.paced_run import write_paced_results
from virtual_chargers.v16.profiles import from_ocpp
from virtual_chargers.wire import snake_keys

SPEED = 5000.0  # half a simulated day in 8.6 s of wall time
CAP_KW = 7.0
RULE = CapRule(CAP_KW, "17:00", "20:00", "+01:00")
WINDOW = (5 * 3600.0, 8 * 3600.0)  # 17:00-20:00 when the scenario starts at 12:00 +01:00


def scenario(csms_url: str, **manager: object):
    """One site, two 2-connector 22 kW AC chargers, from noon: the cap window is 5-8 h into the run."""
    return make_scenario(
        name="bridge",
        seed=11,
        start="2026-03-02T12:00:00+01:00",
        horizon_days=0.5,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 1000.0,
                    "chargers": [{"model": "ac22", "count": 2, "connectors": 2, "power_kw": 22.0, "current": "ac"}],
                }
            ]
        },
        fleet=[{"preset": "tesla_model_3_lr", "share": 1}, {"preset": "renault_zoe_ze50", "share": 1}],
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 2.0},
                "dwell_min": {"dist": "uniform", "low": 60, "high": 240},
                "max_queue": 1,
            }
        ],
        manager={
            "kind": "ocpp",
            "csms": csms_url,
            "speed": SPEED,
            "response_timeout_s": 5.0,
            "meter_interval_s": 300,
            **manager,
        },
    )


class CapAtStart:
    """The in-process equivalent of the reference CSMS's rule: the same TxDefaultProfile on every charger at 0."""

    def __init__(self, scenario) -> None:
        clock = SimClock(1.0, scenario.start)
        ocpp = snake_keys(RULE.profile16("TxDefaultProfile"))
        self.profile = from_ocpp(ocpp, clock.t_s_of, 230.0, 3, received_t_s=0.0)
        self.chargers = [ChargerId(f"a.{n:02d}") for n in (1, 2)]

    def handle(self, event, network):
        """Every charger's profile at the start, nothing else."""
        if isinstance(event, Timer) and event.name == "start":
            return [SetChargingProfile(self.profile, charger_id=c) for c in self.chargers]
        return ()


def port_power_samples(tables, step_s: float = 60.0):
    """(t_s, evse index, power_kw) every `step_s` inside every recorded charging interval."""
    iv = tables.intervals
    rows = []
    for t0, t1, tau0, evse, p in zip(iv["t0_s"], iv["t1_s"], iv["tau0_s"], iv["evse"], iv["profile"], strict=True):
        prof = tables.profiles[p]
        t = np.arange(t0, t1, step_s)
        rows.extend((float(x), int(evse), float(prof.power_at(prof.soc_at(tau0 + x - t0)))) for x in t)
    return rows


async def paced_with_csms(paced_run, frames_path: Path, restart_at_s: float | None = None):
    """Run the scenario against the reference CSMS with the cap rule; optionally restart the CSMS mid-run."""
    csms = await Csms(response_timeout_s=5.0).start()
    csms.records16.cap_rule = RULE
    restarted: list[Csms] = []

    async def restart(runner) -> None:
        assert runner.clock is not None
        await runner.clock.sleep_until(restart_at_s)
        port = csms.port
        await csms.stop()  # every charger loses its connection
        await runner.clock.sleep(1800.0)  # down for half a simulated hour
        restarted.append(Csms(port=port, response_timeout_s=5.0))
        restarted[0].records16 = csms.records16  # its database survived the restart
        await restarted[0].start()

    try:
        during = restart if restart_at_s is not None else None
        result, _ = await paced_run(scenario(csms.url), during, frames_path=frames_path, drain_timeout_s=15.0)
    finally:
        await csms.stop()
        for again in restarted:
            await again.stop()
    return result, csms.records16


@pytest.mark.slow
def test_reference_csms_caps_the_simulated_load_in_its_window(tmp_path, paced_run, arun):
    """The CSMS's 7 kW 17:00-20:00 TxDefaultProfile caps every simulated connector in exactly that window.

    Its KPIs equal those of an in-process manager sending the same profile at time 0. Tolerance,
    derived: the CSMS's profile reaches the simulation when the chargers boot (a few simulated
    minutes at most, asserted below), and a profile binds only inside its window, five hours later;
    every arrival and every interval is then the same, so only float rounding may differ (1e-9).
    """
    result, records = arun(paced_with_csms(paced_run, tmp_path / "frames.jsonl"), timeout_s=90)
    tables = result.tables

    # Every charger got the profile and accepted it, before the window opened.
    assert sorted(c for c, _, status in records.profiles_sent if status == "Accepted") == ["a.01", "a.02"]
    qa = result.qa
    assert qa is not None
    assert qa["bridge"]["commands_applied"] == {"SetChargingProfile": 2}
    events = sessions_frame(tables)
    assert len(events) > 10

    samples = port_power_samples(tables)
    inside = [p for t, _, p in samples if WINDOW[0] <= t < WINDOW[1]]
    outside = [p for t, _, p in samples if not WINDOW[0] <= t < WINDOW[1]]
    assert inside
    assert max(inside) <= CAP_KW + 1e-9
    assert max(outside) > CAP_KW + 1.0  # outside the window the EVs draw 11 or 22 kW
    # the cap binds from 17:00 on the dot: an interval open across 17:00 is closed there
    iv = tables.intervals
    assert not np.any((iv["t0_s"] < WINDOW[0] - 1e-9) & (iv["t1_s"] > WINDOW[0] + 1e-9))

    # Same arrivals, the same profile in-process: the same sessions and KPIs.
    base = simulate(tables.scenario, manager=CapAtStart(tables.scenario))
    paced_sessions, base_sessions = sessions_frame(tables), sessions_frame(base)
    assert len(paced_sessions) == len(base_sessions)
    np.testing.assert_allclose(
        paced_sessions["energy_delivered_kwh"], base_sessions["energy_delivered_kwh"], rtol=1e-9, atol=1e-9
    )
    paced_kpis = write_paced_results(result, tmp_path / "paced")
    base_kpis = write_results(base, tmp_path / "inprocess")
    for key in ("sessions_served", "energy_delivered_kwh", "unmet_energy_kwh", "peak_kw", "revenue"):
        assert paced_kpis["network"][key] == pytest.approx(base_kpis["network"][key], rel=1e-9, abs=1e-9), key

    # The folder is a results folder plus the frame log, the QA summary and the pacing figures.
    folder = tmp_path / "paced"
    assert (folder / "ocpp_frames.jsonl").stat().st_size > 0
    assert (folder / "qa_summary.json").is_file()
    pacing = paced_kpis["pacing"]
    assert pacing["speed"] == SPEED
    assert pacing["steps"] > 100
    assert pacing["lag_p50_s"] <= pacing["lag_p99_s"] <= pacing["lag_max_s"]

    # The CSMS saw every session as a transaction, with the twin's energy.
    served = paced_sessions[paced_sessions["evse_id"].notna()]
    assert len(records.transactions) == len(served)
    assert qa["timeouts"] == {}
    assert qa["csms_violations"] == 0


@pytest.mark.slow
def test_csms_restart_mid_run_loses_no_session(tmp_path, paced_run, arun):
    """The CSMS restarts mid-run: the run goes on, the chargers reconnect, every session reaches the CSMS."""
    result, records = arun(paced_with_csms(paced_run, tmp_path / "frames.jsonl", 3 * 3600.0), timeout_s=90)
    tables = result.tables
    sessions = sessions_frame(tables)
    plugged = sessions[sessions["evse_id"].notna()].reset_index(drop=True)
    qa = result.qa
    assert qa is not None
    assert qa["connects"] >= 4  # both chargers reconnected
    assert qa["disconnects"] >= 2
    assert len({c for c, _ in records.boots}) == 2
    assert len(records.boots) >= 4
    assert result.drained
    # Every session on a connector is a transaction of the CSMS, with the twin's energy to the Wh.
    assert len(records.transactions) == len(plugged)
    done = plugged[plugged["outcome"] != "ongoing"]
    stopped = [t for t in records.transactions.values() if t.stop is not None]
    assert len(stopped) == len(done)
    csms_kwh = sorted((t.stop["meterStop"] - t.start["meterStart"]) / 1000.0 for t in stopped)
    np.testing.assert_allclose(csms_kwh, sorted(done["energy_delivered_kwh"]), atol=2e-3)
    # Some transactions started while the CSMS was down and were delivered after it came back.
    assert qa["queued_delivered_after_reconnect"] >= 1
    assert math.isfinite(result.lag["lag_max_s"])


def test_ocpp_manager_needs_a_paced_run():
    """An in-process run of a scenario whose manager is a CSMS says how to run it."""
    s = scenario("ws://127.0.0.1:1")
    assert isinstance(s.manager, OcppManager)
    with pytest.raises(ValueError, match="paced"):
        simulate(s)


async def scripted_csms_commands(paced_run):
    """The CSMS remote-stops, remote-starts, changes availability, pushes a price and resets, mid-run."""
    csms = await Csms(response_timeout_s=5.0).start()
    rec = csms.records16

    async def commands(runner) -> tuple:
        answers = {}

        def running():
            return [t for t in rec.transactions.values() if t.stop is None and t.charger == "a.01"]

        await rec.wait_for(lambda: bool(running()), 10)
        tx = running()[0]
        connector = tx.start["connectorId"]
        a01, a02 = csms.handlers["a.01"], csms.handlers["a.02"]
        answers["stop"] = (await a01.remote_stop(tx.transaction_id)).status
        await rec.wait_for(lambda: tx.stop is not None, 10)
        answers["start"] = (await a01.remote_start("DRIVER-APP", connector)).status
        assert runner.bridge is not None
        empty = [i for i, c in runner.bridge.fleet.chargers["a.02"].connectors.items() if c.ev is None]
        answers["start_empty"] = (await a02.remote_start("DRIVER-APP", empty[0])).status if empty else "no empty port"
        answers["price"] = (await a01.data_transfer("chargetwin", "SetTariff", '{"price_per_kwh": 0.99}')).status
        answers["bad_price"] = (await a01.data_transfer("chargetwin", "SetTariff", '{"price_per_kwh": -1}')).status
        answers["inoperative"] = (await a02.change_availability(2, "Inoperative")).status
        answers["reset"] = (await a02.reset("Soft")).status
        return runner, answers, tx, connector

    try:
        result, (runner, answers, tx, connector) = await paced_run(scenario(csms.url, meter_interval_s=600), commands)
    finally:
        await csms.stop()
    return result, runner, answers, tx, connector


@pytest.mark.slow
def test_csms_commands_change_the_simulation(paced_run, arun):
    """Remote stop and start, availability, a price and a reset from the CSMS become simulation commands."""
    result, runner, answers, tx, connector = arun(scripted_csms_commands(paced_run), timeout_s=90)
    assert answers["stop"] == "Accepted"
    assert answers["start"] == "Accepted"  # the EV is still plugged in: it charges again
    assert answers["start_empty"] in ("Rejected", "no empty port")  # no EV: every driver starts by plugging in
    assert answers["price"] == "Accepted"
    assert answers["bad_price"] == "Rejected"
    assert answers["inoperative"] in ("Accepted", "Scheduled")
    assert answers["reset"] == "Accepted"
    tables = result.tables
    events = tables.events
    evse = next(i for i, e in enumerate(tables.evses) if e.evse_id == f"a.01.{connector}")
    limits = events["value"][(events["event"] == 3) & (events["evse"] == evse)].tolist()
    assert limits[:2] == [0.0, math.inf]  # stopped, then started again
    assert 0.99 in tables.tariff_changes["price_per_kwh"].tolist()
    applied = result.qa["bridge"]["commands_applied"]
    assert applied["SetTariff"] == 1
    assert applied["ChangeAvailability"] >= 3  # a.02.2 out; a.02.1 out for the reboot and back
    assert result.qa["bridge"]["commands_refused_count"] == 0
    # at the end a.02's first connector serves again after the reboot; the second stays out of service
    view = runner.pacer.simulation.view.site("a")
    status = {e.evse_id: e.status.value for e in view.evses}
    assert status["a.02.2"] == "Unavailable"  # out of service as the CSMS asked: Unavailable, as OCPP has it
    assert status["a.02.1"] != "Unavailable"


class CsmsThread:
    """The reference CSMS in its own thread and event loop, for a command-line run in this one."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.csms = asyncio.run_coroutine_threadsafe(Csms(response_timeout_s=5.0).start(), self.loop).result(10)
        self.csms.records16.cap_rule = RULE
        return self.csms

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.csms.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.mark.slow
def test_run_command_with_a_csms(tmp_path, scenarios_dir, capsys):
    """`chargetwin run SCENARIO --csms URL --speed S` writes a full results folder, frames, QA and lag."""
    out = tmp_path / "out"
    with CsmsThread() as csms:
        path = scenarios_dir / "csms" / "csms_smart_charging.yaml"
        argv = ["run", str(path), "--csms", csms.url, "--speed", "20000", "--days", "1", "--out", str(out)]
        assert main(argv) == 0
        assert len(csms.records16.boots) == 6
    for f in (*RESULT_FILES, "report.md", "report.html", "ocpp_frames.jsonl", "qa_summary.json"):
        assert (out / f).is_file(), f
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["pacing"]["speed"] == 20000
    assert kpis["ocpp"]["transactions_started"] > 0
    assert json.loads((out / "manifest.json").read_text())["manager"] == "ocpp"
    printed = capsys.readouterr().out
    assert "lag behind the wall clock" in printed
    assert "report.html" in printed
    assert re.search(r"1 simulated day paced at 20000× in \d+\.\d+ s wall time, seed \d+, ocpp", printed), printed


def test_least_laxity_twin_differs_only_in_the_manager(scenarios_dir):
    """The in-process twin of the CSMS scenario has the same arrivals: only its manager differs."""
    a = load_scenario(scenarios_dir / "csms" / "csms_smart_charging.yaml").model_dump(exclude={"manager"})
    b = load_scenario(scenarios_dir / "csms" / "least_laxity_first.yaml").model_dump(exclude={"manager"})
    assert a == b


def test_run_command_refuses_a_bad_csms_url(scenarios_dir, capsys):
    """A --csms that is not a websocket URL is one line and exit code 2."""
    path = scenarios_dir / "csms" / "csms_smart_charging.yaml"
    assert main(["run", str(path), "--csms", "http://127.0.0.1:9000"]) == 2
    assert "ws://" in capsys.readouterr().err


async def paced_201(paced_run):
    """2.0.1 stations, every EV speaking ISO 15118; the CSMS caps a.01 to 7 kW (W, the whole station) at once."""
    csms = await Csms(response_timeout_s=5.0).start()
    s = scenario(csms.url, ocpp="2.0.1")
    fleet = [{"preset": "tesla_model_3_lr", "share": 1, "iso15118_share": 1.0}]
    s = s.model_copy(update={"fleet": make_scenario(fleet=fleet).fleet})

    async def cap(_runner) -> str:
        profile = {
            "id": 5,
            "stack_level": 0,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": [
                {
                    "id": 1,
                    "start_schedule": "2026-03-02T11:00:00Z",
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [{"start_period": 0, "limit": 7000.0}],
                }
            ],
        }
        handler = await csms.wait_connected("a.01", 10)
        return (await handler.set_charging_profile(0, profile)).status

    try:
        result, answer = await paced_run(s, cap)
    finally:
        await csms.stop()
    return result, csms.records201, answer


@pytest.mark.slow
def test_ocpp_201_stations_carry_the_twins_sessions_and_needs(paced_run, arun):
    """With 2.0.1 every session is a transaction with the EV's ISO 15118 need; a station-wide profile caps it."""
    result, records, answer = arun(paced_201(paced_run), timeout_s=90)
    assert answer == "Accepted"
    tables = result.tables
    sessions = sessions_frame(tables)
    plugged = sessions[sessions["evse_id"].notna()]
    assert len(records.transactions()) == len(plugged)
    assert len(records.charging_needs) == len(plugged)
    needs_wh = sorted(n["chargingNeeds"]["acChargingParameters"]["energyAmount"] for _, n in records.charging_needs)
    want_wh = sorted(round(x * 1000) for x in plugged["energy_requested_kwh"])
    np.testing.assert_allclose(needs_wh, want_wh, atol=1.0)
    assert result.qa["bridge"]["commands_applied"] == {"SetChargingProfile": 1}
    a01 = [i for i, e in enumerate(tables.evses) if e.charger.charger_id == "a.01"]
    samples = port_power_samples(tables)
    # the profile went out once the stations were online, within a few simulated minutes of the start
    assert max(p for t, e, p in samples if e in a01 and t >= 1800.0) <= CAP_KW + 1e-9
    assert max(p for _, e, p in samples if e not in a01) > CAP_KW + 1.0
