"""The typed scenario model: parsing, defaults, validation and JSON Schema export.

This module is the only place that knows the scenario YAML. Every model forbids unknown
keys (a typo is an error) and is frozen; choices are discriminated unions on ``kind``
(or ``dist`` for distributions). `load_scenario` reports every problem of a file at
once, each naming the file, the YAML path and what is expected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    AwareDatetime,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.compat import Connector, check_connectors
from sim.config.base import Constant, Distribution, NonNegativeFloats, StrictModel, Uniform, within
from sim.config.ev_side import Adapter, EvSide, check_ev_side
from sim.config.grid import Grid
from sim.config.ocpp import OcppManager
from sim.config.revenue import Drivers, MembershipPlan, Payments, Pricing, Tariff
from sim.config.serviceability import Serviceability
from sim.ev import PRESETS, EVModel, check_curve

__all__ = [
    "Distribution",
    "EqualShareManager",
    "FleetEntry",
    "ManagerConfig",
    "OcppManager",
    "Scenario",
    "ScenarioError",
    "SyntheticDemand",
    "Tariff",
    "TraceDemand",
    "UncontrolledManager",
    "load_scenario",
    "scenario_schema",
    "yaml_line",
]


# ---------------------------------------------------------------- network


class ChargerGroup(StrictModel):
    """`count` identical chargers of one model at a site."""

    model: str = Field(min_length=1)
    count: int = Field(default=1, ge=1)
    connectors: int = Field(default=1, ge=1, le=8)
    power_kw: float = Field(gt=0, le=1000, description="maximum power of each connector")
    current: Literal["ac", "dc"]
    shared: bool = Field(
        default=False,
        description="the charger's power_kw is shared among its connectors (a DC cabinet)",
    )
    connector: Connector | list[Connector] | None = Field(
        default=None, description="standard, or one per connector; none: the ev_side market's for the current"
    )

    @model_validator(mode="after")
    def _connector_fits(self) -> ChargerGroup:
        check_connectors(self.connector, self.connectors, self.current)
        return self


class Site(StrictModel):
    """A charging site with its grid connection and chargers."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    capacity_kw: float = Field(gt=0, description="grid connection limit of the site")
    type: Literal["public", "highway", "workplace", "depot", "retail", "residential"] = "public"
    chargers: list[ChargerGroup] = Field(min_length=1)
    tariff: Tariff | None = Field(default=None, description="this site's tariff; none: the scenario's tariff")

    @property
    def port_count(self) -> int:
        """Number of connectors (ports) at the site."""
        return sum(c.count * c.connectors for c in self.chargers)


class Network(StrictModel):
    """The sites of the network."""

    sites: list[Site] = Field(min_length=1)

    @field_validator("sites")
    @classmethod
    def _unique_ids(cls, sites: list[Site]) -> list[Site]:
        seen: set[str] = set()
        for s in sites:
            if s.id in seen:
                raise ValueError(f"site id {s.id!r} is used twice; give every site its own id")
            seen.add(s.id)
        return sites


# ---------------------------------------------------------------- fleet


class EVModelSpec(StrictModel):
    """A vehicle model written out in the scenario."""

    name: str = Field(min_length=1)
    capacity_kwh: float = Field(gt=0, le=500)
    ac_max_kw: float = Field(gt=0, le=50)
    dc_curve: list[tuple[float, float]] = Field(description="(soc_frac, power_kw) points from SoC 0 to 1")

    @field_validator("dc_curve")
    @classmethod
    def _curve(cls, curve: list[tuple[float, float]]) -> list[tuple[float, float]]:
        check_curve(curve)
        return curve


class FleetEntry(StrictModel):
    """One vehicle model of the fleet mix, by preset name or written out, with its share."""

    preset: str | None = None
    model: EVModelSpec | None = None
    share: float = Field(gt=0, description="relative weight in the mix")
    iso15118_share: float = Field(
        default=0.0, ge=0, le=1, description="share of these EVs that tell the charger their departure and need"
    )
    inlets: list[Connector] | None = Field(default=None, description="none: the preset's in the ev_side market")
    family: str | None = Field(default=None, min_length=1, description="EV family for interop; none: the preset's")
    adapters: list[Adapter] = Field(default_factory=list, description="adapters some drivers carry")
    telematics_share: float = Field(default=0.0, ge=0, le=1, description="share reporting through OEM telematics")
    plug_and_charge_share: float = Field(default=0.0, ge=0, le=1, description="share with a contract certificate")

    @model_validator(mode="after")
    def _one_source(self) -> FleetEntry:
        if (self.preset is None) == (self.model is None):
            raise ValueError("give exactly one of preset or model")
        if self.plug_and_charge_share > self.iso15118_share:
            raise ValueError(
                f"Plug & Charge runs over ISO 15118: plug_and_charge_share (={self.plug_and_charge_share}) "
                f"must be <= iso15118_share (={self.iso15118_share})"
            )
        if len({a.connector for a in self.adapters}) != len(self.adapters):
            raise ValueError("adapters: one entry per connector")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        return self

    def ev_model(self) -> EVModel:
        """The vehicle model this entry names."""
        if self.preset is not None:
            return PRESETS[self.preset]
        m = self.model
        assert m is not None
        return EVModel(m.name, m.capacity_kwh, m.ac_max_kw, tuple(m.dc_curve))


