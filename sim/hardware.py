"""Chargers and their connectors (EVSEs): power limits, shared cabinets and status.

A connector's power cap is the smallest of its hardware maximum, the limit the network
manager set, its charging profiles' limit, the cap a site's local load management sets
(`sim.load_tree`, sites with ``limits: enforce``) and — on a charger whose power is shared
among its connectors (a DC cabinet, or any charger under a ChargePointMax profile) — the
charger's power split equally among the connectors drawing power.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from sim.ids import ChargerId, EvseId, SiteId
from sim.load_tree import SiteTree
from sim.managers.base import EvseStatus

if TYPE_CHECKING:
    from sim.behind_meter import SiteEnergy
    from sim.charging_profiles import ProfileSet
    from sim.network_plan import NetworkPlan
    from sim.sessions import Session

__all__ = ["Charger", "Evse", "SiteState", "build_sites"]

_CHARGING = EvseStatus.CHARGING


class Charger:
    """A charger (charge point) with one or more connectors."""

    __slots__ = ("charger_id", "drawing", "evses", "max_profile_kw", "power_kw", "shared", "shared_kw", "splits")

    def __init__(self, charger_id: ChargerId, power_kw: float, shared: bool) -> None:
        """A charger whose connectors each reach `power_kw`, sharing it if `shared`."""
        self.charger_id = charger_id
        self.power_kw = power_kw
        self.shared = shared
        self.evses: list[Evse] = []
        self.drawing = 0  # connectors in status CHARGING, kept by `Evse.set_status`
        self.max_profile_kw = math.inf  # limit of its ChargePointMax profiles now
        self.shared_kw = power_kw if shared else math.inf  # what the connectors drawing share (inf: nothing)
        self.splits = self.shared_kw < math.inf  # whether the connectors drawing power share a charger-wide limit

    def set_max_profile_kw(self, kw: float) -> None:
        """The charger-wide limit of its ChargePointMax profiles changed to ``kw`` (inf: none)."""
        self.max_profile_kw = kw
        self.shared_kw = min(self.power_kw if self.shared else math.inf, kw)
        self.splits = self.shared_kw < math.inf


class Evse:
    """One connector: it charges one EV at a time."""

    __slots__ = (
        "blocks", "charger", "dc", "discharge_kw", "evse_id", "fault_blocks", "index", "limit_kw", "max_kw",
        "profile_kw", "profile_version", "profiles", "rated_kw", "session", "silent_faults", "site", "status",
        "tree_discharge_kw", "tree_kw",
    )  # fmt: skip

    def __init__(self, index: int, evse_id: EvseId, site: SiteState, charger: Charger, max_kw: float, dc: bool) -> None:
        """A free connector of `charger` with hardware maximum `max_kw`."""
        self.index = index
        self.evse_id = evse_id
        self.site = site
        self.charger = charger
        self.rated_kw = max_kw
        self.max_kw = max_kw  # below rated_kw while a fault derates the port
        self.dc = dc
        self.blocks = 0  # conditions keeping the port out of service (faults, maintenance, outages)
        self.fault_blocks = 0  # those of them that are faults: the port shows Faulted, else Unavailable
        self.silent_faults: list = []  # undetected faults: the next driver will fail to charge
        self.status = EvseStatus.AVAILABLE
        self.limit_kw = math.inf
        self.profiles: ProfileSet | None = None  # OCPP charging profiles, once a manager sets one
        self.profile_kw = math.inf  # their composite limit now
        self.profile_version = 0
        self.tree_kw = math.inf  # the site's local load management's cap (`sim.load_tree`); inf: none
        self.tree_discharge_kw = math.inf  # and the most it lets the connector discharge (V2G); inf: no cap
        self.session: Session | None = None  # while an EV is plugged in
        self.discharge_kw = 0.0  # most it discharges a V2G-capable EV with (bidirectional chargers)

    def set_status(self, status: EvseStatus) -> None:
        """Move to `status`, keeping the charger's count of connectors drawing power (status CHARGING)."""
        if self.status is _CHARGING:
            self.charger.drawing -= 1
        if status is _CHARGING:
            self.charger.drawing += 1
        self.status = status

    def cap_kw(self) -> float:
        """The power this connector may deliver now."""
        cap = min(self.max_kw, self.limit_kw, self.profile_kw, self.tree_kw)
        charger = self.charger
        if charger.drawing > 1 and charger.shared_kw < math.inf:
            share = charger.shared_kw / charger.drawing
            if share < cap:
                return share
        return cap

    def demand_cap_kw(self) -> float:
        """The cap before the site's local load management: what the connector would be allowed without it."""
        cap = min(self.max_kw, self.limit_kw, self.profile_kw)
        charger = self.charger
        if charger.drawing > 1 and charger.shared_kw < math.inf:
            return min(cap, charger.shared_kw / charger.drawing)
        return cap


