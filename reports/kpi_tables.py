"""KPI tables with readable numbers; the only place where values are rounded."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from reports.document import Table

__all__ = [
    "dr_events_table",
    "fault_modes_by_outage",
    "fault_modes_table",
    "per_site_table",
    "grid_sites_table",
    "grid_table",
    "network_table",
    "service_table",
    "sites_by_arrivals",
    "sites_table",
]

MAX_TABLE_SITES = 30
MAX_DR_EVENTS = 50


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


def _percent_2(value_frac: Any) -> str:
    return "–" if _missing(value_frac) else f"{value_frac * 100:.2f} %"


def _uptime(value_pct: Any) -> str:
    return "–" if _missing(value_pct) else f"{value_pct:.2f} %"


def _hours(value_h: Any) -> str:
    return "–" if _missing(value_h) else f"{value_h:,.1f} h"


def _pct(value_pct: Any) -> str:
    return "–" if _missing(value_pct) else f"{value_pct:.1f} %"


def _duration(value_s: Any) -> str:
    if _missing(value_s):
        return "–"
    minutes = round(value_s / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _number(value: Any, decimals: int = 1) -> str:
    return "–" if _missing(value) else f"{value:,.{decimals}f}"


def _money(currency: str) -> Callable[[Any], str]:
    return lambda value: "–" if _missing(value) else f"{value:,.2f} {currency}"


def _outcome_keys(kpis: Mapping[str, Any]) -> list[str]:
    """Every `sessions_<outcome>` count of kpis.json, in its order there (the outcomes add up to the arrivals)."""
    return [k for k in kpis if k.startswith("sessions_") and k != "sessions_arrived"]


def _kpi_rows(currency: str, kpis: Mapping[str, Any]) -> list[tuple[str, str, Callable[[Any], str]]]:
    """(label, KPI key, formatter) in the order the tables show them."""
    return [
        ("Ports", "ports", _count),
        ("Sessions arrived", "sessions_arrived", _count),
        *((f"Sessions {k.removeprefix('sessions_').replace('_', ' ')}", k, _count) for k in _outcome_keys(kpis)),
        ("Balked share", "balk_share", _percent),
        ("Reneged share", "renege_share", _percent),
        ("Energy requested", "energy_requested_kwh", _energy),
        ("Energy delivered", "energy_delivered_kwh", _energy),
        ("Unmet energy", "unmet_energy_kwh", _energy),
        ("Mean wait, all who queued", "wait_all_mean_s", _minutes),
        ("95th percentile wait, all who queued", "wait_all_p95_s", _minutes),
        ("Mean wait, plugged in", "wait_plugged_mean_s", _minutes),
        ("95th percentile wait, plugged in", "wait_plugged_p95_s", _minutes),
        ("Time utilization", "time_utilization", _percent),
        ("Energy utilization", "energy_utilization", _percent),
        ("Peak power", "peak_kw", _power),
        ("Session revenue", "session_revenue", _money(currency)),
        *((("Revenue (with membership fees)", "revenue", _money(currency)),) if "revenue" in kpis else ()),
    ]


def network_table(kpis: Mapping[str, Any], currency: str) -> Table:
    """The network KPIs, one per row."""
    rows = [(label, fmt(kpis[key])) for label, key, fmt in _kpi_rows(currency, kpis)]
    return Table("Network", ("KPI", "Value"), rows)


def sites_by_arrivals(site_kpis: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Site ids, most arrivals first, ties by id."""
    return sorted(site_kpis, key=lambda site_id: (-site_kpis[site_id]["sessions_arrived"], site_id))


def sites_table(site_kpis: Mapping[str, Mapping[str, Any]], site_names: Mapping[str, str], currency: str) -> Table:
    """One row per site (the busiest ``MAX_TABLE_SITES``), KPIs as columns."""
    first = next(iter(site_kpis.values()), {})
    columns = [("Capacity", "capacity_kw", _power), *_kpi_rows(currency, first)]
    keep = ("sessions_served", "sessions_balked", "sessions_reneged")
    detail = (*(k for k in _outcome_keys(first) if k not in keep), "balk_share", "renege_share",
              "energy_requested_kwh", "unmet_energy_kwh", "wait_plugged_mean_s", "wait_plugged_p95_s")  # fmt: skip
    columns = [c for c in columns if c[1] not in detail]
    shown = sites_by_arrivals(site_kpis)[:MAX_TABLE_SITES]
    rows = [
        (site_id, site_names.get(site_id, ""), *(fmt(site_kpis[site_id][key]) for _, key, fmt in columns))
        for site_id in shown
    ]
    more = len(site_kpis) - len(shown)
    note = f"The {len(shown)} sites with the most arrivals; {more} more sites in kpis.json." if more else ""
    headers = ("Site", "Name", *(label.removeprefix("Sessions ").capitalize() for label, _, _ in columns))
    return Table("Sites", headers, rows, label_columns=2, note=note)


