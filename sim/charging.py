"""Sessions on ports: plug-in, charging intervals, limits and profiles, departure, ports out of service.

A plugged-in session charges along one closed-form profile at a time (`sim.sessions`); each
change of its connector's cap — a manager's limit, a charging profile's next period, a
cabinet shared by one connector more or fewer, a derating fault — closes the interval and
opens the next, or pauses the session at a zero cap. A negative cap on a bidirectional port
discharges a V2G-capable EV at constant power down to its floor (`sim.v2g`), each stretch a
row of the discharges table; anywhere else it pauses the session like a zero cap. `Ports` schedules only the events a
session needs (full battery, end of dwell, a profile's next change) and tells the manager
what a charger would tell a CSMS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import TYPE_CHECKING, Protocol, cast

import simpy
from simpy.events import NORMAL

from sim.charging_profiles import ProfileSet, charger_max_at, limit_at, next_change_t_s
from sim.ev_side import PLUG_AND_CHARGE
from sim.ids import ChargerId, EvseId, SessionId
from sim.load_tree import LoadManagement
from sim.managers.base import (
    ChangeAvailability,
    ClearChargingProfile,
    Event,
    EvseStatus,
    RejectSession,
    SessionStarted,
    SessionStopped,
    SetChargingProfile,
    SetPowerLimit,
    StatusChanged,
)
from sim.recorder import Table
from sim.sessions import Cause, EventKind, Outcome, Session, State
from sim.timers import Timers
from sim.units import S_PER_H
from sim.v2g import discharge_plan

if TYPE_CHECKING:
    from sim.billing import Billing
    from sim.ev import ChargeProfile, ProfileCache
    from sim.hardware import Evse, SiteState

__all__ = ["MIN_POWER_KW", "MIN_V2G_STRETCH_S", "EventLog", "Ports"]

MIN_POWER_KW = 1e-3  # below 1 W a connector is paused: no charger delivers less
# A V2G EV's stretches toward its target and its floor each last at least this long (s) or do not start: an EV
# closer than that to its target is full, to its floor refuses. So each session's own events (its battery full,
# its floor) come at least this far apart, and a manager that charges and discharges EVs in turn makes time move.
MIN_V2G_STRETCH_S = 1e-3
CHARGING, SUSPENDED_EV, SUSPENDED_EVSE, AVAILABLE, FAULTED, PREPARING, UNAVAILABLE = (
    EvseStatus.CHARGING,
    EvseStatus.SUSPENDED_EV,
    EvseStatus.SUSPENDED_EVSE,
    EvseStatus.AVAILABLE,
    EvseStatus.FAULTED,
    EvseStatus.PREPARING,
    EvseStatus.UNAVAILABLE,
)
PLUGGED, DONE, SERVED = State.PLUGGED, State.DONE, Outcome.SERVED  # read on every session: globals are faster
_INF = math.inf


_Full = tuple[Session, int]  # a "battery full" event's session and the session version it is for


class _Alarm(simpy.Event):
    """A "battery full" entry of `FullAlarms`, already triggered: value ``(session, event id)``."""

    def __init__(self, env: simpy.Environment, value: tuple[Session, int], callback: Callable) -> None:
        # As `simpy.Timeout` does, inlined: a triggered event, put in the queue by `FullAlarms`.
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


class FullAlarms:
    """When each charging session reaches its target: at most one entry per session in SimPy's queue.

    A session re-planned at every decision (a new limit, a new interval) gets a new time to its
    target each time; a timeout per re-plan would fill the queue with stale ones. Here each new
    time keeps the place a timeout made at that moment would take in the queue (its time and
    SimPy's next event id, reserved at once), and the session keeps one entry queued, at the
    earliest place it was given: when that entry comes up before the place now due, it moves
    there. So the events that do something run in exactly the order one timeout per re-plan gives
    (stale timeouts did nothing), with fewer entries queued and popped. This reads SimPy's queue
    and event-id counter (`Environment._queue`, `_eid`), as `Environment.schedule` does.
    """

    def __init__(self, env: simpy.Environment, on_full: Callable[[Session], None]) -> None:
        """Alarms on `env`'s queue; `on_full` is called when a session is due, if its interval is still open."""
        self.env = env
        self.on_full = on_full
        self._queue = env._queue  # type: ignore[attr-defined]
        self._eid = env._eid  # type: ignore[attr-defined]

    def set(self, s: Session, delay_s: float) -> None:
        """`s`, whose interval just opened (`Session.version`), reaches its target in `delay_s` (>= 0)."""
        t_s = self.env._now + delay_s  # type: ignore[attr-defined]  # the time `env.timeout(delay_s)` would take
        eid = next(self._eid)  # and its event id
        s.due_t_s, s.due_eid, s.due_version = t_s, eid, s.version
        if s.alarm_eid < 0 or s.alarm_t_s > t_s:  # nothing queued, or queued after this: queue this
            self._push(s, t_s, eid)

    def _push(self, s: Session, t_s: float, eid: int) -> None:
        s.alarm_t_s, s.alarm_eid = t_s, eid
        heappush(self._queue, (t_s, NORMAL, eid, _Alarm(self.env, (s, eid), self._ring)))

    def _ring(self, event: simpy.Event) -> None:
        s, eid = cast(tuple[Session, int], event.value)
        if eid != s.alarm_eid:
            return  # an earlier entry of the session was queued after this one
        s.alarm_eid = -1
        if s.due_version != s.version or s.state is not PLUGGED:
            return  # the interval closed since: nothing is due
        if eid == s.due_eid:
            self.on_full(s)
        else:  # up before its place: move there
            self._push(s, s.due_t_s, s.due_eid)


class EventLog:
    """The events table: queueing and the manager's commands, in time order (`sim.sessions.EventKind`)."""

    def __init__(self) -> None:
        """An empty table."""
        # Millions of rows a year: codes and ids in 32 bits, as the sessions and intervals tables.
        self.table = Table(floats=("t_s", "value"), ints=("event", "site", "evse", "session_id"), int_bits=32)

    def add(self, t_s: float, kind: int, site: int, evse: int, session_id: int, value: float) -> None:
        """One row."""
        self.table.add((t_s, value), (kind, site, evse, session_id))

    def add_many(
        self, t_s: float, kind: int, sites: Sequence[int], evses: Sequence[int], session_ids: Sequence[int],
        values: Sequence[float],
    ) -> None:  # fmt: skip
        """One row per value at `t_s`, all of one `kind`: the rows `add` would give one by one."""
        n = len(values)
        floats: list[float] = [t_s] * (2 * n)
        floats[1::2] = values
        ints: list[int] = [kind] * (4 * n)
        ints[1::4], ints[2::4], ints[3::4] = sites, evses, session_ids
        self.table.add_rows(floats, ints)


class Bus(Protocol):
    """Where a charger's messages go: the manager, whose commands are carried out at once."""

    def handle(self, event: Event, t_s: float) -> None:
        """Hand `event` to the manager and apply its commands at `t_s`."""
        ...

    def send(self, event: Event) -> None:
        """`handle` at the current simulated time."""
        ...


class Queueing(Protocol):
    """What happens to a session's end and to a port that becomes free (`sim.drivers.Drivers`)."""

    def release(self, evse: Evse, t_s: float) -> None:
        """A free, serviceable port: the next waiting driver takes it, or it joins the free list."""
        ...

    def done(self, s: Session, outcome: Outcome, departure_t_s: float) -> None:
        """`s` ended with `outcome`: its row is recorded and the driver leaves the model."""
        ...


class LoadListener(Protocol):
    """Told when a site's load changes (a behind-the-meter battery follows it)."""

    def site_changed(self, site: SiteState) -> None:
        """The site's load changed at this instant."""
        ...


class Ports:
    """Every connector's session and power: the `PortControl` the reliability model switches ports through."""

    def __init__(
        self,
        env: simpy.Environment,
        evses: list[Evse],
        profiles: ProfileCache,
        horizon_s: float,
        events: EventLog,
        bus: Bus,
        load: LoadListener,
    ) -> None:
        """Ports for `evses`; `connect` hands them the billing and the drivers before the run."""
        self.env = env
        self.evses = evses
        self.evse_by_id = {e.evse_id: e for e in evses}
        self.profiles = profiles
        self.horizon_s = horizon_s
        self.events = events
        self.bus = bus
        self.load = load
        self.intervals = Table(floats=("t0_s", "t1_s", "tau0_s"), ints=("site", "evse", "profile"), int_bits=32)
        # Every stretch a session discharged (V2G) at constant power_kw (< 0), and its SoC at both ends.
        self.discharges = Table(floats=("t0_s", "t1_s", "soc0_frac", "soc1_frac", "power_kw"),
                                ints=("site", "evse", "session_id"))  # fmt: skip
        self.unavailable: set[str] = set()  # connectors taken out of service by ChangeAvailability
        # False when the manager answers every session event with nothing and reads nothing (`uncontrolled`):
        # then those events are not even built, the hot path of a run without control.
        self.listening = True
        # Sites with ``limits: enforce``: re-caps their connectors at every change of what they want.
        self.local = LoadManagement(profiles, self._replan, MIN_POWER_KW)
        self.alarms = FullAlarms(env, self._on_full)
        self.timers = Timers(env)  # the end of every session's dwell
        self._dwell_end = self._on_dwell_end
        self.billing: Billing
        self.queueing: Queueing

    def connect(self, billing: Billing, queueing: Queueing) -> None:
        """The tariffs sessions are billed under, and who takes a port once it is free."""
        self.billing = billing
        self.queueing = queueing

    # ------------------------------------------------------------ a session's life on a port

    def plug(self, s: Session, evse: Evse, t_s: float) -> None:
        """`s` plugs into the free port `evse` (authorised, payment accepted) and its session starts."""
        site = evse.site
        s.state = PLUGGED
        s.evse = evse
        s.plug_t_s = t_s
        s.depart_t_s = t_s + s.dwell_s
        billing = self.billing
        s.schedule = billing.tariffs[site.index]
        account = s.visit.account if s.visit else None
        s.plan = billing.customers.plan_at(account, site.site_id) if account is not None else None
        evse.session = s
        self.timers.call_in(s.dwell_s, s, self._dwell_end)
        if evse.profiles is not None:  # relative profiles count from the transaction start
            evse.profiles.start_transaction(t_s)
            evse.profile_kw = limit_at(evse.profiles.profiles, t_s, t_s)
        wants = s.target_soc_frac > s.soc_frac
        ev = s.ev
        if wants and ev.auth_s > 0:
            evse.set_status(PREPARING)  # power flows once the session is authorised
            self.env.timeout(ev.auth_s, s).callbacks.append(self._on_authorized)
        else:
            evse.set_status(CHARGING if wants else SUSPENDED_EV)
        if self.listening:
            pnc = ev.auth_method == PLUG_AND_CHARGE
            self.bus.handle(SessionStarted(t_s, site.site_id, evse.evse_id, SessionId(s.session_id), pnc), t_s)
        if evse.status is CHARGING:
            self._open(s, evse, t_s)
            if evse.charger.splits:
                self._replan_siblings(evse, t_s)
        if evse.profiles is not None:
            self._follow_profiles(evse, t_s)  # wake up at the profiles' next change

    def _on_authorized(self, event: simpy.Event) -> None:
        """Authorisation done: the session starts drawing power."""
        s = cast(Session, event.value)
        evse = s.evse
        if s.state is not PLUGGED or evse is None or evse.status is not PREPARING:
            return  # left or interrupted meanwhile
        t_s = self.env.now
        evse.set_status(CHARGING)
        self.bus.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, CHARGING))
        if evse.status is CHARGING:
            self._open(s, evse, t_s)
            if evse.charger.splits:
                self._replan_siblings(evse, t_s)

    def _open(self, s: Session, evse: Evse, t_s: float) -> None:
        """Start an interval at the connector's current cap, discharge at a negative one, or pause at a zero cap."""
        if evse.site.tree is not None:  # local load management: this connector draws from now on
            self.local.rebalance(evse.site, t_s)
        cap = evse.cap_kw()
        if cap < MIN_POWER_KW:
            if s.v2g is None or not self._discharge(s, evse, cap, t_s):
                evse.set_status(SUSPENDED_EVSE)
            return
        profile = self.profiles.get(s.model, evse.dc, cap)
        if s.v2g is not None and profile.time_at(s.target_soc_frac) - profile.time_at(s.soc_frac) < MIN_V2G_STRETCH_S:
            # A V2G EV less than MIN_V2G_STRETCH_S of charging from its target is full, with no new event: a
            # manager that discharges it at its target and charges it back in turn would otherwise let time
            # move by ever shorter stretches that never add up to a second (see `MIN_V2G_STRETCH_S`).
            evse.set_status(SUSPENDED_EV)
            return
        if evse.site.energy is not None:  # PV or a battery behind the meter follows the load
            self.load.site_changed(evse.site)
        full_in_s = s.open(profile, t_s)
        if t_s + full_in_s < s.depart_t_s:
            self.alarms.set(s, full_in_s if full_in_s > 0.0 else 0.0)

    def _close(self, s: Session, t_s: float) -> None:
        evse = s.evse
        assert evse is not None
        t0_s, tau0_s, pid = s.close(t_s)
        if t0_s >= self.horizon_s:  # opened by a change exactly at the horizon: outside the run
            return
        site = evse.site
        if site.energy is not None:
            self.load.site_changed(site)
        self.intervals.add((t0_s, t_s, tau0_s), (site.index, evse.index, pid))

    # ------------------------------------------------------------ discharging (V2G)

    def _discharge_kw(self, s: Session, evse: Evse, cap_kw: float) -> float:
        """The power a V2G session discharges at under the connector's cap (0: it does not)."""
        v2g = s.v2g
        if cap_kw >= 0 or v2g is None or evse.discharge_kw <= 0:
            return 0.0
        kw = min(-cap_kw, evse.discharge_kw, evse.max_kw, v2g.max_discharge_kw, evse.tree_discharge_kw)
        return kw if kw >= MIN_POWER_KW else 0.0

    def _discharge(self, s: Session, evse: Evse, cap_kw: float, t_s: float) -> bool:
        """Start discharging `s` under a negative cap, down to its floor; False when it may not (status unchanged)."""
        kw = self._discharge_kw(s, evse, cap_kw)
        if kw == 0.0:
            return False
        v2g = s.v2g
        assert v2g is not None
        full = self.profiles.get(s.model, evse.dc, evse.max_kw)
        end_t_s, stop_soc = discharge_plan(v2g, full, s.target_soc_frac, s.depart_t_s, s.soc_frac, kw,
                                           s.model.capacity_kwh, t_s)  # fmt: skip
        if end_t_s - t_s < MIN_V2G_STRETCH_S:
            return False  # at its floor, or less than MIN_V2G_STRETCH_S above it: the EV refuses
        s.discharge_kw, s.dis_t0_s, s.dis_soc0, s.dis_stop_soc = kw, t_s, s.soc_frac, stop_soc
        s.version += 1
        self.load.site_changed(evse.site)
        if end_t_s < s.depart_t_s:
            self.env.timeout(end_t_s - t_s, (s, s.version)).callbacks.append(self._on_floor)
        return True

    def _close_discharge(self, s: Session, t_s: float, at_floor: bool = False) -> None:
        """End the open discharge at `t_s` (`at_floor`: where it had to stop) and record it."""
        evse = s.evse
        assert evse is not None
        soc = s.dis_stop_soc if at_floor else s.discharge_soc_at(t_s)
        s.discharged_kwh += (s.dis_soc0 - soc) * s.model.capacity_kwh
        s.soc_frac = soc
        kw, s.discharge_kw = s.discharge_kw, 0.0
        s.version += 1
        if s.dis_t0_s >= self.horizon_s:  # opened by a change exactly at the horizon: outside the run
            return
        self.load.site_changed(evse.site)
        self.discharges.add_floats((s.dis_t0_s, t_s, s.dis_soc0, soc, -kw))
        self.discharges.add_ints((evse.site.index, evse.index, s.session_id))

    def _stop_power(self, s: Session, t_s: float) -> bool:
        """Close whatever power flows on `s` (charging or discharging); False when none did."""
        if s.profile is not None:
            self._close(s, t_s)
            return True
        if s.discharge_kw:
            self._close_discharge(s, t_s)
            return True
        return False

    def _on_floor(self, event: simpy.Event) -> None:
        """A discharge reached its floor (minimum SoC or departure guard): the EV stops giving energy back."""
        s, version = cast(_Full, event.value)
        if s.version != version or s.state is not PLUGGED:
            return
        t_s = self.env.now
        evse = s.evse
        assert evse is not None
        self._close_discharge(s, t_s, at_floor=True)
        evse.set_status(SUSPENDED_EVSE)
        if self.listening:
            self.bus.handle(StatusChanged(t_s, evse.site.site_id, evse.evse_id, SUSPENDED_EVSE), t_s)
        if evse.charger.splits:
            self._replan_siblings(evse, t_s)
        if evse.site.tree is not None:  # its share of the export limit is free for the others
            self.local.rebalance(evse.site, t_s)

    def _on_full(self, s: Session) -> None:
        """`s` reached its target (`FullAlarms` checked that its interval is the one the time was for)."""
        t_s = self.env.now
        evse = s.evse
        assert evse is not None
        self._close(s, t_s)
        s.soc_frac = s.target_soc_frac
        s.charge_end_t_s = s.full_t_s = t_s
        evse.set_status(SUSPENDED_EV)
        if s.driver.leave_when_charged:
            self.depart(s, t_s)
            return
        if self.listening:
            self.bus.handle(StatusChanged(t_s, evse.site.site_id, evse.evse_id, SUSPENDED_EV), t_s)
        if evse.charger.splits:
            self._replan_siblings(evse, t_s)
        if evse.site.tree is not None:  # its share of the limits is free for the others
            self.local.rebalance(evse.site, t_s)

    def _on_dwell_end(self, event: simpy.Event) -> None:
        s = cast(Session, event.value)
        if s.state is PLUGGED:
            self.depart(s, self.env.now)

    def depart(self, s: Session, t_s: float, outcome: Outcome = SERVED) -> None:
        """The EV of `s` leaves its port, which is free again."""
        evse = s.evse
        assert evse is not None
        site = evse.site
        was_charging = evse.status is CHARGING
        if s.profile is not None:  # inline: the hot path of every departure
            self._close(s, t_s)
            s.charge_end_t_s = t_s
        elif s.discharge_kw:
            self._close_discharge(s, t_s)
            s.charge_end_t_s = t_s
        evse.set_status(AVAILABLE)
        evse.session = None
        evse.limit_kw = math.inf  # limits are per transaction, as OCPP TxProfiles
        if evse.profiles is not None:
            evse.profiles.stop_transaction()
            self._follow_profiles(evse, t_s)
        s.state = DONE
        self.queueing.done(s, outcome, t_s)
        if self.listening:
            self.bus.handle(SessionStopped(t_s, site.site_id, evse.evse_id, SessionId(s.session_id), s.energy_kwh,
                                           s.discharged_kwh), t_s)  # fmt: skip
        if was_charging and evse.charger.splits:
            self._replan_siblings(evse, t_s)
        if site.tree is not None:
            self.local.rebalance(site, t_s)
        self.queueing.release(evse, t_s)

    def finish(self, t_s: float) -> None:
        """Close what is still plugged in at the end of the horizon: those sessions are `ongoing`."""
        for evse in self.evses:
            s = evse.session
            if s is not None:
                self._stop_power(s, t_s)
                self.queueing.done(s, Outcome.ONGOING, math.nan)

    # ------------------------------------------------------------ commands

    def set_power_limit(self, c: SetPowerLimit, t_s: float) -> None:
        """A manager's power limit on one connector, until the session ends."""
        evse = self.evse_by_id[c.evse_id]
        evse.limit_kw = c.power_kw
        session_id = evse.session.session_id if evse.session is not None else -1
        self.events.add(t_s, EventKind.POWER_LIMIT, evse.site.index, evse.index, session_id, c.power_kw)
        self._replan(evse, t_s)

    def set_power_limits(self, evse_indices: Sequence[int], power_kw: Sequence[float], t_s: float) -> None:
        """`set_power_limit` on many connectors, by index in `evses`, in the order given: same rows, same effect.

        The gym's hot path (a new limit on every occupied port at every decision). The common case is
        done here inline, with the arithmetic of `_replan`, `_reopen`, `Session.close`, `Session.open`
        and `FullAlarms.set`: a port with no local load management, no PV or battery behind the meter
        and no V2G EV, whose session charges on a profile (a new interval unless the profile is the
        same) or is full (nothing to do). Every other port goes through `_replan`. The new intervals'
        rows are recorded together, before any `_replan` and at the end, so in the same order.
        """
        evses, replan = self.evses, self._replan
        targets = [evses[i] for i in evse_indices]
        self.events.add_many(t_s, EventKind.POWER_LIMIT, [e.site.index for e in targets], evse_indices,
                             [-1 if (s := e.session) is None else s.session_id for e in targets], power_kw)  # fmt: skip
        get, by_cap = self.profiles.get, self.profiles.by_cap
        floats: list[float] = []  # the new intervals' rows, not yet recorded
        ints: list[int] = []
        alarms = self.alarms  # `FullAlarms.set`, inlined
        env, eids, queue, ring = alarms.env, alarms._eid, alarms._queue, alarms._ring
        now_s = env._now  # type: ignore[attr-defined]
        horizon_s = self.horizon_s
        for evse, kw in zip(targets, power_kw, strict=True):  # replanning adds no row to the events table
            evse.limit_kw = kw
            s = evse.session
            if s is None:
                continue
            site = evse.site
            status = evse.status
            if site.tree is not None or s.v2g is not None:
                pass  # `_replan`
            elif status is SUSPENDED_EV:
                continue  # full, not V2G, no local load management: nothing changes
            elif status is CHARGING and (old := s.profile) is not None and site.energy is None:
                cap = min(evse.max_kw, kw, evse.profile_kw, evse.tree_kw)  # `Evse.cap_kw`
                charger = evse.charger
                if charger.drawing > 1 and charger.shared_kw < _INF and charger.shared_kw / charger.drawing < cap:
                    cap = charger.shared_kw / charger.drawing
                if cap >= MIN_POWER_KW:
                    model = s.model
                    profile = by_cap.get((model.name, evse.dc, cap)) or get(model, evse.dc, cap)  # `ProfileCache.get`
                    if profile is old:
                        continue
                    # `Session.close` then `Session.open`, and the closed interval's row as `_close` records it
                    t0_s, tau0_s = s.t0_s, s.tau0_s
                    s.intervals.append((t0_s, t_s, tau0_s, old))
                    tau_s = tau0_s + t_s - t0_s
                    if old.linear and 0.0 <= tau_s < old.tau_s[1]:  # `ChargeProfile.soc_at` on piece 0 (from 0, 0)
                        soc = 0.0 + old.a_kw[0] * ((tau_s - 0.0) / S_PER_H) / old.capacity_kwh
                    else:
                        soc = old.soc_at(tau_s)
                    target = s.target_soc_frac
                    s.soc_frac = soc = soc if soc < target else target
                    if t0_s < horizon_s:
                        floats += (t0_s, t_s, tau0_s)
                        ints += (site.index, evse.index, old.pid)
                    s.profile = profile
                    s.t0_s = t_s
                    if profile.linear and soc >= 0.0 and target >= 0.0:  # `ChargeProfile.time_at` on piece 0
                        a_kw, capacity_kwh = profile.a_kw[0], profile.capacity_kwh
                        tau0_s = 0.0 + capacity_kwh * (soc - 0.0) / a_kw * S_PER_H
                        full_in_s = 0.0 + capacity_kwh * (target - 0.0) / a_kw * S_PER_H - tau0_s
                    else:
                        tau0_s = profile.time_at(soc)
                        full_in_s = profile.time_at(target) - tau0_s
                    s.tau0_s = tau0_s
                    s.version += 2  # closed and opened (charge_start_t_s is set: it charged before)
                    if t_s + full_in_s < s.depart_t_s:
                        due_s = now_s + (full_in_s if full_in_s > 0.0 else 0.0)
                        eid = next(eids)
                        s.due_t_s, s.due_eid, s.due_version = due_s, eid, s.version
                        if s.alarm_eid < 0 or s.alarm_t_s > due_s:
                            s.alarm_t_s, s.alarm_eid = due_s, eid
                            heappush(queue, (due_s, NORMAL, eid, _Alarm(env, (s, eid), ring)))
                    continue
            if floats:
                self.intervals.add_rows(floats, ints)
                floats, ints = [], []
            replan(evse, t_s)
        if floats:
            self.intervals.add_rows(floats, ints)

    def change_profiles(self, c: SetChargingProfile | ClearChargingProfile, t_s: float) -> None:
        """Install or clear OCPP charging profiles on a connector or on every connector of a charger."""
        for evse in self._targets(c.evse_id, c.charger_id):
            if evse.profiles is None:
                evse.profiles = ProfileSet()
                if evse.session is not None:
                    evse.profiles.start_transaction(evse.session.plug_t_s)
            if isinstance(c, SetChargingProfile):
                try:
                    evse.profiles.install(c.profile)
                except ValueError:  # e.g. a TxProfile with no transaction: the charger rejects it
                    self.events.add(t_s, EventKind.PROFILE_REJECTED, evse.site.index, evse.index, -1,
                                    c.profile.profile_id)  # fmt: skip
                    continue
            else:
                evse.profiles.clear(c.profile_id, c.purpose, c.stack_level)
            self._follow_profiles(evse, t_s)

    def reject_session(self, c: RejectSession, t_s: float) -> None:
        """The backend refused the session's authorization: it ends now."""
        evse = self.evse_by_id[c.evse_id]
        s = evse.session
        if s is None or s.session_id != c.session_id:
            raise ValueError(f"RejectSession: session {c.session_id} is no longer on {c.evse_id}")
        s.cause = Cause.AUTHORIZATION
        self.depart(s, t_s, Outcome.REJECTED)

    def change_availability(self, c: ChangeAvailability, t_s: float) -> None:
        """Take a connector out of service, or back into it."""
        evse = self.evse_by_id[c.evse_id]
        if c.operative == (evse.evse_id in self.unavailable):
            (self.unavailable.discard if c.operative else self.unavailable.add)(evse.evse_id)
            (self.unblock if c.operative else self.block)(evse, t_s)

    def _targets(self, evse_id: EvseId | None, charger_id: ChargerId | None) -> list[Evse]:
        if evse_id is not None:
            return [self.evse_by_id[evse_id]]
        return [e for e in self.evses if e.charger.charger_id == charger_id]

    def _follow_profiles(self, evse: Evse, t_s: float) -> None:
        """Apply the connector's composite profile limit now and wake up at its next change."""
        ps = evse.profiles
        if ps is None:
            return
        kw = limit_at(ps.profiles, t_s, ps.tx_start_t_s)
        if kw != evse.profile_kw:
            evse.profile_kw = kw
            self._replan(evse, t_s)
        charger = evse.charger  # its ChargePointMax limit is shared by the connectors drawing
        max_kw = min((charger_max_at(e.profiles.profiles, t_s) for e in charger.evses if e.profiles is not None),
                     default=math.inf)  # fmt: skip
        if max_kw != charger.max_profile_kw:
            charger.set_max_profile_kw(max_kw)
            for e in charger.evses:
                self._replan(e, t_s)
        evse.profile_version += 1
        nxt = next_change_t_s(ps.profiles, t_s, ps.tx_start_t_s)
        if nxt < math.inf:
            self.env.timeout(nxt - t_s, (evse, evse.profile_version)).callbacks.append(self._on_profile_change)

    def _on_profile_change(self, event: simpy.Event) -> None:
        evse, version = cast(tuple["Evse", int], event.value)
        if version == evse.profile_version:
            self._follow_profiles(evse, self.env.now)

    # ------------------------------------------------------------ `PortControl` for serviceability

    def block(self, evse: Evse, t_s: float, fault: bool = False) -> None:
        """One more condition keeps `evse` out of service; the first takes it down.

        A fault shows as Faulted, anything else (availability, resets, planned work) as Unavailable.
        """
        evse.blocks += 1
        evse.fault_blocks += fault
        if evse.blocks > 1:
            self._down_status(evse, t_s)
            return
        site = evse.site
        if evse in site.free:
            site.free.remove(evse)
        status = FAULTED if evse.fault_blocks else UNAVAILABLE
        s = evse.session
        if s is not None:  # the session ends here: the driver leaves with what was charged
            was_charging = evse.status is CHARGING
            if self._stop_power(s, t_s):
                s.charge_end_t_s = t_s
            evse.set_status(status)
            evse.session = None
            evse.limit_kw = math.inf
            s.state = State.DONE
            self.queueing.done(s, Outcome.INTERRUPTED, t_s)
            self.bus.send(SessionStopped(t_s, site.site_id, evse.evse_id, SessionId(s.session_id), s.energy_kwh,
                                         s.discharged_kwh))  # fmt: skip
            if was_charging and evse.charger.splits:
                self._replan_siblings(evse, t_s)
            if site.tree is not None:
                self.local.rebalance(site, t_s)
        else:
            evse.set_status(status)
        self.bus.send(StatusChanged(t_s, site.site_id, evse.evse_id, status))

    def unblock(self, evse: Evse, t_s: float, fault: bool = False) -> None:
        """One condition fewer; after the last the port serves again."""
        evse.blocks -= 1
        evse.fault_blocks -= fault
        if evse.blocks > 0:
            self._down_status(evse, t_s)
            return
        evse.set_status(AVAILABLE)
        self.bus.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, AVAILABLE))
        self.queueing.release(evse, t_s)

    def _down_status(self, evse: Evse, t_s: float) -> None:
        """A port still out of service shows Faulted while a fault is among its conditions, else Unavailable."""
        status = FAULTED if evse.fault_blocks else UNAVAILABLE
        if status is not evse.status:
            evse.set_status(status)
            self.bus.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, status))

    def port_power_changed(self, evse: Evse, t_s: float) -> None:
        """Derating began or ended: re-plan the session on the port."""
        self._replan(evse, t_s)

    def send(self, event: Event) -> None:
        """Hand `event` to the manager now (for the reliability model)."""
        self.bus.send(event)

    # ------------------------------------------------------------ power

    def _replan(self, evse: Evse, t_s: float) -> None:
        """Follow a change of the connector's cap: new interval, pause or resume, discharge or stop discharging."""
        s = evse.session
        if s is None:
            return
        if evse.site.tree is not None:  # what it wants changed: local load management shares the limits anew
            self.local.rebalance(evse.site, t_s)
        if evse.status is CHARGING:
            cap = evse.cap_kw()
            if s.profile is not None:
                if cap >= MIN_POWER_KW:
                    profile = self.profiles.get(s.model, evse.dc, cap)
                    if profile is s.profile or self._reopen(s, evse, profile, t_s):
                        return
                self._close(s, t_s)
            elif s.discharge_kw:
                if self._discharge_kw(s, evse, cap) == s.discharge_kw:
                    return
                self._close_discharge(s, t_s)
            else:
                return  # being plugged in: its first interval opens after the manager answered
            self._open(s, evse, t_s)
            if evse.status is not CHARGING and evse.charger.splits:
                self._replan_siblings(evse, t_s)
        elif evse.status is SUSPENDED_EVSE:
            cap = evse.cap_kw()
            if cap >= MIN_POWER_KW:
                evse.set_status(CHARGING)
                self._open(s, evse, t_s)
            elif s.v2g is not None and self._discharge(s, evse, cap, t_s):
                evse.set_status(CHARGING)
            else:
                return
            if evse.charger.splits:
                self._replan_siblings(evse, t_s)
        elif evse.status is SUSPENDED_EV and s.v2g is not None and evse.discharge_kw > 0:
            self._replan_full_v2g(s, evse, t_s)

    def _reopen(self, s: Session, evse: Evse, profile: ChargeProfile, t_s: float) -> bool:
        """A charging session's next interval, on `profile`, where nothing `_close` and `_open` do changes its cap.

        That is, with no local load management, no PV or battery behind the meter and no V2G: the
        same interval and rows as `_close` then `_open`, without computing the cap and the profile
        twice (a re-plan at every decision is the gym's hot path). False, having done nothing, elsewhere.
        """
        site = evse.site
        if site.tree is not None or site.energy is not None or s.v2g is not None:
            return False
        self._close(s, t_s)
        full_in_s = s.open(profile, t_s)
        if t_s + full_in_s < s.depart_t_s:
            self.alarms.set(s, full_in_s if full_in_s > 0.0 else 0.0)
        return True

    def _replan_full_v2g(self, s: Session, evse: Evse, t_s: float) -> None:
        """A V2G EV at its target: a negative cap discharges it; below its target again, a positive cap charges it."""
        cap = evse.cap_kw()
        if cap >= MIN_POWER_KW and s.soc_frac < s.target_soc_frac:
            evse.set_status(CHARGING)
            self._open(s, evse, t_s)
        elif cap < 0 and self._discharge(s, evse, cap, t_s):
            evse.set_status(CHARGING)
        else:
            return
        if evse.charger.splits:
            self._replan_siblings(evse, t_s)

    def _replan_siblings(self, evse: Evse, t_s: float) -> None:
        for other in evse.charger.evses:
            if other is not evse and other.status is CHARGING:
                self._replan(other, t_s)
