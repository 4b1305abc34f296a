"""The typed scenario model: parsing, defaults, validation and JSON Schema export.

This module is the only place that knows the scenario YAML. Every model forbids unknown
keys (a typo is an error) and is frozen; choices are discriminated unions on ``kind``
(or ``dist`` for distributions). `load_scenario` reports every problem of a file at
once, each naming the file, the YAML path and what is expected.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import math
import re
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import numpy as np
import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.compat import Connector, check_connectors
from sim.config.base import (
    Constant,
    Distribution,
    LocatedError,
    NonNegativeFloats,
    QuietModel,
    StrictModel,
    Uniform,
    within,
)
from sim.config.degradation import Degradation
from sim.config.ev_side import Adapter, EvSide, check_ev_side
from sim.config.grid import Grid
from sim.config.ocpp import OcppManager
from sim.config.revenue import Drivers, MembershipPlan, Payments, Pricing, Tariff
from sim.config.serviceability import Serviceability
from sim.config.v2g import V2gVehicle
from sim.csvfiles import read_trace
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
    "V2gPeakShavingManager",
    "V2gPriceArbitrageManager",
    "load_scenario",
    "scenario_schema",
    "YamlLoader",
    "read_yaml_text",
    "yaml_line",
]


MAX_EXPECTED_ARRIVALS = 10_000_000
"""Most arrivals a run may expect: a run holds about 1.3 kB per session (1.5 million sessions peak near 2 GB)."""
MAX_PORTS = 100_000
"""Most ports a network may have in one run."""


# ---------------------------------------------------------------- network


class ChargerGroup(QuietModel):
    """`count` identical chargers of one model at a site."""

    QUIET = ("bidirectional", "max_discharge_kw")

    model: str = Field(
        min_length=1, description="charger model name; serviceability.hardware and ev_side interop refer to it"
    )
    count: int = Field(default=1, ge=1, description="number of identical chargers")
    connectors: int = Field(default=1, ge=1, le=8, description="connectors (EVSEs) per charger")
    power_kw: float = Field(gt=0, le=1000, description="maximum power of each connector")
    current: Literal["ac", "dc"] = Field(description="ac or dc")
    shared: bool = Field(
        default=False,
        description="the charger's power_kw is shared among its connectors (a DC cabinet)",
    )
    connector: Connector | list[Connector] | None = Field(
        default=None, description="standard, or one per connector; none: the ev_side market's for the current"
    )
    phases: Literal[1, 3] = Field(
        default=3,
        description="AC phases each connector draws on: 3 (balanced), or 1 (wired to `phase`); DC chargers draw "
        "on all three",
    )
    phase: Literal["L1", "L2", "L3"] | None = Field(
        default=None,
        description="the phase single-phase chargers are wired to; none: phase rotation, L1, L2, L3 in turn over "
        "the site's single-phase chargers",
    )
    panel_phase_limit_a: float | None = Field(
        default=None,
        gt=0,
        description="current limit (A) on each phase of the panel (feeder) these chargers share, below the site's "
        "supply; none: no panel of their own",
    )
    bidirectional: bool = Field(
        default=False,
        description="the connectors can also discharge a V2G-capable EV (V2G / V2X, AC or DC), when a manager "
        "commands a negative power",
    )
    max_discharge_kw: float | None = Field(
        default=None, gt=0, le=1000, description="most power each connector discharges; none: power_kw"
    )

    @model_validator(mode="after")
    def _connector_fits(self) -> ChargerGroup:
        check_connectors(self.connector, self.connectors, self.current)
        if self.phases == 1 and self.current == "dc":
            raise ValueError("phases: 1 is for AC chargers; a DC charger draws on all three phases (drop phases)")
        if self.panel_phase_limit_a is not None and self.current == "dc":
            raise ValueError("panel_phase_limit_a is for AC chargers' panels: drop it from the DC group")
        if self.phase is not None and self.phases != 1:
            raise ValueError(f"phase: {self.phase} is for single-phase chargers: add phases: 1, or drop phase")
        if self.max_discharge_kw is not None and not self.bidirectional:
            raise ValueError("max_discharge_kw is for bidirectional chargers: add bidirectional: true, or drop it")
        return self

    @property
    def discharge_kw(self) -> float:
        """Most power each connector discharges: 0 unless bidirectional."""
        if not self.bidirectional:
            return 0.0
        return self.max_discharge_kw if self.max_discharge_kw is not None else self.power_kw


class Site(QuietModel):
    """A charging site with its grid connection and chargers."""

    QUIET = ("limits",)

    id: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$", description="site id, used by demand, grid.sites and in every result table"
    )
    name: str = Field(default="", description="a readable name for reports")
    lat: float = Field(ge=-90, le=90, description="latitude, for distances to other sites and crew depots")
    lon: float = Field(ge=-180, le=180, description="longitude")
    capacity_kw: float = Field(gt=0, description="grid connection limit of the site")
    type: Literal["public", "highway", "workplace", "depot", "retail", "residential"] = Field(
        default="public", description="kind of site, for reports"
    )
    chargers: list[ChargerGroup] = Field(min_length=1, description="the site's charger groups")
    tariff: Tariff | None = Field(default=None, description="this site's tariff; none: the scenario's tariff")
    phase_limit_a: float | None = Field(
        default=None,
        gt=0,
        description="current limit (A) on each of the supply's three phases L1, L2, L3, e.g. the main fuse; "
        "none: capacity_kw only",
    )
    voltage_v: float = Field(
        default=230.0, gt=0, description="line-to-neutral voltage (V) of the supply, to turn phase currents into power"
    )
    limits: Literal["measure", "enforce"] = Field(
        default="measure",
        description="measure: the connection, phase and panel limits bind only through the manager, and the grid "
        "KPIs measure any excess; enforce: a local load-management controller also scales the chargers down so "
        "that the connection (capacity_kw, transformer), every phase and every panel stay within their limits, "
        "and the discharges (V2G) so that none of them, nor the connection's export limit, is exceeded by export",
    )

    @property
    def port_count(self) -> int:
        """Number of connectors (ports) at the site."""
        return sum(c.count * c.connectors for c in self.chargers)


class Network(StrictModel):
    """The sites of the network."""

    sites: list[Site] = Field(min_length=1, description="the charging sites")

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

    name: str = Field(min_length=1, description="model name, shown in result tables")
    capacity_kwh: float = Field(gt=0, le=500, description="usable battery capacity")
    ac_max_kw: float = Field(gt=0, le=50, description="on-board AC charger limit")
    dc_curve: list[tuple[float, float]] = Field(description="(soc_frac, power_kw) points from SoC 0 to 1")

    @field_validator("dc_curve")
    @classmethod
    def _curve(cls, curve: list[tuple[float, float]]) -> list[tuple[float, float]]:
        check_curve(curve)
        return curve


class FleetEntry(QuietModel):
    """One vehicle model of the fleet mix, by preset name or written out, with its share."""

    QUIET = ("v2g",)

    preset: str | None = Field(
        default=None, description="a vehicle preset name (e.g. tesla_model_3_lr); give preset or model"
    )
    model: EVModelSpec | None = Field(default=None, description="a vehicle model written out; give preset or model")
    share: float = Field(gt=0, description="relative weight in the mix")
    iso15118_share: float = Field(
        default=0.0, ge=0, le=1, description="share of these EVs that tell the charger their departure and need"
    )
    inlets: list[Connector] | None = Field(default=None, description="none: the preset's in the ev_side market")
    family: str | None = Field(default=None, min_length=1, description="EV family for interop; none: the preset's")
    adapters: list[Adapter] = Field(default_factory=list, description="adapters some drivers carry")
    telematics_share: float = Field(default=0.0, ge=0, le=1, description="share reporting through OEM telematics")
    plug_and_charge_share: float = Field(default=0.0, ge=0, le=1, description="share with a contract certificate")
    v2g: V2gVehicle | None = Field(
        default=None,
        description="the model can discharge (V2G) with these limits, when its EV speaks ISO 15118 "
        "(iso15118_share); none: it only charges",
    )

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
        if self.v2g is not None and self.iso15118_share == 0:
            raise ValueError(
                "v2g needs EVs that speak ISO 15118 (-20), which carries the discharge limits: set iso15118_share "
                "(e.g. 1.0, every EV of this entry), or drop v2g"
            )
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

    kind: Literal["constant"] = Field(description="selects this rate shape")
    per_hour: float = Field(ge=0, description="arrivals per hour, every hour")

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.full(168, self.per_hour)


class RateDaily(StrictModel):
    """A daily profile of 24 local hourly rates scaled by a factor per weekday (Monday first)."""

    kind: Literal["daily"] = Field(description="selects this rate shape")
    per_hour: NonNegativeFloats = Field(
        min_length=24, max_length=24, description="24 arrival rates per local hour, from 00:00"
    )
    weekday_factors: NonNegativeFloats = Field(
        default=[1.0] * 7, min_length=7, max_length=7, description="7 factors on the daily profile, Monday first"
    )

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.outer(self.weekday_factors, self.per_hour).ravel()


class RateWeekly(StrictModel):
    """168 local hourly rates, Monday 00:00 first."""

    kind: Literal["weekly"] = Field(description="selects this rate shape")
    per_hour: NonNegativeFloats = Field(
        min_length=168, max_length=168, description="168 arrival rates per local hour of the week, Monday 00:00 first"
    )

    def weekly_per_hour(self) -> np.ndarray:
        """168 hourly rates from Monday 00:00."""
        return np.asarray(self.per_hour, dtype=float)


Rate = Annotated[RateConstant | RateDaily | RateWeekly, Field(discriminator="kind")]


class _DriverBehaviour(StrictModel):
    arrival_soc_frac: Distribution = Field(
        default=Uniform(dist="uniform", low=0.1, high=0.5), description="state of charge on arrival"
    )
    patience_min: Distribution = Field(default=Constant(value=15.0), description="longest wait before reneging")
    max_queue: int = Field(default=2, ge=0, description="a driver balks when this many are already waiting")
    fleet: list[FleetEntry] | None = Field(default=None, description="fleet mix here; the scenario fleet if absent")

    def _check_behaviour(self) -> None:
        within("arrival_soc_frac", self.arrival_soc_frac, 0.0, 1.0)
        within("patience_min", self.patience_min, 0.0, np.inf)


class SyntheticDemand(_DriverBehaviour):
    """Poisson arrivals at one site with a rate by hour of the week."""

    kind: Literal["synthetic"] = Field(description="selects synthetic arrivals")
    site: str = Field(description="id of the site the drivers arrive at")
    rate: Rate = Field(description="arrival rate by local hour of the week")
    target_soc_frac: Distribution | None = Field(
        default=None, description="state of charge the driver wants; neither this nor energy_need_kwh: 0.8"
    )
    energy_need_kwh: Distribution | None = Field(
        default=None, description="energy the driver wants, instead of target_soc_frac"
    )
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

    kind: Literal["trace"] = Field(description="selects trace replay")
    path: Path = Field(description="CSV file, relative to the scenario file")
    site: str | None = Field(default=None, description="send every row here instead of the row's station")
    max_queue: int = Field(default=0, ge=0, description="a driver balks when this many are already waiting")

    @field_validator("path")
    @classmethod
    def _readable(cls, path: Path, info: ValidationInfo) -> Path:
        base = Path((info.context or {}).get("base_dir", "."))
        full = path if path.is_absolute() else base / path
        trace = read_trace(full)  # raises ValueError with the bad rows
        if info.context is not None:  # the scenario's own checks use it, without reading the file again
            info.context.setdefault("traces", {})[full.resolve()] = trace
        return full.resolve()

    @model_validator(mode="after")
    def _check(self) -> TraceDemand:
        self._check_behaviour()
        return self


Demand = Annotated[SyntheticDemand | TraceDemand, Field(discriminator="kind")]


# ---------------------------------------------------------------- tariff and manager


class UncontrolledManager(StrictModel):
    """Every connector charges at what the EV and the EVSE allow."""

    kind: Literal["uncontrolled"] = Field(description="selects this manager")


class EqualShareManager(StrictModel):
    """The site's limit is shared equally among the sessions drawing power."""

    kind: Literal["equal_share"] = Field(description="selects this manager")


