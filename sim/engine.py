"""Wiring: build the SimPy environment from a scenario, run it, return the recorded tables.

Every change happens at an event — an arrival, a plug-in, a battery reaching its target,
a departure, a reneging driver or a manager command — and between events every
connector follows a known piece of its EV's charge curve (see `sim.ev`), so nothing is
time-stepped. Charge-curve knees need no events of their own: they are inside the
closed-form profiles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import simpy

from sim import demand
from sim.behind_meter import SiteEnergy, ev_load_bound_kw
from sim.billing import SESSION_FLOATS, Billing
from sim.charging_profiles import ProfileSet, charger_max_at, limit_at, next_change_t_s
from sim.config import Scenario
from sim.customers import Customers
from sim.drivers import Choice, Driver, DriverModel, energy_factor
from sim.ev import ChargeProfile, EVModel, ProfileCache
from sim.ev_arrivals import EvState
from sim.ev_side import PLUG_AND_CHARGE, EvRecord, EvSide
from sim.grid import DrWindow, PriceSignal, dr_windows
from sim.hardware import Evse, SiteState, build_sites
from sim.ids import ChargerId, EvseId, SessionId, SiteId
from sim.managers import build_manager, build_operator
from sim.managers.base import (
    ChangeAvailability,
    ClearChargingProfile,
    Command,
    CompositeManager,
    DemandResponseEnded,
    DemandResponseNotified,
    DemandResponseStarted,
    DispatchTechnician,
    Event,
    EvseStatus,
    EvseView,
    NeedsSource,
    NetworkManager,
    NetworkView,
    OptOutDemandResponse,
    PriceChanged,
    RejectSession,
    Reset,
    ScheduleMaintenance,
    SessionStarted,
    SessionStopped,
    SetChargingProfile,
    SetPowerLimit,
    SetTariff,
    SetTimer,
    SiteLimitChanged,
    SiteView,
    StatusChanged,
    StorageView,
    Tick,
    Timer,
    VehicleView,
)
from sim.managers.pricing import DynamicPricing
from sim.network_plan import NetworkPlan, PortPlan, SitePlan, plan_of
from sim.recorder import Table
from sim.rng import stream
from sim.serviceability import Reliability, ServiceRecord, haversine_km
from sim.sessions import Cause, EventKind, Outcome, Session, State
from sim.units import S_PER_DAY
from sim.wallclock import WallClock

__all__ = ["SESSION_FLOATS", "RunTables", "Simulation", "simulate"]

_CHUNK = 1024  # arrivals converted from numpy to Python floats at a time
MIN_POWER_KW = 1e-3  # below 1 W a connector is paused: no charger delivers less
CHARGING, SUSPENDED_EV, SUSPENDED_EVSE, AVAILABLE, FAULTED, PREPARING, UNAVAILABLE = (
    EvseStatus.CHARGING,
    EvseStatus.SUSPENDED_EV,
    EvseStatus.SUSPENDED_EVSE,
    EvseStatus.AVAILABLE,
    EvseStatus.FAULTED,
    EvseStatus.PREPARING,
    EvseStatus.UNAVAILABLE,
)


@dataclass
class RunTables:
    """What a run recorded, as columns, plus what is needed to read them.

    It holds no live simulation object: the network is the frozen plan the run was built from.
    """

    scenario: Scenario
    models: list[EVModel]
    network: NetworkPlan
    profiles: list[ChargeProfile]
    sessions: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]
    wall_s: float
    service: ServiceRecord | None = None
    dr: dict[str, np.ndarray] | None = None
    prices: PriceSignal | None = None
    invoices: dict[str, np.ndarray] | None = None
    tariff_changes: dict[str, np.ndarray] | None = None
    ev: EvRecord | None = None
    storage: dict[str, np.ndarray] | None = None
    dr_opt_outs: dict[str, np.ndarray] | None = None  # opt-outs asked for: t_s, event_id, site, accepted

    @property
    def sites(self) -> tuple[SitePlan, ...]:
        """The sites, in scenario order (a site's `index`)."""
        return self.network.sites

    @property
    def evses(self) -> tuple[PortPlan, ...]:
        """The ports, in the order the tables' ``evse`` codes refer to."""
        return self.network.ports


class _View:
    """The `NetworkView` handed to the manager: snapshots built on demand."""

    def __init__(
        self, env: simpy.Environment, sites: dict[str, SiteState], prices: PriceSignal, profiles: ProfileCache
    ) -> None:
        self._env = env
        self._sites = sites
        self._prices = prices
        self._profiles = profiles  # the EV's own limit on a connector is its profile there, uncapped
        self.ev_side: EvSide | None = None  # what the manager knows of EVs, with an ev_side section

    def price_at(self, t_s: float) -> float:
        return self._prices.at(t_s)

    @property
    def t_s(self) -> float:
        return self._env.now

    def site_ids(self) -> tuple[SiteId, ...]:
        return tuple(SiteId(k) for k in self._sites)

    def site(self, site_id: SiteId) -> SiteView:
        site = self._sites[site_id]
        now = self._env.now
        views = []
        vehicles: dict[EvseId, VehicleView] = {}
        for e in site.evses:
            s = e.session
            charger_max_kw = e.charger.shared_kw
            if s is None:
                views.append(EvseView(e.evse_id, e.charger.charger_id, e.status, e.max_kw, e.limit_kw, 0.0, None,
                                      charger_max_kw))  # fmt: skip
                continue
            if s.ev is not None:
                assert self.ev_side is not None
                view, vehicle = self.ev_side.vehicle_data.evse_view(e, s, s.ev, now, charger_max_kw)
                views.append(view)
                if vehicle is not None:
                    vehicles[e.evse_id] = vehicle
                continue
            soc, power_kw = s.soc_frac, 0.0
            if s.profile is not None:
                soc = min(s.profile.soc_at(s.tau0_s + now - s.t0_s), s.target_soc_frac)
                power_kw = s.profile.power_at(soc)
            capacity_kwh = s.model.capacity_kwh
            known = s.iso15118
            views.append(
                EvseView(
                    e.evse_id,
                    e.charger.charger_id,
                    e.status,
                    e.max_kw,
                    e.limit_kw,
                    power_kw,
                    SessionId(s.session_id),
                    charger_max_kw,
                    s.plug_t_s,
                    (soc - s.soc_in_frac) * capacity_kwh,
                    s.depart_t_s if known else None,
                    (s.target_soc_frac - soc) * capacity_kwh if known else None,
                    self._profiles.get(s.model, e.dc, e.max_kw).power_at(soc) if known else None,
                )
            )
            if known:
                vehicles[e.evse_id] = VehicleView(NeedsSource.ISO15118, soc, capacity_kwh, s.target_soc_frac, 0.0)
        dr_cap_kw = min(site.dr_caps, default=math.inf)
        import_kw = min(site.grid_limit_kw, dr_cap_kw)
        energy = site.energy
        if energy is None:
            return SiteView(site.site_id, site.capacity_kw, tuple(views), import_kw, dr_cap_kw, self._prices.at(now),
                            now, len(site.queue), vehicles, grid_limit_kw=import_kw,
                            phase_limit_kw=site.phase_limit_kw, single_phase=site.single_phase,
                            panels=site.panels)  # fmt: skip
        b = energy.battery
        storage = None
        if b is not None:
            b.advance(now)
            storage = StorageView(b.cfg.capacity_kwh, b.cfg.power_kw, b.energy_kwh, b.power_kw, b.available_kw)
        return SiteView(site.site_id, site.capacity_kw, tuple(views), import_kw + energy.available_kw(), dr_cap_kw,
                        self._prices.at(now), now, len(site.queue), vehicles, energy.pv_kw, storage,
                        import_kw, site.phase_limit_kw, site.single_phase, site.panels)  # fmt: skip


class _Simulation:
    """The running simulation: SimPy environment, hardware, drivers, manager and recorder."""

    def __init__(
        self,
        scenario: Scenario,
        models: list[EVModel],
        arrivals: dict[str, demand.SiteArrivals],
        manager: NetworkManager | None = None,
    ) -> None:
        self.scenario = scenario
        self.models = models
        self.env = simpy.Environment()
        self.plan = plan_of(scenario)
        self.sites, self.evses = build_sites(self.plan)
        self.evse_by_id = {e.evse_id: e for e in self.evses}
        self.prices = PriceSignal(scenario.grid.energy_price, scenario)
        self.manager: NetworkManager = (
            manager if manager is not None else build_manager(scenario.manager, self.prices.at)
        )
        self.profiles = ProfileCache()
        self.view = _View(self.env, {s.site_id: s for s in self.sites}, self.prices, self.profiles)
        self.reliability: Reliability | None = None
        if scenario.serviceability is not None:
            self.reliability = Reliability(self.env, scenario, scenario.serviceability, self.sites, self)
            self.manager = CompositeManager([self.manager, build_operator(scenario.serviceability.operator)])
        self.drivers = DriverModel(stream(scenario.seed, "drivers"))
        self.customers = Customers(scenario, arrivals, {s.site_id: s.index for s in self.sites})
        self.site_index = {s.site_id: s.index for s in self.sites}
        self.clock = WallClock.of(scenario)
        self.billing = Billing(scenario, self.clock, self.customers)
        self.tariffs = self.billing.tariffs
        self.busy = self.billing.busy
        if scenario.pricing is not None:
            self.manager = CompositeManager([self.manager, DynamicPricing(scenario.pricing, self.billing.site_tariffs)])
        self.choice = scenario.drivers.site_choice
        self.response = scenario.drivers.price_response
        self.site_kw = [  # the fastest DC and AC port of each site
            tuple(max((e.max_kw for e in s.evses if e.dc is dc), default=0.0) for dc in (True, False))
            for s in self.sites
        ]
        self.nearby = self._nearby(scenario) if self.choice is not None else []
        self.ev_dc_kw = [max(p for _, p in m.dc_curve) for m in models]
        self.ev_side: EvSide | None = None
        if scenario.ev_side is not None:
            self.ev_side = self.view.ev_side = EvSide(scenario, self.sites, self.evses, self, self.profiles)
            self.billing.pnc = (self.ev_side.pnc_payment, self.ev_side.pnc_code)
        self.next_session_id = 0
        self.unavailable: set[str] = set()  # connectors taken out of service by ChangeAvailability
        # The tables with millions of rows a year keep their codes and ids in 32 bits (the sessions table too).
        self.events = Table(floats=("t_s", "value"), ints=("event", "site", "evse", "session_id"), int_bits=32)
        self.intervals = Table(floats=("t0_s", "t1_s", "tau0_s"), ints=("site", "evse", "profile"), int_bits=32)
        self.dr = Table(floats=("notify_t_s", "start_t_s", "end_t_s", "cap_kw"), ints=("event_id", "site", "opt_out"))
        # Opt-outs a manager asked for: accepted (1) or refused (0), and when.
        self.dr_opt_outs = Table(floats=("t_s",), ints=("event_id", "site", "accepted"))
        self._dr_windows: dict[tuple[int, int], DrWindow] = {}  # (event id, site index) → announced, not ended
        self._dr_caps: dict[tuple[int, int], float] = {}  # the caps in force, by (event id, site index)
        self._dr_opted_out: set[tuple[int, int]] = set()
        self.storage = Table(floats=("t_s", "power_kw", "energy_kwh"), ints=("site",))
        for site in self.sites:
            cfg = scenario.grid.sites.get(site.site_id)
            if cfg is not None and (cfg.pv is not None or cfg.storage is not None):
                site.energy = SiteEnergy(cfg, self.clock, scenario.horizon_s)
                if cfg.pv is not None:
                    self.env.process(self._pv(site, site.energy))
                if site.energy.battery is not None:
                    self._record_battery(site, site.energy)
                    self.site_changed(site)
        for window in dr_windows(scenario, [s.grid_limit_kw for s in self.sites]):
            self.env.timeout(window.notify_t_s, window).callbacks.append(self._dr_notify)
            self.env.timeout(window.start_t_s, window).callbacks.append(self._dr_start)
        for t_s, price in self.prices.changes():
            self.env.timeout(t_s, price).callbacks.append(lambda ev: self.send(PriceChanged(self.env.now, ev.value)))
        for site in self.sites:
            arr = arrivals[site.site_id]
            if len(arr):
                self.env.process(self._arrivals(site, arr))
        self._handlers = self._command_handlers()
        self.env.process(self._ticks())
        self.env.timeout(0.0, "start").callbacks.append(self._on_timer)

    def _nearby(self, scenario: Scenario) -> list[list[tuple[int, float]]]:
        """For each site, the sites within the choice radius and their distance (km), itself first.

        Only sites offering the same kind of charging count: a driver heading for a fast (DC)
        site looks for fast sites, one heading for an AC-only site for AC-only sites.
        """
        assert self.choice is not None
        at = [(c.lat, c.lon) for c in scenario.network.sites]
        fast = [dc_kw > 0 for dc_kw, _ in self.site_kw]
        radius_km = self.choice.radius_km
        out = []
        for i, here in enumerate(at):
            others = [(j, haversine_km(*here, *there)) for j, there in enumerate(at) if j != i and fast[j] == fast[i]]
            out.append([(i, 0.0)] + [(j, km) for j, km in others if km <= radius_km])
        return out

    # ------------------------------------------------------------ processes

    def _arrivals(self, site: SiteState, arr: demand.SiteArrivals):  # noqa: ANN202 - a SimPy process
        env = self.env
        for lo in range(0, len(arr), _CHUNK):
            hi = lo + _CHUNK
            t = arr.t_s[lo:hi].tolist()
            rows = zip(
                t,
                arr.model[lo:hi].tolist(),
                arr.soc_in_frac[lo:hi].tolist(),
                arr.target_soc_frac[lo:hi].tolist(),
                arr.dwell_s[lo:hi].tolist(),
                arr.patience_s[lo:hi].tolist(),
                arr.max_queue[lo:hi].tolist(),
                arr.leave_when_charged[lo:hi].tolist(),
                arr.iso15118[lo:hi].tolist(),
                arr.ev.states(lo, hi) if arr.ev is not None else [None] * len(t),
                strict=True,
            )
            for k, (t_s, model, soc_in, target, dwell_s, patience_s, max_queue, leave, iso, ev) in enumerate(rows, lo):
                yield env.timeout(t_s - env.now)
                self._arrive(site, k, t_s, model, soc_in, target, dwell_s, patience_s, max_queue, leave, iso, ev)

    def _dr_notify(self, event: simpy.Event) -> None:
        w = cast(DrWindow, event.value)
        site = self.sites[w.site_index]
        self._dr_windows[(w.event_id, w.site_index)] = w
        self.send(DemandResponseNotified(self.env.now, site.site_id, w.start_t_s, w.end_t_s, w.cap_kw, w.shed_kw,
                                         w.opt_out_allowed, w.event_id))  # fmt: skip

    def opt_out(self, site_id: SiteId, event_id: int, t_s: float) -> bool:
        """Decline event `event_id` at `site_id` if it allows it and has not ended; recorded either way."""
        k = self.site_index[site_id]
        key = (event_id, k)
        w = self._dr_windows.get(key)
        accepted = w is not None and w.opt_out_allowed
        self.dr_opt_outs.add_floats((t_s,))
        self.dr_opt_outs.add_ints((event_id, k, int(accepted)))
        if accepted and key not in self._dr_opted_out:  # a second opt-out changes nothing
            self._dr_opted_out.add(key)
            cap_kw = self._dr_caps.pop(key, None)
            if cap_kw is not None:  # in force: lifted now
                site = self.sites[k]
                site.dr_caps.remove(cap_kw)
                if site.energy is not None:
                    self.site_changed(site)
                self.send(DemandResponseEnded(t_s, site.site_id))
        return accepted

    def _dr_start(self, event: simpy.Event) -> None:
        """The cap begins: a shed is taken from the site's power at this instant."""
        w = cast(DrWindow, event.value)
        site = self.sites[w.site_index]
        t_s = self.env.now
        if w.cap_kw is not None:
            cap_kw = w.cap_kw
        else:
            assert w.shed_kw is not None
            cap_kw = max(0.0, sum(e.power_kw for e in self.view.site(site.site_id).evses) - w.shed_kw)
        self.dr.add_floats((w.notify_t_s, w.start_t_s, w.end_t_s, cap_kw))
        self.dr.add_ints((w.event_id, site.index, int(w.opt_out_allowed)))
        key = (w.event_id, site.index)
        self.env.timeout(w.end_t_s - t_s, key).callbacks.append(self._dr_end)
        if key in self._dr_opted_out:  # declined before it began: the cap never applies
            return
        self._dr_caps[key] = cap_kw
        site.dr_caps.append(cap_kw)
        if site.energy is not None:
            self.site_changed(site)
        self.send(DemandResponseStarted(t_s, site.site_id, cap_kw))

    def _dr_end(self, event: simpy.Event) -> None:
        key = cast(tuple[int, int], event.value)
        self._dr_windows.pop(key, None)
        cap_kw = self._dr_caps.pop(key, None)
        if cap_kw is None:  # opted out
            return
        site = self.sites[key[1]]
        site.dr_caps.remove(cap_kw)
        if site.energy is not None:
            self.site_changed(site)
        self.send(DemandResponseEnded(self.env.now, site.site_id))

    def _on_timer(self, event: simpy.Event) -> None:
        self.send(Timer(self.env.now, cast(str, event.value)))

    # ------------------------------------------------------------ behind the meter (`sim.behind_meter`)

    def _pv(self, site: SiteState, energy: SiteEnergy):  # noqa: ANN202 - a SimPy process
        """Step the site's PV output at each change of its hourly profile and tell the managers."""
        env = self.env
        for t_s, kw in zip(energy.pv_t_s[1:], energy.pv_values[1:], strict=True):
            yield env.timeout(t_s - env.now)
            energy.pv_kw = kw
            if energy.battery is not None:
                self.site_changed(site)
            self.send(SiteLimitChanged(env.now, site.site_id, self.view.site(site.site_id).limit_kw))

    def site_changed(self, site: SiteState) -> None:
        """The site's load, PV or import limit changed: set the battery's power once this instant's changes are in."""
        energy = site.energy
        if energy is None or energy.battery is None or energy.pending:
            return
        energy.pending = True
        self.env.timeout(0.0, site).callbacks.append(self._dispatch)

    def _dispatch(self, event: simpy.Event) -> None:
        site = cast(SiteState, event.value)
        energy = site.energy
        assert energy is not None
        assert energy.battery is not None
        energy.pending = False
        b = energy.battery
        t_s = self.env.now
        b.advance(t_s)
        before = b.power_kw
        import_kw = min(site.grid_limit_kw, min(site.dr_caps, default=math.inf))
        b.set_power(ev_load_bound_kw(site, t_s), energy.pv_kw, import_kw, bool(site.dr_caps))
        if b.power_kw != before:
            self._record_battery(site, energy)
        in_s = b.breakpoint_in_s()
        if in_s < math.inf:
            self.env.timeout(in_s, (site, b.version)).callbacks.append(self._on_battery_breakpoint)

    def _on_battery_breakpoint(self, event: simpy.Event) -> None:
        """The battery ran empty, full, or has recharged enough to be used again."""
        site, version = cast(tuple[SiteState, int], event.value)
        energy = site.energy
        assert energy is not None
        assert energy.battery is not None
        if energy.battery.version != version:
            return
        t_s = self.env.now
        usable_changed = energy.battery.reach_breakpoint(t_s)
        self._record_battery(site, energy)
        self.site_changed(site)
        if usable_changed:
            self.send(SiteLimitChanged(t_s, site.site_id, self.view.site(site.site_id).limit_kw))

    def _record_battery(self, site: SiteState, energy: SiteEnergy) -> None:
        b = energy.battery
        assert b is not None
        self.storage.add_floats((b.t_s, b.power_kw, b.energy_kwh))
        self.storage.add_ints((site.index,))

    def _ticks(self):  # noqa: ANN202 - a SimPy process
        """A `Tick` to the managers at every local midnight (a day may last 23 or 25 hours)."""
        clock = self.clock
        day = 0 if clock.day0_s == 0 else 1
        while True:
            yield self.env.timeout(clock.t_s(day * S_PER_DAY - clock.day0_s) - self.env.now)
            self.send(Tick(self.env.now))
            day += 1

    # ------------------------------------------------------------ drivers

    def _arrive(
        self,
        site: SiteState,
        k: int,
        t_s: float,
        model: int,
        soc_in: float,
        target: float,
        dwell_s: float,
        patience_s: float,
        max_queue: int,
        leave: bool,
        iso15118: bool,
        ev: EvState | None = None,
    ) -> None:
        driver = Driver(self.drivers, patience_s, max_queue, leave)
        s = Session(self.next_session_id, driver, site, self.models[model], model, t_s, soc_in, target, dwell_s)
        s.iso15118 = iso15118
        s.visit = visit = self.customers.visit(site.index, k)
        self.next_session_id += 1
        s.ev = ev
        if visit.account is not None:
            self.customers.review(visit.account, t_s)
        if self.choice is not None and len(self.nearby[site.index]) > 1:
            j, km = self._choose_site(s, t_s)
            if j != site.index:
                s.site, s.detour_km = self.sites[j], km
                self.env.timeout(km / self.choice.speed_kmh * 3600.0, s).callbacks.append(self._on_reach)
                return
        self._reach(s, t_s)

    def _shown_price(self, s: Session, site: int, t_s: float) -> float:
        """The price per kWh the driver of `s` reads for site number `site`: every component spread over the need."""
        prices = self.tariffs[site].at(t_s)
        plan = self.customers.plan_at(s.visit.account if s.visit else None, self.sites[site].site_id)
        d = plan.discount if plan is not None else None
        dc_kw, ac_kw = self.site_kw[site]
        power_kw = max(min(dc_kw, self.ev_dc_kw[s.model_index]), min(ac_kw, s.model.ac_max_kw))
        need_kwh = max(s.requested_kwh, 1.0)
        return (
            prices.per_kwh * (1 - (d.energy_frac if d else 0.0))
            + prices.session_fee * (1 - (d.session_fee_frac if d else 0.0)) / need_kwh
            + prices.per_min_at(power_kw) * (1 - (d.time_frac if d else 0.0)) * 60.0 / max(power_kw, 1e-9)
        )

    def _choose_site(self, s: Session, t_s: float) -> tuple[int, float]:
        """The site a driver picks among those near the one they meant to use (multinomial logit)."""
        c = self.choice
        assert c is not None
        assert s.visit is not None
        options = self.nearby[s.site.index]
        if s.ev is not None:  # the driver's app lists only sites with a connector their EV fits
            assert self.ev_side is not None
            ev = s.ev
            options = [o for o in options if self.ev_side.fits(o[0], ev)] or options[:1]
        utilities = []
        for j, km in options:
            site = self.sites[j]
            wait_min = 0.0 if site.free and not site.queue else (len(site.queue) + 1) * c.session_min / len(site.evses)
            member = self.customers.plan_at(s.visit.account, site.site_id) is not None
            utilities.append(c.beta_price * self._shown_price(s, j, t_s) + c.beta_wait_per_min * wait_min
                             + c.beta_detour_per_km * km + c.beta_member * member)  # fmt: skip
        return options[s.driver.choose_site(utilities, s.visit.u_site)]

    def _on_reach(self, event: simpy.Event) -> None:
        self._reach(cast(Session, event.value), self.env.now)

    def _reach(self, s: Session, t_s: float) -> None:
        """The driver is at the site: answer the price, then plug in, queue or leave."""
        site = s.site
        s.arrival_t_s = t_s
        if self.response is not None and not self._accept_price(s, t_s):
            return
        if s.ev is not None:
            assert self.ev_side is not None
            self.ev_side.arrive(s, site, t_s)  # only ports the EV can use
            return
        free = site.free
        while True:  # each failed attempt takes a port out of service, so this ends
            choice = s.driver.choose(len(free), len(site.queue))
            if choice is Choice.PLUG:
                k = 0 if len(free) == 1 else s.driver.pick_port([e.max_kw for e in free])
                if self.try_plug(s, free.pop(k), t_s):
                    return
            elif choice is Choice.QUEUE:
                self.enqueue(s, site, t_s)
                return
            else:
                if s.failed_attempts:
                    s.cause = Cause.FAULTED_PORT
                self.leave(s, site, t_s, Outcome.FAILED if s.failed_attempts else Outcome.BALKED)
                return

    def enqueue(self, s: Session, site: SiteState, t_s: float) -> None:
        """`s` waits in the site's queue until a port is free or its patience runs out."""
        site.queue.append(s)
        self.busy[site.index].update(True, t_s)
        self._event(t_s, EventKind.QUEUED, site.index, -1, s.session_id, math.nan)
        self.env.timeout(s.driver.patience_s, s).callbacks.append(self._on_renege)

    def leave(self, s: Session, site: SiteState, t_s: float, outcome: Outcome) -> None:
        """`s` leaves without charging (balked, failed attempts, or no port fits its EV)."""
        s.state = State.DONE
        self._event(t_s, EventKind.BALKED, site.index, -1, s.session_id, math.nan)
        self._record(s, outcome, math.nan)

    def queue_changed(self, site: SiteState, t_s: float) -> None:
        """A driver joined or left the site's queue other than by `enqueue` or reneging."""
        self.busy[site.index].update(bool(site.queue), t_s)

    def reach(self, s: Session, site: SiteState, t_s: float, km: float) -> None:
        """`s` drove `km` to `site` (a redirect to a port its EV fits) and arrives there now."""
        s.site = site
        s.detour_km += km
        self._reach(s, t_s)

    def _accept_price(self, s: Session, t_s: float) -> bool:
        """Above their willingness to pay a driver shifts or leaves; below it they may ask for less energy."""
        r = self.response
        assert r is not None
        assert s.visit is not None
        price = self._shown_price(s, s.site.index, t_s)
        wtp = s.visit.wtp_per_kwh
        if price > wtp:
            if s.shift_s == 0.0 and s.visit.u_shift < r.shift_share:
                for t in self.tariffs[s.site.index].changes(t_s, t_s + r.shift_window_h * 3600.0):
                    if self._shown_price(s, s.site.index, t + 1.0) <= wtp:
                        s.shift_s = t + 1.0 - t_s
                        self.env.timeout(s.shift_s, s).callbacks.append(self._on_reach)
                        return False
            s.state = State.DONE
            self._record(s, Outcome.PRICED_OUT, math.nan)
            return False
        factor = energy_factor(price, r.reference_price_per_kwh, r.elasticity)
        s.target_soc_frac = s.soc_in_frac + (s.target_soc_frac - s.soc_in_frac) * factor
        return True

    def try_plug(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Plug `s` into `evse`; True when the driver is done choosing ports.

        A silently failed port, or with an ev_side section a failed handshake or refused
        certificate, makes it a failed attempt (the driver may try again); a refused payment
        ends the session as failed and hands the port to the next driver.
        """
        if evse.silent_faults:
            assert self.reliability is not None
            s.failed_attempts += 1
            self.reliability.failed_attempt(evse, s.session_id, t_s)
            if s.ev is not None:
                assert self.ev_side is not None
                self.ev_side.fault_attempt(s, evse, t_s)
            return False
        if s.ev is not None:
            assert self.ev_side is not None
            if not self.ev_side.start(s, evse, t_s):
                return False
        assert s.visit is not None
        method = self.billing.payment(s)[0]  # a contract certificate does not fail here: it was checked at the start
        if method is not None and s.visit.u_payment < method.failure_prob:
            s.state = State.DONE
            s.cause = Cause.PAYMENT
            self._record(s, Outcome.FAILED, t_s)
            self._release(evse, t_s)
            return True
        self._plug(s, evse, t_s)
        return True

    def _release(self, evse: Evse, t_s: float) -> None:
        """A free, serviceable port: the first waiting driver takes it, or it joins the free list."""
        if self.ev_side is not None:
            self.ev_side.release(evse, t_s)  # the first waiting driver whose EV fits it
            return
        site = evse.site
        while site.queue and evse.blocks == 0:
            s = site.queue.popleft()
            self.busy[site.index].update(bool(site.queue), t_s)
            if self.try_plug(s, evse, t_s):
                return
            site.queue.appendleft(s)
            self.busy[site.index].update(True, t_s)
        if evse.blocks == 0:
            site.free.append(evse)

    def _on_renege(self, event: simpy.Event) -> None:
        s = cast(Session, event.value)
        if s.state is not State.QUEUED:
            return
        s.site.queue.remove(s)
        self.busy[s.site.index].update(bool(s.site.queue), self.env.now)
        s.state = State.DONE
        self._event(self.env.now, EventKind.RENEGED, s.site.index, -1, s.session_id, math.nan)
        self._record(s, Outcome.RENEGED, self.env.now)

    # ------------------------------------------------------------ sessions

    def _plug(self, s: Session, evse: Evse, t_s: float) -> None:
        s.state = State.PLUGGED
        s.evse = evse
        s.plug_t_s = t_s
        s.depart_t_s = t_s + s.dwell_s
        s.schedule = self.tariffs[evse.site.index]
        s.plan = self.customers.plan_at(s.visit.account if s.visit else None, evse.site.site_id)
        evse.session = s
        self.env.timeout(s.dwell_s, s).callbacks.append(self._on_dwell_end)
        if evse.profiles is not None:  # relative profiles count from the transaction start
            evse.profiles.start_transaction(t_s)
            evse.profile_kw = limit_at(evse.profiles.profiles, t_s, t_s)
        wants = s.target_soc_frac > s.soc_frac
        if wants and s.ev is not None and s.ev.auth_s > 0:
            evse.set_status(PREPARING)  # power flows once the session is authorised
            self.env.timeout(s.ev.auth_s, s).callbacks.append(self._on_authorized)
        else:
            evse.set_status(CHARGING if wants else SUSPENDED_EV)
        pnc = s.ev is not None and s.ev.auth_method == PLUG_AND_CHARGE
        self._apply(
            self.manager.handle(
                SessionStarted(t_s, evse.site.site_id, evse.evse_id, SessionId(s.session_id), pnc), self.view
            ),
            t_s,
        )
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
        if s.state is not State.PLUGGED or evse is None or evse.status is not PREPARING:
            return  # left or interrupted meanwhile
        t_s = self.env.now
        evse.set_status(CHARGING)
        self.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, CHARGING))
        if evse.status is CHARGING:
            self._open(s, evse, t_s)
            if evse.charger.splits:
                self._replan_siblings(evse, t_s)

    def _open(self, s: Session, evse: Evse, t_s: float) -> None:
        """Start an interval at the connector's current cap, or pause the session at a zero cap."""
        cap = evse.cap_kw()
        if cap < MIN_POWER_KW:
            evse.set_status(SUSPENDED_EVSE)
            return
        if evse.site.energy is not None:
            self.site_changed(evse.site)
        full_in_s = s.open(self.profiles.get(s.model, evse.dc, cap), t_s)
        if t_s + full_in_s < s.depart_t_s:
            self.env.timeout(max(full_in_s, 0.0), (s, s.version)).callbacks.append(self._on_full)

    def _close(self, s: Session, t_s: float) -> None:
        evse = s.evse
        assert evse is not None
        t0_s, tau0_s, pid = s.close(t_s)
        if t0_s >= self.scenario.horizon_s:  # opened by a change exactly at the horizon: outside the run
            return
        if evse.site.energy is not None:
            self.site_changed(evse.site)
        self.intervals.add_floats((t0_s, t_s, tau0_s))
        self.intervals.add_ints((evse.site.index, evse.index, pid))

    def _on_full(self, event: simpy.Event) -> None:
        s, version = cast(tuple[Session, int], event.value)
        if s.version != version or s.state is not State.PLUGGED:
            return
        t_s = self.env.now
        evse = s.evse
        assert evse is not None
        self._close(s, t_s)
        s.soc_frac = s.target_soc_frac
        s.charge_end_t_s = s.full_t_s = t_s
        evse.set_status(SUSPENDED_EV)
        if s.driver.leave_when_charged:
            self._depart(s, t_s)
            return
        self._apply(
            self.manager.handle(StatusChanged(t_s, evse.site.site_id, evse.evse_id, SUSPENDED_EV), self.view), t_s
        )
        if evse.charger.splits:
            self._replan_siblings(evse, t_s)

    def _on_dwell_end(self, event: simpy.Event) -> None:
        s = cast(Session, event.value)
        if s.state is State.PLUGGED:
            self._depart(s, self.env.now)

    def _depart(self, s: Session, t_s: float, outcome: Outcome = Outcome.SERVED) -> None:
        evse = s.evse
        assert evse is not None
        site = evse.site
        was_charging = evse.status is CHARGING
        if s.profile is not None:
            self._close(s, t_s)
            s.charge_end_t_s = t_s
        evse.set_status(AVAILABLE)
        evse.session = None
        evse.limit_kw = math.inf  # limits are per transaction, as OCPP TxProfiles
        if evse.profiles is not None:
            evse.profiles.stop_transaction()
            self._follow_profiles(evse, t_s)
        s.state = State.DONE
        self._record(s, outcome, t_s)
        self._apply(
            self.manager.handle(
                SessionStopped(t_s, site.site_id, evse.evse_id, SessionId(s.session_id), s.energy_kwh), self.view
            ),
            t_s,
        )
        if was_charging and evse.charger.splits:
            self._replan_siblings(evse, t_s)
        self._release(evse, t_s)

    # ------------------------------------------------------------ power

    def _apply(self, commands: Sequence[Command], t_s: float) -> None:
        handlers = self._handlers
        for c in commands:
            handler = handlers.get(type(c))
            if handler is None:
                raise ValueError(f"{type(c).__name__} is not a command the simulation knows")
            handler(c, t_s)

    def _command_handlers(self) -> dict[type, Callable[[Any, float], object]]:
        """Each command type and the handler of its owner."""
        rel = self.reliability
        handlers: dict[type, Callable[[Any, float], object]] = {
            SetPowerLimit: self._set_power_limit,
            SetChargingProfile: self._change_profiles,
            ClearChargingProfile: self._change_profiles,
            SetTariff: self.billing.set_tariff,
            SetTimer: self._set_timer,
            RejectSession: self._reject_session,
            OptOutDemandResponse: lambda c, t_s: self.opt_out(c.site_id, c.event_id, t_s),
            ChangeAvailability: self._change_availability,
        }
        if rel is None:

            def refuse(c: Command, t_s: float) -> None:
                raise ValueError(f"{type(c).__name__} needs a serviceability section in the scenario")

            handlers.update(dict.fromkeys((Reset, DispatchTechnician, ScheduleMaintenance), refuse))
        else:
            handlers[Reset] = lambda c, t_s: rel.reset(c.charger_id)
            handlers[DispatchTechnician] = lambda c, t_s: rel.dispatch(c.charger_id, c.fault_id)
            handlers[ScheduleMaintenance] = lambda c, t_s: rel.schedule_maintenance(c.charger_id, c.t_s)
        return handlers

    def _set_power_limit(self, c: SetPowerLimit, t_s: float) -> None:
        evse = self.evse_by_id[c.evse_id]
        evse.limit_kw = c.power_kw
        session_id = evse.session.session_id if evse.session is not None else -1
        self._event(t_s, EventKind.POWER_LIMIT, evse.site.index, evse.index, session_id, c.power_kw)
        self._replan(evse, t_s)

    def _change_profiles(self, c: SetChargingProfile | ClearChargingProfile, t_s: float) -> None:
        for evse in self._targets(c.evse_id, c.charger_id):
            if evse.profiles is None:
                evse.profiles = ProfileSet()
                if evse.session is not None:
                    evse.profiles.start_transaction(evse.session.plug_t_s)
            if isinstance(c, SetChargingProfile):
                try:
                    evse.profiles.install(c.profile)
                except ValueError:  # e.g. a TxProfile with no transaction: the charger rejects it
                    self._event(t_s, EventKind.PROFILE_REJECTED, evse.site.index, evse.index, -1,
                                c.profile.profile_id)  # fmt: skip
                    continue
            else:
                evse.profiles.clear(c.profile_id, c.purpose, c.stack_level)
            self._follow_profiles(evse, t_s)

    def _set_timer(self, c: SetTimer, t_s: float) -> None:
        if c.t_s < t_s:
            raise ValueError(f"SetTimer for t_s={c.t_s} is in the past (now {t_s})")
        self.env.timeout(c.t_s - t_s, c.name).callbacks.append(self._on_timer)

    def _reject_session(self, c: RejectSession, t_s: float) -> None:
        evse = self.evse_by_id[c.evse_id]
        s = evse.session
        if s is None or s.session_id != c.session_id:
            raise ValueError(f"RejectSession: session {c.session_id} is no longer on {c.evse_id}")
        s.cause = Cause.AUTHORIZATION
        self._depart(s, t_s, Outcome.REJECTED)

    def _change_availability(self, c: ChangeAvailability, t_s: float) -> None:
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
        evse, version = cast(tuple[Evse, int], event.value)
        if version == evse.profile_version:
            self._follow_profiles(evse, self.env.now)

    # ------------------------------------------------------------ ports (`PortControl` for serviceability)

    def send(self, event: Event) -> None:
        """Hand `event` to the manager and apply its commands now."""
        self._apply(self.manager.handle(event, self.view), self.env.now)

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
            if s.profile is not None:
                self._close(s, t_s)
                s.charge_end_t_s = t_s
            evse.set_status(status)
            evse.session = None
            evse.limit_kw = math.inf
            s.state = State.DONE
            self._record(s, Outcome.INTERRUPTED, t_s)
            self.send(SessionStopped(t_s, site.site_id, evse.evse_id, SessionId(s.session_id), s.energy_kwh))
            if was_charging and evse.charger.splits:
                self._replan_siblings(evse, t_s)
        else:
            evse.set_status(status)
        self.send(StatusChanged(t_s, site.site_id, evse.evse_id, status))

    def unblock(self, evse: Evse, t_s: float, fault: bool = False) -> None:
        """One condition fewer; after the last the port serves again."""
        evse.blocks -= 1
        evse.fault_blocks -= fault
        if evse.blocks > 0:
            self._down_status(evse, t_s)
            return
        evse.set_status(AVAILABLE)
        self.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, AVAILABLE))
        self._release(evse, t_s)

    def _down_status(self, evse: Evse, t_s: float) -> None:
        """A port still out of service shows Faulted while a fault is among its conditions, else Unavailable."""
        status = FAULTED if evse.fault_blocks else UNAVAILABLE
        if status is not evse.status:
            evse.set_status(status)
            self.send(StatusChanged(t_s, evse.site.site_id, evse.evse_id, status))

    def port_power_changed(self, evse: Evse, t_s: float) -> None:
        """Derating began or ended: re-plan the session on the port."""
        self._replan(evse, t_s)

    def _replan(self, evse: Evse, t_s: float) -> None:
        """Follow a change of the connector's cap: new interval, pause or resume."""
        s = evse.session
        if s is None:
            return
        if evse.status is CHARGING:
            if s.profile is None:
                return  # being plugged in: its first interval opens after the manager answered
            cap = evse.cap_kw()
            if cap >= MIN_POWER_KW and self.profiles.get(s.model, evse.dc, cap) is s.profile:
                return
            self._close(s, t_s)
            self._open(s, evse, t_s)
            if evse.status is not CHARGING and evse.charger.splits:
                self._replan_siblings(evse, t_s)
        elif evse.status is SUSPENDED_EVSE and evse.cap_kw() >= MIN_POWER_KW:
            evse.set_status(CHARGING)
            self._open(s, evse, t_s)
            if evse.charger.splits:
                self._replan_siblings(evse, t_s)

    def _replan_siblings(self, evse: Evse, t_s: float) -> None:
        for other in evse.charger.evses:
            if other is not evse and other.status is CHARGING:
                self._replan(other, t_s)

    # ------------------------------------------------------------ recording

    def _event(self, t_s: float, kind: int, site: int, evse: int, session_id: int, value: float) -> None:
        self.events.add_floats((t_s, value))
        self.events.add_ints((kind, site, evse, session_id))

    def _record(self, s: Session, outcome: Outcome, departure_t_s: float) -> None:
        self.billing.record(s, outcome, departure_t_s, self.env.now)
        if s.ev is not None:
            assert self.ev_side is not None
            self.ev_side.record(s)
        if outcome is not Outcome.ONGOING:
            s.driver.remove()

    def finish(self, t_s: float) -> None:
        """Close what is still open at the end of the horizon; those sessions are `ongoing`."""
        for evse in self.evses:
            s = evse.session
            if s is not None:
                if s.profile is not None:
                    self._close(s, t_s)
                self._record(s, Outcome.ONGOING, math.nan)
        for site in self.sites:
            for s in site.queue:
                self._record(s, Outcome.ONGOING, math.nan)
        if self.ev_side is not None:
            for s in self.ev_side.in_transit.values():  # on their way to another site
                self._record(s, Outcome.ONGOING, math.nan)
        if self.reliability is not None:
            self.reliability.finish(t_s)
        self.customers.finish(t_s)
        for site in self.sites:
            if site.energy is not None and site.energy.battery is not None:
                site.energy.battery.advance(t_s)
                self._record_battery(site, site.energy)  # the energy left at the end


