"""Every fault kind on a timeline, end to end: a charging 1.6 charger against the reference CSMS on loopback.

Faults come from a timeline (the same model as ``--faults faults.yaml``) and fire at their simulated
time; each test checks what the CSMS and the frame log show.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.clock import parse_ocpp_time
from virtual_chargers.csms import Csms
from virtual_chargers.faults import parse_faults
from virtual_chargers.testing import ChargerSet

pytestmark = pytest.mark.slow  # fault injection on loopback in real time: about a second each

SPEED = 1200.0  # twenty simulated minutes per wall second
ENERGY = "Energy.Active.Import.Register"


@dataclass
class Rig:
    """A CSMS, a charger charging an EV from t≈0, and its frame log."""

    csms: Csms
    fleet: ChargerSet
    cp: Any
    log_path: Path

    def lines(self, action: str, direction: str = "tx") -> list[tuple[float, dict[str, Any]]]:
        """(simulated t_s, payload) of each request ``action`` in the frame log."""
        self.fleet.log.flush()
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            msg = rec.get("msg")
            if rec["dir"] == direction and isinstance(msg, list) and msg[0] == 2 and msg[2] == action:
                t_s = (parse_ocpp_time(rec["t"]) - self.fleet.clock.start).total_seconds()
                out.append((t_s, msg[3]))
        return out


def _sample(mv: dict[str, Any], measurand: str) -> float:
    return next(float(s["value"]) for s in mv["meterValue"][0]["sampledValue"] if s["measurand"] == measurand)


@asynccontextmanager
async def rig(tmp_path: Path, faults: list[dict[str, Any]], plug: bool = True, **csms_kw: Any) -> AsyncIterator[Rig]:
    """Start the CSMS and CP1 (22 kW, MeterValues every 60 s), plug an EV in, schedule ``faults``."""
    log_path = tmp_path / "frames.jsonl"
    async with (
        Csms(**csms_kw) as csms,
        ChargerSet(
            csms.url,
            speed=SPEED,
            state_dir=tmp_path,
            log_path=log_path,
            boot_time_s=120,
            backoff_base_s=10,
            backoff_max_s=30,
        ) as fleet,
    ):
        cp = await fleet.add("CP1", config={"MeterValueSampleInterval": "60"})
        await fleet.wait_booted(cp)
        if plug:
            await cp.plug_in(1)
        timeline = parse_faults({"faults": faults}, "test")
        cp.schedule_faults(timeline.for_charger("CP1"))
        yield Rig(csms, fleet, cp, log_path)


def test_drop_connection_reconnects_and_the_transaction_goes_on(arun: Any, tmp_path: Path) -> None:
    """drop_connection: the websocket closes, the charger reconnects and boots; the transaction's meter values go on."""

    async def scenario() -> None:
        async with rig(tmp_path, [{"at_s": 300, "kind": "drop_connection"}]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.boots) == 2, 10)
            n = len(rec.meter_values)
            await rec.wait_for(lambda: len(rec.meter_values) >= n + 2, 10)
            assert r.fleet.log.summary.disconnects >= 1
            assert rec.stops == []
            (tx,) = rec.transactions.values()
            assert rec.meter_values[-1][1]["transactionId"] == tx.transaction_id

    arun(scenario())


def test_csms_unreachable_silence_then_queued_values_delivered(arun: Any, tmp_path: Path) -> None:
    """csms_unreachable: nothing is sent during the period; meter values sampled in it arrive after, in order."""

    async def scenario() -> None:
        async with rig(tmp_path, [{"at_s": 300, "kind": "csms_unreachable", "duration_s": 1200}]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.boots) == 2, 10)
            await r.fleet.wait_queues_empty(10)
            sent_t = [t for t, _ in r.lines("MeterValues")] + [t for t, _ in r.lines("Heartbeat")]
            assert not [t for t in sent_t if 420 < t < 1490]  # (a sample of before 300 may leave a little late)
            boot_t = [t for t, _ in r.lines("BootNotification")]
            assert boot_t[1] >= 1500 - 1
            stamps = [
                (parse_ocpp_time(p["meterValue"][0]["timestamp"]) - r.fleet.clock.start).total_seconds()
                for _, p in rec.meter_values
            ]
            assert stamps == sorted(stamps)
            assert len([s for s in stamps if 300 < s < 1500]) >= 15  # sampled offline, delivered later
            assert r.fleet.log.summary.queued_delivered >= 15

    arun(scenario())


