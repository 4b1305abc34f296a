"""Tests for the report's grid section and the pure functions behind its figures and tables."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports import render
from reports.figures import png_bytes
from reports.grid_figures import dr_windows, grid_load_figure, load_heatmap, load_heatmap_figure, shows_grid_import
from reports.kpi_tables import MAX_DR_EVENTS, dr_events_table, grid_sites_table
from tests.reports.test_report import FIGURES, START, write_results
from tests.reports.test_serviceability import SERVICE_FIGURES, write_service_results

GRID_FIGURES = ("grid_load.png", "load_heatmap.png")
NAN = float("nan")
# S1: a 100 kW transformer behind its 150 kW connection, 20 kW of PV 10:00-14:00 and a 60 kW
# demand-response cap 18:00-18:30; S2: no limit but its connection, no PV, no events.
S1_PV = (36000.0, 50400.0, 20.0)
S1_DR = (64800.0, 66600.0, 60.0)
DR_COLUMNS = [
    "event_id",
    "site_id",
    "notify_t_s",
    "start_t_s",
    "end_t_s",
    "cap_kw",
    "opt_out_allowed",
    "max_kw",
    "mean_grid_kw",
    "compliance_pct",
]


def _dr_events(rows: list[tuple]) -> pd.DataFrame:
    events = pd.DataFrame(rows, columns=DR_COLUMNS)
    return events.astype(
        {
            "event_id": np.int64,
            "site_id": str,
            "opt_out_allowed": bool,
            **{c: float for c in DR_COLUMNS if c.endswith(("_s", "_kw", "_pct"))},
        }
    )


def _grid_kpis(dr_events: int) -> dict[str, object]:
    with_dr = dr_events > 0
    site_s1 = {
        "load_factor": 0.4,
        "grid_peak_kw": 100.0,
        "overload_minutes": 0.0,
        "overload_max_excess_kw": 0.0,
        "grid_import_kwh": 900.0,
        "energy_cost": 150.0,
        "demand_charge": 60.0,
        "pv_generation_kwh": 80.0,
        "pv_self_consumption": 0.75,
        "storage_discharged_kwh": 30.0,
        "storage_cycles": 1.5,
        "dr_events": dr_events,
        "dr_compliance_pct": 50.0 if with_dr else None,
        "dr_opted_out": 0,
    }
    site_s2 = {
        "load_factor": 0.5,
        "grid_peak_kw": 300.0,
        "overload_minutes": 45.0,
        "overload_max_excess_kw": 12.5,
        "grid_import_kwh": 334.5,
        "energy_cost": 60.0,
        "demand_charge": 39.5,
        "pv_generation_kwh": 0.0,
        "pv_self_consumption": None,
        "storage_discharged_kwh": 0.0,
        "dr_events": 0,
        "dr_compliance_pct": None,
        "dr_opted_out": 0,
    }
    network = {
        "grid_import_kwh": 1234.5,
        "energy_cost": 210.0,
        "demand_charge": 99.5,
        "pv_generation_kwh": 80.0,
        "grid_peak_kw": 420.0,
        "overload_minutes": 45.0,
        "overload_max_excess_kw": 12.5,
        "unmet_energy_kwh": 3.25,
        "unmet_sessions_share": 0.125,
        "dr_events": dr_events,
        "dr_compliance_pct": 50.0 if with_dr else None,
        "dr_opted_out": 0,
    }
    return {"network": network, "sites": {"S1": site_s1, "S2": site_s2}}


def add_grid_results(results_dir: Path, *, with_dr: bool = True, with_key: bool = True) -> None:
    """Add the grid columns to load.parquet, write dr_events.parquet and, if ``with_key``, kpis.json's "grid"."""
    load = pd.read_parquet(results_dir / "load.parquet")
    t_s = load["t_s"].to_numpy()
    s1 = (load["site_id"] == "S1").to_numpy()
    pv_kw = np.where(s1 & (t_s >= S1_PV[0]) & (t_s < S1_PV[1]), S1_PV[2], 0.0)
    in_dr = with_dr & s1 & (t_s >= S1_DR[0]) & (t_s < S1_DR[1])
    load["limit_kw"] = np.where(s1, 100.0, load["capacity_kw"])
    load["dr_cap_kw"] = np.where(in_dr, S1_DR[2], NAN)
    load["price_per_kwh"] = 0.25
    load["pv_kw"] = pv_kw
    load["storage_kw"] = 0.0
    load["storage_energy_kwh"] = NAN
    load["grid_kw"] = load["power_kw"] - pv_kw
    load.to_parquet(results_dir / "load.parquet")
    rows = [(0, "S1", S1_DR[0] - 3600.0, S1_DR[0], S1_DR[1], S1_DR[2], False, 55.5, 12.3, 50.0)] if with_dr else []
    _dr_events(rows).to_parquet(results_dir / "dr_events.parquet")
    if with_key:
        kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
        kpis["grid"] = _grid_kpis(len(rows))
        (results_dir / "kpis.json").write_text(json.dumps(kpis), encoding="utf-8")


