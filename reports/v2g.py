"""The report's bidirectional charging (V2G) section: energy given back, what it earned and cost, the export limit.

Shown when kpis.json has a ``v2g`` key (the scenario has a V2G setting); it reads that key only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.document import Section, Table
from reports.kpi_tables import MAX_TABLE_SITES, _count, _energy, _money

__all__ = ["kpi_table", "sites_table", "v2g_section"]


def _minutes(value: float) -> str:
    return f"{value:,.0f} min"


def kpi_table(k: Mapping[str, Any], currency: str) -> Table:
    """kpis.json's ``v2g.network``, one KPI per row."""
    money = _money(currency)
    rows = [
        ("Energy given back by EVs", _energy(k["energy_discharged_kwh"])),
        ("Sessions that gave energy back", _count(k["sessions_discharged"])),
        ("Paid to drivers for it", money(k["v2g_remuneration"])),
        ("Energy exported to the grid", _energy(k["export_kwh"])),
        ("Export revenue (feed-in price)", money(k["export_revenue"])),
        ("Time over the export limit", _minutes(k["export_limit_minutes"])),
        ("Largest excess over the export limit", f"{k['export_limit_max_excess_kw']:,.1f} kW"),
        ("Sites over their export limit", _count(k["sites_over_export_limit"])),
    ]
    note = "Export is netted per 15 minutes, as energy cost is; the margin adds export revenue and pays the drivers."
    return Table("V2G, network", ("KPI", "Value"), rows, note=note)


def sites_table(sites: Mapping[str, Mapping[str, Any]], site_names: Mapping[str, str], currency: str) -> Table:
    """Per site: energy given back, drivers' pay, export and its revenue, minutes over the export limit."""
    money = _money(currency)
    order = sorted(sites, key=lambda s: (-sites[s]["energy_discharged_kwh"], s))[:MAX_TABLE_SITES]
    rows = [
        (site_names.get(s, s), _energy(sites[s]["energy_discharged_kwh"]), money(sites[s]["v2g_remuneration"]),
         _energy(sites[s]["export_kwh"]), money(sites[s]["export_revenue"]), _minutes(sites[s]["export_limit_minutes"]))
        for s in order
    ]  # fmt: skip
    headers = ("Site", "Given back", "Paid to drivers", "Exported", "Export revenue", "Over export limit")
    note = (
        "" if len(sites) <= MAX_TABLE_SITES else f"The {MAX_TABLE_SITES} sites that gave back most; all in kpis.json."
    )
    return Table("V2G per site", headers, rows, note=note)


def v2g_section(results_dir: Path, site_names: Mapping[str, str], currency: str) -> Section | None:
    """The section, or None when kpis.json has no ``v2g`` key."""
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    if "v2g" not in kpis:
        return None
    k = kpis["v2g"]
    return Section("Bidirectional charging (V2G)", [kpi_table(k["network"], currency),
                                                    sites_table(k["sites"], site_names, currency)], [])  # fmt: skip
