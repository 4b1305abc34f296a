"""Wire results, tables and figures into report.md, report.html and the figure PNGs."""

from __future__ import annotations

import json
from pathlib import Path

from reports import ev_figures, figures, grid_figures, revenue_figures, service_figures
from reports.alerts import run_warnings
from reports.degradation import degradation_section
from reports.document import FigureRef, Report, Section, to_html, to_markdown
from reports.ev_tables import ev_sites_table, ev_table, needs_table
from reports.kpi_tables import (
    dr_events_table,
    fault_modes_table,
    grid_sites_table,
    grid_table,
    network_table,
    service_table,
    sites_by_arrivals,
    sites_table,
)
from reports.occupancy import occupancy_week_hour
from reports.results import EvResults, GridResults, Results, ServiceResults, load_results
from reports.v2g import v2g_section

__all__ = ["render"]


def _figures(results: Results) -> list[FigureRef]:
    """Draw the four figures and caption them."""
    load_sites = figures.top_peak_sites(results.load, figures.MAX_LOAD_SITES)
    load_caption = "Mean power per 15 minutes per site; dashed: site capacity."
    if (n_more := results.load["site_id"].nunique() - len(load_sites)) > 0:
        load_caption += f" The {len(load_sites)} sites with the highest peak; {n_more} more sites in load.parquet."

    zone_name = results.zone_name
    mean_evs = occupancy_week_hour(
        results.sessions["plug_t_s"], results.sessions["departure_t_s"], results.horizon_s, results.start
    )
    n_chargers = len(results.ports.groupby(["site_id", "charger_id"]))
    utilization_caption = "Time utilization per charger (mean over its EVSEs)"
    utilization_caption += ", histogram." if n_chargers > figures.MAX_BAR_CHARGERS else ", busiest first."

    outcome_sites = sites_by_arrivals(results.site_kpis)[: figures.MAX_OUTCOME_SITES]
    outcomes_caption = "Session outcomes per site."
    if len(results.site_kpis) > len(outcome_sites):
        outcomes_caption += f" The {len(outcome_sites)} of {len(results.site_kpis)} sites with the most arrivals."

    return [
        FigureRef(
            "site_load.png",
            load_caption,
            figures.png_bytes(figures.site_load_figure(results.load, load_sites, results.site_names)),
        ),
        FigureRef(
            "occupancy.png",
            f"Mean number of plugged-in EVs in the network by weekday and hour ({zone_name}); grey: outside the run.",
            figures.png_bytes(figures.occupancy_figure(mean_evs, zone_name)),
        ),
        FigureRef("utilization.png", utilization_caption, figures.png_bytes(figures.utilization_figure(results.ports))),
        FigureRef(
            "outcomes.png",
            outcomes_caption,
            figures.png_bytes(
                figures.outcomes_figure(figures.outcome_counts(results.site_kpis, results.sessions, outcome_sites))
            ),
        ),
    ]


def _service_figures(service: ServiceResults, results: Results) -> list[FigureRef]:
    """Draw the four serviceability figures and caption them."""
    target_pct = float(service.kpis["uptime_target_pct"])
    ranking = service_figures.uptime_ranking(service.uptime, target_pct)
    n_below = int(ranking["below_target"].sum())
    uptime_caption = "NEVI uptime per port over the trailing 12 months, lowest first"
    uptime_caption += ", as a sorted line" if len(ranking) > service_figures.MAX_BAR_PORTS else ""
    uptime_caption += f"; dashed: the {target_pct:g} % target; red: " + (
        "no port is below it." if n_below == 0 else f"the {n_below} port{'s' if n_below > 1 else ''} below it."
    )

    outage_sites = service_figures.sites_by_outage(service.outages)
    gantt_sites = outage_sites[: service_figures.MAX_GANTT_SITES]
    gantt_caption = (
        "Outages per port by kind over days since start; light and hatched: derated, still up (at or above the class"
        " minimum power)."
    )
    if n_more := len(outage_sites) - len(gantt_sites):
        gantt_caption += f" The {len(gantt_sites)} sites with the most outage hours; {n_more} more in outages.parquet."

    return [
        FigureRef(
            "uptime.png",
            uptime_caption,
            figures.png_bytes(service_figures.uptime_figure(ranking, target_pct)),
        ),
        FigureRef(
            "outages_gantt.png",
            gantt_caption,
            figures.png_bytes(
                service_figures.outages_gantt_figure(
                    service.outages, results.ports, gantt_sites, results.site_names, results.horizon_s
                )
            ),
        ),
        FigureRef(
            "failure_pareto.png",
            "Outage port-hours by cause (overlaps once per port), largest first, derated time included; line:"
            " cumulative share (right axis).",
            figures.png_bytes(service_figures.pareto_figure(service_figures.outage_pareto(service.outages))),
        ),
        FigureRef(
            "crews.png",
            "Travel and on-site work hours per technician; outline: shift hours; label: busy hours, busy / shift.",
            figures.png_bytes(service_figures.crews_figure(service_figures.crew_hours(service.crews))),
        ),
    ]


