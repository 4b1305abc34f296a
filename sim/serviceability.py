"""Faults, repairs, crews, maintenance and the outage log behind NEVI uptime.

Each (charger, fault mode) pair is a `FaultUnit` whose next failure is drawn from its own
stream (``faults:<charger>:<mode>``), so switching faults on or off never changes the
arrivals. A failure takes ports down (or derates them); detected faults are reported to
the managers at once, silent ones when a driver fails to charge or a technician visits.
Technicians are SimPy processes that take jobs from their crew's queue, wait for their
shift, travel, diagnose and repair, ordering parts when the van does not carry them.

Ports are switched through the small `PortControl` protocol the engine implements; every
outage, failed attempt and technician visit is recorded as a row.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import simpy

from sim.config.base import Constant
from sim.config.serviceability import ExponentialTTF, FaultMode, Serviceability
from sim.ids import ChargerId
from sim.managers.base import Event, FaultReported, RepairCompleted
from sim.recorder import Table
from sim.rng import stream
from sim.units import S_PER_DAY, S_PER_H, S_PER_MIN, S_PER_WEEK
from sim.wallclock import WallClock

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.hardware import Charger, Evse, SiteState

__all__ = ["REPAIRED_BY", "VISIT_KINDS", "NoReliability", "PortControl", "Reliability", "ServiceRecord", "haversine_km"]

REPAIRED_BY = ("none", "reset", "technician", "self", "maintenance")  # outage end causes
_NONE, _RESET, _TECH, _SELF, _MAINT = range(5)
VISIT_KINDS = ("repair", "return", "maintenance")
_YEAR_S = 365.0 * S_PER_DAY
_EARTH_KM = 6371.0


class PortControl(Protocol):
    """What the reliability model may do to ports; the engine implements it."""

    def block(self, evse: Evse, t_s: float, fault: bool) -> None:
        """A condition keeping the port out of service began (the port goes down on the first).

        `fault`: a fault (the port shows Faulted); otherwise planned work or an outside outage
        (reset, firmware, maintenance, grid: it shows Unavailable, as OCPP chargers report them).
        """

    def unblock(self, evse: Evse, t_s: float, fault: bool) -> None:
        """Such a condition ended (the port serves again after the last); `fault` as it began."""

    def port_power_changed(self, evse: Evse, t_s: float) -> None:
        """The port's maximum power changed (derating began or ended)."""

    def send(self, event: Event) -> None:
        """Hand an event to the managers and apply their commands."""


@dataclass(eq=False)
class Fault:
    """One active fault (or outside damage) on a charger."""

    fault_id: int
    charger: Charger
    evses: list[Evse]
    cause: int
    mode: FaultMode
    start_t_s: float
    excluded: bool
    detected_t_s: float = math.nan
    reset_clears: bool = False  # drawn at failure, so variants see the same repair needs
    diagnosis_s: float = 0.0
    repair_s: float = 0.0
    part_in_van: bool = True
    part_lead_s: float = 0.0
    reset_tried: bool = False
    visits: int = 0
    cleared: bool = False
    unit: FaultUnit | None = None
    rows: list[int] = field(default_factory=list)  # outage-row tokens, one per port


@dataclass(eq=False)
class FaultUnit:
    """One fault mode of one charger: it fails, is repaired, and fails again."""

    charger: Charger
    name: str
    cause: int
    mode: FaultMode
    rng: np.random.Generator
    version: int = 0
    active: Fault | None = None


@dataclass(eq=False)
class Job:
    """Work for a technician: a repair, a return visit with the part, or a maintenance visit."""

    kind: str  # "repair" | "return" | "maintenance"
    charger: Charger
    fault: Fault | None
    created_t_s: float
    duration_s: float = 0.0


@dataclass(eq=False)
class Technician:
    """One technician of a crew; its location is a site index, or None at the depot."""

    crew: int
    index: int
    location: int | None = None
    busy_s: float = 0.0
    travel_s: float = 0.0
    jobs: int = 0
    last_shift_start: float = -1.0


