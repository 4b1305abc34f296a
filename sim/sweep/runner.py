"""Running a sweep: reuse complete runs, execute the rest on a backend, write sweep.parquet and timings."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.outputs import check_folder, json_with_keys, write_text_atomic
from sim.sweep.backends import _dask, _local
from sim.sweep.plan import RunTask, SweepPlan, _version
from sim.sweep.spec import SweepError
from sim.sweep.worker import _reused


@dataclass(frozen=True)
class SweepProgress:
    """How far a sweep is: runs done (reused included), failed, of the total."""

    total: int
    done: int
    failed: int
    reused: int

    @property
    def finished(self) -> int:
        """Runs done or failed."""
        return self.done + self.failed


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced: the table of sweep.parquet, the timings and the counts."""

    plan: SweepPlan
    table: pd.DataFrame
    timings: pd.DataFrame
    out_dir: Path
    done: int
    failed: int
    reused: int


def _column(values: Sequence[Any]) -> pd.Series:
    """A parameter column with one type: bool, int, float or text (JSON for anything else)."""
    if all(isinstance(v, bool) for v in values):
        return pd.Series(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pd.Series(values, dtype="int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pd.Series(values, dtype="float64")
    if all(isinstance(v, str) for v in values):
        return pd.Series(values, dtype=object)
    return pd.Series([json.dumps(v, sort_keys=True) for v in values], dtype=object)


def _table(plan: SweepPlan, tasks: Sequence[RunTask], outcomes: Sequence[dict[str, Any]]) -> pd.DataFrame:
    variants = {v.id: v for v in plan.variants}
    frame: dict[str, Any] = {
        "variant": pd.Series([t.variant for t in tasks], dtype=object),
        "label": pd.Series([variants[t.variant].label for t in tasks], dtype=object),
        "replication": pd.Series([t.replication for t in tasks], dtype="int64"),
        "seed": pd.Series([t.seed for t in tasks], dtype="int64"),
        "run_dir": pd.Series([Path(t.run_dir).relative_to(plan.out_dir).as_posix() for t in tasks], dtype=object),
        "key": pd.Series([t.key for t in tasks], dtype=object),
    }
    for param in dict.fromkeys(p for v in plan.variants for p in v.values):
        frame[f"param.{param}"] = _column([variants[t.variant].values.get(param) for t in tasks])
    frame["error"] = pd.Series([o["error"] for o in outcomes], dtype=object)
    columns = dict.fromkeys(c for o in outcomes if o["kpis"] for c in o["kpis"])
    for column in columns:
        frame[column] = pd.Series([(o["kpis"] or {}).get(column, math.nan) for o in outcomes], dtype="float64")
    return pd.DataFrame(frame)


def _write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp, compression="zstd")
    tmp.replace(path)


def _remove_stale(runs_dir: Path) -> None:
    """Temporary folders of runs killed while writing (one sweep per output folder at a time)."""
    for stale in runs_dir.glob(".*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in runs_dir.glob(".*.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


def is_sweep_dir(path: Path) -> bool:
    """`path` is a sweep folder chargetwin wrote: its sweep.json names the sweep and its variants."""
    return json_with_keys(Path(path) / "sweep.json", ("sweep", "variants", "seeds"))


def check_sweep_dir(out_dir: Path, *, force: bool = False, inputs: Sequence[Path] = ()) -> list[Path]:
    """Raise `sim.outputs.OutputRefusedError` unless `out_dir` is new, empty or a sweep folder (see `check_folder`).

    Returns:
        What a forced run removes first (non-empty only with `force`).
    """
    return check_folder(
        out_dir, owned=is_sweep_dir, what="a chargetwin sweep folder (it has no sweep.json)", force=force, inputs=inputs
    )


def run_sweep(
    plan: SweepPlan,
    *,
    backend: Literal["local", "dask"] = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    finish: Callable[[Path], object] | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
    force: bool = False,
) -> SweepResult:
    """Run every run of `plan` not already complete on disk, and write sweep.parquet.

    Args:
        plan: What `load_sweep` or `plan_sweep` returned.
        backend: ``local`` (a pool of processes) or ``dask``.
        workers: Local processes, or LocalCluster workers for ``dask`` without `scheduler`;
            default the number of cores.
        scheduler: Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``
            (``backend="dask"`` only).
        finish: Called in the worker on each new results folder before it is moved into
            place, e.g. ``reports.render`` for a report per run; must be picklable.
        progress: Called with the counts once at the start and after every run.
        force: Use an output folder that is not a sweep folder, removing what it holds first.

    Raises:
        sim.outputs.OutputRefusedError: the output folder holds something else (without `force`).

    Returns:
        The sweep table (also in ``<out>/sweep.parquet``), timings and counts.
    """
    if scheduler is not None and backend != "dask":
        raise SweepError(["a scheduler address needs the dask backend"])
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise SweepError([f"workers(={workers}) must be >= 1"])
    for entry in check_sweep_dir(plan.out_dir, force=force, inputs=[plan.base_path]):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    runs_dir = plan.out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(plan)  # first, so a sweep stopped halfway is still recognised as one and resumed
    _remove_stale(runs_dir)
    tasks = plan.tasks(finish)
    outcomes: dict[int, dict[str, Any]] = {}
    reused: set[int] = set()
    for i, task in enumerate(tasks):
        found = _reused(task)
        if found is not None:
            outcomes[i] = found
            reused.add(i)
    pending = [(i, task) for i, task in enumerate(tasks) if i not in outcomes]
    failed = 0

    def report() -> None:
        if progress is not None:
            progress(SweepProgress(len(tasks), len(outcomes) - failed, failed, len(reused)))

    report()
    if pending:
        count = min(workers, len(pending))
        stream: Iterable[tuple[int, dict[str, Any]]]
        if backend == "dask":
            stream = _dask(pending, count if scheduler is None else workers, scheduler)
        else:
            stream = _local(pending, count)
        with contextlib.closing(iter(stream)) as finished:  # type: ignore[type-var]
            for i, outcome in finished:
                outcomes[i] = outcome
                failed += outcome["error"] is not None
                report()
    ordered = [outcomes[i] for i in range(len(tasks))]
    table = _table(plan, tasks, ordered)
    timings = pd.DataFrame(
        {
            "variant": [t.variant for t in tasks],
            "replication": [t.replication for t in tasks],
            "wall_s": [o["wall_s"] for o in ordered],
            "reused": [i in reused for i in range(len(tasks))],
            "backend": backend,
        }
    )
    _write_parquet_atomic(table, plan.out_dir / "sweep.parquet")
    _write_parquet_atomic(timings, plan.out_dir / "timings.parquet")
    _write_manifest(plan)
    return SweepResult(plan, table, timings, plan.out_dir, len(tasks) - failed, failed, len(reused))


def _write_manifest(plan: SweepPlan) -> None:
    manifest = {
        "sweep": plan.spec.name,
        "source": plan.source,
        "base": str(plan.base_path),
        "seeds": list(plan.seeds),
        "version": _version(),
        "variants": [
            {"id": v.id, "label": v.label, "values": {p: _jsonable(x) for p, x in v.values.items()}}
            for v in plan.variants
        ],
    }
    write_text_atomic(plan.out_dir / "sweep.json", json.dumps(manifest, indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
