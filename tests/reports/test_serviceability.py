"""Tests for the report's serviceability section and the pure functions behind its figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from reports import render
from reports.figures import OUTCOME_COLORS, outcome_counts, png_bytes
from reports.kpi_tables import fault_modes_table
from reports.results import SERVICE_FILES
from reports.service_figures import (
    MAX_BAR_PORTS,
    crew_hours,
    outage_pareto,
    outages_gantt_figure,
    sites_by_outage,
    uptime_figure,
    uptime_ranking,
)
from tests.reports.test_report import FIGURES, SITES, START, _kpis, write_results

SERVICE_FIGURES = ("uptime.png", "outages_gantt.png", "failure_pareto.png", "crews.png")
NAN = float("nan")
# One day, four ports. S1-C1-1: a 2 h fault then a 0.5 h reset, both counted; S1-C2-1: 4 h derated;
# S2: a 1 h grid outage on both ports and 1.5 h maintenance on S2-C2-1, all excluded.
OUTAGES = [
    # site, charger, evse, cause, kind, fault_id, start_t_s, end_t_s, detected_t_s, repaired_by, excluded, down
    ("S1", "S1-C1", "S1-C1-1", "software_hang", "fault", 0, 0.0, 7200.0, 1800.0, "technician", False, True),
    ("S1", "S1-C1", "S1-C1-1", "reset", "planned", -1, 7200.0, 9000.0, NAN, "self", False, True),
    ("S1", "S1-C2", "S1-C2-1", "power_module_failure", "fault", 1, 3600.0, 18000.0, 3600.0, "technician", False, False),
    ("S2", "S2-C1", "S2-C1-1", "grid_outage", "outside", -1, 10000.0, 13600.0, NAN, "self", True, True),
    ("S2", "S2-C2", "S2-C2-1", "grid_outage", "outside", -1, 10000.0, 13600.0, NAN, "self", True, True),
    ("S2", "S2-C2", "S2-C2-1", "maintenance", "planned", -1, 40000.0, 45400.0, NAN, "maintenance", True, True),
]
CAUSES = ["software_hang", "power_module_failure", "reset", "maintenance", "grid_outage"]
S1_C1_1_UPTIME_PCT = 100.0 * (86400.0 - 9000.0) / 86400.0  # 89.58 %, the only port below 97 %


def _outages(rows: list[tuple]) -> pd.DataFrame:
    columns = [
        "site_id",
        "charger_id",
        "evse_id",
        "cause",
        "kind",
        "fault_id",
        "start_t_s",
        "end_t_s",
        "detected_t_s",
        "repaired_by",
        "excluded",
        "down",
    ]
    df = pd.DataFrame(rows, columns=columns)
    start = pd.Timestamp(START)
    return pd.DataFrame(
        {
            **{c: df[c] for c in ("site_id", "charger_id", "evse_id")},
            "cause": pd.Categorical(df["cause"], categories=CAUSES),
            "kind": pd.Categorical(df["kind"], categories=["fault", "planned", "outside"]),
            "fault_id": df["fault_id"].astype(np.int64),
            "start_t_s": df["start_t_s"],
            "end_t_s": df["end_t_s"],
            "detected_t_s": df["detected_t_s"],
            "start_time": start + pd.to_timedelta(df["start_t_s"], unit="s"),
            "end_time": start + pd.to_timedelta(df["end_t_s"], unit="s"),
            "duration_s": df["end_t_s"] - df["start_t_s"],
            "repaired_by": pd.Categorical(
                df["repaired_by"], categories=["none", "reset", "technician", "self", "maintenance"]
            ),
            "excluded": df["excluded"].astype(bool),
            "down": df["down"].astype(bool),
        }
    )


def _grid_outage(site_id: str, duration_s: float) -> tuple:
    """An excluded grid outage from the start on the site's one port."""
    evse_id = f"{site_id}-C1-1"
    return (site_id, evse_id[:-2], evse_id, "grid_outage", "outside", -1, 0.0, duration_s, NAN, "self", True, True)


