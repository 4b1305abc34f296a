"""The sweep file: its pydantic model (base, parameters, samples, seeds) and reading it with line numbers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sim.config import (
    ScenarioError,
    YamlLoader,
    read_yaml_text,
    yaml_line,
)
from sim.config.base import StrictModel
from sim.sweep.paths import parse_path


class SweepError(ScenarioError):
    """A sweep that cannot be run; `problems` holds one line per problem, nothing has run."""


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
