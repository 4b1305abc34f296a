"""The revenue sections: tariffs, dynamic pricing, drivers' choices, memberships and payments."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.config.base import Distribution, LogNormal, QuietModel, StrictModel, within

__all__ = [
    "DemandPricing",
    "Drivers",
    "EnergyPricePricing",
    "EveryNth",
    "Loyalty",
    "MemberDiscount",
    "MembershipPlan",
    "OccupancyPricing",
    "PaymentMethod",
    "Payments",
    "Points",
    "PriceResponse",
    "Pricing",
    "SiteChoice",
    "Tariff",
    "TariffPeriod",
    "TimeTier",
]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def clock_min(text: str) -> int:
    """Minutes after midnight of an ``HH:MM`` time (``24:00`` is the end of the day)."""
    m = _CLOCK.match(text)
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, e.g. 17:30")
    return int(m.group(1)) * 60 + int(m.group(2))


# ---------------------------------------------------------------- tariffs


class TimeTier(StrictModel):
    """A price per minute that applies while the delivered power is at least `from_kw`."""

    from_kw: float = Field(ge=0, description="delivered power from which this tier applies")
    price_per_min: float = Field(ge=0, description="price per minute in this tier")


class _Prices(QuietModel):
    """The components a time-of-use period may override; `None` keeps the tariff's own."""

    QUIET = ("v2g_remuneration_per_kwh",)

    price_per_kwh: float | None = Field(
        default=None, ge=0, description="price of energy; none in a period: the tariff's"
    )
    price_per_min: float | None = Field(
        default=None, ge=0, description="price per minute plugged in; none in a period: the tariff's"
    )
    time_tiers: list[TimeTier] | None = Field(
        default=None,
        description="price per minute by delivered power, replacing price_per_min; the first starts at from_kw 0",
    )
    session_fee: float | None = Field(
        default=None, ge=0, description="fee at the start of a session; none in a period: the tariff's"
    )
    idle_fee_per_min: float | None = Field(
        default=None,
        ge=0,
        description="price per idle minute after the battery is full; none in a period: the tariff's",
    )
    v2g_remuneration_per_kwh: float | None = Field(
        default=None,
        ge=0,
        description="paid to the driver per kWh discharged from the EV (V2G); none in a period: the tariff's",
    )

    @field_validator("time_tiers")
    @classmethod
    def _tiers(cls, tiers: list[TimeTier] | None) -> list[TimeTier] | None:
        if tiers is None:
            return None
        if not tiers or tiers[0].from_kw != 0:
            raise ValueError("the first time tier must start at from_kw: 0 so that every power has a price")
        froms = [t.from_kw for t in tiers]
        if any(b <= a for a, b in zip(froms, froms[1:], strict=False)):
            raise ValueError(f"time tiers must be in strictly increasing from_kw order, got {froms}")
        return tiers


class TariffPeriod(_Prices):
    """A time-of-use period: on `days`, from `start` to `end` local time, these prices replace the tariff's.

    Local time is wall-clock time in the scenario's `timezone`, daylight saving included. An
    `end` before the `start` runs past midnight into the next day. Where periods overlap, the
    first listed wins.
    """

    days: list[Day] = Field(default=list(DAYS), min_length=1, description="days the period applies on")
    start: str = Field(description="HH:MM local time")
    end: str = Field(description="HH:MM local time; 24:00 is midnight at the end of the day")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        clock_min(v)
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> TariffPeriod:
        if clock_min(self.start) == clock_min(self.end) % 1440:
            raise ValueError(f"start and end are both {self.start}: the period would be empty")
        return self


class Tariff(_Prices):
    """What a session costs the driver: energy, time, session and idle fees, time of use, minimum and maximum.

    The price shown at the start of a session is the price paid for it (`fixed_at_start`),
    whatever dynamic pricing does later; time-of-use periods of that tariff still apply as
    the session crosses them.
    """

    currency: str = Field(
        default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of every amount of the scenario"
    )
    price_per_kwh: float = Field(default=0.0, ge=0, description="price of energy delivered")
    price_per_min: float = Field(default=0.0, ge=0, description="per minute plugged in; time_tiers replace it")
    session_fee: float = Field(default=0.0, ge=0, description="fee at the start of a session")
    idle_fee_per_min: float = Field(default=0.0, ge=0, description="per minute plugged in after the battery is full")
    v2g_remuneration_per_kwh: float = Field(
        default=0.0, ge=0, description="paid to the driver per kWh discharged from the EV (V2G)"
    )
    idle_grace_min: float = Field(default=0.0, ge=0, description="free minutes after the battery is full")
    idle_only_when_busy: bool = Field(default=False, description="idle minutes count only while a driver waits")
    min_charge: float = Field(default=0.0, ge=0, description="smallest amount of a session that delivered energy")
    max_charge: float | None = Field(default=None, gt=0, description="largest amount of a session")
    fixed_at_start: bool = Field(default=True, description="the price shown at the start is the price paid")
    periods: list[TariffPeriod] = Field(default=[], description="time-of-use periods, in the scenario's time zone")

    @model_validator(mode="after")
    def _bounds(self) -> Tariff:
        if self.max_charge is not None and self.max_charge < self.min_charge:
            raise ValueError(f"max_charge (={self.max_charge}) must be >= min_charge (={self.min_charge})")
        return self


