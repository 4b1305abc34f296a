"""The manager's view of the network: frozen snapshots of sites and connectors, built when asked for.

A manager never holds a simulation object (`sim.managers.base`): each `site` call builds a
`SiteView` of the site at this instant — its connectors' status, limits and power, what the
EVs report, the import limit with any demand-response cap, PV and storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sim.ev_arrivals import EvState
from sim.ids import EvseId, SessionId, SiteId
from sim.managers.base import EvseView, NeedsSource, SiteView, StorageView, V2gView, VehicleView
from sim.v2g import guard_soc_frac

if TYPE_CHECKING:
    import simpy

    from sim.ev import ProfileCache
    from sim.grid import PriceSignal
    from sim.hardware import Evse, SiteState
    from sim.sessions import Session
    from sim.vehicle_data import VehicleData

_Snapshots = tuple[list[EvseView], dict[EvseId, VehicleView], dict[EvseId, V2gView]]

__all__ = ["LivePorts", "LiveView"]


class LiveView:
    """The `NetworkView` handed to the manager: snapshots of the live network, built on demand."""

    def __init__(
        self, env: simpy.Environment, sites: dict[str, SiteState], prices: PriceSignal, profiles: ProfileCache
    ) -> None:
        """A view of `sites` on `env`'s clock; `profiles` give an ISO 15118 EV's own limit."""
        self._env = env
        self._sites = sites
        self._prices = prices
        self._profiles = profiles  # the EV's own limit on a connector is its profile there, uncapped
        self.evse_views: Callable[[SiteState, float], _Snapshots] = self._evse_views
        self.export_prices: PriceSignal | None = None  # the feed-in price, with grid.export_price

    def add_ev_side(self, vehicle_data: VehicleData) -> None:
        """EVs report through the EV side's channels (`sim.vehicle_data`): ISO 15118, telematics, or nothing."""
        self.evse_views = partial(self._ev_side_views, vehicle_data)

    def price_at(self, t_s: float) -> float:
        """The energy price at `t_s`."""
        return self._prices.at(t_s)

    @property
    def t_s(self) -> float:
        """Simulation time now."""
        return self._env.now

    def site_ids(self) -> tuple[SiteId, ...]:
        """Every site, in scenario order."""
        return tuple(SiteId(k) for k in self._sites)

    def site(self, site_id: SiteId) -> SiteView:
        """A snapshot of the site now."""
        site = self._sites[site_id]
        now = self._env.now
        views, vehicles, v2g = self.evse_views(site, now)
        limit_kw, import_kw, dr_cap_kw, pv_kw, storage = self.supply(site)
        export_kw, dr_min_kw = site.export_limit_kw, max(site.dr_mins, default=0.0)
        export_price = self.export_prices.at(now) if self.export_prices is not None else 0.0
        return SiteView(site.site_id, site.capacity_kw, tuple(views), limit_kw, dr_cap_kw, self._prices.at(now), now,
                        len(site.queue), vehicles, pv_kw, storage, import_kw, site.phase_limit_kw, site.single_phase,
                        site.panels, v2g, export_kw, dr_min_kw, export_price)  # fmt: skip

    def supply(self, site: SiteState) -> tuple[float, float, float, float, StorageView | None]:
        """What `site` may draw now, as `SiteView` has it: ``(limit_kw, grid_limit_kw, dr_cap_kw, pv_kw, storage)``."""
        dr_cap_kw = min(site.dr_caps, default=math.inf)
        import_kw = min(site.grid_limit_kw, dr_cap_kw)
        energy = site.energy
        if energy is None:
            return import_kw, import_kw, dr_cap_kw, 0.0, None
        b = energy.battery
        storage = None
        if b is not None:
            b.advance(self._env.now)
            storage = StorageView(b.cfg.capacity_kwh, b.cfg.power_kw, b.energy_kwh, b.power_kw, b.available_kw)
        return import_kw + energy.available_kw(), import_kw, dr_cap_kw, energy.pv_kw, storage

    def _evse_views(self, site: SiteState, now: float) -> _Snapshots:
        """Each connector of `site` now and what the EVs on them report: an ISO 15118 EV its need and departure."""
        views = []
        vehicles: dict[EvseId, VehicleView] = {}
        v2g: dict[EvseId, V2gView] = {}
        for e in site.evses:
            s = e.session
            if s is not None and s.v2g is not None and e.discharge_kw > 0:
                v2g[e.evse_id] = self._v2g(e, s, now)
            charger_max_kw = e.charger.shared_kw
            if s is None:
                views.append(EvseView(e.evse_id, e.charger.charger_id, e.status, e.max_kw, e.limit_kw, 0.0, None,
                                      charger_max_kw))  # fmt: skip
                continue
            soc, power_kw = s.soc_power_at(now)
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
        return views, vehicles, v2g

    def _ev_side_views(self, vehicle_data: VehicleData, site: SiteState, now: float) -> _Snapshots:
        """Each connector of `site` now and what the EVs on them report through the EV side's channels."""
        views = []
        vehicles: dict[EvseId, VehicleView] = {}
        v2g: dict[EvseId, V2gView] = {}
        evse_view = vehicle_data.evse_view
        for e in site.evses:
            s = e.session
            if s is not None and s.v2g is not None and e.discharge_kw > 0:
                v2g[e.evse_id] = self._v2g(e, s, now)
            charger_max_kw = e.charger.shared_kw
            if s is None:
                views.append(EvseView(e.evse_id, e.charger.charger_id, e.status, e.max_kw, e.limit_kw, 0.0, None,
                                      charger_max_kw))  # fmt: skip
                continue
            ev = s.ev
            assert isinstance(ev, EvState)
            view, vehicle = evse_view(e, s, ev, now, charger_max_kw)
            views.append(view)
            if vehicle is not None:
                vehicles[e.evse_id] = vehicle
        return views, vehicles, v2g

    def v2g_at(self, e: Evse, s: Session, now: float) -> V2gView:
        """What the V2G EV of session `s` on the bidirectional connector `e` may give back now, and its floor."""
        return self._v2g(e, s, now)

    def _v2g(self, e: Evse, s: Session, now: float) -> V2gView:
        """What the V2G EV on `e` may give back now, and its floor."""
        v = s.v2g
        assert v is not None
        out_kwh = s.discharged_kwh
        if s.profile is not None:
            soc = min(s.profile.soc_at(s.tau0_s + now - s.t0_s), s.target_soc_frac)
        elif s.discharge_kw:
            soc = s.discharge_soc_at(now)
            out_kwh += (s.dis_soc0 - soc) * s.model.capacity_kwh
        else:
            soc = s.soc_frac
        full = self._profiles.get(s.model, e.dc, e.max_kw)
        guarantee = v.guarantee(s.target_soc_frac)
        guard = guard_soc_frac(full, guarantee, s.depart_t_s, now)
        return V2gView(min(e.discharge_kw, e.max_kw, v.max_discharge_kw), soc, s.model.capacity_kwh, v.min_soc_frac,
                       guarantee, s.depart_t_s, max(v.min_soc_frac, guard), full.power_at(soc), guard,
                       out_kwh)  # fmt: skip


@dataclass(frozen=True)
class LivePorts:
    """The live network of a `Simulation`, in plan order: sites, connectors (sessions on them) and the view.

    `vehicle_data` is how EVs report to the manager with an ``ev_side`` section (None without one).
    """

    sites: Sequence[SiteState]
    evses: Sequence[Evse]
    view: LiveView
    vehicle_data: VehicleData | None
