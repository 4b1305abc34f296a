"""The bridge: a real CSMS in the manager slot, through one virtual OCPP charger per simulated charger.

`Bridge` is the `NetworkManager` of a paced run (`virtual_chargers.paced_run`). What the simulation
knows that a CSMS learns from chargers reaches the CSMS as OCPP messages: a `SessionStarted` plugs an
EV into the matching virtual charger (Authorize, StartTransaction; a Plug & Charge EV with its eMAID
and contract certificate data, an ISO 15118 EV with its needs on 2.0.1), a `SessionStopped` unplugs it
(StopTransaction), a fault makes the connector Faulted, a reset, firmware install, maintenance or an
availability change Unavailable, an EV that is full SuspendedEV. `handle` never waits: it queues these
per charger, in order, and returns at once.

The chargers do not simulate EVs of their own: each connector's meter (`TwinMeter`) reads the
simulation's connector, so the register, the power and the status the CSMS sees are the twin's.

What the CSMS sends the chargers flows back into the simulation as commands, submitted to the
`Pacer` and applied at the simulated time they arrive, once the charger has accepted them:

=================================  ===============================================================
CSMS → charger (accepted)          simulation command
=================================  ===============================================================
SetChargingProfile                 `SetChargingProfile` (connector 0 / EVSE 0: the whole charger)
ClearChargingProfile               `ClearChargingProfile`
RemoteStop / RequestStop, Unlock   `SetPowerLimit(evse, 0)`: the session draws no more power; the
                                   EV stays plugged in until its driver leaves (transaction ends)
RemoteStart / RequestStart         for an EV that is plugged in without a transaction (after a
                                   remote stop): `SetPowerLimit(evse, inf)`, it charges again. On a
                                   connector reserved for the token: the first driver waiting at the
                                   site plugs in there (`ChangeAvailability(evse, True)`) and charges
                                   under the CSMS's token. Otherwise Rejected: every other driver
                                   starts by plugging in.
ReserveNow (Reserved)              `ChangeAvailability(evse, False)` while the connector is Reserved
                                   (a free port only): waiting drivers do not take it
ChangeAvailability                 `ChangeAvailability` now (Accepted) or when the session ends
                                   (Scheduled)
Reset                              `Reset` when the scenario has serviceability (its reboot time, a
                                   reset may clear a fault); otherwise the ports are out of service
                                   (`ChangeAvailability`) until the charger has booted again
DataTransfer vendorId=chargetwin,  `SetTariff` for the charger's site: ``data`` is a JSON object of
messageId=SetTariff                tariff fields (e.g. ``{"price_per_kwh": 0.39}``) over the site's
                                   current tariff; the next driver sees it
=================================  ===============================================================

An Authorize or StartTransaction / TransactionEvent answer other than Accepted turns the driver away
(`RejectSession`: outcome ``rejected``, cause ``authorization``) when it arrives. Chargers authorize
offline (AllowOfflineTxForUnknownId) when the CSMS is down, so every session reaches the CSMS once it
is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from pydantic import ValidationError

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose
from sim.config import Scenario
from sim.config.ocpp import OcppManager
from sim.config.revenue import Tariff
from sim.ev import EVModel
from sim.ids import ChargerId, EvseId, SessionId, SiteId
from sim.managers.base import (
    ChangeAvailability,
    ClearChargingProfile,
    Command,
    Event,
    EvseStatus,
    EvseView,
    FaultReported,
    NeedsSource,
    NetworkView,
    RejectSession,
    Reset,
    SessionStarted,
    SessionStopped,
    SetChargingProfile,
    SetPowerLimit,
    SetTariff,
    StatusChanged,
)
from sim.network_plan import plan_of
from virtual_chargers.base import ChargerSpec, Connector, ConnectorSpec, VirtualCharger
from virtual_chargers.clock import SimClock
from virtual_chargers.connection import SecurityConfig, client_ssl_context, load_password
from virtual_chargers.meter import EVSession, Meter, MeterReading, kw_to_w
from virtual_chargers.network import charger_specs
from virtual_chargers.testing import ChargerSet
from virtual_chargers.v16 import V16Charger
from virtual_chargers.v16.charger import DEFAULT_EV
from virtual_chargers.v201.certificates import ContractIssuer

__all__ = ["Bridge", "Port", "TwinMeter", "security_of"]

log = logging.getLogger(__name__)

TARIFF_VENDOR = "chargetwin"
TARIFF_MESSAGE = "SetTariff"
_STATUS_16 = {
    EvseStatus.CHARGING: "Charging",
    EvseStatus.SUSPENDED_EV: "SuspendedEV",
    EvseStatus.SUSPENDED_EVSE: "SuspendedEVSE",
}


def security_of(cfg: OcppManager) -> SecurityConfig:
    """The scenario's security section as the chargers' `SecurityConfig`."""
    s = cfg.security
    return SecurityConfig(s.profile, s.password_env, s.password_file, s.ca_file, s.cert_file, s.key_file)


@dataclass
class Port:
    """One simulated connector and the virtual connector that speaks for it."""

    evse_id: EvseId
    site_id: SiteId
    index: int  # position among the site's connectors in a `SiteView`
    charger_id: ChargerId
    connector_id: int
    register_wh: float = 0.0  # energy of the sessions already ended on this connector
    pinned_wh: float | None = None  # the register at the instant of the event being told to the CSMS
    session_id: SessionId | None = None  # the simulated session on the connector, as the CSMS was told
    error_code: str | None = None  # the 1.6 error code of the fault that has the port down
    unavailable: bool = False  # down for something other than a fault (reset, firmware, maintenance, availability)
    charger: VirtualCharger | None = None
    remote: RemoteStart | None = None  # a CSMS's remote start the next driver on the connector charges under


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """A remote start the CSMS sent for a driver who is waiting: the id token (1.6 idTag) and what came with it."""

    id_tag: str
    id_token_type: str = "Central"  # 2.0.1
    remote_start_id: int = 0  # 2.0.1
    profile: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Plug:
    """A session to start on a virtual connector: the simulated session, the EV and how it is authorised."""

    session_id: SessionId
    start_wh: float
    ev: EVSession
    departure_t_s: float | None
    iso15118: bool
    plug_and_charge: bool


class TwinMeter(Meter):
    """A connector's meter that reads the simulation's connector instead of simulating an EV."""

    __slots__ = ("_read",)

    def __init__(self, spec: ConnectorSpec, read: Callable[[], tuple[float, EvseView | None]]) -> None:
        """A meter of a connector rated ``spec``; ``read()`` gives (register Wh, the connector's view)."""
        super().__init__(spec.max_power_kw, spec.dc, spec.voltage_v, spec.phases, _NO_PROFILES)
        self._read = read

    def advance(self, t_s: float) -> None:
        """Nothing to integrate: the simulation does it."""

    def _rebuild(self, t_s: float) -> None:
        self._profile = None

    def power_kw(self) -> float:
        """The simulated connector's power now."""
        _, view = self._read()
        return view.power_kw if view is not None and view.session_id is not None else 0.0

    def full(self) -> bool:
        """The simulated EV reached its target."""
        _, view = self._read()
        return view is not None and view.status is EvseStatus.SUSPENDED_EV

    def read(self, t_s: float) -> MeterReading:
        """The simulated register (the sessions delivered on the connector so far) and power."""
        energy_wh, view = self._read()
        power_w = 0.0 if self.stuck or view is None or view.session_id is None else kw_to_w(view.power_kw)
        return MeterReading(
            energy_wh=round(energy_wh + self.jump_wh, 1),
            power_w=round(power_w, 1),
            current_a=round(power_w / (self.voltage_v * self.phases), 2),
            voltage_v=self.voltage_v,
            soc_pct=None,
        )


class _NoProfiles:
    def get(self, *args: Any) -> None:  # pragma: no cover - a TwinMeter never builds a charge profile
        raise AssertionError("a TwinMeter has no EV of its own")


_NO_PROFILES: Any = _NoProfiles()


@dataclass
class BridgeStats:
    """What crossed the bridge: commands by kind, commands the simulation refused, op failures."""

    commands: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    op_errors: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    backend_lag_warnings: int = 0  # CSMS answers slower than warn_backend_lag_s (simulated)
    speed_changes: list[tuple[float, float]] = field(default_factory=list)  # (t_s, new speed) by slow_down

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "commands_applied": dict(sorted(self.commands.items())),
            "commands_refused": self.refused[:50],
            "commands_refused_count": len(self.refused),
            "events_forwarded": dict(sorted(self.events.items())),
            "charger_op_errors": self.op_errors[:50],
            "backend_lag_warnings": self.backend_lag_warnings,
            "speed_changes": [{"t_s": t, "speed": v} for t, v in self.speed_changes],
        }


