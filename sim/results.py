"""The results folder: tables, KPIs, the resolved scenario and a manifest, written atomically.

Everything is written into a temporary folder beside the target and renamed into place
at the end, so an existing results folder is either left as it was or replaced whole.
When writing fails, what the run produced is kept: the tables written so far and the
recorded run (``run.pickle``) go to ``<out>.partial`` beside the target, and
`ResultsWriteError` says where.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import platform
import shutil
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sim import (
    degradation_metrics,
    ev_metrics,
    grid_metrics,
    metrics,
    phase_metrics,
    revenue_metrics,
    service_metrics,
    v2g_metrics,
)
from sim.engine import RunTables
from sim.outputs import check_folder, json_with_keys

__all__ = [
    "DEGRADATION_FILES",
    "EV_FILES",
    "PARTIAL_RUN_FILE",
    "RESULT_FILES",
    "SERVICE_FILES",
    "ResultsWriteError",
    "check_results_dir",
    "is_results_dir",
    "write_results",
]

RESULT_FILES = (
    "scenario.yaml",
    "manifest.json",
    "kpis.json",
    "sessions.parquet",
    "events.parquet",
    "load.parquet",
    "load_steps.parquet",
    "ports.parquet",
    "dr_events.parquet",
    "storage.parquet",
    "invoices.parquet",
    "tariffs.parquet",
)
SERVICE_FILES = ("outages.parquet", "uptime.parquet", "attempts.parquet", "visits.parquet", "crews.parquet")
EV_FILES = ("ev_sessions.parquet", "plug_attempts.parquet")
DEGRADATION_FILES = ("degradation.parquet",)
PARTIAL_RUN_FILE = "run.pickle"
_PACKAGES = ("chargetwin", "simpy", "mesa", "numpy", "pandas", "pyarrow", "pydantic")


class ResultsWriteError(RuntimeError):
    """Writing a results folder failed; the message says where what the run produced was kept."""

    def __init__(self, message: str, partial_dir: Path) -> None:
        """``partial_dir`` holds the tables written so far and the recorded run."""
        super().__init__(message)
        self.partial_dir = partial_dir


def _keep_partial(run: RunTables, out_dir: Path, tmp: Path, exc: Exception) -> ResultsWriteError:
    """Move what was written to ``<out>.partial`` with the recorded run, and say so."""
    partial = out_dir.parent / f"{out_dir.name}.partial"
    if partial.exists() and not (partial.is_dir() and (partial / "manifest.json").is_file()):
        partial = out_dir.parent / f"{out_dir.name}.partial-{os.getpid()}"  # that name holds something else
    shutil.rmtree(partial, ignore_errors=True)
    tmp.rename(partial)
    written = ", ".join(sorted(p.name for p in partial.iterdir())) or "none"
    kept = f"the tables written so far ({written}) and the recorded run"
    try:
        with (partial / PARTIAL_RUN_FILE).open("wb") as f:
            pickle.dump(run, f, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as pickle_exc:  # noqa: BLE001 - the first failure is the one to report
        kept = f"the tables written so far ({written}; the recorded run could not be kept: {pickle_exc!r})"
    else:
        kept += f" ({PARTIAL_RUN_FILE}: sim.results.write_results(pickle.load(f), OUT) writes the folder again)"
    message = (
        f"writing the results to {out_dir} failed: {type(exc).__name__}: {exc}; {out_dir} was not changed; "
        f"{kept} are in {partial}"
    )
    return ResultsWriteError(message, partial)


_MANIFEST_KEYS = ("scenario", "seed", "manager", "versions")


def is_results_dir(path: Path) -> bool:
    """`path` is a results folder chargetwin wrote: its manifest.json names the scenario, seed and versions."""
    return json_with_keys(Path(path) / "manifest.json", _MANIFEST_KEYS)


def check_results_dir(
    out_dir: Path, *, force: bool = False, inputs: Sequence[Path] = (), flag: str = "--out"
) -> list[Path]:
    """Raise `sim.outputs.OutputRefusedError` unless `out_dir` is new, empty or a results folder (see `check_folder`).

    Returns:
        What replacing it removes besides a previous run's results (non-empty only with `force`).
    """
    return check_folder(
        out_dir,
        owned=is_results_dir,
        what="a chargetwin results folder (it has no manifest.json of a run)",
        flag=flag,
        force=force,
        inputs=inputs,
    )


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# The 15-minute load columns read once load.parquet is written (dr_frame, metrics.kpis, grid_metrics.grid_kpis).
_LOAD_KPI_COLUMNS = ("site_id", "t_s", "power_kw", "grid_kw", "pv_kw", "limit_kw", "price_per_kwh")
_ROW_GROUP = 262_144  # rows converted to Arrow at a time: a year of sessions is never copied whole


def _write_parquet(df: Any, path: Path) -> None:
    schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for lo in range(0, max(len(df), 1), _ROW_GROUP):
            writer.write_table(pa.Table.from_pandas(df.iloc[lo : lo + _ROW_GROUP], schema=schema, preserve_index=False))


def _write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _write_service(run: RunTables, sessions: Any, tmp: Path) -> dict[str, Any]:
    """Write the serviceability tables and return their KPIs."""
    outages = service_metrics.outages_frame(run)
    uptime = service_metrics.uptime_frame(run, outages)
    attempts = service_metrics.attempts_frame(run)
    visits = service_metrics.visits_frame(run)
    crews = service_metrics.crews_frame(run)
    for name, df in (
        ("outages", outages),
        ("uptime", uptime),
        ("attempts", attempts),
        ("visits", visits),
        ("crews", crews),
    ):
        _write_parquet(df, tmp / f"{name}.parquet")
    return service_metrics.service_kpis(run, sessions, outages, uptime, attempts, visits, crews)


def _write_ev(run: RunTables, sessions: Any, tmp: Path) -> dict[str, Any]:
    """Write the EV-side tables and return their KPIs."""
    ev_sessions = ev_metrics.ev_sessions_frame(run)
    attempts = ev_metrics.plug_attempts_frame(run)
    _write_parquet(ev_sessions, tmp / "ev_sessions.parquet")
    _write_parquet(attempts, tmp / "plug_attempts.parquet")
    return ev_metrics.ev_kpis(run, sessions, ev_sessions, attempts)


def write_results(
    run: RunTables, out_dir: Path, finish: Callable[[Path], None] | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Write the results of `run` to `out_dir` and return its KPIs.

    Args:
        run: What `sim.engine.simulate` returned.
        out_dir: The results folder; replaced whole if it is a results folder already.
        finish: Called with the temporary folder once the tables are in it (e.g. to render
            the report), before the folder is moved into place.
        force: Also replace a folder that is not a results folder (see `check_results_dir`).

    Raises:
        sim.outputs.OutputRefusedError: `out_dir` holds something else; nothing was written.
    """
    out_dir = Path(out_dir)
    check_results_dir(out_dir, force=force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        scenario = run.scenario
        (tmp / "scenario.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        _write_json(
            {
                "scenario": scenario.name,
                "seed": scenario.seed,
                "start": scenario.start.isoformat(),
                "horizon_days": scenario.horizon_days,
                "manager": scenario.manager.kind,
                "versions": dict(_versions()),
            },
            tmp / "manifest.json",
        )
        # One table at a time, dropped once written, so peak memory stays near the largest table;
        # the largest (the 15-minute load) first, then only the load columns the KPIs read are kept.
        storage = grid_metrics.storage_frame(run)
        _write_parquet(storage, tmp / "storage.parquet")
        load = grid_metrics.with_grid_columns(run, metrics.load_15min(run), storage)
        _write_parquet(load, tmp / "load.parquet")
        load = load[list(_LOAD_KPI_COLUMNS)]
        _write_parquet(metrics.events_frame(run), tmp / "events.parquet")
        if metrics.discharges_of(run) is not None:  # V2G: only when a session discharged
            _write_parquet(v2g_metrics.discharges_frame(run), tmp / "discharges.parquet")
        steps = metrics.load_steps(run)
        _write_parquet(steps, tmp / "load_steps.parquet")
        peaks = metrics.peak_instant_kw(steps)
        dr = grid_metrics.dr_frame(run, steps, load)
        del steps
        _write_parquet(dr, tmp / "dr_events.parquet")
        sessions = metrics.sessions_frame(run)
        _write_parquet(sessions, tmp / "sessions.parquet")
        ports = metrics.ports_frame(run)
        _write_parquet(ports, tmp / "ports.parquet")
        k = metrics.kpis(run, sessions, ports, load, peaks)
        k["grid"] = grid_metrics.grid_kpis(run, load, sessions, dr, storage)
        phase_metrics.add_phase_kpis(run, k["grid"])  # sites with per-phase limits or single-phase chargers
        if run.service is not None:
            k["serviceability"] = _write_service(run, sessions, tmp)
        invoices = revenue_metrics.invoices_frame(run)
        _write_parquet(invoices, tmp / "invoices.parquet")
        _write_parquet(revenue_metrics.tariffs_frame(run), tmp / "tariffs.parquet")
        maintenance = k["serviceability"]["maintenance_cost"] if run.service is not None else 0.0
        v2g = v2g_metrics.v2g_kpis(run, load) if v2g_metrics.v2g_configured(scenario) else None
        k["revenue"] = revenue_metrics.revenue_kpis(run, sessions, invoices, ports, k["grid"], maintenance, v2g)
        if v2g is not None:
            k["v2g"] = v2g
        k["network"]["revenue"] = k["revenue"]["revenue"]  # sessions, memberships and payment fees together
        if run.ev is not None:
            k["ev_side"] = _write_ev(run, sessions, tmp)
        if scenario.degradation is not None:
            degradation = degradation_metrics.degradation_frame(run)
            _write_parquet(degradation, tmp / "degradation.parquet")
            v2g = k.get("v2g")  # with V2G KPIs, the drivers' pay for V2G is set beside its wear
            away = degradation_metrics.away_calendar(run)
            k["degradation"] = degradation_metrics.degradation_kpis(degradation, away, v2g["network"] if v2g else None)
            del degradation
        _write_json(k, tmp / "kpis.json")
        del sessions, load, ports, dr, storage, invoices  # the report reads the written tables
        if finish is not None:
            finish(tmp)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
    except Exception as exc:
        if not tmp.is_dir():
            raise
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)  # failed between the two renames: the earlier folder goes back
        raise _keep_partial(run, out_dir, tmp, exc) from exc
    except BaseException:
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)  # interrupted between the two renames: the previous results come back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:  # a signal while removing: finish, so no hidden folder stays behind
        shutil.rmtree(old, ignore_errors=True)
        raise
    return k
