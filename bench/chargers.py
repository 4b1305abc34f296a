"""Virtual-charger benchmark: 1,000 OCPP 1.6 chargers against the reference CSMS on loopback.

The CSMS runs in its own process (``chargetwin csms``), so the CPU time measured here is the emulator's
alone. Every charger boots, plugs in an EV that charges for the whole run, sends a Heartbeat every 30 s
and MeterValues every 10 s of simulated time, at 10× speed, for 2 wall minutes.

    python bench/chargers.py [--chargers 1000] [--speed 10] [--wall-s 120]

Prints requests and frames per second, emulator CPU seconds per 1,000 requests (and its share of one
core), the CSMS's CPU, the machine's load average, and round-trip percentiles per action.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_csms import cpu_s, proc_cpu_s, reference_csms  # noqa: E402

from sim.ev import PRESETS  # noqa: E402
from virtual_chargers.base import ChargerSpec, ConnectorSpec  # noqa: E402
from virtual_chargers.meter import EVSession  # noqa: E402
from virtual_chargers.testing import ChargerSet  # noqa: E402


async def bench(url: str, chargers: int, speed: float, wall_s: float, state: Path, csms_pid: int) -> None:
    ev = EVSession(PRESETS["ford_f150_lightning_er"], 0.05, 1.0)  # 131 kWh at 22 kW: charges all run long
    async with ChargerSet(url, speed=speed, state_dir=state, response_timeout_s=30) as fleet:
        started = time.perf_counter()
        for i in range(chargers):
            spec = ChargerSpec(f"CP{i + 1:05d}", (ConnectorSpec(22.0),))
            await fleet.add_spec(spec, config={"MeterValueSampleInterval": "10"})
            await asyncio.sleep(fleet.clock.to_wall_s(30.0) / chargers)  # boots spread over a heartbeat interval
        while (online := sum(c.online.is_set() for c in fleet.chargers.values())) < chargers:
            print(f"  {online}/{chargers} online, {fleet.log.summary.connects} connects", flush=True)
            if time.perf_counter() - started > 300:
                raise SystemExit(f"only {online}/{chargers} chargers online after 300 s")
            await asyncio.sleep(5)

        async def plug(i: int, cp: object) -> None:
            await fleet.clock.sleep(10.0 * i / chargers)  # samples spread over the interval
            await cp.plug_in(1, ev, "BENCH")  # type: ignore[attr-defined]

        await asyncio.wait_for(asyncio.gather(*(plug(i, cp) for i, cp in enumerate(fleet.chargers.values()))), 300)
        gc.collect()
        gc.freeze()  # as `virtual_chargers.fleet` does: the chargers live as long as the run
        print(f"{chargers} chargers booted and charging after {time.perf_counter() - started:.1f} s")
        s = fleet.log.summary
        await asyncio.sleep(5)  # settle: boot storm and status notifications are over
        s.rtt_s.clear()
        sent0, recv0, cpu0, t0 = sum(s.sent.values()), sum(s.received.values()), cpu_s(), time.perf_counter()
        csms_cpu0, load0 = proc_cpu_s(csms_pid), os.getloadavg()[0]
        await asyncio.sleep(wall_s)
        sent, recv = sum(s.sent.values()) - sent0, sum(s.received.values()) - recv0
        cpu, wall = cpu_s() - cpu0, time.perf_counter() - t0
        csms_cpu, load1 = proc_cpu_s(csms_pid) - csms_cpu0, os.getloadavg()[0]
        requests = sum(len(v) for v in s.rtt_s.values())
        print(f"measured {wall:.1f} s wall = {wall * speed:,.0f} simulated s at {speed:g}×")
        print(f"requests answered: {requests:,} ({requests / wall:,.0f}/s); frames sent+received {sent + recv:,}")
        print(f"  ({(sent + recv) / wall:,.0f}/s)")
        per_1000 = cpu / requests * 1000
        print(f"emulator CPU: {cpu:.1f} s = {cpu / wall:.0%} of one core; {per_1000:.3f} CPU s per 1,000 requests")
        print(f"CSMS CPU: {csms_cpu:.1f} s = {csms_cpu / wall:.0%} of one core")
        print(f"machine load average (1 min) {load0:.1f} at the start, {load1:.1f} at the end, {os.cpu_count()} cores")
        for action in sorted(s.rtt_s):
            q = s.rtt_percentiles_ms(action)
            n = len(s.rtt_s[action])
            print(f"  RTT {action:<20} n={n:>7,}  p50 {q['p50']:6.1f}  p95 {q['p95']:6.1f}  p99 {q['p99']:6.1f} ms")
        q = s.rtt_percentiles_ms()
        print(f"  RTT {'all':<20} n={requests:>7,}  p50 {q['p50']:6.1f}  p95 {q['p95']:6.1f}  p99 {q['p99']:6.1f} ms")
        print(f"timeouts {sum(s.timeouts.values())}, CallErrors received {sum(s.call_errors_received.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--wall-s", type=float, default=120.0)
    args = parser.parse_args()
    with reference_csms("--heartbeat-interval", "30") as (url, csms_pid):
        state = Path("out/bench-chargers-state")
        for f in state.glob("*"):
            f.unlink()
        asyncio.run(bench(url, args.chargers, args.speed, args.wall_s, state, csms_pid))


if __name__ == "__main__":
    main()