def service_table(kpis: Mapping[str, Any], currency: str) -> Table:
    """The serviceability KPIs of kpis.json, one per row."""
    money = _money(currency)
    rows = [
        ("Port uptime, mean", _uptime(kpis["port_uptime_mean_pct"])),
        ("Port uptime, lowest", _uptime(kpis["port_uptime_min_pct"])),
        (f"Ports at ≥ {kpis['uptime_target_pct']:g} % uptime", _percent(kpis["ports_meeting_target_share"])),
        ("Availability", _percent_2(kpis["availability"])),
        ("Failed attempts", _count(kpis["failed_attempts"])),
        ("Failed attempts per 100 attempts", _number(kpis["failed_attempts_per_100"], 2)),
        ("Sessions lost", _count(kpis["sessions_lost"])),
        ("Energy lost", _energy(kpis["energy_lost_kwh"])),
        ("Revenue lost", money(kpis["revenue_lost"])),
        ("First-time fix rate", _percent(kpis["first_time_fix_rate"])),
        ("Crew utilization", _percent(kpis["crew_utilization"])),
        ("Crew travel share", _percent(kpis["crew_travel_share"])),
        ("Labour", _hours(kpis["labour_h"])),
        ("Parts cost", money(kpis["parts_cost"])),
        ("Maintenance cost", money(kpis["maintenance_cost"])),
    ]
    note = (
        "Uptime: NEVI port uptime over the trailing 12 months (the whole run if shorter), excluded outages not counted;"
        " down includes derated below the class minimum power. Availability counts all down time, overlapping outages"
        " once. Lost: failed or interrupted sessions. Maintenance cost: labour and parts. Definitions: docs/kpis.md."
    )
    return Table("Serviceability KPIs", ("KPI", "Value"), rows, note=note)