# ---------------------------------------------------------------- dynamic pricing


class _PricingBase(StrictModel):
    interval_min: float = Field(default=15.0, gt=0, description="how often the price is set")
    floor_per_kwh: float = Field(ge=0, description="lowest price set")
    ceiling_per_kwh: float = Field(ge=0, description="highest price set")
    sites: list[str] | None = Field(default=None, description="site ids; none: every site")

    @model_validator(mode="after")
    def _ordered(self) -> _PricingBase:
        if self.ceiling_per_kwh < self.floor_per_kwh:
            raise ValueError(f"ceiling_per_kwh (={self.ceiling_per_kwh}) must be >= floor_per_kwh")
        return self


class _Utilization(_PricingBase):
    low_frac: float = Field(default=0.2, ge=0, description="at or below this the price is the floor")
    high_frac: float = Field(default=0.9, gt=0, description="at or above this the price is the ceiling")

    @model_validator(mode="after")
    def _range(self) -> _Utilization:
        if self.high_frac <= self.low_frac:
            raise ValueError(f"high_frac (={self.high_frac}) must be > low_frac (={self.low_frac})")
        return self


class OccupancyPricing(_Utilization):
    """Price per kWh from the share of a site's ports in use, linear between floor and ceiling."""

    kind: Literal["occupancy"] = Field(description="selects occupancy pricing")


class DemandPricing(_Utilization):
    """Price per kWh from (ports in use + drivers waiting) / ports, linear between floor and ceiling."""

    kind: Literal["demand_based"] = Field(description="selects demand-based pricing")


class EnergyPricePricing(_PricingBase):
    """Price per kWh = energy price × markup + adder, between floor and ceiling."""

    kind: Literal["follow_energy_price"] = Field(description="selects pricing that follows the energy price")
    markup: float = Field(default=1.0, ge=0, description="factor on the energy price")
    adder_per_kwh: float = Field(default=0.0, description="amount added after the markup")


Pricing = Annotated[OccupancyPricing | DemandPricing | EnergyPricePricing, Field(discriminator="kind")]


# ---------------------------------------------------------------- drivers


class SiteChoice(StrictModel):
    """A multinomial logit over the sites within `radius_km` of where a driver meant to charge.

    Utility of a site: ``beta_price × price per kWh + beta_wait_per_min × expected wait
    + beta_detour_per_km × detour + beta_member × (driver's plan valid there)``.
    """

    radius_km: float = Field(gt=0, description="sites within this distance are considered")
    beta_price: float = Field(default=-5.0, le=0, description="per currency unit per kWh")
    beta_wait_per_min: float = Field(default=-0.1, le=0, description="utility of each minute of expected wait")
    beta_detour_per_km: float = Field(default=-0.3, le=0, description="utility of each km of detour")
    beta_member: float = Field(default=0.5, ge=0, description="utility of a site where the driver's plan applies")
    speed_kmh: float = Field(default=40.0, gt=0, description="to reach another site")
    session_min: float = Field(default=45.0, gt=0, description="a driver's guess of how long a port stays taken")


class PriceResponse(StrictModel):
    """How drivers answer the price they see on arrival.

    Above their willingness to pay a driver shifts to a time within `shift_window_h`
    when the price is acceptable (a `shift_share` of drivers can), or does not charge.
    Below it, the energy asked for scales by ``(price / reference_price_per_kwh) ^ elasticity``,
    never above the original need.
    """

    reference_price_per_kwh: float = Field(gt=0, description="price at which drivers ask for their whole need")
    elasticity: float = Field(
        default=-0.3, le=0, description="the need scales by (price / reference) ^ elasticity, never above it"
    )
    willingness_to_pay_per_kwh: Distribution = Field(
        default=LogNormal(dist="lognormal", median=0.7, sigma=0.3),
        description="highest price per kWh each driver accepts",
    )
    shift_share: float = Field(
        default=0.0, ge=0, le=1, description="share of priced-out drivers who come back when a cheaper period starts"
    )
    shift_window_h: float = Field(default=4.0, gt=0, description="how far ahead they look for that cheaper period")

    @model_validator(mode="after")
    def _check(self) -> PriceResponse:
        within("willingness_to_pay_per_kwh", self.willingness_to_pay_per_kwh, 0.0, float("inf"))
        return self


