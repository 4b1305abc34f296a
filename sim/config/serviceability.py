"""The `serviceability` section: fault modes, crews, maintenance and outside events.

Fault modes use the OCPP 1.6 StatusNotification error codes, with the ChargeX minimum
required error code (``CX…``) where one fits, so a mode reads the way a CSMS would see it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.config.base import Constant, Distribution, LogNormal, StrictModel, within

__all__ = [
    "FAULT_PRESETS",
    "Crew",
    "ExponentialTTF",
    "FaultMode",
    "FirmwareUpdates",
    "GridOutages",
    "OperatorConfig",
    "PreventiveOperator",
    "ReactiveOperator",
    "Serviceability",
    "UptimeMinPower",
    "Vandalism",
]

ErrorCode = Literal[
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal",
]  # fmt: skip


class WeibullTTF(StrictModel):
    """Weibull time to failure: shape > 1 models wear-out, which preventive maintenance renews."""

    dist: Literal["weibull"] = Field(description="selects a Weibull time to failure")
    shape: float = Field(gt=0, description="shape; > 1: wear-out")
    scale_days: float = Field(gt=0, description="scale")


class ExponentialTTF(StrictModel):
    """Exponential (memoryless) time to failure with the given mean."""

    dist: Literal["exponential"] = Field(description="selects an exponential time to failure")
    mtbf_days: float = Field(gt=0, description="mean time between failures")


TimeToFailure = Annotated[WeibullTTF | ExponentialTTF, Field(discriminator="dist")]


class FaultMode(StrictModel):
    """One way a charger fails, how it shows and how it is repaired."""

    error_code: ErrorCode = Field(description="OCPP 1.6 StatusNotification errorCode")
    chargex_code: str | None = Field(default=None, pattern=r"^CX\d{3}$", description="ChargeX MREC, where one fits")
    ttf: TimeToFailure = Field(description="time to failure of each charger (or connector)")
    detected: bool = Field(description="reported by the charger (Faulted); else silent until a driver fails")
    scope: Literal["charger", "connector"] = Field(description="all ports of the charger, or one connector")
    derate_frac: float = Field(default=0.0, ge=0, lt=1, description="> 0: ports keep charging at this share of power")
    remote_reset_success: float = Field(default=0.0, ge=0, le=1, description="chance a remote reset clears it")
    diagnosis_min: Distribution = Field(
        default=Constant(value=15.0), description="technician's time to find the fault on site"
    )
    repair_min: Distribution = Field(default=Constant(value=60.0), description="technician's time to repair it")
    part_in_van_prob: float = Field(
        default=1.0, ge=0, le=1, description="else a part is ordered and a second visit made"
    )
    part_lead_days: Distribution = Field(default=Constant(value=3.0), description="delivery time of an ordered part")
    part_cost: float = Field(default=0.0, ge=0, description="cost of the part per repair")

    @model_validator(mode="after")
    def _check(self) -> FaultMode:
        for name in ("diagnosis_min", "repair_min", "part_lead_days"):
            within(name, getattr(self, name), 0.0, float("inf"))
        return self

    @property
    def wear_out(self) -> bool:
        """True when the failure rate grows with age, so maintenance renews the part."""
        return self.ttf.dist == "weibull" and self.ttf.shape > 1


def _mode(**kw: object) -> FaultMode:
    return FaultMode.model_validate(kw)


# Round figures for planning, in line with published field reliability studies of public
# chargers (software and payment faults dominate; power electronics wear out).
FAULT_PRESETS: dict[str, FaultMode] = {
    "communication_loss": _mode(
        error_code="OtherError", ttf={"dist": "exponential", "mtbf_days": 120}, detected=True, scope="charger",
        remote_reset_success=0.6, repair_min=30),
    "software_hang": _mode(
        error_code="InternalError", ttf={"dist": "exponential", "mtbf_days": 90}, detected=False, scope="charger",
        remote_reset_success=0.9, repair_min=30),
    "payment_terminal_failure": _mode(
        error_code="ReaderFailure", ttf={"dist": "exponential", "mtbf_days": 240}, detected=False, scope="charger",
        remote_reset_success=0.3, diagnosis_min=20, repair_min=45, part_in_van_prob=0.8, part_lead_days=3,
        part_cost=350),
    "power_module_failure": _mode(
        error_code="PowerSwitchFailure", ttf={"dist": "weibull", "shape": 1.8, "scale_days": 900}, detected=True,
        scope="charger", derate_frac=0.5, diagnosis_min=30, repair_min=120, part_in_van_prob=0.3,
        part_lead_days=10, part_cost=2500),
    "connector_damage": _mode(
        error_code="ConnectorLockFailure", chargex_code="CX001", ttf={"dist": "weibull", "shape": 2.0,
        "scale_days": 600}, detected=False, scope="connector", diagnosis_min=15, repair_min=60,
        part_in_van_prob=0.7, part_lead_days=5, part_cost=600),
    "display_failure": _mode(
        error_code="OtherError", ttf={"dist": "exponential", "mtbf_days": 500}, detected=False, scope="charger",
        remote_reset_success=0.2, repair_min=60, part_in_van_prob=0.5, part_lead_days=7, part_cost=400),
    "ground_fault_trip": _mode(
        error_code="GroundFailure", chargex_code="CX002", ttf={"dist": "exponential", "mtbf_days": 300},
        detected=True, scope="charger", remote_reset_success=0.5, diagnosis_min=20, repair_min=30),
    "high_temperature": _mode(
        error_code="HighTemperature", chargex_code="CX003", ttf={"dist": "weibull", "shape": 1.5,
        "scale_days": 700}, detected=True, scope="charger", derate_frac=0.5, repair_min=60,
        part_in_van_prob=0.6, part_lead_days=5, part_cost=150),
}  # fmt: skip


class Depot(StrictModel):
    """Where a crew starts each shift."""

    lat: float = Field(ge=-90, le=90, description="latitude")
    lon: float = Field(ge=-180, le=180, description="longitude")


class Shift(StrictModel):
    """Working hours of a crew, local wall-clock time in the scenario's `timezone`; days 0 = Monday."""

    start_h: float = Field(default=7.0, ge=0, lt=24, description="local hour the shift starts")
    end_h: float = Field(default=19.0, gt=0, le=24, description="local hour the shift ends")
    days: list[int] = Field(default=[0, 1, 2, 3, 4], min_length=1, description="working days, 0 = Monday")

    @model_validator(mode="after")
    def _check(self) -> Shift:
        if self.end_h <= self.start_h:
            raise ValueError(f"end_h (={self.end_h}) must be after start_h (={self.start_h})")
        if any(not 0 <= d <= 6 for d in self.days) or len(set(self.days)) != len(self.days):
            raise ValueError("days must be distinct weekday numbers 0 (Monday) to 6 (Sunday)")
        return self


