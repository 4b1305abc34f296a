"""The `degradation` section: battery ageing of the EVs a run charges (and discharges), and what it costs.

The model and its published parameters are in `sim.degradation`; this section holds only what a
user chooses: the state of the batteries (temperature, age, the mileage behind that age) and the
value of a kWh of lost capacity. Without the section a run computes no degradation.
"""

from __future__ import annotations

from pydantic import Field

from sim.config.base import StrictModel

__all__ = ["Degradation"]


class Degradation(StrictModel):
    """Battery ageing of every EV plugged in: calendar and cycle capacity fade, and its cost."""

    temperature_c: float = Field(
        default=25.0,
        ge=-20.0,
        le=60.0,
        description="battery temperature, the same all run (calendar ageing rises with it; the model was fitted "
        "at 35 to 50 °C)",
    )
    battery_age_days: float = Field(
        default=730.0,
        gt=0,
        description="age of the EVs' batteries; fade of a power law in time slows as a battery ages "
        "(EV2Gym's reference: 2 years)",
    )
    km_per_year: float = Field(
        default=15_000.0,
        gt=0,
        description="distance driven per year up to that age, which sets the charge throughput behind it "
        "(EV2Gym's reference)",
    )
    kwh_per_km: float = Field(
        default=0.186,
        gt=0,
        description="energy use per km that the throughput behind the age follows (EV2Gym's reference)",
    )
    cost_per_kwh: float = Field(
        default=115.0,
        ge=0,
        description="value of one kWh of lost battery capacity, in the tariff's currency (default: the 2024 "
        "average lithium-ion pack price, USD 115/kWh, BloombergNEF battery price survey, December 2024)",
    )