def test_reboot_ends_the_transaction_with_power_loss_and_boots_again(arun: Any, tmp_path: Path) -> None:
    """reboot: StopTransaction reason PowerLoss, then after the boot time a new BootNotification."""

    async def scenario() -> None:
        async with rig(tmp_path, [{"at_s": 300, "kind": "reboot"}]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.boots) == 2 and len(rec.stops) == 1, 10)
            assert rec.stops[0][1]["reason"] == "PowerLoss"
            boot_t = [t for t, _ in r.lines("BootNotification")]
            assert boot_t[1] >= 300 + 120 - 1  # boot_time_s
            assert r.cp.boot_count == 2

    arun(scenario())


def test_connector_fault_reports_faulted_with_the_error_code_and_stops_energy(arun: Any, tmp_path: Path) -> None:
    """connector_fault: StatusNotification Faulted + error code; no power while faulted; Charging when it clears."""

    async def scenario() -> None:
        fault = {"at_s": 300, "kind": "connector_fault", "error_code": "GroundFailure", "duration_s": 600}
        async with rig(tmp_path, [fault]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: rec.status_of("CP1", 1) == "Faulted", 10)
            faulted = [p for _, p in rec.statuses if p["status"] == "Faulted"]
            assert faulted[0]["errorCode"] == "GroundFailure"
            await rec.wait_for(lambda: rec.status_of("CP1", 1) == "Charging", 10)
            assert [p["errorCode"] for _, p in rec.statuses if p["connectorId"] == 1][-1] == "NoError"
            during = [p for t, p in r.lines("MeterValues") if 420 < t < 850]  # sent times: allow for queueing
            assert during
            assert all(_sample(p, "Power.Active.Import") == 0 for p in during)
            energies = [_sample(p, ENERGY) for p in during]
            assert max(energies) - min(energies) < 1

    arun(scenario())


def test_meter_stuck_freezes_the_register_then_it_counts_again(arun: Any, tmp_path: Path) -> None:
    """meter_stuck: the energy register stays put and power reads 0 for the period, then counts again."""

    async def scenario() -> None:
        async with rig(tmp_path, [{"at_s": 300, "kind": "meter_stuck", "duration_s": 600}]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.meter_values) >= 20, 10)
            samples = [(t, _sample(p, ENERGY), _sample(p, "Power.Active.Import")) for t, p in r.lines("MeterValues")]
            stuck = [(e, w) for t, e, w in samples if 420 < t < 850]  # sent times: allow for queueing
            assert len({e for e, _ in stuck}) == 1
            assert all(w == 0 for _, w in stuck)
            after = [e for t, e, _ in samples if t > 960]
            assert after[-1] > stuck[0][0] + 500  # counting again (the default EV takes 11 kW AC)

    arun(scenario())


def test_meter_jump_adds_to_the_register(arun: Any, tmp_path: Path) -> None:
    """meter_jump: between two samples the register jumps by jump_wh on top of what was charged."""

    async def scenario() -> None:
        async with rig(tmp_path, [{"at_s": 300, "kind": "meter_jump", "jump_wh": 50000}]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.meter_values) >= 10, 10)
            energies = [_sample(p, ENERGY) for _, p in rec.meter_values]
            steps = [b - a for a, b in zip(energies, energies[1:], strict=False)]
            jumps = [s for s in steps if s > 50000]
            assert len(jumps) == 1
            assert jumps[0] < 50000 + 1000  # the jump plus a minute or two of charging

    arun(scenario())


