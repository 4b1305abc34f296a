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
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sim.config import (
    Scenario,
    ScenarioError,
    YamlLoader,
    load_scenario,
    read_yaml_text,
    validate_data,
    yaml_line,
)
from sim.config.base import StrictModel
from sim.outputs import check_folder, json_with_keys, write_text_atomic

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

RUN_MARKER = "sweep_run.json"
"""Written into a run folder as its last file (inside the atomic rename): the run is complete."""
_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")
_REPORT_KPIS = (
    "network.sessions_served",
    "network.wait_all_mean_s",
    "network.energy_delivered_kwh",
    "network.peak_kw",
    "network.revenue",
    "revenue.margin",
    "serviceability.port_uptime_mean_pct",
)


class SweepError(ScenarioError):
    """A sweep that cannot be run; `problems` holds one line per problem, nothing has run."""


# ---------------------------------------------------------------- dotted paths


def parse_path(path: str) -> list[str | int]:
    """Split ``network.sites[0].capacity_kw`` into ``["network", "sites", 0, "capacity_kw"]``.

    Raises:
        ValueError: the path is not dotted keys with optional ``[i]`` list indices.
    """
    keys: list[str | int] = []
    for part in path.split("."):
        match = _PATH_PART.match(part)
        if match is None:
            raise ValueError(
                f"{path!r} is not a dotted YAML path; write keys joined by dots with [i] for list items, "
                "e.g. network.sites[0].capacity_kw"
            )
        keys.append(match.group(1))
        keys += [int(i) for i in _INDEX.findall(match.group(2))]
    return keys


def _path_text(keys: Sequence[str | int]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def set_path(data: Any, path: str, value: Any) -> None:
    """Set the value at dotted `path` in parsed YAML `data`, in place.

    Missing mapping keys are created (the scenario validation then judges them); list items
    must exist.

    Raises:
        ValueError: the path is malformed or walks into a missing list item or a scalar.
    """
    keys = parse_path(path)
    node = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = _path_text(keys[:depth]) or "the top level"
        if isinstance(key, int):
            if not isinstance(node, list):
                raise ValueError(f"{path}: {where} is not a list, so [{key}] does not exist")
            if key >= len(node):
                raise ValueError(f"{path}: {where} has {len(node)} item(s), so [{key}] does not exist")
        elif not isinstance(node, dict):
            raise ValueError(f"{path}: {where} is not a mapping, so it has no key {key!r}")
        elif not last and key not in node:
            if isinstance(keys[depth + 1], int):
                raise ValueError(f"{path}: the base scenario has no list {_path_text(keys[: depth + 1])}")
            node[key] = {}
        if last:
            node[key] = copy.deepcopy(value)
        else:
            node = node[key]


# ---------------------------------------------------------------- the sweep file


class Seeds(StrictModel):
    """Seeds of the replications: consecutive from ``start``, or listed (``seeds: [3, 8, 21]`` in YAML)."""

    start: int | None = Field(default=None, ge=0, description="replication r runs with seed start + r")
    values: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, description="one seed per replication")

    @model_validator(mode="after")
    def _one_kind(self) -> Seeds:
        if (self.start is None) == (self.values is None):
            raise ValueError("give seeds as {start: N} or as a list of seeds, e.g. [1, 2, 3]")
        if self.values is not None and len(set(self.values)) < len(self.values):
            raise ValueError("seeds repeat; every replication needs its own seed")
        return self


class SampleSpec(StrictModel):
    """Variants drawn from ranges, uniformly at random or by Latin hypercube."""

    method: Literal["random", "latin_hypercube"]
    n: int = Field(ge=1, le=100_000, description="number of sampled variants")
    seed: int = Field(default=0, ge=0, description="seed of the sampling, not of the runs")
    ranges: dict[str, tuple[float, float]] = Field(min_length=1, description="dotted path → [low, high]")

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for path, (low, high) in ranges.items():
            parse_path(path)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"{path}: give [low, high] with low < high (got [{low}, {high}])")
        return ranges


