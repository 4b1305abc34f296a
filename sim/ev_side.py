"""EV-side integration at run time: usable ports, handshakes, authorisation, redirects, records.

With an `ev_side` section every arrival carries an `EvState` (`sim.ev_arrivals`): the
connectors its EV can use, its family, whether it reports through telematics, its Plug &
Charge certificate and its handshake random numbers. Then

- a driver only plugs into a port whose connector the EV can use. Finding free ports but
  none usable is a *compatibility miss*: the driver waits, drives to the nearest site
  with a usable connector (``ev_side.redirect``), or leaves. A site with no usable port at
  all is left at once (outcome ``incompatible``) unless a redirect is possible.
- each plug-in is a *visit* of up to ``1 + retries`` handshakes on that port, each failing
  with the pair's probability (EV family × charger model). After ``ports_tried`` ports
  failed, the driver leaves (outcome ``failed``, cause ``interop``).
- a successful handshake is authorised (with ``ev_side.authorization``): Plug & Charge
  where the charger takes it and the certificate is valid, else the driver's payment
  method (the ``payments`` section's); power flows after that way's ``start_s``
  (Plug & Charge's, plus the other way's after a refused certificate). Plug & Charge is
  then the session's payment method, with its own fees. A Plug & Charge driver with no
  other way to pay leaves when the certificate is refused (cause ``authorization``).

Every random number is drawn up front per arrival (`sim.ev_arrivals`), so switching one
feature on changes neither the arrivals nor the other features' draws. Without the section
the drivers hold a `NoEvSide` and every session the EV `NO_EV`: nothing to check or record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np
import simpy

from sim.compat import bit, fleet_families, group_connectors
from sim.config.revenue import PaymentMethod
from sim.ev_arrivals import EvState
from sim.managers.base import NeedsSource
from sim.recorder import Table
from sim.serviceability import haversine_km
from sim.sessions import Cause, Choice, Outcome
from sim.vehicle_data import VehicleData, needs_source

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.ev import ProfileCache
    from sim.hardware import Evse, SiteState
    from sim.sessions import Session

__all__ = ["AUTH_METHODS", "CAUSES", "NEEDS_SOURCES", "PLUG_AND_CHARGE", "EvRecord", "EvSide", "NoEvSide"]

CAUSES = ("none", "fault", "interop", "certificate", "no_auth_method")
"""Why a plug-in attempt failed."""
_NONE, _FAULT, _INTEROP, _CERTIFICATE, _NO_METHOD = range(len(CAUSES))
_SESSION_CAUSE = {_FAULT: Cause.FAULTED_PORT, _INTEROP: Cause.INTEROP, _CERTIFICATE: Cause.AUTHORIZATION,
                  _NO_METHOD: Cause.AUTHORIZATION}  # fmt: skip
AUTH_METHODS = ("none", "app", "rfid", "contactless", "qr", "plug_and_charge", "unknown")
"""How a session was started: not modelled (no authorization section), a payment method, or unknown (no payments)."""
PLUG_AND_CHARGE = _PNC = AUTH_METHODS.index("plug_and_charge")
"""`EvState.auth_method` of a session its contract certificate started."""
NEEDS_SOURCES = tuple(source.value for source in NeedsSource)
_SOURCE_CODE = {source: i for i, source in enumerate(NeedsSource)}


# ---------------------------------------------------------------- run time


class Plugging(Protocol):
    """What the EV side needs of the simulation: plug, queue, leave, and the clock."""

    env: simpy.Environment

    def try_plug(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Plug `s` into `evse` (the port is not in the free list); False if the attempt failed."""
        ...

    def enqueue(self, s: Session, site: SiteState, t_s: float) -> None:
        """`s` waits in the site's queue."""
        ...

    def leave(self, s: Session, site: SiteState, t_s: float, outcome: Outcome) -> None:
        """`s` leaves without charging."""
        ...

    def queue_changed(self, site: SiteState, t_s: float) -> None:
        """A driver joined or left the site's queue other than by `enqueue` or reneging."""
        ...

    def reach(self, s: Session, site: SiteState, t_s: float, km: float) -> None:
        """`s` drove `km` to `site` and arrives there now."""
        ...