class _Estimates(StrictModel):
    assumed_dwell_h: float = Field(default=4.0, gt=0, description="departure guess for EVs that do not say")
    assumed_energy_kwh: float = Field(default=25.0, gt=0, description="need guess for EVs that do not say")


class FirstComeFirstServedManager(_Estimates):
    """The site's limit goes to sessions in plug-in order, each as much as it can take."""

    kind: Literal["first_come_first_served"] = Field(description="selects this manager")


class EarliestDeadlineFirstManager(_Estimates):
    """The site's limit goes first to the sessions that leave first."""

    kind: Literal["earliest_deadline_first"] = Field(description="selects this manager")


class LeastLaxityFirstManager(_Estimates):
    """The site's limit goes first to the sessions with the least slack (time left − time needed)."""

    kind: Literal["least_laxity_first"] = Field(description="selects this manager")


class PriceResponsiveManager(_Estimates):
    """Each session charges in the cheapest hours before its departure that still meet its need."""

    kind: Literal["price_responsive"] = Field(description="selects this manager")


class PeakShavingManager(_Estimates):
    """Sessions in plug-in order within a site load target below the site's limit."""

    kind: Literal["peak_shaving"] = Field(description="selects this manager")
    target_kw: float = Field(gt=0, description="site load to stay under, below the site's limit")