def _grid_figures(grid: GridResults, results: Results) -> list[FigureRef]:
    """Draw the grid load per site and the network load heatmap, and caption them."""
    load_sites = figures.top_peak_sites(results.load, figures.MAX_LOAD_SITES)
    load_caption = (
        "EV load and, where PV or a battery changes it, grid import (below 0: export) per 15 minutes per site;"
        " dashed: site limit (connection and transformer); dotted: the connection where higher;"
        " shaded: demand-response windows, red: their cap."
    )
    if (n_more := results.load["site_id"].nunique() - len(load_sites)) > 0:
        load_caption += f" The {len(load_sites)} sites with the highest peak; {n_more} more sites in load.parquet."

    zone_name = results.zone_name
    mean_kw, days_per_row = grid_figures.load_heatmap(grid.load, results.start)
    rows = "day" if days_per_row == 1 else f"week (the run is longer than {grid_figures.MAX_HEATMAP_DAYS} days)"
    heatmap_caption = f"Mean network EV load by {rows} and hour of day ({zone_name}); grey: outside the run."

    return [
        FigureRef(
            "grid_load.png",
            load_caption,
            figures.png_bytes(
                grid_figures.grid_load_figure(
                    grid.load, grid_figures.dr_windows(grid.load), load_sites, results.site_names
                )
            ),
        ),
        FigureRef(
            "load_heatmap.png",
            heatmap_caption,
            figures.png_bytes(grid_figures.load_heatmap_figure(mean_kw, days_per_row, results.start.date(), zone_name)),
        ),
    ]


def _grid_section(grid: GridResults, results: Results) -> Section:
    """Grid KPIs, per-site grid KPIs, the demand-response events if any, and the two grid figures."""
    tables = [
        grid_table(grid.kpis["network"], results.currency),
        grid_sites_table(
            grid.kpis["sites"], results.site_names, results.currency, sites_by_arrivals(results.site_kpis)
        ),
    ]
    if len(grid.dr_events):
        tables.append(dr_events_table(grid.dr_events, results.start))
    return Section("Grid", tables, _grid_figures(grid, results))


def _ev_section(ev: EvResults, results: Results) -> Section:
    """EV-side KPIs, compatibility per site, energy against the need, the interop heatmap and the misses per site."""
    k = ev.kpis
    tables = [
        ev_table(k),
        ev_sites_table(k["sites"], results.site_names, sites_by_arrivals(results.site_kpis)),
        needs_table(k["energy_vs_need"]),
    ]
    counts = ev_figures.compat_counts(k["sites"])
    misses_caption = "Compatibility misses per site and what followed: lost, redirected to another site, or waited."
    if (n_more := sum(1 for s in k["sites"].values() if s["compat_misses"]) - len(counts)) > 0:
        misses_caption += f" The {len(counts)} sites with the most misses; {n_more} more in kpis.json."
    figures_ = [
        FigureRef(
            "interop_heatmap.png",
            "Handshake success per EV family and charger model: colour and first line, first attempt; second line,"
            " after retries on the same port (visits); grey: no visit.",
            figures.png_bytes(ev_figures.interop_heatmap_figure(ev_figures.interop_matrix(k["interop_by_pair"]))),
        ),
        FigureRef("compat_misses.png", misses_caption, figures.png_bytes(ev_figures.compat_figure(counts))),
    ]
    return Section("EV side", tables, figures_)


def _sections(results: Results, revenue: revenue_figures.RevenueResults | None) -> list[Section]:
    """Revenue, serviceability, grid, then the EV side, each when the results have it; the EV side last.

    Revenue comes first and always: a folder written before revenue results gets a sentence saying so.
    """
    sections = [revenue_figures.revenue_section(revenue, results)]
    if results.service is not None:
        tables = [
            service_table(results.service.kpis, results.currency),
            fault_modes_table(results.service.kpis["fault_modes"]),
        ]
        sections.append(Section("Serviceability", tables, _service_figures(results.service, results)))
    if results.grid is not None:
        sections.append(_grid_section(results.grid, results))
    if results.ev is not None:
        sections.append(_ev_section(results.ev, results))
    return sections


def render(results_dir: Path) -> Path:
    """Write report.md, report.html and the figure PNGs into ``results_dir``; return report.html's path.

    Output depends only on the folder's contents (no timestamps), so equal results give equal files.
    """
    results = load_results(results_dir)
    horizon_days = results.horizon_s / 86400.0
    run_line = (
        f"Seed {results.seed} · start {results.start:%a %Y-%m-%d %H:%M} {results.start.tzname()}"
        f" · horizon {horizon_days:g} d · manager {results.manager_kind} · chargetwin {results.version}"
    )
    report = Report(
        title=f"Report: {results.scenario_name}",
        run_line=run_line,
        tables=[
            network_table(results.network_kpis, results.currency),
            sites_table(results.site_kpis, results.site_names, results.currency),
        ],
        figures=_figures(results),
        sections=[
            *_sections(results, revenue_figures.load_revenue(results_dir)),
            *filter(
                None,
                [
                    v2g_section(results_dir, results.site_names, results.currency),
                    degradation_section(results_dir, results.site_names, results.currency),
                ],
            ),  # fmt: skip
        ],
        warnings=run_warnings(json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))),
    )
    for figure in [*report.figures, *(figure for section in report.sections for figure in section.figures)]:
        (results_dir / figure.file_name).write_bytes(figure.png)
    (results_dir / "report.md").write_text(to_markdown(report), encoding="utf-8", newline="\n")
    html_path = results_dir / "report.html"
    html_path.write_text(to_html(report), encoding="utf-8", newline="\n")
    return html_path
