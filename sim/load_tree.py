"""A site's constraint tree — its connection, the phases of its supply, its panels — and proportional scaling within it.

A site's chargers hang on a tree of limits: the connection (grid connection and transformer,
in kW), each of the supply's three phases (``phase_limit_a``), and, below it, each panel
(feeder) a charger group shares (``panel_phase_limit_a`` on each of its phases). A
single-phase connector draws all its power on its phase; any other connector (three-phase
AC, and DC, whose rectifier draws on all three) a third on each.

`SiteTree.factors` scales what the connectors want so every node stays within its limit, the
way a site's dynamic load-management controller does: level by level from the top, every
node over its limit scales the connectors under it by limit / load, where the load is what
the levels above left (a connector under several nodes of one level, a three-phase one under
L1, L2 and L3, takes the smallest of their factors). Only reductions: a node within its limit
changes nothing, so what one level left within its limit stays within it below.

Power flows both ways on a site with bidirectional ports (V2G), and every node carries the net
of what its connectors draw and give back. `SiteTree.export_factors` then scales the
discharges down, the same way, so that no node exports more than its limit: the connection its
export limit (and its rating), each phase and each panel phase its limit, a current being a
current whichever way it flows. Charging at the same time absorbs part of the discharge before
it reaches a node, so a node's export is its discharges less the charging under it, the charging
counted at the least it can fall to before the next change. Charging is capped first, without
counting on any discharge (a discharge adds no import room): scaling the discharges afterwards
only moves each node's net towards import, which the first pass bounded with no discharge at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.managers.base import EvseStatus
from sim.network_plan import PortPlan, SitePlan
from sim.v2g import at_floor

if TYPE_CHECKING:
    from sim.ev import ProfileCache
    from sim.hardware import Evse, SiteState

__all__ = ["LoadManagement", "SiteTree"]

_CHARGING, _SUSPENDED_EVSE = EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE
_MAY_DISCHARGE = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE, EvseStatus.SUSPENDED_EV)
_STEPS_PER_KW = 10  # caps in 0.1 kW steps, as the managers' limits


@dataclass(frozen=True)
class SiteTree:
    """The limits above a site's connectors, in the order of `ports` (the site's ports in plan order).

    Attributes:
        share: Share of each connector's power on L1, L2 and L3, shape (n, 3).
        phase_limit_kw: Power each phase of the supply may carry (inf: no phase limit).
        panels: For each panel, the connectors on it (positions in `ports`) and the power each of its phases may carry.
        bidirectional: Whether any of the connectors may discharge (V2G): only then is the export scaled.
    """

    share: np.ndarray
    phase_limit_kw: float
    panels: tuple[tuple[np.ndarray, float], ...]
    bidirectional: bool = False

    @classmethod
    def of(cls, site: SitePlan, ports: Sequence[PortPlan]) -> SiteTree:
        """The tree of `site`, whose ports are `ports` (each `port.site` must be `site`)."""
        if any(p.site is not site for p in ports):
            raise ValueError(f"SiteTree.of: every port must be on site {site.site_id}")
        share = np.array([p.phase_share for p in ports], dtype=np.float64).reshape(-1, 3)
        by_panel: dict[int, tuple[list[int], float]] = {}
        for k, p in enumerate(ports):
            if p.panel is not None:
                by_panel.setdefault(p.panel, ([], p.panel_phase_limit_kw))[0].append(k)
        panels = tuple((np.array(members), limit_kw) for members, limit_kw in by_panel.values())
        return cls(share, site.phase_limit_kw, panels, any(p.discharge_kw > 0 for p in ports))

    @property
    def phased(self) -> bool:
        """Whether the tree has any per-phase limit (of the supply or of a panel)."""
        return self.phase_limit_kw < math.inf or bool(self.panels)

    def phase_load_kw(self, power_kw: np.ndarray) -> np.ndarray:
        """Power on L1, L2 and L3 when the connectors draw `power_kw`."""
        return np.asarray(power_kw, dtype=np.float64) @ self.share

    def factors(self, demand_kw: np.ndarray, site_limit_kw: float) -> np.ndarray:
        """Each connector's factor in [0, 1] such that `demand_kw` times it keeps every node within its limit.

        Args:
            demand_kw: What each connector would draw (0 for those not drawing), in the order of the tree's ports.
            site_limit_kw: What the site's connection may carry now (inf: no limit at this level).
        """
        demand = np.asarray(demand_kw, dtype=np.float64)
        f = np.ones(len(demand))
        total = float(demand.sum())
        if total > site_limit_kw:
            f *= site_limit_kw / total
        if self.phase_limit_kw < math.inf:
            f *= self._level(demand * f, self.share, self.phase_limit_kw)
        for members, limit_kw in self.panels:
            f[members] *= self._level(demand[members] * f[members], self.share[members], limit_kw)
        return f

    def export_factors(self, discharge_kw: np.ndarray, absorb_kw: np.ndarray, site_export_kw: float) -> np.ndarray:
        """Each connector's discharge factor in [0, 1] such that no node exports more than its limit.

        A node's export is the discharges under it less the charging under it; level by level from
        the top, every node over its limit scales the discharges under it by (limit + charging) / discharges.

        Args:
            discharge_kw: What each connector would discharge (0 for those not discharging), in the order of the ports.
            absorb_kw: What each charging connector draws at the least until the next change (0 for the others).
            site_export_kw: What the connection may export now (inf: no limit at this level).
        """
        out = np.asarray(discharge_kw, dtype=np.float64)
        absorb = np.asarray(absorb_kw, dtype=np.float64)
        g = np.ones(len(out))
        total = float(out.sum())
        room = site_export_kw + float(absorb.sum())
        if total > room:
            g *= max(room, 0.0) / total
        if self.phase_limit_kw < math.inf:
            g *= self._export_level(out * g, absorb @ self.share, self.share, self.phase_limit_kw)
        for members, limit_kw in self.panels:
            share = self.share[members]
            g[members] *= self._export_level(out[members] * g[members], absorb[members] @ share, share, limit_kw)
        return g

    @staticmethod
    def _export_level(alloc_kw: np.ndarray, absorb_kw: np.ndarray, share: np.ndarray, limit_kw: float) -> np.ndarray:
        """Each connector's discharge factor under three phase nodes, each exporting at most `limit_kw`."""
        out = alloc_kw @ share
        over = out - absorb_kw > limit_kw
        if not over.any():
            return np.ones(len(alloc_kw))
        node = np.where(over, np.maximum(limit_kw + absorb_kw, 0.0) / np.where(over, out, 1.0), 1.0)
        return np.where(share > 0, node, 1.0).min(axis=1)

    @staticmethod
    def _level(alloc_kw: np.ndarray, share: np.ndarray, limit_kw: float) -> np.ndarray:
        """Each connector's factor under three phase nodes of `limit_kw`: the smallest over the phases it draws on."""
        load = alloc_kw @ share
        over = load > limit_kw
        if not over.any():
            return np.ones(len(alloc_kw))
        node = np.where(over, limit_kw / np.where(over, load, 1.0), 1.0)
        return np.where(share > 0, node, 1.0).min(axis=1)


