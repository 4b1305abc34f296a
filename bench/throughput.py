"""Throughput benchmark: a 1,000-port network for 365 days (about 1.5 million sessions).

Prints, per manager (``+faults``: with the serviceability model at field failure rates),
sessions simulated per wall-clock second and per CPU second (the CPU figure is steadier on a
shared machine), the time to write the results folder (without the report), and the peak memory
of the process; the same rates for a bare SimPy loop over the same arrivals (the ceiling), with
our rate as a share of it, per wall-clock second (what the target judges) and per CPU second
(what a busy machine disturbs least); and then every target beside its measured figure, met or
MISSED.

    python bench/throughput.py [--days 365] [--sites 125] [--managers uncontrolled,equal_share]

Each case runs in a fresh process so peak memory is its own. Targets are judged at the full
size (365 days, 125 sites); a shorter run prints them as indicative.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.config import Scenario, validate_data  # noqa: E402
from sim.demand import fleet_models, generate  # noqa: E402

PORTS_PER_SITE = 8
SMART = ("equal_share", "least_laxity_first", "price_responsive")
# (case, what is measured, at least / at most, value): the targets docs/benchmarks.md states.
TARGETS = (
    ("uncontrolled", "sessions/s", ">=", 40_000),
    ("uncontrolled", "of ceiling", ">=", 0.30),
    ("equal_share", "sessions/s", ">=", 10_000),
    ("least_laxity_first", "sessions/s", ">=", 5_000),
    ("price_responsive", "sessions/s", ">=", 5_000),
    ("*", "peak RSS", "<=", 1_500),
    ("uncontrolled+faults", "slower than without faults", "<=", 0.20),
)


SERVICEABILITY = {  # preset fault modes at their field rates, five crews of two
    "hardware": {
        "ac22": ["software_hang", "communication_loss", "payment_terminal_failure", "connector_damage",
                 "display_failure"],
        "dc150": ["software_hang", "communication_loss", "payment_terminal_failure", "power_module_failure",
                  "connector_damage", "ground_fault_trip", "high_temperature", "display_failure"],
    },
    "crews": [{"id": f"crew{k}", "technicians": 2, "depot": {"lat": 50.0 + k * 0.25, "lon": 8.0}} for k in range(5)],
    "grid_outages": {"per_site_per_year": 1.0},
    "vandalism": {"per_charger_per_year": 0.1},
    "firmware": {"interval_days": 90},
}  # fmt: skip


def scenario(days: float, sites: int, manager: str) -> Scenario:
    """125 sites × 8 ports: 3 AC posts with 2 × 11 kW and a 150 kW DC charger with 2 shared connectors.

    A manager name ending in ``+faults`` adds the serviceability model.
    """
    manager, _, faults = manager.partition("+")
    profile = [
        0.3,
        0.2,
        0.15,
        0.15,
        0.2,
        0.5,
        1.0,
        1.6,
        1.9,
        1.8,
        1.7,
        1.8,
        1.9,
        1.9,
        1.8,
        1.8,
        2.0,
        2.2,
        2.1,
        1.8,
        1.5,
        1.1,
        0.8,
        0.5,
    ]  # ×1.07: mean 1.47 arrivals per hour per site, ~12,900 sessions a year
    data = {
        "name": "bench",
        "seed": 1,
        "start": "2026-01-05T00:00:00+01:00",
        "timezone": "Europe/Berlin",  # wall-clock rules follow daylight saving, as a real run would
        "horizon_days": days,
        "network": {
            "sites": [
                {
                    "id": f"s{i:04d}",
                    "lat": 50 + i * 0.01,
                    "lon": 8.0,
                    "capacity_kw": 180.0,
                    "chargers": [
                        {"model": "ac22", "count": 3, "connectors": 2, "power_kw": 11.0, "current": "ac"},
                        {
                            "model": "dc150",
                            "count": 1,
                            "connectors": 2,
                            "power_kw": 150.0,
                            "current": "dc",
                            "shared": True,
                        },
                    ],
                }
                for i in range(sites)
            ]
        },
        "fleet": [
            {"preset": p, "share": w}
            for p, w in [
                ("tesla_model_3_lr", 3),
                ("hyundai_ioniq_5_lr", 2),
                ("vw_id4_pro", 2),
                ("nissan_leaf_40", 1),
                ("chevrolet_bolt_ev", 1),
                ("renault_zoe_ze50", 1),
            ]
        ],
        "demand": [
            {
                "kind": "synthetic",
                "site": f"s{i:04d}",
                "rate": {"kind": "daily", "per_hour": [r * 1.07 for r in profile]},
                "arrival_soc_frac": {"dist": "beta", "a": 2, "b": 5},
                "dwell_min": {"dist": "lognormal", "median": 60, "sigma": 0.6},
                "patience_min": 10,
                "max_queue": 2,
            }
            for i in range(sites)
        ],
        "tariff": {"price_per_kwh": 0.49, "session_fee": 0.5},
        "manager": {"kind": manager, **({"target_kw": 150.0} if manager == "peak_shaving" else {})},
    }
    if faults:
        data["serviceability"] = SERVICEABILITY
    return validate_data(data, "bench", Path("."))


def _bare(days: float, sites: int, out: mp.Queue) -> None:
    """The ceiling: a SimPy process per site yielding arrivals, a process per session holding its dwell."""
    s = scenario(days, sites, "uncontrolled")
    arrivals = generate(s, fleet_models(s))
    env = simpy.Environment()

    def session(dwell_s: float):  # noqa: ANN202
        yield env.timeout(dwell_s)

    def site(t: list[float], dwell: list[float]):  # noqa: ANN202
        for t_s, d in zip(t, dwell, strict=True):
            yield env.timeout(t_s - env.now)
            env.process(session(d))

    n = 0
    for a in arrivals.values():
        env.process(site(a.t_s.tolist(), a.dwell_s.tolist()))
        n += len(a)
    t0, cpu0 = time.perf_counter(), time.process_time()
    env.run(until=s.horizon_s)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    out.put(("bare simpy", n, wall_s, cpu_s, 0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _case(days: float, sites: int, manager: str, out: mp.Queue) -> None:
    import tempfile

    from sim.engine import simulate
    from sim.results import write_results

    cpu0 = time.process_time()
    run = simulate(scenario(days, sites, manager))
    cpu_s = time.process_time() - cpu0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_results(run, Path(tmp) / "out")
    tables_s = time.perf_counter() - t0
    n = len(run.sessions["session_id"])
    out.put((manager, n, run.wall_s, cpu_s, tables_s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _figures(results: list[tuple]) -> dict[str, dict[str, float]]:
    """Per case: what each target measures."""
    ceiling = results[0][1] / results[0][2]
    rates = {name: n / wall_s for name, n, wall_s, *_ in results}
    figures = {}
    for name, n, wall_s, _cpu_s, _tables_s, rss_kb in results[1:]:
        f = {"sessions/s": n / wall_s, "of ceiling": n / wall_s / ceiling, "peak RSS": rss_kb / 1024}
        base = rates.get(name.partition("+")[0]) if "+" in name else None
        if base:
            f["slower than without faults"] = 1 - n / wall_s / base
        figures[name] = f
    return figures


def _format(what: str, value: float) -> str:
    if what == "sessions/s":
        return f"{value:,.0f}"
    if what == "peak RSS":
        return f"{value:,.0f} MB"
    return f"{value:.1%}"


def check_targets(figures: dict[str, dict[str, float]], ceiling: float | None = None) -> list[str]:
    """Print each target beside its measured figure; return the missed ones.

    `ceiling` (sessions/s of the bare SimPy loop) is printed beside the share of it.
    """
    missed = []
    print(f"\n{'target':<60}{'measured':>12}  verdict")
    for case, what, op, value in TARGETS:
        shown = f"of the bare SimPy ceiling ({ceiling:,.0f}/s)" if what == "of ceiling" and ceiling else what
        for name in sorted(figures) if case == "*" else [case]:
            label = f"{name}: {shown} {op.replace('>=', '≥').replace('<=', '≤')} {_format(what, value)}"
            if name not in figures or what not in figures[name]:
                print(f"{label:<60}{'not run':>12}")
                continue
            got = figures[name][what]
            ok = got >= value if op == ">=" else got <= value
            print(f"{label:<60}{_format(what, got):>12}  {'met' if ok else 'MISSED'}")
            if not ok:
                missed.append(label)
    return missed


def main() -> None:
    """Run every case in its own process, print a table and the targets, met or missed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--sites", type=int, default=125)
    ap.add_argument("--managers", default=",".join(("uncontrolled", *SMART, "uncontrolled+faults")))
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    results = []
    cases = [(_bare, ())] + [(_case, (m,)) for m in args.managers.split(",")]
    for fn, extra in cases:
        q = ctx.Queue()
        p = ctx.Process(target=fn, args=(args.days, args.sites, *extra, q))
        p.start()
        results.append(q.get())
        p.join()
    print(
        f"network: {args.sites} sites × {PORTS_PER_SITE} ports = {args.sites * PORTS_PER_SITE} ports, "
        f"{args.days:g} days; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min)"
    )
    ceiling = results[0][1] / results[0][2]
    ceiling_cpu = results[0][1] / results[0][3]
    print(
        f"{'case':<22}{'sessions':>11}{'sim s':>9}{'sessions/s':>12}{'per CPU s':>11}{'of ceiling':>12}"
        f"{'(per CPU s)':>13}{'write s':>10}{'peak RSS':>11}"
    )
    for name, n, wall_s, cpu_s, tables_s, rss_kb in results:
        rate = n / wall_s
        print(
            f"{name:<22}{n:>11,}{wall_s:>9.1f}{rate:>12,.0f}{n / cpu_s:>11,.0f}{rate / ceiling:>12.1%}"
            f"{n / cpu_s / ceiling_cpu:>13.1%}{tables_s:>10.1f}{rss_kb / 1024:>9,.0f} MB"
        )
    missed = check_targets(_figures(results), ceiling)
    full = args.days >= 365 and args.sites >= 125
    scope = "" if full else " (indicative: targets are set for 365 days × 125 sites)"
    print(f"\ntargets missed{scope}: {len(missed)}" + "".join(f"\n  MISSED {m}" for m in missed))


if __name__ == "__main__":
    main()
