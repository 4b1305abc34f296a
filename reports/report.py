"""Wire results, tables and figures into report.md, report.html and the figure PNGs."""

from __future__ import annotations

from pathlib import Path

from reports import figures
from reports.document import FigureRef, Report, to_html, to_markdown
from reports.kpi_tables import network_table, sites_by_arrivals, sites_table
from reports.occupancy import occupancy_week_hour
from reports.results import Results, load_results

__all__ = ["render"]


def _figures(results: Results) -> list[FigureRef]:
    """Draw the four figures and caption them."""
    load_sites = figures.top_peak_sites(results.load, figures.MAX_LOAD_SITES)
    load_caption = "Mean power per 15 minutes per site; dashed: site capacity."
    if (n_more := results.load["site_id"].nunique() - len(load_sites)) > 0:
        load_caption += f" The {len(load_sites)} sites with the highest peak; {n_more} more sites in load.parquet."

    zone_name = results.start.tzname() or "local time"
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
    )
    for figure in report.figures:
        (results_dir / figure.file_name).write_bytes(figure.png)
    (results_dir / "report.md").write_text(to_markdown(report), encoding="utf-8", newline="\n")
    html_path = results_dir / "report.html"
    html_path.write_text(to_html(report), encoding="utf-8", newline="\n")
    return html_path
