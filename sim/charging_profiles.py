"""OCPP 1.6 smart-charging profiles, combined the way a charge point does (§3.13), in kW and t_s.

A profile limits power at ``t_s`` when it is valid (``valid_from_t_s <= t_s < valid_to_t_s``) and its
schedule has a period in force: the schedule has started (at ``start_t_s``, or at the transaction start
for a relative profile), has not yet run for ``duration_s`` and, when recurring, restarts every
``recurring_s``. Within a purpose the highest stack level in force wins; a TxProfile overrides the
TxDefaultProfile during a transaction; the ChargePointMaxProfile caps the result.

Times that are whole seconds (as OCPP sends them) give exact breakpoints. Limits are in kW here; the
conversion from OCPP's W or A happens in ``virtual_chargers``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

__all__ = [
    "ChargingProfile",
    "ChargingProfilePurpose",
    "ProfileSet",
    "SchedulePeriod",
    "charger_max_at",
    "composite_schedule",
    "in_force_span",
    "limit_at",
    "next_change_t_s",
]


class ChargingProfilePurpose(Enum):
    """What a profile limits, with its OCPP 1.6 name as value."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """A limit that holds from ``start_offset_s`` after the schedule start until the next period."""

    start_offset_s: float
    limit_kw: float

    def __post_init__(self) -> None:
        """Fail fast on a negative or non-finite offset, or a non-finite limit.

        A negative limit asks a bidirectional connector to discharge (OCPP 2.1 V2X; see `sim.charging`).
        """
        if not (math.isfinite(self.start_offset_s) and self.start_offset_s >= 0):
            raise ValueError(f"start_offset_s(={self.start_offset_s}) must be finite and >= 0")
        if not math.isfinite(self.limit_kw):
            raise ValueError(f"limit_kw(={self.limit_kw}) must be finite (negative: discharge)")


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """An OCPP 1.6 charging profile with one schedule.

    Attributes:
        profile_id: chargingProfileId.
        purpose: What the profile limits.
        stack_level: Priority within its purpose; higher wins, 0 is the lowest.
        periods: The schedule, the first period starting at offset 0.
        start_t_s: When the schedule starts; None: it starts with the transaction (a relative profile, or an
            absolute or recurring one sent without a start).
        duration_s: How long each run of the schedule lasts; None means until the next run or for ever.
        valid_from_t_s: The profile applies from this time on.
        valid_to_t_s: The profile no longer applies from this time on.
        recurring_s: Period of repetition from the schedule start (86400 for Daily, 604800 for Weekly), or None.
    """

    profile_id: int
    purpose: ChargingProfilePurpose
    stack_level: int
    periods: tuple[SchedulePeriod, ...]
    start_t_s: float | None = None
    duration_s: float | None = None
    valid_from_t_s: float = -math.inf
    valid_to_t_s: float = math.inf
    recurring_s: float | None = None

    def __post_init__(self) -> None:
        """Fail fast on a profile a charge point would reject."""
        object.__setattr__(self, "periods", tuple(self.periods))
        name = f"profile {self.profile_id}"
        if self.stack_level < 0:
            raise ValueError(f"{name}: stack_level(={self.stack_level}) must be >= 0")
        if not self.periods:
            raise ValueError(f"{name}: a schedule needs at least one period")
        if self.periods[0].start_offset_s != 0:
            raise ValueError(f"{name}: the first period must start at 0, not {self.periods[0].start_offset_s}")
        for a, b in pairwise(self.periods):
            if b.start_offset_s <= a.start_offset_s:
                raise ValueError(
                    f"{name}: period offsets must increase strictly, got {b.start_offset_s} after {a.start_offset_s}"
                )
        if self.start_t_s is not None and not math.isfinite(self.start_t_s):
            raise ValueError(f"{name}: start_t_s(={self.start_t_s}) must be finite")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"{name}: duration_s(={self.duration_s}) must be > 0")
        if not self.valid_from_t_s < self.valid_to_t_s:
            raise ValueError(
                f"{name}: valid_from_t_s(={self.valid_from_t_s}) must be < valid_to_t_s(={self.valid_to_t_s})"
            )
        if self.recurring_s is not None:
            if not (math.isfinite(self.recurring_s) and self.recurring_s > 0):
                raise ValueError(f"{name}: recurring_s(={self.recurring_s}) must be finite and > 0")
            if self.periods[-1].start_offset_s >= self.recurring_s:
                raise ValueError(
                    f"{name}: period offset {self.periods[-1].start_offset_s} never comes within "
                    f"recurring_s(={self.recurring_s})"
                )
        if self.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX and self.start_t_s is None:
            # It caps the whole charger, so there is no one transaction to be relative to.
            raise ValueError(f"{name}: a ChargePointMaxProfile needs start_t_s (got start_t_s={self.start_t_s})")


class ProfileSet:
    """The profiles installed on one connector plus its charger's ChargePointMax profiles.

    It also knows whether a transaction runs, because OCPP ties TxProfiles to one: a TxProfile is
    rejected outside a transaction and deleted when the transaction stops.
    """

    def __init__(self) -> None:
        self._profiles: list[ChargingProfile] = []
        self.tx_start_t_s: float | None = None

    @property
    def profiles(self) -> tuple[ChargingProfile, ...]:
        """The installed profiles, oldest first."""
        return tuple(self._profiles)

    def install(self, profile: ChargingProfile) -> None:
        """Install a profile, replacing one with the same id or the same purpose and stack level.

        Raises:
            ValueError: For a TxProfile while no transaction runs (OCPP answers Rejected).
        """
        if profile.purpose is ChargingProfilePurpose.TX and self.tx_start_t_s is None:
            raise ValueError(f"TxProfile {profile.profile_id} needs a running transaction")
        self._profiles = [
            p
            for p in self._profiles
            if p.profile_id != profile.profile_id
            and (p.purpose, p.stack_level) != (profile.purpose, profile.stack_level)
        ]
        self._profiles.append(profile)

    def clear(
        self,
        profile_id: int | None = None,
        purpose: ChargingProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove profiles like ClearChargingProfile and return how many went (0 is OCPP's Unknown).

        An id selects that profile alone; otherwise every given criterion must match, and none clears all.
        """

        def matches(p: ChargingProfile) -> bool:
            if profile_id is not None:
                return p.profile_id == profile_id
            return (purpose is None or p.purpose is purpose) and (stack_level is None or p.stack_level == stack_level)

        kept = [p for p in self._profiles if not matches(p)]
        removed = len(self._profiles) - len(kept)
        self._profiles = kept
        return removed

    def start_transaction(self, t_s: float) -> None:
        """Mark a transaction as started at ``t_s``: relative profiles count from here."""
        self.tx_start_t_s = t_s

    def stop_transaction(self) -> None:
        """End the transaction and delete its TxProfiles."""
        self.tx_start_t_s = None
        self.clear(purpose=ChargingProfilePurpose.TX)


