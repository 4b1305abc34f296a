"""Sweep benchmark: the same 16-run sweep on 1 and 2 local worker processes and on a 2-worker Dask LocalCluster.

Each run is the highway corridor (scenarios/highway_corridor.yaml, equal_share) over
``--days`` days, a few seconds of work, so that starting the worker processes does not
dominate: 2 tariff variants × 8 replications. Every case starts from an empty output folder
(nothing reused) and is timed end to end, worker start-up included (``--dask-local`` starts
its LocalCluster inside the timing); a fourth case runs on a LocalCluster started beforehand,
as on a cluster that is already up. Prints runs per minute, the speed-up of 2 local workers
over 1, and the overhead of Dask against the local backend with the same number of workers;
and checks that the sweep tables are identical.

    python bench/sweep.py [--days 180] [--replications 8]

Targets: speed-up ≥ 1.7 with 2 workers on a 2-core machine; Dask overhead < 10 %.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask  # noqa: E402
from distributed import LocalCluster  # noqa: E402

from sim.sweep import load_sweep, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(folder: Path, days: float, replications: int) -> Path:
    """Write the benchmark's sweep file: 2 tariff variants of the corridor × `replications` seeds."""
    path = folder / "bench_sweep.yaml"
    spec = {
        "name": "bench",
        "base": str(ROOT / "scenarios" / "highway_corridor.yaml"),
        "replications": replications,
        "seeds": {"start": 1},
        "horizon_days": days,
        "parameters": {"tariff.price_per_kwh": [0.49, 0.69]},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def timed(path: Path, out: Path, **backend) -> tuple[float, bytes, float]:
    """Run the sweep into an empty `out`; wall seconds, the sweep.parquet bytes and the mean run seconds."""
    plan = load_sweep(path, out=out)
    started = time.perf_counter()
    result = run_sweep(plan, **backend)
    wall_s = time.perf_counter() - started
    if result.failed or result.reused:
        raise RuntimeError(f"{result.failed} runs failed, {result.reused} reused: the timing would be wrong")
    return wall_s, (out / "sweep.parquet").read_bytes(), float(result.timings["wall_s"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=180.0, help="horizon of each run")
    parser.add_argument("--replications", type=int, default=8, help="seeds per variant (2 variants)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chargetwin-bench-") as tmp:
        folder = Path(tmp)
        path = sweep_file(folder, args.days, args.replications)
        runs = 2 * args.replications
        cases = [
            ("local, 1 worker", {"workers": 1}),
            ("local, 2 workers", {"workers": 2}),
            ("dask LocalCluster, 2 workers", {"backend": "dask", "workers": 2}),
        ]
        results = {}
        print(f"{runs} runs: highway_corridor, equal_share, {args.days:g} days each")
        print(f"{'case':<34} {'wall s':>8} {'runs/min':>9} {'s per run':>10}")
        for name, backend in cases:
            wall_s, table, run_s = timed(path, folder / name.replace(" ", "_").replace(",", ""), **backend)
            results[name] = (wall_s, table)
            print(f"{name:<34} {wall_s:>8.1f} {runs / wall_s * 60:>9.1f} {run_s:>10.2f}")
        # as `DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False dask worker ...` (docs/guide/sweeps.md) and --dask-local
        with (
            dask.config.set({"distributed.worker.profile.enabled": False}),
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
            ) as cluster,
        ):
            name = "dask, running cluster, 2 workers"
            wall_s, table, run_s = timed(path, folder / "running", backend="dask", scheduler=cluster.scheduler_address)
            results[name] = (wall_s, table)
            print(f"{name:<34} {wall_s:>8.1f} {runs / wall_s * 60:>9.1f} {run_s:>10.2f}")
        one, two, dask_s = (results[name][0] for name, _ in cases)
        running = results["dask, running cluster, 2 workers"][0]
        print(f"speed-up, 2 local workers over 1: {one / two:.2f}x (target >= 1.7x)")
        print(f"Dask overhead against local with 2 workers: {(dask_s - two) / two:+.1%} with the LocalCluster start, ")
        print(f"  {(running - two) / two:+.1%} on a running cluster (target < 10 %)")
        same = len({table for _, table in results.values()}) == 1
        print(f"sweep.parquet identical in all cases: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