class Crew(StrictModel):
    """Technicians working from one depot; a site is served by the crew with the nearest depot."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="crew id, in results")
    technicians: int = Field(default=1, ge=1, le=10_000, description="technicians who work in parallel")
    depot: Depot = Field(description="where the crew starts each shift")
    shift: Shift = Field(default=Shift(), description="working hours")


class Travel(StrictModel):
    """Road travel: straight-line distance × detour factor at an average speed."""

    speed_kmh: float = Field(default=70.0, gt=0, description="average driving speed")
    detour_factor: float = Field(default=1.3, ge=1, description="road distance over straight-line distance")


class ReactiveOperator(StrictModel):
    """Repair on report: a remote reset first where it can help, else a technician."""

    kind: Literal["reactive"] = Field(description="selects the reactive operator")


class PreventiveOperator(StrictModel):
    """Reactive repairs plus a scheduled visit to every charger each `interval_days`."""

    kind: Literal["preventive"] = Field(description="selects the preventive operator")
    interval_days: float = Field(default=90.0, gt=0, description="time between visits to each charger")
    visit_min: Distribution = Field(default=Constant(value=60.0), description="duration of a preventive visit")


OperatorConfig = Annotated[ReactiveOperator | PreventiveOperator, Field(discriminator="kind")]


class GridOutages(StrictModel):
    """Utility interruptions at each site: all ports down, excluded from NEVI uptime."""

    per_site_per_year: float = Field(default=0.0, ge=0, description="mean number of outages per site and year")
    duration_min: Distribution = Field(
        default=LogNormal(dist="lognormal", median=90.0, sigma=0.8), description="how long each outage lasts"
    )


class Vandalism(StrictModel):
    """Damage to a charger: down until a technician repairs it; excluded from NEVI uptime."""

    per_charger_per_year: float = Field(default=0.0, ge=0, description="mean number of incidents per charger and year")
    repair_min: Distribution = Field(
        default=Constant(value=120.0), description="technician's time to repair the damage"
    )
    part_lead_days: Distribution = Field(
        default=Constant(value=5.0), description="delivery time of the replacement part, which is always ordered"
    )
    part_cost: float = Field(default=800.0, ge=0, description="cost of the replacement part")


class FirmwareUpdates(StrictModel):
    """Planned firmware updates of every charger: a short planned outage that can fail."""

    interval_days: float = Field(gt=0, description="time between updates of each charger")
    duration_min: Distribution = Field(default=Constant(value=15.0), description="planned outage of an update")
    failure_prob: float = Field(
        default=0.02, ge=0, le=1, description="chance an update fails, leaving the charger faulted"
    )


class UptimeMinPower(StrictModel):
    """The least power a port must be able to deliver to count as up, per class (NEVI, 23 CFR 680.116).

    A port derated below its class minimum is down for uptime and availability while it
    still charges. A port rated below its class minimum is held to its own rating instead:
    any derating makes it down. 0 for a class: up at any power.
    """

    dc_kw: float = Field(default=150.0, ge=0, allow_inf_nan=False, description="DC ports; NEVI: 150 kW")
    ac_kw: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="AC ports; 0: any power")

    def port_min_kw(self, rated_kw: float, dc: bool) -> float:
        """The power below which a port rated `rated_kw` counts as down."""
        return min(rated_kw, self.dc_kw if dc else self.ac_kw)


class Serviceability(StrictModel):
    """Reliability of the hardware and the operator's maintenance work."""

    fault_modes: dict[str, FaultMode] = Field(default={}, description="modes of your own, by name")
    hardware: dict[str, list[str]] = Field(description="charger model → names of its fault modes")
    crews: list[Crew] = Field(min_length=1, description="maintenance crews; the nearest depot serves a site")
    travel: Travel = Field(default=Travel(), description="how technicians travel")
    operator: OperatorConfig = Field(
        default=ReactiveOperator(kind="reactive"), description="the maintenance operator: reactive or preventive"
    )
    remote_reset_min: Distribution = Field(default=Constant(value=5.0), description="time a remote reset takes")
    grid_outages: GridOutages = Field(
        default=GridOutages(), description="utility interruptions (excluded from NEVI uptime)"
    )
    vandalism: Vandalism = Field(default=Vandalism(), description="vandalism (excluded from NEVI uptime)")
    firmware: FirmwareUpdates | None = Field(default=None, description="planned firmware updates; none: no updates")
    labour_cost_per_h: float = Field(default=85.0, ge=0, description="technician cost per hour")
    maintenance_excluded_h_per_port_year: float | None = Field(
        default=None, ge=0, description="cap on scheduled maintenance counted as excluded outage; none: no cap"
    )
    uptime_min_power: UptimeMinPower = Field(
        default=UptimeMinPower(), description="per class, the power a port must deliver to count as up"
    )

    @field_validator("crews")
    @classmethod
    def _unique_crews(cls, crews: list[Crew]) -> list[Crew]:
        ids = [c.id for c in crews]
        if len(set(ids)) != len(ids):
            raise ValueError("crew ids must be unique")
        return crews

    @model_validator(mode="after")
    def _known_modes(self) -> Serviceability:
        known = set(FAULT_PRESETS) | set(self.fault_modes)
        for model, names in self.hardware.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(
                    f"hardware.{model}: unknown fault mode {', '.join(map(repr, unknown))}; known modes: "
                    f"{', '.join(sorted(known))} (or define it under fault_modes)"
                )
        return self

    def mode(self, name: str) -> FaultMode:
        """The fault mode called `name`: the scenario's own, else the preset."""
        return self.fault_modes.get(name) or FAULT_PRESETS[name]
