"""Tests for the results-folder report."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reports import render
from reports.occupancy import occupancy_week_hour
from sim.sessions import Outcome

START = "2026-01-05T00:00:00+01:00"  # a Monday
HORIZON_DAYS = 1.0
SITES = {"S1": ("Central", 150.0), "S2": ("Depot", 300.0)}
OUTCOMES = ["served"] * 40 + ["balked"] * 5 + ["reneged"] * 3 + ["ongoing"] * 2
FIGURES = ("site_load.png", "occupancy.png", "utilization.png", "outcomes.png")


def _kpis(sessions: pd.DataFrame, ports: int, capacity_kw: float | None = None) -> dict[str, float]:
    counts = sessions["outcome"].value_counts()
    kpis = {f"sessions_{o.name.lower()}": int(counts.get(o.name.lower(), 0)) for o in Outcome}
    kpis |= {
        "sessions_arrived": len(sessions),
        "energy_requested_kwh": float(sessions["energy_requested_kwh"].sum()),
        "energy_delivered_kwh": float(sessions["energy_delivered_kwh"].sum()),
        "unmet_energy_kwh": float((sessions["energy_requested_kwh"] - sessions["energy_delivered_kwh"]).sum()),
        "balk_share": kpis["sessions_balked"] / len(sessions),
        "renege_share": kpis["sessions_reneged"] / len(sessions),
        "wait_all_mean_s": float(sessions["wait_s"].mean()),
        "wait_all_p95_s": float(sessions["wait_s"].quantile(0.95)),
        "wait_plugged_mean_s": float(sessions["wait_s"].mean()),
        "wait_plugged_p95_s": float(sessions["wait_s"].quantile(0.95)),
        "time_utilization": 0.4321,
        "energy_utilization": 0.1234,
        "peak_kw": 123.45,
        "session_revenue": float(sessions["amount_charged"].sum()),
        "ports": ports,
    }
    return kpis if capacity_kw is None else kpis | {"capacity_kw": capacity_kw}


def write_results(results_dir: Path) -> None:
    """Write a small, internally consistent results folder with the simulator's columns."""
    rng = np.random.default_rng(7)
    n = len(OUTCOMES)
    outcome = np.array(OUTCOMES)
    site = np.where(np.arange(n) % 3 == 0, "S2", "S1")
    arrival = np.sort(rng.uniform(0.0, 20 * 3600.0, n))
    wait = np.where(outcome == "balked", 0.0, rng.uniform(0.0, 900.0, n))
    plugged = np.isin(outcome, ["served", "ongoing"])
    plug = np.where(plugged, arrival + wait, np.nan)
    departure = np.where(outcome == "served", plug + rng.uniform(1800.0, 3 * 3600.0, n), np.nan)
    requested = rng.uniform(10.0, 50.0, n)
    delivered = np.where(plugged, requested * 0.9, 0.0)
    evse = [f"{s}-C{i % 2 + 1}-1" if p else None for i, (s, p) in enumerate(zip(site, plugged, strict=True))]
    sessions = pd.DataFrame(
        {
            "session_id": np.arange(n, dtype=np.int64),
            "site_id": site,
            "evse_id": pd.array(evse, dtype="string"),
            "ev_model": "generic",
            "outcome": outcome,
            "arrival_t_s": arrival,
            "plug_t_s": plug,
            "charge_start_t_s": plug,
            "charge_end_t_s": np.where(outcome == "served", plug + 1200.0, np.nan),
            "departure_t_s": departure,
            "wait_s": wait,
            "energy_requested_kwh": requested,
            "energy_delivered_kwh": delivered,
            "soc_in_frac": rng.uniform(0.1, 0.5, n),
            "soc_out_frac": np.where(plugged, 0.8, np.nan),
            "amount_charged": delivered * 0.5,
            "arrival_time": pd.Timestamp(START) + pd.to_timedelta(arrival, unit="s"),
        }
    )
    sessions.to_parquet(results_dir / "sessions.parquet")

    t_s = np.arange(0.0, HORIZON_DAYS * 86400.0, 900.0)
    load = pd.concat(
        pd.DataFrame(
            {
                "site_id": site_id,
                "t_s": t_s,
                "time": pd.Timestamp(START) + pd.to_timedelta(t_s, unit="s"),
                "energy_kwh": power_kw * 0.25,
                "power_kw": power_kw,
                "capacity_kw": capacity_kw,
            }
        )
        for site_id, (_, capacity_kw) in SITES.items()
        for power_kw in [capacity_kw * 0.5 * (1 + np.sin(t_s / 86400.0 * 2 * np.pi))]
    )
    load.to_parquet(results_dir / "load.parquet")
    pd.DataFrame({"site_id": ["S1", "S1"], "t_s": [0.0, 60.0], "power_kw": [11.0, 0.0]}).to_parquet(
        results_dir / "load_steps.parquet"
    )
    pd.DataFrame(
        {
            "t_s": arrival,
            "event": "plugged",
            "site_id": site,
            "evse_id": pd.array(evse, dtype="string"),
            "session_id": np.arange(n, dtype=np.int64),
            "value": 0.0,
        }
    ).to_parquet(results_dir / "events.parquet")
    evse_ids = [f"{s}-C{c}-1" for s in SITES for c in (1, 2)]
    pd.DataFrame(
        {
            "site_id": [e[:2] for e in evse_ids],
            "charger_id": [e[:5] for e in evse_ids],
            "evse_id": evse_ids,
            "current": ["ac", "dc", "ac", "dc"],
            "max_power_kw": [22.0, 150.0, 22.0, 150.0],
            "sessions": np.array([10, 15, 8, 9], dtype=np.int64),
            "plugged_s": [3600.0, 7200.0, 1800.0, 900.0],
            "charging_s": [3000.0, 6000.0, 1500.0, 800.0],
            "energy_kwh": [50.0, 300.0, 20.0, 40.0],
            "time_utilization": [0.2, 0.6, 0.1, 0.05],
            "energy_utilization": [0.1, 0.3, 0.05, 0.02],
        }
    ).to_parquet(results_dir / "ports.parquet")

    scenario = {
        "name": "tiny",
        "seed": 7,
        "start": START,
        "horizon_days": HORIZON_DAYS,
        "network": {"sites": [{"id": i, "name": name, "capacity_kw": cap} for i, (name, cap) in SITES.items()]},
        "tariff": {"currency": "EUR", "price_per_kwh": 0.5, "session_fee": 0.0},
        "manager": {"kind": "equal_share"},
    }
    (results_dir / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    manifest = {
        "scenario": "tiny",
        "seed": 7,
        "horizon_days": HORIZON_DAYS,
        "start": START,
        "versions": {"chargetwin": "0.1.0", "python": "3.11"},
    }
    (results_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    kpis = {
        "currency": "EUR",
        "network": _kpis(sessions, ports=4) | {"revenue": float(sessions["amount_charged"].sum()) + 9.99},
        "sites": {s: _kpis(sessions[sessions["site_id"] == s], 2, SITES[s][1]) for s in SITES},
    }
    (results_dir / "kpis.json").write_text(json.dumps(kpis), encoding="utf-8")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic results folder, rendered once for the tests that only read the report."""
    folder = tmp_path_factory.mktemp("results")
    write_results(folder)
    assert render(folder) == folder / "report.html"
    return folder


def test_render_writes_all_files(results_dir: Path) -> None:
    """Render writes the Markdown, the HTML and the four PNGs next to the results."""
    for name in ("report.md", "report.html", *FIGURES):
        assert (results_dir / name).stat().st_size > 0, name
    for name in FIGURES:
        assert (results_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_html_is_self_contained(results_dir: Path) -> None:
    """The HTML embeds every figure as a base64 data URI and refers to nothing outside itself."""
    text = (results_dir / "report.html").read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == len(FIGURES)
    assert re.findall(r'(?:src|href)="(?!data:)', text) == []
    assert "http" not in text
    assert "<table>" in text


def test_markdown_shows_formatted_kpis(results_dir: Path) -> None:
    """The Markdown has the title, the run line, formatted network KPIs, site rows and figure links."""
    text = (results_dir / "report.md").read_text(encoding="utf-8")
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))["network"]
    assert text.startswith("# Report: tiny\n")
    assert "Seed 7 · start Mon 2026-01-05 00:00 UTC+01:00 · horizon 1 d · manager equal_share" in text
    assert "| Sessions served | 40 |" in text
    assert "| Sessions arrived | 50 |" in text
    assert f"| Energy delivered | {kpis['energy_delivered_kwh'] / 1000:,.2f} MWh |" in text
    assert f"| Mean wait, all who queued | {kpis['wait_all_mean_s'] / 60:.1f} min |" in text
    assert "| Time utilization | 43.2 % |" in text
    assert f"| Session revenue | {kpis['session_revenue']:,.2f} EUR |" in text
    assert f"| Revenue (with membership fees) | {kpis['revenue']:,.2f} EUR |" in text
    assert "| S1 | Central |" in text
    assert "| S2 | Depot |" in text
    for name in FIGURES:
        assert f"]({name})" in text


@pytest.mark.slow
def test_pngs_are_byte_identical_across_renders(tmp_path: Path) -> None:
    """Rendering the same results into two folders gives byte-identical PNGs and reports."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        write_results(folder)
        render(folder)
    for name in (*FIGURES, "report.md", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_occupancy_of_one_ev_monday_morning() -> None:
    """One EV plugged Monday 10:00-12:00 in a week from Monday 00:00 fills cells (Mon,10) and (Mon,11) only."""
    start = dt.datetime.fromisoformat(START)
    mean_evs = occupancy_week_hour([10 * 3600.0], [12 * 3600.0], 7 * 86400.0, start)
    expected = np.zeros((7, 24))
    expected[0, 10] = expected[0, 11] = 1.0
    assert mean_evs.shape == (7, 24)
    np.testing.assert_array_equal(mean_evs, expected)


def test_occupancy_partial_hours_ongoing_and_uncovered_cells() -> None:
    """Partial hours count pro rata, NaN departure lasts to the horizon end, uncovered cells are NaN."""
    start = dt.datetime.fromisoformat("2026-01-07T10:30:00+01:00")  # a Wednesday
    # Wed 10:30 to Fri 10:30: one EV Wed 10:45-11:15, an ongoing one from Thu 09:30, one never plugged.
    mean_evs = occupancy_week_hour([900.0, 82800.0, np.nan], [2700.0, np.nan, np.nan], 2 * 86400.0, start)
    assert mean_evs[2, 10] == pytest.approx(0.5)  # 15 of the 30 covered minutes
    assert mean_evs[2, 11] == pytest.approx(0.25)
    assert mean_evs[2, 12] == 0.0
    assert mean_evs[3, 9] == pytest.approx(0.5)
    assert mean_evs[3, 10] == pytest.approx(1.0)
    assert mean_evs[4, 10] == pytest.approx(1.0)  # Fri 10:00-10:30, until the horizon end
    assert np.isnan(mean_evs[2, 9])
    assert np.isnan(mean_evs[4, 11])
    assert np.isnan(mean_evs[5:]).all()


def test_occupancy_matches_a_one_second_grid() -> None:
    """On whole-second times the exact result equals averaging a per-second count of plugged-in EVs."""
    rng = np.random.default_rng(3)
    horizon_s = 9 * 86400 + 5000
    start = dt.datetime.fromisoformat("2026-03-12T17:23:20-05:00")  # a Thursday, mid-hour
    plug_t_s = rng.integers(-3600, horizon_s, 300).astype(float)
    departure_t_s = plug_t_s + rng.integers(0, 6 * 3600, 300)
    departure_t_s[:10] = np.nan
    plug_t_s[10:20] = np.nan
    plugged = ~np.isnan(plug_t_s)
    begin = np.clip(plug_t_s[plugged], 0, horizon_s).astype(int)
    end = np.clip(np.nan_to_num(departure_t_s[plugged], nan=horizon_s), 0, horizon_s).astype(int)
    evs = np.cumsum(np.bincount(begin, minlength=horizon_s + 1) - np.bincount(end, minlength=horizon_s + 1))
    week_s = (3 * 24 + 17) * 3600 + 23 * 60 + 20 + np.arange(horizon_s)
    cells = (week_s // 3600) % 168
    sums = np.bincount(cells, weights=evs[:horizon_s], minlength=168)
    expected = sums / np.bincount(cells, minlength=168)
    np.testing.assert_allclose(occupancy_week_hour(plug_t_s, departure_t_s, horizon_s, start), expected.reshape(7, 24))