@dataclass(eq=False)
class _Crew:
    config: Any
    store: simpy.Store
    technicians: list[Technician] = field(default_factory=list)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * math.asin(math.sqrt(a))


@dataclass
class ServiceRecord:
    """What the serviceability model recorded in a run, as columns."""

    config: Serviceability
    causes: list[str]
    chargers: list[ChargerId]
    outages: dict[str, np.ndarray]
    attempts: dict[str, np.ndarray]
    visits: dict[str, np.ndarray]
    technicians: list[tuple[str, int, float, float, int, float]]
    """(crew id, technician, busy_s, travel_s, jobs, shift_s) per technician."""


class Reliability:
    """The serviceability model of one run."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        cfg: Serviceability,
        sites: list[SiteState],
        ports: PortControl,
    ) -> None:
        """Create fault units for every charger model listed in `cfg.hardware`, crews and outside events."""
        self.env = env
        self.cfg = cfg
        self.seed = scenario.seed
        self.sites = sites
        self.ports = ports
        self.horizon_s = scenario.horizon_s
        self.clock = WallClock.of(scenario)
        self.causes: list[str] = []
        self.faults: dict[int, Fault] = {}
        self.next_fault_id = 0
        self.derates: dict[int, list[float]] = {}
        self.maintenance_excluded_s: dict[int, float] = {}
        self._rngs: dict[tuple[str, str], np.random.Generator] = {}
        self.outages = Table(
            floats=("start_t_s", "end_t_s", "detected_t_s", "available_kw"),
            ints=("evse", "cause", "fault_id", "repaired_by", "excluded", "down"),
        )
        self.attempts = Table(floats=("t_s",), ints=("session_id", "evse", "fault_id"))
        self.visits = Table(
            floats=("created_t_s", "arrive_t_s", "end_t_s", "travel_s", "work_s", "part_cost"),
            ints=("crew", "technician", "charger", "kind", "fault_id", "fixed", "part_ordered"),
        )
        self._open_rows: dict[tuple[int, int], tuple[float, int, int, int, float]] = {}  # (evse, token) → row start
        self._tokens = 0
        self.chargers = [c for s in sites for c in s.chargers]
        self.charger_index = {id(c): k for k, c in enumerate(self.chargers)}
        self.by_charger_id = {c.charger_id: c for c in self.chargers}
        self.site_of = {id(c): s for s in sites for c in s.chargers}
        self.units: list[FaultUnit] = []
        self._build_units(scenario)
        self._build_crews(scenario)
        self._schedule_outside_events(scenario)

    # ------------------------------------------------------------ set-up

    def _cause(self, name: str) -> int:
        if name not in self.causes:
            self.causes.append(name)
        return self.causes.index(name)

    def _build_units(self, scenario: Scenario) -> None:
        for site_cfg, site in zip(scenario.network.sites, self.sites, strict=True):
            k = 0
            for group in site_cfg.chargers:
                for _ in range(group.count):
                    charger = site.chargers[k]
                    k += 1
                    for name in self.cfg.hardware.get(group.model, []):
                        unit = FaultUnit(
                            charger,
                            name,
                            self._cause(name),
                            self.cfg.mode(name),
                            stream(self.seed, f"faults:{charger.charger_id}:{name}"),
                        )
                        self.units.append(unit)
                        self._schedule_failure(unit)

    def _build_crews(self, scenario: Scenario) -> None:
        self.crews: list[_Crew] = []
        for c, crew_cfg in enumerate(self.cfg.crews):
            crew = _Crew(crew_cfg, simpy.Store(self.env))
            for i in range(crew_cfg.technicians):
                tech = Technician(c, i)
                crew.technicians.append(tech)
                self.env.process(self._technician(crew, tech))
            self.crews.append(crew)
        self.crew_of_site = [
            min(
                range(len(self.crews)),
                key=lambda c: haversine_km(
                    s.lat, s.lon, self.crews[c].config.depot.lat, self.crews[c].config.depot.lon
                ),
            )
            for s in scenario.network.sites
        ]
        self.site_coords = [(s.lat, s.lon) for s in scenario.network.sites]

    def _schedule_outside_events(self, scenario: Scenario) -> None:
        grid = self.cfg.grid_outages
        if grid.per_site_per_year > 0:
            for site in self.sites:
                rng = stream(self.seed, f"grid:{site.site_id}")
                for t in self._poisson_times(rng, grid.per_site_per_year):
                    duration_s = float(grid.duration_min.draw(rng, 1)[0]) * S_PER_MIN
                    self.env.timeout(t, (site, duration_s)).callbacks.append(self._grid_outage)
        vandal = self.cfg.vandalism
        if vandal.per_charger_per_year > 0:
            mode = FaultMode(
                error_code="OtherError",
                ttf=ExponentialTTF(dist="exponential", mtbf_days=1.0),  # unused: vandalism comes from outside
                detected=True,
                scope="charger",
                repair_min=vandal.repair_min,
                part_in_van_prob=0.0,
                part_lead_days=vandal.part_lead_days,
                part_cost=vandal.part_cost,
            )
            cause = self._cause("vandalism")
            for charger in self.chargers:
                rng = stream(self.seed, f"vandalism:{charger.charger_id}")
                for t in self._poisson_times(rng, vandal.per_charger_per_year):
                    self.env.timeout(t, (charger, mode, cause)).callbacks.append(self._vandalism)
        fw = self.cfg.firmware
        if fw is not None:
            self._fw_mode = FaultMode(
                error_code="InternalError",
                ttf=ExponentialTTF(dist="exponential", mtbf_days=1.0),  # unused: failures come from updates
                detected=True,
                scope="charger",
                remote_reset_success=0.5,
                repair_min=Constant(value=45.0),
            )
            for charger in self.chargers:
                rng = stream(self.seed, f"firmware:{charger.charger_id}")
                self.env.process(self._firmware(charger, rng, fw))

    def _charger_rng(self, charger: Charger, purpose: str) -> np.random.Generator:
        """The charger's own stream for `purpose`, so one charger's draws never shift another's."""
        key = (charger.charger_id, purpose)
        if key not in self._rngs:
            self._rngs[key] = stream(self.seed, f"{purpose}:{charger.charger_id}")
        return self._rngs[key]

    def _poisson_times(self, rng: np.random.Generator, per_year: float) -> list[float]:
        n = rng.poisson(per_year * self.horizon_s / _YEAR_S)
        return sorted(rng.uniform(0.0, self.horizon_s, n).tolist())

    # ------------------------------------------------------------ failures

    def _schedule_failure(self, unit: FaultUnit) -> None:
        """Draw the unit's next time to failure, as good as new from now."""
        unit.version += 1
        ttf = unit.mode.ttf
        if ttf.dist == "weibull":
            days = ttf.scale_days * unit.rng.weibull(ttf.shape)
        else:
            days = unit.rng.exponential(ttf.mtbf_days)
        self.env.timeout(days * S_PER_DAY, (unit, unit.version)).callbacks.append(self._on_failure)

    def _on_failure(self, event: simpy.Event) -> None:
        unit, version = cast(tuple[FaultUnit, int], event.value)
        if version != unit.version or unit.active is not None:
            return
        charger = unit.charger
        if unit.mode.scope == "charger":
            evses = list(charger.evses)
        else:
            evses = [charger.evses[int(unit.rng.integers(len(charger.evses)))]]
        unit.active = self._start_fault(charger, evses, unit.cause, unit.mode, unit.rng, excluded=False, unit=unit)

    def _start_fault(
        self,
        charger: Charger,
        evses: list[Evse],
        cause: int,
        mode: FaultMode,
        rng: np.random.Generator,
        excluded: bool,
        unit: FaultUnit | None = None,
    ) -> Fault:
        """A fault begins; what its repair will take is drawn now from the source's own stream."""
        t = self.env.now
        fault = Fault(self.next_fault_id, charger, evses, cause, mode, t, excluded, unit=unit)
        fault.reset_clears = bool(rng.random() < mode.remote_reset_success)
        fault.diagnosis_s = float(mode.diagnosis_min.draw(rng, 1)[0]) * S_PER_MIN
        fault.repair_s = float(mode.repair_min.draw(rng, 1)[0]) * S_PER_MIN
        fault.part_in_van = bool(rng.random() < mode.part_in_van_prob)
        fault.part_lead_s = float(mode.part_lead_days.draw(rng, 1)[0]) * S_PER_DAY
        self.next_fault_id += 1
        self.faults[fault.fault_id] = fault
        derated = mode.derate_frac > 0
        min_power = self.cfg.uptime_min_power
        for evse in evses:
            available_kw = evse.rated_kw * mode.derate_frac
            # NEVI: a port derated below its class minimum is down, though it still charges.
            down = not derated or available_kw < min_power.port_min_kw(evse.rated_kw, evse.dc)
            fault.rows.append(self._open_row(evse, t, cause, fault.fault_id, excluded, down, available_kw))
            if derated:
                self.derates.setdefault(evse.index, []).append(mode.derate_frac)
                self._apply_derate(evse, t)
            elif mode.detected:
                self.ports.block(evse, t, fault=True)
            else:
                evse.silent_faults.append(fault)
        if mode.detected:
            self._detect(fault, t)
        return fault

    def _detect(self, fault: Fault, t_s: float) -> None:
        """The fault becomes known: silent ports go down; the managers hear of it."""
        if fault.detected_t_s == fault.detected_t_s:  # already known
            return
        fault.detected_t_s = t_s
        if not fault.mode.detected and fault.mode.derate_frac == 0:
            for evse in fault.evses:
                evse.silent_faults.remove(fault)
                self.ports.block(evse, t_s, fault=True)
        site = self.site_of[id(fault.charger)]
        self.ports.send(
            FaultReported(
                t_s,
                site.site_id,
                fault.charger.charger_id,
                fault.fault_id,
                self.causes[fault.cause],
                fault.mode.error_code,
                tuple(e.evse_id for e in fault.evses),
            )
        )

    def failed_attempt(self, evse: Evse, session_id: int, t_s: float) -> None:
        """A driver could not charge on a silently failed port: record it and make the fault known."""
        fault = evse.silent_faults[0]
        self.attempts.add_floats((t_s,))
        self.attempts.add_ints((session_id, evse.index, fault.fault_id))
        for f in list(evse.silent_faults):
            self._detect(f, t_s)

    def _clear(self, fault: Fault, t_s: float, by: int) -> None:
        if fault.cleared:
            return
        fault.cleared = True
        del self.faults[fault.fault_id]
        for evse, token in zip(fault.evses, fault.rows, strict=True):
            self._close_row(evse, token, t_s, by, fault.detected_t_s)
            if fault.mode.derate_frac > 0:
                self.derates[evse.index].remove(fault.mode.derate_frac)
                self._apply_derate(evse, t_s)
            elif fault.detected_t_s == fault.detected_t_s:
                self.ports.unblock(evse, t_s, fault=True)
            else:
                evse.silent_faults.remove(fault)
        if fault.unit is not None:
            fault.unit.active = None
            self._schedule_failure(fault.unit)
        site = self.site_of[id(fault.charger)]
        self.ports.send(RepairCompleted(t_s, site.site_id, fault.charger.charger_id, fault.fault_id, REPAIRED_BY[by]))

    # ------------------------------------------------------------ ports and the outage log

    def _open_row(
        self, evse: Evse, t_s: float, cause: int, fault_id: int, excluded: bool, down: bool, available_kw: float = 0.0
    ) -> int:
        """Open an outage row; `down`: counted as down for uptime; `available_kw`: what the port still delivers."""
        self._tokens += 1
        flags = int(excluded) | (int(down) << 1)
        self._open_rows[(evse.index, self._tokens)] = (t_s, cause, fault_id, flags, available_kw)
        return self._tokens

    def _close_row(self, evse: Evse, token: int, t_s: float, by: int, detected_t_s: float) -> None:
        start, cause, fault_id, flags, available_kw = self._open_rows.pop((evse.index, token))
        self.outages.add_floats((start, t_s, detected_t_s, available_kw))
        self.outages.add_ints((evse.index, cause, fault_id, by, flags & 1, flags >> 1))

    def _apply_derate(self, evse: Evse, t_s: float) -> None:
        fracs = self.derates.get(evse.index) or [1.0]
        evse.max_kw = evse.rated_kw * min(fracs)
        self.ports.port_power_changed(evse, t_s)

    def _planned_outage(
        self, evses: list[Evse], cause: int, duration_s: float, excluded: bool, by: int
    ) -> Generator[simpy.Event, Any, None]:
        t = self.env.now
        tokens = [self._open_row(e, t, cause, -1, excluded, True) for e in evses]
        for e in evses:
            self.ports.block(e, t, fault=False)
        yield self.env.timeout(duration_s)
        t = self.env.now
        for e, token in zip(evses, tokens, strict=True):
            self._close_row(e, token, t, by, math.nan)
            self.ports.unblock(e, t, fault=False)

    # ------------------------------------------------------------ commands

    def reset(self, charger_id: ChargerId) -> None:
        """Remote reset: the charger reboots; resettable faults clear with their success chance."""
        self.env.process(self._reset(self.by_charger_id[charger_id]))

    def _reset(self, charger: Charger) -> Generator[simpy.Event, Any, None]:
        duration_s = float(self.cfg.remote_reset_min.draw(self._charger_rng(charger, "resets"), 1)[0]) * S_PER_MIN
        yield from self._planned_outage(list(charger.evses), self._cause("reset"), duration_s, False, _SELF)
        t = self.env.now
        for fault in [f for f in self.faults.values() if f.charger is charger]:
            if not fault.reset_tried:
                fault.reset_tried = True  # a fault a reset did not clear, a second reset will not either
                if fault.reset_clears:
                    self._clear(fault, t, _RESET)
                    continue
            if fault.detected_t_s == fault.detected_t_s:
                site = self.site_of[id(charger)]
                self.ports.send(
                    FaultReported(
                        t,
                        site.site_id,
                        charger.charger_id,
                        fault.fault_id,
                        self.causes[fault.cause],
                        fault.mode.error_code,
                        tuple(e.evse_id for e in fault.evses),
                        after_reset=True,
                    )
                )

    def dispatch(self, charger_id: ChargerId, fault_id: int) -> None:
        """Queue a repair job with the crew of the charger's site."""
        charger = self.by_charger_id[charger_id]
        fault = self.faults.get(fault_id)
        if fault is not None:
            self._enqueue(Job("repair", charger, fault, self.env.now))

    def schedule_maintenance(self, charger_id: ChargerId, t_s: float) -> None:
        """Queue a maintenance visit no earlier than `t_s`."""
        charger = self.by_charger_id[charger_id]
        cfg = self.cfg.operator
        visit = getattr(cfg, "visit_min", Constant(value=60.0))
        duration_s = float(visit.draw(self._charger_rng(charger, "maintenance"), 1)[0]) * S_PER_MIN
        job = Job("maintenance", charger, None, t_s, duration_s)
        delay = max(0.0, t_s - self.env.now)
        self.env.timeout(delay, job).callbacks.append(lambda ev: self._enqueue(ev.value))

    def _enqueue(self, job: Job) -> None:
        site = self.site_of[id(job.charger)]
        self.crews[self.crew_of_site[site.index]].store.put(job)

    # ------------------------------------------------------------ technicians

    def _next_shift(self, crew: _Crew, t_s: float) -> tuple[float, float]:
        """The t_s at which the crew's first shift not over by `t_s` opens and closes (local wall-clock hours)."""
        shift, clock = crew.config.shift, self.clock
        day0 = math.floor((clock.week0_s + clock.wall_s(t_s)) / S_PER_DAY)
        for day in range(day0, day0 + 9):
            if day % 7 not in shift.days:
                continue
            close_t = clock.t_s(day * S_PER_DAY + shift.end_h * S_PER_H - clock.week0_s)
            if t_s < close_t:
                return clock.t_s(day * S_PER_DAY + shift.start_h * S_PER_H - clock.week0_s), close_t
        return t_s + S_PER_WEEK, t_s + S_PER_WEEK  # unreachable with at least one shift day

    def _shift_wait_s(self, crew: _Crew, t_s: float) -> tuple[float, float]:
        """Seconds until the crew's shift is open at or after `t_s`, and that shift's start time."""
        open_t, _ = self._next_shift(crew, t_s)
        return max(open_t - t_s, 0.0), open_t

    def _travel_s(self, crew: _Crew, tech: Technician, site_index: int) -> float:
        if tech.location == site_index:
            return 0.0
        if tech.location is None:
            lat, lon = crew.config.depot.lat, crew.config.depot.lon
        else:
            lat, lon = self.site_coords[tech.location]
        km = haversine_km(lat, lon, *self.site_coords[site_index]) * self.cfg.travel.detour_factor
        return km / self.cfg.travel.speed_kmh * S_PER_H

    def _technician(self, crew: _Crew, tech: Technician) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            job: Job = yield crew.store.get()
            wait_s, shift_start = self._shift_wait_s(crew, env.now)
            if wait_s > 0:
                yield env.timeout(wait_s)
            if shift_start != tech.last_shift_start:
                tech.location, tech.last_shift_start = None, shift_start  # each shift starts at the depot
            site = self.site_of[id(job.charger)]
            travel_s = self._travel_s(crew, tech, site.index)
            yield env.timeout(travel_s)
            tech.location = site.index
            arrive = env.now
            fixed, ordered, part_cost = yield from self._work(job)
            work_s = env.now - arrive
            tech.busy_s += travel_s + work_s
            tech.travel_s += travel_s
            tech.jobs += 1
            self.visits.add_floats((job.created_t_s, arrive, env.now, travel_s, work_s, part_cost))
            self.visits.add_ints(
                (
                    tech.crew,
                    tech.index,
                    self.charger_index[id(job.charger)],
                    VISIT_KINDS.index(job.kind),
                    job.fault.fault_id if job.fault else -1,
                    int(fixed),
                    int(ordered),
                )
            )

    def _work(self, job: Job) -> Generator[simpy.Event, Any, tuple[bool, bool, float]]:
        env = self.env
        for f in [f for f in self.faults.values() if f.charger is job.charger]:
            self._detect(f, env.now)  # on site, silent faults show
        if job.kind == "maintenance":
            evses = [e for e in job.charger.evses if e.session is None]
            yield from self._planned_outage(
                evses,
                self._cause("maintenance"),
                job.duration_s,
                self._maintenance_excluded(evses, job.duration_s),
                _MAINT,
            )
            for unit in self.units:
                if unit.charger is job.charger and unit.active is None and unit.mode.wear_out:
                    self._schedule_failure(unit)  # renewed: as good as new
            return False, False, 0.0
        fault = job.fault
        assert fault is not None
        if fault.cleared:
            return False, False, 0.0
        fault.visits += 1
        if job.kind == "repair":
            yield env.timeout(fault.diagnosis_s)
            if not fault.part_in_van:
                back = Job("return", job.charger, fault, env.now + fault.part_lead_s)
                env.timeout(fault.part_lead_s, back).callbacks.append(lambda ev: self._enqueue(ev.value))
                return False, True, 0.0
        yield env.timeout(fault.repair_s)
        self._clear(fault, env.now, _TECH)
        return True, False, fault.mode.part_cost

    def _maintenance_excluded(self, evses: list[Evse], duration_s: float) -> bool:
        cap_h = self.cfg.maintenance_excluded_h_per_port_year
        if cap_h is None:
            return True
        allowed_s = cap_h * S_PER_H * max(self.horizon_s, _YEAR_S) / _YEAR_S
        ok = all(self.maintenance_excluded_s.get(e.index, 0.0) + duration_s <= allowed_s for e in evses)
        if ok:
            for e in evses:
                self.maintenance_excluded_s[e.index] = self.maintenance_excluded_s.get(e.index, 0.0) + duration_s
        return ok

    # ------------------------------------------------------------ outside events

    def _grid_outage(self, event: simpy.Event) -> None:
        site, duration_s = cast(tuple["SiteState", float], event.value)
        self.env.process(self._planned_outage(list(site.evses), self._cause("grid_outage"), duration_s, True, _SELF))

    def _vandalism(self, event: simpy.Event) -> None:
        charger, mode, cause = cast(tuple["Charger", FaultMode, int], event.value)
        rng = self._charger_rng(charger, "vandalism-repairs")
        self._start_fault(charger, list(charger.evses), cause, mode, rng, excluded=True)

    def _firmware(self, charger: Charger, rng: np.random.Generator, fw: Any) -> Generator[simpy.Event, Any, None]:
        interval_s = fw.interval_days * S_PER_DAY
        yield self.env.timeout(rng.uniform(0, interval_s))
        cause, fail_cause = self._cause("firmware_update"), self._cause("firmware_update_failure")
        while True:
            duration_s = float(fw.duration_min.draw(rng, 1)[0]) * S_PER_MIN
            evses = list(charger.evses)
            yield from self._planned_outage(
                evses, cause, duration_s, self._maintenance_excluded(evses, duration_s), _SELF
            )
            if rng.random() < fw.failure_prob:
                self._start_fault(charger, evses, fail_cause, self._fw_mode, rng, excluded=False)
            yield self.env.timeout(interval_s)

    # ------------------------------------------------------------ end of run

    def finish(self, t_s: float) -> None:
        """Close the rows of outages still open at the end of the horizon."""
        detected = {f.fault_id: f.detected_t_s for f in self.faults.values()}
        for (evse_index, _token), (start, cause, fault_id, flags, available_kw) in sorted(self._open_rows.items()):
            self.outages.add_floats((start, t_s, detected.get(fault_id, math.nan), available_kw))
            self.outages.add_ints((evse_index, cause, fault_id, _NONE, flags & 1, flags >> 1))
        self._open_rows.clear()

    def record(self) -> ServiceRecord:
        """The recorded tables of the run."""
        techs = [
            (crew.config.id, t.index, t.busy_s, t.travel_s, t.jobs, self.shift_s(c))
            for c, crew in enumerate(self.crews)
            for t in crew.technicians
        ]
        return ServiceRecord(
            self.cfg,
            list(self.causes),
            [c.charger_id for c in self.chargers],
            self.outages.arrays(),
            self.attempts.arrays(),
            self.visits.arrays(),
            techs,
        )

    def shift_s(self, crew: int) -> float:
        """Shift time one technician of `crew` has over the horizon (real seconds: a shift may span a clock change)."""
        total, t = 0.0, 0.0
        while t < self.horizon_s:
            open_t, close_t = self._next_shift(self.crews[crew], t)
            if open_t >= self.horizon_s:
                break
            close_t = min(close_t, self.horizon_s)
            total += max(0.0, close_t - max(open_t, t))
            t = close_t + 1e-6
        return total


class NoReliability:
    """The serviceability model of a run without a serviceability section: ports never fail."""

    def failed_attempt(self, evse: Evse, session_id: int, t_s: float) -> None:
        """Never called: only a silent fault fails an attempt, and there are none."""
        raise AssertionError("no serviceability section, so no silent faults")

    def reset(self, charger_id: ChargerId) -> None:
        """A manager's remote reset: nothing can be reset without the model."""
        raise ValueError("Reset needs a serviceability section in the scenario")

    def dispatch(self, charger_id: ChargerId, fault_id: int) -> None:
        """A manager's repair job: there are no crews."""
        raise ValueError("DispatchTechnician needs a serviceability section in the scenario")

    def schedule_maintenance(self, charger_id: ChargerId, t_s: float) -> None:
        """A manager's maintenance visit: there are no crews."""
        raise ValueError("ScheduleMaintenance needs a serviceability section in the scenario")

    def finish(self, t_s: float) -> None:
        """Nothing is open."""

    def record(self) -> None:
        """Nothing was recorded."""
        return None
