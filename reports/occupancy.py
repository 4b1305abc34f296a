"""Mean number of plugged-in EVs by weekday and hour of the local calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

__all__ = ["occupancy_week_hour"]

_HOUR_S = 3600.0
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
    Hours are local at ``start``'s UTC offset (the only zone a results folder records).
    """
    plug = np.asarray(plug_t_s, dtype=float)
    departure = np.asarray(departure_t_s, dtype=float)
    plugged = ~np.isnan(plug)
    begin_s = np.sort(np.clip(plug[plugged], 0.0, horizon_s))
    end_s = np.sort(np.clip(np.nan_to_num(departure[plugged], nan=horizon_s), 0.0, horizon_s))
    # Local seconds from the Monday 00:00 of the start's week to the start.
    week_offset_s = start.weekday() * 86400.0 + start.hour * 3600.0 + start.minute * 60.0 + start.second
    week_offset_s += start.microsecond / 1e6
    hours = np.arange(int(week_offset_s // _HOUR_S), int(np.ceil((week_offset_s + horizon_s) / _HOUR_S)) + 1)
    edges_s = np.clip(hours * _HOUR_S - week_offset_s, 0.0, horizon_s)
    ev_s = np.diff(_ramp_sum(edges_s, begin_s) - _ramp_sum(edges_s, end_s))
    cells = hours[:-1] % _WEEK_H
    ev_s_per_cell = np.bincount(cells, weights=ev_s, minlength=_WEEK_H)
    covered_s_per_cell = np.bincount(cells, weights=np.diff(edges_s), minlength=_WEEK_H)
    mean_evs = np.full(_WEEK_H, np.nan)
    np.divide(ev_s_per_cell, covered_s_per_cell, out=mean_evs, where=covered_s_per_cell > 0)
    return mean_evs.reshape(7, 24)
