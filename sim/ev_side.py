"""EV-side integration at run time: usable ports, handshakes, authorisation, redirects, records.

With an `ev_side` section every arrival carries an `EvState`: the connectors its EV can use
(inlets and the adapters its driver carries), its family, whether it reports through
telematics, its Plug & Charge certificate and its handshake random numbers. Then

- a driver only plugs into a port whose connector the EV can use. Finding free ports but
  none usable is a *compatibility miss*: the driver waits, drives to the nearest site
  with a usable connector (``ev_side.redirect``), or leaves. A site with no usable port at
  all is left at once (outcome ``incompatible``) unless a redirect is possible.
- each plug-in is a *visit* of up to ``1 + retries`` handshakes on that port, each failing
  with the pair's probability (EV family × charger model). After ``ports_tried`` ports
  failed, the driver leaves (outcome ``failed``, cause ``interop``).
- a successful handshake is authorised: Plug & Charge where the charger takes it and the
  certificate is valid, else the driver's method; the time from plug-in to power is the
  method's ``start_s`` (Plug & Charge's, plus the fallback's after a refused certificate).
  A Plug & Charge driver with no other method leaves when the certificate is refused.

Every random number is drawn up front per arrival from streams of their own
(``ev_side:adapters:<tag>``, ``ev_side:telematics:<tag>``, ``ev_side:auth:<tag>``,
``ev_side:interop:<tag>``), so switching one feature on changes neither the arrivals nor
the other features' draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import simpy

from sim.compat import accepts_mask, bit, group_connectors
from sim.config.ev_side import entry_family, entry_inlets, fleet_families
from sim.drivers import Choice
from sim.managers.base import NeedsSource
from sim.recorder import Table
from sim.rng import stream
from sim.serviceability import haversine_km
from sim.sessions import Outcome
from sim.vehicle_data import VehicleData, needs_source

if TYPE_CHECKING:
    from sim.config import FleetEntry, Scenario
    from sim.ev import ProfileCache
    from sim.hardware import Evse, SiteState
    from sim.sessions import Session

__all__ = ["AUTH_METHODS", "CAUSES", "NEEDS_SOURCES", "EvArrivals", "EvRecord", "EvSide", "EvState", "draw"]

CAUSES = ("none", "fault", "interop", "certificate", "no_auth_method", "incompatible")
"""Why an attempt failed, or a session ended without charging."""
_NONE, _FAULT, _INTEROP, _CERTIFICATE, _NO_METHOD, _INCOMPATIBLE = range(len(CAUSES))
AUTH_METHODS = ("none", "rfid", "app", "credit_card", "plug_and_charge")
_PNC = AUTH_METHODS.index("plug_and_charge")
NEEDS_SOURCES = tuple(source.value for source in NeedsSource)
_SOURCE_CODE = {source: i for i, source in enumerate(NeedsSource)}


class EvState:
    """One arrival's EV-side facts and what happened to them: usable ports, attempts, authorisation."""

    __slots__ = (
        "accepts", "auth_method", "auth_s", "certificate_ok", "compat_miss", "exhausted", "fail_cause", "fallback",
        "family", "inlets", "interop_u", "last_cause", "method", "next_u", "origin_site", "plug_and_charge",
        "ports_failed", "redirect_s", "report_phase_s", "soc_error_frac", "telematics", "trace", "tried", "visits",
    )  # fmt: skip

    def __init__(
        self,
        inlets: int,
        accepts: int,
        family: int,
        telematics: bool,
        soc_error_frac: float,
        report_phase_s: float,
        plug_and_charge: bool,
        certificate_ok: bool,
        fallback: bool,
        method: int,
        interop_u: list[float],
    ) -> None:
        """The drawn facts of one arrival; nothing has happened yet."""
        self.inlets = inlets  # connectors the EV takes without an adapter (mask)
        self.accepts = accepts  # ... and with the adapters its driver carries
        self.family = family
        self.telematics = telematics
        self.soc_error_frac = soc_error_frac
        self.report_phase_s = report_phase_s
        self.plug_and_charge = plug_and_charge
        self.certificate_ok = certificate_ok
        self.fallback = fallback  # has a method besides Plug & Charge
        self.method = method  # that method (index in AUTH_METHODS)
        self.interop_u = interop_u
        self.next_u = 0
        self.tried: list[int] = []  # ports this driver will not try again
        self.ports_failed = 0
        self.exhausted = False  # gave up: leaves instead of trying another port
        self.visits = 0
        self.compat_miss = False
        self.origin_site = -1  # the site the driver left for this one, if redirected
        self.redirect_s = 0.0
        self.auth_method = 0
        self.auth_s = 0.0
        self.fail_cause = _NONE
        self.last_cause = _NONE
        # (t_s, soc_frac, profile or None, tau0_s) at every interval start and end, for telematics reports
        self.trace: list[tuple[float, float, Any, float]] | None = [] if telematics else None

    def on_open(self, s: Session, t_s: float) -> None:
        """A charging interval began (kept for telematics reports of the past)."""
        if self.trace is not None:
            self.trace.append((t_s, s.soc_frac, s.profile, s.tau0_s))

    def on_close(self, s: Session, t_s: float) -> None:
        """A charging interval ended: the SoC stays where it is until the next."""
        if self.trace is not None:
            self.trace.append((t_s, s.soc_frac, None, 0.0))