@dataclass
class EvRecord:
    """What the EV side recorded, plus what is needed to read it."""

    sessions: dict[str, np.ndarray]
    attempts: dict[str, np.ndarray]
    families: list[str]
    charger_models: list[str]
    port_connector: list[str]
    port_model: list[int]


class EvSide:
    """Ports, handshakes, authorisation and redirects of a run with an `ev_side` section."""

    def __init__(self, scenario: Scenario, sites: list[SiteState], evses: list[Evse], sim: Plugging,
                 profiles: ProfileCache) -> None:  # fmt: skip
        """Resolve every port's connector and charger model, and the failure matrix."""
        cfg = scenario.ev_side
        assert cfg is not None
        self.cfg = cfg
        self.sim = sim
        self.sites = sites
        self.families = fleet_families(scenario)
        groups = [g for site in scenario.network.sites for g in site.chargers]
        self.charger_models = list(dict.fromkeys(g.model for g in groups))
        self.port_connector: list[str] = []
        self.port_model: list[int] = []
        for g in groups:  # in `build_sites` order: groups, chargers, connectors
            self.port_connector += group_connectors(g.connector, g.connectors, cfg.market, g.current) * g.count
            self.port_model += [self.charger_models.index(g.model)] * (g.count * g.connectors)
        assert len(self.port_connector) == len(evses), "ports are built in scenario order"
        self.port_bit = [bit(c) for c in self.port_connector]
        self.site_mask = [0] * len(sites)
        for e in evses:
            self.site_mask[e.site.index] |= self.port_bit[e.index]
        matrix = {(p.family, p.charger_model): p.failure_prob for p in cfg.interop.pairs}
        self.fail_prob = [
            [matrix.get((f, m), cfg.interop.failure_prob) for m in self.charger_models] for f in self.families
        ]
        self.retries = cfg.interop.retries
        self.ports_tried = cfg.interop.ports_tried
        auth = cfg.authorization
        self.auth = auth
        pnc_models = auth.plug_and_charge.charger_models if auth is not None else None
        self.port_pnc = [pnc_models is None or self.charger_models[m] in pnc_models for m in self.port_model]
        self.method_names = [m.method for m in scenario.payments.methods] if scenario.payments is not None else []
        pnc = auth.plug_and_charge if auth is not None else None
        self.pnc_payment = PaymentMethod(method="plug_and_charge", share=1.0, fee_pct=pnc.fee_pct if pnc else 0.0,
                                         fee_fixed=pnc.fee_fixed if pnc else 0.0)  # fmt: skip
        self.pnc_code = len(self.method_names)  # after the payments section's methods in the sessions table
        self.site_coords = [(s.lat, s.lon) for s in scenario.network.sites]
        self._nearest: dict[tuple[int, int], tuple[int, float] | None] = {}
        self.in_transit: dict[int, Session] = {}
        self.vehicle_data = VehicleData(cfg, profiles)
        self.iso_reaches_csms = self.vehicle_data.iso_reaches_csms
        self.attempts = Table(floats=("t_s",), ints=("session_id", "evse", "model", "family", "visit", "attempt",
                                                     "ok", "cause"))  # fmt: skip
        self.sessions = Table(
            floats=("auth_s", "redirect_s"),
            ints=("session_id", "family", "inlets", "accepts", "adapter_used", "compat_miss", "origin_site",
                  "needs_source", "auth_method", "telematics", "plug_and_charge", "visits"),
        )  # fmt: skip

    # ------------------------------------------------------------ drivers

    def arrive(self, s: Session, site: SiteState, t_s: float) -> None:
        """A driver at `site`: plug into a usable free port, wait, drive on, or leave."""
        ev = s.ev
        assert isinstance(ev, EvState)
        sim = self.sim
        if not self.site_mask[site.index] & ev.accepts:
            ev.compat_miss = True
            if not self._redirect(s, site, t_s):
                sim.leave(s, site, t_s, Outcome.INCOMPATIBLE)
            return
        while True:
            free = site.free
            usable = [e for e in free if self.port_bit[e.index] & ev.accepts and e.index not in ev.tried]
            if free and not usable:
                ev.compat_miss = True
            # a waiting driver who could use a free port would already have it: the queue is for other ports
            choice = s.driver.choose(len(usable), 0 if usable else len(site.queue))
            if choice is Choice.PLUG:
                evse = usable[0 if len(usable) == 1 else s.driver.pick_port([e.max_kw for e in usable])]
                k = free.index(evse)
                del free[k]
                if self._try_plug(s, evse, t_s):
                    return
                if ev.last_cause != _FAULT:  # the port works: it is free for the next driver
                    free.insert(k, evse)
                if ev.exhausted:
                    s.cause = _SESSION_CAUSE[ev.fail_cause]
                    sim.leave(s, site, t_s, Outcome.FAILED)
                    return
            elif choice is Choice.QUEUE:
                sim.enqueue(s, site, t_s)
                return
            else:
                if not (ev.compat_miss and self._redirect(s, site, t_s)):
                    if s.failed_attempts:
                        s.cause = _SESSION_CAUSE[ev.fail_cause]
                    sim.leave(s, site, t_s, Outcome.FAILED if s.failed_attempts else Outcome.BALKED)
                return

    def release(self, evse: Evse, t_s: float) -> None:
        """A free, serviceable port: the first waiting driver who can use it takes it, or it joins the free list."""
        site = evse.site
        port_bit = self.port_bit[evse.index]
        queue = site.queue
        i = 0
        while evse.blocks == 0 and i < len(queue):
            s = queue[i]
            ev = s.ev
            assert isinstance(ev, EvState)
            if not port_bit & ev.accepts or evse.index in ev.tried:
                i += 1
                continue
            del queue[i]
            self.sim.queue_changed(site, t_s)
            if self._try_plug(s, evse, t_s):
                return
            if ev.exhausted:
                s.cause = _SESSION_CAUSE[ev.fail_cause]
                self.sim.leave(s, site, t_s, Outcome.FAILED)  # done: its renege timer finds it gone
            else:
                queue.insert(i, s)
                self.sim.queue_changed(site, t_s)
                i += 1
        if evse.blocks == 0:
            site.free.append(evse)

    def listed(self, s: Session, options: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The sites among `options` (site number first) the driver's app lists: those with a port the EV fits."""
        ev = s.ev
        assert isinstance(ev, EvState)
        mask = self.site_mask
        return [o for o in options if mask[o[0]] & ev.accepts] or options[:1]

    def _redirect(self, s: Session, site: SiteState, t_s: float) -> bool:
        """Send the driver to the nearest site within the radius with a usable connector; False if none."""
        redirect = self.cfg.redirect
        ev = s.ev
        assert isinstance(ev, EvState)
        if redirect is None or ev.origin_site >= 0:
            return False
        key = (site.index, ev.accepts)
        if key not in self._nearest:
            here = self.site_coords[site.index]
            options = sorted(
                (haversine_km(*here, *self.site_coords[j]), j)
                for j in range(len(self.sites))
                if j != site.index and self.site_mask[j] & ev.accepts
            )
            near = [(j, km * redirect.detour_factor) for km, j in options if km <= redirect.radius_km]
            self._nearest[key] = near[0] if near else None
        target = self._nearest[key]
        if target is None:
            return False
        j, road_km = target
        ev.origin_site = site.index
        ev.redirect_s = road_km / redirect.speed_kmh * 3600.0
        self.in_transit[s.session_id] = s
        self.sim.env.timeout(ev.redirect_s, (s, self.sites[j], road_km)).callbacks.append(self._arrive_redirected)
        return True

    def _arrive_redirected(self, event: simpy.Event) -> None:
        s, site, road_km = cast("tuple[Session, SiteState, float]", event.value)
        del self.in_transit[s.session_id]
        self.sim.reach(s, site, self.sim.env.now, road_km)  # as any arrival: the price, then the ports

    # ------------------------------------------------------------ attempts

    def _try_plug(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Plug `s` into `evse` once its handshakes and authorisation succeed; False if the attempt failed."""
        if evse.silent_faults:
            plugged = self.sim.try_plug(s, evse, t_s)  # False: a failed attempt on the silently failed port
            self.fault_attempt(s, evse, t_s)
            return plugged
        return self.start(s, evse, t_s) and self.sim.try_plug(s, evse, t_s)

    def fault_attempt(self, s: Session, evse: Evse, t_s: float) -> None:
        """The port had a silent fault: a failed attempt of cause ``fault``."""
        ev = s.ev
        assert isinstance(ev, EvState)
        ev.visits += 1
        ev.last_cause = ev.fail_cause = _FAULT
        self._attempt(t_s, s, evse, 1, False, _FAULT)

    def start(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Handshakes on `evse`, then authorisation; True if the session may start."""
        ev = s.ev
        assert isinstance(ev, EvState)
        ev.visits += 1
        p = self.fail_prob[ev.family][self.port_model[evse.index]]
        for attempt in range(1, self.retries + 2):
            if p > 0:
                u = ev.interop_u[ev.next_u]
                ev.next_u += 1
                if u < p:
                    s.failed_attempts += 1
                    self._attempt(t_s, s, evse, attempt, False, _INTEROP)
                    continue
            cause = self._authorize(s, ev, evse)
            self._attempt(t_s, s, evse, attempt, cause == _NONE, cause)
            if cause == _NONE:
                return True
            s.failed_attempts += 1
            break
        else:
            cause = _INTEROP
        ev.last_cause = ev.fail_cause = cause
        ev.tried.append(evse.index)
        ev.ports_failed += 1  # at most `ports_tried` visits, so `interop_u` has enough numbers
        ev.exhausted = cause == _CERTIFICATE or ev.ports_failed >= self.ports_tried  # a certificate fails anywhere
        return False

    def _authorize(self, s: Session, ev: EvState, evse: Evse) -> int:
        """Set how the session is authorised and how long that takes; return a failure cause or `_NONE`."""
        auth = self.auth
        if auth is None:
            return _NONE
        pnc_s = 0.0
        if ev.plug_and_charge and self.port_pnc[evse.index]:
            pnc_s = auth.plug_and_charge.start_s
            if ev.certificate_ok:
                ev.auth_method, ev.auth_s = _PNC, pnc_s
                return _NONE
            if not ev.fallback:
                return _CERTIFICATE
        elif not ev.fallback:
            return _NO_METHOD  # a Plug & Charge-only driver at a charger without it
        k = s.visit.method if s.visit is not None else -1
        name = self.method_names[k] if k >= 0 else "unknown"
        ev.auth_method, ev.auth_s = AUTH_METHODS.index(name), pnc_s + getattr(auth.start_s, name)
        return _NONE

    def _attempt(self, t_s: float, s: Session, evse: Evse, attempt: int, ok: bool, cause: int) -> None:
        ev = s.ev
        assert isinstance(ev, EvState)
        self.attempts.add_floats((t_s,))
        self.attempts.add_ints((s.session_id, evse.index, s.model_index, ev.family, ev.visits, attempt, int(ok),
                                cause))  # fmt: skip

    # ------------------------------------------------------------ records

    def record(self, s: Session) -> None:
        """One row of the EV-side sessions table, as `s` ends."""
        ev = s.ev
        assert isinstance(ev, EvState)
        evse = s.evse
        adapter_used = evse is not None and not self.port_bit[evse.index] & ev.inlets
        source = needs_source(s.iso15118, ev.telematics, self.iso_reaches_csms)
        self.sessions.add_floats((ev.auth_s, ev.redirect_s))
        self.sessions.add_ints((s.session_id, ev.family, ev.inlets, ev.accepts, int(adapter_used), int(ev.compat_miss),
                                ev.origin_site, _SOURCE_CODE[source], ev.auth_method, int(ev.telematics),
                                int(ev.plug_and_charge), ev.visits))  # fmt: skip

    def result(self) -> EvRecord:
        """The recorded tables and the port facts to read them."""
        return EvRecord(self.sessions.arrays(), self.attempts.arrays(), self.families, self.charger_models,
                        self.port_connector, self.port_model)  # fmt: skip


class NoEvSide:
    """The EV side of a run without an ``ev_side`` section: every EV fits every port, and nothing is recorded."""

    def __init__(self) -> None:
        """Nobody is ever on the way to another site."""
        self.in_transit: Mapping[int, Session] = MappingProxyType({})

    def listed(self, s: Session, options: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Every site among `options`: the driver's app lists them all."""
        return options

    def record(self, s: Session) -> None:
        """No EV-side row: there is no EV-side table."""

    def result(self) -> None:
        """Nothing was recorded."""
        return None