def write_grid_results(results_dir: Path, *, with_dr: bool = True, with_key: bool = True) -> None:
    """The synthetic results folder of test_report with grid results added."""
    write_results(results_dir)
    add_grid_results(results_dir, with_dr=with_dr, with_key=with_key)


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic results folder with grid results, rendered once."""
    folder = tmp_path_factory.mktemp("grid")
    write_grid_results(folder)
    render(folder)
    return folder


@pytest.mark.slow
def test_section_has_tables_and_two_embedded_figures(grid_dir: Path) -> None:
    """With grid results the report gets the section, its three tables and its two figures."""
    text = (grid_dir / "report.md").read_text(encoding="utf-8")
    html = (grid_dir / "report.html").read_text(encoding="utf-8")
    assert "\n## Grid\n\n### Grid KPIs\n" in text
    for row in (
        "| Grid import | 1.23 MWh |",
        "| Energy cost | 210.00 EUR |",
        "| Demand charge | 99.50 EUR |",
        "| Grid peak (network) | 420.0 kW |",
        "| Unmet energy of served sessions | 3.2 kWh |",
        "| Served sessions short of their request | 12.5 % |",
        "| PV generation | 80.0 kWh |",
        "| Demand-response events | 1 |",
        "| Demand-response compliance, mean of events held | 50.0 % |",
        "| Demand-response events opted out | 0 |",
        "| Overload above site limits (15-minute intervals) | 45 min |",
        "| Worst overload excess | 12.5 kW |",
        "| S1 | Central | 40.0 % | 100.0 kW | 0 | 0.0 kW | 150.00 EUR | 60.00 EUR | 75.0 % | 1.5 | 50.0 % |",
        "| S2 | Depot | 50.0 % | 300.0 kW | 45 | 12.5 kW | 60.00 EUR | 39.50 EUR | – | – | – |",
        "| S1 | Mon 2026-01-05 18:00 | 0:30 | 60.0 kW | 55.5 kW | 12.3 kW | 50.0 % |",
    ):
        assert row in text, row
    assert "| Site | Start (UTC+01:00) | Duration (h:mm) | Cap | Max EV load | Mean grid import | Compliance |" in text
    assert "Mean network EV load by day and hour of day (UTC+01:00)" in text
    for name in GRID_FIGURES:
        assert f"]({name})" in text
        assert (grid_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert html.count('src="data:image/png;base64,') == len(FIGURES) + len(GRID_FIGURES)
    assert "<h2>Grid</h2>\n<h3>Grid KPIs</h3>" in html
    assert re.findall(r'(?:src|href)="(?!data:)', html) == []


@pytest.mark.slow
def test_section_follows_a_report_identical_to_older_results(tmp_path: Path) -> None:
    """Grid tables without kpis.json's key render byte for byte as before; with the key the section is appended."""
    plain, without_key, with_grid = tmp_path / "plain", tmp_path / "without_key", tmp_path / "with_grid"
    for folder in (plain, without_key, with_grid):
        folder.mkdir()
    write_results(plain)
    write_grid_results(without_key, with_key=False)
    write_grid_results(with_grid)
    for folder in (plain, without_key, with_grid):
        render(folder)
    for name in ("report.md", "report.html", *FIGURES):
        assert (plain / name).read_bytes() == (without_key / name).read_bytes(), name
    for name in FIGURES:
        assert (plain / name).read_bytes() == (with_grid / name).read_bytes(), name
    base = (plain / "report.md").read_text(encoding="utf-8")
    assert "Grid" not in base
    with_box = (with_grid / "report.md").read_text(encoding="utf-8")
    line = (
        "> - grid limit exceeded at 1 site (15-minute import above the connection or transformer):"
        " S2 45 min, worst +12.5 kW\n"
    )
    assert line in with_box  # site S2's overload joins the warnings box
    without_box = with_box.replace(line, "")
    assert without_box.startswith(base + "\n## Grid\n")
    assert not any((plain / name).exists() or (without_key / name).exists() for name in GRID_FIGURES)


