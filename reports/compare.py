"""Two runs side by side: every KPI of A and B, the difference and the change.

Used to set a real backend's run against a built-in manager's run on the same scenario and
seed (`chargetwin compare RUN_A RUN_B`). Reads `kpis.json` and `manifest.json` only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.document import Report, Table, to_html, to_markdown

__all__ = ["SECTIONS", "Comparison", "compare_runs", "flat_kpis"]

SECTIONS = ("network", "revenue", "grid.network", "serviceability", "degradation")  # the network-level KPI sections


def _section(kpis: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    node: Any = kpis
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def flat_kpis(kpis: Mapping[str, Any]) -> dict[str, float | None]:
    """The scalar network-level KPIs of a run as ``section.kpi``, in the file's order."""
    out: dict[str, float | None] = {}
    for section in SECTIONS:
        for name, value in _section(kpis, section).items():
            if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
                out[f"{section}.{name}"] = None if value is None else float(value)
    return out


class Comparison:
    """The compared KPIs and what the two runs were."""

    def __init__(self, rows: list[tuple[str, float | None, float | None]], manifests: tuple[dict, dict]) -> None:
        """Rows of ``(kpi, a, b)``; the two manifests."""
        self.rows = rows
        self.manifests = manifests

    @property
    def same_arrivals(self) -> bool:
        """Whether both runs are of the same scenario, seed, start and horizon (so the same drivers arrive)."""
        keys = ("scenario", "seed", "start", "horizon_days")
        a, b = self.manifests
        return all(a.get(k) == b.get(k) for k in keys)

    def table(self) -> Table:
        """KPI, A, B, B − A and the relative change."""
        rows = []
        for kpi, a, b in self.rows:
            diff = b - a if a is not None and b is not None else None
            change = diff / abs(a) if diff is not None and a not in (None, 0.0) else None
            pct = f"{change:+.1%}" if change is not None else "–"
            rows.append((kpi, _fmt(a), _fmt(b), _fmt(diff, signed=True), pct))
        return Table("KPIs", ("KPI", "A", "B", "B − A", "change"), rows)


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "–"
    text = f"{value:+,.4g}" if signed else f"{value:,.4g}"
    if abs(value) >= 1e4:
        text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
    return text


def _read(folder: Path) -> tuple[dict, dict]:
    try:
        kpis = json.loads((folder / "kpis.json").read_text(encoding="utf-8"))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{folder}: not a readable results folder ({exc}); give folders `chargetwin run` wrote"
        ) from None
    return kpis, manifest


def compare_runs(run_a: Path, run_b: Path, out_dir: Path | None = None) -> tuple[Comparison, Path | None]:
    """Compare two results folders; with `out_dir`, write comparison.md and comparison.html there.

    Raises:
        ValueError: a folder is missing or is not a results folder.
    """
    (ka, ma), (kb, mb) = _read(Path(run_a)), _read(Path(run_b))
    fa, fb = flat_kpis(ka), flat_kpis(kb)
    names = list(fa) + [k for k in fb if k not in fa]
    comparison = Comparison([(k, fa.get(k), fb.get(k)) for k in names], (ma, mb))
    if out_dir is None:
        return comparison, None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    describe = [f"{m.get('scenario')} seed {m.get('seed')} manager {m.get('manager')}" for m in (ma, mb)]
    line = f"A: {run_a} ({describe[0]}); B: {run_b} ({describe[1]})."
    if not comparison.same_arrivals:
        line += " The runs differ in scenario, seed, start or horizon: their drivers differ too."
    report = Report("Run comparison", line, [comparison.table()], [])
    (out_dir / "comparison.md").write_text(to_markdown(report).replace("## Figures\n\n", ""), encoding="utf-8")
    (out_dir / "comparison.html").write_text(to_html(report).replace("<h2>Figures</h2>\n", ""), encoding="utf-8")
    return comparison, out_dir
