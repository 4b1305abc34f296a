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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.network_plan import PortPlan, SitePlan

__all__ = ["SiteTree"]


@dataclass(frozen=True)
class SiteTree:
    """The limits above a site's connectors, in the order of `ports` (the site's ports in plan order).

    Attributes:
        share: Share of each connector's power on L1, L2 and L3, shape (n, 3).
        phase_limit_kw: Power each phase of the supply may carry (inf: no phase limit).
        panels: For each panel, the connectors on it (positions in `ports`) and the power each of its phases may carry.
    """

    share: np.ndarray
    phase_limit_kw: float
    panels: tuple[tuple[np.ndarray, float], ...]

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
        return cls(share, site.phase_limit_kw, panels)

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

    @staticmethod
    def _level(alloc_kw: np.ndarray, share: np.ndarray, limit_kw: float) -> np.ndarray:
        """Each connector's factor under three phase nodes of `limit_kw`: the smallest over the phases it draws on."""
        load = alloc_kw @ share
        over = load > limit_kw
        if not over.any():
            return np.ones(len(alloc_kw))
        node = np.where(over, limit_kw / np.where(over, load, 1.0), 1.0)
        return np.where(share > 0, node, 1.0).min(axis=1)
