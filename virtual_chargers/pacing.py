"""A simulation paced against the wall clock, so real backends (a CSMS, an OpenADR server) can take part.

One thread: an asyncio loop advances `sim.engine.Simulation` to the simulated time that matches the
wall clock (a `SimClock` at some speed), and what the backends send in between is applied at the
simulated time it arrives. The simulation itself does not know it is paced. The pacer measures how
far the simulation falls behind the wall clock, and warns when the machine or a backend cannot keep
up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim.engine import RunTables, Simulation
from virtual_chargers.clock import SimClock

__all__ = ["Lag", "Pacer"]

log = logging.getLogger(__name__)

Input = Callable[[Simulation], None]  # something a backend sent, applied at the current simulated time


@dataclass
class Lag:
    """How late the simulation ran behind the wall clock, in wall-clock seconds, sampled at each step."""

    samples_s: list[float] = field(default_factory=list)
    warnings: int = 0

    def summary(self) -> dict[str, float | int]:
        """p50, p99 and maximum lag, with the number of samples and warnings."""
        x = np.asarray(self.samples_s) if self.samples_s else np.zeros(1)
        return {
            "lag_p50_s": float(np.percentile(x, 50)),
            "lag_p99_s": float(np.percentile(x, 99)),
            "lag_max_s": float(x.max()),
            "steps": len(self.samples_s),
            "warnings": self.warnings,
        }


class Pacer:
    """Advance a `Simulation` in step with a `SimClock`, applying backend inputs as they arrive."""

    def __init__(
        self,
        simulation: Simulation,
        clock: SimClock,
        *,
        tick_s: float = 0.05,
        warn_lag_s: float = 1.0,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Pace `simulation` on `clock`.

        Args:
            simulation: The run to pace.
            clock: Its simulated time: ``clock.t_s()`` is where the simulation should be.
            tick_s: Longest wall-clock sleep, so inputs are applied promptly.
            warn_lag_s: Log a warning when the simulation falls this far (wall seconds) behind.
            progress: Called with the fraction of the horizon done, about once per simulated hour.
        """
        self.simulation = simulation
        self.clock = clock
        self.tick_s = tick_s
        self.warn_lag_s = warn_lag_s
        self.progress = progress
        self.lag = Lag()
        self._inputs: list[Input] = []
        self._wake = asyncio.Event()
        self._stopped = False

    def submit(self, item: Input) -> None:
        """Apply `item` to the simulation at the simulated time it is next advanced to."""
        self._inputs.append(item)
        self._wake.set()

    def stop(self) -> None:
        """End the run at the current simulated time."""
        self._stopped = True
        self._wake.set()

    async def run(self) -> RunTables:
        """Advance until the horizon (or `stop`), then return the run's tables."""
        sim = self.simulation
        horizon_s = sim.scenario.horizon_s
        behind = False
        next_progress_s = 0.0
        while sim.t_s < horizon_s and not self._stopped:
            target_s = min(self.clock.t_s(), horizon_s)
            sim.advance(target_s)
            inputs, self._inputs = self._inputs, []
            for item in inputs:
                item(sim)
            lag_s = max(0.0, time.monotonic() - self._wall_of(sim.t_s))
            self.lag.samples_s.append(lag_s)
            if lag_s > self.warn_lag_s and not behind:
                self.lag.warnings += 1
                log.warning("the simulation is %.1f s behind the wall clock; lower the speed or the load", lag_s)
            behind = lag_s > self.warn_lag_s
            if self.progress is not None and sim.t_s >= next_progress_s:
                self.progress(sim.t_s / horizon_s)
                next_progress_s = sim.t_s + 3600.0
            self._wake.clear()
            wait_s = self.clock.to_wall_s(min(sim.next_event_t_s, horizon_s) - self.clock.t_s())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(max(wait_s, 0.0), self.tick_s))
        return sim.finish()

    def _wall_of(self, t_s: float) -> float:
        """The monotonic wall time at which the clock reads `t_s`."""
        return time.monotonic() - self.clock.to_wall_s(self.clock.t_s() - t_s)
