"""Connector standards, vehicle inlets and which EV can use which port.

A charger connector has one standard; a vehicle has one or more inlets, and an inlet
accepts the plugs of its standard and, for the combined systems, the AC plug it extends
(a CCS1 inlet takes a J1772 plug, a CCS2 inlet a Type 2 plug). A driver who carries an
adapter can also use the connector the adapter is made for. Sets of connectors are kept
as bit masks, so "can this EV use this port" is one ``&``.

Default connector of a charger group without one (by market and current):

======  ========  =========
market  dc        ac
======  ========  =========
eu      ccs2      type2
na      ccs1      j1772
cn      gbt       gbt
jp      chademo   j1772
======  ========  =========

The presets' inlets per market are those of the model years their charge curves come
from (North American models from 2025 on move to NACS / SAE J3400; write ``inlets`` for
those). A preset not sold in a market has no inlets there: the scenario must give them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

__all__ = [
    "CONNECTORS",
    "CONNECTOR_CURRENTS",
    "DC_INLETS",
    "INLET_ACCEPTS",
    "MARKETS",
    "MARKET_DEFAULTS",
    "PRESET_EV_SIDE",
    "Connector",
    "Market",
    "accepts_mask",
    "bit",
    "check_connector",
    "check_connectors",
    "group_connectors",
    "connector_names",
    "default_connector",
    "entry_family",
    "entry_inlets",
    "fleet_entries",
    "fleet_families",
    "preset_family",
    "preset_inlets",
]

Connector = Literal["ccs1", "ccs2", "nacs", "chademo", "type2", "j1772", "gbt"]
Market = Literal["eu", "na", "cn", "jp"]

CONNECTORS: tuple[str, ...] = ("ccs1", "ccs2", "nacs", "chademo", "type2", "j1772", "gbt")
"""Every standard, in bit order (``bit("ccs1") == 1``)."""
MARKETS: tuple[str, ...] = ("eu", "na", "cn", "jp")

CONNECTOR_CURRENTS: dict[str, frozenset[str]] = {
    "ccs1": frozenset({"dc"}),
    "ccs2": frozenset({"dc"}),
    "nacs": frozenset({"ac", "dc"}),  # SAE J3400: one plug for both
    "chademo": frozenset({"dc"}),
    "type2": frozenset({"ac"}),  # IEC 62196-2; DC over Type 2 (early Tesla Superchargers in Europe) is left out
    "j1772": frozenset({"ac"}),  # SAE J1772 / IEC 62196 Type 1
    "gbt": frozenset({"ac", "dc"}),  # GB/T 20234.2 (AC) and .3 (DC): two plugs, listed as one standard
}

INLET_ACCEPTS: dict[str, tuple[str, ...]] = {
    "ccs1": ("ccs1", "j1772"),
    "ccs2": ("ccs2", "type2"),
    "nacs": ("nacs",),
    "chademo": ("chademo",),
    "type2": ("type2",),
    "j1772": ("j1772",),
    "gbt": ("gbt",),  # a GB/T car has both the AC and the DC inlet
}
"""The plugs each inlet takes."""

DC_INLETS = frozenset({"ccs1", "ccs2", "nacs", "chademo", "gbt"})
"""Inlets that can take DC power (through an adapter too)."""

MARKET_DEFAULTS: dict[str, dict[str, str]] = {
    "eu": {"dc": "ccs2", "ac": "type2"},
    "na": {"dc": "ccs1", "ac": "j1772"},
    "cn": {"dc": "gbt", "ac": "gbt"},
    "jp": {"dc": "chademo", "ac": "j1772"},
}

# Preset → (EV family for interoperability, inlets per market). Families group models that
# share a charging controller (platform), which is what handshake failures depend on.
PRESET_EV_SIDE: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "tesla_model_3_lr": ("tesla", {"eu": ("ccs2",), "na": ("nacs",), "cn": ("gbt",), "jp": ("nacs",)}),
    "hyundai_ioniq_5_lr": ("hyundai_kia_egmp", {"eu": ("ccs2",), "na": ("ccs1",), "jp": ("chademo", "j1772")}),
    "kia_ev6_lr": ("hyundai_kia_egmp", {"eu": ("ccs2",), "na": ("ccs1",)}),
    "vw_id4_pro": ("vw_meb", {"eu": ("ccs2",), "na": ("ccs1",), "cn": ("gbt",), "jp": ("chademo", "j1772")}),
    "bmw_i4_edrive40": ("bmw", {"eu": ("ccs2",), "na": ("ccs1",), "cn": ("gbt",), "jp": ("chademo", "j1772")}),
    "nissan_leaf_40": (
        "nissan_leaf", {"eu": ("chademo", "type2"), "na": ("chademo", "j1772"), "jp": ("chademo", "j1772")}
    ),
    "chevrolet_bolt_ev": ("gm_bolt", {"na": ("ccs1",)}),
    "renault_zoe_ze50": ("renault_zoe", {"eu": ("ccs2",)}),
    "ford_f150_lightning_er": ("ford", {"na": ("ccs1",)}),
    "ford_e_transit": ("ford", {"eu": ("ccs2",), "na": ("ccs1",)}),
}  # fmt: skip


def bit(connector: str) -> int:
    """The mask of one connector standard."""
    return 1 << CONNECTORS.index(connector)


def accepts_mask(inlets: Iterable[str], adapters: Iterable[str] = ()) -> int:
    """Mask of the connectors an EV with `inlets` can use, with the adapters it carries."""
    mask = 0
    for inlet in inlets:
        for plug in INLET_ACCEPTS[inlet]:
            mask |= bit(plug)
    for connector in adapters:
        mask |= bit(connector)
    return mask


def connector_names(mask: int) -> list[str]:
    """The standards in `mask`, in `CONNECTORS` order."""
    return [c for c in CONNECTORS if mask & bit(c)]


def check_connector(connector: str, current: str) -> None:
    """Raise ValueError if a `current` charger cannot have a `connector` plug."""
    if current not in CONNECTOR_CURRENTS[connector]:
        fits = sorted(c for c, currents in CONNECTOR_CURRENTS.items() if current in currents)
        raise ValueError(
            f"connector {connector} is not a {current} connector; {current} chargers have {', '.join(fits)}"
        )


def check_connectors(connector: str | Sequence[str] | None, connectors: int, current: str) -> None:
    """Raise ValueError unless a charger group's `connector` (one, or one per connector) fits it."""
    if connector is None:
        return
    if isinstance(connector, str):
        check_connector(connector, current)
        return
    if len(connector) != connectors:
        raise ValueError(
            f"connector lists {len(connector)} standards for {connectors} connectors; give one per connector, "
            "or one standard for all"
        )
    for c in connector:
        check_connector(c, current)


