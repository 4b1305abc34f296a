"""A charging session from arrival to departure, and the integration of its energy.

While plugged in, a session charges along one `ChargeProfile` at a time (one per power
cap); each stretch on one profile is an *interval*. Closing an interval evaluates the
state of charge in closed form, so energy is exact whatever the event spacing.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

from sim.ev_arrivals import NO_EV, NoEv
from sim.units import S_PER_H

if TYPE_CHECKING:
    from sim.config.revenue import MembershipPlan
    from sim.customers import Visit
    from sim.drivers import Driver
    from sim.ev import ChargeProfile, EVModel
    from sim.ev_arrivals import EvState
    from sim.hardware import Evse, SiteState
    from sim.tariffs import Interval, TariffSchedule
    from sim.v2g import V2gLimits

__all__ = ["Cause", "Choice", "EventKind", "Outcome", "Session", "State"]


class Choice(enum.Enum):
    """What a driver does on arrival."""

    PLUG = "plug"
    QUEUE = "queue"
    BALK = "balk"


class State(enum.IntEnum):
    """Where a session is."""

    QUEUED = 0
    PLUGGED = 1
    DONE = 2


class Outcome(enum.IntEnum):
    """How a session ended, as stored in the sessions table."""

    SERVED = 0
    BALKED = 1
    RENEGED = 2
    ONGOING = 3
    FAILED = 4  # left after failed attempts (silently faulted ports; with ev_side also handshakes, certificates)
    INTERRUPTED = 5  # the port went down during the session
    PRICED_OUT = 6  # the price was above what the driver would pay
    INCOMPATIBLE = 7  # no port at the site fits the EV (ev_side)
    REJECTED = 8  # the backend refused the driver's authorization (a CSMS in the loop)


class Cause(enum.IntEnum):
    """Why a session failed, as stored in the sessions table."""

    NONE = 0
    FAULTED_PORT = 1  # every port tried was silently faulted
    PAYMENT = 2  # the payment was refused
    INTEROP = 3  # every handshake failed (ev_side)
    AUTHORIZATION = 4  # a Plug & Charge certificate was refused and no other way to pay (ev_side), or the CSMS said no


# Members read on every session (a class attribute lookup on an enum is several times slower than a global).
_QUEUED = State.QUEUED
_NO_CAUSE = Cause.NONE
_NAN, _INF = math.nan, math.inf


class Session:
    """One driver's visit: queue, plug-in, charging intervals, departure."""

    __slots__ = (
        "alarm_eid",
        "alarm_t_s",
        "arrival_t_s",
        "cause",
        "charge_end_t_s",
        "charge_start_t_s",
        "depart_t_s",
        "detour_km",
        "dis_soc0",
        "dis_stop_soc",
        "dis_t0_s",
        "discharge_kw",
        "discharged_kwh",
        "driver",
        "due_eid",
        "due_t_s",
        "due_version",
        "dwell_s",
        "ev",
        "evse",
        "failed_attempts",
        "full_t_s",
        "intervals",
        "iso15118",
        "model",
        "model_index",
        "plan",
        "plug_t_s",
        "profile",
        "schedule",
        "session_id",
        "shift_s",
        "site",
        "soc_frac",
        "soc_in_frac",
        "state",
        "t0_s",
        "target_soc_frac",
        "tau0_s",
        "v2g",
        "version",
        "visit",
    )
    # Set once an interval has a "full" time (`sim.charging.FullAlarms`); not before, so not in `__init__`.
    due_t_s: float
    due_eid: int
    due_version: int
    alarm_t_s: float

    def __init__(
        self,
        session_id: int,
        driver: Driver,
        site: SiteState,
        model: EVModel,
        model_index: int,
        arrival_t_s: float,
        soc_in_frac: float,
        target_soc_frac: float,
        dwell_s: float,
        iso15118: bool = False,
        visit: Visit | None = None,
        ev: EvState | NoEv = NO_EV,
    ) -> None:
        """A session that has just arrived at `site`: `iso15118` when the EV tells its departure and need."""
        self.session_id = session_id
        self.driver = driver
        self.site = site
        self.model = model
        self.model_index = model_index
        self.arrival_t_s = arrival_t_s
        self.soc_in_frac = soc_in_frac
        self.soc_frac = soc_in_frac
        self.target_soc_frac = target_soc_frac
        self.dwell_s = dwell_s
        self.state = _QUEUED
        self.evse: Evse | None = None
        self.plug_t_s = _NAN
        self.depart_t_s = _INF
        self.charge_start_t_s = _NAN
        self.charge_end_t_s = _NAN
        self.profile: ChargeProfile | None = None  # the open interval's profile
        self.t0_s = 0.0
        self.tau0_s = 0.0
        self.version = 0  # bumped whenever a scheduled "full" event becomes stale
        self.alarm_eid = -1  # the event id of the session's queued "full" entry, -1: none (`sim.charging.FullAlarms`)
        self.failed_attempts = 0
        self.iso15118 = iso15118
        self.cause = _NO_CAUSE
        self.full_t_s = _NAN  # when the battery reached its target
        self.intervals: list[Interval] = []  # closed charging intervals, for billing
        self.visit = visit
        self.schedule: TariffSchedule | None = None  # the tariff fixed at plug-in
        self.plan: MembershipPlan | None = None  # the driver's plan at plug-in, where valid
        self.detour_km = 0.0
        self.shift_s = 0.0
        self.ev: EvState | NoEv = ev  # connectors, vehicle data and attempts, with an ev_side section
        self.v2g: V2gLimits | None = None  # a V2G-capable EV's limits (`sim.v2g`)
        self.discharge_kw = 0.0  # while discharging: the power (> 0), from dis_t0_s at SoC dis_soc0
        self.dis_t0_s = 0.0
        self.dis_soc0 = 0.0
        self.dis_stop_soc = 0.0  # the floor the open discharge stops at
        self.discharged_kwh = 0.0  # energy taken back from the battery, closed discharges

    def open(self, profile: ChargeProfile, t_s: float) -> float:
        """Start charging on `profile` at `t_s`; return the seconds until the target SoC."""
        self.profile = profile
        self.t0_s = t_s
        self.version += 1
        if self.charge_start_t_s != self.charge_start_t_s:  # NaN: first power
            self.charge_start_t_s = t_s
        soc, target = self.soc_frac, self.target_soc_frac
        if profile.linear and soc >= 0.0 and target >= 0.0:  # `ChargeProfile.time_at` on its piece 0, inlined
            a_kw, capacity_kwh = profile.a_kw[0], profile.capacity_kwh
            self.tau0_s = tau0_s = 0.0 + capacity_kwh * (soc - 0.0) / a_kw * S_PER_H
            return 0.0 + capacity_kwh * (target - 0.0) / a_kw * S_PER_H - tau0_s
        self.tau0_s = tau0_s = profile.time_at(soc)
        return profile.time_at(target) - tau0_s

    def close(self, t_s: float) -> tuple[float, float, int]:
        """End the open interval at `t_s`; return its ``(t0_s, tau0_s, profile id)``."""
        profile = self.profile
        assert profile is not None
        t0_s, tau0_s = self.t0_s, self.tau0_s
        self.intervals.append((t0_s, t_s, tau0_s, profile))
        tau_s = tau0_s + t_s - t0_s
        if profile.linear and 0.0 <= tau_s < profile.tau_s[1]:  # `ChargeProfile.soc_at` on its piece 0, inlined
            soc = 0.0 + profile.a_kw[0] * ((tau_s - 0.0) / S_PER_H) / profile.capacity_kwh
        else:
            soc = profile.soc_at(tau_s)
        target = self.target_soc_frac
        self.soc_frac = soc if soc < target else target
        self.profile = None
        self.version += 1
        return t0_s, tau0_s, profile.pid

    @property
    def energy_kwh(self) -> float:
        """Energy delivered (charged into the battery) up to the last closed interval.

        With V2G, energy charged − energy discharged = ΔSoC × capacity.
        """
        net_kwh = (self.soc_frac - self.soc_in_frac) * self.model.capacity_kwh
        return net_kwh + self.discharged_kwh if self.discharged_kwh else net_kwh

    def discharge_soc_at(self, t_s: float) -> float:
        """State of charge at `t_s` during the open discharge: linear in time, never below its floor."""
        soc = self.dis_soc0 - self.discharge_kw * (t_s - self.dis_t0_s) / 3600.0 / self.model.capacity_kwh
        return soc if soc > self.dis_stop_soc else self.dis_stop_soc

    def soc_power_at(self, t_s: float) -> tuple[float, float]:
        """State of charge and power (kW, negative while giving energy back) of the plugged-in session at `t_s`.

        On its current charging interval, or its open discharge, or idle at its last SoC.
        """
        p = self.profile
        if p is not None:
            soc = min(p.soc_at(self.tau0_s + t_s - self.t0_s), self.target_soc_frac)
            return soc, p.power_at(soc)
        if self.discharge_kw:
            return self.discharge_soc_at(t_s), -self.discharge_kw
        return self.soc_frac, 0.0

    @property
    def requested_kwh(self) -> float:
        """Energy the driver wants."""
        return (self.target_soc_frac - self.soc_in_frac) * self.model.capacity_kwh


class EventKind(enum.IntEnum):
    """Rows of the events table: what the sessions table does not already hold.

    Plug-in, full battery and departure are the session's own columns (``plug_t_s``,
    ``charge_end_t_s``, ``departure_t_s``); the events table keeps queueing and the
    manager's commands, in time order.
    """

    QUEUED = 0
    BALKED = 1
    RENEGED = 2
    POWER_LIMIT = 3
    PROFILE_REJECTED = 4
