"""Bidirectional charging (V2G) settings of a vehicle model: what the EV lets a charger take back.

The limits follow ISO 15118-20's bidirectional power transfer: the EV states the most power it
will discharge, the lowest state of charge it accepts (its minimum SoC), and the state of charge
it must still be able to reach by its departure (the departure-SoC guarantee).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from sim.config.base import StrictModel

__all__ = ["V2gVehicle"]


class V2gVehicle(StrictModel):
    """A vehicle model's V2G limits; its EVs that speak ISO 15118 (`iso15118_share`) may discharge."""

    max_discharge_kw: float = Field(gt=0, le=1000, description="most power the EV discharges (EVMaximumDischargePower)")
    min_soc_frac: float = Field(
        default=0.2, ge=0, lt=1, description="lowest state of charge the driver accepts; discharging stops there"
    )
    departure_soc_frac: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="state of charge guaranteed at departure: no discharge leaves the EV unable to reach it by "
        "its departure at its full charging power; none: the driver's target",
    )

    @model_validator(mode="after")
    def _ordered(self) -> V2gVehicle:
        if self.departure_soc_frac is not None and self.departure_soc_frac < self.min_soc_frac:
            raise ValueError(
                f"departure_soc_frac (={self.departure_soc_frac}) is below min_soc_frac (={self.min_soc_frac}): "
                "raise departure_soc_frac or lower min_soc_frac"
            )
        return self