@dataclass(frozen=True)
class EvArrivals:
    """The EV-side draws of a site's arrivals, in arrival order, as columns."""

    inlets: np.ndarray
    accepts: np.ndarray
    family: np.ndarray
    telematics: np.ndarray
    soc_error_frac: np.ndarray
    report_phase_s: np.ndarray
    plug_and_charge: np.ndarray
    certificate_ok: np.ndarray
    fallback: np.ndarray
    method: np.ndarray
    interop_u: np.ndarray  # (arrivals, handshakes a driver can make at most); 0 columns without interop failures

    def __len__(self) -> int:
        """Number of arrivals."""
        return len(self.inlets)

    def take(self, rows: np.ndarray) -> EvArrivals:
        """The arrivals at `rows` (an index array or a mask), in that order."""
        return EvArrivals(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def concat(parts: Sequence[EvArrivals]) -> EvArrivals:
        """The arrivals of `parts`, one after another."""
        return EvArrivals(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(EvArrivals)})

    def states(self, lo: int, hi: int) -> list[EvState]:
        """`EvState`s of the arrivals ``lo:hi``."""
        cols = [getattr(self, f.name)[lo:hi].tolist() for f in fields(self)]
        return [EvState(*row) for row in zip(*cols, strict=True)]


def draw(
    scenario: Scenario, entries: list[FleetEntry], tag: str, index: dict[str, int], model: np.ndarray, iso: np.ndarray
) -> EvArrivals | None:
    """Draw the EV-side facts of arrivals of vehicle `model` (codes in `index`) from the fleet `entries`."""
    cfg = scenario.ev_side
    if cfg is None:
        return None
    n, n_models = len(model), len(index)
    families = fleet_families(scenario)
    width = max((len(e.adapters) for e in entries), default=0)
    inlets = np.zeros(n_models, dtype=np.int64)
    family = np.zeros(n_models, dtype=np.int64)
    telematics_share = np.zeros(n_models)
    pnc_given_iso = np.zeros(n_models)
    adapter_bit = np.zeros((n_models, width), dtype=np.int64)
    adapter_share = np.zeros((n_models, width))
    for e in entries:  # as for iso15118_share: a model listed twice takes its last entry
        m = index[e.ev_model().name]
        own = entry_inlets(e, cfg.market)
        assert own is not None  # the scenario check refuses a preset without inlets in the market
        inlets[m] = accepts_mask(own)
        family[m] = families.index(entry_family(e))
        telematics_share[m] = e.telematics_share
        pnc_given_iso[m] = e.plug_and_charge_share / e.iso15118_share if e.iso15118_share > 0 else 0.0
        for j, a in enumerate(e.adapters):
            adapter_bit[m, j], adapter_share[m, j] = bit(a.connector), a.share
    u = stream(scenario.seed, f"ev_side:adapters:{tag}").random((n, width))
    carried = np.where(u < adapter_share[model], adapter_bit[model], 0)
    accepts = inlets[model] | np.bitwise_or.reduce(carried, axis=1, initial=0)

    tel = cfg.telematics
    rng = stream(scenario.seed, f"ev_side:telematics:{tag}")
    u_tel, u_wrong, u_phase = rng.random((3, n))
    reports = u_tel < telematics_share[model]
    wrong = reports & (u_wrong < tel.wrong_share)
    soc_error = np.where(wrong, tel.soc_error_frac.draw(rng, n), 0.0)

    auth = cfg.authorization
    u_pnc, u_cert, u_fallback, u_method = stream(scenario.seed, f"ev_side:auth:{tag}").random((4, n))
    if auth is None:
        pnc, cert_ok, fallback = np.zeros(n, dtype=bool), np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        method = np.zeros(n, dtype=np.int64)
    else:
        pnc = iso & (u_pnc < pnc_given_iso[model])
        cert_ok = u_cert >= auth.plug_and_charge.certificate_failure_prob
        fallback = ~pnc | (u_fallback < auth.plug_and_charge.fallback_share)
        share = np.array([m.share for m in auth.methods])
        k = np.minimum(np.searchsorted(np.cumsum(share) / share.sum(), u_method, side="right"), len(share) - 1)
        method = np.array([AUTH_METHODS.index(m.method) for m in auth.methods], dtype=np.int64)[k]

    interop = cfg.interop
    handshakes = (1 + interop.retries) * interop.ports_tried if interop.active else 0
    return EvArrivals(
        inlets[model],
        accepts,
        family[model],
        reports,
        soc_error,
        u_phase * tel.report_interval_s,
        pnc,
        cert_ok,
        fallback,
        method,
        stream(scenario.seed, f"ev_side:interop:{tag}").random((n, handshakes)),
    )


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
        self.start_s = {AUTH_METHODS.index(m.method): m.start_s for m in auth.methods} if auth is not None else {}
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
                  "needs_source", "auth_method", "fail_cause", "telematics", "plug_and_charge", "visits"),
        )  # fmt: skip

    # ------------------------------------------------------------ drivers

    def arrive(self, s: Session, site: SiteState, t_s: float) -> None:
        """A driver at `site`: plug into a usable free port, wait, drive on, or leave."""
        ev = s.ev
        assert ev is not None
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
                if sim.try_plug(s, evse, t_s):
                    return
                if ev.last_cause != _FAULT:  # the port works: it is free for the next driver
                    free.insert(k, evse)
                if ev.exhausted:
                    sim.leave(s, site, t_s, Outcome.FAILED)
                    return
            elif choice is Choice.QUEUE:
                sim.enqueue(s, site, t_s)
                return
            else:
                if not (ev.compat_miss and self._redirect(s, site, t_s)):
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
            assert ev is not None
            if not port_bit & ev.accepts or evse.index in ev.tried:
                i += 1
                continue
            del queue[i]
            self.sim.queue_changed(site, t_s)
            if self.sim.try_plug(s, evse, t_s):
                return
            if ev.exhausted:
                self.sim.leave(s, site, t_s, Outcome.FAILED)  # done: its renege timer finds it gone
            else:
                queue.insert(i, s)
                self.sim.queue_changed(site, t_s)
                i += 1
        if evse.blocks == 0:
            site.free.append(evse)

    def _redirect(self, s: Session, site: SiteState, t_s: float) -> bool:
        """Send the driver to the nearest site within the radius with a usable connector; False if none."""
        redirect = self.cfg.redirect
        ev = s.ev
        assert ev is not None
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
            near = [(j, km) for km, j in options if km <= redirect.radius_km]
            self._nearest[key] = (
                (near[0][0], near[0][1] * redirect.detour_factor / redirect.speed_kmh * 3600.0) if near else None
            )
        target = self._nearest[key]
        if target is None:
            return False
        j, travel_s = target
        ev.origin_site = site.index
        ev.redirect_s = travel_s
        self.in_transit[s.session_id] = s
        self.sim.env.timeout(travel_s, (s, self.sites[j])).callbacks.append(self._arrive_redirected)
        return True

    def _arrive_redirected(self, event: simpy.Event) -> None:
        s, site = cast("tuple[Session, SiteState]", event.value)
        del self.in_transit[s.session_id]
        s.site = site
        self.arrive(s, site, self.sim.env.now)

    # ------------------------------------------------------------ attempts

    def fault_attempt(self, s: Session, evse: Evse, t_s: float) -> None:
        """The port had a silent fault: a failed attempt of cause ``fault``."""
        ev = s.ev
        assert ev is not None
        ev.visits += 1
        ev.last_cause = ev.fail_cause = _FAULT
        self._attempt(t_s, s, evse, 1, False, _FAULT)

    def start(self, s: Session, evse: Evse, t_s: float) -> bool:
        """Handshakes on `evse`, then authorisation; True if the session may start."""
        ev = s.ev
        assert ev is not None
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
            cause = self._authorize(ev, evse)
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

    def _authorize(self, ev: EvState, evse: Evse) -> int:
        """Set how the session is authorised and how long that takes; return a failure cause or `_NONE`."""
        if self.auth is None:
            return _NONE
        pnc_s = 0.0
        if ev.plug_and_charge and self.port_pnc[evse.index]:
            pnc_s = self.auth.plug_and_charge.start_s
            if ev.certificate_ok:
                ev.auth_method, ev.auth_s = _PNC, pnc_s
                return _NONE
            if not ev.fallback:
                return _CERTIFICATE
        elif not ev.fallback:
            return _NO_METHOD  # a Plug & Charge-only driver at a charger without it
        ev.auth_method, ev.auth_s = ev.method, pnc_s + self.start_s[ev.method]
        return _NONE

    def _attempt(self, t_s: float, s: Session, evse: Evse, attempt: int, ok: bool, cause: int) -> None:
        ev = s.ev
        assert ev is not None
        self.attempts.add_floats((t_s,))
        self.attempts.add_ints((s.session_id, evse.index, s.model_index, ev.family, ev.visits, attempt, int(ok),
                                cause))  # fmt: skip

    # ------------------------------------------------------------ records

    def record(self, s: Session, outcome: Outcome) -> None:
        """One row of the EV-side sessions table, as `s` ends."""
        ev = s.ev
        assert ev is not None
        cause = ev.fail_cause if outcome is Outcome.FAILED else _INCOMPATIBLE if outcome is Outcome.INCOMPATIBLE else 0
        evse = s.evse
        adapter_used = evse is not None and not self.port_bit[evse.index] & ev.inlets
        source = needs_source(s.iso15118, ev.telematics, self.iso_reaches_csms)
        self.sessions.add_floats((ev.auth_s, ev.redirect_s))
        self.sessions.add_ints((s.session_id, ev.family, ev.inlets, ev.accepts, int(adapter_used), int(ev.compat_miss),
                                ev.origin_site, _SOURCE_CODE[source], ev.auth_method, cause, int(ev.telematics),
                                int(ev.plug_and_charge), ev.visits))  # fmt: skip

    def result(self) -> EvRecord:
        """The recorded tables and the port facts to read them."""
        return EvRecord(self.sessions.arrays(), self.attempts.arrays(), self.families, self.charger_models,
                        self.port_connector, self.port_model)  # fmt: skip