def write_service_results(results_dir: Path) -> None:
    """The synthetic results folder plus serviceability tables and KPIs, with three sessions lost to faults."""
    write_results(results_dir)
    sessions = pd.read_parquet(results_dir / "sessions.parquet")
    sessions.loc[[1, 3], "outcome"] = "interrupted"  # S1 and S2
    sessions.loc[2, "outcome"] = "failed"  # S1
    sessions.to_parquet(results_dir / "sessions.parquet")

    _outages(OUTAGES).to_parquet(results_dir / "outages.parquet")
    evse_ids = ["S1-C1-1", "S1-C2-1", "S2-C1-1", "S2-C2-1"]
    outage_s = [9000.0, 14400.0, 3600.0, 9000.0]
    excluded_s = [0.0, 0.0, 3600.0, 9000.0]
    uptime_pct = [S1_C1_1_UPTIME_PCT, 100.0, 100.0, 100.0]
    pd.DataFrame(
        {
            "site_id": [e[:2] for e in evse_ids] * 2,
            "evse_id": evse_ids * 2,
            "period": ["2026-01"] * 4 + ["trailing_12m"] * 4,
            "start_t_s": 0.0,
            "end_t_s": 86400.0,
            "outage_s": outage_s * 2,
            "excluded_s": excluded_s * 2,
            "uptime_pct": uptime_pct * 2,
        }
    ).to_parquet(results_dir / "uptime.parquet")
    pd.DataFrame(
        {
            "t_s": [1000.0, 2000.0],
            "session_id": np.array([2, 5], dtype=np.int64),
            "site_id": "S1",
            "evse_id": "S1-C1-1",
            "fault_id": np.array([0, 0], dtype=np.int64),
        }
    ).to_parquet(results_dir / "attempts.parquet")
    pd.DataFrame(
        {
            "crew_id": pd.Categorical(["c1", "c1"]),
            "technician": np.array([0, 0], dtype=np.int64),
            "charger_id": ["S1-C1", "S1-C2"],
            "kind": pd.Categorical(["repair", "repair"], categories=["repair", "return", "maintenance"]),
            "fault_id": np.array([0, 1], dtype=np.int64),
            "created_t_s": [1800.0, 3600.0],
            "arrive_t_s": [5400.0, 12000.0],
            "end_t_s": [7200.0, 18000.0],
            "travel_s": [1800.0, 1800.0],
            "work_s": [1800.0, 6000.0],
            "fixed": [True, True],
            "part_ordered": [False, False],
            "part_cost": [0.0, 250.0],
        }
    ).to_parquet(results_dir / "visits.parquet")
    pd.DataFrame(
        {
            "crew_id": ["c2", "c1"],
            "technician": np.array([0, 0], dtype=np.int64),
            "busy_s": [0.0, 11400.0],
            "travel_s": [0.0, 3600.0],
            "jobs": np.array([0, 2], dtype=np.int64),
            "shift_s": [28800.0, 28800.0],
            "utilization": [0.0, 11400.0 / 28800.0],
            "travel_share": [NAN, 3600.0 / 11400.0],
        }
    ).to_parquet(results_dir / "crews.parquet")

    labour_h = 11400.0 / 3600.0
    kpis = {
        "currency": "EUR",
        "network": _kpis(sessions, ports=4),
        "sites": {s: _kpis(sessions[sessions["site_id"] == s], 2, SITES[s][1]) for s in SITES},
        "serviceability": {
            "uptime_target_pct": 97.0,
            "port_uptime_mean_pct": (S1_C1_1_UPTIME_PCT + 300.0) / 4,
            "port_uptime_min_pct": S1_C1_1_UPTIME_PCT,
            "ports_meeting_target_share": 0.75,
            "availability": 1.0 - 21600.0 / (4 * 86400.0),
            "failed_attempts": 2,
            "failed_attempts_per_100": 100.0 * 2 / 44,
            "sessions_lost": 3,
            "energy_lost_kwh": 12.5,
            "revenue_lost": 6.25,
            "first_time_fix_rate": 1.0,
            "crew_utilization": 11400.0 / 57600.0,
            "crew_travel_share": 3600.0 / 11400.0,
            "labour_h": labour_h,
            "parts_cost": 250.0,
            "maintenance_cost": labour_h * 60.0 + 250.0,
            "fault_modes": {
                "software_hang": {
                    "failures": 1,
                    "observed_mtbf_h": 48.0,
                    "mttr_h": 2.0,
                    "time_to_detect_h": 0.5,
                    "outage_h": 2.0,
                },
                "power_module_failure": {
                    "failures": 1,
                    "observed_mtbf_h": 24.0,
                    "mttr_h": 4.0,
                    "time_to_detect_h": 0.0,
                    "outage_h": 4.0,
                },
            },
        },
    }
    (results_dir / "kpis.json").write_text(json.dumps(kpis), encoding="utf-8")


