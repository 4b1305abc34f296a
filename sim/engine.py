"""Wiring: build the SimPy environment from a scenario, run it, return the recorded tables.

Every change happens at an event — an arrival, a plug-in, a battery reaching its target,
a departure, a reneging driver or a manager command — and between events every
connector follows a known piece of its EV's charge curve (see `sim.ev`), so nothing is
time-stepped. Charge-curve knees need no events of their own: they are inside the
closed-form profiles.

The behaviour lives in the objects wired here: drivers (`sim.drivers`), sessions on ports
(`sim.charging`), billing (`sim.billing`), the manager's view (`sim.view`), demand response
(`sim.grid`), PV and storage (`sim.behind_meter`), faults and crews (`sim.serviceability`)
and the EV side (`sim.ev_side`). This module owns the clock's own processes (arrivals,
midnight ticks, price changes, timers) and the bus: an event to the manager, its commands
to their owners through one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import simpy

from sim import demand
from sim.arrivals import ArrivalStream, start_arrivals
from sim.behind_meter import BehindMeter
from sim.billing import SESSION_FLOATS, Billing
from sim.charging import EventLog, Ports
from sim.collector import collector_tuned
from sim.config import Scenario
from sim.customers import Customers
from sim.drivers import DriverModel, Drivers
from sim.ev import ChargeProfile, EVModel, ProfileCache
from sim.ev_side import EvRecord, EvSide
from sim.grid import DemandResponse, PriceSignal, dr_windows
from sim.hardware import build_sites
from sim.ids import SiteId
from sim.managers import answers_sessions, build_manager, build_operator
from sim.managers.base import (
    ChangeAvailability,
    ClearChargingProfile,
    Command,
    CompositeManager,
    DispatchTechnician,
    Event,
    NetworkManager,
    NetworkView,
    OptOutDemandResponse,
    PriceChanged,
    RejectSession,
    Reset,
    ScheduleMaintenance,
    SetChargingProfile,
    SetPowerLimit,
    SetTariff,
    SetTimer,
    Tick,
    Timer,
)
from sim.managers.pricing import DynamicPricing
from sim.network_plan import NetworkPlan, PortPlan, SitePlan, plan_of
from sim.serviceability import NoReliability, Reliability, ServiceRecord
from sim.timers import Timers
from sim.units import S_PER_DAY
from sim.v2g import v2g_limits
from sim.view import LivePorts, LiveView
from sim.wallclock import WallClock

__all__ = ["SESSION_FLOATS", "LivePorts", "RunTables", "Simulation", "simulate"]

Handler = Callable[[Any, float], object]


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
    discharges: dict[str, np.ndarray] | None = None  # V2G: each stretch a session discharged (`sim.charging`)

    @property
    def sites(self) -> tuple[SitePlan, ...]:
        """The sites, in scenario order (a site's `index`)."""
        return self.network.sites

    @property
    def evses(self) -> tuple[PortPlan, ...]:
        """The ports, in the order the tables' ``evse`` codes refer to."""
        return self.network.ports


class _Network:
    """One run's objects, wired: the clock's own processes, and the bus between the network and its manager."""

    def __init__(
        self,
        scenario: Scenario,
        models: list[EVModel],
        arrivals: dict[str, demand.SiteArrivals],
        manager: NetworkManager | None = None,
    ) -> None:
        self.scenario = scenario
        self.models = models
        self.env = env = simpy.Environment()
        self.plan = plan_of(scenario)
        self.sites, evses = build_sites(self.plan)
        for site in self.sites:
            site_grid = scenario.grid.sites.get(site.site_id)
            if site_grid is not None and site_grid.export_limit_kw is not None:
                site.export_limit_kw = site_grid.export_limit_kw
        self.prices = PriceSignal(scenario.grid.energy_price, scenario)
        self.manager: NetworkManager = (
            manager if manager is not None else build_manager(scenario.manager, self.prices.at)
        )
        self.profiles = ProfileCache()
        self.view = LiveView(env, {s.site_id: s for s in self.sites}, self.prices, self.profiles)
        if scenario.grid.export_price is not None:
            self.view.export_prices = PriceSignal(scenario.grid.export_price, scenario)
        self.behind_meter = BehindMeter(env, self, self.view)
        self.events = EventLog()
        self.ports = Ports(env, evses, self.profiles, scenario.horizon_s, self.events, self, self.behind_meter)
        self.behind_meter.rebalance = self.ports.local.rebalance
        self.reliability: Reliability | NoReliability = NoReliability()
        if scenario.serviceability is not None:
            self.reliability = Reliability(env, scenario, scenario.serviceability, self.sites, self.ports)
            self.manager = CompositeManager([self.manager, build_operator(scenario.serviceability.operator)])
        self.customers = Customers(scenario, arrivals, {s.site_id: s.index for s in self.sites})
        self.clock = WallClock.of(scenario)
        self.billing = Billing(scenario, self.clock, self.customers)
        if scenario.pricing is not None:
            self.manager = CompositeManager([self.manager, DynamicPricing(scenario.pricing, self.billing.site_tariffs)])
        self.drivers = Drivers(scenario, env, models, self.sites, self.customers, self.billing, self.ports,
                               self.reliability, self.events)  # fmt: skip
        self.ports.connect(self.billing, self.drivers)
        limits = v2g_limits(scenario, models)
        if any(v is not None for v in limits):
            self.drivers.v2g = limits
        self.ports.listening = answers_sessions(self.manager)
        if scenario.ev_side is not None:
            ev_side = EvSide(scenario, self.sites, evses, self.drivers, self.profiles)
            self.billing.pnc = (ev_side.pnc_payment, ev_side.pnc_code)
            self.drivers.add_ev_side(ev_side)
            self.view.add_ev_side(ev_side.vehicle_data)
        self.ev_side = self.drivers.ev_side
        self.dr = DemandResponse(env, self.sites, self, self.view, self.behind_meter)
        self._handlers = self._command_handlers()
        # Events are scheduled in this order, which breaks ties between events at the same instant.
        for site in self.sites:
            cfg = scenario.grid.sites.get(site.site_id)
            if cfg is not None and (cfg.pv is not None or cfg.storage is not None):
                self.behind_meter.add(site, cfg, self.clock, scenario.horizon_s)
        for window in dr_windows(scenario, [s.grid_limit_kw for s in self.sites]):
            self.dr.announce_in(window, window.notify_t_s)
            self.dr.start_in(window, window.start_t_s)
        for t_s, price in self.prices.changes():
            env.timeout(t_s, price).callbacks.append(lambda ev: self.send(PriceChanged(env.now, ev.value)))
        timers = Timers(env)
        streams = [ArrivalStream(timers, site, arr, self.drivers.arrive) for site in self.sites
                   if len(arr := arrivals[site.site_id])]  # fmt: skip
        env.process(start_arrivals(streams))
        env.process(self._ticks())
        env.timeout(0.0, "start").callbacks.append(self._on_timer)

    def _command_handlers(self) -> dict[type, Handler]:
        """Each command type and its owner's handler."""
        ports, rel = self.ports, self.reliability
        return {
            SetPowerLimit: ports.set_power_limit,
            SetChargingProfile: ports.change_profiles,
            ClearChargingProfile: ports.change_profiles,
            RejectSession: ports.reject_session,
            ChangeAvailability: ports.change_availability,
            SetTariff: self.billing.set_tariff,
            SetTimer: self._set_timer,
            OptOutDemandResponse: self.dr.on_opt_out,
            Reset: lambda c, t_s: rel.reset(c.charger_id),
            DispatchTechnician: lambda c, t_s: rel.dispatch(c.charger_id, c.fault_id),
            ScheduleMaintenance: lambda c, t_s: rel.schedule_maintenance(c.charger_id, c.t_s),
        }

    # ------------------------------------------------------------ the bus

    def handle(self, event: Event, t_s: float) -> None:
        """Hand `event` to the manager and carry out its commands at `t_s`."""
        self.apply(self.manager.handle(event, self.view), t_s)

    def send(self, event: Event) -> None:
        """Hand `event` to the manager and carry out its commands now."""
        self.apply(self.manager.handle(event, self.view), self.env.now)

    def apply(self, commands: Sequence[Command], t_s: float) -> None:
        """Carry out `commands` at `t_s`, each by its owner."""
        handlers = self._handlers
        for c in commands:
            handler = handlers.get(type(c))
            if handler is None:
                raise ValueError(f"{type(c).__name__} is not a command the simulation knows")
            handler(c, t_s)

    # ------------------------------------------------------------ the clock's own processes

    def _ticks(self):  # noqa: ANN202 - a SimPy process
        """A `Tick` to the managers at every local midnight (a day may last 23 or 25 hours)."""
        clock = self.clock
        day = 0 if clock.day0_s == 0 else 1
        while True:
            yield self.env.timeout(clock.t_s(day * S_PER_DAY - clock.day0_s) - self.env.now)
            self.send(Tick(self.env.now))
            day += 1

    def _set_timer(self, c: SetTimer, t_s: float) -> None:
        if c.t_s < t_s:
            raise ValueError(f"SetTimer for t_s={c.t_s} is in the past (now {t_s})")
        self.env.timeout(c.t_s - t_s, c.name).callbacks.append(self._on_timer)

    def _on_timer(self, event: simpy.Event) -> None:
        self.send(Timer(self.env.now, cast(str, event.value)))

    # ------------------------------------------------------------ the end

    def tables(self, t_s: float, started_s: float) -> RunTables:
        """Close what is still open at `t_s` (those sessions are `ongoing`) and return the recorded tables."""
        self.ports.finish(t_s)
        self.drivers.finish()
        self.reliability.finish(t_s)
        self.customers.finish(t_s)
        self.behind_meter.finish(t_s)
        self.billing.sessions.sort_rows("session_id")  # recorded as sessions end; results list them by id
        return RunTables(
            self.scenario,
            self.models,
            self.plan,
            self.profiles.profiles,
            self.billing.sessions.arrays(),
            self.events.table.arrays(),
            self.ports.intervals.arrays(),
            time.perf_counter() - started_s,
            self.reliability.record(),
            self.dr.dr.arrays(),
            self.prices,
            self.customers.invoices.arrays(),
            self.billing.tariff_changes.arrays(),
            self.ev_side.result(),
            self.behind_meter.storage.arrays(),
            self.dr.opt_outs.arrays(),
            self.ports.discharges.arrays(),
        )


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
        self._sim = _Network(scenario, models, demand.generate(scenario, models), manager)
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

    @property
    def drivers(self) -> DriverModel:
        """The Mesa model of the drivers: its ``agents`` are the `Driver`s at a site or on their way to one now."""
        return self._sim.drivers.model

    @property
    def live(self) -> LivePorts:
        """The live sites and connectors, read-only: for in-process readers that cannot afford a view per step."""
        sim = self._sim
        vehicle_data = sim.ev_side.vehicle_data if isinstance(sim.ev_side, EvSide) else None
        return LivePorts(sim.sites, sim.ports.evses, sim.view, vehicle_data)

    def set_power_limits(self, evse_indices: Sequence[int], power_kw: Sequence[float]) -> None:
        """`SetPowerLimit` on many connectors (by plan index) now, no command objects: same rows and effect."""
        self._sim.ports.set_power_limits(evse_indices, power_kw, self._sim.env.now)

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
        self._sim.apply(commands, self._sim.env.now)

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
        self._sim.dr.add_signal(site_id, start_t_s, end_t_s, cap_kw, shed_kw, opted_out)

    def finish(self) -> RunTables:
        """Close the run at the horizon (or now, if earlier) and return its tables."""
        sim = self._sim
        return sim.tables(min(float(sim.env.now), self.scenario.horizon_s), self._t0)


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
    with collector_tuned():
        while run.t_s < horizon_s:
            run.advance(day * S_PER_DAY)
            day += 1
            if progress is not None:
                progress(run.t_s / horizon_s)
    return run.finish()
