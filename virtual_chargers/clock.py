"""Simulated time for virtual chargers: a wall clock run ``speed`` times faster from a calendar start.

Every protocol interval (heartbeat, meter sampling, retries, reconnect backoff, firmware download)
sleeps on a `SimClock`, and every timestamp a charger sends is simulated time, so a day of OCPP
traffic can run in minutes. A `ChargerClock` is one charger's view of it: the same rate, plus a clock
error that a fault can change (a drifting or badly set real-time clock).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

__all__ = ["ChargerClock", "SimClock", "ocpp_time", "parse_ocpp_time"]


class SimClock:
    """Simulated time ``t_s`` (seconds since ``start``) advancing ``speed`` simulated seconds per wall second."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None, *, paused: bool = False) -> None:
        """Start the clock now (``paused``: at `resume`) at calendar time ``start`` (aware; default: now in UTC)."""
        if not speed > 0:
            raise ValueError(f"speed(={speed}) must be > 0")
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError(f"start(={start.isoformat()}) must be timezone-aware, e.g. 2026-03-02T00:00:00+01:00")
        self.speed = float(speed)
        self.start = start
        self._wall0 = time.monotonic()
        self._paused_at_s: float | None = 0.0 if paused else None

    def t_s(self) -> float:
        """Simulated seconds since start."""
        if self._paused_at_s is not None:
            return self._paused_at_s
        return (time.monotonic() - self._wall0) * self.speed

    def pause(self) -> None:
        """Stop simulated time where it is (e.g. while chargers boot); `resume` lets it run on from there."""
        if self._paused_at_s is None:
            self._paused_at_s = self.t_s()

    def resume(self) -> None:
        """Let simulated time run again from where `pause` held it."""
        if self._paused_at_s is not None:
            self._wall0 = time.monotonic() - self._paused_at_s / self.speed
            self._paused_at_s = None

    def set_speed(self, speed: float) -> None:
        """Run at ``speed`` from now on; simulated time goes on from where it is."""
        if not speed > 0:
            raise ValueError(f"speed(={speed}) must be > 0")
        t_s = self.t_s()
        self.speed = float(speed)
        if self._paused_at_s is None:
            self._wall0 = time.monotonic() - t_s / self.speed

    def now(self) -> datetime:
        """Simulated calendar time (timezone-aware)."""
        return self.start + timedelta(seconds=self.t_s())

    def at(self, t_s: float) -> datetime:
        """Calendar time of simulated second ``t_s``."""
        return self.start + timedelta(seconds=t_s)

    def t_s_of(self, when: datetime) -> float:
        """Simulated seconds since start of calendar time ``when`` (timezone-aware)."""
        return (when - self.start).total_seconds()

    def to_wall_s(self, sim_s: float) -> float:
        """Wall seconds that ``sim_s`` simulated seconds take."""
        return sim_s / self.speed

    def to_sim_s(self, wall_s: float) -> float:
        """Simulated seconds that pass in ``wall_s`` wall seconds."""
        return wall_s * self.speed

    async def sleep(self, sim_s: float) -> None:
        """Sleep ``sim_s`` simulated seconds (0 or less yields once)."""
        await asyncio.sleep(max(0.0, sim_s) / self.speed)

    async def sleep_until(self, t_s: float) -> None:
        """Sleep until simulated second ``t_s`` (returns at once if it has passed)."""
        await asyncio.sleep(max(0.0, t_s - self.t_s()) / self.speed)


class ChargerClock:
    """One charger's clock: the shared simulated time plus this charger's clock error.

    Intervals always run at the shared rate (they are timers, not the real-time clock); only the
    timestamps the charger writes into messages carry ``error_s`` and the drift since it was set.
    """

    __slots__ = ("_drift_from_t_s", "drift_ppm", "error_s", "sim")

    def __init__(self, sim: SimClock, error_s: float = 0.0, drift_ppm: float = 0.0) -> None:
        """A view of ``sim`` that is ``error_s`` ahead (negative: behind) and drifts ``drift_ppm``."""
        self.sim = sim
        self.error_s = error_s
        self.drift_ppm = drift_ppm
        self._drift_from_t_s = sim.t_s()

    def set_error(self, error_s: float, drift_ppm: float = 0.0) -> None:
        """Set the clock error now, e.g. from a clock-drift fault."""
        self.error_s = error_s
        self.drift_ppm = drift_ppm
        self._drift_from_t_s = self.sim.t_s()

    def t_s(self) -> float:
        """Simulated seconds since start (no error: this is the physical time of the charger)."""
        return self.sim.t_s()

    def now(self) -> datetime:
        """What the charger's real-time clock reads: simulated time plus its error."""
        t_s = self.sim.t_s()
        return self.sim.at(t_s + self.error_s + (t_s - self._drift_from_t_s) * self.drift_ppm * 1e-6)

    def timestamp(self) -> str:
        """`now` in the form OCPP messages carry."""
        return ocpp_time(self.now())

    async def sleep(self, sim_s: float) -> None:
        """Sleep ``sim_s`` simulated seconds."""
        await self.sim.sleep(sim_s)


def ocpp_time(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as OCPP messages carry it."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ocpp_time(text: str) -> datetime:
    """Parse an OCPP timestamp; raise ValueError naming it unless it is ISO 8601 with a zone."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return when
