"""The sweep report: per KPI, mean and confidence interval per variant, and a paired difference.

Reads the sweep table and the statistics computed from it (plain DataFrames, see
``sim.sweep.summarize`` and ``sim.sweep.paired_difference`` for their columns) and writes
``sweep_report.md``, a self-contained ``sweep_report.html`` and one PNG per KPI.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.document import FigureRef, Report, Section, Table, to_html, to_markdown
from reports.figures import DPI, png_bytes

__all__ = ["ci_figure", "render_sweep"]

MAX_LABEL_CHARS = 70


def _number(x: float) -> str:
    """A KPI value for a table: NaN as a dash, big values with separators, small ones to 4 digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _file_name(kpi: str) -> str:
    return "sweep_" + re.sub(r"[^A-Za-z0-9_-]+", "_", kpi) + ".png"


def ci_figure(summary: pd.DataFrame, kpi: str, confidence: float = 0.95) -> Figure:
    """Mean and confidence interval of `kpi` per variant, one row per variant from the top."""
    rows = summary[summary["kpi"] == kpi]
    figure = Figure(figsize=(10, 1.3 + 0.32 * max(len(rows), 1)), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(rows))
    half = rows["half_width"].to_numpy(dtype=float)
    ax.errorbar(
        rows["mean"].to_numpy(dtype=float),
        positions,
        xerr=np.where(np.isnan(half), 0.0, half),
        fmt="o",
        color="#457b9d",
        ecolor="#1d3557",
        capsize=3,
    )
    labels = [f"{v}  {_short(str(label))}" for v, label in zip(rows["variant"], rows["label"], strict=True)]
    ax.set_yticks(positions, labels)
    ax.tick_params(axis="y", labelsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{kpi}: mean and {confidence:.0%} confidence interval")
    ax.grid(axis="x", linewidth=0.4, alpha=0.6)
    return figure


def _kpi_table(summary: pd.DataFrame, kpi: str, confidence: float) -> Table:
    rows = summary[summary["kpi"] == kpi]
    level = f"{confidence:.0%}"
    return Table(
        kpi,
        ("variant", "label", "n", "mean", f"± ({level})", f"{level} CI low", f"{level} CI high", "std"),
        [
            (
                str(r.variant),
                str(r.label),
                str(int(r.n)),
                _number(r.mean),
                _number(r.half_width),
                _number(r.ci_low),
                _number(r.ci_high),
                _number(r.std),
            )
            for r in rows.itertuples(index=False)
        ],
        label_columns=2,
    )


def _difference_table(differences: pd.DataFrame, labels: dict[str, str], confidence: float) -> Table:
    first = differences.iloc[0]
    a, b = str(first["a"]), str(first["b"])
    level = f"{confidence:.0%}"
    return Table(
        f"Paired difference {b} − {a}",
        (
            "KPI",
            f"mean {a}",
            f"mean {b}",
            "difference",
            f"{level} CI low",
            f"{level} CI high",
            "paired ±",
            "unpaired ±",
        ),
        [
            (
                str(r.kpi),
                _number(r.mean_a),
                _number(r.mean_b),
                _number(r.diff_mean),
                _number(r.ci_low),
                _number(r.ci_high),
                _number(r.half_width),
                _number(r.unpaired_half_width),
            )
            for r in differences.itertuples(index=False)
        ],
        note=(
            f"{a}: {labels.get(a, '')}; {b}: {labels.get(b, '')}. Both ran on the same seeds (common random numbers): "
            f"the interval is a Student t interval of the {int(first['n_pairs'])} per-seed differences. "
            "The unpaired (Welch) half-width shows what the pairing gains. "
            "A difference whose interval excludes 0 is significant at this level."
        ),
    )


def render_sweep(
    out_dir: Path,
    table: pd.DataFrame,
    summary: pd.DataFrame,
    differences: pd.DataFrame | None = None,
    *,
    kpis: Sequence[str] = (),
    title: str = "Sweep",
    confidence: float = 0.95,
) -> Path:
    """Write sweep_report.md, sweep_report.html and a PNG per KPI into `out_dir`; return the HTML path.

    Args:
        out_dir: The sweep's output folder.
        table: The sweep table (one row per run: variant, label, replication, error, KPIs).
        summary: Mean and interval per variant and KPI (``sim.sweep.summarize``).
        differences: A paired difference between two variants (``sim.sweep.paired_difference``).
        kpis: KPIs to show with a table and a figure; default every KPI in `summary`.
        title: The report's title.
        confidence: The level the intervals were computed at, for the headings.
    """
    out_dir = Path(out_dir)
    kpis = list(kpis) or list(dict.fromkeys(summary["kpi"]))
    runs = table.groupby("variant", sort=True).agg(
        label=("label", "first"), runs=("replication", "size"), failed=("error", lambda e: int(e.notna().sum()))
    )
    variants = Table(
        "Variants",
        ("variant", "label", "runs", "failed"),
        [(str(v), str(r.label), str(r.runs), str(r.failed)) for v, r in runs.iterrows()],
        label_columns=2,
    )
    labels = {str(v): str(r.label) for v, r in runs.iterrows()}
    tables = [variants]
    if differences is not None and len(differences):
        tables.append(_difference_table(differences, labels, confidence))
    figures = [
        FigureRef(
            _file_name(kpi),
            f"{kpi}: mean per variant with its {confidence:.0%} confidence interval (Student t).",
            png_bytes(ci_figure(summary, kpi, confidence)),
        )
        for kpi in kpis
    ]
    n_runs, n_failed = len(table), int(table["error"].notna().sum())
    seeds = sorted(set(table["seed"].tolist()))
    report = Report(
        title=title,
        run_line=(
            f"{len(runs)} variants × {len(seeds)} replications = {n_runs} runs ({n_failed} failed); "
            f"replication r of every variant ran on the same seed (seeds {seeds[0]}…{seeds[-1]})."
        ),
        tables=tables,
        figures=figures,
        sections=[
            Section(
                f"Mean and {confidence:.0%} confidence interval per variant",
                [_kpi_table(summary, k, confidence) for k in kpis],
                [],
            )
        ],
    )
    for figure in figures:
        (out_dir / figure.file_name).write_bytes(figure.png)
    (out_dir / "sweep_report.md").write_text(to_markdown(report), encoding="utf-8")
    html_path = out_dir / "sweep_report.html"
    html_path.write_text(to_html(report), encoding="utf-8")
    return html_path
