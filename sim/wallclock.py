"""Local wall-clock time of a run: the scenario's time zone, daylight saving included.

The engine's clock is ``t_s``, real seconds since the start. Wall-clock rules (hours of the
week, time-of-use periods, shifts, demand-response windows, report axes) read local time.
A `WallClock` maps one to the other with a table of the zone's UTC offset changes over the
run, built once from `zoneinfo`, so the simulation never calls `zoneinfo` per event.

Two coordinates are used:

- ``wall_s``: local wall-clock seconds since the start, as a clock on the wall counts them
  (``t_s`` plus the change of the UTC offset since the start). It skips the spring-forward
  hour and runs through the autumn hour twice. Without daylight saving it equals ``t_s``.
- week seconds: ``week0_s + wall_s``, local seconds since the Monday 00:00 of the start's week.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from sim.units import S_PER_DAY, S_PER_H

if TYPE_CHECKING:
    from sim.config import Scenario

__all__ = ["MARGIN_S", "WallClock"]

MARGIN_S = 14 * S_PER_DAY
"""Offset changes are tabled this far past the horizon (look-aheads); later ones are not seen."""


def _offset_s(zone: dt.tzinfo, epoch_s: float) -> float:
    offset = dt.datetime.fromtimestamp(epoch_s, dt.UTC).astimezone(zone).utcoffset()
    assert offset is not None
    return offset.total_seconds()


def _changes(start: dt.datetime, zone: dt.tzinfo, span_s: float) -> tuple[list[float], list[float]]:
    """UTC offset changes after `start` within `span_s`: their t_s and the offset after each (s)."""
    epoch0 = start.timestamp()
    hours = pd.date_range(
        pd.Timestamp(start).tz_convert("UTC").floor("h"), periods=int(span_s // S_PER_H) + 2, freq="h"
    )
    local = hours.tz_convert(zone)
    offsets = (local.tz_localize(None) - hours.tz_localize(None)).total_seconds().to_numpy()
    t_out: list[float] = []
    off_out: list[float] = []
    before = _offset_s(zone, epoch0)
    for k in np.flatnonzero(offsets[1:] != offsets[:-1]) + 1:
        lo, hi = int(hours[k - 1].timestamp()), int(hours[k].timestamp())  # the offset changes within (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _offset_s(zone, mid) == offsets[k - 1] else (lo, mid)
        t = hi - epoch0
        if 0 < t <= span_s and offsets[k] != before:
            t_out.append(float(t))
            off_out.append(float(offsets[k]))
            before = float(offsets[k])
    return t_out, off_out


class WallClock:
    """Local wall-clock time over a run, from a table of the zone's UTC offset changes.

    Attributes:
        zone: The time zone of the wall-clock rules.
        start: The scenario start in `zone`.
        week0_s: Local seconds from the Monday 00:00 of the start's week to the start.
        day0_s: Local seconds from the start's local midnight to the start.
        change_t_s: ``t_s`` of every UTC offset change in (0, horizon + `MARGIN_S`], in order.
        shift_s: Local time minus real time since the start, before the first change and after each.
        fixed: True when the offset never changes over the run (every mapping is the identity).
    """

    __slots__ = ("_change", "_given_start", "_starts", "change_t_s", "day0_s", "fixed", "shift_s", "start", "week0_s",
                 "zone")  # fmt: skip

    def __init__(self, start: dt.datetime, zone: dt.tzinfo | None, horizon_s: float) -> None:
        """Table the offset changes of `zone` (None: the fixed offset of `start`) over `horizon_s`."""
        self.zone: dt.tzinfo = zone if zone is not None else start.tzinfo  # type: ignore[assignment]
        self._given_start = None if zone is not None else start
        self.start = start.astimezone(self.zone)
        s = self.start
        self.day0_s = s.hour * S_PER_H + s.minute * 60.0 + s.second + s.microsecond / 1e6
        self.week0_s = s.weekday() * S_PER_DAY + self.day0_s
        t, offsets = _changes(s, self.zone, horizon_s + MARGIN_S) if zone is not None else ([], [])
        off0 = _offset_s(self.zone, s.timestamp())
        self.change_t_s = tuple(t)
        self.shift_s = (0.0, *(o - off0 for o in offsets))
        self.fixed = not t
        self._change = np.asarray(t, dtype=float)
        # wall_s at which each piece of constant offset begins (the first: always)
        self._starts = [-math.inf] + [c + sh for c, sh in zip(t, self.shift_s[1:], strict=True)]

    @classmethod
    def of(cls, scenario: Scenario) -> WallClock:
        """The wall clock of `scenario`: its `timezone`, or the fixed UTC offset of its `start`."""
        zone = ZoneInfo(scenario.timezone) if scenario.timezone is not None else None
        return cls(scenario.start, zone, scenario.horizon_s)

    def wall_s(self, t_s: float) -> float:
        """Local wall-clock seconds since the start at `t_s`."""
        if self.fixed:
            return t_s
        return t_s + self.shift_s[bisect_right(self.change_t_s, t_s)]

    def wall_s_many(self, t_s: np.ndarray) -> np.ndarray:
        """`wall_s` of an array of times."""
        t = np.asarray(t_s, dtype=float)
        if self.fixed:
            return t
        return t + np.asarray(self.shift_s)[np.searchsorted(self._change, t, side="right")]

    def t_s(self, wall_s: float) -> float:
        """The first ``t_s`` at which the wall clock reads `wall_s`.

        A time the clock skips (spring forward) gives the instant of the jump; a time it
        shows twice (autumn) gives its first occurrence.
        """
        if self.fixed:
            return wall_s
        i = bisect_right(self._starts, wall_s) - 1
        if i > 0 and wall_s - self.shift_s[i - 1] < self.change_t_s[i - 1]:
            return wall_s - self.shift_s[i - 1]  # the clock went back: the first pass
        t = wall_s - self.shift_s[i]
        if i < len(self.change_t_s) and t >= self.change_t_s[i]:
            return self.change_t_s[i]  # skipped: the clock jumped past it here
        return t

    def segments(self, a_s: float, b_s: float) -> list[tuple[float, float, float]]:
        """[a_s, b_s) cut at the offset changes: (from t_s, to t_s, shift_s) of each piece, in order."""
        if self.fixed:
            return [(a_s, b_s, 0.0)]
        i = bisect_right(self.change_t_s, a_s)
        out, lo = [], a_s
        while i < len(self.change_t_s) and self.change_t_s[i] < b_s:
            out.append((lo, self.change_t_s[i], self.shift_s[i]))
            lo = self.change_t_s[i]
            i += 1
        out.append((lo, b_s, self.shift_s[i]))
        return out

    def pieces(self, step_s: float, a_s: float, b_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[a_s, b_s) cut at local multiples of `step_s` (from Monday 00:00) and at offset changes.

        Returns:
            (from, to, shift_s) per piece: `from` and `to` in week seconds; the piece's real
            times are ``week seconds - week0_s - shift_s``, and its local step number (hour
            of the week for 3600 s) is ``from // step_s``. A skipped hour has no piece; an
            hour shown twice has two.
        """
        lo_parts, hi_parts, shift_parts = [], [], []
        for lo_t, hi_t, shift in self.segments(a_s, b_s):
            lo_w, hi_w = self.week0_s + lo_t + shift, self.week0_s + hi_t + shift
            first, last = int(lo_w // step_s), math.ceil(hi_w / step_s)
            edges = np.arange(first, last + 1) * step_s
            lo_parts.append(np.maximum(edges[:-1], lo_w))
            hi_parts.append(np.minimum(edges[1:], hi_w))
            shift_parts.append(np.full(last - first, shift))
        lo, hi, sh = np.concatenate(lo_parts), np.concatenate(hi_parts), np.concatenate(shift_parts)
        keep = hi > lo
        return lo[keep], hi[keep], sh[keep]

    def timestamps(self, t_s: np.ndarray) -> pd.DatetimeIndex:
        """Local calendar time at each `t_s`, aware in `zone` (a fixed offset: as the start was written)."""
        start = self._given_start if self._given_start is not None else self.start
        return pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(np.asarray(t_s, dtype=float), unit="s"))
