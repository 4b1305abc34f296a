"""KPI tables with readable numbers; the only place where values are rounded."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from reports.document import Table

__all__ = ["network_table", "sites_by_arrivals", "sites_table"]

MAX_TABLE_SITES = 30


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(value: Any) -> str:
    return "–" if _missing(value) else f"{int(value):,}"


def _energy(value_kwh: Any) -> str:
    if _missing(value_kwh):
        return "–"
    return f"{value_kwh:,.1f} kWh" if abs(value_kwh) < 1000 else f"{value_kwh / 1000:,.2f} MWh"


def _minutes(value_s: Any) -> str:
    return "–" if _missing(value_s) else f"{value_s / 60:,.1f} min"


def _percent(value_frac: Any) -> str:
    return "–" if _missing(value_frac) else f"{value_frac * 100:.1f} %"


def _power(value_kw: Any) -> str:
    return "–" if _missing(value_kw) else f"{value_kw:,.1f} kW"


def _money(currency: str) -> Callable[[Any], str]:
    return lambda value: "–" if _missing(value) else f"{value:,.2f} {currency}"


def _kpi_rows(currency: str) -> list[tuple[str, str, Callable[[Any], str]]]:
    """(label, KPI key, formatter) in the order the tables show them."""
    return [
        ("Ports", "ports", _count),
        ("Sessions arrived", "sessions_arrived", _count),
        ("Sessions served", "sessions_served", _count),
        ("Sessions balked", "sessions_balked", _count),
        ("Sessions reneged", "sessions_reneged", _count),
        ("Sessions ongoing", "sessions_ongoing", _count),
        ("Energy requested", "energy_requested_kwh", _energy),
        ("Energy delivered", "energy_delivered_kwh", _energy),
        ("Unmet energy", "unmet_energy_kwh", _energy),
        ("Mean wait", "wait_mean_s", _minutes),
        ("95th percentile wait", "wait_p95_s", _minutes),
        ("Time utilization", "time_utilization", _percent),
        ("Energy utilization", "energy_utilization", _percent),
        ("Peak power", "peak_kw", _power),
        ("Revenue", "revenue", _money(currency)),
    ]


def network_table(kpis: Mapping[str, Any], currency: str) -> Table:
    """The network KPIs, one per row."""
    rows = [(label, fmt(kpis[key])) for label, key, fmt in _kpi_rows(currency)]
    return Table("Network", ("KPI", "Value"), rows)


def sites_by_arrivals(site_kpis: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Site ids, most arrivals first, ties by id."""
    return sorted(site_kpis, key=lambda site_id: (-site_kpis[site_id]["sessions_arrived"], site_id))


def sites_table(site_kpis: Mapping[str, Mapping[str, Any]], site_names: Mapping[str, str], currency: str) -> Table:
    """One row per site (the busiest ``MAX_TABLE_SITES``), KPIs as columns."""
    columns = [("Capacity", "capacity_kw", _power), *_kpi_rows(currency)]
    columns = [c for c in columns if c[1] not in ("sessions_ongoing", "energy_requested_kwh", "unmet_energy_kwh")]
    shown = sites_by_arrivals(site_kpis)[:MAX_TABLE_SITES]
    rows = [
        (site_id, site_names.get(site_id, ""), *(fmt(site_kpis[site_id][key]) for _, key, fmt in columns))
        for site_id in shown
    ]
    more = len(site_kpis) - len(shown)
    note = f"The {len(shown)} sites with the most arrivals; {more} more sites in kpis.json." if more else ""
    headers = ("Site", "Name", *(label.removeprefix("Sessions ").capitalize() for label, _, _ in columns))
    return Table("Sites", headers, rows, label_columns=2, note=note)
