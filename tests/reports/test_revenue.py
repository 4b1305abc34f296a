"""Tests for the report's revenue section and the pure functions behind its figures."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reports import render
from reports.revenue_figures import (
    NO_REVENUE_NOTE,
    OLD_FOLDER_NOTE,
    REVENUE_FIGURES,
    bin_hours,
    mean_in_use,
    ports_in_use,
    price_steps,
    waterfall_figure,
    waterfall_steps,
)
from sim.config import load_scenario
from sim.engine import simulate
from sim.results import write_results
from sim.revenue_metrics import COMPONENTS
from sim.sweep import load_sweep
from tests.conftest import BASE, make_scenario
from tests.reports.test_grid import GRID_FIGURES
from tests.reports.test_report import FIGURES
from tests.reports.test_report import write_results as write_old_results
from tests.reports.test_serviceability import SERVICE_FIGURES

ROOT = Path(__file__).resolve().parents[2]
NAN = float("nan")
# Site a (the conftest site, AC and a shared DC charger) and a second site b 1.3 km away, with AC and one
# DC charger too (drivers choose only among sites offering the same kind of charging).
SITE_B = {
    "id": "b",
    "lat": 52.01,
    "lon": 4.01,
    "capacity_kw": 50.0,
    "chargers": [
        {"model": "ac", "count": 2, "connectors": 2, "power_kw": 11.0, "current": "ac"},
        {"model": "dc", "count": 1, "power_kw": 50.0, "current": "dc"},
    ],
}
DEMAND = [
    {
        "kind": "synthetic",
        "site": "a",
        "rate": {"kind": "constant", "per_hour": 1.5},
        "dwell_min": {"dist": "lognormal", "median": 60, "sigma": 0.5},
        "patience_min": 5,
        "max_queue": 2,
    },
    {
        "kind": "synthetic",
        "site": "b",
        "rate": {"kind": "constant", "per_hour": 1.0},
        "dwell_min": {"dist": "lognormal", "median": 120, "sigma": 0.5},
    },
]
TOU_TARIFF = {
    "price_per_kwh": 0.5,
    "session_fee": 0.3,
    "idle_fee_per_min": 0.1,
    "idle_grace_min": 10,
    "idle_only_when_busy": True,
    "periods": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00", "end": "21:00", "price_per_kwh": 0.7},
        {"start": "23:00", "end": "06:00", "price_per_kwh": 0.35},
    ],
}
# Everything the revenue engine has: time of use, an idle fee only when busy, occupancy pricing at
# site a, repeat drivers who choose sites and answer prices, a plan with loyalty, two payment
# methods, grid energy and demand costs and a fault mode that makes maintenance cost money. Plans
# are first reviewed 30 days after a driver's first session, so the run needs more than 30 days;
# two small sites keep it under a second.
REVENUE_RUN: dict[str, Any] = {
    "horizon_days": 35,
    "network": {"sites": [copy.deepcopy(BASE["network"]["sites"][0]), SITE_B]},
    "demand": DEMAND,
    "tariff": TOU_TARIFF,
    "pricing": {"kind": "occupancy", "interval_min": 30, "floor_per_kwh": 0.4, "ceiling_per_kwh": 0.8, "sites": ["a"]},
    "drivers": {
        "population": 25,
        "site_choice": {"radius_km": 5},
        "price_response": {
            "reference_price_per_kwh": 0.5,
            "shift_share": 0.5,
            "willingness_to_pay_per_kwh": {"dist": "lognormal", "median": 0.75, "sigma": 0.25},
        },
    },
    "memberships": [
        {
            "name": "plus",
            "monthly_fee": 4.99,
            "discount": {"energy_frac": 0.3, "session_fee_frac": 1.0},
            "loyalty": {"kind": "every_nth", "n": 3, "discount_frac": 0.5},
        }
    ],
    "payments": {
        "methods": [
            {"method": "app", "share": 2, "fee_pct": 1.5, "fee_fixed": 0.05, "failure_prob": 0.02},
            {"method": "contactless", "share": 1, "fee_pct": 2.9, "fee_fixed": 0.25, "preauth_hold": 50},
        ]
    },
    "grid": {"energy_price": {"kind": "flat", "per_kwh": 0.2237}, "demand_charge_per_kw_month": 3.3},
    "serviceability": {
        "fault_modes": {
            "flaky": {
                "error_code": "InternalError",
                "ttf": {"dist": "exponential", "mtbf_days": 4},
                "detected": True,
                "scope": "charger",
                "repair_min": 45,
                "part_cost": 35.5,
            }
        },
        "hardware": {"ac": ["flaky"], "dc": ["flaky"]},
        "crews": [{"id": "c", "depot": {"lat": 52.0, "lon": 4.0}}],
    },
}


def _run(folder: Path, **changes: Any) -> dict[str, Any]:
    """Simulate a scenario and write its results and report as `chargetwin run` does; return its KPIs."""
    return write_results(simulate(make_scenario(**changes)), folder, finish=render)


def _cents(value: float) -> int:
    return round(value * 100)


@pytest.fixture(scope="module")
def revenue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of ``REVENUE_RUN``, with its report."""
    folder = tmp_path_factory.mktemp("revenue") / "run"
    _run(folder, **REVENUE_RUN)
    return folder


