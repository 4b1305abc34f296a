"""Chaos benchmark: a chaos scenario (default: 500 chargers, 5 % loss and reordering) through the fault proxy.

The reference CSMS runs in its own process (``chargetwin csms``, sending a TxProfile on every transaction)
unless ``--csms URL`` is given; the chargers and the proxy share this one. Prints whether each invariant
held, the recovery time and the wall time, and fails (exit 1) beyond ``--limit-s`` (10 minutes by default).

    python bench/chaos.py [--scenario scenarios/chaos/loss_reorder.yaml] [--csms URL] [--limit-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from reference_csms import reference_csms

from virtual_chargers.conformance.chaos import load_chaos, run_chaos

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "chaos" / "loss_reorder.yaml")
    ap.add_argument("--csms", help="CSMS URL (default: the reference CSMS in its own process)")
    ap.add_argument("--limit-s", type=float, default=600.0)
    args = ap.parse_args()
    scenario = load_chaos(args.scenario)
    with contextlib.ExitStack() as stack:
        # A TxProfile right behind every StartTransaction answer: two frames back to back, which the
        # reordering fault can swap (OCPP-J allows one request in flight per side, so frames of one
        # connection rarely travel together otherwise).
        csms = ("--heartbeat-interval", "3600", "--cap", "11@00:00-23:59", "--cap-on", "transaction")
        url = args.csms or stack.enter_context(reference_csms(*csms))[0]
        t0 = time.monotonic()
        load0 = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as state:
            report = asyncio.run(asyncio.wait_for(run_chaos(scenario, url, Path(state), print), args.limit_s))
    wall_s = time.monotonic() - t0
    faults = scenario.faults.model_dump(exclude_defaults=True)
    print(f"scenario {scenario.name}: {scenario.chargers} chargers, faults {faults}")
    print(f"faults applied: {report['faults_applied']}")
    for name, r in report["invariants"].items():
        detail = {k: v for k, v in r.items() if k != "held" and not isinstance(v, list | dict)}
        print(f"{name}: {'held' if r['held'] else 'BROKEN'} {detail}")
    print(f"charger summary: {json.dumps(report['chargers_summary'])}")
    load1 = os.getloadavg()[0]
    print(f"boot {report['boot_s']} s; wall {wall_s:.1f} s (limit {args.limit_s:.0f} s)")
    print(f"load average {load0:.1f} -> {load1:.1f}")
    ok = report["held"] and wall_s <= args.limit_s
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