def test_slow_responses_answer_late_for_the_period(arun: Any, tmp_path: Path) -> None:
    """slow_responses: the CSMS waits delay_s (simulated) for each answer during the period, not after."""

    async def scenario() -> None:
        fault = {"at_s": 0, "kind": "slow_responses", "delay_s": 1200, "duration_s": 600}
        async with rig(tmp_path, [fault], plug=False) as r:
            h = await r.csms.wait_connected("CP1")
            started = time.perf_counter()
            assert (await h.get_configuration(["HeartbeatInterval"])).configuration_key
            assert time.perf_counter() - started >= 1200 / SPEED * 0.95
            await r.fleet.clock.sleep_until(1300)
            started = time.perf_counter()
            await h.get_configuration(["HeartbeatInterval"])
            assert time.perf_counter() - started < 1200 / SPEED * 0.5

    arun(scenario())


def test_missing_responses_time_out_the_csms_for_the_period(arun: Any, tmp_path: Path) -> None:
    """missing_responses: CSMS requests go unanswered (it times out) during the period, answered after."""

    async def scenario() -> None:
        fault = {"at_s": 0, "kind": "missing_responses", "duration_s": 900}
        async with rig(tmp_path, [fault], plug=False, response_timeout_s=1.0) as r:
            h = await r.csms.wait_connected("CP1")
            with pytest.raises(TimeoutError):
                await h.get_configuration(["HeartbeatInterval"])
            await r.fleet.clock.sleep_until(1000)
            assert (await h.get_configuration(["HeartbeatInterval"])).configuration_key

    arun(scenario())


def test_clock_drift_shifts_the_timestamps_the_charger_writes(arun: Any, tmp_path: Path) -> None:
    """clock_drift: after the fault the charger's timestamps are error_s off the true simulated time, and drift."""

    async def scenario() -> None:
        fault = {"at_s": 300, "kind": "clock_drift", "error_s": -3600, "drift_ppm": 100000}
        async with rig(tmp_path, [fault]) as r:
            rec = r.csms.records16
            await rec.wait_for(lambda: len(rec.meter_values) >= 15, 10)
            offsets = []
            for t_s, p in r.lines("MeterValues"):
                stamp = (parse_ocpp_time(p["meterValue"][0]["timestamp"]) - r.fleet.clock.start).total_seconds()
                offsets.append((t_s, stamp - t_s))
            before = [o for t, o in offsets if t < 290]
            after = [(t, o) for t, o in offsets if t > 310]
            assert before
            assert all(abs(o) < 60 for o in before)  # sampled, then sent once the queue commit is on disk (~20 ms)
            # -3600 s at the fault, then 0.1 s more per simulated second (100,000 ppm)
            for t, o in after:
                assert o == pytest.approx(-3600 + (t - 300) * 0.1, abs=60)
            assert after[-1][1] > after[0][1]  # a positive drift runs ahead

    arun(scenario())


def test_fault_timeline_hits_only_matching_chargers(arun: Any, tmp_path: Path) -> None:
    """Charger patterns select who gets a fault: CP1 faults, CP2 does not."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            timeline = parse_faults(
                {
                    "faults": [
                        {"at_s": 60, "kind": "connector_fault", "chargers": ["CP1*"], "error_code": "HighTemperature"}
                    ]
                },
                "test",
            )
            for name in ("CP1", "CP2"):
                cp = await fleet.add(name)
                cp.schedule_faults(timeline.for_charger(name))
            await fleet.wait_all_booted(10)
            rec = csms.records16
            await rec.wait_for(lambda: rec.status_of("CP1", 1) == "Faulted", 10)
            await asyncio.sleep(0.2)
            assert rec.status_of("CP2", 1) == "Available"

    arun(scenario())