class _V2g(_Estimates):
    interval_min: float = Field(default=15.0, gt=0, description="re-plan every site this often, beside its events")


class V2gPeakShavingManager(_V2g):
    """Charging under a threshold; V2G EVs discharge what urgent charging puts above it, and recharge below it.

    Urgent EVs (slack to their departure need, or to a V2G EV's guarantee, under two intervals)
    charge at full power whatever the threshold: the guarantees come first.
    """

    kind: Literal["v2g_peak_shaving"] = Field(description="selects this manager")
    threshold_kw: float = Field(gt=0, description="site import to stay under, with V2G discharge if need be")


class V2gPriceArbitrageManager(_V2g):
    """V2G EVs charge when the energy price is low and discharge when it (or the feed-in price) is high.

    Urgent EVs and EVs without V2G charge as least-laxity-first does.
    """

    kind: Literal["v2g_price_arbitrage"] = Field(description="selects this manager")
    charge_below_per_kwh: float = Field(ge=0, description="V2G EVs charge while the energy price is at most this")
    discharge_above_per_kwh: float = Field(
        ge=0, description="V2G EVs discharge while the energy or feed-in price is at least this"
    )

    @model_validator(mode="after")
    def _ordered(self) -> V2gPriceArbitrageManager:
        if self.discharge_above_per_kwh <= self.charge_below_per_kwh:
            raise ValueError(
                f"discharge_above_per_kwh (={self.discharge_above_per_kwh}) must be above charge_below_per_kwh "
                f"(={self.charge_below_per_kwh}), or the EVs would buy and sell at the same price"
            )
        return self