def _anchor_t_s(p: ChargingProfile, tx_start_t_s: float | None) -> float | None:
    """When p's schedule counts from, or None when p cannot apply (TxProfile or relative, no transaction)."""
    if p.purpose is ChargingProfilePurpose.TX and tx_start_t_s is None:
        return None
    return p.start_t_s if p.start_t_s is not None else tx_start_t_s


def _run_start_t_s(p: ChargingProfile, t_s: float, anchor_t_s: float) -> float:
    """Start of the run of p's schedule that contains ``t_s`` (the anchor unless recurring)."""
    if p.recurring_s is None or t_s < anchor_t_s:
        return anchor_t_s
    return anchor_t_s + (t_s - anchor_t_s) // p.recurring_s * p.recurring_s


def _period_limit_kw(p: ChargingProfile, t_s: float, tx_start_t_s: float | None) -> float | None:
    """Limit of p's period in force at ``t_s``, or None when p does not apply then."""
    anchor_t_s = _anchor_t_s(p, tx_start_t_s)
    if anchor_t_s is None or t_s < anchor_t_s or not p.valid_from_t_s <= t_s < p.valid_to_t_s:
        return None
    elapsed_s = t_s - _run_start_t_s(p, t_s, anchor_t_s)
    if p.duration_s is not None and elapsed_s >= p.duration_s:
        return None
    return p.periods[bisect_right(p.periods, elapsed_s, key=lambda q: q.start_offset_s) - 1].limit_kw


def _purpose_limit_kw(
    profiles: Sequence[ChargingProfile], purpose: ChargingProfilePurpose, t_s: float, tx_start_t_s: float | None
) -> float | None:
    """Limit of the highest stack level of ``purpose`` in force at ``t_s`` (the lower limit on a tie)."""
    in_force = [
        (p.stack_level, limit_kw)
        for p in profiles
        if p.purpose is purpose and (limit_kw := _period_limit_kw(p, t_s, tx_start_t_s)) is not None
    ]
    if not in_force:
        return None
    top = max(level for level, _ in in_force)
    return min(limit_kw for level, limit_kw in in_force if level == top)


