"""Tests for the report's EV-side section and the pure functions behind it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from reports import render
from reports.ev_figures import compat_counts, compat_figure, interop_heatmap_figure, interop_matrix
from reports.ev_tables import ev_sites_table, needs_table
from reports.figures import png_bytes
from sim.config import load_scenario
from sim.engine import simulate
from sim.ev_metrics import interop_by_pair, visits_frame
from sim.results import write_results


def _attempts(rows: list[tuple]) -> pd.DataFrame:
    columns = ["session_id", "visit", "attempt", "ok", "cause", "ev_family", "charger_model"]
    frame = pd.DataFrame(rows, columns=columns)
    for c in ("cause", "ev_family", "charger_model"):
        frame[c] = pd.Categorical(frame[c])
    return frame


def test_visits_and_pair_rates_from_hand_counted_attempts() -> None:
    """Four visits of family f at model m: first ok 1 of 3 working visits, ok after retries 2 of 3; a fault left out."""
    attempts = _attempts([
        (1, 1, 1, False, "interop", "f", "m"), (1, 1, 2, True, "none", "f", "m"),     # retry works
        (2, 1, 1, True, "none", "f", "m"),                                            # first works
        (3, 1, 1, False, "fault", "f", "m"),                                          # faulted port: left out
        (3, 2, 1, False, "interop", "f", "m"), (3, 2, 2, False, "interop", "f", "m"),  # both fail
        (4, 1, 1, True, "none", "g", "m"),
    ])  # fmt: skip
    visits = visits_frame(attempts)
    assert len(visits) == 5
    assert visits["fault"].tolist() == [False, False, True, False, False]
    pairs = interop_by_pair(visits).set_index("ev_family")
    assert pairs.loc["f", "visits"] == 3
    assert math.isclose(pairs.loc["f", "first_attempt_success_rate"], 1 / 3)
    assert math.isclose(pairs.loc["f", "success_after_retries_rate"], 2 / 3)
    assert math.isclose(pairs.loc["f", "interop_failure_rate"], 3 / 5)
    assert pairs.loc["g", "first_attempt_success_rate"] == 1.0


def test_interop_matrix_keeps_order_and_leaves_unvisited_pairs_empty() -> None:
    """Rows and columns in order of first appearance; a pair without visits is NaN with 0 visits."""
    pairs = [
        {"ev_family": "b", "charger_model": "y", "visits": 4, "first_attempt_success_rate": 0.75,
         "success_after_retries_rate": 1.0},
        {"ev_family": "a", "charger_model": "x", "visits": 2, "first_attempt_success_rate": 0.5,
         "success_after_retries_rate": 0.5},
    ]  # fmt: skip
    m = interop_matrix(pairs)
    assert m["first"].index.tolist() == ["b", "a"]
    assert m["first"].columns.tolist() == ["y", "x"]
    assert m["first"].loc["b", "y"] == 0.75
    assert np.isnan(m["first"].loc["b", "x"])
    assert m["visits"].loc["b", "x"] == 0.0
    assert m["after"].loc["a", "x"] == 0.5
    assert png_bytes(interop_heatmap_figure(m))[:4] == b"\x89PNG"
    assert png_bytes(interop_heatmap_figure(interop_matrix([])))[:4] == b"\x89PNG"


def test_compat_counts_split_misses_and_order_sites() -> None:
    """Misses = lost + redirected + waited per site; most misses first, sites without misses left out."""
    k = {"compat_misses": 0, "sessions_lost_to_compat": 0, "compat_misses_redirected": 0, "compat_misses_waited": 0}
    sites = {
        "s1": {**k, "compat_misses": 5, "sessions_lost_to_compat": 3, "compat_misses_waited": 2},
        "s2": {**k, "compat_misses": 9, "sessions_lost_to_compat": 1, "compat_misses_redirected": 8},
        "s3": k,
    }
    counts = compat_counts(sites)
    assert counts.index.tolist() == ["s2", "s1"]
    assert counts.loc["s2"].tolist() == [1.0, 8.0, 0.0]
    assert counts.loc["s1"].tolist() == [3.0, 0.0, 2.0]
    assert png_bytes(compat_figure(counts))[:4] == b"\x89PNG"
    assert png_bytes(compat_figure(compat_counts({"s3": k})))[:4] == b"\x89PNG"


def test_needs_and_sites_tables_show_missing_values_as_dashes() -> None:
    """A source without sessions shows dashes; the sites table follows the given order."""
    empty = {"sessions": 0, "energy_requested_kwh": 0.0, "energy_delivered_kwh": 0.0, "delivered_share": None,
             "need_met_share": None}  # fmt: skip
    full = {"sessions": 3, "energy_requested_kwh": 30.0, "energy_delivered_kwh": 27.0, "delivered_share": 0.9,
            "need_met_share": 2 / 3}  # fmt: skip
    table = needs_table({"iso15118": full, "telematics": empty, "estimate": empty, "known": full})
    assert table.rows[0][1:] == ("3", "30.0 kWh", "27.0 kWh", "90.0 %", "66.7 %")
    assert table.rows[1][4:] == ("–", "–")
    site = {"first_arrivals": 10, "compat_misses": 4, "compat_miss_share": 0.4, "sessions_lost_to_compat": 2,
            "sessions_incompatible": 1, "redirected_away": 1, "redirected_in": 0}  # fmt: skip
    rows = ev_sites_table({"a": site, "b": site}, {"a": "Alpha"}, ["b", "a"]).rows
    assert [r[0] for r in rows] == ["b", "a"]
    assert rows[1][1:4] == ("Alpha", "10", "4 (40.0 %)")


@pytest.mark.slow
def test_report_has_an_ev_section_only_with_an_ev_side(scenarios_dir, tmp_path) -> None:
    """The mixed-market run's report ends with the EV section and its two figures; the small city's has none."""
    for name, has in (("mixed_market.yaml", True), ("small_city.yaml", False)):
        out = tmp_path / name
        write_results(simulate(load_scenario(scenarios_dir / name, horizon_days=1)), out)
        render(out)
        text = (out / "report.md").read_text()
        assert ("## EV side" in text) == has
        assert (out / "interop_heatmap.png").is_file() == has
        assert (out / "compat_misses.png").is_file() == has
        assert ("ev_side" in json.loads((out / "kpis.json").read_text())) == has
        if has:
            assert text.index("## EV side") > text.index("## Grid")