def group_connectors(connector: str | Sequence[str] | None, connectors: int, market: str, current: str) -> list[str]:
    """The standard of each connector of one charger of a group."""
    if connector is None:
        return [default_connector(market, current)] * connectors
    if isinstance(connector, str):
        return [connector] * connectors
    return list(connector)


def default_connector(market: str, current: str) -> str:
    """The connector of a charger group that names none: the market's standard for its current."""
    return MARKET_DEFAULTS[market][current]


def preset_family(preset: str) -> str:
    """EV family of a preset (its platform), for the interoperability matrix."""
    return PRESET_EV_SIDE[preset][0]


def preset_inlets(preset: str, market: str) -> tuple[str, ...] | None:
    """The preset's inlets in `market`, None when it is not sold there."""
    return PRESET_EV_SIDE[preset][1].get(market)


# ---------------------------------------------------------------- fleet entries (typed loosely: no config import)


def entry_inlets(entry: Any, market: str) -> tuple[str, ...] | None:
    """A fleet entry's inlets: written, the preset's in `market`, or for a written-out model the market's own."""
    if entry.inlets is not None:
        return tuple(entry.inlets)
    if entry.preset is not None:
        return preset_inlets(entry.preset, market)
    dc, ac = MARKET_DEFAULTS[market]["dc"], MARKET_DEFAULTS[market]["ac"]
    return (dc,) if ac in INLET_ACCEPTS[dc] else (dc, ac)


def entry_family(entry: Any) -> str:
    """A fleet entry's EV family: written, the preset's, or the model's name."""
    if entry.family is not None:
        return str(entry.family)
    if entry.preset is not None:
        return preset_family(entry.preset)
    return str(entry.model.name)


def fleet_entries(scenario: Any) -> list[tuple[str, Any]]:
    """Every fleet entry of the scenario with its YAML path: the scenario fleet first, then each demand's."""
    out = [(f"fleet[{i}]", e) for i, e in enumerate(scenario.fleet)]
    for k, d in enumerate(scenario.demand):
        out += [(f"demand[{k}].fleet[{i}]", e) for i, e in enumerate(d.fleet or [])]
    return out


def fleet_families(scenario: Any) -> list[str]:
    """Every EV family of the scenario's fleets, in order of first mention (scenario fleet first)."""
    return list(dict.fromkeys(entry_family(e) for _, e in fleet_entries(scenario)))