class SweepSpec(StrictModel):
    """A sweep file: a base scenario, what to vary, how many replications and which seeds."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="also the default output folder out/sweeps/<name>")
    base: Path = Field(description="the base scenario, relative to the sweep file")
    out: Path | None = Field(default=None, description="output folder, relative to the sweep file")
    replications: int | None = Field(default=None, ge=1, le=100_000, description="runs per variant; default 1")
    seeds: Seeds = Field(
        default=Seeds(start=1), description="{start: N} for N, N+1, ... or a list of seeds, one per replication"
    )
    horizon_days: float | None = Field(default=None, gt=0, le=3660, description="overrides the base horizon")
    parameters: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="dotted path → values; every combination is a variant (full factorial)"
    )
    sample: SampleSpec | None = Field(default=None, description="sampled variants, crossed with the parameter grid")
    compare: tuple[str, str] | None = Field(default=None, description="two variants (id, label or unique part)")
    report_kpis: list[str] | None = Field(default=None, description="KPI columns plotted in the sweep report")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, seeds: Any) -> Any:
        return {"values": seeds} if isinstance(seeds, list) else seeds

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, parameters: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in parameters.items():
            parse_path(path)
            texts = [json.dumps(v, sort_keys=True, default=str) for v in values]
            if len(set(texts)) < len(texts):
                raise ValueError(f"{path}: a value is listed twice; every value makes its own variants")
        return parameters

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        varied = list(self.parameters) + (list(self.sample.ranges) if self.sample else [])
        if "seed" in varied:
            raise ValueError("seed cannot be a parameter: replications set it (seeds:), the same for every variant")
        if len(set(varied)) < len(varied):
            raise ValueError("a path is both in parameters and in sample.ranges; vary it in one place")
        listed = self.seeds.values
        if listed is not None and self.replications is not None and self.replications != len(listed):
            raise ValueError(
                f"replications is {self.replications} but {len(listed)} seeds are listed; "
                "give one seed per replication or drop replications"
            )
        return self

    def seed_list(self) -> list[int]:
        """The seed of each replication, shared by every variant."""
        if self.seeds.values is not None:
            return list(self.seeds.values)
        assert self.seeds.start is not None
        return [self.seeds.start + r for r in range(self.replications or 1)]


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points in the unit cube ``[0, 1)^dims`` with exactly one point in each of n strata per axis."""
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1) if dims else np.empty((n, 0))
    return (strata + rng.random((n, dims))) / n


def _samples(sample: SampleSpec | None) -> list[dict[str, float]]:
    if sample is None:
        return [{}]
    rng = np.random.default_rng(sample.seed)
    paths = list(sample.ranges)
    if sample.method == "latin_hypercube":
        unit = latin_hypercube(sample.n, len(paths), rng)
    else:
        unit = rng.random((sample.n, len(paths)))
    low = np.array([sample.ranges[p][0] for p in paths])
    high = np.array([sample.ranges[p][1] for p in paths])
    points = low + unit * (high - low)
    return [{p: float(v) for p, v in zip(paths, row, strict=True)} for row in points]