def fault_modes_by_outage(fault_modes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Fault mode names, most outage hours first, ties by name."""
    return sorted(fault_modes, key=lambda name: (-fault_modes[name]["outage_h"], name))


def fault_modes_table(fault_modes: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per fault mode, most outage hours first."""
    rows = [
        (
            name,
            _count(mode["failures"]),
            _number(None if _missing(mode["observed_mtbf_h"]) else mode["observed_mtbf_h"] / 24.0),
            _number(mode["mttr_h"]),
            _number(mode["time_to_detect_h"]),
            _number(mode["outage_h"]),
        )
        for name in fault_modes_by_outage(fault_modes)
        for mode in [fault_modes[name]]
    ]
    headers = ("Fault mode", "Failures", "Observed MTBF (d)", "MTTR (h)", "Time to detect (h)", "Outage (port-h)")
    note = (
        "Observed MTBF: mean up time between failures; MTTR: failure to restore; outage: port-hours, overlaps once per"
        " port, derated time included; –: undefined."
    )
    return Table("Fault modes", headers, rows, note=note)


def grid_table(grid: Mapping[str, Any], currency: str) -> Table:
    """The network grid KPIs of kpis.json's "grid" object, one per row."""
    money = _money(currency)
    rows = [
        ("Grid import", _energy(grid["grid_import_kwh"])),
        ("Energy cost", money(grid["energy_cost"])),
        ("Demand charge", money(grid["demand_charge"])),
        ("Grid peak (network)", _power(grid["grid_peak_kw"])),
        (
            "Overload above site limits (15-minute intervals)",
            _number(grid.get("overload_minutes"), 0) + " min" if not _missing(grid.get("overload_minutes")) else "–",
        ),
        ("Worst overload excess", _power(grid.get("overload_max_excess_kw"))),
        ("Unmet energy of served sessions", _energy(grid["unmet_energy_kwh"])),
        ("Served sessions short of their request", _percent(grid["unmet_sessions_share"])),
        ("PV generation", _energy(grid["pv_generation_kwh"])),
        ("PV used on site", _energy(grid.get("pv_used_kwh"))),
        (
            "Battery discharged / charged",
            f"{_energy(grid.get('storage_discharged_kwh'))} / {_energy(grid.get('storage_charged_kwh'))}",
        ),
        ("Demand-response events", _count(grid["dr_events"])),
        ("Demand-response events opted out", _count(grid.get("dr_opted_out"))),
        ("Demand-response compliance, mean of events held", _pct(grid["dr_compliance_pct"])),
    ]
    note = (
        "Grid import: EV load − PV − battery per 15 minutes; exports are not netted. Demand charge: on each site's"
        " highest 15-minute import per calendar month. Compliance: share of an event's 15-minute intervals with grid"
        " import within the cap; –: no events. Overload: minutes of 15-minute intervals whose mean import exceeds the"
        " site limit (connection or transformer), summed over sites; worst excess over any site and interval."
    )
    return Table("Grid KPIs", ("KPI", "Value"), rows, note=note)


def grid_sites_table(
    grid_sites: Mapping[str, Mapping[str, Any]],
    site_names: Mapping[str, str],
    currency: str,
    by_arrivals: Sequence[str],
) -> Table:
    """One row per site of kpis.json's grid "sites", at most ``MAX_TABLE_SITES``.

    Sites come in the order of ``by_arrivals`` (``sites_by_arrivals``), as in the Sites table; any others after, by id.
    """
    money = _money(currency)
    columns: list[tuple[str, str, Callable[[Any], str]]] = [
        ("Load factor", "load_factor", _percent),
        ("Grid peak", "grid_peak_kw", _power),
        ("Overload (min)", "overload_minutes", lambda v: _number(v, 0)),
        ("Worst excess", "overload_max_excess_kw", _power),
        ("Energy cost", "energy_cost", money),
        ("Demand charge", "demand_charge", money),
        ("PV self-consumption", "pv_self_consumption", _percent),
        ("Storage cycles", "storage_cycles", _number),
        ("DR compliance", "dr_compliance_pct", _pct),
    ]
    note = (
        "Load factor: mean over peak EV load. PV self-consumption: share of PV generation not exported. Storage cycles:"
        " energy discharged over battery capacity. –: no PV, no battery or no demand-response events."
    )
    return per_site_table("Grid per site", grid_sites, site_names, columns, by_arrivals, MAX_TABLE_SITES, note)


def per_site_table(
    title: str,
    sites: Mapping[str, Mapping[str, Any]],
    site_names: Mapping[str, str],
    columns: Sequence[tuple[str, str, Callable[[Any], str]]],
    by_arrivals: Sequence[str],
    limit: int,
    note: str,
) -> Table:
    """One row per site of a kpis.json "sites" section: ``(label, key, format)`` columns, at most `limit` rows.

    Sites come in the order of ``by_arrivals`` (``sites_by_arrivals``), as in the Sites table; any others after,
    by id. The note says how many sites were left out.
    """
    ranked = [site_id for site_id in by_arrivals if site_id in sites]
    ranked += sorted(set(sites) - set(ranked))
    shown = ranked[:limit]
    rows = [
        (site_id, site_names.get(site_id, ""), *(fmt(sites[site_id].get(key)) for _, key, fmt in columns))
        for site_id in shown
    ]
    if more := len(sites) - len(shown):
        note = f"The {len(shown)} sites with the most arrivals; {more} more sites in kpis.json. " + note
    return Table(title, ("Site", "Name", *(label for label, _, _ in columns)), rows, label_columns=2, note=note)


def dr_events_table(events: pd.DataFrame, start: dt.datetime) -> Table:
    """One row per demand-response event and site, earliest first (at most ``MAX_DR_EVENTS``), start in local time."""
    events = events.sort_values(["start_t_s", "site_id", "event_id"], kind="stable")
    shown = events.iloc[:MAX_DR_EVENTS]
    rows = [
        (
            str(event.site_id),
            f"{start + dt.timedelta(seconds=float(event.start_t_s)):%a %Y-%m-%d %H:%M}",
            _duration(event.end_t_s - event.start_t_s),
            _power(event.cap_kw),
            _power(event.max_kw),
            _power(event.mean_grid_kw),
            _pct(event.compliance_pct),
            "yes" if getattr(event, "opted_out", False) else "",
        )
        for event in shown.itertuples(index=False)
    ]
    headers = (
        "Site",
        f"Start ({start.tzname()})",
        "Duration (h:mm)",
        "Cap",
        "Max EV load",
        "Mean grid import",
        "Compliance",
        "Opted out",
    )
    note = "Max EV load: the chargers' highest power during the event; compliance: share of its 15-minute intervals"
    note += " with grid import within the cap while it was in force (until an opt-out)."
    if more := len(events) - len(shown):
        note = f"The first {len(shown)} events; {more} more in dr_events.parquet. " + note
    return Table("Demand-response events", headers, rows, label_columns=2, note=note)
