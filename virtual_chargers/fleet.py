"""Run many virtual chargers: planned from a scenario's sites and arrivals, or a quick count.

A scenario gives the chargers (one per charger of each site's groups, connectors as configured) and
the EVs: `sim.demand.generate` draws the arrivals, each goes to the first free connector of its site
and stays its dwell time. An arrival finding none joins the site's queue (first come, first served) and
plugs in when a connector frees up, unless that is later than its patience (it reneges) or its site's
``max_queue`` drivers are already waiting (it balks), as in the simulation. The quick form
``--count N`` gives N single-connector 22 kW AC chargers whose EVs arrive at random (seeded) times.

Everything runs in one asyncio process, or is split over ``processes`` worker processes, each with its
own queue store and frame log, and their summaries merged at the end.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sim.ev import PRESETS
from sim.network_plan import plan_of
from sim.rng import stream
from virtual_chargers.base import ChargerSpec, ConnectorSpec
from virtual_chargers.clock import SimClock
from virtual_chargers.connection import SecurityConfig, client_ssl_context, load_password
from virtual_chargers.faults import FaultTimeline
from virtual_chargers.framelog import Summary
from virtual_chargers.meter import EVSession
from virtual_chargers.network import charger_specs
from virtual_chargers.testing import ChargerSet

__all__ = ["FleetOptions", "PlannedCharger", "PlannedSession", "plan_quick", "plan_scenario", "run_fleet"]


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """An EV that plugs into ``connector_id`` at ``t_s`` and leaves ``dwell_s`` later."""

    t_s: float
    connector_id: int
    ev: EVSession
    dwell_s: float
    id_tag: str
    iso15118: bool = False  # the EV tells its departure and energy need (2.0.1 NotifyEVChargingNeeds)
    wait_s: float = 0.0  # how long it queued for a connector before ``t_s``


@dataclass(frozen=True)
class PlannedCharger:
    """A charger and the EVs that will use it."""

    spec: ChargerSpec
    sessions: tuple[PlannedSession, ...] = ()


@dataclass(frozen=True)
class FleetOptions:
    """How to run a fleet (times in simulated seconds unless named ``wall``)."""

    csms_url: str
    ocpp: str = "1.6"
    speed: float = 60.0
    duration_s: float = 3600.0
    start: datetime | None = None
    seed: int = 0
    processes: int = 1
    log_path: Path | None = None
    state_dir: Path | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    faults: FaultTimeline = field(default_factory=FaultTimeline)
    config: dict[str, str] = field(default_factory=dict)  # configuration keys for every charger
    backoff_base_s: float = 10.0
    backoff_max_s: float = 600.0
    leave_open: bool = False  # at the end, leave running transactions open at the CSMS (default: stop them)


def plan_scenario(scenario: Any) -> list[PlannedCharger]:
    """Chargers and EV sessions of a loaded scenario (`sim.config.Scenario`)."""
    from sim.demand import fleet_models, generate

    models = fleet_models(scenario)
    arrivals = generate(scenario, models)
    plans: list[PlannedCharger] = []
    serial = 0
    network = plan_of(scenario)  # the simulation's chargers and ids: <site>.<nn>, one naming everywhere
    all_specs = charger_specs(network)
    for site in scenario.network.sites:
        specs = [all_specs[c.charger_id] for c in network.chargers if c.site.site_id == site.id]
        ports = [(i, c + 1) for i, s in enumerate(specs) for c in range(len(s.connectors))]
        free_at = np.zeros(len(ports))
        sessions: list[list[PlannedSession]] = [[] for _ in specs]
        queued_until: list[float] = []  # plug-in times of the drivers who queued, in arrival order
        a = arrivals.get(site.id)
        for k in range(len(a) if a is not None else 0):
            assert a is not None
            arrival_t_s = t_s = float(a.t_s[k])
            free = np.flatnonzero(free_at <= t_s)
            if len(free) > 0:
                p = int(free[0])
            else:
                # ports are promised first come, first served: the earliest to free up is this driver's
                waiting = sum(1 for u in queued_until if u > t_s)
                p = int(np.argmin(free_at))
                t_s = float(free_at[p])
                if waiting >= int(a.max_queue[k]) or t_s - arrival_t_s > float(a.patience_s[k]):
                    continue  # balks at the queue, or would renege before a connector frees up
                queued_until.append(t_s)
            dwell_s = float(a.dwell_s[k])
            free_at[p] = t_s + dwell_s + 1.0
            charger_index, connector_id = ports[p]
            soc_in = float(a.soc_in_frac[k])
            ev = EVSession(models[int(a.model[k])], soc_in, max(soc_in, float(a.target_soc_frac[k])))
            serial += 1
            sessions[charger_index].append(
                PlannedSession(
                    t_s, connector_id, ev, dwell_s, f"EV{serial:08d}", bool(a.iso15118[k]), t_s - arrival_t_s
                )
            )
        plans.extend(PlannedCharger(s, tuple(ss)) for s, ss in zip(specs, sessions, strict=True))
    return plans


def plan_quick(count: int, duration_s: float, seed: int = 0, prefix: str = "CP") -> list[PlannedCharger]:
    """``count`` 22 kW AC chargers; EVs arrive every 1-3 h (first within 10 min) and stay 30-120 min."""
    if count < 1:
        raise ValueError(f"count(={count}) must be >= 1")
    rng = stream(seed, "virtual_chargers:quick")
    names = sorted(PRESETS)
    plans = []
    width = max(4, len(str(count)))
    for i in range(count):
        spec = ChargerSpec(f"{prefix}{i + 1:0{width}d}", (ConnectorSpec(22.0),))
        t_s = float(rng.uniform(0, 600))
        sessions = []
        while t_s < duration_s:
            dwell_s = float(rng.uniform(1800, 7200))
            soc_in = float(rng.uniform(0.1, 0.6))
            ev = EVSession(PRESETS[names[int(rng.integers(len(names)))]], soc_in, min(1.0, soc_in + 0.4))
            sessions.append(PlannedSession(t_s, 1, ev, dwell_s, f"TAG{i + 1:06d}"))
            t_s += dwell_s + float(rng.uniform(600, 3600))
        plans.append(PlannedCharger(spec, tuple(sessions)))
    return plans


async def _drive(charger: Any, clock: SimClock, sessions: Sequence[PlannedSession]) -> None:
    """Plug in and unplug the planned EVs at their times."""
    for s in sessions:
        await clock.sleep_until(s.t_s)
        c = charger.connectors[s.connector_id]
        for _ in range(60):
            if c.ev is None:
                break
            await clock.sleep(1.0)  # the previous EV leaves at this very moment (a queued driver follows it)
        else:
            continue  # still taken a simulated minute later: this driver gives up
        try:
            if s.iso15118 and charger.ocpp_version == "2.0.1":
                await charger.plug_in(s.connector_id, s.ev, s.id_tag, iso15118=True, departure_s=s.dwell_s)
            else:
                await charger.plug_in(s.connector_id, s.ev, s.id_tag)
        except ValueError:
            continue
        charger.spawn(_leave(charger, clock, s))


async def _leave(charger: Any, clock: SimClock, s: PlannedSession) -> None:
    await clock.sleep(s.dwell_s)
    if charger.connectors[s.connector_id].ev is not None:
        await charger.unplug(s.connector_id)


async def run_chargers(
    plans: Sequence[PlannedCharger],
    opts: FleetOptions,
    log_path: Path | None,
    state_dir: Path | None,
    progress: Callable[[float, ChargerSet], None] | None = None,
    partial: list[Summary] | None = None,
) -> Summary:
    """Run ``plans`` in this event loop for ``opts.duration_s`` simulated seconds; return the summary.

    ``partial``: the summary is appended to it as soon as it exists, so an interrupted run still has one.
    """
    security = opts.security
    password = load_password(security)
    clock = SimClock(opts.speed, opts.start)
    fleet = ChargerSet(
        opts.csms_url,
        clock=clock,
        state_dir=state_dir,
        log_path=log_path,
        security=security,
        password=password,
        ssl_context=client_ssl_context(security),
        seed=opts.seed,
        backoff_base_s=opts.backoff_base_s,
        backoff_max_s=opts.backoff_max_s,
        run_end_t_s=opts.duration_s,
        leave_open=opts.leave_open,
    )
    drivers: list[asyncio.Task[None]] = []
    if partial is not None:
        partial.append(fleet.log.summary)
    async with fleet:
        for plan in plans:
            charger = await fleet.add_spec(plan.spec, ocpp=opts.ocpp, config=dict(opts.config))
            charger.schedule_faults(opts.faults.for_charger(plan.spec.id))
            drivers.append(asyncio.ensure_future(_drive(charger, clock, plan.sessions)))
            if len(fleet.chargers) % 200 == 0:
                await asyncio.sleep(0)  # let the first ones connect while the rest are created
        # The chargers live as long as the run: out of the collector's sight, its full passes over a
        # thousand chargers' objects (hundreds of ms, stalling every charger) do not happen. No collection
        # first: it would stall the clock's first seconds; what is garbage now is collected after `unfreeze`.
        gc.freeze()
        try:
            while clock.t_s() < opts.duration_s:
                await asyncio.sleep(min(1.0, clock.to_wall_s(opts.duration_s - clock.t_s()) + 0.001))
                if progress is not None:
                    progress(clock.t_s(), fleet)
        finally:
            gc.unfreeze()
            errors = [c.last_connect_error for c in fleet.chargers.values() if c.last_connect_error]
            fleet.log.summary.last_connect_error = errors[-1] if errors else None
            for d in drivers:
                d.cancel()
            await asyncio.gather(*drivers, return_exceptions=True)
    return fleet.log.summary


def _part_path(path: Path | None, index: int, parts: int) -> Path | None:
    if path is None or parts == 1:
        return path
    return path.with_name(f"{path.stem}.p{index}{path.suffix}")


def _worker(plans: list[PlannedCharger], opts: FleetOptions, index: int, out: Any) -> None:
    """One worker process: run its share and send its summary home."""
    try:
        log_path = _part_path(opts.log_path, index, opts.processes)
        state_dir = opts.state_dir / f"p{index}" if opts.state_dir is not None else None
        partial: list[Summary] = []
        summary = asyncio.run(run_chargers(plans, opts, log_path, state_dir, partial=partial))
        out.put((index, summary.to_wire(), None))
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: send what this one saw
        out.put((index, partial[0].to_wire(), None) if partial else (index, None, "interrupted"))
    except BaseException as exc:  # reported to the parent, which decides
        out.put((index, None, f"{type(exc).__name__}: {exc}"))


def run_fleet(
    plans: Sequence[PlannedCharger],
    opts: FleetOptions,
    progress: Callable[[float, ChargerSet], None] | None = None,
    partial: list[Summary] | None = None,
) -> Summary:
    """Run ``plans`` in one process (``opts.processes`` 1) or spread round-robin over several.

    ``partial``: on Ctrl-C (KeyboardInterrupt, re-raised), it holds the summary of what ran until then.
    """
    if opts.processes < 1:
        raise ValueError(f"processes(={opts.processes}) must be >= 1")
    if opts.processes == 1:
        state_dir = opts.state_dir / "p0" if opts.state_dir is not None else None
        return asyncio.run(run_chargers(plans, opts, opts.log_path, state_dir, progress, partial=partial))
    # every worker starts its clock at the same calendar time, so their timestamps agree
    opts = replace(opts, start=opts.start or SimClock(opts.speed).start)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    shares = [list(plans[i :: opts.processes]) for i in range(opts.processes)]
    procs = [ctx.Process(target=_worker, args=(share, opts, i, out), daemon=True) for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    summary = Summary()
    if partial is not None:
        partial.append(summary)
    errors = []
    deadline = time.monotonic() + opts.duration_s / opts.speed + 120.0
    interrupted: KeyboardInterrupt | None = None
    for _ in procs:
        try:
            index, wire, error = out.get(timeout=30.0 if interrupted else max(1.0, deadline - time.monotonic()))
        except KeyboardInterrupt as exc:  # the workers got it too and send what they saw
            interrupted = exc
            index, wire, error = out.get(timeout=30.0)
        if error is not None:
            errors.append(f"process {index}: {error}")
        else:
            summary.merge(Summary.from_wire(wire))
    for p in procs:
        p.join(timeout=30)
    if interrupted is not None:
        raise interrupted
    if errors:
        raise RuntimeError("; ".join(errors))
    return summary
