"""Planning a sweep: every variant validated as a scenario, and the runs as plain tasks; nothing runs."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.config import (
    Scenario,
    ScenarioError,
    YamlLoader,
    load_scenario,
    read_yaml_text,
    validate_data,
    yaml_line,
)
from sim.sweep.paths import set_path
from sim.sweep.spec import SweepError, SweepSpec, _read_yaml, _samples, _spec_problems


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