class Bridge:
    """The network manager of a paced run with a CSMS: forwards events to virtual chargers, applies the CSMS's commands.

    Args:
        scenario: The run's scenario (its network gives the chargers; its tariffs the base of price updates).
        cfg: The scenario's `ocpp` manager section.
        clock: The run's clock, shared with the `Pacer`, so OCPP timestamps are simulated time.
        log_path: JSONL frame log (None: counts only).
        state_dir: Folder of the persisted transaction queues (None: in memory).
    """

    def __init__(
        self,
        scenario: Scenario,
        cfg: OcppManager,
        clock: SimClock,
        *,
        log_path: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        """Plan the chargers; `start` connects them (inside the run's event loop)."""
        self.scenario = scenario
        self.cfg = cfg
        self.clock = clock
        self.log_path = log_path
        self.state_dir = state_dir
        self.stats = BridgeStats()
        self.ports: dict[EvseId, Port] = {}
        self.specs: dict[ChargerId, ChargerSpec] = {}
        self.site_of: dict[ChargerId, SiteId] = {}
        self.tariffs = {SiteId(s.id): s.tariff or scenario.tariff for s in scenario.network.sites}
        self.fleet: ChargerSet | None = None
        self.contracts = ContractIssuer(scenario.seed)  # Plug & Charge contracts of the simulated EVs
        self._submit: Callable[[Callable[[Any], None]], None] | None = None
        self._view: NetworkView | None = None
        self._ops: dict[ChargerId, asyncio.Queue[Callable[[], Awaitable[None]]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._held: set[EvseId] = set()  # out of service by the CSMS's ChangeAvailability or a reset
        self._scheduled_inoperative: set[EvseId] = set()
        self._reserved: set[EvseId] = set()  # kept free by a CSMS's reservation: waiting drivers do not take it
        self._resetting: dict[ChargerId, list[EvseId]] = {}
        self._slow_again_at = 0.0  # monotonic wall time before which slow_down does not halve the speed again
        self._plan(scenario)

    def _plan(self, scenario: Scenario) -> None:
        """Chargers and connectors of the simulation's network plan, with its ids."""
        plan = plan_of(scenario)
        self.specs = charger_specs(plan)
        in_site: Counter[SiteId] = Counter()  # a port's position among its site's (`SiteView.evses`)
        on_charger: Counter[ChargerId] = Counter()  # its OCPP connector (1.6) / EVSE (2.0.1) id
        for p in plan.ports:
            site_id, charger_id = p.site.site_id, p.charger.charger_id
            self.site_of[charger_id] = site_id
            on_charger[charger_id] += 1
            self.ports[p.evse_id] = Port(p.evse_id, site_id, in_site[site_id], charger_id, on_charger[charger_id])
            in_site[site_id] += 1

    # ------------------------------------------------------------------ lifecycle

    def attach(self, submit: Callable[[Callable[[Any], None]], None], view: NetworkView) -> None:
        """Where the CSMS's commands go (`Pacer.submit`) and the view the meters read."""
        self._submit = submit
        self._view = view

    async def start(self) -> None:
        """Create and start one virtual charger per simulated charger."""
        security = security_of(self.cfg)
        password = load_password(security)
        self.fleet = ChargerSet(
            self.cfg.csms,
            clock=self.clock,
            state_dir=self.state_dir,
            log_path=self.log_path,
            security=security,
            password=password,
            ssl_context=client_ssl_context(security),
            seed=self.scenario.seed,
            response_timeout_s=self.cfg.response_timeout_s,
            run_end_t_s=self.scenario.horizon_s,
        )
        self.fleet.log.on_backend_lag = self._backend_lag
        cls = _charger_class(self.cfg.ocpp)
        config = self._config()
        for charger_id, spec in self.specs.items():
            charger = cls(spec, self.fleet.ctx, bridge=self, config=dict(config))
            for c in charger.connectors.values():
                port = self.ports[EvseId(f"{charger_id}.{c.id}")]
                port.charger = charger
                c.meter = TwinMeter(c.spec, self._reader(port))
            self.fleet.chargers[charger_id] = charger
            self.fleet.start(charger)
            queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
            self._ops[charger_id] = queue
            self._workers.append(asyncio.ensure_future(self._work(charger_id, queue)))

    def _backend_lag(self, action: str, sim_s: float) -> None:
        """A CSMS answer took ``sim_s`` simulated seconds: warn past the bound, and slow down if asked to."""
        cfg = self.cfg
        if sim_s <= cfg.warn_backend_lag_s:
            return
        self.stats.backend_lag_warnings += 1
        if self.stats.backend_lag_warnings == 1:
            log.warning(
                "the CSMS answered %s after %.0f simulated s (warn_backend_lag_s: %g): at %g× it is too slow to "
                "follow the simulation; lower the speed or set slow_down: true",
                action,
                sim_s,
                cfg.warn_backend_lag_s,
                self.clock.speed,
            )
        now = time.monotonic()
        if cfg.slow_down and self.clock.speed > cfg.min_speed and now >= self._slow_again_at:
            old, new = self.clock.speed, max(cfg.min_speed, self.clock.speed / 2.0)
            self.clock.set_speed(new)
            self.stats.speed_changes.append((round(self.clock.t_s(), 3), self.clock.speed))
            self._slow_again_at = now + max(1.0, sim_s / old)  # answers to requests sent before the change
            log.warning("CSMS answers take %.0f simulated s: slowing down from %g× to %g×", sim_s, old, new)

    def _config(self) -> dict[str, str]:
        interval = str(int(round(self.cfg.meter_interval_s)))
        if self.cfg.ocpp == "1.6":
            base = {"MeterValueSampleInterval": interval, "AllowOfflineTxForUnknownId": "true"}
        else:
            base = {"SampledDataCtrlr.TxUpdatedInterval": interval}
        return {**base, **self.cfg.config}

    async def wait_online(self, timeout_s: float) -> bool:
        """Wait (wall seconds) until every charger's boot is accepted; False if some are not by then."""
        assert self.fleet is not None
        try:
            await self.fleet.wait_all_booted(timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, drain_timeout_s: float = 10.0) -> bool:
        """Finish the queued work, deliver the queued transaction messages (bounded), stop the chargers.

        Returns False when something was still undelivered after ``drain_timeout_s`` wall seconds.
        """
        drained = True
        deadline = time.monotonic() + drain_timeout_s
        if self.fleet is not None:  # the run is over: transactions still open send no more meter values
            for charger in self.fleet.chargers.values():
                for c in charger.connectors.values():
                    if c.meter_task is not None:
                        c.meter_task.cancel()
                        c.meter_task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._ops.values())), drain_timeout_s)
        if self.fleet is not None:
            try:
                await self.fleet.wait_queues_empty(max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                drained = False
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self.fleet is not None:
            for charger in self.fleet.chargers.values():
                self.stats.op_errors.extend(f"{charger.spec.id}: {e!r}" for e in charger.errors)
            await self.fleet.close()
        return drained

    @property
    def summary(self) -> Any:
        """The frame log's `Summary` (QA counts, round trips, timeouts, violations)."""
        assert self.fleet is not None
        return self.fleet.log.summary

    # ------------------------------------------------------------------ simulation → CSMS

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Queue what ``event`` means for the virtual chargers; return commands only the event releases."""
        self._view = network
        if isinstance(event, SessionStarted):
            port = self.ports[event.evse_id]
            port.session_id = event.session_id
            start_wh, ev = port.register_wh, self._ev_of(port, network)
            plug = _Plug(event.session_id, start_wh, *ev, event.plug_and_charge)
            self._op(port, lambda: self._plug(port, plug))
        elif isinstance(event, SessionStopped):
            port = self.ports[event.evse_id]
            if port.session_id == event.session_id:
                port.session_id = None
            port.register_wh += event.energy_kwh * 1000.0
            stop_wh = port.register_wh
            self._op(port, lambda: self._unplug(port, stop_wh))
            if event.evse_id in self._scheduled_inoperative:
                self._scheduled_inoperative.discard(event.evse_id)
                self._held.add(event.evse_id)
                self.stats.commands["ChangeAvailability"] += 1
                return [ChangeAvailability(event.evse_id, False)]
        elif isinstance(event, StatusChanged):
            port = self.ports[event.evse_id]
            if event.status is EvseStatus.UNAVAILABLE and event.evse_id in self._reserved:
                pass  # held for the reservation: the connector shows Reserved
            elif event.status in (EvseStatus.FAULTED, EvseStatus.UNAVAILABLE, EvseStatus.AVAILABLE):
                if event.status is EvseStatus.AVAILABLE:
                    port.error_code = None
                self._op(port, functools.partial(self._outage, port, event.status))
            elif event.status is EvseStatus.SUSPENDED_EV:
                self._op(port, lambda: self._refresh(port))
        elif isinstance(event, FaultReported):
            code = _error_code_16(event.error_code)
            for evse_id in event.evse_ids:  # the port went Faulted just before; this names the error
                self.ports[evse_id].error_code = code
                self._op(self.ports[evse_id], functools.partial(self._fault_code, self.ports[evse_id], code))
        else:
            return ()
        self.stats.events[type(event).__name__] += 1
        return ()

    def _ev_of(self, port: Port, network: NetworkView) -> tuple[EVSession, float | None, bool]:
        """The EV to plug in, its departure (t_s, if known) and whether it speaks ISO 15118 to the charger.

        An ISO 15118 EV is the twin's: its energy need, power, state of charge, capacity and target.
        """
        view = self._port_view(port)
        vehicle = network.site(port.site_id).vehicle(port.evse_id)
        if (
            view is None
            or view.energy_need_kwh is None
            or vehicle is None
            or vehicle.source is not NeedsSource.ISO15118
        ):
            return DEFAULT_EV, None, False
        need_kwh = max(view.energy_need_kwh, 1e-3)
        ev_max_kw = view.ev_max_kw or view.max_power_kw
        capacity_kwh = max(vehicle.capacity_kwh, need_kwh)
        target = vehicle.target_soc_frac if vehicle.capacity_kwh >= need_kwh else 1.0
        model = EVModel("twin", capacity_kwh, min(ev_max_kw, 50.0), ((0.0, ev_max_kw), (1.0, ev_max_kw)))
        return EVSession(model, max(0.0, target - need_kwh / capacity_kwh), target), view.departure_t_s, True

    def _op(self, port: Port, op: Callable[[], Awaitable[None]]) -> None:
        self._ops[port.charger_id].put_nowait(op)

    async def _work(self, charger_id: ChargerId, queue: asyncio.Queue[Callable[[], Awaitable[None]]]) -> None:
        """Run one charger's ops in the order the simulation produced them."""
        while True:
            op = await queue.get()
            try:
                await op()
            except Exception as exc:  # a charger op must not stop the others
                self.stats.op_errors.append(f"{charger_id}: {exc!r}")
                log.warning("virtual charger %s: %r", charger_id, exc)
            finally:
                queue.task_done()

    async def _plug(self, port: Port, plug: _Plug) -> None:
        charger, c = self._connector(port)
        if c.ev is not None:
            await charger.unplug(c.id)
        port.pinned_wh = plug.start_wh
        charger.auth_refused = False
        remote, port.remote = port.remote, None
        try:
            if remote is not None:  # the driver the CSMS started remotely: its token, no tag of the driver's
                await charger.start_remote(c, plug.ev, remote)
                return
            v201 = charger.ocpp_version == "2.0.1"
            if plug.plug_and_charge:  # the contract certificate authorises: its eMAID is the token
                id_tag = self.contracts.emaid(plug.session_id)
                contract = {"contract": self.contracts.hash_data(plug.session_id)} if v201 else {}
            else:
                id_tag, contract = f"SIM{plug.session_id:08d}", {}
            if plug.iso15118 and v201:
                # the departure as an interval from now: this op may run a little after the plug-in
                departure_s = None if plug.departure_t_s is None else max(0.0, plug.departure_t_s - self.clock.t_s())
                await charger.plug_in(c.id, plug.ev, id_tag, iso15118=True, departure_s=departure_s, **contract)
            else:
                await charger.plug_in(c.id, plug.ev, id_tag, **contract)
        finally:
            port.pinned_wh = None
        if charger.auth_refused:  # the CSMS answered Authorize with something other than Accepted
            self.reject(charger.spec.id, c.id, plug.session_id)

    async def _unplug(self, port: Port, stop_wh: float) -> None:
        charger, c = self._connector(port)
        if c.ev is None:
            return
        port.pinned_wh = stop_wh
        try:
            await charger.unplug(c.id)
        finally:
            port.pinned_wh = None

    async def _refresh(self, port: Port) -> None:
        charger, c = self._connector(port)
        if c.tx_ref is not None:
            await charger.refresh_status(c)

    async def _outage(self, port: Port, status: EvseStatus) -> None:
        """The simulated port went down (Faulted by a fault, Unavailable by anything else) or came back."""
        charger, c = self._connector(port)
        port.unavailable = status is EvseStatus.UNAVAILABLE
        if status is EvseStatus.FAULTED:
            c.fault = port.error_code or "OtherError"
        elif c.fault is not None:
            c.fault = None
        else:  # only the availability changed: no fault to clear, the status follows `unavailable`
            await charger.refresh_idle(c)
            return
        await charger.on_connector_fault(c, c.fault)

    async def _fault_code(self, port: Port, error_code: str) -> None:
        """The error code of a fault that keeps the port Faulted (a port a fault only derates keeps charging)."""
        charger, c = self._connector(port)
        if c.fault is not None and c.fault != error_code:
            c.fault = error_code
            await charger.on_connector_fault(c, error_code)

    def _connector(self, port: Port) -> tuple[Any, Connector]:
        charger = port.charger
        assert charger is not None
        return charger, charger.connectors[port.connector_id]

    def _port_view(self, port: Port) -> EvseView | None:
        if self._view is None:
            return None
        return self._view.site(port.site_id).evses[port.index]

    def _reader(self, port: Port) -> Callable[[], tuple[float, EvseView | None]]:
        def read() -> tuple[float, EvseView | None]:
            view = self._port_view(port)
            if port.pinned_wh is not None:
                return port.pinned_wh, view
            energy_kwh = view.energy_kwh if view is not None and view.session_id is not None else 0.0
            return port.register_wh + energy_kwh * 1000.0, view

        return read

    def sim_status(self, charger_id: str, connector_id: int) -> EvseStatus | None:
        """The simulated connector's status (None before the run has a view)."""
        view = self._port_view(self.ports[EvseId(f"{charger_id}.{connector_id}")])
        return view.status if view is not None else None

    # ------------------------------------------------------------------ CSMS → simulation

    def command(self, *commands: Command) -> None:
        """Apply the CSMS's ``commands`` at the simulated time the pacer next reaches."""
        if self._submit is None:
            raise RuntimeError("the bridge is not attached to a pacer")
        names = [type(c).__name__ for c in commands]

        def apply(sim: Any) -> None:
            try:
                sim.apply(list(commands))
            except (ValueError, KeyError) as exc:
                self.stats.refused.append(f"t={sim.t_s:.0f} {', '.join(names)}: {exc}")
                log.warning("the simulation refused %s from the CSMS: %s", ", ".join(names), exc)
                return
            self.stats.commands.update(names)

        self._submit(apply)

    def reject(self, charger_id: str, connector_id: int, session_id: SessionId | None = None) -> None:
        """The CSMS refused the driver's authorization: the simulated session ends (outcome rejected)."""
        port = self.port(charger_id, connector_id)
        sid = session_id if session_id is not None else port.session_id
        if sid is not None:
            self.stats.events["AuthorizationRefused"] += 1
            self.command(RejectSession(port.evse_id, sid))

    def port(self, charger_id: str, connector_id: int) -> Port:
        """The port behind a charger's connector (1.6) or EVSE (2.0.1)."""
        return self.ports[EvseId(f"{charger_id}.{connector_id}")]

    def evse_ids(self, charger_id: str, connector_id: int) -> list[EvseId]:
        """The simulated connectors a connector id addresses (0: all of the charger's)."""
        spec = self.specs[ChargerId(charger_id)]
        ids = range(1, len(spec.connectors) + 1) if connector_id == 0 else [connector_id]
        return [EvseId(f"{charger_id}.{i}") for i in ids]

    def availability(self, charger_id: str, connector_id: int, operative: bool, scheduled: Sequence[int]) -> None:
        """The CSMS changed availability: now for the connectors without a transaction, later for ``scheduled``."""
        commands: list[Command] = []
        for evse_id in self.evse_ids(charger_id, connector_id):
            if operative:
                self._scheduled_inoperative.discard(evse_id)
                self._held.discard(evse_id)
                commands.append(ChangeAvailability(evse_id, True))
            elif self.ports[evse_id].connector_id in scheduled:
                self._scheduled_inoperative.add(evse_id)
            else:
                self._held.add(evse_id)
                commands.append(ChangeAvailability(evse_id, False))
        if commands:
            self.command(*commands)

    def reservation_changed(self, charger_id: str, connector_id: int, reserved: bool) -> None:
        """A connector became Reserved (the simulated port is kept from waiting drivers) or stopped being so."""
        evse_id = self.port(charger_id, connector_id).evse_id
        free = self.sim_status(charger_id, connector_id) in (EvseStatus.AVAILABLE, None)
        if reserved and evse_id not in self._reserved and free:  # never takes a session's port away
            self._reserved.add(evse_id)
            self.command(ChangeAvailability(evse_id, False))
        elif not reserved and evse_id in self._reserved:
            self._reserved.discard(evse_id)
            self.command(ChangeAvailability(evse_id, True))

    def start_waiting_driver(self, charger_id: str, connector_id: int, remote: RemoteStart) -> bool:
        """A remote start on a connector a reservation keeps free: the first driver waiting at the site takes it.

        False (the charger rejects the request) when the port is not held free or nobody waits.
        """
        port = self.port(charger_id, connector_id)
        if port.evse_id not in self._reserved or self._view is None or not self._view.site(port.site_id).waiting:
            return False
        port.remote = remote
        self._reserved.discard(port.evse_id)
        self.command(ChangeAvailability(port.evse_id, True))  # the simulation's first waiting driver plugs in
        return True

    def reset(self, charger_id: str) -> None:
        """The CSMS reset a charger: the simulation's reset, or its ports out of service until it boots."""
        if self.scenario.serviceability is not None:
            self.command(Reset(ChargerId(charger_id)))
            return
        ports = [e for e in self.evse_ids(charger_id, 0) if e not in self._held]
        self._held.update(ports)
        self._resetting[ChargerId(charger_id)] = ports
        self.command(*(ChangeAvailability(e, False) for e in ports))

    def booted(self, charger_id: str) -> None:
        """A charger finished booting: ports a reset took out of service serve again."""
        ports = self._resetting.pop(ChargerId(charger_id), [])
        for e in ports:
            self._held.discard(e)
        if ports:
            self.command(*(ChangeAvailability(e, True) for e in ports))

    def set_tariff(self, charger_id: str, data: Any) -> bool:
        """A price from the CSMS (DataTransfer SetTariff): the site's tariff with these fields; False if invalid."""
        site_id = self.site_of[ChargerId(charger_id)]
        try:
            fields = json.loads(data) if isinstance(data, str) else data
            if not isinstance(fields, dict):
                return False
            tariff = Tariff.model_validate({**self.tariffs[site_id].model_dump(), **fields})
        except (ValueError, ValidationError):
            return False
        self.tariffs[site_id] = tariff
        self.command(SetTariff(site_id, tariff))
        return True


# ---------------------------------------------------------------------- the chargers


class TwinCharger16(V16Charger):
    """A 1.6 charger of a bridged run: what the CSMS makes it do is also done to the simulated charger."""

    def __init__(self, spec: ChargerSpec, ctx: Any, *, bridge: Bridge, **kwargs: Any) -> None:
        """A stopped charger that reports to and through ``bridge``."""
        self.bridge = bridge
        self.auth_refused = False  # the last Authorize was refused
        super().__init__(spec, ctx, **kwargs)

    async def after_boot(self) -> None:
        """Statuses as usual; ports a reset took out of service serve again."""
        self.bridge.booted(self.spec.id)
        await super().after_boot()

    async def authorize(self, id_tag: str) -> bool:
        """Authorize as a charger does; a refusal is noted for the bridge, which turns the driver away."""
        ok = bool(await V16Charger.authorize(self, id_tag))
        self.auth_refused = not ok
        return ok

    async def stop_transaction(self, c: Connector, reason: str, id_tag: str | None = None) -> None:
        """Stop as a charger does; DeAuthorized (the CSMS refused the StartTransaction) ends the simulated session."""
        if reason == "DeAuthorized" and c.tx_ref is not None:
            self.bridge.reject(self.spec.id, c.id, session_of_tag(c.id_tag))
        await V16Charger.stop_transaction(self, c, reason, id_tag)

    def _charging_status(self, c: Connector) -> str:
        status = self.bridge.sim_status(self.spec.id, c.id)
        if c.fault is None and status in _STATUS_16:
            return _STATUS_16[status]
        return super()._charging_status(c)

    async def refresh_status(self, c: Connector) -> None:
        """Report the transaction's status as the simulation has it now."""
        await self.set_status(c, self._charging_status(c))

    def _idle_status(self, c: Connector) -> str:
        if c.fault is None and c.reservation_id is None and self.bridge.port(self.spec.id, c.id).unavailable:
            return "Unavailable"
        return super()._idle_status(c)

    async def set_status(self, c: Connector, status: str, error_code: str = "NoError") -> None:
        """Change the status as a charger does; a reservation's start and end reach the simulated port."""
        was = c.status
        await super().set_status(c, status, error_code)
        if (was == "Reserved") != (c.status == "Reserved"):
            self.bridge.reservation_changed(self.spec.id, c.id, c.status == "Reserved")

    async def start_remote(self, c: Connector, ev: EVSession, remote: RemoteStart) -> None:
        """The waiting driver a remote start was for plugs in; the transaction starts under the CSMS's idTag."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.ev = ev
        c.meter.plug(ev, t_s)
        await self.set_status(c, "Preparing")
        await self._remote_start(c, remote.id_tag, remote.profile)

    async def refresh_idle(self, c: Connector) -> None:
        """Report a connector without a transaction as the simulation has it now (Unavailable or not)."""
        if c.tx_ref is None:
            await self.set_status(c, self._idle_status(c))

    def profile_installed(self, target: int, profile: ChargingProfile) -> None:
        """The profile the charger installed goes to the simulated connector (0: every connector of the charger)."""
        if target == 0:
            self.bridge.command(SetChargingProfile(profile, charger_id=ChargerId(self.spec.id)))
        else:
            self.bridge.command(SetChargingProfile(profile, evse_id=self.bridge.port(self.spec.id, target).evse_id))

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,  # noqa: A002
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        """ClearChargingProfile: here and on the simulated connector(s)."""
        res = V16Charger.on_clear_charging_profile(self, id, connector_id, charging_profile_purpose, stack_level)
        if res.status == "Accepted":
            purpose = ChargingProfilePurpose(charging_profile_purpose) if charging_profile_purpose else None
            if connector_id:
                target: dict[str, Any] = {"evse_id": self.bridge.port(self.spec.id, connector_id).evse_id}
            else:
                target = {"charger_id": ChargerId(self.spec.id)}
            self.bridge.command(ClearChargingProfile(**target, profile_id=id, purpose=purpose, stack_level=stack_level))
        return res

    def _stop_power(self, c: Connector) -> None:
        self.bridge.command(SetPowerLimit(self.bridge.port(self.spec.id, c.id).evse_id, 0.0))

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> Any:
        """RemoteStopTransaction: the simulated session stops drawing power."""
        c = self._by_tx_id(transaction_id)
        res = V16Charger.on_remote_stop(self, transaction_id)
        if res.status == "Accepted" and c is not None:
            self._stop_power(c)
        return res

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> Any:
        """UnlockConnector: a running transaction ends, so the simulated session stops drawing power."""
        c = self.connectors.get(connector_id)
        running = c is not None and c.tx_ref is not None
        res = V16Charger.on_unlock_connector(self, connector_id)
        if running and c is not None:
            self._stop_power(c)
        return res

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
    ) -> Any:
        """RemoteStartTransaction: a plugged-in EV without a transaction charges again.

        On a connector reserved for ``id_tag`` the first driver waiting at the site plugs in there.
        """
        reserved = self.connectors.get(connector_id or 0)
        if reserved is not None and reserved.ev is None and reserved.reservation_id is not None:
            ok = reserved.id_tag == id_tag and self.bridge.start_waiting_driver(
                self.spec.id, reserved.id, RemoteStart(id_tag, profile=charging_profile)
            )
            return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")
        candidates = [connector_id] if connector_id else list(self.connectors)
        plugged = [
            i for i in candidates if i in self.connectors and self.connectors[i].ev is not None
            and self.connectors[i].tx_ref is None
        ]  # fmt: skip
        if not plugged:
            return call_result.RemoteStartTransaction(status="Rejected")
        res = V16Charger.on_remote_start(self, id_tag, plugged[0], charging_profile)
        if res.status == "Accepted":
            self.bridge.command(SetPowerLimit(self.bridge.port(self.spec.id, plugged[0]).evse_id, math.inf))
        return res

    @on(Action.reset)
    def on_reset(self, type: str) -> Any:  # noqa: A002 - the OCPP field name
        """Reset: Accepted; the simulated charger is reset too."""
        res = V16Charger.on_reset(self, type)
        self.bridge.reset(self.spec.id)
        return res

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id: int, type: str) -> Any:  # noqa: A002
        """ChangeAvailability: the simulated connectors follow, at once or when their session ends."""
        res = await V16Charger.on_change_availability(self, connector_id, type)
        if res.status in ("Accepted", "Scheduled"):
            scheduled = [c.id for c in self.connectors.values() if c.pending_operative is False]
            self.bridge.availability(self.spec.id, connector_id, type == "Operative", scheduled)
        return res

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        """DataTransfer chargetwin/SetTariff: the price the site's next driver sees."""
        if vendor_id == TARIFF_VENDOR and message_id == TARIFF_MESSAGE:
            ok = self.bridge.set_tariff(self.spec.id, data)
            return call_result.DataTransfer(status="Accepted" if ok else "Rejected")
        return V16Charger.on_data_transfer(self, vendor_id, message_id, data)


def session_of_tag(id_tag: str | None) -> SessionId | None:
    """The simulated session of an id tag the bridge made (``SIM<session id>``, or its contract's eMAID), else None."""
    for prefix in ("SIM", ContractIssuer.emaid(0)[:6]):
        if id_tag is not None and id_tag.startswith(prefix) and id_tag[len(prefix) :].isdigit():
            return SessionId(int(id_tag[len(prefix) :]))
    return None


def _charger_class(ocpp: str) -> type[Any]:
    if ocpp == "1.6":
        return TwinCharger16
    from virtual_chargers.bridge201 import TwinCharger201

    return TwinCharger201


def _error_code_16(code: str) -> str:
    """The simulation's fault error code as a 1.6 ChargePointErrorCode (OtherError when 1.6 has no such code)."""
    return code if code in _ERROR_CODES_16 else "OtherError"


_ERROR_CODES_16 = frozenset({
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal",
})  # fmt: skip
