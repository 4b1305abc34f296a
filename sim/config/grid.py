"""The `grid` section: energy prices, demand charges, demand response, PV and storage.

Also the smart-charging managers' settings, which the `manager` section selects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator, model_validator

from sim.config.base import Constant, Distribution, NonNegativeFloats, QuietModel, StrictModel, within
from sim.csvfiles import read_price_series

__all__ = [
    "DemandResponse",
    "DemandResponseEvent",
    "EnergyPrice",
    "Grid",
    "OpenAdr",
    "PriceFlat",
    "PriceSeries",
    "PriceTou",
    "RandomDemandResponse",
    "SiteGrid",
    "Storage",
    "SolarPV",
]

# A clear spring day at mid latitudes: share of the PV peak in each hour of the day.
_PV_SHAPE = [0, 0, 0, 0, 0, 0.02, 0.08, 0.2, 0.38, 0.56, 0.7, 0.78, 0.8, 0.77, 0.68, 0.54, 0.37, 0.19, 0.07,
             0.01, 0, 0, 0, 0]  # fmt: skip


class PriceFlat(StrictModel):
    """One energy price at all times."""

    kind: Literal["flat"] = Field(description="selects a flat price")
    per_kwh: float = Field(ge=0, description="energy price at all times")


class PriceTou(StrictModel):
    """Time-of-use: a price per hour of the day, optionally another for weekends (Saturday, Sunday)."""

    kind: Literal["tou"] = Field(description="selects time-of-use prices")
    per_kwh_by_hour: NonNegativeFloats = Field(
        min_length=24, max_length=24, description="24 energy prices per local hour, from 00:00"
    )
    weekend_per_kwh_by_hour: NonNegativeFloats | None = Field(
        default=None,
        min_length=24,
        max_length=24,
        description="24 prices for Saturday and Sunday; none: per_kwh_by_hour every day",
    )


class PriceSeries(StrictModel):
    """A price series from a CSV with columns `timestamp` (ISO 8601 with zone) and `price_per_kwh`.

    Each price holds until the next timestamp; before the first, the first price applies.
    """

    kind: Literal["series"] = Field(description="selects a price series")
    path: Path = Field(description="CSV file, relative to the scenario file")

    @field_validator("path")
    @classmethod
    def _readable(cls, path: Path, info: ValidationInfo) -> Path:
        base = Path((info.context or {}).get("base_dir", "."))
        full = path if path.is_absolute() else base / path
        read_price_series(full)
        return full.resolve()


EnergyPrice = Annotated[PriceFlat | PriceTou | PriceSeries, Field(discriminator="kind")]


class DemandResponseEvent(QuietModel):
    """A scheduled demand-response event: a cap (or a shed from the load at its start) on sites, or an increase.

    An increase event (`min_kw`) asks the sites to draw at least that much from the grid while it
    lasts (to absorb a surplus of renewable generation); it limits nothing, and managers see it as
    `SiteView.dr_min_kw`.
    """

    QUIET = ("min_kw",)

    start: AwareDatetime = Field(description="timezone-aware start of the event")
    duration_min: float = Field(gt=0, description="how long the event lasts")
    notify_min: float = Field(default=60.0, ge=0, description="notice before the start")
    cap_kw: float | None = Field(
        default=None, ge=0, description="site load cap during the event; give cap_kw or shed_kw"
    )
    shed_kw: float | None = Field(
        default=None, gt=0, description="load to shed from the site's load at the start; give cap_kw or shed_kw"
    )
    sites: list[str] | None = Field(default=None, description="site ids; none: every site")
    opt_out_allowed: bool = Field(default=False, description="a manager may decline the event")
    min_kw: float | None = Field(
        default=None,
        gt=0,
        description="an increase event: the site should draw at least this from the grid; give cap_kw, shed_kw "
        "or min_kw",
    )

    @model_validator(mode="after")
    def _one_limit(self) -> DemandResponseEvent:
        if self.min_kw is not None:
            if self.cap_kw is not None or self.shed_kw is not None:
                raise ValueError("an increase event (min_kw) takes no cap_kw or shed_kw: give one of the three")
        elif (self.cap_kw is None) == (self.shed_kw is None):
            raise ValueError("give exactly one of cap_kw or shed_kw (or min_kw for an increase event)")
        return self


class RandomDemandResponse(StrictModel):
    """Events drawn at random: Poisson per site, starting within a window of hours on weekdays."""

    per_site_per_month: float = Field(ge=0, description="mean number of events per site and month")
    duration_min: Distribution = Field(default=Constant(value=120.0), description="how long each event lasts")
    notify_min: float = Field(default=60.0, ge=0, description="notice before the start")
    cap_frac: float = Field(default=0.5, ge=0, le=1, description="cap as a share of the site's limit")
    window_h: tuple[float, float] = Field(default=(16.0, 20.0), description="local hours the event may start in")

    @model_validator(mode="after")
    def _check(self) -> RandomDemandResponse:
        within("duration_min", self.duration_min, 0.0, float("inf"))
        lo, hi = self.window_h
        if not 0 <= lo < hi <= 24:
            raise ValueError(f"window_h (={self.window_h}) must be two hours 0 <= start < end <= 24")
        return self


class OpenAdr(StrictModel):
    """Demand-response events from a real OpenADR 2.0b server (VTN), received by the twin's VEN.

    The run is then paced against the wall clock at `speed` (simulated seconds per second).
    An event's times are times of the simulated calendar (`event_times: simulated`, the
    default: 18:00 on the run's third day is the scenario start's date + 2 days at 18:00,
    whatever the speed), or wall-clock times met at the matching simulated time
    (`event_times: wall`; durations are then wall seconds too). SIMPLE level signals cap a
    site at `simple_level_cap_frac[level]` of its limit; LOAD_CONTROL x-loadControlCapacity
    caps it at that fraction, x-loadControlSetpoint at that many kW, and
    x-loadControlLevelOffset sheds that many kW from the load at the start.
    """

    vtn_url: str = Field(pattern=r"^https?://", description="e.g. http://127.0.0.1:8080/OpenADR2/Simple/2.0b")
    ven_name: str = Field(default="chargetwin", min_length=1, description="name the VEN registers with at the VTN")
    policy: Literal["opt_in", "opt_out"] = Field(default="opt_in", description="answer to every event")
    speed: float = Field(default=60.0, gt=0, description="simulated seconds per wall-clock second")
    simple_level_cap_frac: list[float] = Field(
        default=[1.0, 0.75, 0.5, 0.25],
        min_length=4,
        max_length=4,
        description="cap as a share of the site's limit for SIMPLE levels 0, 1, 2, 3",
    )
    report_interval_s: float = Field(default=60.0, gt=0, description="wall-clock seconds between load reports")
    event_times: Literal["simulated", "wall"] = Field(
        default="simulated", description="event times on the simulated calendar, or wall-clock times"
    )


class DemandResponse(StrictModel):
    """Scheduled and random demand-response events, and an OpenADR server to take more from."""

    events: list[DemandResponseEvent] = Field(default=[], description="scheduled events")
    random: RandomDemandResponse | None = Field(default=None, description="events drawn at random")
    openadr: OpenAdr | None = Field(default=None, description="events from an OpenADR 2.0b server (the run is paced)")


class SolarPV(StrictModel):
    """On-site PV: a peak power and the share of it produced in each hour of the day."""

    peak_kw: float = Field(gt=0, description="peak output")
    profile_by_hour: list[float] = Field(
        default=_PV_SHAPE,
        min_length=24,
        max_length=24,
        description="24 shares of peak_kw per hour, on the UTC offset of start; default: a clear day",
    )

    @field_validator("profile_by_hour")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if min(v) < 0 or max(v) > 1:
            raise ValueError("profile_by_hour values are shares of the peak, between 0 and 1")
        return v


class Storage(StrictModel):
    """A stationary battery behind the meter, dispatched at every change of the site's load (`sim.behind_meter`)."""

    capacity_kwh: float = Field(gt=0, description="usable energy")
    power_kw: float = Field(gt=0, description="largest charge and discharge power")
    round_trip_efficiency: float = Field(default=0.9, gt=0, le=1, description="energy out over energy in")
    initial_soc_frac: float = Field(default=0.5, ge=0, le=1, description="state of charge at the start")
    strategy: Literal["peak_shaving", "self_consumption"] = Field(
        default="peak_shaving",
        description="peak_shaving (cover import above threshold_kw) or self_consumption (store PV surplus)",
    )
    threshold_kw: float | None = Field(default=None, ge=0, description="peak shaving: keep grid import below")

    @model_validator(mode="after")
    def _threshold(self) -> Storage:
        if self.strategy == "peak_shaving" and self.threshold_kw is None:
            raise ValueError("peak_shaving needs threshold_kw, the grid import to keep below")
        return self