class Simulation:
    """A run advanced from outside, step by step: for runs paced against the wall clock with a real backend.

    `advance` moves simulated time forward; between two calls the caller may `apply` the
    commands a backend sent and add `demand_response` signals, which take effect at the
    current simulated time. `simulate` is this run straight through.
    """

    def __init__(self, scenario: Scenario, manager: NetworkManager | None = None) -> None:
        """Build the run of `scenario`, with `manager` in place of the scenario's if given."""
        self._t0 = time.perf_counter()
        models = demand.fleet_models(scenario)
        self._sim = _Simulation(scenario, models, demand.generate(scenario, models), manager)
        self._next_dr_id = 1_000_000  # ids of signals added while running, after the scenario's own
        self.scenario = scenario

    @property
    def t_s(self) -> float:
        """Current simulated time."""
        return float(self._sim.env.now)

    @property
    def next_event_t_s(self) -> float:
        """Simulated time of the next scheduled event (inf when none is left)."""
        return float(self._sim.env.peek())

    @property
    def view(self) -> NetworkView:
        """The network as a manager sees it now."""
        return self._sim.view

    def advance(self, t_s: float) -> None:
        """Process every event up to `t_s` (at most the horizon); simulated time is then `t_s`."""
        env = self._sim.env
        until = min(t_s, self.scenario.horizon_s)
        if until > env.now:
            env.run(until=until)
        while env.peek() <= until:  # SimPy stops before the other events at `until`: take them too
            env.step()

    def apply(self, commands: Sequence[Command]) -> None:
        """Carry out a backend's commands now, as if the manager had answered an event with them."""
        self._sim._apply(commands, self._sim.env.now)

    def demand_response(
        self,
        site_id: SiteId,
        start_t_s: float,
        end_t_s: float,
        cap_kw: float | None,
        shed_kw: float | None = None,
        opted_out: bool = False,
    ) -> None:
        """A grid operator's cap (or shed from the load at its start) on a site, announced now.

        It holds from `start_t_s` (not before now) to `end_t_s`. Such an event may be declined
        (OpenADR lets a VEN opt out of any event): `opted_out` declines it as it is announced,
        and a manager may decline it later with `OptOutDemandResponse`.
        """
        if (cap_kw is None) == (shed_kw is None):
            raise ValueError("give exactly one of cap_kw or shed_kw")
        sim = self._sim
        now = sim.env.now
        start = max(start_t_s, now)
        if end_t_s <= start:
            return
        window = DrWindow(self._next_dr_id, sim.site_index[site_id], now, start, end_t_s, cap_kw, shed_kw, True)
        self._next_dr_id += 1
        sim.env.timeout(0.0, window).callbacks.append(sim._dr_notify)
        if opted_out:  # right after the announcement, at the same instant

            def decline(_: simpy.Event) -> None:
                sim.opt_out(site_id, window.event_id, now)

            sim.env.timeout(0.0).callbacks.append(decline)
        sim.env.timeout(start - now, window).callbacks.append(sim._dr_start)

    def finish(self) -> RunTables:
        """Close the run at the horizon (or now, if earlier) and return its tables."""
        sim = self._sim
        sim.finish(min(float(sim.env.now), self.scenario.horizon_s))
        sim.billing.sessions.sort_rows("session_id")  # recorded as sessions end; results list them by id
        return RunTables(
            self.scenario,
            sim.models,
            sim.plan,
            sim.profiles.profiles,
            sim.billing.sessions.arrays(),
            sim.events.arrays(),
            sim.intervals.arrays(),
            time.perf_counter() - self._t0,
            sim.reliability.record() if sim.reliability is not None else None,
            sim.dr.arrays(),
            sim.prices,
            sim.customers.invoices.arrays(),
            sim.billing.tariff_changes.arrays(),
            sim.ev_side.result() if sim.ev_side is not None else None,
            sim.storage.arrays(),
            sim.dr_opt_outs.arrays(),
        )


def simulate(
    scenario: Scenario,
    progress: Callable[[float], None] | None = None,
    manager: NetworkManager | None = None,
) -> RunTables:
    """Run `scenario` and return its recorded tables.

    Args:
        scenario: A validated scenario.
        progress: Called with the fraction of the horizon done, once per simulated day.
        manager: A network manager of your own in place of the scenario's `manager` (the
            scenario's maintenance operator, if any, still runs beside it).
    """
    run = Simulation(scenario, manager)
    horizon_s = scenario.horizon_s
    day = 1
    while run.t_s < horizon_s:
        run.advance(day * S_PER_DAY)
        day += 1
        if progress is not None:
            progress(run.t_s / horizon_s)
    return run.finish()
