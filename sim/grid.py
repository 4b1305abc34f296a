"""Grid signals: energy prices and demand-response windows.

Prices and demand-response windows are known before the run (a scheduled event is in
the scenario; random ones are drawn from each site's ``dr:<site>`` stream), so the run
only turns them into events at the right times: `DemandResponse` announces, starts and
ends each window and takes a manager's opt-out. PV and storage behind the meter act on
charging as the run goes: see `sim.behind_meter`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
import simpy

from sim.csvfiles import read_price_series
from sim.managers.base import (
    DemandResponseEnded,
    DemandResponseNotified,
    DemandResponseStarted,
    NetworkView,
    OptOutDemandResponse,
)
from sim.recorder import Table
from sim.rng import stream
from sim.units import S_PER_DAY, S_PER_H, S_PER_MIN
from sim.wallclock import WallClock

if TYPE_CHECKING:
    from sim.charging import Bus, LoadListener
    from sim.config import Scenario
    from sim.config.grid import EnergyPrice
    from sim.hardware import SiteState
    from sim.ids import SiteId

__all__ = ["DemandResponse", "DrWindow", "PriceSignal", "dr_windows"]


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
    min_kw: float | None = None  # an increase event: draw at least this


def dr_windows(scenario: Scenario, site_limits_kw: list[float]) -> list[DrWindow]:
    """Every demand-response window of the run, scheduled and random, in start order."""
    ids = [s.id for s in scenario.network.sites]
    start = scenario.start
    clock = WallClock.of(scenario)
    out: list[tuple[float, int, float, float, float | None, float | None, bool, float | None]] = []
    for e in scenario.grid.demand_response.events:
        t0 = (e.start - start).total_seconds()
        for site in e.sites or ids:
            out.append((t0, ids.index(site), t0 - e.notify_min * S_PER_MIN, t0 + e.duration_min * S_PER_MIN,
                        e.cap_kw, e.shed_kw, e.opt_out_allowed, e.min_kw))  # fmt: skip
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
                    out.append((t0, k, t0 - rnd.notify_min * S_PER_MIN, t0 + dur, cap, None, False, None))
    out.sort(key=lambda w: (w[0], w[1]))
    return [DrWindow(i, k, max(n, 0.0), t0, end, cap, shed, opt, increase)
            for i, (t0, k, n, end, cap, shed, opt, increase) in enumerate(out)]  # fmt: skip


class DemandResponse:
    """Demand-response events as the run goes: announced, in force, ended or declined, and their tables."""

    def __init__(self, env: simpy.Environment, sites: list[SiteState], bus: Bus, view: NetworkView,
                 load: LoadListener) -> None:  # fmt: skip
        """No event yet: `announce_in` and `start_in` add each window."""
        self.env = env
        self.sites = sites
        self.site_index = {s.site_id: s.index for s in sites}
        self.bus = bus
        self.view = view
        self.load = load
        # cap_kw inf and min_kw > 0 for an increase event; min_kw 0 for the others.
        self.dr = Table(floats=("notify_t_s", "start_t_s", "end_t_s", "cap_kw", "min_kw"),
                        ints=("event_id", "site", "opt_out"))  # fmt: skip
        # Opt-outs a manager asked for: accepted (1) or refused (0), and when.
        self.opt_outs = Table(floats=("t_s",), ints=("event_id", "site", "accepted"))
        self._windows: dict[tuple[int, int], DrWindow] = {}  # (event id, site index) → announced, not ended
        self._caps: dict[tuple[int, int], float] = {}  # the caps in force, by (event id, site index)
        self._mins: dict[tuple[int, int], float] = {}  # the increase events in force, by (event id, site index)
        self._opted_out: set[tuple[int, int]] = set()
        self._next_id = 1_000_000  # ids of signals added while running (`add_signal`), after the scenario's own

    def add_signal(
        self,
        site_id: SiteId,
        start_t_s: float,
        end_t_s: float,
        cap_kw: float | None,
        shed_kw: float | None,
        opted_out: bool,
    ) -> None:
        """A signal from outside the scenario (`sim.engine.Simulation.demand_response`), announced now."""
        if (cap_kw is None) == (shed_kw is None):
            raise ValueError("give exactly one of cap_kw or shed_kw")
        now = self.env.now
        start = max(start_t_s, now)
        if end_t_s <= start:
            return
        window = DrWindow(self._next_id, self.site_index[site_id], now, start, end_t_s, cap_kw, shed_kw, True)
        self._next_id += 1
        self.announce_in(window, 0.0)
        if opted_out:  # right after the announcement, at the same instant

            def decline(_: simpy.Event) -> None:
                self.opt_out(site_id, window.event_id, now)

            self.env.timeout(0.0).callbacks.append(decline)
        self.start_in(window, start - now)

    def announce_in(self, window: DrWindow, in_s: float) -> None:
        """Announce `window` to the managers `in_s` seconds from now."""
        self.env.timeout(in_s, window).callbacks.append(self._notify)

    def start_in(self, window: DrWindow, in_s: float) -> None:
        """Start `window`'s cap `in_s` seconds from now; it ends at its end time."""
        self.env.timeout(in_s, window).callbacks.append(self._start)

    def _notify(self, event: simpy.Event) -> None:
        w = cast(DrWindow, event.value)
        site = self.sites[w.site_index]
        self._windows[(w.event_id, w.site_index)] = w
        self.bus.send(DemandResponseNotified(self.env.now, site.site_id, w.start_t_s, w.end_t_s, w.cap_kw, w.shed_kw,
                                             w.opt_out_allowed, w.event_id, w.min_kw))  # fmt: skip

    def opt_out(self, site_id: SiteId, event_id: int, t_s: float) -> bool:
        """Decline event `event_id` at `site_id` if it allows it and has not ended; recorded either way."""
        k = self.site_index[site_id]
        key = (event_id, k)
        w = self._windows.get(key)
        accepted = w is not None and w.opt_out_allowed
        self.opt_outs.add_floats((t_s,))
        self.opt_outs.add_ints((event_id, k, int(accepted)))
        if accepted and key not in self._opted_out:  # a second opt-out changes nothing
            self._opted_out.add(key)
            cap_kw = self._caps.pop(key, None)
            if cap_kw is not None:  # in force: lifted now
                site = self.sites[k]
                site.dr_caps.remove(cap_kw)
                self.load.site_changed(site)
                self.bus.send(DemandResponseEnded(t_s, site.site_id))
            min_kw = self._mins.pop(key, None)
            if min_kw is not None:
                self.sites[k].dr_mins.remove(min_kw)
                self.bus.send(DemandResponseEnded(t_s, self.sites[k].site_id))
        return accepted

    def on_opt_out(self, c: OptOutDemandResponse, t_s: float) -> None:
        """A manager declines an event."""
        self.opt_out(c.site_id, c.event_id, t_s)

    def _start(self, event: simpy.Event) -> None:
        """The cap begins: a shed is taken from the site's power at this instant."""
        w = cast(DrWindow, event.value)
        site = self.sites[w.site_index]
        t_s = self.env.now
        if w.min_kw is not None:
            self._start_increase(w, site, t_s)
            return
        if w.cap_kw is not None:
            cap_kw = w.cap_kw
        else:
            assert w.shed_kw is not None
            cap_kw = max(0.0, sum(e.power_kw for e in self.view.site(site.site_id).evses) - w.shed_kw)
        self.dr.add_floats((w.notify_t_s, w.start_t_s, w.end_t_s, cap_kw, 0.0))
        self.dr.add_ints((w.event_id, site.index, int(w.opt_out_allowed)))
        key = (w.event_id, site.index)
        self.env.timeout(w.end_t_s - t_s, key).callbacks.append(self._end)
        if key in self._opted_out:  # declined before it began: the cap never applies
            return
        self._caps[key] = cap_kw
        site.dr_caps.append(cap_kw)
        self.load.site_changed(site)
        self.bus.send(DemandResponseStarted(t_s, site.site_id, cap_kw))

    def _start_increase(self, w: DrWindow, site: SiteState, t_s: float) -> None:
        """An increase event begins: the site is asked to draw at least `min_kw`; it limits nothing."""
        assert w.min_kw is not None
        self.dr.add_floats((w.notify_t_s, w.start_t_s, w.end_t_s, math.inf, w.min_kw))
        self.dr.add_ints((w.event_id, site.index, int(w.opt_out_allowed)))
        key = (w.event_id, site.index)
        self.env.timeout(w.end_t_s - t_s, key).callbacks.append(self._end)
        if key in self._opted_out:
            return
        self._mins[key] = w.min_kw
        site.dr_mins.append(w.min_kw)
        self.bus.send(DemandResponseStarted(t_s, site.site_id, math.inf, w.min_kw))

    def _end(self, event: simpy.Event) -> None:
        key = cast(tuple[int, int], event.value)
        self._windows.pop(key, None)
        min_kw = self._mins.pop(key, None)
        if min_kw is not None:
            site = self.sites[key[1]]
            site.dr_mins.remove(min_kw)
            self.bus.send(DemandResponseEnded(self.env.now, site.site_id))
            return
        cap_kw = self._caps.pop(key, None)
        if cap_kw is None:  # opted out
            return
        site = self.sites[key[1]]
        site.dr_caps.remove(cap_kw)
        self.load.site_changed(site)
        self.bus.send(DemandResponseEnded(self.env.now, site.site_id))
