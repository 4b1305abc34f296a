"""CSMS load profile: a scenario's chargers and EV arrivals, scaled to 1,000-5,000 chargers, step by step.

Each step runs N virtual 1.6 chargers against the CSMS for ``--step-wall-s`` wall seconds: the scenario's
chargers repeated until there are N (copy k of charger ``x`` is ``L<k>-x``), each with the EV arrivals the
scenario drew for it (`virtual_chargers.fleet.plan_scenario`), from ``--start-h`` o'clock of its first day
on. Per step it prints the CSMS's round-trip distribution per action (p50/p95/p99/max), the requests that
got no answer within the response timeout, and whether the CSMS kept up: it **falls behind** at the first
step whose p99 round trip of any action passes ``--behind-p99-ms`` or that has timeouts. Steps stop there,
or at ``--limit-s`` wall seconds in all.

The reference CSMS runs in its own process (``chargetwin csms``) unless ``--csms URL`` is given. On a
shared 2-core machine the emulator itself may be what falls behind: the printed load average says how
busy the machine was, and the emulator's own CPU share is printed per step.

    python bench/csms_load.py [--scenario scenarios/small_city.yaml] [--steps 1000,2000,3000,4000,5000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from reference_csms import reference_csms

from sim.config import load_scenario
from virtual_chargers.fleet import FleetOptions, PlannedCharger, plan_scenario, run_fleet

ROOT = Path(__file__).resolve().parents[1]


def scaled(plans: list[PlannedCharger], n: int, start_s: float, horizon_s: float) -> list[PlannedCharger]:
    """``n`` chargers: copies of ``plans`` with their sessions in [start_s, start_s + horizon_s), shifted to 0."""
    out = []
    k = 0
    while len(out) < n:
        for p in plans:
            if len(out) == n:
                break
            sessions = tuple(
                replace(s, t_s=s.t_s - start_s, id_tag=f"L{k}{s.id_tag}"[:20])
                for s in p.sessions
                if start_s <= s.t_s < start_s + horizon_s
            )
            out.append(PlannedCharger(replace(p.spec, id=f"L{k}-{p.spec.id}"), sessions))
        k += 1
    return out


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "small_city.yaml")
    ap.add_argument("--steps", default="1000,2000,3000,4000,5000")
    ap.add_argument("--step-wall-s", type=float, default=60.0)
    ap.add_argument("--speed", type=float, default=30.0, help="simulated seconds per wall second")
    ap.add_argument("--start-h", type=float, default=17.0, help="hour of the first day the steps start at")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--behind-p99-ms", type=float, default=1000.0)
    ap.add_argument("--limit-s", type=float, default=1500.0)
    ap.add_argument("--csms", help="CSMS URL (default: the reference CSMS in its own process)")
    args = ap.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    scenario = load_scenario(args.scenario)
    plans = plan_scenario(scenario)
    horizon_s = args.step_wall_s * args.speed
    start_s = args.start_h * 3600.0
    arrivals = sum(1 for p in plans for s in p.sessions if start_s <= s.t_s < start_s + horizon_s)
    print(f"{args.scenario.name}: {len(plans)} chargers, {arrivals} EV arrivals in the window of each copy "
          f"({args.start_h:g}:00 + {horizon_s / 3600:.1f} h simulated at {args.speed:g}x)")  # fmt: skip
    t_all = time.monotonic()
    behind_at = None
    with contextlib.ExitStack() as stack:
        url = args.csms or stack.enter_context(reference_csms("--heartbeat-interval", "300"))[0]
        for n in steps:
            if time.monotonic() - t_all > args.limit_s:
                print(f"stopped before {n}: --limit-s {args.limit_s:g} reached")
                break
            fleet = scaled(plans, n, start_s, horizon_s)
            with tempfile.TemporaryDirectory() as state:
                opts = FleetOptions(
                    url,
                    speed=args.speed,
                    duration_s=horizon_s,
                    processes=args.processes,
                    state_dir=Path(state),
                    config={"MeterValueSampleInterval": "60"},
                    leave_open=True,
                )
                load0, cpu0, t0 = os.getloadavg()[0], _children_cpu_s(), time.monotonic()
                summary = run_fleet(fleet, opts)
                wall_s = time.monotonic() - t0
                cpu_share = (_children_cpu_s() - cpu0) / wall_s
            requests = sum(len(v) for v in summary.rtt_s.values())
            timeouts = sum(summary.timeouts.values())
            print(f"\n{n} chargers: {requests} requests answered in {wall_s:.0f} s ({requests / wall_s:.0f}/s), "
                  f"{timeouts} timeouts, {summary.transactions_started} transactions started; "
                  f"emulator CPU {cpu_share:.2f} cores; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip  # noqa: E501
            worst = 0.0
            for action in sorted(summary.rtt_s):
                q = summary.rtt_percentiles_ms(action)
                worst = max(worst, q["p99"])
                print(f"  {action:22} n={len(summary.rtt_s[action]):7}  p50 {q['p50']:8.1f}  p95 {q['p95']:8.1f}  "
                      f"p99 {q['p99']:8.1f}  max {q['max']:8.1f} ms")  # fmt: skip
            if worst > args.behind_p99_ms or timeouts:
                behind_at = n
                print(f"falls behind at {n} chargers (p99 {worst:.0f} ms, {timeouts} timeouts)")
                break
    if behind_at is None:
        print(f"kept up at every step run (p99 <= {args.behind_p99_ms:g} ms, no timeouts)")
    print(f"total wall {time.monotonic() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
