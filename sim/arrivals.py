"""Each site's arrivals on the clock: the hot path of every run.

`sim.demand` draws a site's arrivals as arrays before the run; an `ArrivalStream` hands them to
the drivers one by one at their times, converting a chunk of rows from numpy to Python values
at a time, and `start_arrivals` schedules every site's first as the run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import simpy

from sim import demand
from sim.ev_arrivals import NO_EV
from sim.hardware import SiteState
from sim.timers import Timers

__all__ = ["ArrivalStream", "start_arrivals"]

_CHUNK = 1024  # arrivals converted from numpy to Python floats at a time
Arrive = Callable[..., None]


class ArrivalStream:
    """One site's arrivals: each is a timeout whose callback hands it to the drivers and schedules the next.

    A chain of callbacks rather than a SimPy process per site: the same events in the same order,
    without resuming a generator at every arrival (the hot path of every run).
    """

    __slots__ = ("arr", "arrive", "callback", "env", "k", "row", "rows", "site", "timers")

    def __init__(self, timers: Timers, site: SiteState, arr: demand.SiteArrivals, arrive: Arrive) -> None:
        self.env = timers.env
        self.timers = timers
        self.site = site
        self.arr = arr
        self.arrive = arrive
        self.k = -1  # the number of the arrival scheduled
        self.rows: Iterator[tuple] = iter(())
        self.row: tuple = ()
        self.callback = self._on_arrival  # bound once

    def next(self) -> None:
        """Schedule the next arrival, if any."""
        row = next(self.rows, None)
        if row is None:
            lo = self.k + 1
            if lo >= len(self.arr):
                return
            row = next(self._chunk(lo))
        self.k += 1
        self.row = row
        self.timers.call_in(row[0] - self.env.now, None, self.callback)

    def _chunk(self, lo: int) -> Iterator[tuple]:
        """The arrivals ``lo:lo + _CHUNK`` as rows of Python values (converted from numpy a chunk at a time)."""
        arr, hi = self.arr, lo + _CHUNK
        t = arr.t_s[lo:hi].tolist()
        self.rows = zip(
            t,
            arr.model[lo:hi].tolist(),
            arr.soc_in_frac[lo:hi].tolist(),
            arr.target_soc_frac[lo:hi].tolist(),
            arr.dwell_s[lo:hi].tolist(),
            arr.patience_s[lo:hi].tolist(),
            arr.max_queue[lo:hi].tolist(),
            arr.leave_when_charged[lo:hi].tolist(),
            arr.iso15118[lo:hi].tolist(),
            arr.ev.states(lo, hi) if arr.ev is not None else [NO_EV] * len(t),
            strict=True,
        )
        return self.rows

    def _on_arrival(self, _: simpy.Event) -> None:
        self.arrive(self.site, self.k, *self.row)
        row = next(self.rows, None)
        if row is None:  # the chunk is done: the next one, if any
            self.next()
            return
        self.k += 1
        self.row = row
        self.timers.call_in(row[0] - self.env.now, None, self.callback)


def start_arrivals(streams: list[ArrivalStream]):  # noqa: ANN202 - a SimPy process
    """Schedule each site's first arrival as the run starts, in site order (it ends at once)."""
    for s in streams:
        s.next()
    yield from ()
