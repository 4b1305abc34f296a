"""Grid figures: EV load against grid import, site limits and demand-response caps; a day-by-hour load heatmap.

Each figure has a small pure function that prepares its data (tested on hand-computed inputs)
and a drawing function that takes that data as it is; no values are rounded here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.figures import DPI

__all__ = [
    "INTERVAL_S",
    "MAX_HEATMAP_DAYS",
    "dr_windows",
    "grid_load_figure",
    "load_heatmap",
    "load_heatmap_figure",
    "shows_grid_import",
]

INTERVAL_S = 900.0
"""load.parquet's rows are 15-minute means starting at ``t_s``."""
MAX_HEATMAP_DAYS = 90
"""Longer runs are drawn as weeks × hour of day."""
SAME_KW = 1e-6
EV_COLOR = "#457b9d"
GRID_COLOR = "#e76f51"
DR_SHADE_COLOR = "#f4a261"
DR_CAP_COLOR = "#c1121f"
_DAY_S = 86400.0
_MAX_ROW_LABELS = 16


def dr_windows(load: pd.DataFrame, interval_s: float = INTERVAL_S) -> pd.DataFrame:
    """Demand-response windows per site: runs of consecutive intervals with the same non-NaN ``dr_cap_kw``.

    A gap in time, a NaN cap or a change of cap (overlapping events) starts a new window.

    Returns:
        Columns site_id, start_t_s, end_t_s, cap_kw, sorted by site and start; a window ends where its
        last interval ends.
    """
    rows = load.loc[load["dr_cap_kw"].notna(), ["site_id", "t_s", "dr_cap_kw"]]
    rows = rows.astype({"site_id": str, "t_s": float, "dr_cap_kw": float})
    rows = rows.sort_values(["site_id", "t_s"], kind="stable", ignore_index=True)
    previous = rows.shift()
    continues = (
        (rows["site_id"] == previous["site_id"])
        & np.isclose(rows["t_s"] - previous["t_s"], interval_s)
        & (rows["dr_cap_kw"] == previous["dr_cap_kw"])
    )
    window = (~continues).cumsum()
    windows = rows.groupby(window, sort=True).agg(
        site_id=("site_id", "first"), start_t_s=("t_s", "first"), end_t_s=("t_s", "last"), cap_kw=("dr_cap_kw", "first")
    )
    windows["end_t_s"] += interval_s
    return windows.reset_index(drop=True).astype({"site_id": str, "start_t_s": float, "end_t_s": float})


def shows_grid_import(rows: pd.DataFrame) -> bool:
    """Whether a site's grid import differs from its EV load anywhere (PV or a battery), so is worth a line."""
    difference_kw = (rows["grid_kw"] - rows["power_kw"]).abs().to_numpy(dtype=float)
    return bool(np.nanmax(difference_kw, initial=0.0) > SAME_KW)