ManagerConfig = Annotated[
    UncontrolledManager
    | EqualShareManager
    | FirstComeFirstServedManager
    | EarliestDeadlineFirstManager
    | LeastLaxityFirstManager
    | PriceResponsiveManager
    | PeakShavingManager
    | V2gPeakShavingManager
    | V2gPriceArbitrageManager
    | OcppManager,
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- scenario


OPENADR_WITH_CSMS = (
    "an OpenADR VTN and a CSMS (manager kind ocpp) cannot share a run: the VTN's caps would not reach the "
    "CSMS, which decides the chargers' power; give the CSMS the VTN's events itself, or use a built-in "
    "manager (e.g. kind: equal_share) with openadr"
)


class Scenario(QuietModel):
    """A complete scenario: network, fleet, demand, tariff and network manager."""

    QUIET = ("degradation",)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="also the default results folder name")
    seed: int = Field(ge=0, description="seed of every random stream; same scenario + seed give identical results")
    start: AwareDatetime = Field(description="timezone-aware start, e.g. 2026-01-05T00:00:00+01:00")
    timezone: str | None = Field(
        default=None,
        description="IANA time zone of every wall-clock rule (hours of the week, time-of-use periods, shifts, "
        "demand-response windows, report axes), daylight saving included, e.g. Europe/Amsterdam; "
        "none: the fixed UTC offset of start, all year",
    )
    horizon_days: float = Field(gt=0, le=3660, description="simulated duration")
    network: Network = Field(description="the sites and their chargers")
    fleet: list[FleetEntry] = Field(min_length=1, description="the vehicle mix of the arriving drivers")
    demand: list[Demand] = Field(min_length=1, description="arrival sources: synthetic (Poisson) or trace replay")
    tariff: Tariff = Field(default=Tariff(), description="what drivers pay; a site's own tariff replaces it there")
    manager: ManagerConfig = Field(
        default=UncontrolledManager(kind="uncontrolled"), description="the network manager, chosen by kind"
    )
    serviceability: Serviceability | None = Field(default=None, description="faults and repairs; none: no faults")
    grid: Grid = Field(
        default=Grid(), description="energy prices, demand charges, demand response, PV, storage and transformers"
    )
    pricing: Pricing | None = Field(default=None, description="dynamic pricing: the price per kWh set at an interval")
    drivers: Drivers = Field(
        default=Drivers(), description="repeat customers, their site choice and their price response"
    )
    memberships: list[MembershipPlan] = Field(
        default=[], description="membership plans drivers may join (needs drivers.population)"
    )
    payments: Payments | None = Field(default=None, description="payment methods; none: payments never fail, no fees")
    ev_side: EvSide | None = Field(default=None, description="connectors, vehicle data, interop; none: all compatible")
    degradation: Degradation | None = Field(
        default=None, description="battery ageing of the EVs and its cost; none: not computed"
    )

    @field_validator("start", mode="before")
    @classmethod
    def _date_needs_zone(cls, v: Any) -> Any:
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            raise ValueError("start needs a time and a timezone, e.g. 2026-01-05T00:00:00+01:00")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            close = difflib.get_close_matches(v, sorted(available_timezones()), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(
                f"{v!r} is not an IANA time zone name; {hint}write a name such as Europe/Amsterdam or "
                "America/New_York, or leave timezone out to use the fixed UTC offset of start"
            ) from None
        return v

    @model_validator(mode="after")
    def _demand_sites_exist(self, info: ValidationInfo) -> Scenario:
        ids = [s.id for s in self.network.sites]
        traces = (info.context or {}).get("traces", {})  # read by TraceDemand in this validation
        for i, d in enumerate(self.demand):
            if d.site is not None and d.site not in ids:
                raise LocatedError(
                    ("demand", i, "site"), f"{d.site!r} is not a site of the network; sites: {', '.join(ids)}"
                )
            if d.kind == "trace":
                trace = traces.get(d.path)
                if trace is None:
                    trace = read_trace(d.path)
                first, last = trace["arrival"].min(), trace["arrival"].max()
                end = self.start + dt.timedelta(days=self.horizon_days)
                if len(trace) and (last < self.start or first >= end):
                    raise LocatedError(
                        ("demand", i, "path"),
                        f"no session of trace {d.path.name} arrives within the horizon "
                        f"({self.start.isoformat()} + {self.horizon_days:g} days); the trace runs from "
                        f"{first.isoformat()} to {last.isoformat()}: move start",
                    )
            if d.kind == "trace" and d.site is None:
                unknown = sorted(set(trace["station"]) - set(ids))
                if unknown:
                    raise LocatedError(
                        ("demand", i, "path"),
                        f"trace stations {', '.join(unknown[:5])} are not sites of the network; "
                        "rename them to site ids or set demand.site",
                    )
        return self

    @model_validator(mode="after")
    def _fits_in_a_run(self) -> Scenario:
        ports = [s.port_count for s in self.network.sites]
        if sum(ports) > MAX_PORTS:
            i = int(np.argmax(ports))
            raise LocatedError(
                ("network", "sites", i, "chargers"),
                f"the network has {sum(ports):,} ports ({ports[i]:,} at site {self.network.sites[i].id}); "
                f"a run holds at most {MAX_PORTS:,}: lower the chargers' count",
            )
        hours = self.horizon_days * 24.0
        with np.errstate(over="ignore", invalid="ignore"):  # rates near the float limit are inf here, and refused
            expected = [
                float(d.rate.weekly_per_hour().mean()) * hours if isinstance(d, SyntheticDemand) else 0.0
                for d in self.demand
            ]
        total = sum(expected)
        if not total <= MAX_EXPECTED_ARRIVALS:
            i = int(np.argmax(expected))
            raise LocatedError(
                ("demand", i, "rate"),
                f"this rate brings about {expected[i]:,.3g} arrivals in {self.horizon_days:g} days (all demand: "
                f"{total:,.3g}); a run holds at most {MAX_EXPECTED_ARRIVALS:,} sessions (about 1.3 kB of memory "
                "each): lower per_hour or horizon_days",
            )
        return self

    @model_validator(mode="after")
    def _grid_sites_exist(self) -> Scenario:
        ids = {s.id for s in self.network.sites}
        known = f"not in the network; sites: {', '.join(sorted(ids))}"
        for site in self.grid.sites:
            if site not in ids:
                raise LocatedError(("grid", "sites", site), f"grid names site(s) {site} {known}")
        for i, event in enumerate(self.grid.demand_response.events):
            for site in event.sites or []:
                if site not in ids:
                    where = ("grid", "demand_response", "events", i, "sites")
                    raise LocatedError(where, f"grid names site(s) {site} (demand_response.events[{i}]) {known}")
        return self

    @model_validator(mode="after")
    def _openadr_needs_a_built_in_manager(self) -> Scenario:
        if self.grid.demand_response.openadr is not None and isinstance(self.manager, OcppManager):
            raise LocatedError(("grid", "demand_response", "openadr"), OPENADR_WITH_CSMS)
        return self

    @model_validator(mode="after")
    def _hardware_models_exist(self) -> Scenario:
        if self.serviceability is not None:
            models = {g.model for site in self.network.sites for g in site.chargers}
            unknown = sorted(set(self.serviceability.hardware) - models)
            if unknown:
                raise LocatedError(
                    ("serviceability", "hardware", unknown[0]),
                    f"serviceability.hardware names charger model(s) {', '.join(unknown)} that no site has; "
                    f"charger models in the network: {', '.join(sorted(models))}",
                )
        return self

    @model_validator(mode="after")
    def _revenue_consistent(self) -> Scenario:
        ids = {s.id for s in self.network.sites}
        for i, site in enumerate(self.network.sites):
            if site.tariff is not None and site.tariff.currency != self.tariff.currency:
                raise LocatedError(
                    ("network", "sites", i, "tariff", "currency"),
                    f"site {site.id} bills in {site.tariff.currency} but the scenario tariff uses "
                    f"{self.tariff.currency}; one network bills in one currency",
                )
        named: list[tuple[tuple[str | int, ...], list[str] | None]] = [
            (("pricing", "sites"), self.pricing.sites if self.pricing is not None else None)
        ]
        named += [(("memberships", i, "sites"), p.sites) for i, p in enumerate(self.memberships)]
        for where, sites in named:
            for j, site_id in enumerate(sites or []):
                if site_id not in ids:
                    raise LocatedError((*where, j), f"names site(s) {site_id} not in the network")
        if self.memberships and self.drivers.population is None:
            raise ValueError("memberships need repeat customers: set drivers.population (e.g. 5000)")
        names = [p.name for p in self.memberships]
        if len(set(names)) != len(names):
            raise ValueError(f"membership plan names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _one_v2g_per_model(self) -> Scenario:
        seen: dict[str, V2gVehicle | None] = {}
        fleets = [(("fleet",), self.fleet)] + [(("demand", i, "fleet"), d.fleet) for i, d in enumerate(self.demand)]
        for where, entries in fleets:
            for j, e in enumerate(entries or []):
                name = e.ev_model().name
                if name in seen and seen[name] != e.v2g:
                    raise LocatedError(
                        (*where, j, "v2g"),
                        f"vehicle model {name} is listed again with other v2g settings; a model has one set of "
                        "V2G limits: give it the same v2g everywhere (or a written-out model of another name)",
                    )
                seen[name] = e.v2g
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


class YamlLoader(yaml.SafeLoader):
    """The safe YAML loader, with a date that does not exist (2026-02-30) reported at its line."""


def _construct_timestamp(loader: YamlLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} is not a date and time that exists ({exc})", node.start_mark
        ) from None


YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


class _UniqueKeyLoader(YamlLoader):
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
    "v2g_peak_shaving",
    "v2g_price_arbitrage",
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


def _bare(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _tag(model: type[BaseModel]) -> str | None:
    """The `kind` (or `dist`) a model of a discriminated union is chosen by."""
    for key in ("kind", "dist"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is Literal:
            return str(typing.get_args(field.annotation)[0])
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _step(tp: Any, part: Any) -> Any:
    """The type found one location part below `tp` (None if the location leaves the model)."""
    tp = _bare(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [_bare(m) for m in typing.get_args(tp) if m is not type(None)]
        for m in members:
            if _is_model(m) and _tag(m) == part:
                return m
        found = [r for r in (_step(m, part) for m in members) if r is not None]
        return found[0] if found else None
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(tp)[1]
    if _is_model(tp) and isinstance(part, str) and part in tp.model_fields:
        return tp.model_fields[part].annotation
    return None


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The scenario model a pydantic error location points into, or None."""
    tp: Any = Scenario
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-", "tagged-union")):
            continue
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _bare(tp)
    return tp if _is_model(tp) else None


def _unknown_key(loc: Sequence[Any]) -> str:
    """'unknown key' with the nearest valid key, or the keys this kind takes."""
    key, model = loc[-1] if loc else "", _model_at(loc[:-1])
    if model is None:
        return "unknown key; check the spelling (`chargetwin schema` lists every key)"
    valid = list(model.model_fields)
    near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    if near:
        return f"unknown key; did you mean `{near[0]}`?"
    tag = _tag(model)
    if tag is not None:
        return f"unknown key: kind {tag} does not take `{key}`; it takes only {', '.join(valid)}"
    return f"unknown key; this section takes only {', '.join(valid)}"


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "timezone_aware":
        return "needs a timezone, e.g. 2026-01-05T00:00:00+01:00"
    return msg


def _not_numbers(data: Any, keys: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of NaN values (``.nan``) in parsed YAML data."""
    if isinstance(data, float) and math.isnan(data):
        yield keys
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _not_numbers(v, (*keys, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _not_numbers(v, (*keys, i))


_PATH_IN_MESSAGE = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*)")


def _path_keys(text: str) -> list[Any]:
    return [int(k) if k.isdigit() else k for k in re.findall(r"[A-Za-z_]\w*|\d+", text)]


def validate_data(data: Any, source: str, base_dir: Path, root: yaml.Node | None = None) -> Scenario:
    """Validate already-parsed scenario data; raise ScenarioError listing every problem."""
    nans = list(_not_numbers(data))
    if nans:
        problems = []
        for at in nans:
            line = yaml_line(root, at)
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {_yaml_path(at)[0]}: not a number (.nan); give a number")
        raise ScenarioError(problems)
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            located = (err.get("ctx") or {}).get("error")
            msg = _message(err)
            of_key = isinstance(located, LocatedError)  # the line that makes the reference
            if isinstance(located, LocatedError):
                loc = (*loc, *located.loc)
            elif not loc and (m := _PATH_IN_MESSAGE.match(msg)) and yaml_line(root, _path_keys(m.group(1))):
                line = yaml_line(root, _path_keys(m.group(1)))  # a cross-field rule that names its place
                problems.append(f"{source}:{line}: {msg}")
                continue
            path, keys = _yaml_path(loc)
            line = yaml_line(root, keys, of_key=of_key)
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {path}: {msg}")
        raise ScenarioError(problems) from None


def read_yaml_text(path: Path, what: str = "scenario file") -> str:
    """The text of a YAML file; ScenarioError (one line: file, line, fix) if it is unreadable or not UTF-8 text."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the {what} ({exc.strerror})"]) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ScenarioError([f"{path}: the {what} is UTF-16 or UTF-32 encoded; save it as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        if any(b < 32 and b not in (9, 10, 13) for b in raw[:8192]):  # control bytes: no text encoding has them
            raise ScenarioError(
                [f"{path}:{line}: the {what} is not text (byte 0x{byte:02x}); give a YAML text file"]
            ) from None
        raise ScenarioError(
            [f"{path}:{line}: the {what} is not UTF-8 (byte 0x{byte:02x}; Latin-1 or Windows-1252?); save it as UTF-8"]
        ) from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise ScenarioError([f"{path}:{line}: the {what} is not text (it holds NUL bytes); give a YAML text file"])
    return text


def load_scenario(path: str | Path, *, seed: int | None = None, horizon_days: float | None = None) -> Scenario:
    """Read, validate and return the scenario in `path`, with optional overrides.

    Raises:
        ScenarioError: the file is missing, is not YAML, or breaks the schema; the error
            lists every problem, each naming the file, the YAML path and the fix.
    """
    path = Path(path)
    text = read_yaml_text(path)
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
