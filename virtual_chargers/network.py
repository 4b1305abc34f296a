"""The virtual chargers of a scenario: one per charger of the simulation's network plan (`sim.network_plan`).

A bridged run and a fleet both take their chargers from here, so ids, ratings, supply, shared cabinets
and connector types are the simulation's, written once.
"""

from __future__ import annotations

from sim.ids import ChargerId
from sim.network_plan import DC_PHASES, NetworkPlan, PortPlan
from virtual_chargers.base import ChargerSpec, ConnectorSpec

__all__ = ["OCPP_CONNECTOR_TYPES", "charger_specs", "connector_spec"]

OCPP_CONNECTOR_TYPES = {
    "ccs1": "cCCS1",
    "ccs2": "cCCS2",
    "chademo": "cG105",
    "nacs": "cTesla",
    "type2": "cType2",
    "j1772": "cType1",
    "gbt": "Unknown",  # OCPP 2.0.1 ConnectorEnumType has no GB/T
}
"""A connector standard (`sim.compat`) as an OCPP 2.0.1 ConnectorEnumType."""


def connector_spec(port: PortPlan) -> ConnectorSpec:
    """A planned port as a virtual connector: rating, AC or DC, supply as wired and, where planned, its OCPP type.

    AC: the site's voltage and the phases the charger is wired to, so profiles in A convert as wired; DC:
    its output voltage on one conductor pair.
    """
    ctype = OCPP_CONNECTOR_TYPES[port.connector] if port.connector is not None else None
    phases = DC_PHASES if port.dc else port.phases
    return ConnectorSpec(port.rated_kw, dc=port.dc, voltage_v=port.voltage_v, phases=phases, connector_type=ctype,
                         discharge_kw=port.discharge_kw)  # fmt: skip


def charger_specs(plan: NetworkPlan) -> dict[ChargerId, ChargerSpec]:
    """Every charger of ``plan``, in its order, with its connectors (a shared cabinet with its shared power)."""
    ports: dict[ChargerId, list[PortPlan]] = {}
    for port in plan.ports:
        ports.setdefault(port.charger.charger_id, []).append(port)
    specs: dict[ChargerId, ChargerSpec] = {}
    for charger in plan.chargers:
        own = ports[charger.charger_id]
        shared_kw = charger.power_kw if charger.shared and len(own) > 1 else None
        specs[charger.charger_id] = ChargerSpec(
            charger.charger_id,
            tuple(connector_spec(p) for p in own),
            model=charger.model,
            shared_power_kw=shared_kw,
        )
    return specs