class SiteGrid(QuietModel):
    """What one site has behind its grid connection."""

    QUIET = ("export_limit_kw",)

    transformer_kw: float | None = Field(default=None, gt=0, description="a second limit below the connection")
    pv: SolarPV | None = Field(default=None, description="on-site PV; none: no PV")
    storage: Storage | None = Field(default=None, description="a battery behind the meter; none: no battery")
    demand_charge_per_kw_month: float | None = Field(
        default=None, ge=0, description="this site's demand charge; none: the grid's demand_charge_per_kw_month"
    )
    export_limit_kw: float | None = Field(
        default=None,
        ge=0,
        description="most the site may feed into the grid (V2G discharge and PV beyond the site's load), measured "
        "like import overloads, and kept by scaling the discharges on a site with limits: enforce; none: no limit",
    )


class Grid(QuietModel):
    """Energy prices, demand charges, demand response, and each site's PV, storage and transformer."""

    QUIET = ("export_price",)

    energy_price: EnergyPrice = Field(
        default=PriceFlat(kind="flat", per_kwh=0.0),
        description="price the operator pays for energy: flat, time of use or a series",
    )
    export_price: EnergyPrice | None = Field(
        default=None,
        description="feed-in price the operator is paid for energy exported (V2G, PV): flat, time of use or a "
        "series; none: export earns nothing",
    )
    demand_charge_per_kw_month: float = Field(default=0.0, ge=0, description="on each site's monthly 15-min peak")
    demand_response: DemandResponse = Field(default=DemandResponse(), description="demand-response events")
    sites: dict[str, SiteGrid] = Field(
        default={}, description="per site id: transformer, PV, storage and demand charge"
    )
