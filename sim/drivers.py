"""Drivers as Mesa agents: each arrival is a driver with an EV, a need, a dwell plan and a patience.

A driver's own decisions live in `Driver` methods; `Drivers` takes each arrival through
site choice (multinomial logit over the shown price, wait, detour and membership), the
price response (shift, leave, or ask for less energy), plugging in, queueing and leaving.
The model owns the scenario's ``drivers`` random stream; agents borrow it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import mesa
import numpy as np
import simpy

from sim.ev_arrivals import NO_EV
from sim.ev_side import PLUG_AND_CHARGE, NoEvSide
from sim.rng import stream
from sim.serviceability import haversine_km
from sim.sessions import Cause, Choice, EventKind, Outcome, Session, State

if TYPE_CHECKING:
    from sim.billing import Billing
    from sim.charging import EventLog, Ports
    from sim.config import Scenario
    from sim.customers import Customers
    from sim.ev import EVModel
    from sim.ev_arrivals import EvState, NoEv
    from sim.ev_side import EvSide
    from sim.hardware import Evse, SiteState
    from sim.serviceability import NoReliability, Reliability
    from sim.v2g import V2gLimits

__all__ = ["Choice", "Driver", "DriverModel", "Drivers", "energy_factor"]

_BATCH = 4096


_PLUG, _QUEUE, _BALK = Choice.PLUG, Choice.QUEUE, Choice.BALK  # read on every arrival: globals are faster
_DONE, _QUEUED, _ONGOING = State.DONE, State.QUEUED, Outcome.ONGOING


class DriverModel(mesa.Model):
    """The population of drivers currently at the network's sites."""

    def __init__(self, rng: np.random.Generator) -> None:
        """Use `rng` (the scenario's ``drivers`` stream) for every driver decision."""
        super().__init__(rng=rng)
        self._uniform: list[float] = []

    def uniform(self) -> float:
        """One U(0, 1) draw from the drivers stream, drawn in batches for speed."""
        if not self._uniform:
            self._uniform = self.rng.random(_BATCH).tolist()[::-1]
        return self._uniform.pop()


class Driver(mesa.Agent):
    """A driver at a site, from arrival until departure: registered with the model until they leave."""

    model: DriverModel

    def __init__(self, model: DriverModel, patience_s: float, max_queue: int, leave_when_charged: bool) -> None:
        """A driver who waits at most `patience_s` and balks at `max_queue` cars waiting."""
        super().__init__(model)
        self.patience_s = patience_s
        self.max_queue = max_queue
        self.leave_when_charged = leave_when_charged

    def remove(self) -> None:
        """Leave the model's population (Mesa's `Agent.remove`): a driver leaves once, so it is registered."""
        self.model.deregister_agent(self)

    def choose(self, free_ports: int, queue_length: int) -> Choice:
        """Plug in if a port is free, else queue unless the queue is too long."""
        if free_ports > 0 and queue_length == 0:
            return _PLUG
        if queue_length < self.max_queue and self.patience_s > 0:
            return _QUEUE
        return _BALK

    def pick_port(self, free_power_kw: list[float]) -> int:
        """Index of the port to use among the free ones, given their maximum power.

        A driver who leaves once charged takes one of the most powerful free ports; a driver
        who stays for a planned dwell one of the least powerful, leaving fast ports to those
        who need them. Ties are broken at random.
        """
        best = max(free_power_kw) if self.leave_when_charged else min(free_power_kw)
        n = len(free_power_kw)
        ties = free_power_kw.count(best)
        if ties == n:
            return int(self.model.uniform() * n)
        i = free_power_kw.index(best)
        for _ in range(int(self.model.uniform() * ties)):  # the r-th of the ports at `best`
            i = free_power_kw.index(best, i + 1)
        return i

    def choose_site(self, utilities: list[float], u: float) -> int:
        """Index of the site a multinomial logit over `utilities` picks, given a U(0, 1) draw `u`."""
        top = max(utilities)
        weights = [math.exp(x - top) for x in utilities]
        threshold = u * sum(weights)
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if threshold < acc:
                return i
        return len(weights) - 1


def energy_factor(price_per_kwh: float, reference_per_kwh: float, elasticity: float) -> float:
    """Share of the energy need a driver still asks for at `price_per_kwh`: constant elasticity, at most 1."""
    return min(1.0, (price_per_kwh / reference_per_kwh) ** elasticity) if price_per_kwh > 0 else 1.0


