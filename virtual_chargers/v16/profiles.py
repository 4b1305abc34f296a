"""OCPP 1.6 charging profiles (as the CSMS sends them) to `sim.charging_profiles` in kW and t_s, and back."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose, SchedulePeriod
from virtual_chargers.clock import parse_ocpp_time
from virtual_chargers.meter import amps_to_kw, kw_to_amps, kw_to_w, w_to_kw

__all__ = ["from_ocpp", "schedule_to_ocpp"]

_RECURRENCE_S = {"Daily": 86400.0, "Weekly": 604800.0}


def from_ocpp(
    profile: dict[str, Any],
    t_s_of: Callable[[datetime], float],
    voltage_v: float,
    phases: int,
    *,
    received_t_s: float,
    allow_discharge: bool = False,
) -> ChargingProfile:
    """A ``csChargingProfiles`` dict (snake_case keys, as the ocpp library hands it over) in kW and t_s.

    ``received_t_s`` is when the charger got the profile: the start of a ChargePointMaxProfile that names
    no ``startSchedule``. A negative limit asks a bidirectional connector to discharge (OCPP 2.1 V2X):
    accepted only with ``allow_discharge``.

    Raises:
        ValueError: For a profile a charge point must reject (the message says why).
    """
    schedule = profile["charging_schedule"]
    unit = schedule["charging_rate_unit"]
    periods = []
    for p in schedule["charging_schedule_period"]:
        limit = float(p["limit"])
        if limit < 0 and not allow_discharge:  # a negative limit discharges: for bidirectional connectors only
            raise ValueError(f"limit {limit:g} is negative: this charger does not discharge (no V2X)")
        if unit == "A":
            n = int(p.get("number_phases") or phases)
            limit_kw = amps_to_kw(limit, voltage_v, min(n, phases))
        else:
            limit_kw = w_to_kw(limit)
        periods.append(SchedulePeriod(float(p["start_period"]), limit_kw))
    kind = profile["charging_profile_kind"]
    purpose = ChargingProfilePurpose(profile["charging_profile_purpose"])
    start = schedule.get("start_schedule")
    start_t_s = t_s_of(parse_ocpp_time(start)) if start and kind != "Relative" else None
    # startSchedule is optional for every kind. OCPP 1.6 (ChargingSchedule) and 2.0.1 (ChargingScheduleType)
    # define it alike: "Starting point of an absolute schedule. If absent the schedule will be relative to
    # start of charging." So an Absolute or Recurring profile without it counts from the transaction start,
    # as a Relative one does (a Recurring one then repeats from there). A ChargePointMaxProfile belongs to no
    # transaction: the charger's own start point (Relative: "determined by the charge point") is the
    # moment it received the profile.
    if start_t_s is None and purpose is ChargingProfilePurpose.CHARGE_POINT_MAX:
        start_t_s = received_t_s
    recurring_s = None
    if kind == "Recurring":
        recurrency = profile.get("recurrency_kind")
        if recurrency not in _RECURRENCE_S:
            raise ValueError("a Recurring profile needs recurrencyKind Daily or Weekly")
        recurring_s = _RECURRENCE_S[recurrency]
    valid_from, valid_to = profile.get("valid_from"), profile.get("valid_to")
    return ChargingProfile(
        profile_id=int(profile["charging_profile_id"]),
        purpose=purpose,
        stack_level=int(profile["stack_level"]),
        periods=tuple(periods),
        start_t_s=start_t_s,
        duration_s=float(schedule["duration"]) if schedule.get("duration") else None,
        valid_from_t_s=t_s_of(parse_ocpp_time(valid_from)) if valid_from else -math.inf,
        valid_to_t_s=t_s_of(parse_ocpp_time(valid_to)) if valid_to else math.inf,
        recurring_s=recurring_s,
    )


def schedule_to_ocpp(
    steps: list[tuple[float, float]],
    t0_s: float,
    duration_s: int,
    unit: str,
    max_kw: float,
    voltage_v: float,
    phases: int,
) -> dict[str, Any]:
    """A composite schedule from `sim.charging_profiles.composite_schedule` as a 1.6 ``chargingSchedule``.

    Where no profile limits (inf) the connector's rating ``max_kw`` is the limit.
    """
    periods: list[dict[str, Any]] = []
    for start_t_s, limit_kw in steps:
        kw = min(limit_kw, max_kw)
        limit = kw_to_amps(kw, voltage_v, phases) if unit == "A" else kw_to_w(kw)
        period = {"startPeriod": int(round(start_t_s - t0_s)), "limit": round(limit, 1)}
        if periods and periods[-1]["startPeriod"] == period["startPeriod"]:
            periods[-1] = period
        else:
            periods.append(period)
    return {"duration": duration_s, "chargingRateUnit": unit, "chargingSchedulePeriod": periods}
