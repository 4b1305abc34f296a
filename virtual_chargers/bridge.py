"""The bridge: a real CSMS in the manager slot, through one virtual OCPP charger per simulated charger.

`Bridge` is the `NetworkManager` of a paced run (`virtual_chargers.paced_run`). What the simulation
knows that a CSMS learns from chargers reaches the CSMS as OCPP messages: a `SessionStarted` plugs an
EV into the matching virtual charger (Authorize, StartTransaction; a Plug & Charge EV with its eMAID
and contract certificate data, an ISO 15118 EV with its needs on 2.0.1), a `SessionStopped` unplugs it
(StopTransaction), a fault makes the connector Faulted, a reset, firmware install, maintenance or an
availability change Unavailable, an EV that is full SuspendedEV. `handle` never waits: it queues these
per charger, in order, and returns at once.

The chargers (`virtual_chargers.bridge16`, `virtual_chargers.bridge201`) report what the CSMS makes
them do through one interface, `virtual_chargers.twin.TwinListener`, which `Bridge` implements for both
versions. They do not simulate EVs of their own: each connector's meter (`TwinMeter`) reads the
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
from virtual_chargers.bridge16 import TwinCharger16
from virtual_chargers.bridge201 import TwinCharger201
from virtual_chargers.clock import SimClock
from virtual_chargers.connection import SecurityConfig, client_ssl_context, load_password
from virtual_chargers.meter import EVSession, Meter, MeterReading, kw_to_w
from virtual_chargers.network import charger_specs
from virtual_chargers.testing import ChargerSet
from virtual_chargers.twin import RemoteStart
from virtual_chargers.v16.charger import DEFAULT_EV
from virtual_chargers.v201.certificates import ContractIssuer

__all__ = ["Bridge", "Port", "TwinMeter", "security_of"]

log = logging.getLogger(__name__)


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
    export_wh: float = 0.0  # energy the sessions already ended gave back (V2G)
    bidirectional: bool = False  # the simulated port can discharge a V2G EV
    pinned_wh: float | None = None  # the register at the instant of the event being told to the CSMS
    session_id: SessionId | None = None  # the simulated session on the connector, as the CSMS was told
    error_code: str | None = None  # the 1.6 error code of the fault that has the port down
    unavailable: bool = False  # down for something other than a fault (reset, firmware, maintenance, availability)
    charger: VirtualCharger | None = None
    remote: RemoteStart | None = None  # a CSMS's remote start the next driver on the connector charges under


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

    __slots__ = ("_read", "_read_export")

    def __init__(
        self,
        spec: ConnectorSpec,
        read: Callable[[], tuple[float, EvseView | None]],
        read_export: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """A meter of a connector rated ``spec``; ``read()`` gives (register Wh, the connector's view).

        ``read_export()`` gives the export register (Wh), what V2G sessions gave back.
        """
        super().__init__(spec.max_power_kw, spec.dc, spec.voltage_v, spec.phases, _NO_PROFILES)
        self._read = read
        self._read_export = read_export

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
            export_wh=round(self._read_export(), 1),
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
            self.ports[p.evse_id] = Port(p.evse_id, site_id, in_site[site_id], charger_id, on_charger[charger_id],
                                         bidirectional=p.discharge_kw > 0)  # fmt: skip
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
            charger = cls(spec, self.fleet.ctx, listener=self, config=dict(config))
            for c in charger.connectors.values():
                port = self.ports[EvseId(f"{charger_id}.{c.id}")]
                port.charger = charger
                c.meter = TwinMeter(c.spec, self._reader(port), self._export_reader(port))
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
            port.export_wh += event.energy_discharged_kwh * 1000.0
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
            self.authorization_refused(charger.spec.id, c.id, plug.session_id)

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

    def _discharged_kwh(self, port: Port) -> float:
        """What the session on ``port`` has given back so far (V2G); 0 without one."""
        if self._view is None or not port.bidirectional:
            return 0.0
        v = self._view.site(port.site_id).v2g.get(port.evse_id)
        return v.discharged_kwh if v is not None else 0.0

    def _export_reader(self, port: Port) -> Callable[[], float]:
        """The export register of ``port`` (Wh): the ended sessions' and the running one's discharge."""
        return lambda: port.export_wh + self._discharged_kwh(port) * 1000.0

    def _reader(self, port: Port) -> Callable[[], tuple[float, EvseView | None]]:
        def read() -> tuple[float, EvseView | None]:
            view = self._port_view(port)
            if port.pinned_wh is not None:
                return port.pinned_wh, view
            energy_kwh = 0.0
            if view is not None and view.session_id is not None:  # charged: what V2G took back is no less charged
                energy_kwh = view.energy_kwh + self._discharged_kwh(port)
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

    # ------------------------------------------------------------------ what the chargers report (`TwinListener`)

    def profile_installed(self, charger_id: str, connector_id: int, profile: ChargingProfile) -> None:
        """The profile goes to the simulated connector (0: every connector of the charger)."""
        if connector_id == 0:
            self.command(SetChargingProfile(profile, charger_id=ChargerId(charger_id)))
        else:
            self.command(SetChargingProfile(profile, evse_id=self.port(charger_id, connector_id).evse_id))

    def profile_cleared(
        self,
        charger_id: str,
        connector_id: int,
        profile_id: int | None,
        purpose: ChargingProfilePurpose | None,
        stack_level: int | None,
    ) -> None:
        """The same profiles leave the simulated connector (0: every connector of the charger)."""
        if connector_id == 0:
            target: dict[str, Any] = {"charger_id": ChargerId(charger_id)}
        else:
            target = {"evse_id": self.port(charger_id, connector_id).evse_id}
        self.command(ClearChargingProfile(**target, profile_id=profile_id, purpose=purpose, stack_level=stack_level))

    def power_stopped(self, charger_id: str, connector_id: int) -> None:
        """The simulated session draws no more power; its EV stays until the driver leaves."""
        self.command(SetPowerLimit(self.port(charger_id, connector_id).evse_id, 0.0))

    def power_resumed(self, charger_id: str, connector_id: int) -> None:
        """The simulated session may draw power again."""
        self.command(SetPowerLimit(self.port(charger_id, connector_id).evse_id, math.inf))

    def unavailable(self, charger_id: str, connector_id: int) -> bool:
        """The simulated port is out of service for something other than a fault, as last told to the charger."""
        return self.port(charger_id, connector_id).unavailable

    def authorization_refused(self, charger_id: str, connector_id: int, session_id: SessionId | None = None) -> None:
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

    def availability_changed(
        self, charger_id: str, connector_id: int, operative: bool, scheduled: Sequence[int]
    ) -> None:
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

    def tariff_set(self, charger_id: str, data: Any) -> bool:
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


def _charger_class(ocpp: str) -> type[TwinCharger16 | TwinCharger201]:
    return TwinCharger16 if ocpp == "1.6" else TwinCharger201


def _error_code_16(code: str) -> str:
    """The simulation's fault error code as a 1.6 ChargePointErrorCode (OtherError when 1.6 has no such code)."""
    return code if code in _ERROR_CODES_16 else "OtherError"


_ERROR_CODES_16 = frozenset({
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal",
})  # fmt: skip
