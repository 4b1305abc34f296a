"""The network manager's side of the OCPP-shaped bus: events in, commands out, views to read.

A manager never touches simulation objects. It receives small frozen events (what a
charger tells a CSMS) and a `NetworkView` to read the network's state at that instant,
and answers with frozen commands (what a CSMS sends a charger). The same manager can so
drive simulated chargers or, through `virtual_chargers/`, real ones.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sim.ids import ChargerId, EvseId, SessionId, SiteId

__all__ = [
    "AllocatingManager",
    "ChangeAvailability",
    "Command",
    "CompositeManager",
    "DispatchTechnician",
    "Event",
    "FaultReported",
    "RepairCompleted",
    "Reset",
    "ScheduleMaintenance",
    "Tick",
    "EvseStatus",
    "EvseView",
    "NetworkManager",
    "NetworkView",
    "SessionStarted",
    "SessionStopped",
    "SetPowerLimit",
    "SiteView",
    "StatusChanged",
]


class EvseStatus(enum.Enum):
    """Connector status, as in OCPP 1.6 StatusNotification."""

    AVAILABLE = "Available"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FAULTED = "Faulted"
    UNAVAILABLE = "Unavailable"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """An EV plugged in and its session began."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    session_id: SessionId


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A connector changed status without a session starting or stopping (e.g. EV full)."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    status: EvseStatus


@dataclass(frozen=True, slots=True)
class SessionStopped:
    """The EV left; `energy_kwh` is what the session delivered."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    session_id: SessionId
    energy_kwh: float


@dataclass(frozen=True, slots=True)
class FaultReported:
    """A charger reports a fault (StatusNotification Faulted with an error code).

    `after_reset` is true when the fault is still there after a remote reset.
    """

    t_s: float
    site_id: SiteId
    charger_id: ChargerId
    fault_id: int
    mode: str
    error_code: str
    evse_ids: tuple[EvseId, ...]
    after_reset: bool = False


@dataclass(frozen=True, slots=True)
class RepairCompleted:
    """A fault is cleared; `by` is ``"reset"`` or ``"technician"``."""

    t_s: float
    site_id: SiteId
    charger_id: ChargerId
    fault_id: int
    by: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A timer: once a simulated day at midnight of the scenario's start zone offset."""

    t_s: float


Event = SessionStarted | StatusChanged | SessionStopped | FaultReported | RepairCompleted | Tick


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SetPowerLimit:
    """Limit one connector's power (an OCPP TxProfile with one period); inf lifts the limit."""

    evse_id: EvseId
    power_kw: float

    def __post_init__(self) -> None:
        """Fail fast on a limit that no charger could apply."""
        if not self.power_kw >= 0:
            raise ValueError(f"power_kw(={self.power_kw}) must be >= 0")


@dataclass(frozen=True, slots=True)
class Reset:
    """Reboot a charger remotely (OCPP Reset); its ports are out of service meanwhile."""

    charger_id: ChargerId


@dataclass(frozen=True, slots=True)
class DispatchTechnician:
    """Send a technician of the site's crew to repair a reported fault."""

    charger_id: ChargerId
    fault_id: int


@dataclass(frozen=True, slots=True)
class ScheduleMaintenance:
    """Queue a preventive maintenance visit to a charger, to start no earlier than `t_s`."""

    charger_id: ChargerId
    t_s: float


@dataclass(frozen=True, slots=True)
class ChangeAvailability:
    """Take a connector out of service (`operative` false) or back (OCPP ChangeAvailability)."""

    evse_id: EvseId
    operative: bool


Command = SetPowerLimit | Reset | DispatchTechnician | ScheduleMaintenance | ChangeAvailability


# ---------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class EvseView:
    """One connector as a CSMS would know it."""

    evse_id: EvseId
    charger_id: ChargerId
    status: EvseStatus
    max_power_kw: float
    limit_kw: float
    power_kw: float
    session_id: SessionId | None


@dataclass(frozen=True, slots=True)
class SiteView:
    """One site: its grid limit and its connectors."""

    site_id: SiteId
    capacity_kw: float
    evses: tuple[EvseView, ...]


class NetworkView(Protocol):
    """Read access to the network at the current instant."""

    @property
    def t_s(self) -> float:
        """Simulation time in seconds since the scenario start."""
        ...

    def site(self, site_id: SiteId) -> SiteView:
        """A snapshot of one site."""
        ...

    def site_ids(self) -> tuple[SiteId, ...]:
        """Every site of the network, in scenario order."""
        ...


class NetworkManager(Protocol):
    """Anything that answers events with commands."""

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Return the commands to send in answer to `event`."""
        ...


class AllocatingManager:
    """A manager made of one function that allocates power within a site.

    The function is re-run for the affected site on every session start, status change
    and session stop; the commands are the limits that changed.
    """

    def __init__(self, allocate: Callable[[SiteView], Mapping[EvseId, float]]) -> None:
        """Wrap `allocate(site) -> {evse_id: power_kw}`; connectors it leaves out are unlimited."""
        self._allocate = allocate

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Re-allocate the event's site and send the limits that changed."""
        if isinstance(event, Tick | RepairCompleted):
            return ()
        site = network.site(event.site_id)
        limits = self._allocate(site)
        commands = []
        for e in site.evses:
            kw = limits.get(e.evse_id, math.inf)
            if kw != e.limit_kw:
                commands.append(SetPowerLimit(e.evse_id, kw))
        return commands


class CompositeManager:
    """Several managers in one slot (e.g. power allocation and maintenance operations).

    Every event goes to each manager in order; their commands are sent in that order.
    """

    def __init__(self, managers: Sequence[NetworkManager]) -> None:
        """Combine `managers`."""
        self._managers = tuple(managers)

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Collect the commands of every manager."""
        commands: list[Command] = []
        for m in self._managers:
            commands.extend(m.handle(event, network))
        return commands