@pytest.mark.slow
def test_the_run_exercises_every_part_of_revenue(revenue_dir: Path) -> None:
    """Time of use, dynamic prices, idle fees, members, loyalty, payments, price answers and maintenance all show."""
    kpis = json.loads((revenue_dir / "kpis.json").read_text(encoding="utf-8"))["revenue"]
    sessions = pd.read_parquet(revenue_dir / "sessions.parquet")
    tariffs = pd.read_parquet(revenue_dir / "tariffs.parquet")
    assert {0.35, 0.7} <= set(sessions["price_per_kwh"].dropna().round(2))  # both time-of-use periods
    assert (tariffs["site_id"] == "a").sum() > 10  # occupancy pricing at site a
    b = tariffs[tariffs["site_id"] == "b"]
    assert set(b["price_per_kwh"].round(2)) == {0.35, 0.5, 0.7}  # b is not priced dynamically: time of use only
    assert kpis["components"]["idle_charge"] > 0
    for key in ("member_discount", "loyalty_discount", "membership_fees", "payment_fees", "energy_cost"):
        assert kpis[key] > 0, key
    for key in ("demand_charge", "maintenance_cost", "sessions_priced_out", "sessions_shifted", "sessions_detoured"):
        assert kpis[key] > 0, key
    assert kpis["payment_failures"] > 0
    assert kpis["members_at_end"] > 0


