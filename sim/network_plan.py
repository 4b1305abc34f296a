"""The network as planned: ids, sites, chargers, ratings, supply and connectors, frozen once from the scenario.

The engine builds its mutable hardware (`sim.hardware`) from this plan, results read their
static facts (ids, rated power, AC or DC) from it, never from the live connectors (a port
derated at the end of a run is still reported at its rating), and the virtual chargers of a
bridged run or a fleet are the plan's chargers, with its ids, voltages and connectors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.compat import group_connectors
from sim.ids import ChargerId, EvseId, SiteId

if TYPE_CHECKING:
    from sim.config import Scenario, Site

__all__ = [
    "AC_PHASES",
    "AC_VOLTAGE_V",
    "DC_PHASES",
    "DC_VOLTAGE_V",
    "ChargerPlan",
    "NetworkPlan",
    "PortPlan",
    "SitePlan",
    "plan_network",
    "plan_of",
]

AC_VOLTAGE_V, AC_PHASES = 230.0, 3  # an AC port's supply: phase voltage and phases
DC_VOLTAGE_V, DC_PHASES = 400.0, 1  # a DC port's nominal output voltage

_PHASES = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True)
class SitePlan:
    """A site: its position in the scenario, id, connection and grid limit."""

    index: int
    site_id: SiteId
    capacity_kw: float
    grid_limit_kw: float
    """The connection or the transformer, whichever is smaller."""
    phase_limit_kw: float = math.inf
    """Power each phase (L1, L2, L3) may carry: `phase_limit_a` × `voltage_v` (inf without a phase limit)."""
    voltage_v: float = 230.0
    """Line-to-neutral voltage of the supply."""
    enforce: bool = False
    """Whether a local load-management controller keeps the connection, phases and panels within limits."""


@dataclass(frozen=True, slots=True)
class ChargerPlan:
    """A charger: id, model, the power of each connector, and whether its connectors share it."""

    index: int
    charger_id: ChargerId
    site: SitePlan
    model: str
    power_kw: float
    shared: bool


@dataclass(frozen=True, slots=True)
class PortPlan:
    """A connector (port): its rated power, current and supply, on its charger at its site.

    ``connector`` is its standard (``ccs2``, ``type2`` …, see `sim.compat`) when the scenario has an
    ``ev_side`` section, which gives ports standards; None otherwise.
    """

    index: int
    evse_id: EvseId
    site: SitePlan
    charger: ChargerPlan
    rated_kw: float
    dc: bool
    phases: int = 3
    """AC phases the connector draws on (1 or 3); DC draws on all three."""
    phase: int | None = None
    """The phase (0 for L1, 1 for L2, 2 for L3) of a single-phase connector; None when it draws on all three."""
    panel: int | None = None
    """Index, within the site, of the panel (a charger group's feeder) the connector hangs on; None: none."""
    panel_phase_limit_kw: float = math.inf
    """Power each phase of that panel may carry."""
    voltage_v: float = AC_VOLTAGE_V
    """The supply: the site's phase voltage for AC, the nominal output voltage for DC."""
    connector: str | None = None
    discharge_kw: float = 0.0
    """Most power the connector discharges a V2G-capable EV with: 0 unless its charger is bidirectional."""

    @property
    def phase_share(self) -> tuple[float, float, float]:
        """Share of the connector's power on L1, L2 and L3."""
        if self.phase is None:
            return (1 / 3, 1 / 3, 1 / 3)
        return (1.0 if self.phase == 0 else 0.0, 1.0 if self.phase == 1 else 0.0, 1.0 if self.phase == 2 else 0.0)


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """Every site, charger and port of a network, in scenario order."""

    sites: tuple[SitePlan, ...]
    chargers: tuple[ChargerPlan, ...]
    ports: tuple[PortPlan, ...]


def plan_network(
    sites: Sequence[Site], transformer_kw: Mapping[str, float] | None = None, market: str | None = None
) -> NetworkPlan:
    """Plan every site of the scenario; port ids are ``<site>.<charger nn>.<connector n>``.

    A single-phase charger's connectors are on its phase: the one its group names, else the
    next of L1, L2, L3 in turn over the site's single-phase chargers (phase rotation).

    Args:
        sites: The scenario's `network.sites`.
        transformer_kw: Transformer rating by site id, where a grid section gives one.
        market: The `ev_side` market, which gives ports without a configured standard theirs; None: no standards.
    """
    transformer_kw = transformer_kw or {}
    site_plans: list[SitePlan] = []
    chargers: list[ChargerPlan] = []
    ports: list[PortPlan] = []
    for i, cfg in enumerate(sites):
        phase_limit_kw = cfg.phase_limit_a * cfg.voltage_v / 1000.0 if cfg.phase_limit_a is not None else math.inf
        grid_limit_kw = min(cfg.capacity_kw, transformer_kw.get(cfg.id, math.inf))
        site = SitePlan(i, SiteId(cfg.id), cfg.capacity_kw, grid_limit_kw, phase_limit_kw, cfg.voltage_v,
                        cfg.limits == "enforce")  # fmt: skip
        site_plans.append(site)
        n = 0
        rotation = 0  # single-phase chargers without a phase: L1, L2, L3 in turn
        for g, group in enumerate(cfg.chargers):
            dc = group.current == "dc"
            phases = 3 if dc else group.phases
            panel, panel_kw = None, math.inf
            if group.panel_phase_limit_a is not None:
                panel, panel_kw = g, group.panel_phase_limit_a * cfg.voltage_v / 1000.0
            voltage_v = DC_VOLTAGE_V if dc else cfg.voltage_v
            standards: Sequence[str | None] = (
                group_connectors(group.connector, group.connectors, market, group.current)
                if market is not None
                else [None] * group.connectors
            )
            for _ in range(group.count):
                n += 1
                charger_id = ChargerId(f"{cfg.id}.{n:02d}")
                charger = ChargerPlan(len(chargers), charger_id, site, group.model, group.power_kw, group.shared)
                chargers.append(charger)
                phase = None
                if phases == 1:
                    if group.phase is not None:
                        phase = _PHASES.index(group.phase)
                    else:
                        phase, rotation = rotation, (rotation + 1) % 3
                for c in range(1, group.connectors + 1):
                    evse_id = EvseId(f"{charger_id}.{c}")
                    port = PortPlan(
                        len(ports), evse_id, site, charger, group.power_kw, dc, phases, phase,
                        panel, panel_kw, voltage_v, standards[c - 1], group.discharge_kw,
                    )  # fmt: skip
                    ports.append(port)
    return NetworkPlan(tuple(site_plans), tuple(chargers), tuple(ports))


def plan_of(scenario: Scenario) -> NetworkPlan:
    """The scenario's network plan: the one the simulation, the OCPP bridge and the charger fleet share."""
    transformer_kw = {k: g.transformer_kw for k, g in scenario.grid.sites.items() if g.transformer_kw}
    market = scenario.ev_side.market if scenario.ev_side is not None else None
    return plan_network(scenario.network.sites, transformer_kw, market)
