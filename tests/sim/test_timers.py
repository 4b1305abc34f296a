"""Timers on SimPy's queue: the callbacks a timeout would run, at the same times, in the same order."""

from __future__ import annotations

import pytest
import simpy

from sim.timers import Timers

DELAYS = [3.0, 0.0, 1.5, 3.0, 0.0, 2.25, 1.5, 3.0]


def _order(use_timers: list[bool]) -> list[tuple[float, int]]:
    """Schedule a callback per delay of `DELAYS`, with a timer or a timeout as told, twice over; return (time, k)."""
    env = simpy.Environment()
    timers = Timers(env)
    seen: list[tuple[float, int]] = []

    def note(event: simpy.Event) -> None:
        seen.append((env.now, event.value))
        if event.value < len(DELAYS):  # a second round scheduled from inside the callbacks
            k = event.value + len(DELAYS)
            if use_timers[k % len(use_timers)]:
                timers.call_in(DELAYS[event.value], k, note)
            else:
                env.timeout(DELAYS[event.value], k).callbacks.append(note)

    for k, delay in enumerate(DELAYS):
        if use_timers[k % len(use_timers)]:
            timers.call_in(delay, k, note)
        else:
            env.timeout(delay, k).callbacks.append(note)
    env.run()
    return seen


@pytest.mark.parametrize("use_timers", [[True], [True, False], [False, True, True]])
def test_timers_run_as_timeouts_would(use_timers: list[bool]) -> None:
    """Timers, alone or mixed with timeouts, call back at the times and in the order timeouts alone would."""
    by_timeouts = _order([False])
    assert by_timeouts[:3] == [(0.0, 1), (0.0, 4), (0.0, 9)]  # ties in the order they were scheduled
    assert len(by_timeouts) == 2 * len(DELAYS)
    assert _order(use_timers) == by_timeouts


def test_a_timer_in_the_past_is_refused() -> None:
    """A negative delay raises with its value, as a timeout's would."""
    with pytest.raises(ValueError, match=r"delay_s\(=-1.0\) must be >= 0"):
        Timers(simpy.Environment()).call_in(-1.0, None, lambda event: None)