def _drop_service_key(results_dir: Path) -> None:
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    del kpis["serviceability"]
    (results_dir / "kpis.json").write_text(json.dumps(kpis), encoding="utf-8")


@pytest.fixture(scope="module")
def service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic results folder with serviceability, rendered once."""
    folder = tmp_path_factory.mktemp("service")
    write_service_results(folder)
    render(folder)
    return folder


@pytest.mark.slow
def test_section_has_tables_and_four_embedded_figures(service_dir: Path) -> None:
    """With serviceability results the report gets the section, its two tables and its four figures."""
    text = (service_dir / "report.md").read_text(encoding="utf-8")
    html = (service_dir / "report.html").read_text(encoding="utf-8")
    assert "\n## Serviceability\n\n### Serviceability KPIs\n" in text
    assert f"| Port uptime, lowest | {S1_C1_1_UPTIME_PCT:.2f} % |" in text
    assert "| Ports at ≥ 97 % uptime | 75.0 % |" in text
    assert "| Availability | 93.75 % |" in text
    assert "| Failed attempts per 100 attempts | 4.55 |" in text
    assert "| Revenue lost | 6.25 EUR |" in text
    assert "| Labour | 3.2 h |" in text
    assert "| Maintenance cost | 440.00 EUR |" in text
    modes = text[text.index("### Fault modes") :]
    assert modes.index("| power_module_failure | 1 | 1.0 | 4.0 | 0.0 | 4.0 |") < modes.index("| software_hang |")
    assert "red: the 1 port below it." in text
    for name in SERVICE_FIGURES:
        assert f"]({name})" in text
        assert (service_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert html.count('src="data:image/png;base64,') == len(FIGURES) + len(SERVICE_FIGURES)
    assert "<h2>Serviceability</h2>\n<h3>Serviceability KPIs</h3>" in html
    assert re.findall(r'(?:src|href)="(?!data:)', html) == []


@pytest.mark.slow
def test_section_follows_an_unchanged_report(tmp_path: Path) -> None:
    """The Markdown with serviceability is the one without it plus the section at the end."""
    with_service, without = tmp_path / "with", tmp_path / "without"
    for folder in (with_service, without):
        folder.mkdir()
        write_service_results(folder)
    _drop_service_key(without)
    render(with_service)
    render(without)
    base = (without / "report.md").read_text(encoding="utf-8")
    assert "Serviceability" not in base
    text = (with_service / "report.md").read_text(encoding="utf-8")
    line = re.search(r"> - \d+ of \d+ ports? below 97 % uptime .*\n", text)
    assert line is not None  # a port below the target joins the warnings box
    assert text.replace(line.group(0), "").startswith(base + "\n## Serviceability\n")


@pytest.mark.slow
def test_no_section_without_service_kpis(tmp_path: Path) -> None:
    """Service tables without kpis.json's key change nothing: same bytes as a folder without them, no new PNGs."""
    plain, extra = tmp_path / "plain", tmp_path / "extra"
    for folder in (plain, extra):
        folder.mkdir()
        write_results(folder)
    service = tmp_path / "service"
    service.mkdir()
    write_service_results(service)
    for name in SERVICE_FILES:
        shutil.copy(service / name, extra / name)
    render(plain)
    render(extra)
    for name in ("report.md", "report.html", *FIGURES):
        assert (plain / name).read_bytes() == (extra / name).read_bytes(), name
    assert "Serviceability" not in (plain / "report.html").read_text(encoding="utf-8")
    assert not any((plain / name).exists() or (extra / name).exists() for name in SERVICE_FIGURES)


