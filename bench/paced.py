"""Paced benchmark: 200 bridged chargers over one simulated day at 60× against the reference CSMS.

The CSMS runs in its own process (``chargetwin csms``), so the CPU measured here is the twin's and its
virtual chargers' alone. Ten street-post sites of twenty 2 × 22 kW AC chargers (400 ports) see the
demand of a working day; every session is a transaction at the CSMS with MeterValues every simulated
minute, and the CSMS caps the evening (7 kW, 17:00-20:00).

    python bench/paced.py                 # the day at 60× (24 wall minutes), then the speed search
    python bench/paced.py --quick         # two simulated hours at 60× and a short search
    python bench/paced.py --no-search     # the day only

Prints the lag of the simulation behind the wall clock (p50/p99/max, wall seconds), the backend lag of
StartTransaction (simulated seconds from request to answer), CSMS round trips by action, CPU of the
twin and of the CSMS, and the machine's load average. Target: lag p99 < 1 s and no falling behind.
The search then runs two simulated evening hours at doubling speed-ups (60, 120, 240, … at most
``--max-speed``, 61,440) until lag p99 reaches 1 s, and bisects between the last pass and the first failure
(``--search-steps`` times): the highest speed-up at which 200 chargers keep lag p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_csms import cpu_s, proc_cpu_s, reference_csms  # noqa: E402

from sim.config import Scenario, validate_data  # noqa: E402
from virtual_chargers.paced_run import PacedRun  # noqa: E402

SITES = 10
CHARGERS_PER_SITE = 20
DAY_RATE = [0.3, 0.1, 0.1, 0.1, 0.1, 0.3, 1.0, 2.5, 4.5, 5.5, 6.0, 6.0,
            6.0, 6.0, 6.0, 5.5, 6.5, 8.0, 8.5, 7.0, 5.0, 3.0, 1.5, 0.6]  # fmt: skip  # arrivals/h per site


def scenario(csms_url: str, speed: float, start: str, horizon_h: float) -> Scenario:
    """Ten sites of twenty 2 × 22 kW chargers, a working day's demand, the CSMS as manager."""
    sites = [
        {
            "id": f"s{k:02d}",
            "lat": 52.0 + k * 0.01,
            "lon": 5.0,
            "capacity_kw": 400.0,
            "chargers": [{"model": "ac_post_2x22", "count": CHARGERS_PER_SITE, "connectors": 2, "power_kw": 22.0,
                          "current": "ac"}],
        }
        for k in range(SITES)
    ]  # fmt: skip
    demand = [
        {
            "kind": "synthetic",
            "site": site["id"],
            "rate": {"kind": "daily", "per_hour": DAY_RATE},
            "arrival_soc_frac": {"dist": "beta", "a": 3, "b": 4},
            "target_soc_frac": {"dist": "uniform", "low": 0.8, "high": 1.0},
            "dwell_min": {"dist": "lognormal", "median": 150, "sigma": 0.6},
            "max_queue": 2,
        }
        for site in sites
    ]
    data: dict[str, Any] = {
        "name": "bench_paced",
        "seed": 7,
        "start": start,
        "horizon_days": horizon_h / 24.0,
        "network": {"sites": sites},
        "fleet": [{"preset": "tesla_model_3_lr", "share": 0.5}, {"preset": "renault_zoe_ze50", "share": 0.5}],
        "demand": demand,
        "tariff": {"currency": "EUR", "price_per_kwh": 0.59},
        "manager": {
            "kind": "ocpp",
            "csms": csms_url,
            "speed": speed,
            "response_timeout_s": 30,
            "meter_interval_s": 60,
        },
    }
    return validate_data(data, "bench/paced.py", Path("."))


