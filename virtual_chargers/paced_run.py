"""A scenario run paced against the wall clock, with real backends in the loop: a CSMS, an OpenADR server.

With ``manager: {kind: ocpp, …}`` every simulated charger is a virtual OCPP charger connected to the
CSMS (`virtual_chargers.bridge`), at ``manager.speed``; with ``grid.demand_response.openadr`` the twin's
VEN (`virtual_chargers.openadr`) takes the VTN's events, at ``manager.speed`` when a CSMS is in the
loop and ``openadr.speed`` otherwise. The run writes the same results folder as an in-process run,
plus ``ocpp_frames.jsonl`` (every OCPP frame), ``qa_summary.json`` (the frame log's summary and what
crossed the bridge) and, in ``kpis.json``, a ``pacing`` section: how far the simulation fell behind
the wall clock (p50, p99, max, in wall seconds) and how often that passed the warning threshold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config import Scenario
from sim.config.ocpp import OcppManager, csms_url_problem
from sim.engine import RunTables, Simulation
from virtual_chargers.bridge import Bridge
from virtual_chargers.clock import SimClock
from virtual_chargers.pacing import Pacer

__all__ = [
    "BackendUnreachableError",
    "PacedResult",
    "PacedRun",
    "cmd_run_paced",
    "needs_pacing",
    "run_paced",
    "write_paced_results",
]

log = logging.getLogger(__name__)

FRAMES_FILE = "ocpp_frames.jsonl"
QA_FILE = "qa_summary.json"


class BackendUnreachableError(RuntimeError):
    """No charger reached the CSMS before the boot timeout: nothing was simulated."""


def needs_pacing(scenario: Scenario) -> bool:
    """A CSMS or an OpenADR server takes part, so the run must follow the wall clock."""
    return isinstance(scenario.manager, OcppManager) or scenario.grid.demand_response.openadr is not None


def speed_of(scenario: Scenario) -> float:
    """Simulated seconds per wall second: the CSMS's speed if one is in the loop, else the OpenADR one."""
    if isinstance(scenario.manager, OcppManager):
        return scenario.manager.speed
    openadr = scenario.grid.demand_response.openadr
    if openadr is None:
        raise ValueError("the scenario has neither an ocpp manager nor an OpenADR server: nothing to pace")
    return openadr.speed


@dataclass
class PacedResult:
    """A paced run's tables and what the pacing and the backends recorded."""

    tables: RunTables
    lag: dict[str, float | int]
    speed: float
    qa: dict[str, Any] | None = None  # frame-log summary and bridge counts (with a CSMS)
    openadr: list[dict[str, Any]] = field(default_factory=list)
    frames_path: Path | None = None
    drained: bool = True  # every transaction message reached the CSMS before the chargers stopped
    end_t_s: float = 0.0  # simulated time the run ended at: the horizon, or earlier after `PacedRun.stop`

    def pacing(self) -> dict[str, Any]:
        """The ``pacing`` section of kpis.json."""
        changes = self.qa["bridge"]["speed_changes"] if self.qa is not None else []
        final = changes[-1]["speed"] if changes else self.speed
        return {"speed": self.speed, "speed_final": final, **self.lag, "transactions_drained": self.drained}