def load_heatmap(load: pd.DataFrame, start: dt.datetime, max_days: int = MAX_HEATMAP_DAYS) -> tuple[np.ndarray, int]:
    """Mean network EV load in kW per (row, local hour of day).

    The network load of an interval is the sum of ``power_kw`` over sites. Row r is day r since the
    start's local date, or week r (days 7r to 7r + 6) when the run covers more than ``max_days`` days.
    Each 15-minute mean counts in the local hour it starts in, in ``start``'s time zone (daylight
    saving included: the hour skipped in spring has no intervals, the hour shown twice in autumn
    averages both). Cells no interval falls in are NaN.

    Returns:
        The rows × 24 array of mean kW and the days per row (1 or 7).
    """
    network_kw = load.groupby("t_s", sort=True)["power_kw"].sum()
    local = pd.Timestamp(start) + pd.to_timedelta(network_kw.index.to_numpy(dtype=float), unit="s")
    day = np.asarray((local.tz_localize(None).normalize() - pd.Timestamp(start.date())).days, dtype=int)
    hour = np.asarray(local.hour, dtype=int)
    n_days = int(day.max()) + 1 if len(day) else 0
    days_per_row = 1 if n_days <= max_days else 7
    n_cells = -(-n_days // days_per_row) * 24
    cell = day // days_per_row * 24 + hour
    sum_kw = np.bincount(cell, weights=network_kw.to_numpy(dtype=float), minlength=n_cells)
    intervals = np.bincount(cell, minlength=n_cells)
    mean_kw = np.full(n_cells, np.nan)
    np.divide(sum_kw, intervals, out=mean_kw, where=intervals > 0)
    return mean_kw.reshape(-1, 24), days_per_row


def load_heatmap_figure(mean_kw: np.ndarray, days_per_row: int, first_day: dt.date, zone_name: str) -> Figure:
    """Heatmap of ``load_heatmap``'s array, rows labelled with their first local date; NaN cells are grey."""
    n_rows = len(mean_kw)
    figure = Figure(figsize=(10, min(2.0 + 0.18 * n_rows, 10.0)), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(np.ma.masked_invalid(mean_kw), aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(24))
    ax.set_xlabel(f"hour of day ({zone_name})")
    rows = range(0, n_rows, -(-n_rows // _MAX_ROW_LABELS) if n_rows else 1)
    dates = [first_day + dt.timedelta(days=row * days_per_row) for row in rows]
    ax.set_yticks(list(rows), [f"{date:%a %d %b}" if days_per_row == 1 else f"{date:%d %b %Y}" for date in dates])
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel("day" if days_per_row == 1 else "week starting")
    figure.colorbar(image, ax=ax, label="mean EV load (kW)")
    return figure


def _site_axis(ax: Axes, rows: pd.DataFrame, windows: pd.DataFrame) -> str:
    """Draw one site; return what the title should add (a connection too high for the axis)."""
    days = rows["t_s"].to_numpy(dtype=float) / _DAY_S
    ev_kw = rows["power_kw"].to_numpy(dtype=float)
    limit_kw = rows["limit_kw"].to_numpy(dtype=float)
    capacity_kw = rows["capacity_kw"].to_numpy(dtype=float)
    for window in windows.itertuples(index=False):
        ax.axvspan(
            window.start_t_s / _DAY_S,
            window.end_t_s / _DAY_S,
            color=DR_SHADE_COLOR,
            alpha=0.35,
            lw=0,
            label="DR window",
        )
        ax.hlines(
            window.cap_kw, window.start_t_s / _DAY_S, window.end_t_s / _DAY_S, color=DR_CAP_COLOR, lw=2, label="DR cap"
        )
    ax.step(days, ev_kw, where="post", color=EV_COLOR, linewidth=0.8, label="EV load")
    shown = [ev_kw, limit_kw, windows["cap_kw"].to_numpy(dtype=float)]
    if shows_grid_import(rows):
        grid_kw = rows["grid_kw"].to_numpy(dtype=float)
        ax.step(days, grid_kw, where="post", color=GRID_COLOR, linewidth=0.8, label="grid import")
        shown.append(grid_kw)
    ax.step(days, limit_kw, "k--", where="post", linewidth=0.8, label="site limit")
    values = np.concatenate(shown)
    values = values[np.isfinite(values)]
    top_kw = 1.1 * max(float(values.max(initial=0.0)), 1.0)
    bottom_kw = min(float(values.min(initial=0.0)) * 1.1, 0.0)
    ax.set_ylim(bottom_kw, top_kw)
    if bottom_kw < 0.0:
        ax.axhline(0.0, color="#adb5bd", linewidth=0.6, zorder=0)
    if np.allclose(capacity_kw, limit_kw, rtol=0.0, atol=SAME_KW):
        return ""
    if capacity_kw.max(initial=0.0) <= top_kw:
        ax.step(days, capacity_kw, ":", color="#6c757d", where="post", linewidth=1.0, label="connection")
        return ""
    return f" · connection {capacity_kw.max():,.0f} kW, above the axis"


def grid_load_figure(
    load: pd.DataFrame, windows: pd.DataFrame, site_ids: Sequence[str], site_names: Mapping[str, str]
) -> Figure:
    """One axis per site: EV load, grid import where PV or a battery changes it, limits and DR windows with caps.

    Args:
        load: load.parquet's site_id, t_s, power_kw, capacity_kw, limit_kw and grid_kw.
        windows: ``dr_windows`` of the same load.
        site_ids: The sites to draw, top to bottom.
        site_names: Names for the titles.
    """
    figure = Figure(figsize=(10, 1.4 + 1.8 * len(site_ids)), dpi=DPI, layout="constrained")
    by_site = dict(list(load[load["site_id"].isin(site_ids)].groupby("site_id", sort=False, observed=True)))
    window_site = windows["site_id"].astype(str)
    axes = figure.subplots(len(site_ids), 1, sharex=True, squeeze=False)[:, 0]
    for ax, site_id in zip(axes, site_ids, strict=True):
        rows = by_site[site_id].sort_values("t_s", kind="stable")
        extra = _site_axis(ax, rows, windows[window_site == site_id])
        ax.set_title(f"{site_id} {site_names.get(site_id, '')}".strip() + extra, loc="left", fontsize=9)
        ax.set_ylabel("kW")
    axes[-1].set_xlabel("days since start")
    handles: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    order = ["EV load", "grid import", "site limit", "connection", "DR window", "DR cap"]
    labels = [label for label in order if label in handles]
    figure.legend([handles[label] for label in labels], labels, loc="outside upper center", fontsize=8, ncols=6)
    return figure
