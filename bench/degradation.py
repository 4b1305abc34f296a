"""Battery degradation after a run: its cost beside the run's own, on the throughput benchmark's network.

Runs the 1,000-port network of ``bench/throughput.py`` (uncontrolled) with a `degradation`
section, then times what the results writer adds for it: ``degradation_frame`` (every plugged-in
session's segments, profiles evaluated in closed form, vectorised) and the KPIs. Prints both
rates and the share; the target is that degradation adds at most 10 % to the simulation time.
Without the section nothing is computed.

    python bench/degradation.py [--days 60] [--sites 125]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import scenario  # noqa: E402

from sim import degradation_metrics  # noqa: E402
from sim.config.degradation import Degradation  # noqa: E402
from sim.engine import simulate  # noqa: E402

TARGET_SHARE = 0.10


def main() -> None:
    """Simulate once, compute the degradation tables and KPIs, print the rates and the share."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=60.0)
    ap.add_argument("--sites", type=int, default=125)
    args = ap.parse_args()
    sc = scenario(args.days, args.sites, "uncontrolled").model_copy(update={"degradation": Degradation()})
    t = time.process_time()
    run = simulate(sc)
    sim_s = time.process_time() - t
    t = time.process_time()
    frame = degradation_metrics.degradation_frame(run)
    degradation_metrics.degradation_kpis(frame, degradation_metrics.away_calendar(run))
    deg_s = time.process_time() - t
    n = len(run.sessions["session_id"])
    share = deg_s / sim_s
    print(f"network: {args.sites} sites, {args.days:g} days, {n:,} sessions, {len(frame):,} plugged in (CPU seconds)")
    print(f"{'simulate':<14}{sim_s:>8.2f} s{n / sim_s:>14,.0f} sessions/s")
    print(f"{'degradation':<14}{deg_s:>8.2f} s{n / deg_s:>14,.0f} sessions/s")
    verdict = "met" if share <= TARGET_SHARE else "MISSED"
    print(f"degradation adds {share:.1%} of the simulation time (target ≤ {TARGET_SHARE:.0%}): {verdict}")


if __name__ == "__main__":
    main()
