"""EV-side figures: handshake success by EV family × charger model, and compatibility misses per site.

Each figure has a small pure function that prepares its data (tested on hand-computed inputs)
and a drawing function that takes that data as it is; no values are rounded here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.figures import DPI

__all__ = [
    "MAX_COMPAT_SITES",
    "MISS_COLORS",
    "compat_counts",
    "compat_figure",
    "interop_heatmap_figure",
    "interop_matrix",
]

MAX_COMPAT_SITES = 20
MISS_COLORS = {"lost": "#e76f51", "redirected": "#e9c46a", "waited": "#2a9d8f"}
_MAX_ANNOTATED_CELLS = 120


def interop_matrix(pairs: Sequence[Mapping[str, Any]]) -> dict[str, pd.DataFrame]:
    """kpis.json's ``interop_by_pair`` as three family × charger model tables.

    Returns:
        ``first`` and ``after`` (success rates, NaN where no visit) and ``visits``; rows and
        columns in order of first appearance in `pairs`.
    """
    frame = pd.DataFrame(list(pairs), columns=["ev_family", "charger_model", "visits", "first_attempt_success_rate",
                                               "success_after_retries_rate"])  # fmt: skip
    families = list(dict.fromkeys(frame["ev_family"]))
    models = list(dict.fromkeys(frame["charger_model"]))

    def table(column: str) -> pd.DataFrame:
        wide = frame.pivot(index="ev_family", columns="charger_model", values=column)
        return wide.reindex(index=families, columns=models).astype(float)

    return {
        "first": table("first_attempt_success_rate"),
        "after": table("success_after_retries_rate"),
        "visits": table("visits").fillna(0.0),
    }


def _no_data(figure: Figure, text: str) -> Figure:
    ax = figure.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return figure


def interop_heatmap_figure(matrix: Mapping[str, pd.DataFrame]) -> Figure:
    """First-attempt success per EV family (rows) × charger model (columns), cells labelled with after retries."""
    first, after, visits = matrix["first"], matrix["after"], matrix["visits"]
    n_rows, n_cols = first.shape
    figure = Figure(figsize=(max(6.0, 1.3 + 1.25 * n_cols), 1.6 + 0.55 * max(n_rows, 1)), dpi=DPI,
                    layout="constrained")  # fmt: skip
    if first.empty:
        return _no_data(figure, "No plug-in attempts.")
    ax = figure.subplots()
    values = first.to_numpy(dtype=float) * 100.0
    lowest = float(np.nanmin(values)) if np.isfinite(values).any() else 100.0
    bottom = min(90.0, 5.0 * math.floor(lowest / 5.0))  # the scale reaches down to the worst pair
    cmap = mpl.colormaps["RdYlGn"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=bottom, vmax=100.0,
                      interpolation="nearest")  # fmt: skip
    ax.set_xticks(range(n_cols), first.columns.tolist(), rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), first.index.tolist(), fontsize=8)
    if n_rows * n_cols <= _MAX_ANNOTATED_CELLS:
        after_pct = after.to_numpy(dtype=float) * 100.0
        counts = visits.to_numpy(dtype=float)
        for i in range(n_rows):
            for j in range(n_cols):
                if np.isfinite(values[i, j]):
                    text = f"{values[i, j]:.0f} %\n{after_pct[i, j]:.0f} % ({counts[i, j]:.0f})"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xlabel("charger model")
    ax.set_ylabel("EV family")
    figure.colorbar(image, ax=ax, label="first-attempt success (%)")
    return figure


def compat_counts(sites: Mapping[str, Mapping[str, Any]], count: int = MAX_COMPAT_SITES) -> pd.DataFrame:
    """Compatibility misses per site split by what followed: lost, redirected (not lost), waited (not lost).

    Returns:
        One row per site with misses (at most `count`, most misses first, ties by id), columns as `MISS_COLORS`.
    """
    rows = {
        site_id: (k["sessions_lost_to_compat"], k["compat_misses_redirected"], k["compat_misses_waited"])
        for site_id, k in sites.items()
        if k["compat_misses"] > 0
    }
    order = sorted(rows, key=lambda site_id: (-sites[site_id]["compat_misses"], site_id))[:count]
    return pd.DataFrame([rows[s] for s in order], index=pd.Index(order, dtype=object), columns=list(MISS_COLORS),
                        dtype=float)  # fmt: skip


def compat_figure(counts: pd.DataFrame) -> Figure:
    """Stacked horizontal bars of compatibility misses per site (``compat_counts``), most misses on top."""
    figure = Figure(figsize=(10, 1.4 + 0.3 * max(len(counts), 1)), dpi=DPI, layout="constrained")
    if counts.empty:
        return _no_data(figure, "No compatibility misses: every driver found a free port that fits.")
    ax = figure.subplots()
    positions = np.arange(len(counts))
    left = np.zeros(len(counts))
    for name, color in MISS_COLORS.items():
        values = counts[name].to_numpy(dtype=float)
        ax.barh(positions, values, left=left, color=color, label=name)
        left += values
    ax.set_yticks(positions, counts.index.tolist())
    ax.invert_yaxis()
    ax.set_xlabel("arrivals with free ports but none that fits, or no port that fits")
    figure.legend(loc="outside upper center", fontsize=8, ncols=len(MISS_COLORS))
    return figure