# ---------------------------------------------------------------- demand


class RateConstant(StrictModel):
    """The same arrival rate every hour."""

    kind: Literal["constant"]
    per_hour: float = Field(ge=0)

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.full(168, self.per_hour)


class RateDaily(StrictModel):
    """A daily profile of 24 hourly rates scaled by a factor per weekday (Monday first)."""

    kind: Literal["daily"]
    per_hour: NonNegativeFloats = Field(min_length=24, max_length=24)
    weekday_factors: NonNegativeFloats = Field(default=[1.0] * 7, min_length=7, max_length=7)

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.outer(self.weekday_factors, self.per_hour).ravel()


class RateWeekly(StrictModel):
    """168 hourly rates, Monday 00:00 first."""

    kind: Literal["weekly"]
    per_hour: NonNegativeFloats = Field(min_length=168, max_length=168)

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.asarray(self.per_hour, dtype=float)


Rate = Annotated[RateConstant | RateDaily | RateWeekly, Field(discriminator="kind")]


class _DriverBehaviour(StrictModel):
    arrival_soc_frac: Distribution = Field(default=Uniform(dist="uniform", low=0.1, high=0.5))
    patience_min: Distribution = Field(default=Constant(value=15.0), description="longest wait before reneging")
    max_queue: int = Field(default=2, ge=0, description="a driver balks when this many are already waiting")
    fleet: list[FleetEntry] | None = Field(default=None, description="fleet mix here; the scenario fleet if absent")

    def _check_behaviour(self) -> None:
        within("arrival_soc_frac", self.arrival_soc_frac, 0.0, 1.0)
        within("patience_min", self.patience_min, 0.0, np.inf)


class SyntheticDemand(_DriverBehaviour):
    """Poisson arrivals at one site with a rate by hour of the week."""

    kind: Literal["synthetic"]
    site: str
    rate: Rate
    target_soc_frac: Distribution | None = None
    energy_need_kwh: Distribution | None = None
    dwell_min: Distribution = Field(description="how long the car stays plugged in")
    leave_when_charged: bool = Field(default=False, description="leave once charged, or at the end of the dwell")

    @model_validator(mode="after")
    def _check(self) -> SyntheticDemand:
        self._check_behaviour()
        if self.target_soc_frac is not None and self.energy_need_kwh is not None:
            raise ValueError("give target_soc_frac or energy_need_kwh, not both")
        if self.target_soc_frac is not None:
            within("target_soc_frac", self.target_soc_frac, 0.0, 1.0)
        if self.energy_need_kwh is not None:
            within("energy_need_kwh", self.energy_need_kwh, 0.0, np.inf)
        within("dwell_min", self.dwell_min, 0.0, np.inf)
        return self

    @property
    def target(self) -> Any:
        """The target SoC distribution, 0.8 when neither a target nor an energy need is given."""
        if self.target_soc_frac is None and self.energy_need_kwh is None:
            return Constant(value=0.8)
        return self.target_soc_frac


class TraceDemand(_DriverBehaviour):
    """Replay of recorded sessions from a CSV: arrival, departure, energy_kwh, station."""

    kind: Literal["trace"]
    path: Path = Field(description="CSV file, relative to the scenario file")
    site: str | None = Field(default=None, description="send every row here instead of the row's station")
    max_queue: int = Field(default=0, ge=0)

    @field_validator("path")
    @classmethod
    def _readable(cls, path: Path, info: ValidationInfo) -> Path:
        from sim.demand import read_trace  # the trace format belongs to demand.py

        base = Path((info.context or {}).get("base_dir", "."))
        full = path if path.is_absolute() else base / path
        read_trace(full)  # raises ValueError with the bad rows
        return full.resolve()

    @model_validator(mode="after")
    def _check(self) -> TraceDemand:
        self._check_behaviour()
        return self


Demand = Annotated[SyntheticDemand | TraceDemand, Field(discriminator="kind")]


# ---------------------------------------------------------------- tariff and manager


class UncontrolledManager(StrictModel):
    """Every connector charges at what the EV and the EVSE allow."""

    kind: Literal["uncontrolled"]