@pytest.mark.slow
def test_section_has_three_tables_and_four_figures(revenue_dir: Path) -> None:
    """The report gets a revenue section before serviceability and grid, with its tables and embedded figures."""
    text = (revenue_dir / "report.md").read_text(encoding="utf-8")
    html = (revenue_dir / "report.html").read_text(encoding="utf-8")
    kpis = json.loads((revenue_dir / "kpis.json").read_text(encoding="utf-8"))["revenue"]
    assert "\n## Revenue\n\n### Revenue KPIs\n" in text
    assert text.index("\n## Revenue\n") < text.index("\n## Serviceability\n") < text.index("\n## Grid\n")
    for label, key in (("Gross (list price after minimum and maximum)", "gross"), ("Revenue", "revenue")):
        assert f"| {label} | {kpis[key]:,.2f} EUR |" in text
    assert f"| Margin | {kpis['margin']:,.2f} EUR |" in text
    assert f"| Members at the end | {kpis['members_at_end']:,} |" in text
    assert f"| Idle fees | {kpis['components']['idle_charge']:,.2f} EUR |" in text
    assert "### Gross by component" in text
    assert re.search(r"\n\| a \|  \| [\d,.]+ EUR \|", text[text.index("### Revenue per site") :])
    for name in REVENUE_FIGURES:
        assert f"]({name})" in text
        assert (revenue_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    embedded = len(FIGURES) + len(REVENUE_FIGURES) + len(SERVICE_FIGURES) + len(GRID_FIGURES)
    assert html.count('src="data:image/png;base64,') == embedded
    assert "<h2>Revenue</h2>\n<h3>Revenue KPIs</h3>" in html
    assert NO_REVENUE_NOTE not in text
    assert OLD_FOLDER_NOTE not in text


@pytest.mark.slow
def test_waterfall_sums_to_the_margin_to_the_cent(revenue_dir: Path) -> None:
    """Each waterfall bar is its definition from the run's tables, and the bars add up to kpis.json's margin."""
    kpis = json.loads((revenue_dir / "kpis.json").read_text(encoding="utf-8"))
    sessions = pd.read_parquet(revenue_dir / "sessions.parquet")
    invoices = pd.read_parquet(revenue_dir / "invoices.parquet")
    invoiced = invoices[invoices["action"] != "leave"]

    def total(frame: pd.DataFrame, column: str) -> int:
        return int(np.round(frame[column].to_numpy() * 100).astype(np.int64).sum())

    definitions = {
        "gross": sum(total(sessions, c) for c in COMPONENTS),
        "member_discount": -total(sessions, "member_discount"),
        "loyalty_discount": -total(sessions, "loyalty_discount"),
        "payment_fees": -(total(sessions, "payment_fee") + total(invoiced, "payment_fee")),
        "membership_fees": total(invoiced, "amount"),
        "energy_cost": -_cents(kpis["grid"]["network"]["energy_cost"]),
        "demand_charge": -_cents(kpis["grid"]["network"]["demand_charge"]),
        "maintenance_cost": -_cents(kpis["serviceability"]["maintenance_cost"]),
    }
    steps = waterfall_steps(kpis["revenue"])
    assert steps["label"].tolist() == [
        "gross",
        "member discounts",
        "loyalty discounts",
        "payment fees",
        "membership fees",
        "revenue",
        "energy cost",
        "demand charges",
        "maintenance",
        "margin",
    ]
    amount_cents = {key: _cents(amount) for key, amount in zip(steps["key"], steps["amount"], strict=True)}
    for key, cents in definitions.items():
        assert amount_cents[key] == cents, key
    # Revenue: the session amounts (gross less discounts) plus fees less payment fees.
    assert amount_cents["revenue"] == sum(definitions[k] for k in list(definitions)[:5])
    assert _cents(kpis["revenue"]["session_amounts"]) == total(sessions, "amount_charged")
    assert amount_cents["revenue"] == _cents(kpis["revenue"]["revenue"])
    # Margin: every bar before it, from gross down, to the cent.
    assert sum(cents for key, cents in amount_cents.items() if key not in ("revenue", "margin")) == _cents(
        kpis["revenue"]["margin"]
    )
    assert amount_cents["margin"] == _cents(kpis["revenue"]["margin"])
    # The drawn bars are the steps: each floats from the previous bar's end, totals stand on zero.
    bars = waterfall_figure(steps, "EUR").axes[0].patches
    assert len(bars) == len(steps)
    for bar, start, end in zip(bars, steps["start"], steps["end"], strict=True):
        assert sorted([bar.get_y(), bar.get_y() + bar.get_height()]) == pytest.approx(sorted([start, end]))
    assert bars[-1].get_y() == 0.0
    assert bars[-1].get_height() == pytest.approx(kpis["revenue"]["margin"])


@pytest.mark.slow
def test_revenue_pngs_are_byte_identical_across_renders(revenue_dir: Path, tmp_path: Path) -> None:
    """Rendering the same results again gives the same revenue figures and report."""
    again = tmp_path / "again"
    shutil.copytree(revenue_dir, again)
    render(again)
    for name in (*REVENUE_FIGURES, "report.md", "report.html"):
        assert (again / name).read_bytes() == (revenue_dir / name).read_bytes(), name


def test_old_folder_gets_one_sentence_and_no_figures(tmp_path: Path) -> None:
    """A folder from before revenue results renders as before, with a sentence where the section would be."""
    write_old_results(tmp_path)
    render(tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "\n## Revenue\n\n### Revenue KPIs\n" in text
    assert OLD_FOLDER_NOTE in text
    assert "### Gross by component" not in text
    assert not any((tmp_path / name).exists() for name in REVENUE_FIGURES)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(FIGURES)


@pytest.mark.slow
def test_revenue_kpis_without_tariffs_table_is_an_error(revenue_dir: Path, tmp_path: Path) -> None:
    """Revenue KPIs without tariffs.parquet fail loudly instead of dropping the section."""
    broken = tmp_path / "broken"
    shutil.copytree(revenue_dir, broken)
    (broken / "tariffs.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"tariffs\.parquet"):
        render(broken)


@pytest.mark.slow
def test_zero_tariff_keeps_the_tables_and_the_cost_waterfall(tmp_path: Path) -> None:
    """A free run shows the KPI tables with a sentence, and the waterfall only because energy still costs money."""
    free, costly = tmp_path / "free", tmp_path / "costly"
    _run(free, horizon_days=1, tariff={})
    kpis = _run(costly, horizon_days=1, tariff={}, grid={"energy_price": {"kind": "flat", "per_kwh": 0.25}})
    for folder in (free, costly):
        text = (folder / "report.md").read_text(encoding="utf-8")
        assert "| Revenue | 0.00 EUR |" in text
        assert NO_REVENUE_NOTE in text
        for name in REVENUE_FIGURES[1:]:
            assert not (folder / name).exists(), name
    assert not (free / "revenue_waterfall.png").exists()
    assert (costly / "revenue_waterfall.png").is_file()
    assert kpis["revenue"]["margin"] < 0
    assert f"| Margin | {kpis['revenue']['margin']:,.2f} EUR |" in (costly / "report.md").read_text(encoding="utf-8")


def test_waterfall_steps_of_hand_numbers() -> None:
    """Steps float from the running total, totals stand on zero, and a zero cost is +0.0, not -0.0."""
    kpis = {
        "gross": 100.0,
        "member_discount": 10.0,
        "loyalty_discount": 2.5,
        "payment_fees": 1.5,
        "membership_fees": 4.0,
        "revenue": 90.0,
        "energy_cost": 50.0,
        "demand_charge": 45.0,
        "maintenance_cost": 0.0,
        "margin": -5.0,
    }
    steps = waterfall_steps(kpis)
    assert list(steps.itertuples(index=False, name=None)) == [
        ("gross", "gross", "total", 100.0, 0.0, 100.0),
        ("member_discount", "member discounts", "step", -10.0, 100.0, 90.0),
        ("loyalty_discount", "loyalty discounts", "step", -2.5, 90.0, 87.5),
        ("payment_fees", "payment fees", "step", -1.5, 87.5, 86.0),
        ("membership_fees", "membership fees", "step", 4.0, 86.0, 90.0),
        ("revenue", "revenue", "total", 90.0, 0.0, 90.0),
        ("energy_cost", "energy cost", "step", -50.0, 90.0, 40.0),
        ("demand_charge", "demand charges", "step", -45.0, 40.0, -5.0),
        ("maintenance_cost", "maintenance", "step", 0.0, -5.0, -5.0),
        ("margin", "margin", "total", -5.0, 0.0, -5.0),
    ]
    negative = [True, True, True, False, False, True, True, False, True]
    assert np.signbit(steps["amount"].to_numpy()).tolist() == [False, *negative]
    figure = waterfall_figure(steps, "EUR")
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert labels == ["100.00", "-10.00", "-2.50", "-1.50", "+4.00", "90.00", "-50.00", "-45.00", "0.00", "-5.00"]
    assert figure.axes[0].get_ylim()[0] < -5.0


def test_ports_in_use_counts_plug_ins_and_departures() -> None:
    """+1 at a plug-in, -1 at a departure, ties netted, ongoing to the horizon, never plugged in skipped, clipped."""
    plug = [3600.0, 3600.0, 7200.0, NAN, -600.0, 9000.0]
    departure = [7200.0, 10800.0, NAN, NAN, 1800.0, 12000.0]
    t_s, count = ports_in_use(plug, departure, 10800.0)
    assert t_s.tolist() == [0.0, 1800.0, 3600.0, 7200.0, 9000.0, 10800.0]
    # 0: the one plugged in before the start; 7200: one leaves as one arrives; 10800: the horizon.
    assert count.tolist() == [1, 0, 2, 2, 3, 0]
    empty_t_s, empty = ports_in_use([], [], 3600.0)
    assert empty_t_s.tolist() == [0.0, 3600.0]
    assert empty.tolist() == [0, 0]


def test_mean_in_use_integrates_the_steps_per_bin() -> None:
    """Bin means are exact time-weighted means of the step function; the last bin stops at the horizon."""
    t_s = np.array([0.0, 1800.0, 3600.0, 5400.0, 9000.0])
    count = np.array([2, 0, 3, 1, 0])
    starts, mean = mean_in_use(t_s, count, 3600.0, 9000.0)
    assert starts.tolist() == [0.0, 3600.0, 7200.0]
    assert mean.tolist() == pytest.approx([1.0, 2.0, 1.0])  # (2·30 + 0·30) / 60; (3·30 + 1·30) / 60; 1 over 30 min


def test_bin_hours_keeps_at_most_the_bins_asked_for() -> None:
    """An hour for a week, longer bins as runs grow, whole days for years."""
    assert bin_hours(7 * 86400.0) == 1.0
    assert bin_hours(30 * 86400.0) == 2.0
    assert bin_hours(91 * 86400.0) == 4.0
    assert bin_hours(365 * 86400.0) == 24.0
    assert bin_hours(3660 * 86400.0) == 7 * 24.0


def test_price_steps_sort_times_and_keep_the_last_change() -> None:
    """A site's prices in time order; two changes at one time leave the later row."""
    tariffs = pd.DataFrame(
        {
            "t_s": [0.0, 0.0, 900.0, 1800.0, 900.0, 900.0],
            "site_id": pd.Categorical(["a", "b", "a", "a", "b", "a"]),
            "price_per_kwh": [0.5, 0.4, 0.6, 0.55, 0.45, 0.65],
        }
    )
    t_s, price = price_steps(tariffs, "a")
    assert t_s.tolist() == [0.0, 900.0, 1800.0]
    assert price.tolist() == [0.5, 0.65, 0.55]
    assert price_steps(tariffs, "zz")[0].size == 0


def test_sweep_compares_exactly_the_two_scenario_files() -> None:
    """pricing_designs v000 is pricing_flat.yaml and v003 is pricing_tou_membership.yaml, but for name and seed."""
    plan = load_sweep(ROOT / "scenarios" / "sweeps" / "pricing_designs.yaml")
    assert [v.id for v in plan.variants] == ["v000", "v001", "v002", "v003"]
    assert plan.spec.compare == ("v000", "v003")
    skip = {"name", "seed"}
    for vid, file in (("v000", "pricing_flat.yaml"), ("v003", "pricing_tou_membership.yaml")):
        scenario = load_scenario(ROOT / "scenarios" / file)
        expected = scenario.model_dump(mode="json", exclude=skip)
        assert plan.variant(vid).scenario.model_dump(mode="json", exclude=skip) == expected, file