class LoadManagement:
    """The local load-management controller of the sites with ``limits: enforce``.

    At every change of what a site's connectors want — a session starting or stopping to draw,
    a manager's limit, a profile, a cabinet's split, a derating — it sets each connector's
    `Evse.tree_kw` from `SiteTree.factors`, rounded down to 0.1 kW, and re-plans the connectors
    whose cap moved. A connector wants the most its EV can draw on the rest of its charge curve
    under the cap it would have without the controller, so the tree holds at every instant up
    to the next change, not only at the changes (a DC curve only falls or stays below that
    bound). Connectors not held back keep no cap of their own (inf).

    On a site with bidirectional ports it then sets each discharging connector's
    `Evse.tree_discharge_kw` from `SiteTree.export_factors`, against the least the charging
    connectors draw until the next change under the caps just set (and the PV output, at the
    connection), so the export too holds at every instant.
    """

    def __init__(self, profiles: ProfileCache, replan: Callable[[Evse, float], None], min_kw: float) -> None:
        """A controller that builds profiles from `profiles` and re-plans a connector with `replan`.

        Args:
            profiles: The run's charge profiles.
            replan: Follows a change of a connector's cap (`sim.charging.Ports`).
            min_kw: Below this power a connector is paused.
        """
        self.profiles = profiles
        self.replan = replan
        self.min_kw = min_kw
        self.busy = False  # re-planning the connectors it capped: their own changes need no new round

    def rebalance(self, site: SiteState, t_s: float) -> None:
        """Cap the connectors of `site` so its tree stays within limits; nothing for a site that only measures."""
        tree = site.tree
        if tree is None or self.busy:
            return
        self.busy = True
        try:
            # One round settles it, unless pausing a connector changes how a shared cabinet splits: a few more.
            for _ in range(len(site.evses) + 1):
                demand = [self._demand_kw(e, t_s) for e in site.evses]
                factors = tree.factors(np.array(demand), site.grid_limit_kw).tolist()
                caps = [
                    math.floor(want_kw * f * _STEPS_PER_KW) / _STEPS_PER_KW if f < 1.0 and want_kw > 0 else math.inf
                    for want_kw, f in zip(demand, factors, strict=True)
                ]
                changed = []
                for e, kw in zip(site.evses, caps, strict=True):
                    if kw != e.tree_kw:
                        e.tree_kw = kw
                        changed.append(e)
                if tree.bidirectional:
                    for e, kw in zip(site.evses, self._discharge_caps(site, tree, caps, t_s), strict=True):
                        if kw != e.tree_discharge_kw:
                            e.tree_discharge_kw = kw
                            if e not in changed:
                                changed.append(e)
                if not changed:
                    return
                for e in changed:
                    self.replan(e, t_s)
        finally:
            self.busy = False

    def _demand_kw(self, e: Evse, t_s: float) -> float:
        """The most the session on `e` can draw until the next change, without the controller (0: not drawing)."""
        s = e.session
        if s is None or (e.status is not _CHARGING and e.status is not _SUSPENDED_EVSE):
            return 0.0
        cap_kw = e.demand_cap_kw()
        if cap_kw < self.min_kw:
            return 0.0
        soc = s.soc_power_at(t_s)[0]  # a session discharging until now starts from where its SoC has fallen
        return self.profiles.get(s.model, e.dc, cap_kw).max_power(soc, s.target_soc_frac)

    def _discharge_caps(self, site: SiteState, tree: SiteTree, caps_kw: list[float], t_s: float) -> list[float]:
        """Each connector's discharge cap that keeps every node's export within its limit (inf: none).

        `caps_kw` are the charging caps the first pass just set; the connection may export its export
        limit (no more than its rating), less what PV feeds in now.
        """
        want = [self._discharge_want_kw(e, t_s) for e in site.evses]
        if not any(want):
            return [math.inf] * len(want)
        absorb = [
            self._absorb_kw(e, min(e.demand_cap_kw(), cap), t_s) for e, cap in zip(site.evses, caps_kw, strict=True)
        ]
        pv_kw = site.energy.pv_kw if site.energy is not None else 0.0
        export_kw = min(site.export_limit_kw, site.grid_limit_kw) - pv_kw
        factors = tree.export_factors(np.array(want), np.array(absorb), export_kw).tolist()
        return [
            math.floor(kw * f * _STEPS_PER_KW) / _STEPS_PER_KW if f < 1.0 and kw > 0 else math.inf
            for kw, f in zip(want, factors, strict=True)
        ]

    def _discharge_want_kw(self, e: Evse, t_s: float) -> float:
        """What the V2G session on `e` would discharge under the cap it has without the controller (0: none)."""
        s = e.session
        if s is None or s.v2g is None or e.discharge_kw <= 0 or e.status not in _MAY_DISCHARGE:
            return 0.0
        cap_kw = e.demand_cap_kw()
        if cap_kw >= 0:
            return 0.0
        kw = min(-cap_kw, e.discharge_kw, e.max_kw, s.v2g.max_discharge_kw)
        if kw < self.min_kw:
            return 0.0
        if not s.discharge_kw:  # one discharging now is above its floor until its floor event; another may refuse
            full = self.profiles.get(s.model, e.dc, e.max_kw)
            if at_floor(s.v2g, full, s.target_soc_frac, s.depart_t_s, s.soc_power_at(t_s)[0], t_s):
                return 0.0
        return kw

    def _absorb_kw(self, e: Evse, cap_kw: float, t_s: float) -> float:
        """The least the session on `e` draws until the next change at the cap `cap_kw` (0: not drawing)."""
        s = e.session
        if s is None or (e.status is not _CHARGING and e.status is not _SUSPENDED_EVSE) or cap_kw < self.min_kw:
            return 0.0
        soc = s.soc_power_at(t_s)[0]
        if soc >= s.target_soc_frac:  # full: it draws nothing
            return 0.0
        return self.profiles.get(s.model, e.dc, cap_kw).min_power(soc, s.target_soc_frac)