# ---------------------------------------------------------------- reading YAML with lines


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parsed data and node tree of a YAML file; SweepError on unreadable, invalid or repeated keys."""
    try:
        text = read_yaml_text(path, "sweep file")
    except ScenarioError as exc:
        raise SweepError(exc.problems) from None
    try:
        root = yaml.compose(text, Loader=YamlLoader)
        data = yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SweepError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    repeated = list(_repeated_keys(root))
    if repeated:
        raise SweepError([f"{path}:{line}: key {key!r} is given twice" for key, line in repeated])
    return data, root


def _repeated_keys(node: yaml.Node | None) -> Iterator[tuple[str, int]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                yield key.value, key.start_mark.line + 1
            seen.add(key.value)
            yield from _repeated_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _repeated_keys(item)


def _error_keys(data: Any, loc: Sequence[Any]) -> list[Any]:
    """The YAML keys of a pydantic error location, without the names of union members."""
    keys, node = [], data
    for i, part in enumerate(loc):
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_mapping or in_list:
            keys.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            keys.append(part)  # a missing key
        # else: a union member's name ("SeedsFrom", "list[int]"), not a YAML key
    return keys


def _keys_text(keys: Sequence[Any]) -> str:
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(key)):
            text += f".{key}" if text else str(key)
        else:
            text += f"[{str(key)!r}]"
    return text or "(top level)"


def _spec_problems(exc: ValidationError, data: Any, source: str, root: yaml.Node | None) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        keys = _error_keys(data, tuple(err["loc"]))
        line = yaml_line(root, keys)
        where = f"{source}:{line}" if line else source
        if err["type"] == "extra_forbidden":
            msg = "unknown key; a sweep file has name, base, out, replications, seeds, horizon_days, parameters, "
            msg += "sample, compare, report_kpis"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {_keys_text(keys)}: {msg}")
    return problems


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class Variant:
    """One combination of parameter values, validated as a scenario."""

    id: str
    label: str
    values: Mapping[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class RunTask:
    """One run as plain data, sent to a worker process or a Dask worker."""

    variant: str
    replication: int
    seed: int
    scenario: dict[str, Any]
    base_dir: str
    run_dir: str
    key: str
    version: str
    finish: Callable[[Path], object] | None = None

    @property
    def name(self) -> str:
        """The run folder's name, e.g. ``v003_r02``."""
        return Path(self.run_dir).name


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: its variants, seeds and output folder; nothing has run yet."""

    spec: SweepSpec
    source: str
    base_path: Path
    out_dir: Path
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]

    @property
    def run_count(self) -> int:
        """Variants × replications."""
        return len(self.variants) * len(self.seeds)

    def variant(self, name: str) -> Variant:
        """The variant named by its id (``v001``), its label, or a part of its label only it has.

        Raises:
            SweepError: no variant, or more than one, matches.
        """
        found = _find_variant([(v.id, v.label) for v in self.variants], name)
        return next(v for v in self.variants if v.id == found)

    def tasks(self, finish: Callable[[Path], object] | None = None) -> list[RunTask]:
        """Every run in variant-then-replication order; `finish` is called on each results folder."""
        version = _version()
        width = max(2, len(str(len(self.seeds) - 1)))
        runs = []
        for variant in self.variants:
            for r, seed in enumerate(self.seeds):
                data = variant.scenario.model_copy(update={"seed": seed}).model_dump(mode="json")
                runs.append(
                    RunTask(
                        variant.id,
                        r,
                        seed,
                        data,
                        str(self.base_path.parent),
                        str(self.out_dir / "runs" / f"{variant.id}_r{r:0{width}d}"),
                        run_key(data, seed, version),
                        version,
                        finish,
                    )
                )
        return runs


def _version() -> str:
    try:
        return metadata.version("chargetwin")
    except metadata.PackageNotFoundError:
        return "unknown"


def run_key(scenario: Mapping[str, Any], seed: int, version: str) -> str:
    """sha256 of the resolved scenario (canonical JSON), the seed and the chargetwin version."""
    text = json.dumps({"scenario": scenario, "seed": seed, "version": version}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _find_variant(variants: Sequence[tuple[str, str]], name: str) -> str:
    for vid, label in variants:
        if name in (vid, label):
            return vid
    matches = [vid for vid, label in variants if name in label]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{vid}: {label}" for vid, label in variants[:20])
    what = "matches more than one variant" if matches else "names no variant"
    raise SweepError([f"{name!r} {what}; give a variant id or a unique part of its label ({listing})"])


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def load_sweep(
    path: str | Path,
    *,
    horizon_days: float | None = None,
    replications: int | None = None,
    out: str | Path | None = None,
) -> SweepPlan:
    """Read a sweep file and validate it and every variant it makes; nothing runs.

    Args:
        path: The sweep YAML file.
        horizon_days: Overrides the horizon of every run (and the file's `horizon_days`).
        replications: Overrides the file's `replications` (seeds then run from `seeds.start`).
        out: Output folder; default the file's `out` (relative to the file), else out/sweeps/<name>.

    Raises:
        SweepError: the file, its base scenario or any variant is invalid; every problem is
            listed with the file, the line, the YAML path and what to change.
    """
    path = Path(path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict):
        raise SweepError([f"{path}: a sweep file must be a YAML mapping with name, base, parameters, ..."])
    if replications is not None:
        data["replications"] = replications
        if isinstance(data.get("seeds"), list):
            data["seeds"] = {"start": data["seeds"][0]}
    if horizon_days is not None:
        data["horizon_days"] = horizon_days
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SweepError(_spec_problems(exc, data, str(path), root)) from None
    out_dir = Path(out) if out is not None else None
    return plan_sweep(spec, base_dir=path.parent, source=str(path), root=root, out=out_dir)


def plan_sweep(
    spec: SweepSpec,
    *,
    base_dir: Path,
    source: str = "sweep",
    root: yaml.Node | None = None,
    out: Path | None = None,
) -> SweepPlan:
    """Make and validate every variant of `spec`: the parameter grid crossed with the samples.

    Args:
        spec: The sweep.
        base_dir: Folder that `spec.base` and `spec.out` are relative to.
        source: Name of the sweep in problem messages (the file).
        root: The sweep file's YAML node tree, for line numbers.
        out: Output folder overriding `spec.out`.

    Raises:
        SweepError: the base scenario or any variant is invalid, all problems listed at once.
    """
    base_path = spec.base if spec.base.is_absolute() else base_dir / spec.base
    try:
        load_scenario(base_path)  # the base alone must be valid: its problems come with its own lines
    except ScenarioError as exc:
        line = yaml_line(root, ["base"])
        raise SweepError([f"{source}:{line}: base: the base scenario is not valid", *exc.problems]) from None
    base_data = yaml.load(read_yaml_text(base_path), Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
    if spec.horizon_days is not None:
        base_data["horizon_days"] = spec.horizon_days
    seeds = spec.seed_list()
    base_data["seed"] = seeds[0]

    grid_paths = list(spec.parameters)
    grid = list(itertools.product(*spec.parameters.values())) if grid_paths else [()]
    points = _samples(spec.sample)
    combos = [dict(zip(grid_paths, values, strict=True)) | point for values in grid for point in points]
    width = max(3, len(str(len(combos) - 1)))

    def line_of(param: str, value: Any = None) -> int | None:
        """The line of a parameter's key, or of one of its values."""
        if param not in spec.parameters:
            return yaml_line(root, ["sample", "ranges", param], of_key=True)
        if value is None:
            return yaml_line(root, ["parameters", param], of_key=True)
        return yaml_line(root, ["parameters", param, spec.parameters[param].index(value)])

    variants, problems = [], []
    for i, values in enumerate(combos):
        vid = f"v{i:0{width}d}"
        label = ", ".join(f"{p}={_format_value(v)}" for p, v in values.items()) or "base"
        data = copy.deepcopy(base_data)
        bad = False
        for param, value in values.items():
            try:
                set_path(data, param, value)
            except ValueError as exc:
                line = line_of(param)
                problems.append(f"{source}:{line}: {exc}" if line else f"{source}: {exc}")
                bad = True
        if bad:
            continue
        try:
            scenario = validate_data(data, "\0", base_path.parent)
        except ScenarioError as exc:
            problems += [_variant_problem(p, vid, label, values, source, line_of, root) for p in exc.problems]
            continue
        variants.append(Variant(vid, label, values, scenario))
    if problems:
        # a bad path fails the same way in every variant: say it once
        raise SweepError(list(dict.fromkeys(problems)))
    out_dir = out if out is not None else (base_dir / spec.out if spec.out is not None else None)
    plan = SweepPlan(
        spec,
        source,
        base_path,
        out_dir if out_dir is not None else Path("out") / "sweeps" / spec.name,
        tuple(variants),
        tuple(seeds),
    )
    if spec.compare is not None:
        try:
            for name in spec.compare:
                plan.variant(name)
        except SweepError as exc:
            line = yaml_line(root, ["compare"])
            raise SweepError([f"{source}:{line}: compare: {p}" if line else p for p in exc.problems]) from None
    return plan


def _within(path: str, outer: str) -> bool:
    """`path` is `outer` or lies inside it (``a.b[0].c`` lies inside ``a.b``)."""
    return path == outer or path.startswith((outer + ".", outer + "["))


def _variant_problem(
    problem: str,
    vid: str,
    label: str,
    values: Mapping[str, Any],
    source: str,
    line_of: Callable[[str, Any], int | None],
    root: yaml.Node | None,
) -> str:
    """Place a scenario problem of a variant at the parameter that caused it, if one did."""
    rest = problem.removeprefix("\0: ")
    yaml_path = rest.split(": ", 1)[0]
    culprit = next((p for p in values if _within(yaml_path, p) or _within(p, yaml_path)), None)
    # a new kind that does not take a key of the base: the kind is the culprit, not the key
    kind = next((p for p in values if p.endswith(".kind") and yaml_path.startswith(p.removesuffix("kind"))), None)
    culprit = culprit or kind
    line = line_of(culprit, values[culprit]) if culprit else yaml_line(root, ["base"])
    where = f"{source}:{line}" if line else source
    hint = f" (set by {culprit}={_format_value(values[culprit])}; change or drop that value)" if culprit else ""
    if culprit is not None and culprit == kind and "unknown key" in rest:
        section = culprit.removesuffix(".kind")
        hint = (
            f" (set by {culprit}={_format_value(values[culprit])}, while the base gives {section} keys of another "
            f"kind; sweep the whole {section} instead, e.g. {section}: [{{kind: a, ...}}, {{kind: b, ...}}])"
        )
    return f"{where}: variant {vid} ({label}): {rest}{hint}"


# ---------------------------------------------------------------- one run


def flatten_kpis(kpis: Mapping[str, Any]) -> dict[str, float]:
    """KPI columns of a run: ``network.``, ``sites.<id>.``, ``serviceability.``, ``revenue.``, ``ev_side.<kpi>``.

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
    for section in ("serviceability", "revenue"):
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


# ---------------------------------------------------------------- backends


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"kpis": None, "error": f"{type(exc).__name__}: {exc}", "wall_s": math.nan}


def _local(tasks: Sequence[tuple[int, RunTask]], workers: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run on a pool of spawned processes; yields (index, outcome) as runs finish."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: dict[Future[dict[str, Any]], int] = {pool.submit(execute_run, task): i for i, task in tasks}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # the worker process died (e.g. out of memory)
                yield futures[future], _failed(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(
    tasks: Sequence[tuple[int, RunTask]], workers: int, scheduler: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run on a Dask cluster (at `scheduler`, or a LocalCluster of `workers` processes)."""
    import dask
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except OSError as exc:
                raise SweepError(
                    [
                        f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` "
                        "and workers with `dask worker ADDRESS`, or use --dask-local"
                    ]
                ) from None
        else:
            # The workers' statistical profiler samples every thread's stack each 10 ms, which holds the
            # GIL against a pure-Python simulation (~10 % slower runs); the workers take this config at start.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",  # loopback, any free port: no clash, no warning
                    )
                )
            client = stack.enter_context(Client(cluster))
        index = {}
        futures = []
        for i, task in tasks:
            future = client.submit(execute_run, task, key=f"chargetwin-{task.name}-{task.key[:16]}", pure=False)
            index[future.key] = i
            futures.append(future)
        for future in dask_completed(futures):
            try:
                yield index[future.key], future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not be sent
                yield index[future.key], _failed(exc)


# ---------------------------------------------------------------- running a sweep


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


# ---------------------------------------------------------------- statistics


def default_kpis(table: pd.DataFrame) -> list[str]:
    """The network, serviceability, revenue and EV-side KPI columns of a sweep table (site columns left out)."""
    return [c for c in table.columns if c.startswith(("network.", "serviceability.", "revenue.", "ev_side."))]


def report_kpis(table: pd.DataFrame, chosen: Sequence[str] | None = None) -> list[str]:
    """The KPIs a sweep report plots: `chosen`, else a standard set, those the table has."""
    names = list(chosen) if chosen else list(_REPORT_KPIS)
    return [k for k in names if k in table.columns]


def _t_quantile(confidence: float, dof: float) -> float:
    from scipy import stats  # imported here: workers, which never need it, start faster

    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def _interval(values: np.ndarray, confidence: float) -> tuple[int, float, float, float]:
    """n, mean, sample std and half-width of the Student t interval; NaN where undefined."""
    x = values[~np.isnan(values)]
    n = len(x)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan
    std = float(x.std(ddof=1))
    return n, mean, std, _t_quantile(confidence, n - 1) * std / math.sqrt(n)


def summarize(table: pd.DataFrame, kpis: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sample std and Student t confidence interval of each KPI per variant.

    Failed runs (and KPIs that are undefined in a run) are left out of `n`.

    Args:
        table: A sweep table (`SweepResult.table` or sweep.parquet); any numeric column,
            including one you add, can be a KPI.
        kpis: KPI columns; default every network, serviceability, revenue and EV-side KPI.
        confidence: Two-sided confidence level of the interval.

    Returns:
        One row per variant and KPI, in variant order: variant, label, the ``param.*``
        columns, kpi, n, mean, std, half_width, ci_low, ci_high.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence(={confidence}) must be in (0, 1)")
    kpis = list(kpis) if kpis is not None else default_kpis(table)
    missing = [k for k in kpis if k not in table.columns]
    if missing:
        raise ValueError(f"no KPI column {', '.join(missing)}; the table has {', '.join(default_kpis(table))}")
    params = [c for c in table.columns if c.startswith("param.")]
    rows = []
    for variant, group in table.groupby("variant", sort=True):
        first = group.iloc[0]
        for kpi in kpis:
            n, mean, std, half = _interval(group[kpi].to_numpy(dtype=float), confidence)
            rows.append(
                {
                    "variant": variant,
                    "label": first["label"],
                    **{p: first[p] for p in params},
                    "kpi": kpi,
                    "n": n,
                    "mean": mean,
                    "std": std,
                    "half_width": half,
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                }
            )
    return pd.DataFrame(rows)


def paired_difference(
    table: pd.DataFrame, a: str, b: str, kpis: Sequence[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """The difference b − a of each KPI with its confidence interval, paired by seed.

    Replication r of both variants ran on the same seed (common random numbers), so the
    interval is a Student t interval of the per-seed differences; pairs with a failed run
    are left out. The unpaired (Welch) half-width is given beside it, to show what the
    pairing gains.

    Args:
        table: A sweep table.
        a: The reference variant: its id, label or a part of its label only it has.
        b: The variant compared with `a`.
        kpis: KPI columns; default every network, serviceability, revenue and EV-side KPI.
        confidence: Two-sided confidence level.

    Returns:
        One row per KPI: kpi, a, b, n_pairs, mean_a, mean_b, diff_mean, diff_std,
        half_width, ci_low, ci_high, unpaired_half_width, significant (the interval
        excludes 0).
    """
    labels = list(table[["variant", "label"]].drop_duplicates().itertuples(index=False, name=None))
    va, vb = _find_variant(labels, a), _find_variant(labels, b)
    kpis = list(kpis) if kpis is not None else default_kpis(table)
    left = table[table["variant"] == va].set_index("seed")
    right = table[table["variant"] == vb].set_index("seed")
    seeds = left.index.intersection(right.index)
    rows = []
    for kpi in kpis:
        xa = left.loc[seeds, kpi].to_numpy(dtype=float)
        xb = right.loc[seeds, kpi].to_numpy(dtype=float)
        keep = ~(np.isnan(xa) | np.isnan(xb))
        xa, xb = xa[keep], xb[keep]
        n, mean, std, half = _interval(xb - xa, confidence)
        rows.append(
            {
                "kpi": kpi,
                "a": va,
                "b": vb,
                "n_pairs": n,
                "mean_a": float(xa.mean()) if n else math.nan,
                "mean_b": float(xb.mean()) if n else math.nan,
                "diff_mean": mean,
                "diff_std": std,
                "half_width": half,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "unpaired_half_width": _welch_half_width(xa, xb, confidence),
                "significant": bool(n > 1 and (mean - half > 0 or mean + half < 0)),
            }
        )
    return pd.DataFrame(rows)


def _welch_half_width(xa: np.ndarray, xb: np.ndarray, confidence: float) -> float:
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return math.nan
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    if va + vb == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return _t_quantile(confidence, dof) * math.sqrt(va + vb)


def variants_meeting(
    summary: pd.DataFrame, kpi: str, *, at_most: float | None = None, at_least: float | None = None
) -> pd.DataFrame:
    """Rows of `summary` for `kpi` whose whole confidence interval meets the target."""
    rows = summary[summary["kpi"] == kpi]
    keep = np.ones(len(rows), dtype=bool)
    if at_most is not None:
        keep &= (rows["ci_high"] <= at_most).to_numpy()
    if at_least is not None:
        keep &= (rows["ci_low"] >= at_least).to_numpy()
    return rows[keep]
