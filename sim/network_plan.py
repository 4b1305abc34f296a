"""The network as planned: ids, sites, chargers and ratings, frozen once from the scenario.

The engine builds its mutable hardware (`sim.hardware`) from this plan, and results read
their static facts (ids, rated power, AC or DC) from it, never from the live connectors:
a port derated at the end of a run is still reported at its rating.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.ids import ChargerId, EvseId, SiteId

if TYPE_CHECKING:
    from sim.config import Site

__all__ = ["ChargerPlan", "NetworkPlan", "PortPlan", "SitePlan", "plan_network"]


@dataclass(frozen=True, slots=True)
class SitePlan:
    """A site: its position in the scenario, id, connection and grid limit."""

    index: int
    site_id: SiteId
    capacity_kw: float
    grid_limit_kw: float
    """The connection or the transformer, whichever is smaller."""


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
    """A connector (port): its rated power and current, on its charger at its site."""

    index: int
    evse_id: EvseId
    site: SitePlan
    charger: ChargerPlan
    rated_kw: float
    dc: bool


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """Every site, charger and port of a network, in scenario order."""

    sites: tuple[SitePlan, ...]
    chargers: tuple[ChargerPlan, ...]
    ports: tuple[PortPlan, ...]


def plan_network(sites: Sequence[Site], transformer_kw: Mapping[str, float] | None = None) -> NetworkPlan:
    """Plan every site of the scenario; port ids are ``<site>.<charger nn>.<connector n>``.

    Args:
        sites: The scenario's `network.sites`.
        transformer_kw: Transformer rating by site id, where a grid section gives one.
    """
    transformer_kw = transformer_kw or {}
    site_plans: list[SitePlan] = []
    chargers: list[ChargerPlan] = []
    ports: list[PortPlan] = []
    for i, cfg in enumerate(sites):
        site = SitePlan(i, SiteId(cfg.id), cfg.capacity_kw, min(cfg.capacity_kw, transformer_kw.get(cfg.id, math.inf)))
        site_plans.append(site)
        n = 0
        for group in cfg.chargers:
            for _ in range(group.count):
                n += 1
                charger_id = ChargerId(f"{cfg.id}.{n:02d}")
                charger = ChargerPlan(len(chargers), charger_id, site, group.model, group.power_kw, group.shared)
                chargers.append(charger)
                for c in range(1, group.connectors + 1):
                    port = PortPlan(
                        len(ports), EvseId(f"{charger_id}.{c}"), site, charger, group.power_kw, group.current == "dc"
                    )
                    ports.append(port)
    return NetworkPlan(tuple(site_plans), tuple(chargers), tuple(ports))