class SiteState:
    """A site's connectors, its queue of waiting drivers and its grid limit."""

    __slots__ = ("capacity_kw", "chargers", "dr_caps", "dr_mins", "energy", "evses", "export_limit_kw", "free",
                 "grid_limit_kw", "index", "panels", "phase_limit_kw", "queue", "single_phase", "site_id",
                 "tree")  # fmt: skip

    def __init__(self, index: int, site_id: SiteId, capacity_kw: float, grid_limit_kw: float | None = None) -> None:
        """An empty site; `build_sites` adds the chargers. `grid_limit_kw`: connection and transformer."""
        self.index = index
        self.site_id = site_id
        self.capacity_kw = capacity_kw
        self.grid_limit_kw = capacity_kw if grid_limit_kw is None else grid_limit_kw
        self.dr_caps: list[float] = []  # demand-response caps in force
        self.dr_mins: list[float] = []  # demand-response increase events in force: draw at least this
        self.export_limit_kw = math.inf  # most the site may feed back into the grid (V2G, PV)
        self.energy: SiteEnergy | None = None  # PV and storage behind the meter, if any
        self.chargers: list[Charger] = []
        self.evses: list[Evse] = []
        self.free: list[Evse] = []  # connectors with no EV, in build order
        self.queue: deque[Session] = deque()
        self.phase_limit_kw = math.inf  # what each phase may carry (the plan's)
        self.single_phase: dict[EvseId, int] = {}  # single-phase connectors and their phase (0, 1, 2 for L1-L3)
        self.panels: dict[EvseId, tuple[int, float]] = {}  # connectors on a panel: (panel, kW per phase)
        self.tree: SiteTree | None = None  # with ``limits: enforce``, what local load management keeps within limits


def build_sites(plan: NetworkPlan) -> tuple[list[SiteState], list[Evse]]:
    """Create the mutable hardware of every site from the frozen `plan`, in the plan's order."""
    states = [SiteState(p.index, p.site_id, p.capacity_kw, p.grid_limit_kw) for p in plan.sites]
    for state, site_plan in zip(states, plan.sites, strict=True):
        state.phase_limit_kw = site_plan.phase_limit_kw
    chargers = [Charger(p.charger_id, p.power_kw, p.shared) for p in plan.chargers]
    for p in plan.chargers:
        states[p.site.index].chargers.append(chargers[p.index])
    evses: list[Evse] = []
    for port in plan.ports:
        site, charger = states[port.site.index], chargers[port.charger.index]
        evse = Evse(port.index, port.evse_id, site, charger, port.rated_kw, port.dc)
        evse.discharge_kw = port.discharge_kw
        if port.phase is not None:
            site.single_phase[port.evse_id] = port.phase
        if port.panel is not None:
            site.panels[port.evse_id] = (port.panel, port.panel_phase_limit_kw)
        charger.evses.append(evse)
        site.evses.append(evse)
        evses.append(evse)
    for site, site_plan in zip(states, plan.sites, strict=True):
        site.free = list(site.evses)
        if site_plan.enforce:
            site.tree = SiteTree.of(site_plan, [p for p in plan.ports if p.site is site_plan])
    return states, evses