class Drivers:
    """Every driver's way from arrival to a port: site choice, price response, plugging in, queueing, leaving.

    It answers what the EV side (`sim.ev_side.Plugging`) and the ports (`sim.charging.Queueing`)
    ask of the drivers.
    """

    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        models: list[EVModel],
        sites: list[SiteState],
        customers: Customers,
        billing: Billing,
        ports: Ports,
        reliability: Reliability | NoReliability,
        events: EventLog,
    ) -> None:
        """The drivers of `scenario`, deciding with its ``drivers`` random stream."""
        self.env = env
        self.models = models
        self.sites = sites
        self.customers = customers
        self.methods = customers.methods
        self.billing = billing
        self.tariffs = billing.tariffs
        self.busy = billing.busy
        self.ports = ports
        self.reliability = reliability
        self.events = events
        self.model = DriverModel(stream(scenario.seed, "drivers"))
        self.choice = scenario.drivers.site_choice
        self.response = scenario.drivers.price_response
        self.site_kw = [  # the fastest DC and AC port of each site
            tuple(max((e.max_kw for e in s.evses if e.dc is dc), default=0.0) for dc in (True, False)) for s in sites
        ]
        self.nearby = self._nearby(scenario) if self.choice is not None else []
        self.ev_dc_kw = [max(p for _, p in m.dc_curve) for m in models]
        self.ev_side: EvSide | NoEvSide = NoEvSide()
        self.plug_in = self._plug_in  # how an arriving driver finds a port: with an ev_side section, one the EV fits
        self.v2g: list[V2gLimits | None] | None = None  # per vehicle model, when any can discharge (`sim.v2g`)
        self.release = self._release  # who takes a free port: with an ev_side section, a driver whose EV fits it
        self.next_session_id = 0

    def add_ev_side(self, ev_side: EvSide) -> None:
        """EVs with connectors, handshakes and authorisation: free ports go to drivers whose EV fits them."""
        self.ev_side = ev_side
        self.plug_in = ev_side.arrive
        self.release = ev_side.release

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

    # ------------------------------------------------------------ arrival and site

    def arrive(
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
        ev: EvState | NoEv = NO_EV,
    ) -> None:
        """Arrival number `k` at `site`: a new driver, who may pick another site nearby."""
        driver = Driver(self.model, patience_s, max_queue, leave)
        visit = self.customers.visit(site.index, k)
        s = Session(self.next_session_id, driver, site, self.models[model], model, t_s, soc_in, target, dwell_s,
                    iso15118, visit, ev)  # fmt: skip
        if iso15118 and self.v2g is not None:  # V2G limits travel over ISO 15118-20
            s.v2g = self.v2g[model]
        self.next_session_id += 1
        if visit.account is not None:
            self.customers.review(visit.account, t_s)
        if self.choice is not None and len(self.nearby[site.index]) > 1:
            j, km = self._choose_site(s, t_s)
            if j != site.index:
                s.site, s.detour_km = self.sites[j], km
                self.env.timeout(km / self.choice.speed_kmh * 3600.0, s).callbacks.append(self._on_reach)
                return
        # `_reach`, inlined (the hot path of every run): the session's arrival time is already `t_s`.
        if self.response is not None and not self._accept_price(s, t_s):
            return
        self.plug_in(s, site, t_s)

    def shown_price(self, s: Session, site: int, t_s: float) -> float:
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
        options = self.ev_side.listed(s, options)  # with an ev_side section, sites with a connector the EV fits
        utilities = []
        for j, km in options:
            site = self.sites[j]
            wait_min = 0.0 if site.free and not site.queue else (len(site.queue) + 1) * c.session_min / len(site.evses)
            member = self.customers.plan_at(s.visit.account, site.site_id) is not None
            utilities.append(c.beta_price * self.shown_price(s, j, t_s) + c.beta_wait_per_min * wait_min
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
        self.plug_in(s, site, t_s)

    def _plug_in(self, s: Session, site: SiteState, t_s: float) -> None:
        """The driver at `site` plugs into a free port, waits in the queue, or leaves."""
        free = site.free
        driver = s.driver
        while True:  # each failed attempt takes a port out of service, so this ends
            choice = driver.choose(len(free), len(site.queue))
            if choice is _PLUG:
                k = 0 if len(free) == 1 else driver.pick_port([e.max_kw for e in free])
                if self.try_plug(s, free.pop(k), t_s):
                    return
            elif choice is _QUEUE:
                self.enqueue(s, site, t_s)
                return
            else:
                if s.failed_attempts:
                    s.cause = Cause.FAULTED_PORT
                self.leave(s, site, t_s, Outcome.FAILED if s.failed_attempts else Outcome.BALKED)
                return

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
        price = self.shown_price(s, s.site.index, t_s)
        wtp = s.visit.wtp_per_kwh
        if price > wtp:
            if s.shift_s == 0.0 and s.visit.u_shift < r.shift_share:
                for t in self.tariffs[s.site.index].changes(t_s, t_s + r.shift_window_h * 3600.0):
                    if self.shown_price(s, s.site.index, t + 1.0) <= wtp:
                        s.shift_s = t + 1.0 - t_s
                        self.env.timeout(s.shift_s, s).callbacks.append(self._on_reach)
                        return False
            s.state = State.DONE
            self.done(s, Outcome.PRICED_OUT, math.nan)
            return False
        factor = energy_factor(price, r.reference_price_per_kwh, r.elasticity)
        s.target_soc_frac = s.soc_in_frac + (s.target_soc_frac - s.soc_in_frac) * factor
        return True

    # ------------------------------------------------------------ ports and queue

    def try_plug(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Plug `s` into `evse`; True when the driver is done choosing ports.

        A silently failed port makes it a failed attempt (the driver may try again); a refused
        payment ends the session as failed and hands the port to the next driver. With an
        ev_side section the EV side's handshakes and authorisation come first (`sim.ev_side`).
        """
        if evse.silent_faults:
            s.failed_attempts += 1
            self.reliability.failed_attempt(evse, s.session_id, t_s)
            return False
        visit = s.visit
        assert visit is not None
        if s.ev.auth_method == PLUG_AND_CHARGE:  # a contract certificate does not fail here: checked at the start
            method = self.billing.payment(s)[0]
        else:  # `Billing.payment`, inlined: every plug-in
            method = self.methods[visit.method] if visit.method >= 0 else None
        if method is not None and visit.u_payment < method.failure_prob:
            s.state = _DONE
            s.cause = Cause.PAYMENT
            self.done(s, Outcome.FAILED, t_s)
            self.release(evse, t_s)
            return True
        self.ports.plug(s, evse, t_s)
        return True

    def _release(self, evse: Evse, t_s: float) -> None:
        """A free, serviceable port: the first waiting driver takes it, or it joins the free list."""
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

    def enqueue(self, s: Session, site: SiteState, t_s: float) -> None:
        """`s` waits in the site's queue until a port is free or its patience runs out."""
        site.queue.append(s)
        self.busy[site.index].update(True, t_s)
        self.events.add(t_s, EventKind.QUEUED, site.index, -1, s.session_id, math.nan)
        self.env.timeout(s.driver.patience_s, s).callbacks.append(self._on_renege)

    def queue_changed(self, site: SiteState, t_s: float) -> None:
        """A driver joined or left the site's queue other than by `enqueue` or reneging."""
        self.busy[site.index].update(bool(site.queue), t_s)

    def _on_renege(self, event: simpy.Event) -> None:
        s = cast(Session, event.value)
        if s.state is not _QUEUED:
            return
        s.site.queue.remove(s)
        self.busy[s.site.index].update(bool(s.site.queue), self.env.now)
        s.state = State.DONE
        self.events.add(self.env.now, EventKind.RENEGED, s.site.index, -1, s.session_id, math.nan)
        self.done(s, Outcome.RENEGED, self.env.now)

    def leave(self, s: Session, site: SiteState, t_s: float, outcome: Outcome) -> None:
        """`s` leaves without charging (balked, failed attempts, or no port fits its EV)."""
        s.state = State.DONE
        self.events.add(t_s, EventKind.BALKED, site.index, -1, s.session_id, math.nan)
        self.done(s, outcome, math.nan)

    def done(self, s: Session, outcome: Outcome, departure_t_s: float) -> None:
        """`s` ended with `outcome` (`ongoing` at the horizon): its rows are recorded and the driver leaves."""
        self.billing.record(s, outcome, departure_t_s, self.env.now)
        self.ev_side.record(s)
        if outcome is not _ONGOING:
            s.driver.remove()

    def finish(self) -> None:
        """Record the drivers still waiting at the horizon, or on their way to another site, as `ongoing`."""
        for site in self.sites:
            for s in site.queue:
                self.done(s, Outcome.ONGOING, math.nan)
        for s in self.ev_side.in_transit.values():  # on their way to another site
            self.done(s, Outcome.ONGOING, math.nan)