def one_run(url: str, csms_pid: int, speed: float, start: str, horizon_h: float, show: bool) -> dict[str, Any]:
    """One paced run; print its figures when ``show``; return lag p99 and whether it fell behind."""
    s = scenario(url, speed, start, horizon_h)
    with tempfile.TemporaryDirectory(prefix="bench-paced-") as state:
        cpu0, csms0, wall0, load0 = cpu_s(), proc_cpu_s(csms_pid), time.perf_counter(), os.getloadavg()
        result = asyncio.run(PacedRun(s, state_dir=Path(state), boot_timeout_s=120.0).run())
        cpu, csms_cpu, wall = cpu_s() - cpu0, proc_cpu_s(csms_pid) - csms0, time.perf_counter() - wall0
        load1 = os.getloadavg()
    lag, qa = result.lag, result.qa or {}
    backend = (qa.get("backend_lag_sim_s") or {}).get("StartTransaction") or {}
    out = {"speed": speed, "lag_p99_s": float(lag["lag_p99_s"]), "warnings": int(lag["warnings"]),
           "start_p99_s": backend.get("p99", float("nan"))}  # fmt: skip
    if not show:
        return out
    ports = SITES * CHARGERS_PER_SITE * 2
    tx = qa.get("transactions", {})
    print(f"{SITES * CHARGERS_PER_SITE} chargers ({ports} ports), {horizon_h:g} simulated h at {speed:g}×: "
          f"{wall:.1f} s wall (run + boot + drain)")  # fmt: skip
    print(f"lag behind the wall clock: p50 {lag['lag_p50_s'] * 1000:.1f} ms, p99 {lag['lag_p99_s'] * 1000:.1f} ms, "
          f"max {lag['lag_max_s']:.3f} s over {lag['steps']:,} steps; "
          f"fell behind (> 1 s) {lag['warnings']} time(s)")  # fmt: skip
    if backend:
        print(f"backend lag StartTransaction (simulated s, request → answer): p50 {backend['p50']:.1f}, "
              f"p99 {backend['p99']:.1f}, max {backend['max']:.1f}")  # fmt: skip
    print(f"transactions started {tx.get('started', 0):,}, confirmed {tx.get('confirmed', 0):,}; "
          f"timeouts {sum(qa.get('timeouts', {}).values())}, drained {result.drained}")  # fmt: skip
    for action, q in qa.get("rtt_ms", {}).items():
        n = qa.get("sent", {}).get(action, 0)
        print(f"  CSMS RTT {action:<20} n={n:>7,}  p50 {q['p50']:6.1f}  p99 {q['p99']:6.1f}  max {q['max']:7.1f} ms")
    print(f"twin + chargers CPU {cpu:.1f} s = {cpu / wall:.0%} of one core; CSMS CPU {csms_cpu:.1f} s = "
          f"{csms_cpu / wall:.0%} of one core")  # fmt: skip
    print(f"machine load average (1/5/15 min) {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f} at the start, "
          f"{load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} at the end, {os.cpu_count()} cores")  # fmt: skip
    return out


def passes(r: dict[str, Any]) -> bool:
    """The target: lag p99 under one second."""
    return r["lag_p99_s"] < 1.0


def search(url: str, csms_pid: int, horizon_h: float, max_speed: float, steps: int) -> None:
    """Doubling speed-ups until lag p99 reaches 1 s, then bisection; bounded in runs and speed."""
    start = "2026-03-02T16:00:00+01:00"  # the evening peak
    tried: list[dict[str, Any]] = []

    def trial(speed: float) -> bool:
        r = one_run(url, csms_pid, speed, start, horizon_h, show=False)
        tried.append(r)
        print(f"  search {speed:7.0f}×: lag p99 {r['lag_p99_s'] * 1000:8.1f} ms, fell behind {r['warnings']} time(s), "
              f"StartTransaction answered after p99 {r['start_p99_s']:.0f} simulated s "
              f"-> {'pass' if passes(r) else 'fail'}", flush=True)  # fmt: skip
        return passes(r)

    good, bad, speed = 0.0, None, 60.0
    while speed <= max_speed:
        if not trial(speed):
            bad = speed
            break
        good, speed = speed, speed * 2
    if bad is not None and good > 0:
        for _ in range(steps):
            mid = round((good + bad) / 2)
            if trial(mid):
                good = mid
            else:
                bad = mid
    if good == 0:
        print("highest speed-up with lag p99 < 1 s: none (fails at 60×)")
    elif bad is None:
        print(f"highest speed-up with lag p99 < 1 s: ≥ {good:g}× (the search stops at --max-speed {max_speed:g})")
    else:
        print(f"highest speed-up with lag p99 < 1 s: {good:g}× (fails at {bad:g}×); {len(tried)} runs of "
              f"{horizon_h:g} simulated evening hours")  # fmt: skip


def main() -> None:
    """Start the CSMS in its own process, run the day, then the search."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two simulated hours and a short search")
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--no-day", action="store_true", help="the speed search only")
    parser.add_argument("--max-speed", type=float, default=61440.0)
    parser.add_argument("--search-steps", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with reference_csms("--cap", "7@17:00-20:00+01:00") as (url, csms_pid):
        if args.no_day:
            pass
        elif args.quick:
            one_run(url, csms_pid, args.speed, "2026-03-02T16:00:00+01:00", 2.0, show=True)
        else:
            one_run(url, csms_pid, args.speed, "2026-03-02T00:00:00+01:00", 24.0, show=True)
        if not args.no_search:
            search(url, csms_pid, 0.5 if args.quick else 2.0, 480.0 if args.quick else args.max_speed,
                   1 if args.quick else args.search_steps)  # fmt: skip


if __name__ == "__main__":
    main()