class Drivers(StrictModel):
    """Who the drivers are: a population of repeat customers, their site choice and price response."""

    population: int | None = Field(
        default=None, ge=1, le=10_000_000, description="repeat customers; none: each arrival is new"
    )
    frequency_sigma: float = Field(default=1.0, ge=0, description="lognormal spread of how often each one charges")
    site_choice: SiteChoice | None = Field(
        default=None, description="drivers choose among nearby sites; none: each charges at the site it arrives at"
    )
    price_response: PriceResponse | None = Field(
        default=None, description="drivers answer the price; none: they charge at any price"
    )


# ---------------------------------------------------------------- memberships and payments


class MemberDiscount(StrictModel):
    """Share taken off each tariff component for members."""

    energy_frac: float = Field(default=0.0, ge=0, le=1, description="share off the energy charge")
    time_frac: float = Field(default=0.0, ge=0, le=1, description="share off the time charge")
    session_fee_frac: float = Field(default=0.0, ge=0, le=1, description="share off the session fee")
    idle_frac: float = Field(default=0.0, ge=0, le=1, description="share off the idle fee")


class EveryNth(StrictModel):
    """Every `n`-th session of a member is discounted by `discount_frac`."""

    kind: Literal["every_nth"] = Field(description="selects every-nth-session loyalty")
    n: int = Field(ge=2, description="every n-th session of a member is discounted")
    discount_frac: float = Field(gt=0, le=1, description="share off that session")


class Points(StrictModel):
    """Members earn points per currency unit paid; `redeem_points` take `redeem_value` off a later session."""

    kind: Literal["points"] = Field(description="selects points loyalty")
    points_per_unit: float = Field(gt=0, description="points earned per currency unit paid")
    redeem_points: float = Field(gt=0, description="points redeemed at once")
    redeem_value: float = Field(gt=0, description="amount those points take off a later session")


Loyalty = Annotated[EveryNth | Points, Field(discriminator="kind")]


class MembershipPlan(StrictModel):
    """A monthly plan with discounted rates (the shape of Electrify America Pass+ or IONITY Passport).

    A driver joins when, over their last 30 days, the discounts would have saved more
    than the monthly fee, renews every 30 days while that holds, and leaves when it no
    longer does.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="plan name, in results")
    monthly_fee: float = Field(ge=0, description="fee per month of membership")
    discount: MemberDiscount = Field(default=MemberDiscount(), description="member discounts per tariff component")
    loyalty: Loyalty | None = Field(default=None, description="a loyalty scheme for members; none: no loyalty")
    sites: list[str] | None = Field(default=None, description="where the plan applies; none: every site")


class PaymentMethod(StrictModel):
    """How a driver pays: a share of drivers, a processing fee, a pre-authorization hold and a failure rate."""

    method: Literal["app", "rfid", "contactless", "qr", "plug_and_charge"] = Field(description="way of paying")
    share: float = Field(gt=0, description="relative weight among the methods")
    fee_pct: float = Field(default=0.0, ge=0, le=100, description="percent of the amount")
    fee_fixed: float = Field(default=0.0, ge=0, description="per payment")
    preauth_hold: float = Field(default=0.0, ge=0, description="amount held on the card at the start")
    failure_prob: float = Field(default=0.0, ge=0, le=1, description="share of payment attempts that fail")


class Payments(StrictModel):
    """The payment methods drivers use; each driver has one."""

    methods: list[PaymentMethod] = Field(
        min_length=1, description="payment methods with their shares; each driver has one"
    )

    @field_validator("methods")
    @classmethod
    def _unique(cls, methods: list[PaymentMethod]) -> list[PaymentMethod]:
        names = [m.method for m in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"each payment method may be listed once, got {names}")
        if "plug_and_charge" in names:
            raise ValueError(
                "plug_and_charge is not drawn by share: the EV's contract certificate decides it; set its share per "
                "fleet entry (plug_and_charge_share) and its fees in ev_side.authorization.plug_and_charge"
            )
        return methods
