"""A callback after a delay on SimPy's queue without a `simpy.Timeout`: the two events of every session.

``env.timeout(delay_s, value).callbacks.append(callback)`` builds a Timeout (its constructor, then
`Environment.schedule`) and appends to its callback list. `Timers.call_in` queues the same entry —
at ``now + delay_s``, with SimPy's next event id, an event already triggered with `value` — so
events run at the same times and in the same order, for less work. Like `sim.charging.FullAlarms`,
it reads SimPy's queue and event-id counter (`Environment._queue`, `_eid`), as `Environment.schedule`
does.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush

import simpy
from simpy.events import NORMAL

__all__ = ["Due", "Timers"]


class Due(simpy.Event):
    """An event already triggered with `value`, whose one callback is `callback`: what `Timers.call_in` queues."""

    def __init__(self, env: simpy.Environment, value: object, callback: Callable[[simpy.Event], None]) -> None:
        """As `simpy.Timeout` sets itself up, without scheduling itself."""
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


class Timers:
    """Callbacks on one environment's queue."""

    __slots__ = ("_eid", "_queue", "env")

    def __init__(self, env: simpy.Environment) -> None:
        """Timers on `env`."""
        self.env = env
        self._queue = env._queue  # type: ignore[attr-defined]
        self._eid = env._eid  # type: ignore[attr-defined]

    def call_in(self, delay_s: float, value: object, callback: Callable[[simpy.Event], None]) -> None:
        """Call `callback` with an event of value `value` in `delay_s` (>= 0), as a timeout made now would."""
        if delay_s < 0:
            raise ValueError(f"delay_s(={delay_s}) must be >= 0")
        env = self.env
        heappush(self._queue, (env._now + delay_s, NORMAL, next(self._eid), Due(env, value, callback)))  # type: ignore[attr-defined]
