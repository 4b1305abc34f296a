"""Mean number of plugged-in EVs by weekday and hour of the local calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["occupancy_week_hour"]

_QUARTER_S = 900.0
_WEEK_H = 168


def _ramp_sum(edges_s: np.ndarray, sorted_t_s: np.ndarray) -> np.ndarray:
    """For every edge, the sum over times of max(edge - t, 0); ``sorted_t_s`` ascending."""
    n_before = np.searchsorted(sorted_t_s, edges_s, side="left")
    cumsum_s = np.concatenate(([0.0], np.cumsum(sorted_t_s)))
    return n_before * edges_s - cumsum_s[n_before]


def occupancy_week_hour(
    plug_t_s: npt.ArrayLike, departure_t_s: npt.ArrayLike, horizon_s: float, start: dt.datetime
) -> np.ndarray:
    """Mean number of plugged-in EVs per (weekday Mon..Sun, hour 0..23), a 7x24 array.

    Exact rather than sampled: the plugged-in EV-seconds up to each local hour edge are
    sum(max(edge - plug, 0)) - sum(max(edge - departure, 0)), which sorting and cumulative
    sums give for all edges at once. A NaN departure (ongoing) lasts until ``horizon_s``;
    a NaN plug time (never plugged) is skipped. Cells the horizon never covers are NaN.
    Hours are local in ``start``'s time zone, daylight saving included: the local hour edges
    fall on the start's local quarter hours (every zone's offsets differ by whole quarter
    hours), and each quarter hour counts in the local hour it starts in.
    """
    plug = np.asarray(plug_t_s, dtype=float)
    departure = np.asarray(departure_t_s, dtype=float)
    plugged = ~np.isnan(plug)
    begin_s = np.sort(np.clip(plug[plugged], 0.0, horizon_s))
    end_s = np.sort(np.clip(np.nan_to_num(departure[plugged], nan=horizon_s), 0.0, horizon_s))
    # Local seconds from the start's last quarter hour to the start.
    into_quarter_s = (start.minute * 60.0 + start.second + start.microsecond / 1e6) % _QUARTER_S
    quarters = np.arange(0, int(np.ceil((into_quarter_s + horizon_s) / _QUARTER_S)) + 1)
    edges_s = np.clip(quarters * _QUARTER_S - into_quarter_s, 0.0, horizon_s)
    local = pd.Timestamp(start) + pd.to_timedelta(edges_s[:-1], unit="s")
    cells = np.asarray(local.day_of_week * 24 + local.hour, dtype=np.int64)
    ev_s = np.diff(_ramp_sum(edges_s, begin_s) - _ramp_sum(edges_s, end_s))
    ev_s_per_cell = np.bincount(cells, weights=ev_s, minlength=_WEEK_H)
    covered_s_per_cell = np.bincount(cells, weights=np.diff(edges_s), minlength=_WEEK_H)
    mean_evs = np.full(_WEEK_H, np.nan)
    np.divide(ev_s_per_cell, covered_s_per_cell, out=mean_evs, where=covered_s_per_cell > 0)
    return mean_evs.reshape(7, 24)
