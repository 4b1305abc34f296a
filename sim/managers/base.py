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
from dataclasses import dataclass, field, fields
from typing import Protocol

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose
from sim.config.revenue import Tariff
from sim.ids import ChargerId, EvseId, SessionId, SiteId

__all__ = [
    "AllocatingManager",
    "DemandResponseEnded",
    "DemandResponseNotified",
    "DemandResponseStarted",
    "PriceChanged",
    "ChangeAvailability",
    "ClearChargingProfile",
    "Command",
    "CompositeManager",
    "DispatchTechnician",
    "Event",
    "FaultReported",
    "RepairCompleted",
    "RejectSession",
    "Reset",
    "ScheduleMaintenance",
    "SetChargingProfile",
    "Tick",
    "VehicleView",
    "EvseStatus",
    "EvseView",
    "NeedsSource",
    "NetworkManager",
    "NetworkView",
    "SessionStarted",
    "SessionStopped",
    "SetPowerLimit",
    "SetTariff",
    "SetTimer",
    "Timer",
    "SiteLimitChanged",
    "SiteView",
    "StatusChanged",
    "StorageView",
    "V2gView",
]


class EvseStatus(enum.Enum):
    """Connector status, as in OCPP 1.6 StatusNotification."""

    AVAILABLE = "Available"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    PREPARING = "Preparing"  # plugged in, not yet authorised
    FAULTED = "Faulted"
    UNAVAILABLE = "Unavailable"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """An EV plugged in and its session began; `plug_and_charge`: its ISO 15118 contract certificate authorises it."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    session_id: SessionId
    plug_and_charge: bool = False


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A connector changed status without a session starting or stopping (e.g. EV full)."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    status: EvseStatus


@dataclass(frozen=True, slots=True)
class SessionStopped:
    """The EV left; `energy_kwh` is what the session delivered (charged), `energy_discharged_kwh` what V2G took back."""

    t_s: float
    site_id: SiteId
    evse_id: EvseId
    session_id: SessionId
    energy_kwh: float
    energy_discharged_kwh: float = 0.0


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
    """A timer: once a simulated day at local midnight (the scenario's `timezone`; a day may be 23 or 25 h)."""

    t_s: float


@dataclass(frozen=True, slots=True)
class PriceChanged:
    """The energy price changed (network-wide)."""

    t_s: float
    price_per_kwh: float


@dataclass(frozen=True, slots=True)
class DemandResponseNotified:
    """A demand-response event is announced for a site: a cap, or a shed from the load at its start."""

    t_s: float
    site_id: SiteId
    start_t_s: float
    end_t_s: float
    cap_kw: float | None
    shed_kw: float | None
    opt_out_allowed: bool
    event_id: int = -1  # what `OptOutDemandResponse` names
    min_kw: float | None = None  # an increase event: draw at least this (cap_kw and shed_kw are None)


@dataclass(frozen=True, slots=True)
class DemandResponseStarted:
    """A demand-response event begins; the site's view shows the cap in `dr_cap_kw` until it ends.

    An increase event has no cap (`cap_kw` inf): it asks the site to draw at least `min_kw`
    (`SiteView.dr_min_kw`).
    """

    t_s: float
    site_id: SiteId
    cap_kw: float
    min_kw: float = 0.0


@dataclass(frozen=True, slots=True)
class DemandResponseEnded:
    """A demand-response event ends."""

    t_s: float
    site_id: SiteId


@dataclass(frozen=True, slots=True)
class SiteLimitChanged:
    """The power a site's chargers may draw changed without a demand-response signal.

    PV output stepped, or the battery ran empty or became usable again; `limit_kw` is the
    site's new `SiteView.limit_kw`.
    """

    t_s: float
    site_id: SiteId
    limit_kw: float


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer a manager set with `SetTimer` fired; ``"start"`` fires for every manager at time 0."""

    t_s: float
    name: str


Event = (
    SessionStarted
    | StatusChanged
    | SessionStopped
    | FaultReported
    | RepairCompleted
    | Tick
    | PriceChanged
    | DemandResponseNotified
    | DemandResponseStarted
    | DemandResponseEnded
    | SiteLimitChanged
    | Timer
)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SetPowerLimit:
    """Limit one connector's power for the current session; inf lifts the limit.

    The plain form of smart charging: one constant cap, dropped when the session ends,
    applied beside any charging profiles (the lower wins). A negative limit asks a
    bidirectional connector to discharge a V2G-capable EV at that power (within the
    connector's and the EV's limits, `SiteView.v2g`); anywhere else it holds the session
    at zero, as a limit of 0 does.
    """

    evse_id: EvseId
    power_kw: float

    def __post_init__(self) -> None:
        """Fail fast on a limit that no charger could apply."""
        if math.isnan(self.power_kw) or self.power_kw == -math.inf:
            raise ValueError(f"power_kw(={self.power_kw}) must be a number > -inf (negative: discharge)")


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


@dataclass(frozen=True, slots=True)
class OptOutDemandResponse:
    """Decline a demand-response event at a site (OpenADR's optOut; a site EMS's refusal of an external limit).

    Accepted only when the event allows it (`DemandResponseNotified.opt_out_allowed`) and has not
    ended: the cap is then lifted at once, or never applied if the event has not started. A
    refused opt-out leaves the cap in force. Both are recorded in ``dr_events.parquet``.
    """

    site_id: SiteId
    event_id: int


@dataclass(frozen=True, slots=True)
class RejectSession:
    """The backend refused the driver's authorization: the session on the connector ends now.

    The driver leaves with what was charged; the session's outcome is ``rejected``, its cause
    ``authorization`` (an OCPP Authorize, StartTransaction or TransactionEvent answer other
    than Accepted). Refused unless ``session_id`` is still on ``evse_id``.
    """

    evse_id: EvseId
    session_id: SessionId


@dataclass(frozen=True, slots=True)
class SetChargingProfile:
    """Install an OCPP charging profile on a connector, or on every connector of a charger.

    Profiles stack as OCPP smart charging does (see `sim.charging_profiles`); the connector's
    composite limit joins its other caps. A ChargePointMaxProfile goes to a charger.
    """

    profile: ChargingProfile
    evse_id: EvseId | None = None
    charger_id: ChargerId | None = None

    def __post_init__(self) -> None:
        """Exactly one target."""
        if (self.evse_id is None) == (self.charger_id is None):
            raise ValueError("give exactly one of evse_id or charger_id")


@dataclass(frozen=True, slots=True)
class ClearChargingProfile:
    """Remove profiles from a connector (or every connector of a charger), as OCPP ClearChargingProfile."""

    evse_id: EvseId | None = None
    charger_id: ChargerId | None = None
    profile_id: int | None = None
    purpose: ChargingProfilePurpose | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class SetTariff:
    """Show `tariff` to the drivers who start a session at the site from now on (dynamic pricing).

    Sessions already started keep the price they were shown, unless their tariff says
    `fixed_at_start: false`.
    """

    site_id: SiteId
    tariff: Tariff


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Ask for a `Timer` event named `name` at `t_s`."""

    t_s: float
    name: str


Command = (
    SetPowerLimit
    | SetChargingProfile
    | ClearChargingProfile
    | Reset
    | DispatchTechnician
    | ScheduleMaintenance
    | ChangeAvailability
    | RejectSession
    | OptOutDemandResponse
    | SetTariff
    | SetTimer
)


# ---------------------------------------------------------------- views


class NeedsSource(enum.Enum):
    """Where the manager's knowledge of an EV's state and needs comes from."""

    ISO15118 = "iso15118"  # the EV told the charger, and OCPP 2.0.1 passed it on: live
    TELEMATICS = "telematics"  # the carmaker's feed: late by `data_age_s`, and possibly wrong
    ESTIMATE = "estimate"  # nothing known: the manager has to assume


@dataclass(frozen=True, slots=True)
class VehicleView:
    """What an EV reported of itself, where it came from, and how old it is.

    Over ISO 15118 (and OCPP 2.0.1) it is live; through telematics `soc_frac` is the
    vehicle `data_age_s` ago (and may be off).
    """

    source: NeedsSource
    soc_frac: float
    capacity_kwh: float
    target_soc_frac: float
    data_age_s: float


@dataclass(frozen=True, slots=True, init=False)
class EvseView:
    """One connector as a CSMS would know it.

    `departure_t_s` and `energy_need_kwh` (still to deliver) are known only for EVs that
    report them — over ISO 15118 (and OCPP 2.0.1), or through the carmaker's telematics,
    as `SiteView.vehicle` says with the rest of the report; otherwise they are None and a
    manager estimates. A telematics `energy_need_kwh` is the reported need less the energy
    metered since the report. `ev_max_kw` comes with ISO 15118 only.
    """

    evse_id: EvseId
    charger_id: ChargerId
    status: EvseStatus
    max_power_kw: float
    limit_kw: float
    power_kw: float
    session_id: SessionId | None
    charger_max_kw: float = math.inf
    plug_t_s: float | None = None
    energy_kwh: float = 0.0
    departure_t_s: float | None = None
    energy_need_kwh: float | None = None
    ev_max_kw: float | None = None

    def __init__(
        self,
        evse_id: EvseId,
        charger_id: ChargerId,
        status: EvseStatus,
        max_power_kw: float,
        limit_kw: float,
        power_kw: float,
        session_id: SessionId | None,
        charger_max_kw: float = math.inf,
        plug_t_s: float | None = None,
        energy_kwh: float = 0.0,
        departure_t_s: float | None = None,
        energy_need_kwh: float | None = None,
        ev_max_kw: float | None = None,
    ) -> None:
        """The dataclass's own constructor, twice as fast: a view is built for every connector at every event.

        A frozen dataclass sets each field through ``object.__setattr__``; this sets the slots directly.
        """
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12 = _EVSE_VIEW_SLOTS
        s0(self, evse_id)
        s1(self, charger_id)
        s2(self, status)
        s3(self, max_power_kw)
        s4(self, limit_kw)
        s5(self, power_kw)
        s6(self, session_id)
        s7(self, charger_max_kw)
        s8(self, plug_t_s)
        s9(self, energy_kwh)
        s10(self, departure_t_s)
        s11(self, energy_need_kwh)
        s12(self, ev_max_kw)


# The slot setters of EvseView, in the order of its fields and of its constructor's arguments.
_EVSE_VIEW_SLOTS = tuple(getattr(EvseView, f.name).__set__ for f in fields(EvseView))


@dataclass(frozen=True, slots=True)
class StorageView:
    """A site's stationary battery as its energy management system reports it.

    `power_kw` is positive while discharging; `available_kw` is what it may discharge now
    (its rated power, or 0 after running empty until it has recharged a little).
    """

    capacity_kwh: float
    max_power_kw: float
    energy_kwh: float
    power_kw: float
    available_kw: float

    @property
    def soc_frac(self) -> float:
        """State of charge, a share of the capacity."""
        return self.energy_kwh / self.capacity_kwh


@dataclass(frozen=True, slots=True)
class V2gView:
    """A V2G-capable EV on a bidirectional connector: what it may give back now (ISO 15118-20 limits).

    `guard_soc_frac` is the departure guard: the SoC from which charging at full power (`full_kw`
    now, along the EV's curve at the port's rating) just reaches `departure_soc_frac` by
    `departure_t_s`; it rises as departure nears. `floor_soc_frac`, the lowest SoC it may be
    discharged to now, is the higher of the guard and the driver's minimum. A discharge stops at
    the floor; a manager keeps the guarantee by letting the EV charge at full power before its SoC
    meets the guard.
    """

    max_discharge_kw: float
    soc_frac: float
    capacity_kwh: float
    min_soc_frac: float
    departure_soc_frac: float
    departure_t_s: float
    floor_soc_frac: float
    full_kw: float
    guard_soc_frac: float = 0.0
    discharged_kwh: float = 0.0  # what the session has given back so far (the meter's export register)

    @property
    def headroom_kwh(self) -> float:
        """Energy it may still give back now: from its SoC down to its floor."""
        return max(self.soc_frac - self.floor_soc_frac, 0.0) * self.capacity_kwh


@dataclass(frozen=True, slots=True)
class SiteView:
    """One site: its limits, the current price and its connectors.

    `limit_kw` is what a manager must keep the site's chargers under: the grid connection,
    the transformer and any demand-response cap on import in force (`dr_cap_kw`, inf when
    none), plus the PV output now (`pv_kw`) and what the battery may discharge
    (`storage.available_kw`). `grid_limit_kw` is the import limit alone. With per-phase
    limits, each of L1, L2, L3 may also carry at most `phase_limit_kw`: a connector in
    `single_phase` draws all its power on that phase (0 for L1, 1 for L2, 2 for L3), any
    other a third on each. A connector in `panels` hangs on a panel (a charger group's
    feeder) whose every phase may carry at most the kW given with it: ``(panel, kW)``.
    """

    site_id: SiteId
    capacity_kw: float
    evses: tuple[EvseView, ...]
    limit_kw: float = math.inf
    dr_cap_kw: float = math.inf
    price_per_kwh: float = 0.0
    t_s: float = 0.0
    waiting: int = 0  # drivers queueing for a port
    # What EVs reported, by connector: here rather than in every `EvseView`, which are built
    # for every connector at every event and cost a little more with each field.
    vehicles: Mapping[EvseId, VehicleView] = field(default_factory=dict)
    pv_kw: float = 0.0
    storage: StorageView | None = None
    grid_limit_kw: float = math.inf
    phase_limit_kw: float = math.inf
    single_phase: Mapping[EvseId, int] = field(default_factory=dict)
    panels: Mapping[EvseId, tuple[int, float]] = field(default_factory=dict)
    # Bidirectional charging: the V2G-capable EVs on bidirectional connectors, the most the site may export
    # (grid.sites.<id>.export_limit_kw) and the least it is asked to draw by a demand-response increase event.
    v2g: Mapping[EvseId, V2gView] = field(default_factory=dict)
    export_limit_kw: float = math.inf
    dr_min_kw: float = 0.0
    export_price_per_kwh: float = 0.0  # what the operator is paid per kWh exported now (grid.export_price)

    def phase_load_kw(self, power_kw: Mapping[EvseId, float]) -> tuple[float, float, float]:
        """Power on L1, L2 and L3 when the connectors draw `power_kw`."""
        load = [0.0, 0.0, 0.0]
        single = self.single_phase
        for evse_id, kw in power_kw.items():
            p = single.get(evse_id)
            if p is None:
                for k in range(3):
                    load[k] += kw / 3
            else:
                load[p] += kw
        return (load[0], load[1], load[2])

    def vehicle(self, evse_id: EvseId) -> VehicleView | None:
        """What the EV on `evse_id` reported of itself (state of charge, target, age), None if nothing."""
        return self.vehicles.get(evse_id)

    def needs_source(self, evse_id: EvseId) -> NeedsSource:
        """Where the manager's knowledge of the EV on `evse_id` comes from; `ESTIMATE` when nothing is known."""
        v = self.vehicles.get(evse_id)
        return v.source if v is not None else NeedsSource.ESTIMATE


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

    def price_at(self, t_s: float) -> float:
        """The energy price at `t_s` (known ahead, like a day-ahead tariff)."""
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

    def __init__(self, allocate: Callable[[SiteView], Mapping[EvseId, float]], on_price: bool = False) -> None:
        """Wrap `allocate(site) -> {evse_id: power_kw}`; connectors it leaves out are unlimited.

        With `on_price`, every site is re-allocated when the price changes.
        """
        self._allocate = allocate
        self._on_price = on_price

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Re-allocate the event's site (every site on a price change) and send the limits that changed."""
        if isinstance(event, PriceChanged):
            if not self._on_price:
                return ()
            return [c for sid in network.site_ids() for c in self._commands(network.site(sid))]
        if isinstance(event, Tick | RepairCompleted | DemandResponseNotified | Timer):
            return ()
        return self._commands(network.site(event.site_id))

    def _commands(self, site: SiteView) -> list[Command]:
        limits = self._allocate(site)
        commands: list[Command] = []
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

    @property
    def managers(self) -> tuple[NetworkManager, ...]:
        """The combined managers, in the order events reach them."""
        return self._managers

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Collect the commands of every manager."""
        commands: list[Command] = []
        for m in self._managers:
            commands.extend(m.handle(event, network))
        return commands
