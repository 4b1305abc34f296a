"""Replications and parameter sweeps, on local processes or a Dask cluster, and their statistics.

A sweep file names a base scenario, the parameters to vary (dotted YAML paths with lists of
values, or ranges sampled at random or by Latin hypercube), the replications per variant and
their seeds. Replication r of every variant runs with the same seed (common random numbers),
so two variants differ by the variant, not by the luck of the draw, and can be compared pair
by pair. Every variant is validated before any run starts.

Each run writes its own results folder, ``<out>/runs/v003_r02/``, with a small
``sweep_run.json`` whose key (a hash of the resolved scenario, the seed and the chargetwin
version) marks the run complete: a rerun of the sweep reuses those runs, so an interrupted
sweep resumes where it stopped. ``sweep.parquet`` holds one row per run, in variant and
replication order whatever the backend: its parameters, its flattened KPIs and the error of a
failed run. Wall times go to ``timings.parquet``, so ``sweep.parquet`` is the same, byte for
byte, on every backend and after a resume.

The package follows those steps, one module each: `spec` (the sweep file), `paths` (dotted YAML
paths), `plan` (variants and run tasks), `worker` (one run), `backends` (local processes, Dask),
`runner` (`run_sweep` and its tables) and `stats` (intervals and paired differences).
"""

from sim.sweep.paths import parse_path, set_path
from sim.sweep.plan import RunTask, SweepPlan, Variant, load_sweep, plan_sweep, run_key
from sim.sweep.runner import SweepProgress, SweepResult, check_sweep_dir, is_sweep_dir, run_sweep
from sim.sweep.spec import SampleSpec, Seeds, SweepError, SweepSpec, latin_hypercube
from sim.sweep.stats import default_kpis, paired_difference, report_kpis, summarize, variants_meeting
from sim.sweep.worker import RUN_MARKER, execute_run, flatten_kpis

__all__ = [
    "RUN_MARKER",
    "RunTask",
    "SampleSpec",
    "Seeds",
    "SweepError",
    "SweepPlan",
    "SweepProgress",
    "SweepResult",
    "SweepSpec",
    "Variant",
    "check_sweep_dir",
    "default_kpis",
    "execute_run",
    "flatten_kpis",
    "is_sweep_dir",
    "latin_hypercube",
    "load_sweep",
    "paired_difference",
    "parse_path",
    "plan_sweep",
    "report_kpis",
    "run_key",
    "run_sweep",
    "set_path",
    "summarize",
    "variants_meeting",
]