def limit_at(profiles: Sequence[ChargingProfile], t_s: float, tx_start_t_s: float | None) -> float:
    """Composite limit in kW at ``t_s``, inf when no profile applies.

    Args:
        profiles: The connector's profiles and its charger's ChargePointMax profiles.
        t_s: Simulation time.
        tx_start_t_s: Start of the running transaction, or None outside a transaction.
    """
    tx_kw = _purpose_limit_kw(profiles, ChargingProfilePurpose.TX, t_s, tx_start_t_s)
    if tx_kw is None:
        tx_kw = _purpose_limit_kw(profiles, ChargingProfilePurpose.TX_DEFAULT, t_s, tx_start_t_s)
    cap_kw = _purpose_limit_kw(profiles, ChargingProfilePurpose.CHARGE_POINT_MAX, t_s, tx_start_t_s)
    return min((x for x in (tx_kw, cap_kw) if x is not None), default=math.inf)


def charger_max_at(profiles: Sequence[ChargingProfile], t_s: float) -> float:
    """The ChargePointMax limit in kW at ``t_s`` (inf: none in force).

    It is a limit on the whole charge point, shared by the connectors drawing power (OCPP 1.6
    ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile); `limit_at` caps each connector by all of it.
    """
    kw = _purpose_limit_kw(profiles, ChargingProfilePurpose.CHARGE_POINT_MAX, t_s, None)
    return math.inf if kw is None else kw


def in_force_span(p: ChargingProfile) -> tuple[float, float] | None:
    """From when to when p can be in force, or None when that depends on a transaction start.

    Outside the span p never limits anything; inside, a recurring profile with a duration may still pause.
    """
    if p.start_t_s is None:
        return None
    begin_t_s = max(p.start_t_s, p.valid_from_t_s)
    end_t_s = p.valid_to_t_s
    if p.duration_s is not None and p.recurring_s is None:
        end_t_s = min(end_t_s, p.start_t_s + p.duration_s)
    return begin_t_s, end_t_s


def _next_breakpoint_t_s(p: ChargingProfile, t_s: float, tx_start_t_s: float | None) -> float:
    """Earliest time after ``t_s`` at which p's validity, run or period changes (inf if never)."""
    anchor_t_s = _anchor_t_s(p, tx_start_t_s)
    if anchor_t_s is None or t_s >= p.valid_to_t_s:
        return math.inf
    if t_s < p.valid_from_t_s:
        return p.valid_from_t_s
    run_t_s = _run_start_t_s(p, t_s, anchor_t_s)
    times = [p.valid_to_t_s, *(run_t_s + q.start_offset_s for q in p.periods)]
    if p.duration_s is not None:
        times.append(run_t_s + p.duration_s)
    if p.recurring_s is not None:
        times.append(run_t_s + p.recurring_s)
    return min((x for x in times if x > t_s), default=math.inf)


def next_change_t_s(profiles: Sequence[ChargingProfile], t_s: float, tx_start_t_s: float | None) -> float:
    """Next breakpoint after ``t_s``: the earliest time the composite limit may change (inf if never).

    The limit may turn out unchanged there (say a lower stack level takes over at the same limit);
    this keeps the answer finite to compute even with recurring profiles.
    """
    return min((_next_breakpoint_t_s(p, t_s, tx_start_t_s) for p in profiles), default=math.inf)


def composite_schedule(
    profiles: Sequence[ChargingProfile], t0_s: float, t1_s: float, tx_start_t_s: float | None
) -> list[tuple[float, float]]:
    """The composite limit on ``[t0_s, t1_s)`` as ``(start_t_s, limit_kw)`` steps, as GetCompositeSchedule.

    Consecutive steps have different limits; each step lasts until the next one starts, the last until t1_s.

    Raises:
        ValueError: Unless t0_s < t1_s and t1_s is finite.
    """
    if not (t0_s < t1_s and math.isfinite(t1_s)):
        raise ValueError(f"need t0_s(={t0_s}) < t1_s(={t1_s}) < inf")
    steps = [(t0_s, limit_at(profiles, t0_s, tx_start_t_s))]
    t_s = next_change_t_s(profiles, t0_s, tx_start_t_s)
    while t_s < t1_s:
        limit_kw = limit_at(profiles, t_s, tx_start_t_s)
        if limit_kw != steps[-1][1]:
            steps.append((t_s, limit_kw))
        t_s = next_change_t_s(profiles, t_s, tx_start_t_s)
    return steps