def test_missing_service_table_is_an_error(tmp_path: Path) -> None:
    """Serviceability KPIs without one of the tables fail loudly instead of dropping the section."""
    write_service_results(tmp_path)
    (tmp_path / "uptime.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"uptime\.parquet"):
        render(tmp_path)


@pytest.mark.slow
def test_service_pngs_are_byte_identical_across_renders(tmp_path: Path) -> None:
    """Rendering the same serviceability results twice gives the same bytes."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        write_service_results(folder)
        render(folder)
    for name in (*FIGURES, *SERVICE_FIGURES, "report.md", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.slow
def test_gantt_caption_counts_the_sites_left_out(tmp_path: Path) -> None:
    """With outages at more than six sites the Gantt shows six and the caption says how many more."""
    write_service_results(tmp_path)
    more = [_grid_outage(f"X{i}", 60.0 * i) for i in range(1, 6)]
    _outages(OUTAGES + more).to_parquet(tmp_path / "outages.parquet")
    render(tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "The 6 sites with the most outage hours; 1 more in outages.parquet." in text


def test_uptime_ranking_marks_exactly_the_ports_below_target() -> None:
    """Trailing-12-month rows only, lowest first, ties by id; a port exactly at the target is not below it."""
    uptime = pd.DataFrame(
        {
            "site_id": ["A", "A", "B", "B", "A"],
            "evse_id": ["A-2", "A-1", "B-1", "B-2", "A-1"],
            "period": ["trailing_12m"] * 4 + ["2026-01"],
            "uptime_pct": [97.0, 99.5, 96.9, 99.5, 10.0],
        }
    )
    ranking = uptime_ranking(uptime, 97.0)
    assert ranking["evse_id"].tolist() == ["B-1", "A-2", "A-1", "B-2"]
    assert ranking["below_target"].tolist() == [True, False, False, False]
    assert ranking["uptime_pct"].tolist() == [96.9, 97.0, 99.5, 99.5]


@pytest.mark.slow
def test_uptime_ranking_of_the_fixture(service_dir: Path) -> None:
    """In the fixture only S1-C1-1, with its counted fault and reset, is below 97 %."""
    ranking = uptime_ranking(pd.read_parquet(service_dir / "uptime.parquet"), 97.0)
    assert ranking.loc[ranking["below_target"], "evse_id"].tolist() == ["S1-C1-1"]
    assert ranking["uptime_pct"].iloc[0] == pytest.approx(89.583333)


def test_uptime_figure_is_a_sorted_line_for_many_ports() -> None:
    """Beyond ``MAX_BAR_PORTS`` ports the figure draws a line and dots for the ports below target, no bars."""
    n = MAX_BAR_PORTS + 1
    uptime = pd.DataFrame(
        {
            "site_id": "A",
            "evse_id": [f"A-{i:03d}" for i in range(n)],
            "period": "trailing_12m",
            "uptime_pct": np.linspace(95.0, 100.0, n),
        }
    )
    figure = uptime_figure(uptime_ranking(uptime, 97.0), 97.0)
    ax = figure.axes[0]
    assert len(ax.lines) == 2  # the sorted line and the target
    assert len(ax.collections[0].get_offsets()) == int((np.linspace(95.0, 100.0, n) < 97.0).sum())
    assert not ax.patches
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_pareto_hours_and_cumulative_share() -> None:
    """Hours per cause largest first with ties by name, causes without time left out, share ending at 100 %."""
    pareto = outage_pareto(_outages(OUTAGES))
    assert pareto["cause"].tolist() == ["power_module_failure", "grid_outage", "software_hang", "maintenance", "reset"]
    assert pareto["kind"].tolist() == ["fault", "outside", "fault", "planned", "planned"]
    np.testing.assert_allclose(pareto["outage_h"], [4.0, 2.0, 2.0, 1.5, 0.5])
    np.testing.assert_allclose(pareto["cumulative_pct"], [40.0, 60.0, 80.0, 95.0, 100.0])
    assert pareto["cumulative_pct"].iloc[-1] == 100.0


def test_pareto_share_ends_at_exactly_100_on_awkward_hours() -> None:
    """Hours whose floating-point sum is inexact still end the cumulative share at exactly 100."""
    rows = [_grid_outage(f"X{i}", 0.1 * (i + 1) * 3600.0) for i in range(7)]
    outages = _outages(rows).assign(cause=[f"m{i}" for i in range(7)])
    pareto = outage_pareto(outages)
    assert pareto["cumulative_pct"].iloc[-1] == 100.0
    assert (np.diff(pareto["cumulative_pct"]) > 0).all()


def test_sites_by_outage_most_hours_first_ties_by_id() -> None:
    """Sites rank by summed outage duration over their ports, derated included, then by id."""
    outages = pd.DataFrame({"site_id": ["B", "A", "C", "A", "C"], "duration_s": [50.0, 30.0, 10.0, 20.0, 40.0]})
    assert sites_by_outage(outages) == ["A", "B", "C"]
    assert sites_by_outage(_outages(OUTAGES)) == ["S1", "S2"]


def test_crew_hours_splits_busy_into_travel_and_work() -> None:
    """Sorted by crew and technician; work = busy - travel; utilization = busy / shift, NaN without a shift."""
    crews = pd.DataFrame(
        {
            "crew_id": pd.Categorical(["c2", "c1", "c1"], categories=["c2", "c1"]),
            "technician": [0, 1, 0],
            "busy_s": [0.0, 36000.0, 7200.0],
            "travel_s": [0.0, 7200.0, 3600.0],
            "shift_s": [0.0, 144000.0, 28800.0],
        }
    )
    hours = crew_hours(crews)
    assert hours["label"].tolist() == ["c1 #0", "c1 #1", "c2 #0"]
    np.testing.assert_allclose(hours["travel_h"], [1.0, 2.0, 0.0])
    np.testing.assert_allclose(hours["work_h"], [1.0, 8.0, 0.0])
    np.testing.assert_allclose(hours["shift_h"], [8.0, 40.0, 0.0])
    np.testing.assert_allclose(hours["utilization"], [0.25, 0.25, np.nan])


def test_outcome_counts_add_fault_outcomes_only_when_present() -> None:
    """Interrupted and failed sessions are counted per site from sessions, and are columns only if any occur."""
    site_kpis = {s: {f"sessions_{o}": k for o, k in zip(OUTCOME_COLORS, (5, 1, 2, 3), strict=True)} for s in ("A", "B")}
    sessions = pd.DataFrame({"site_id": ["A", "B", "A"], "outcome": ["served", "served", "balked"]})
    plain = outcome_counts(site_kpis, sessions, ["B", "A"])
    assert plain.columns.tolist() == list(OUTCOME_COLORS)
    assert plain.index.tolist() == ["B", "A"]
    sessions = pd.DataFrame(
        {
            "site_id": pd.Categorical(["A", "B", "A", "A", "C"]),
            "outcome": pd.Categorical(["interrupted", "served", "interrupted", "failed", "failed"]),
        }
    )
    counts = outcome_counts(site_kpis, sessions, ["B", "A"])
    assert counts.columns.tolist() == [*OUTCOME_COLORS, "interrupted", "failed"]
    assert counts["interrupted"].tolist() == [0.0, 2.0]
    assert counts["failed"].tolist() == [0.0, 1.0]
    assert counts.loc["A", "served"] == 5.0


def test_fault_modes_table_orders_by_outage_and_shows_missing_as_dash() -> None:
    """Rows by outage hours, MTBF in days; a null KPI is a dash."""
    modes = {
        "a_hang": {"failures": 3, "observed_mtbf_h": 36.0, "mttr_h": 1.26, "time_to_detect_h": None, "outage_h": 3.74},
        "vandalism": {
            "failures": 1,
            "observed_mtbf_h": None,
            "mttr_h": None,
            "time_to_detect_h": 0.0,
            "outage_h": 10.0,
        },
    }
    table = fault_modes_table(modes)
    assert table.rows == [("vandalism", "1", "–", "–", "0.0", "10.0"), ("a_hang", "3", "1.5", "1.3", "–", "3.7")]


def test_gantt_with_no_outages_still_draws() -> None:
    """A run without outages gets a placeholder figure rather than an error."""
    empty = _outages([])
    ports = pd.DataFrame({"site_id": ["S1"], "charger_id": ["S1-C1"], "evse_id": ["S1-C1-1"]})
    figure = outages_gantt_figure(empty, ports, sites_by_outage(empty), {}, 86400.0)
    assert isinstance(figure, Figure)
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_pareto_counts_overlapping_rows_of_a_cause_once_per_port() -> None:
    """Two resets overlapping on one port add their union; the same hours on two ports add up."""
    rows = [
        ("S1", "S1-C1", "S1-C1-1", "reset", "planned", -1, 0.0, 3600.0, NAN, "self", False, True),
        ("S1", "S1-C1", "S1-C1-1", "reset", "planned", -1, 1800.0, 5400.0, NAN, "self", False, True),
        ("S1", "S1-C1", "S1-C1-1", "reset", "planned", -1, 2000.0, 2500.0, NAN, "self", False, True),
        ("S1", "S1-C1", "S1-C1-2", "reset", "planned", -1, 0.0, 3600.0, NAN, "self", False, True),
    ]
    pareto = outage_pareto(_outages(rows))
    np.testing.assert_allclose(pareto["outage_h"], [(5400.0 + 3600.0) / 3600.0])