class EqualShareManager(StrictModel):
    """The site's limit is shared equally among the sessions drawing power."""

    kind: Literal["equal_share"]


class _Estimates(StrictModel):
    assumed_dwell_h: float = Field(default=4.0, gt=0, description="departure guess for EVs that do not say")
    assumed_energy_kwh: float = Field(default=25.0, gt=0, description="need guess for EVs that do not say")


class FirstComeFirstServedManager(_Estimates):
    """The site's limit goes to sessions in plug-in order, each as much as it can take."""

    kind: Literal["first_come_first_served"]


class EarliestDeadlineFirstManager(_Estimates):
    """The site's limit goes first to the sessions that leave first."""

    kind: Literal["earliest_deadline_first"]


class LeastLaxityFirstManager(_Estimates):
    """The site's limit goes first to the sessions with the least slack (time left − time needed)."""

    kind: Literal["least_laxity_first"]


class PriceResponsiveManager(_Estimates):
    """Each session charges in the cheapest hours before its departure that still meet its need."""

    kind: Literal["price_responsive"]


class PeakShavingManager(_Estimates):
    """Sessions in plug-in order within a site load target below the site's limit."""

    kind: Literal["peak_shaving"]
    target_kw: float = Field(gt=0)


ManagerConfig = Annotated[
    UncontrolledManager
    | EqualShareManager
    | FirstComeFirstServedManager
    | EarliestDeadlineFirstManager
    | LeastLaxityFirstManager
    | PriceResponsiveManager
    | PeakShavingManager
    | OcppManager,
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- scenario


class Scenario(StrictModel):
    """A complete scenario: network, fleet, demand, tariff and network manager."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="also the default results folder name")
    seed: int = Field(ge=0)
    start: AwareDatetime = Field(description="timezone-aware start, e.g. 2026-01-05T00:00:00+01:00")
    horizon_days: float = Field(gt=0, le=3660)
    network: Network
    fleet: list[FleetEntry] = Field(min_length=1)
    demand: list[Demand] = Field(min_length=1)
    tariff: Tariff = Tariff()
    manager: ManagerConfig = UncontrolledManager(kind="uncontrolled")
    serviceability: Serviceability | None = Field(default=None, description="faults and repairs; none: no faults")
    grid: Grid = Grid()
    pricing: Pricing | None = Field(default=None, description="dynamic pricing: the price per kWh set at an interval")
    drivers: Drivers = Drivers()
    memberships: list[MembershipPlan] = []
    payments: Payments | None = Field(default=None, description="payment methods; none: payments never fail, no fees")
    ev_side: EvSide | None = Field(default=None, description="connectors, vehicle data, interop; none: all compatible")

    @field_validator("start", mode="before")
    @classmethod
    def _date_needs_zone(cls, v: Any) -> Any:
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            raise ValueError("start needs a time and a timezone, e.g. 2026-01-05T00:00:00+01:00")
        return v

    @model_validator(mode="after")
    def _demand_sites_exist(self) -> Scenario:
        ids = [s.id for s in self.network.sites]
        for i, d in enumerate(self.demand):
            if d.site is not None and d.site not in ids:
                raise ValueError(f"demand[{i}].site {d.site!r} is not a site of the network; sites: {', '.join(ids)}")
            if d.kind == "trace":
                from sim.demand import read_trace

                trace = read_trace(d.path)
                first, last = trace["arrival"].min(), trace["arrival"].max()
                end = self.start + dt.timedelta(days=self.horizon_days)
                if len(trace) and (last < self.start or first >= end):
                    raise ValueError(
                        f"demand[{i}]: no session of trace {d.path.name} arrives within the horizon "
                        f"({self.start.isoformat()} + {self.horizon_days:g} days); the trace runs from "
                        f"{first.isoformat()} to {last.isoformat()}: move start"
                    )
            if d.kind == "trace" and d.site is None:
                unknown = sorted(set(trace["station"]) - set(ids))
                if unknown:
                    raise ValueError(
                        f"demand[{i}]: trace stations {', '.join(unknown[:5])} are not sites of the network; "
                        "rename them to site ids or set demand.site"
                    )
        return self

    @model_validator(mode="after")
    def _grid_sites_exist(self) -> Scenario:
        ids = {s.id for s in self.network.sites}
        unknown = sorted(set(self.grid.sites) - ids)
        for i, event in enumerate(self.grid.demand_response.events):
            unknown += [f"{s} (demand_response.events[{i}])" for s in event.sites or [] if s not in ids]
        if unknown:
            raise ValueError(
                f"grid names site(s) {', '.join(unknown)} not in the network; sites: {', '.join(sorted(ids))}"
            )
        return self

    @model_validator(mode="after")
    def _hardware_models_exist(self) -> Scenario:
        if self.serviceability is not None:
            models = {g.model for site in self.network.sites for g in site.chargers}
            unknown = sorted(set(self.serviceability.hardware) - models)
            if unknown:
                raise ValueError(
                    f"serviceability.hardware names charger model(s) {', '.join(unknown)} that no site has; "
                    f"charger models in the network: {', '.join(sorted(models))}"
                )
        return self

    @model_validator(mode="after")
    def _revenue_consistent(self) -> Scenario:
        ids = {s.id for s in self.network.sites}
        currencies = {s.tariff.currency for s in self.network.sites if s.tariff is not None} - {self.tariff.currency}
        if currencies:
            raise ValueError(
                f"site tariffs use {', '.join(sorted(currencies))} but the scenario tariff uses "
                f"{self.tariff.currency}; one network bills in one currency"
            )
        named = [("pricing.sites", self.pricing.sites if self.pricing is not None else None)]
        named += [(f"memberships[{i}].sites", p.sites) for i, p in enumerate(self.memberships)]
        for where, sites in named:
            unknown = sorted(set(sites or []) - ids)
            if unknown:
                raise ValueError(f"{where} names site(s) {', '.join(unknown)} not in the network")
        if self.memberships and self.drivers.population is None:
            raise ValueError("memberships need repeat customers: set drivers.population (e.g. 5000)")
        names = [p.name for p in self.memberships]
        if len(set(names)) != len(names):
            raise ValueError(f"membership plan names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _ev_side_fits(self) -> Scenario:
        check_ev_side(self)
        return self

    @property
    def horizon_s(self) -> float:
        """Length of the run in seconds."""
        return self.horizon_days * 86400.0


# ---------------------------------------------------------------- loading


class ScenarioError(Exception):
    """A scenario file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem; the message is all of them, one per line."""
        super().__init__("\n".join(problems))
        self.problems = problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key written twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may repeat keys on purpose; written keys override merged ones
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_TAGS = {
    "synthetic",
    "trace",
    "uncontrolled",
    "equal_share",
    "constant",
    "daily",
    "weekly",
    "uniform",
    "normal",
    "lognormal",
    "exponential",
    "beta",
    "weibull",
    "flat",
    "tou",
    "series",
    "first_come_first_served",
    "earliest_deadline_first",
    "least_laxity_first",
    "price_responsive",
    "peak_shaving",
    "ocpp",
    "reactive",
    "preventive",
    "occupancy",
    "demand_based",
    "follow_energy_price",
    "every_nth",
    "points",
}


def _yaml_path(loc: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """Turn a pydantic error location into ``a.b[1].c`` and the keys to walk the YAML tree."""
    text, keys = "", []
    for part in loc:
        if isinstance(part, str) and (part in _TAGS or part.startswith(("function-", "tagged-union"))):
            continue  # a union member's name, not a YAML key
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
        keys.append(part)
    return text or "(top level)", keys


def yaml_line(root: yaml.Node | None, keys: Sequence[Any], *, of_key: bool = False) -> int | None:
    """1-based line of the YAML node at `keys` (of its key, with `of_key`), or of the deepest parent that exists."""
    node, line = root, None
    for depth, key in enumerate(keys):
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
            if pair is not None and of_key and depth == len(keys) - 1:
                return int(pair[0].start_mark.line) + 1
            node = pair[1] if pair is not None else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] == "extra_forbidden":
        return "unknown key; check the spelling (`chargetwin schema` lists every key)"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "timezone_aware":
        return "needs a timezone, e.g. 2026-01-05T00:00:00+01:00"
    return msg


def validate_data(data: Any, source: str, base_dir: Path, root: yaml.Node | None = None) -> Scenario:
    """Validate already-parsed scenario data; raise ScenarioError listing every problem."""
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path, keys = _yaml_path(tuple(err["loc"]))
            line = yaml_line(root, keys)
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {path}: {_message(err)}")
        raise ScenarioError(problems) from None


def load_scenario(path: str | Path, *, seed: int | None = None, horizon_days: float | None = None) -> Scenario:
    """Read, validate and return the scenario in `path`, with optional overrides.

    Raises:
        ScenarioError: the file is missing, is not YAML, or breaks the schema; the error
            lists every problem, each naming the file, the YAML path and the fix.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the scenario file ({exc.strerror})"]) from None
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScenarioError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"{path}: a scenario must be a YAML mapping with name, seed, start, ..."])
    if seed is not None:
        data["seed"] = seed
    if horizon_days is not None:
        data["horizon_days"] = horizon_days
    return validate_data(data, str(path), path.parent, root)


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of the scenario file, for editors and validators."""
    return Scenario.model_json_schema()
