"""The report's figures as ``matplotlib.figure.Figure`` objects: no pyplot, so no global state to close."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "EV_OUTCOME_COLORS",
    "occupancy_figure",
    "outcome_counts",
    "outcomes_figure",
    "png_bytes",
    "site_load_figure",
    "top_peak_sites",
    "utilization_figure",
]

DPI = 100
MAX_LOAD_SITES = 6
MAX_BAR_CHARGERS = 60
MAX_OUTCOME_SITES = 20
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
OUTCOME_COLORS = {"served": "#2a9d8f", "ongoing": "#8ab17d", "reneged": "#e9c46a", "balked": "#e76f51"}
FAULT_OUTCOME_COLORS = {"interrupted": "#b5838d", "failed": "#6d597a"}
"""Outcomes of runs with serviceability; kpis.json does not count them per site."""
EV_OUTCOME_COLORS = {"incompatible": "#264653"}
"""Outcomes of runs with an ev_side section; kpis.json does not count them per site either."""


def png_bytes(figure: Figure) -> bytes:
    """Encode as PNG without the software stamp, so the same data gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def top_peak_sites(load: pd.DataFrame, count: int) -> list[str]:
    """The ``count`` site ids with the highest 15-minute power, ties by id."""
    peak_kw = load.groupby("site_id", sort=True)["power_kw"].max()
    return peak_kw.sort_values(ascending=False, kind="stable").index[:count].tolist()


def site_load_figure(load: pd.DataFrame, site_ids: Sequence[str], site_names: Mapping[str, str]) -> Figure:
    """One axis per site: 15-minute mean power and the dashed capacity limit over days since start."""
    figure = Figure(figsize=(10, 1.0 + 1.8 * len(site_ids)), dpi=DPI, layout="constrained")
    by_site = dict(list(load[load["site_id"].isin(site_ids)].groupby("site_id", sort=False)))
    axes = figure.subplots(len(site_ids), 1, sharex=True, squeeze=False)[:, 0]
    for ax, site_id in zip(axes, site_ids, strict=True):
        rows = by_site[site_id].sort_values("t_s", kind="stable")
        days = rows["t_s"].to_numpy() / 86400.0
        ax.step(days, rows["power_kw"].to_numpy(), where="post", linewidth=0.8, label="power")
        ax.step(days, rows["capacity_kw"].to_numpy(), "k--", where="post", linewidth=0.8, label="capacity")
        ax.set_title(f"{site_id} {site_names.get(site_id, '')}".strip(), loc="left", fontsize=9)
        ax.set_ylabel("kW")
        ax.set_ylim(bottom=0)
    axes[0].legend(loc="upper right", fontsize=8, ncols=2)
    axes[-1].set_xlabel("days since start")
    return figure


def occupancy_figure(mean_evs: np.ndarray, zone_name: str) -> Figure:
    """Heatmap of a 7x24 weekday-by-hour array; NaN cells (not in the horizon) are grey."""
    figure = Figure(figsize=(10, 3.6), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(np.ma.masked_invalid(mean_evs), aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(24))
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xlabel(f"hour of day ({zone_name})")
    figure.colorbar(image, ax=ax, label="mean plugged-in EVs")
    return figure


def utilization_figure(ports: pd.DataFrame) -> Figure:
    """Time utilization per charger (mean of its EVSEs): sorted bars, or a histogram for many chargers."""
    figure = Figure(figsize=(10, 4), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    per_charger_pct = ports.groupby(["site_id", "charger_id"])["time_utilization"].mean() * 100.0
    per_charger_pct = per_charger_pct.sort_values(ascending=False, kind="stable")
    if len(per_charger_pct) > MAX_BAR_CHARGERS:
        ax.hist(per_charger_pct.to_numpy(), bins=np.linspace(0.0, 100.0, 21).tolist(), color="#457b9d")
        ax.set_xlabel("time utilization (%)")
        ax.set_ylabel("chargers")
    else:
        positions = np.arange(len(per_charger_pct))
        ax.bar(positions, per_charger_pct.to_numpy(), color="#457b9d")
        ax.set_xticks(positions, [charger for _, charger in per_charger_pct.index], rotation=90, fontsize=7)
        ax.set_ylabel("time utilization (%)")
    return figure


def outcome_counts(
    site_kpis: Mapping[str, Mapping[str, Any]], sessions: pd.DataFrame, site_ids: Sequence[str]
) -> pd.DataFrame:
    """Sessions per site (rows, in the given order) and outcome (columns, in stacking order).

    The outcomes kpis.json counts per site come from there; "interrupted" and "failed" are counted
    from sessions' site_id and outcome, and are columns only when the run has any of them; so is
    "incompatible" (runs with an ev_side section).
    """
    counts = pd.DataFrame(
        {outcome: [site_kpis[site_id][f"sessions_{outcome}"] for site_id in site_ids] for outcome in OUTCOME_COLORS},
        index=pd.Index(list(site_ids), dtype=object),
        dtype=float,
    )
    outcome = sessions["outcome"].astype(str)
    for group in (FAULT_OUTCOME_COLORS, EV_OUTCOME_COLORS):
        if outcome.isin(list(group)).any():
            site = sessions["site_id"].astype(str)
            for name in group:
                per_site = site[outcome == name].value_counts()
                counts[name] = per_site.reindex(counts.index, fill_value=0).to_numpy(dtype=float)
    return counts


def outcomes_figure(counts: pd.DataFrame) -> Figure:
    """Stacked horizontal bars of session outcomes per site (``outcome_counts``), in row order from the top."""
    colors = OUTCOME_COLORS | FAULT_OUTCOME_COLORS | EV_OUTCOME_COLORS
    figure = Figure(figsize=(10, 1.4 + 0.3 * max(len(counts), 1)), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(counts))
    left = np.zeros(len(counts))
    for outcome in counts.columns:
        values = counts[outcome].to_numpy(dtype=float)
        ax.barh(positions, values, left=left, color=colors[outcome], label=outcome)
        left += values
    ax.set_yticks(positions, counts.index.tolist())
    ax.invert_yaxis()
    ax.set_xlabel("sessions")
    figure.legend(loc="outside upper center", fontsize=8, ncols=len(counts.columns))
    return figure
