"""Serviceability figures: port uptime, outage timelines, a failure Pareto and crew hours.

Each figure has a small pure function that prepares its data (tested on hand-computed inputs)
and a drawing function that takes that data as it is; no values are rounded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reports.figures import DPI

__all__ = [
    "KIND_COLORS",
    "MAX_BAR_PORTS",
    "MAX_GANTT_SITES",
    "crew_hours",
    "crews_figure",
    "outage_pareto",
    "outages_gantt_figure",
    "pareto_figure",
    "sites_by_outage",
    "uptime_figure",
    "uptime_ranking",
]

MAX_BAR_PORTS = 80
MAX_GANTT_SITES = 6
MAX_LABELLED_PORTS = 40
UPTIME_PERIOD = "trailing_12m"
KIND_COLORS = {"fault": "#e76f51", "planned": "#457b9d", "outside": "#8d99ae"}
BELOW_COLOR = "#e76f51"
ABOVE_COLOR = "#2a9d8f"
DERATED_ALPHA = 0.35
DERATED_HATCH = "////"
_HOUR_S = 3600.0
_DAY_S = 86400.0


def _no_data(figure: Figure, text: str) -> Figure:
    ax = figure.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return figure


def uptime_ranking(uptime: pd.DataFrame, target_pct: float) -> pd.DataFrame:
    """Trailing-12-month uptime per port, lowest first (ties by site and port id), flagged when below ``target_pct``.

    Returns:
        Columns site_id, evse_id, uptime_pct, below_target; a port exactly at the target meets it.
    """
    rows = uptime.loc[uptime["period"] == UPTIME_PERIOD, ["site_id", "evse_id", "uptime_pct"]]
    rows = rows.astype({"site_id": str, "evse_id": str, "uptime_pct": float})
    rows = rows.sort_values(["uptime_pct", "site_id", "evse_id"], kind="stable", ignore_index=True)
    rows["below_target"] = rows["uptime_pct"] < target_pct
    return rows


def uptime_figure(ranking: pd.DataFrame, target_pct: float) -> Figure:
    """Uptime per port from ``uptime_ranking``: bars, or a sorted line for many ports; below target in red."""
    figure = Figure(figsize=(10, 4), dpi=DPI, layout="constrained")
    if ranking.empty:
        return _no_data(figure, "No ports.")
    ax = figure.subplots()
    uptime_pct = ranking["uptime_pct"].to_numpy(dtype=float)
    below = ranking["below_target"].to_numpy(dtype=bool)
    if len(ranking) > MAX_BAR_PORTS:
        ranks = np.arange(1, len(ranking) + 1)
        ax.plot(ranks, uptime_pct, color=ABOVE_COLOR, linewidth=1.2)
        ax.scatter(ranks[below], uptime_pct[below], color=BELOW_COLOR, s=10, zorder=3)
        ax.set_xlim(0, len(ranking) + 1)
        ax.set_xlabel("ports, lowest uptime first")
    else:
        positions = np.arange(len(ranking))
        ax.bar(positions, uptime_pct, color=np.where(below, BELOW_COLOR, ABOVE_COLOR).tolist())
        ax.set_xticks(positions, ranking["evse_id"].tolist(), rotation=90, fontsize=7)
        ax.set_xlim(-0.6, len(ranking) - 0.4)
    target_line = ax.axhline(target_pct, color="k", linestyle="--", linewidth=0.9, label=f"target {target_pct:g} %")
    lowest_pct = min(float(uptime_pct.min()), target_pct)
    bottom_pct = max(0.0, np.floor(lowest_pct - max(1.0, 0.1 * (100.0 - lowest_pct))))
    ax.set_ylim(bottom_pct, 100.0 + 0.02 * (100.0 - bottom_pct))
    ax.set_ylabel("uptime, trailing 12 months (%)")
    handles = [
        Patch(color=ABOVE_COLOR, label="at or above target"),
        Patch(color=BELOW_COLOR, label=f"below target ({int(below.sum())})"),
        target_line,
    ]
    figure.legend(handles=handles, loc="outside upper center", fontsize=8, ncols=len(handles))
    return figure


def sites_by_outage(outages: pd.DataFrame) -> list[str]:
    """Ids of the sites with outages, most outage port-hours (derated included) first, ties by id."""
    outage_s = outages.groupby(outages["site_id"].astype(str))["duration_s"].sum()
    return sorted(outage_s.index, key=lambda site_id: (-outage_s[site_id], site_id))


def _site_ports(ports: pd.DataFrame, outages: pd.DataFrame, site_id: str) -> list[str]:
    """Every port of the site, sorted; ports that only appear in the outages too."""
    listed = ports.loc[ports["site_id"].astype(str) == site_id, "evse_id"].astype(str)
    down = outages.loc[outages["site_id"].astype(str) == site_id, "evse_id"].astype(str)
    return sorted(set(listed) | set(down))


def _gantt_axis(ax: Axes, outages: pd.DataFrame, port_ids: Sequence[str]) -> None:
    row = {evse_id: i for i, evse_id in enumerate(port_ids)}
    kind = outages["kind"].astype(str)
    # Derated first, underneath; then planned above faults, as planned outages are short and often overlap them.
    for down in (False, True):
        for name in ("outside", "fault", "planned"):
            bars = outages[(kind == name) & (outages["down"] == down)]
            if bars.empty:
                continue
            ax.barh(
                bars["evse_id"].astype(str).map(row).to_numpy(dtype=float),
                (bars["end_t_s"] - bars["start_t_s"]).to_numpy(dtype=float) / _DAY_S,
                left=bars["start_t_s"].to_numpy(dtype=float) / _DAY_S,
                height=0.7,
                color=KIND_COLORS[name],
                # An edge keeps outages of minutes visible on a timeline of months.
                edgecolor=KIND_COLORS[name],
                linewidth=0.5,
                alpha=None if down else DERATED_ALPHA,
                hatch=None if down else DERATED_HATCH,
            )
    if len(port_ids) > MAX_LABELLED_PORTS:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(port_ids)} ports", fontsize=8)
    else:
        ax.set_yticks(range(len(port_ids)), list(port_ids), fontsize=7)
    ax.set_ylim(len(port_ids) - 0.4, -0.6)


def outages_gantt_figure(
    outages: pd.DataFrame,
    ports: pd.DataFrame,
    site_ids: Sequence[str],
    site_names: Mapping[str, str],
    horizon_s: float,
) -> Figure:
    """One timeline per site, one row per port: outage bars coloured by kind; derated but up: light and hatched."""
    port_ids = [_site_ports(ports, outages, site_id) for site_id in site_ids]
    n_rows = sum(len(ids) for ids in port_ids)
    figure = Figure(figsize=(10, min(1.4 + 0.6 * len(site_ids) + 0.22 * n_rows, 30.0)), dpi=DPI, layout="constrained")
    if not site_ids:
        return _no_data(figure, "No outages in the run.")
    axes = figure.subplots(
        len(site_ids), 1, sharex=True, squeeze=False, height_ratios=[len(ids) + 2 for ids in port_ids]
    )[:, 0]
    site = outages["site_id"].astype(str)
    for ax, site_id, ids in zip(axes, site_ids, port_ids, strict=True):
        _gantt_axis(ax, outages[site == site_id], ids)
        ax.set_title(f"{site_id} {site_names.get(site_id, '')}".strip(), loc="left", fontsize=9)
    axes[-1].set_xlim(0.0, horizon_s / _DAY_S)
    axes[-1].set_xlabel("days since start")
    handles = [Patch(color=color, label=name) for name, color in KIND_COLORS.items()]
    handles.append(Patch(facecolor="#999999", alpha=DERATED_ALPHA, hatch=DERATED_HATCH, label="derated, up"))
    figure.legend(handles=handles, loc="outside upper center", fontsize=8, ncols=len(handles))
    return figure


def outage_pareto(outages: pd.DataFrame) -> pd.DataFrame:
    """Outage port-hours (derated included) per cause, largest first, ties by name.

    A port's rows of one cause that overlap (two resets at once) count once, as the fault modes'
    ``outage_h`` in kpis.json (docs/kpis.md).

    Returns:
        Columns cause, kind, outage_h and cumulative_pct, which ends at exactly 100; causes without time are left out.
    """
    rows = pd.DataFrame(
        {
            "cause": outages["cause"].astype(str),
            "evse_id": outages["evse_id"].astype(str),
            "kind": outages["kind"].astype(str),
            "start_t_s": outages["start_t_s"].astype(float),
            "end_t_s": outages["end_t_s"].astype(float),
        }
    ).sort_values(["cause", "evse_id", "start_t_s"], kind="stable")
    # Sorted by start, a row adds what lies beyond the latest end of the rows before it on the port.
    covered_to = rows.groupby(["cause", "evse_id"], sort=False)["end_t_s"].transform(
        lambda end: end.cummax().shift(fill_value=-np.inf)
    )
    rows["outage_h"] = (rows["end_t_s"] - np.maximum(rows["start_t_s"], covered_to)).clip(lower=0.0) / _HOUR_S
    per_cause = rows.groupby("cause", sort=True).agg(kind=("kind", "first"), outage_h=("outage_h", "sum"))
    per_cause = per_cause[per_cause["outage_h"] > 0].reset_index()
    per_cause = per_cause.sort_values(["outage_h", "cause"], ascending=[False, True], kind="stable", ignore_index=True)
    cumulative_h = per_cause["outage_h"].cumsum()
    # Scaling after dividing by the last element makes the last share exactly 100 (x / x * 100).
    per_cause["cumulative_pct"] = cumulative_h / (cumulative_h.iloc[-1] if len(cumulative_h) else 1.0) * 100.0
    return per_cause


def pareto_figure(pareto: pd.DataFrame) -> Figure:
    """Outage hours per cause from ``outage_pareto`` as bars coloured by kind; cumulative share on a twin axis."""
    figure = Figure(figsize=(10, 4.2), dpi=DPI, layout="constrained")
    if pareto.empty:
        return _no_data(figure, "No outages in the run.")
    ax = figure.subplots()
    positions = np.arange(len(pareto))
    ax.bar(positions, pareto["outage_h"].to_numpy(dtype=float), color=pareto["kind"].map(KIND_COLORS).tolist())
    ax.set_xticks(positions, pareto["cause"].tolist(), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("outage (port-hours)")
    share = ax.twinx()
    share.plot(positions, pareto["cumulative_pct"].to_numpy(dtype=float), "k.-", linewidth=1.0)
    share.set_ylim(0.0, 105.0)
    share.set_ylabel("cumulative share (%)")
    kinds = [name for name in KIND_COLORS if (pareto["kind"] == name).any()]
    ax.legend(handles=[Patch(color=KIND_COLORS[name], label=name) for name in kinds], loc="center right", fontsize=8)
    return figure


def crew_hours(crews: pd.DataFrame) -> pd.DataFrame:
    """Per technician, by crew and number: travel and on-site work hours, shift hours and utilization.

    Busy time includes travel, so work is busy minus travel; utilization is busy / shift (NaN without a shift).

    Returns:
        Columns label, travel_h, work_h, shift_h, utilization.
    """
    rows = crews.assign(crew_id=crews["crew_id"].astype(str))
    rows = rows.sort_values(["crew_id", "technician"], kind="stable", ignore_index=True)
    shift_s = rows["shift_s"].astype(float)
    return pd.DataFrame(
        {
            "label": rows["crew_id"] + " #" + rows["technician"].astype(str),
            "travel_h": rows["travel_s"].astype(float) / _HOUR_S,
            "work_h": (rows["busy_s"] - rows["travel_s"]).astype(float) / _HOUR_S,
            "shift_h": shift_s / _HOUR_S,
            "utilization": rows["busy_s"].astype(float) / shift_s.where(shift_s > 0),
        }
    )


def crews_figure(hours: pd.DataFrame) -> Figure:
    """Horizontal bars per technician from ``crew_hours``: travel and work stacked inside a shift outline."""
    figure = Figure(figsize=(10, 1.6 + 0.35 * max(len(hours), 1)), dpi=DPI, layout="constrained")
    if hours.empty:
        return _no_data(figure, "No technicians.")
    ax = figure.subplots()
    positions = np.arange(len(hours))
    travel_h = hours["travel_h"].to_numpy(dtype=float)
    work_h = hours["work_h"].to_numpy(dtype=float)
    shift_h = hours["shift_h"].to_numpy(dtype=float)
    busy_h = travel_h + work_h
    ax.barh(positions, travel_h, height=0.6, color="#e9c46a", label="travel")
    ax.barh(positions, work_h, left=travel_h, height=0.6, color="#2a9d8f", label="work")
    ax.barh(positions, shift_h, height=0.6, fill=False, edgecolor="k", label="shift")
    for position, busy, shift, utilization in zip(
        positions, busy_h, shift_h, hours["utilization"].to_numpy(dtype=float), strict=True
    ):
        label = f"{busy:,.1f} h busy" + ("" if np.isnan(utilization) else f", {utilization * 100:.1f} %")
        ax.annotate(
            label, (max(busy, shift), position), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    ax.set_yticks(positions, hours["label"].tolist(), fontsize=8)
    ax.set_ylim(len(hours) - 0.4, -0.6)
    # Room on the right for the labels.
    ax.set_xlim(0.0, 1.25 * max(float(np.max(np.maximum(busy_h, shift_h))), 1.0))
    ax.set_xlabel("hours")
    figure.legend(loc="outside upper center", fontsize=8, ncols=3)
    return figure
