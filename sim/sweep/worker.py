"""One run of a sweep, as a worker process executes it: simulate, write the results folder, mark it complete."""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.config import (
    validate_data,
)
from sim.sweep.plan import RunTask, _version

RUN_MARKER = "sweep_run.json"
"""Written into a run folder as its last file (inside the atomic rename): the run is complete."""


def flatten_kpis(kpis: Mapping[str, Any]) -> dict[str, float]:
    """KPI columns: ``network.``, ``sites.<id>.``, ``serviceability.``, ``revenue.``, ``degradation.``, ``ev_side.``.

    Only numbers (and None, as NaN) are kept; nested tables such as the serviceability
    fault modes or the EV side's pairs and sites are left to the run's own files.
    """

    def scalar(value: Any) -> bool:
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))

    out: dict[str, float] = {}
    for name, value in kpis.get("network", {}).items():
        if scalar(value):
            out[f"network.{name}"] = math.nan if value is None else float(value)
    for site_id, site in kpis.get("sites", {}).items():
        for name, value in site.items():
            if scalar(value):
                out[f"sites.{site_id}.{name}"] = math.nan if value is None else float(value)
    for section in ("serviceability", "revenue", "degradation"):
        for name, value in (kpis.get(section) or {}).items():
            if scalar(value):
                out[f"{section}.{name}"] = math.nan if value is None else float(value)
    for name, value in (kpis.get("ev_side") or {}).get("network", {}).items():
        if scalar(value):
            out[f"ev_side.{name}"] = math.nan if value is None else float(value)
    return out


def execute_run(task: RunTask) -> dict[str, Any]:
    """Run one task and write its results folder; never raises.

    Returns:
        ``{"kpis": {column: value} or None, "error": text or None, "wall_s": seconds}``.
    """
    from sim.engine import simulate
    from sim.results import write_results

    t0 = time.perf_counter()
    run_dir = Path(task.run_dir)
    try:
        if _version() != task.version:
            raise RuntimeError(
                f"this worker has chargetwin {_version()}, the sweep was planned with {task.version}; "
                "install the same version on every worker"
            )
        scenario = validate_data(task.scenario, task.name, Path(task.base_dir))

        def finish(tmp: Path) -> None:
            if task.finish is not None:
                task.finish(tmp)
            marker = {
                "key": task.key,
                "variant": task.variant,
                "replication": task.replication,
                "seed": task.seed,
                "version": task.version,
                "wall_s": time.perf_counter() - t0,
            }
            (tmp / RUN_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

        kpis = write_results(simulate(scenario), run_dir, finish=finish, force=True)  # runs/ is the sweep's own
        return {"kpis": flatten_kpis(kpis), "error": None, "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # a failing run is recorded, and the sweep goes on
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return {"kpis": None, "error": f"{type(exc).__name__}: {exc}", "wall_s": time.perf_counter() - t0}


def _reused(task: RunTask) -> dict[str, Any] | None:
    """The outcome of a run already complete on disk with the same key, else None."""
    run_dir = Path(task.run_dir)
    try:
        marker = json.loads((run_dir / RUN_MARKER).read_text(encoding="utf-8"))
        if marker.get("key") != task.key:
            return None
        kpis = json.loads((run_dir / "kpis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {"kpis": flatten_kpis(kpis), "error": None, "wall_s": float(marker.get("wall_s", math.nan))}
