"""Maintenance operators: managers that answer faults with resets, technicians and visits.

They fill the operations half of the manager slot next to a power manager (see
`CompositeManager`), so the same scenario can compare `reactive` and `preventive`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.ids import ChargerId
from sim.managers.base import (
    Command,
    DispatchTechnician,
    Event,
    FaultReported,
    NetworkView,
    Reset,
    ScheduleMaintenance,
    Tick,
)

__all__ = ["Preventive", "Reactive"]


class Reactive:
    """Repair on report: try a remote reset once, then send a technician."""

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Reset a newly reported fault; dispatch a technician if the reset did not clear it."""
        if isinstance(event, FaultReported):
            if event.after_reset:
                return (DispatchTechnician(event.charger_id, event.fault_id),)
            return (Reset(event.charger_id),)
        return ()


class Preventive(Reactive):
    """Reactive repairs plus a maintenance visit to every charger each `interval_s`.

    First visits are spread evenly over the first interval so the crews are not flooded.
    """

    def __init__(self, interval_s: float) -> None:
        """Visit every charger every `interval_s` seconds."""
        self.interval_s = interval_s
        self._due: dict[ChargerId, float] | None = None

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """On each daily tick, schedule the visits that have come due."""
        if not isinstance(event, Tick):
            return super().handle(event, network)
        if self._due is None:
            chargers = [e.charger_id for sid in network.site_ids() for e in network.site(sid).evses]
            unique = list(dict.fromkeys(chargers))
            self._due = {c: event.t_s + self.interval_s * (k + 1) / len(unique) for k, c in enumerate(unique)}
        commands: list[Command] = []
        for charger_id, due_t_s in self._due.items():
            if due_t_s <= event.t_s + 86400.0:
                commands.append(ScheduleMaintenance(charger_id, max(due_t_s, event.t_s)))
                self._due[charger_id] = due_t_s + self.interval_s
        return commands