class PacedRun:
    """One paced run; `run` is the whole of it, and tests may act meanwhile (`started`, `pacer`, `bridge`).

    Args:
        scenario: What to run.
        frames_path: JSONL frame log of the virtual chargers (None: counts only).
        state_dir: Folder of the chargers' persisted transaction queues (None: a temporary one).
        progress: Called with the fraction of the horizon done.
        boot_timeout_s: Wall seconds to wait for every charger's boot before the simulation starts
            (None: the scenario's ``manager.boot_timeout_s``); the simulated clock stands still meanwhile.
        drain_timeout_s: Wall seconds to let queued transaction messages reach the CSMS at the end.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        frames_path: Path | None = None,
        state_dir: Path | None = None,
        progress: Callable[[float], None] | None = None,
        boot_timeout_s: float | None = None,
        drain_timeout_s: float = 30.0,
    ) -> None:
        """Plan the run; nothing starts before `run`."""
        if isinstance(scenario.manager, OcppManager) and scenario.grid.demand_response.openadr is not None:
            from sim.config import OPENADR_WITH_CSMS

            raise ValueError(OPENADR_WITH_CSMS)
        self.scenario = scenario
        self.speed = speed_of(scenario)
        self.frames_path = frames_path
        self.state_dir = state_dir
        self.progress = progress
        manager = scenario.manager
        default_boot_s = manager.boot_timeout_s if isinstance(manager, OcppManager) else 30.0
        self.boot_timeout_s = boot_timeout_s if boot_timeout_s is not None else default_boot_s
        self.drain_timeout_s = drain_timeout_s
        self.started = asyncio.Event()
        self.pacer: Pacer | None = None
        self.bridge: Bridge | None = None
        self.clock: SimClock | None = None

    def stop(self) -> None:
        """End the run at the current simulated time (the results cover what ran)."""
        if self.pacer is not None:
            self.pacer.stop()

    async def run(self) -> PacedResult:
        """Start the chargers and the VEN, pace the simulation to its horizon, stop everything."""
        scenario = self.scenario
        cfg = scenario.manager if isinstance(scenario.manager, OcppManager) else None
        tmp_state = None
        if cfg is not None and self.state_dir is None:
            tmp_state = Path(tempfile.mkdtemp(prefix="chargetwin-paced-"))
        self.clock = clock = SimClock(self.speed, scenario.start, paused=cfg is not None)  # runs once chargers boot
        if cfg is not None:
            self.bridge = Bridge(scenario, cfg, clock, log_path=self.frames_path, state_dir=self.state_dir or tmp_state)
        simulation = Simulation(scenario, manager=self.bridge)
        warn_lag_s = cfg.warn_lag_s if cfg is not None else 1.0
        self.pacer = pacer = Pacer(simulation, clock, warn_lag_s=warn_lag_s, progress=self.progress)
        ven = None
        drained = True
        try:
            if self.bridge is not None:
                self.bridge.attach(pacer.submit, simulation.view)
                await self.bridge.start()
                if not await self.bridge.wait_online(self.boot_timeout_s):
                    if self.bridge.summary.connects == 0:
                        raise BackendUnreachableError(
                            f"no charger reached the CSMS at {self.bridge.cfg.csms} within {self.boot_timeout_s:g} "
                            "wall seconds; nothing was simulated. Start the CSMS (e.g. `chargetwin csms --port "
                            "9000`), check the URL and security settings, or raise manager.boot_timeout_s"
                        )
                    log.warning("not every charger was online after %.0f s; the run starts anyway", self.boot_timeout_s)
                clock.resume()
            openadr = scenario.grid.demand_response.openadr
            if openadr is not None:
                from virtual_chargers.openadr import TwinVen

                ven = TwinVen(openadr, pacer)
                await ven.start()
            self.started.set()
            tables = await pacer.run()
        finally:
            if ven is not None:
                with contextlib.suppress(Exception):
                    await ven.stop()
            if self.bridge is not None:
                drained = await self.bridge.close(self.drain_timeout_s)
            if tmp_state is not None:
                shutil.rmtree(tmp_state, ignore_errors=True)
        lag = pacer.lag.summary()
        if lag["warnings"]:
            log.warning(
                "the simulation fell behind the wall clock %d time(s), at most %.2f s: the CSMS or this machine "
                "cannot keep up at %g×; lower the speed",
                lag["warnings"],
                lag["lag_max_s"],
                self.speed,
            )
        qa = None
        if self.bridge is not None and self.bridge.stats.backend_lag_warnings:
            log.warning(
                "%d CSMS answer(s) took longer than %g simulated s: the sessions reached the CSMS late",
                self.bridge.stats.backend_lag_warnings,
                self.bridge.cfg.warn_backend_lag_s,
            )
        if self.bridge is not None:
            qa = {**self.bridge.summary.to_dict(), "bridge": self.bridge.stats.to_dict()}
            for warning in qa["warnings"]:
                log.warning("%s", warning)
            if not drained:
                log.warning("some transaction messages had not reached the CSMS when the run ended")
        received = [vars(r) for r in ven.received] if ven is not None else []
        end_t_s = min(pacer.simulation.t_s, scenario.horizon_s)
        return PacedResult(tables, lag, self.speed, qa, received, self.frames_path, drained, end_t_s)


async def run_paced(scenario: Scenario, **kwargs: Any) -> PacedResult:
    """Run ``scenario`` paced (see `PacedRun` for the keyword arguments)."""
    return await PacedRun(scenario, **kwargs).run()


def write_paced_results(
    result: PacedResult, out_dir: Path, finish: Callable[[Path], None] | None = None, *, force: bool = False
) -> dict[str, Any]:
    """The results folder of an in-process run plus the frame log, the QA summary and the pacing KPIs.

    ``force``: also replace a folder that is not a results folder (see `sim.results.check_results_dir`).
    """
    from sim.results import ResultsWriteError, write_results

    extra: dict[str, Any] = {"pacing": result.pacing()}
    if result.qa is not None:
        tx = result.qa["transactions"]
        extra["ocpp"] = {
            "csms_timeouts": sum(result.qa["timeouts"].values()),
            "csms_late_answers": sum(result.qa["late_answers"].values()),
            "csms_violations": result.qa["csms_violations"],
            "transactions_started": tx["started"],
            "transactions_confirmed": tx["confirmed"],
            "commands_applied": result.qa["bridge"]["commands_applied"],
            "commands_refused": result.qa["bridge"]["commands_refused_count"],
            "backend_lag_sim_s": result.qa["backend_lag_sim_s"],
            "backend_lag_warnings": result.qa["bridge"]["backend_lag_warnings"],
        }
    if result.openadr:
        extra["openadr"] = {"events": result.openadr}

    def add_backends(folder: Path) -> None:
        if result.qa is not None:
            (folder / QA_FILE).write_text(json.dumps(result.qa, indent=2) + "\n", encoding="utf-8")
        if result.frames_path is not None and result.frames_path.is_file():
            shutil.copyfile(result.frames_path, folder / FRAMES_FILE)

    def add(tmp: Path) -> None:
        kpis_path = tmp / "kpis.json"
        kpis = json.loads(kpis_path.read_text(encoding="utf-8"))
        kpis.update(extra)
        kpis_path.write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        add_backends(tmp)
        if finish is not None:
            finish(tmp)

    try:
        kpis = write_results(result.tables, out_dir, finish=add, force=force)
    except ResultsWriteError as exc:  # the frame log and QA summary are kept with the rest
        add_backends(exc.partial_dir)
        raise
    kpis.update(extra)
    return kpis


def _with_overrides(scenario: Scenario, csms: str | None, speed: float | None) -> Scenario:
    """The scenario with ``--csms`` and ``--speed`` applied; ValueError says what does not fit."""
    manager = scenario.manager
    if csms is not None:
        problem = csms_url_problem(csms)
        if problem is not None:
            raise ValueError(f"--csms {csms}: {problem}")
        if isinstance(manager, OcppManager):
            manager = manager.model_copy(update={"csms": csms})
        else:
            manager = OcppManager(kind="ocpp", csms=csms)
    if isinstance(manager, OcppManager) and scenario.grid.demand_response.openadr is not None:
        from sim.config import OPENADR_WITH_CSMS

        raise ValueError(f"--csms with grid.demand_response.openadr: {OPENADR_WITH_CSMS}")
    if speed is not None:
        if not speed > 0:
            raise ValueError(f"--speed(={speed}) must be > 0")
        if isinstance(manager, OcppManager):
            manager = manager.model_copy(update={"speed": speed})
        elif scenario.grid.demand_response.openadr is not None:
            dr = scenario.grid.demand_response
            assert dr.openadr is not None
            openadr = dr.openadr.model_copy(update={"speed": speed})
            grid = scenario.grid.model_copy(update={"demand_response": dr.model_copy(update={"openadr": openadr})})
            return scenario.model_copy(update={"grid": grid})
        else:
            raise ValueError("--speed paces a run with a real backend: give --csms URL, or a scenario with one")
    return scenario.model_copy(update={"manager": manager})


def cmd_run_paced(
    scenario: Scenario,
    out: Path,
    args: Any,
    console: Any,
    summary_table: Callable[[dict[str, Any], str], Any],
    render: Callable[[Path], None],
) -> int:
    """`chargetwin run` of a scenario with a CSMS or an OpenADR server: paced, then the usual folder and report."""
    from sim.console import UsageError, lazy_progress, run_title
    from virtual_chargers.connection import SecurityError

    try:
        scenario = _with_overrides(scenario, args.csms, args.speed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    speed = speed_of(scenario)
    backends = []
    if isinstance(scenario.manager, OcppManager):
        backends.append(f"CSMS {scenario.manager.csms} (OCPP {scenario.manager.ocpp})")
    if scenario.grid.demand_response.openadr is not None:
        backends.append(f"OpenADR VTN {scenario.grid.demand_response.openadr.vtn_url}")
    wall_s = scenario.horizon_s / speed
    wall = f"{wall_s / 60.0:,.1f} min" if wall_s >= 60 else f"{wall_s:.1f} s"
    console.print(
        f"{scenario.name}: paced at {speed:g}× ({wall} of wall time) with {' and '.join(backends)}",
        markup=False,
        highlight=False,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = out.parent / f".{out.name}.frames.jsonl"
    update, stop = lazy_progress(console, f"pacing {scenario.name}")
    started = time.perf_counter()
    try:
        try:
            result, interrupted = asyncio.run(_run_stoppable(scenario, frames, update))
        except SecurityError as exc:
            raise UsageError(str(exc)) from None
        except BackendUnreachableError as exc:
            from rich.console import Console

            Console(stderr=True).print(str(exc), markup=False, highlight=False, soft_wrap=True)
            return 1
        finally:
            stop()
        with console.status("writing results and report"):
            kpis = write_paced_results(result, out, finish=render, force=getattr(args, "force", False))
    finally:
        frames.unlink(missing_ok=True)
    title = run_title(scenario, time.perf_counter() - started, paced=f" paced at {speed:g}×")
    console.print(summary_table(kpis, title))
    lag = result.lag
    console.print(
        f"lag behind the wall clock: p50 {lag['lag_p50_s'] * 1000:.1f} ms, p99 {lag['lag_p99_s'] * 1000:.1f} ms, "
        f"max {lag['lag_max_s']:.2f} s"
        + (f"; fell behind {lag['warnings']} time(s): lower --speed" if lag["warnings"] else ""),
        markup=False,
        highlight=False,
    )
    if result.qa is not None:
        o = kpis["ocpp"]
        console.print(
            f"OCPP: {o['transactions_started']} transactions ({o['transactions_confirmed']} confirmed), "
            f"{o['csms_timeouts']} CSMS timeouts, {o['csms_violations']} violations, commands applied "
            f"{o['commands_applied'] or 'none'}, refused {o['commands_refused']}; frames: {out / FRAMES_FILE}",
            markup=False,
            highlight=False,
        )
        lags = ", ".join(
            f"{action} p50 {q['p50']:.1f} / p99 {q['p99']:.1f} s" for action, q in o["backend_lag_sim_s"].items() if q
        )
        console.print(f"CSMS answers in simulated time: {lags or 'none'}", markup=False, highlight=False)
        if o["backend_lag_warnings"]:
            pacing = kpis["pacing"]
            console.print(
                f"{o['backend_lag_warnings']} CSMS answer(s) took longer than warn_backend_lag_s"
                + (f"; slowed down to {pacing['speed_final']:g}×" if pacing["speed_final"] != speed else ""),
                markup=False,
                highlight=False,
            )
    console.print(f"report: {out / 'report.html'}")
    if interrupted is not None:
        done_h = result.end_t_s / 3600.0
        console.print(
            f"interrupted ({interrupted}) at simulated hour {done_h:.2f}: the results cover the run up to there "
            "(sessions still open are `ongoing`)",
            markup=False,
            highlight=False,
        )
        return 143 if interrupted == "SIGTERM" else 130
    return 0


async def _run_stoppable(
    scenario: Scenario, frames: Path, progress: Callable[[float], None]
) -> tuple[PacedResult, str | None]:
    """`run_paced`, where the first Ctrl-C or SIGTERM ends the run at the current simulated time (a second aborts).

    The results then cover what ran; the signal handlers in place before are back afterwards.
    """
    import signal

    runner = PacedRun(scenario, frames_path=frames, progress=progress)
    loop = asyncio.get_running_loop()
    interrupted: list[str] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(name: str) -> None:
        if interrupted:  # the second one: abort, as without this handler
            raise KeyboardInterrupt
        interrupted.append(name)
        log.warning("%s: ending the run at the current simulated time and writing its results (again: abort)", name)
        runner.stop()

    installed = []
    for sig in previous:
        try:
            loop.add_signal_handler(sig, stop, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    try:
        result = await runner.run()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous[sig])
    return result, interrupted[0] if interrupted else None
