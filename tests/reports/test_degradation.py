"""Tests for the report's battery degradation section and the pure functions behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reports import render
from reports.compare import compare_runs
from reports.degradation import degradation_section, fade_by_site, sites_table
from sim.config import load_scenario
from sim.engine import simulate
from sim.results import write_results

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> pd.DataFrame:
    """Three sessions at two sites, numbers chosen by hand."""
    return pd.DataFrame(
        {
            "site_id": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]),
            "charged_kwh": [10.0, 30.0, 20.0],
            "discharged_kwh": [0.0, 5.0, 0.0],
            "calendar_fade_kwh": [0.001, 0.002, 0.003],
            "cycle_fade_charging_kwh": [0.002, 0.006, 0.004],
            "cycle_fade_v2g_kwh": [0.0, 0.003, 0.0],
            "fade_kwh": [0.003, 0.011, 0.007],
            "cost": [0.3, 1.1, 0.7],
        }
    )


def test_fade_by_site_sums_the_sessions_most_fade_first() -> None:
    """Site b lost 11 Wh, site a 3 + 7 = 10 Wh: b first; a site without sessions is left out."""
    per_site = fade_by_site(_rows())
    assert per_site.index.tolist() == ["b", "a"]
    assert per_site.loc["a", "calendar_fade_kwh"] == pytest.approx(0.004)
    assert per_site.loc["a", "cycle_fade_charging_kwh"] == pytest.approx(0.006)
    assert per_site.loc["a", "sessions"] == 2
    assert per_site.loc["b", "cycle_fade_v2g_kwh"] == pytest.approx(0.003)
    assert fade_by_site(_rows(), count=1).index.tolist() == ["b"]


def test_sites_table_shows_charging_fade_per_kwh() -> None:
    """Site a: 6 Wh of capacity for 30 kWh charged is 0.200 Wh/kWh; costs in the currency."""
    table = sites_table(fade_by_site(_rows()), {"a": "Alpha"}, "EUR", total_sites=2)
    row = dict(zip(table.headers, table.rows[1], strict=True))
    assert row["Site"] == "a"
    assert row["Name"] == "Alpha"
    assert row["Charging per kWh"] == "0.200 Wh/kWh"
    assert row["Calendar"] == "4.0 Wh"
    assert row["Cost"] == "1.00 EUR"


@pytest.fixture(scope="module")
def ageing_dir(tmp_path_factory) -> Path:
    """battery_ageing.yaml over 2 days, written and rendered."""
    out = tmp_path_factory.mktemp("ageing") / "out"
    write_results(simulate(load_scenario(ROOT / "scenarios" / "battery_ageing.yaml", horizon_days=2)), out)
    render(out)
    return out


@pytest.mark.slow
def test_report_has_the_section_with_the_kpis(ageing_dir: Path) -> None:
    """The section shows kpis.json's total cost and the figure is written."""
    k = json.loads((ageing_dir / "kpis.json").read_text())["degradation"]
    md = (ageing_dir / "report.md").read_text(encoding="utf-8")
    section = md[md.index("## Battery degradation") :]
    assert f"| Cost: total | {k['cost']:,.2f} EUR |" in section
    assert f"| Sessions (EV visits) | {k['sessions']:,} |" in section
    assert (ageing_dir / "degradation.png").is_file()


@pytest.mark.slow
def test_no_section_without_the_kpis(tmp_path: Path) -> None:
    """A run without a degradation section renders no degradation section."""
    out = tmp_path / "out"
    write_results(simulate(load_scenario(ROOT / "scenarios" / "small_city.yaml", horizon_days=1)), out)
    render(out)
    assert "Battery degradation" not in (out / "report.md").read_text(encoding="utf-8")
    assert not (out / "degradation.png").exists()


@pytest.mark.slow
def test_a_missing_table_is_an_error(ageing_dir: Path, tmp_path: Path) -> None:
    """kpis.json with degradation KPIs but no degradation.parquet is refused, naming the file."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kpis.json").write_text((ageing_dir / "kpis.json").read_text())
    with pytest.raises(FileNotFoundError, match="degradation.parquet"):
        degradation_section(broken, {}, "EUR")


@pytest.mark.slow
def test_compare_sets_degradation_beside_revenue(ageing_dir: Path) -> None:
    """`chargetwin compare` lists the degradation KPIs with the revenue ones, so a V2G run meets its baseline."""
    comparison, _ = compare_runs(ageing_dir, ageing_dir)
    names = [kpi for kpi, _, _ in comparison.rows]
    assert "revenue.margin" in names
    assert "degradation.cost_v2g" in names
    k = json.loads((ageing_dir / "kpis.json").read_text())["degradation"]
    assert {kpi: a for kpi, a, _ in comparison.rows}["degradation.cost"] == k["cost"]
