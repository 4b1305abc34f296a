"""Bidirectional charging (V2G): which sessions may discharge, how far, and until when.

A session on a bidirectional port (`ChargerGroup.bidirectional`) whose EV is V2G-capable
(`FleetEntry.v2g`, over ISO 15118) discharges at a constant power when the connector's cap is
negative (a manager's `SetPowerLimit` or a charging profile with a negative limit). Its state of
charge then falls linearly, ``s(t) = s0 − P·(t − t0) / C``, exact between events, and it stops at
its *floor*, the higher of

* the driver's minimum SoC (`V2gVehicle.min_soc_frac`), and
* the departure guard: the lowest SoC from which the EV, charging at its full power on this port
  (its charge curve clipped at the port's rating), still reaches the departure-SoC guarantee by
  its departure.

The guard rises as departure nears, so the stop time solves ``s(t) = guard(t)``; it is found by
bisection to the resolution of a float, on the side where the guarantee still holds. A session
already at or below its floor is refused: its connector pauses, as at a zero limit. Keeping the
guarantee once discharging has stopped is the manager's part: it has to let the EV charge
(`V2gView.floor_soc_frac` shows how close it is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.units import S_PER_H

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.ev import ChargeProfile, EVModel

__all__ = ["V2gLimits", "at_floor", "discharge_plan", "guard_soc_frac", "v2g_configured", "v2g_limits"]

_BISECTIONS = 200  # more than a float's 2**-52 resolution over any horizon needs; stops early once it cannot move


@dataclass(frozen=True, slots=True)
class V2gLimits:
    """What a V2G-capable EV allows (ISO 15118-20 style): its discharge power, minimum SoC and departure guarantee.

    `departure_soc_frac` None: the driver's target is the guarantee.
    """

    max_discharge_kw: float
    min_soc_frac: float
    departure_soc_frac: float | None = None

    def __post_init__(self) -> None:
        """Fail fast on limits no EV states."""
        if not self.max_discharge_kw > 0:
            raise ValueError(f"max_discharge_kw(={self.max_discharge_kw}) must be > 0")
        if not 0 <= self.min_soc_frac < 1:
            raise ValueError(f"min_soc_frac(={self.min_soc_frac}) must be in [0, 1)")

    def guarantee(self, target_soc_frac: float) -> float:
        """The state of charge guaranteed at departure for a driver who wants `target_soc_frac` (never above it)."""
        if self.departure_soc_frac is None:
            return target_soc_frac
        return min(self.departure_soc_frac, target_soc_frac)


def v2g_limits(scenario: Scenario, models: Sequence[EVModel]) -> list[V2gLimits | None]:
    """Each vehicle model's V2G limits (None: it only charges), in the order of `models`.

    Raises:
        ValueError: One model is given two different `v2g` settings in the fleets.
    """
    by_name: dict[str, V2gLimits | None] = {}
    for entries in [scenario.fleet, *(d.fleet for d in scenario.demand if d.fleet)]:
        for e in entries:
            name = e.ev_model().name
            v = e.v2g
            limits = V2gLimits(v.max_discharge_kw, v.min_soc_frac, v.departure_soc_frac) if v is not None else None
            if name in by_name and by_name[name] != limits:
                raise ValueError(f"vehicle model {name!r} has two different v2g settings in the fleets; give it one")
            by_name[name] = limits
    return [by_name.get(m.name) for m in models]


def v2g_configured(scenario: Scenario) -> bool:
    """The scenario has something of V2G: a bidirectional charger, a V2G vehicle, an export price or limit."""
    grid = scenario.grid
    fleets = [scenario.fleet, *(d.fleet for d in scenario.demand if d.fleet)]
    return (
        any(g.bidirectional for site in scenario.network.sites for g in site.chargers)
        or any(e.v2g is not None for entries in fleets for e in entries)
        or grid.export_price is not None
        or any(g.export_limit_kw is not None for g in grid.sites.values())
    )


def guard_soc_frac(full: ChargeProfile, guarantee_soc_frac: float, depart_t_s: float, t_s: float) -> float:
    """Lowest SoC at `t_s` from which charging on `full` reaches `guarantee_soc_frac` by `depart_t_s`.

    0 when even an empty battery would get there in time.
    """
    need_s = full.time_at(guarantee_soc_frac) - (depart_t_s - t_s)
    return full.soc_at(need_s) if need_s > 0 else 0.0


def at_floor(
    limits: V2gLimits, full: ChargeProfile, target_soc_frac: float, depart_t_s: float, soc_frac: float, t_s: float
) -> bool:
    """Whether an EV at `soc_frac` is at its floor at `t_s` (its minimum SoC or its departure guard): it refuses."""
    if soc_frac <= limits.min_soc_frac:
        return True
    return soc_frac <= guard_soc_frac(full, limits.guarantee(target_soc_frac), depart_t_s, t_s)


def discharge_plan(
    limits: V2gLimits,
    full: ChargeProfile,
    target_soc_frac: float,
    depart_t_s: float,
    soc_frac: float,
    power_kw: float,
    capacity_kwh: float,
    t_s: float,
) -> tuple[float, float]:
    """When a discharge at `power_kw` from `soc_frac` at `t_s` must stop, and the SoC it stops at.

    The stop time is `t_s` when the session is at its floor already (the discharge is refused),
    and inf when it can run until departure.

    Args:
        limits: The EV's V2G limits.
        full: The EV's charge profile on this port at the port's rating (its fastest way back).
        target_soc_frac: The driver's target (the guarantee unless the limits give one).
        depart_t_s: The EV's departure.
        soc_frac: State of charge now.
        power_kw: Discharge power, > 0.
        capacity_kwh: Battery capacity.
        t_s: Now.
    """
    guarantee = limits.guarantee(target_soc_frac)
    rate = power_kw / S_PER_H / capacity_kwh  # SoC per second

    def soc_at(t: float) -> float:
        return soc_frac - rate * (t - t_s)

    def above(t: float) -> bool:
        return soc_at(t) > guard_soc_frac(full, guarantee, depart_t_s, t)

    if at_floor(limits, full, target_soc_frac, depart_t_s, soc_frac, t_s):
        return t_s, soc_frac
    t_min = t_s + (soc_frac - limits.min_soc_frac) / rate  # reaches the minimum SoC
    end = min(t_min, depart_t_s)
    if above(end) or end == depart_t_s and soc_at(end) >= guarantee:
        return (t_min, limits.min_soc_frac) if t_min < depart_t_s else (math.inf, soc_at(depart_t_s))
    lo, hi = t_s, end  # above(lo), not above(hi): the guard is met in between
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if above(mid):
            lo = mid
        else:
            hi = mid
    return lo, soc_at(lo)
