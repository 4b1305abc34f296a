"""Drivers as Mesa agents: each arrival is a driver with an EV, a need, a dwell plan and a patience.

The decisions live in `Driver` methods so that later behaviour (site choice, price
response, memberships) extends them in one place. The model owns the scenario's
``drivers`` random stream; agents borrow it.
"""

from __future__ import annotations

import enum
import math

import mesa
import numpy as np

__all__ = ["Choice", "Driver", "DriverModel", "energy_factor"]

_BATCH = 4096


class Choice(enum.Enum):
    """What a driver does on arrival."""

    PLUG = "plug"
    QUEUE = "queue"
    BALK = "balk"


class DriverModel(mesa.Model):
    """The population of drivers currently at the network's sites."""

    def __init__(self, rng: np.random.Generator) -> None:
        """Use `rng` (the scenario's ``drivers`` stream) for every driver decision."""
        super().__init__(rng=rng)
        self._uniform: list[float] = []

    def uniform(self) -> float:
        """One U(0, 1) draw from the drivers stream, drawn in batches for speed."""
        if not self._uniform:
            self._uniform = self.rng.random(_BATCH).tolist()[::-1]
        return self._uniform.pop()


class Driver(mesa.Agent):
    """A driver at a site, from arrival until departure."""

    model: DriverModel

    def __init__(self, model: DriverModel, patience_s: float, max_queue: int, leave_when_charged: bool) -> None:
        """A driver who waits at most `patience_s` and balks at `max_queue` cars waiting."""
        super().__init__(model)
        self.patience_s = patience_s
        self.max_queue = max_queue
        self.leave_when_charged = leave_when_charged

    def choose(self, free_ports: int, queue_length: int) -> Choice:
        """Plug in if a port is free, else queue unless the queue is too long."""
        if free_ports > 0 and queue_length == 0:
            return Choice.PLUG
        if queue_length < self.max_queue and self.patience_s > 0:
            return Choice.QUEUE
        return Choice.BALK

    def pick_port(self, free_power_kw: list[float]) -> int:
        """Index of the port to use among the free ones, given their maximum power.

        A driver who leaves once charged takes one of the most powerful free ports; a driver
        who stays for a planned dwell one of the least powerful, leaving fast ports to those
        who need them. Ties are broken at random.
        """
        best = max(free_power_kw) if self.leave_when_charged else min(free_power_kw)
        if free_power_kw.count(best) == len(free_power_kw):
            return int(self.model.uniform() * len(free_power_kw))
        candidates = [i for i, kw in enumerate(free_power_kw) if kw == best]
        return candidates[int(self.model.uniform() * len(candidates))]

    def choose_site(self, utilities: list[float], u: float) -> int:
        """Index of the site a multinomial logit over `utilities` picks, given a U(0, 1) draw `u`."""
        top = max(utilities)
        weights = [math.exp(x - top) for x in utilities]
        threshold = u * sum(weights)
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if threshold < acc:
                return i
        return len(weights) - 1


def energy_factor(price_per_kwh: float, reference_per_kwh: float, elasticity: float) -> float:
    """Share of the energy need a driver still asks for at `price_per_kwh`: constant elasticity, at most 1."""
    return min(1.0, (price_per_kwh / reference_per_kwh) ** elasticity) if price_per_kwh > 0 else 1.0
