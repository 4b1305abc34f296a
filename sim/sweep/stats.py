"""Statistics over a sweep table: per-variant confidence intervals, paired differences, targets met."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.sweep.plan import _find_variant

_REPORT_KPIS = (
    "network.sessions_served",
    "network.wait_all_mean_s",
    "network.energy_delivered_kwh",
    "network.peak_kw",
    "network.revenue",
    "revenue.margin",
    "serviceability.port_uptime_mean_pct",
)


def default_kpis(table: pd.DataFrame) -> list[str]:
    """The network, serviceability, revenue and EV-side KPI columns of a sweep table (site columns left out)."""
    return [c for c in table.columns if c.startswith(("network.", "serviceability.", "revenue.", "ev_side."))]


def report_kpis(table: pd.DataFrame, chosen: Sequence[str] | None = None) -> list[str]:
    """The KPIs a sweep report plots: `chosen`, else a standard set, those the table has."""
    names = list(chosen) if chosen else list(_REPORT_KPIS)
    return [k for k in names if k in table.columns]


def _t_quantile(confidence: float, dof: float) -> float:
    from scipy import stats  # imported here: workers, which never need it, start faster

    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def _interval(values: np.ndarray, confidence: float) -> tuple[int, float, float, float]:
    """n, mean, sample std and half-width of the Student t interval; NaN where undefined."""
    x = values[~np.isnan(values)]
    n = len(x)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan
    std = float(x.std(ddof=1))
    return n, mean, std, _t_quantile(confidence, n - 1) * std / math.sqrt(n)


def summarize(table: pd.DataFrame, kpis: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sample std and Student t confidence interval of each KPI per variant.

    Failed runs (and KPIs that are undefined in a run) are left out of `n`.

    Args:
        table: A sweep table (`SweepResult.table` or sweep.parquet); any numeric column,
            including one you add, can be a KPI.
        kpis: KPI columns; default every network, serviceability, revenue and EV-side KPI.
        confidence: Two-sided confidence level of the interval.

    Returns:
        One row per variant and KPI, in variant order: variant, label, the ``param.*``
        columns, kpi, n, mean, std, half_width, ci_low, ci_high.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence(={confidence}) must be in (0, 1)")
    kpis = list(kpis) if kpis is not None else default_kpis(table)
    missing = [k for k in kpis if k not in table.columns]
    if missing:
        raise ValueError(f"no KPI column {', '.join(missing)}; the table has {', '.join(default_kpis(table))}")
    params = [c for c in table.columns if c.startswith("param.")]
    rows = []
    for variant, group in table.groupby("variant", sort=True):
        first = group.iloc[0]
        for kpi in kpis:
            n, mean, std, half = _interval(group[kpi].to_numpy(dtype=float), confidence)
            rows.append(
                {
                    "variant": variant,
                    "label": first["label"],
                    **{p: first[p] for p in params},
                    "kpi": kpi,
                    "n": n,
                    "mean": mean,
                    "std": std,
                    "half_width": half,
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                }
            )
    return pd.DataFrame(rows)


def paired_difference(
    table: pd.DataFrame, a: str, b: str, kpis: Sequence[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """The difference b − a of each KPI with its confidence interval, paired by seed.

    Replication r of both variants ran on the same seed (common random numbers), so the
    interval is a Student t interval of the per-seed differences; pairs with a failed run
    are left out. The unpaired (Welch) half-width is given beside it, to show what the
    pairing gains.

    Args:
        table: A sweep table.
        a: The reference variant: its id, label or a part of its label only it has.
        b: The variant compared with `a`.
        kpis: KPI columns; default every network, serviceability, revenue and EV-side KPI.
        confidence: Two-sided confidence level.

    Returns:
        One row per KPI: kpi, a, b, n_pairs, mean_a, mean_b, diff_mean, diff_std,
        half_width, ci_low, ci_high, unpaired_half_width, significant (the interval
        excludes 0).
    """
    labels = list(table[["variant", "label"]].drop_duplicates().itertuples(index=False, name=None))
    va, vb = _find_variant(labels, a), _find_variant(labels, b)
    kpis = list(kpis) if kpis is not None else default_kpis(table)
    left = table[table["variant"] == va].set_index("seed")
    right = table[table["variant"] == vb].set_index("seed")
    seeds = left.index.intersection(right.index)
    rows = []
    for kpi in kpis:
        xa = left.loc[seeds, kpi].to_numpy(dtype=float)
        xb = right.loc[seeds, kpi].to_numpy(dtype=float)
        keep = ~(np.isnan(xa) | np.isnan(xb))
        xa, xb = xa[keep], xb[keep]
        n, mean, std, half = _interval(xb - xa, confidence)
        rows.append(
            {
                "kpi": kpi,
                "a": va,
                "b": vb,
                "n_pairs": n,
                "mean_a": float(xa.mean()) if n else math.nan,
                "mean_b": float(xb.mean()) if n else math.nan,
                "diff_mean": mean,
                "diff_std": std,
                "half_width": half,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "unpaired_half_width": _welch_half_width(xa, xb, confidence),
                "significant": bool(n > 1 and (mean - half > 0 or mean + half < 0)),
            }
        )
    return pd.DataFrame(rows)


def _welch_half_width(xa: np.ndarray, xb: np.ndarray, confidence: float) -> float:
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return math.nan
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    if va + vb == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return _t_quantile(confidence, dof) * math.sqrt(va + vb)


def variants_meeting(
    summary: pd.DataFrame, kpi: str, *, at_most: float | None = None, at_least: float | None = None
) -> pd.DataFrame:
    """Rows of `summary` for `kpi` whose whole confidence interval meets the target."""
    rows = summary[summary["kpi"] == kpi]
    keep = np.ones(len(rows), dtype=bool)
    if at_most is not None:
        keep &= (rows["ci_high"] <= at_most).to_numpy()
    if at_least is not None:
        keep &= (rows["ci_low"] >= at_least).to_numpy()
    return rows[keep]