@pytest.mark.slow
def test_grid_section_comes_after_serviceability(tmp_path: Path) -> None:
    """A run with both gets the serviceability section first and the grid section last, with all figures."""
    write_service_results(tmp_path)
    add_grid_results(tmp_path)
    render(tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.index("\n## Serviceability\n") < text.index("\n## Grid\n")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(FIGURES) + len(SERVICE_FIGURES) + len(GRID_FIGURES)


@pytest.mark.slow
def test_no_events_table_without_events(tmp_path: Path) -> None:
    """With zero demand-response events the events table is left out and the mean compliance is a dash."""
    write_grid_results(tmp_path, with_dr=False)
    render(tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| Demand-response events | 0 |" in text
    assert "| Demand-response compliance, mean of events held | – |" in text
    assert "### Demand-response events" not in text
    assert all((tmp_path / name).is_file() for name in GRID_FIGURES)


def test_missing_dr_events_table_is_an_error(tmp_path: Path) -> None:
    """Grid KPIs without dr_events.parquet fail loudly instead of dropping the section."""
    write_grid_results(tmp_path)
    (tmp_path / "dr_events.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"dr_events\.parquet"):
        render(tmp_path)


def test_missing_load_column_is_an_error(tmp_path: Path) -> None:
    """Grid KPIs with a load.parquet lacking the grid columns name the missing ones."""
    write_grid_results(tmp_path)
    load = pd.read_parquet(tmp_path / "load.parquet")
    load.drop(columns=["grid_kw", "limit_kw"]).to_parquet(tmp_path / "load.parquet")
    with pytest.raises(ValueError, match="limit_kw, grid_kw"):
        render(tmp_path)


@pytest.mark.slow
def test_grid_pngs_are_byte_identical_across_renders(tmp_path: Path) -> None:
    """Rendering the same grid results twice gives the same bytes."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        write_grid_results(folder)
        render(folder)
    for name in (*FIGURES, *GRID_FIGURES, "report.md", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_dr_windows_are_runs_of_one_cap() -> None:
    """Consecutive intervals with one cap make a window; a NaN, a time gap or a new cap starts another."""
    load = pd.DataFrame(
        {
            "site_id": pd.Categorical(["B", "A", "A", "A", "A", "A", "A", "B", "B"]),
            "t_s": [1800.0, 0.0, 900.0, 1800.0, 2700.0, 3600.0, 4500.0, 0.0, 900.0],
            "dr_cap_kw": [40.0, NAN, 50.0, 50.0, 30.0, NAN, 50.0, 40.0, NAN],
        }
    )
    windows = dr_windows(load)
    assert windows.columns.tolist() == ["site_id", "start_t_s", "end_t_s", "cap_kw"]
    assert list(windows.itertuples(index=False, name=None)) == [
        ("A", 900.0, 2700.0, 50.0),
        ("A", 2700.0, 3600.0, 30.0),
        ("A", 4500.0, 5400.0, 50.0),
        ("B", 0.0, 900.0, 40.0),  # B at 900 s has no cap, so 1800 s starts a new window
        ("B", 1800.0, 2700.0, 40.0),
    ]
    assert dr_windows(load.assign(dr_cap_kw=NAN)).empty


def test_load_heatmap_sums_sites_and_averages_local_hours() -> None:
    """Sites are summed per interval, intervals averaged per local hour; rows are local dates from the start's."""
    start = dt.datetime.fromisoformat("2026-01-05T23:00:00+01:00")
    load = pd.DataFrame(
        {
            "site_id": ["A"] * 7 + ["B"] * 2,
            "t_s": [0.0, 900.0, 1800.0, 2700.0, 3600.0, 4500.0, 90000.0, 0.0, 3600.0],
            "power_kw": [4.0, 8.0, 0.0, 0.0, 10.0, 10.0, 7.0, 2.0, 6.0],
        }
    )
    mean_kw, days_per_row = load_heatmap(load, start)
    expected = np.full((3, 24), np.nan)
    expected[0, 23] = (6.0 + 8.0 + 0.0 + 0.0) / 4  # Mon 23:00-24:00
    expected[1, 0] = (16.0 + 10.0) / 2  # Tue 00:00-00:30, all the hour has
    expected[2, 0] = 7.0  # 25 h after the start: Wed 00:00
    assert days_per_row == 1
    np.testing.assert_array_equal(mean_kw, expected)


def test_load_heatmap_of_two_full_days() -> None:
    """Two days from local midnight give two full rows of each hour's mean."""
    start = dt.datetime.fromisoformat(START)
    t_s = np.arange(0.0, 2 * 86400.0, 900.0)
    power_kw = np.where(t_s % 3600.0 == 0.0, 4.0, 0.0) + np.where(t_s >= 86400.0, 1.0, 0.0)
    mean_kw, days_per_row = load_heatmap(pd.DataFrame({"site_id": "A", "t_s": t_s, "power_kw": power_kw}), start)
    assert days_per_row == 1
    np.testing.assert_array_equal(mean_kw, np.array([[1.0] * 24, [2.0] * 24]))


def test_load_heatmap_is_weekly_beyond_max_days() -> None:
    """Past ``max_days`` days a row is a week since the start's date: days 0-6, then 7 on."""
    start = dt.datetime.fromisoformat(START)
    days = np.arange(10)
    load = pd.DataFrame({"site_id": "A", "t_s": days * 86400.0 + 12 * 3600.0, "power_kw": days.astype(float)})
    mean_kw, days_per_row = load_heatmap(load, start, max_days=8)
    assert days_per_row == 7
    assert mean_kw.shape == (2, 24)
    assert mean_kw[0, 12] == 3.0
    assert mean_kw[1, 12] == 8.0
    assert np.isnan(np.delete(mean_kw, 12, axis=1)).all()
    assert load_heatmap(load, start, max_days=10)[1] == 1
    figure = load_heatmap_figure(mean_kw, days_per_row, start.date(), "UTC+01:00")
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["05 Jan 2026", "12 Jan 2026"]


def test_grid_load_figure_draws_what_each_site_has() -> None:
    """Grid import only where it differs, a connection line only where it is not the limit, one span per window."""
    t_s = np.arange(4) * 900.0
    load = pd.DataFrame(
        {
            "site_id": ["PV"] * 4 + ["PLAIN"] * 4,
            "t_s": np.concatenate([t_s, t_s]),
            "power_kw": [10.0, 20.0, 30.0, 40.0] * 2,
            "capacity_kw": [54.0] * 4 + [50.0] * 4,
            "limit_kw": [50.0] * 8,
            "dr_cap_kw": [NAN, 25.0, 25.0, NAN] + [NAN] * 4,
            "grid_kw": [10.0, 20.0, 30.0, 20.0, 10.0, 20.0, 30.0, 40.0],
        }
    )
    assert shows_grid_import(load[load["site_id"] == "PV"])
    assert not shows_grid_import(load[load["site_id"] == "PLAIN"])
    figure = grid_load_figure(load, dr_windows(load), ["PV", "PLAIN"], {"PV": "Solar"})
    with_pv, plain = figure.axes[:2]
    assert [line.get_label() for line in with_pv.lines] == ["EV load", "grid import", "site limit", "connection"]
    assert [line.get_label() for line in plain.lines] == ["EV load", "site limit"]
    assert len(with_pv.patches) == 1
    assert not plain.patches
    assert with_pv.get_title(loc="left") == "PV Solar"
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "EV load",
        "grid import",
        "site limit",
        "connection",
        "DR window",
        "DR cap",
    ]
    far = grid_load_figure(load.assign(capacity_kw=400.0), dr_windows(load), ["PV"], {})
    assert far.axes[0].get_title(loc="left") == "PV · connection 400 kW, above the axis"
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_dr_events_table_is_sorted_local_and_capped() -> None:
    """Events earliest first with local start times and h:mm durations; beyond the cap a note counts the rest."""
    start = dt.datetime.fromisoformat("2026-06-01T00:00:00+02:00")
    rows = [(1, "B", 0.0, 90000.0, 95400.0, 80.0, True, 82.0, 79.64, NAN)]
    rows += [(0, "A", 0.0, 90000.0, 92700.0, 120.0, False, 100.0, 90.0, 100.0)]
    table = dr_events_table(_dr_events(rows), start)
    assert table.rows == [
        ("A", "Tue 2026-06-02 01:00", "0:45", "120.0 kW", "100.0 kW", "90.0 kW", "100.0 %", ""),
        ("B", "Tue 2026-06-02 01:00", "1:30", "80.0 kW", "82.0 kW", "79.6 kW", "–", ""),
    ]
    assert table.headers[1] == "Start (UTC+02:00)"
    assert not table.note.startswith("The first")
    many = [(i, "A", 0.0, 3600.0 * i, 3600.0 * i + 900.0, 50.0, False, 1.0, 1.0, 100.0) for i in range(60)]
    capped = dr_events_table(_dr_events(many[::-1]), start)
    assert len(capped.rows) == MAX_DR_EVENTS
    assert capped.rows[0][1] == "Mon 2026-06-01 00:00"
    assert capped.note.startswith(f"The first {MAX_DR_EVENTS} events; 10 more in dr_events.parquet.")


def test_grid_sites_table_orders_like_the_sites_table_and_dashes_nulls() -> None:
    """Rows follow the arrivals order, unknown sites after by id; null or absent KPIs are dashes."""
    site = _grid_kpis(0)["sites"]
    assert isinstance(site, dict)
    grid_sites = {"Z": site["S2"], "B": site["S1"], "A": site["S2"]}
    table = grid_sites_table(grid_sites, {"B": "Bee"}, "USD", ["B", "C", "Z"])
    assert [row[:2] for row in table.rows] == [("B", "Bee"), ("Z", ""), ("A", "")]
    assert table.rows[0][2:] == ("40.0 %", "100.0 kW", "0", "0.0 kW", "150.00 USD", "60.00 USD", "75.0 %", "1.5", "–")
    assert table.rows[1][-3:] == ("–", "–", "–")
