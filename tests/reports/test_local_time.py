"""Report axes in the scenario's IANA time zone: the hour skipped in spring and the hour shown twice in autumn."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from reports.grid_figures import load_heatmap
from reports.occupancy import occupancy_week_hour
from reports.results import load_results
from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario

AMS = ZoneInfo("Europe/Amsterdam")  # 2026: 02:00 → 03:00 on Sunday 29 March, 03:00 → 02:00 on Sunday 25 October
H = 3600.0
DAY = 86400.0
SUNDAY = 6


def test_occupancy_has_no_spring_hour_and_both_autumn_hours():
    """Spring: an EV plugged Sunday 00:00-05:00 fills hours 0, 1, 3, 4; hour 2 is never on the clock (NaN).

    Autumn: an EV plugged from the first 02:00 to the second 02:30 fills 5400 of the 7200 s the clock
    shows 02:xx, so that hour's mean is 0.75 and 03:00 stays empty.
    """
    spring_start = dt.datetime(2026, 3, 23, tzinfo=AMS)  # Monday, +01:00
    plug = 6 * DAY  # Sunday 00:00 +01:00; 05:00 local is 03:00 UTC, four real hours later
    evs = occupancy_week_hour([plug], [plug + 4 * H], 7 * DAY, spring_start)
    assert evs[SUNDAY, [0, 1, 3, 4]].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert np.isnan(evs[SUNDAY, 2])
    assert evs[SUNDAY, 5] == 0.0

    autumn_start = dt.datetime(2026, 10, 19, tzinfo=AMS)  # Monday, +02:00
    plug = 6 * DAY + 2 * H  # Sunday 02:00 +02:00
    evs = occupancy_week_hour([plug], [plug + 1.5 * H], 7 * DAY, autumn_start)
    assert evs[SUNDAY, 2] == 0.75
    assert evs[SUNDAY, 3] == 0.0
    assert evs[SUNDAY, 1] == 0.0


def test_load_heatmap_rows_are_local_days_across_both_changes():
    """The autumn hour 02 averages both passes; the spring hour 02 is grey; days are local dates."""
    autumn_start = dt.datetime(2026, 10, 24, tzinfo=AMS)  # Saturday 00:00 +02:00
    t_s = np.arange(0.0, 2 * DAY + H, 900.0)  # Saturday and the 25-hour Sunday
    first_pass = (t_s >= DAY + 2 * H) & (t_s < DAY + 3 * H)  # Sunday 02:00-03:00 +02:00
    second_pass = (t_s >= DAY + 3 * H) & (t_s < DAY + 4 * H)  # Sunday 02:00-03:00 +01:00
    power_kw = np.where(first_pass, 1.0, np.where(second_pass, 3.0, 0.0))
    mean_kw, days_per_row = load_heatmap(pd.DataFrame({"site_id": "A", "t_s": t_s, "power_kw": power_kw}), autumn_start)
    assert days_per_row == 1
    assert mean_kw.shape == (2, 24)
    assert mean_kw[1, 2] == 2.0
    assert mean_kw[1, 3] == 0.0
    assert not np.isnan(mean_kw).any()

    spring_start = dt.datetime(2026, 3, 28, tzinfo=AMS)  # Saturday 00:00 +01:00
    t_s = np.arange(0.0, 2 * DAY - H, 900.0)  # Saturday and the 23-hour Sunday
    mean_kw, _ = load_heatmap(pd.DataFrame({"site_id": "A", "t_s": t_s, "power_kw": 1.0}), spring_start)
    assert mean_kw.shape == (2, 24)
    assert np.isnan(mean_kw[1, 2])
    assert np.isnan(mean_kw).sum() == 1


def test_results_folder_carries_the_zone_to_the_report(tmp_path):
    """A run with `timezone` is read back with its start in that zone, and figures are labelled with its name."""
    s = make_scenario(start="2026-03-28T00:00:00+01:00", timezone="Europe/Amsterdam", horizon_days=1)
    write_results(simulate(s), tmp_path / "out")
    results = load_results(tmp_path / "out")
    assert results.start == dt.datetime(2026, 3, 28, tzinfo=AMS)
    assert results.start.tzinfo == AMS
    assert results.zone_name == "Europe/Amsterdam"
    plain = make_scenario(start="2026-03-28T00:00:00+01:00", horizon_days=1)
    write_results(simulate(plain), tmp_path / "plain")
    assert load_results(tmp_path / "plain").zone_name == "UTC+01:00"
