"""Grid signals: energy prices and demand-response windows.

Prices and demand-response windows are known before the run (a scheduled event is in
the scenario; random ones are drawn from each site's ``dr:<site>`` stream), so the engine
only turns them into events at the right times. PV and storage behind the meter act on
charging as the run goes: see `sim.behind_meter`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.csvfiles import read_price_series
from sim.rng import stream
from sim.units import S_PER_DAY, S_PER_H, S_PER_MIN
from sim.wallclock import WallClock

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.config.grid import EnergyPrice

__all__ = ["DrWindow", "PriceSignal", "dr_windows"]


class PriceSignal:
    """The energy price over the run, piecewise constant between breakpoints."""

    def __init__(self, cfg: EnergyPrice, scenario: Scenario) -> None:
        """Lay the price out from time 0 to the horizon."""
        horizon_s = scenario.horizon_s
        start = scenario.start
        if cfg.kind == "flat":
            t, p = [0.0], [cfg.per_kwh]
        elif cfg.kind == "tou":  # by local hour of the day, weekdays and weekend apart
            clock = WallClock.of(scenario)
            lo, _, shift = clock.pieces(S_PER_H, 0.0, horizon_s + S_PER_H)
            hour_of_week = (lo // S_PER_H).astype(np.int64) % 168
            weekend = np.asarray(cfg.weekend_per_kwh_by_hour or cfg.per_kwh_by_hour)
            weekday_p = np.asarray(cfg.per_kwh_by_hour)
            hour = hour_of_week % 24
            price = np.where(hour_of_week >= 5 * 24, weekend[hour], weekday_p[hour])
            t, p = (lo - clock.week0_s - shift).tolist(), price.tolist()
        else:
            df = read_price_series(cfg.path)
            t = ((df["timestamp"] - pd.Timestamp(start)).dt.total_seconds().clip(lower=0.0)).tolist()
            p = df["price_per_kwh"].astype(float).tolist()
        # Keep the last price of any breakpoint repeated at one time, and only real changes.
        self.t_s: list[float] = []
        self.price_per_kwh: list[float] = []
        for ti, pi in zip(t, p, strict=True):
            if self.t_s and ti == self.t_s[-1]:
                self.price_per_kwh[-1] = pi
            elif not self.price_per_kwh or pi != self.price_per_kwh[-1]:
                self.t_s.append(ti)
                self.price_per_kwh.append(pi)

    def at(self, t_s: float) -> float:
        """The price in force at `t_s`."""
        return self.price_per_kwh[max(bisect_right(self.t_s, t_s) - 1, 0)]

    def at_many(self, t_s: np.ndarray) -> np.ndarray:
        """`at` for an array of times."""
        k = np.maximum(np.searchsorted(np.asarray(self.t_s), t_s, side="right") - 1, 0)
        return np.asarray(self.price_per_kwh)[k]

    def changes(self) -> list[tuple[float, float]]:
        """Every (t_s, new price) after time 0."""
        return [(t, p) for t, p in zip(self.t_s, self.price_per_kwh, strict=True) if t > 0]


@dataclass(frozen=True, slots=True)
class DrWindow:
    """One demand-response event at one site."""

    event_id: int
    site_index: int
    notify_t_s: float
    start_t_s: float
    end_t_s: float
    cap_kw: float | None
    shed_kw: float | None
    opt_out_allowed: bool


def dr_windows(scenario: Scenario, site_limits_kw: list[float]) -> list[DrWindow]:
    """Every demand-response window of the run, scheduled and random, in start order."""
    ids = [s.id for s in scenario.network.sites]
    start = scenario.start
    clock = WallClock.of(scenario)
    out: list[tuple[float, int, float, float, float | None, float | None, bool]] = []
    for e in scenario.grid.demand_response.events:
        t0 = (e.start - start).total_seconds()
        for site in e.sites or ids:
            out.append((t0, ids.index(site), t0 - e.notify_min * S_PER_MIN, t0 + e.duration_min * S_PER_MIN,
                        e.cap_kw, e.shed_kw, e.opt_out_allowed))  # fmt: skip
    rnd = scenario.grid.demand_response.random
    if rnd is not None and rnd.per_site_per_month > 0:
        days = scenario.horizon_days
        for k, site in enumerate(ids):
            rng = stream(scenario.seed, f"dr:{site}")
            n = rng.poisson(rnd.per_site_per_month * days / 30.0)
            day = rng.integers(0, max(int(days), 1), n)
            hour = rng.uniform(*rnd.window_h, n)
            duration = rnd.duration_min.draw(rng, n) * S_PER_MIN
            for d, h, dur in zip(day.tolist(), hour.tolist(), duration.tolist(), strict=True):
                t0 = clock.t_s(d * S_PER_DAY + h * S_PER_H - clock.day0_s)  # local hour h, d days on
                if 0 <= t0 < scenario.horizon_s:
                    cap = rnd.cap_frac * site_limits_kw[k]
                    out.append((t0, k, t0 - rnd.notify_min * S_PER_MIN, t0 + dur, cap, None, False))
    out.sort(key=lambda w: (w[0], w[1]))
    return [DrWindow(i, k, max(n, 0.0), t0, end, cap, shed, opt)
            for i, (t0, k, n, end, cap, shed, opt) in enumerate(out)]  # fmt: skip
