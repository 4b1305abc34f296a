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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config import Scenario
from sim.config.ocpp import OcppManager
from sim.engine import RunTables, Simulation
from virtual_chargers.bridge import Bridge
from virtual_chargers.clock import SimClock
from virtual_chargers.pacing import Pacer

__all__ = ["PacedResult", "PacedRun", "needs_pacing", "run_paced", "write_paced_results"]

log = logging.getLogger(__name__)

FRAMES_FILE = "ocpp_frames.jsonl"
QA_FILE = "qa_summary.json"


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

    def pacing(self) -> dict[str, Any]:
        """The ``pacing`` section of kpis.json."""
        return {"speed": self.speed, **self.lag, "transactions_drained": self.drained}


class PacedRun:
    """One paced run; `run` is the whole of it, and tests may act meanwhile (`started`, `pacer`, `bridge`).

    Args:
        scenario: What to run.
        frames_path: JSONL frame log of the virtual chargers (None: counts only).
        state_dir: Folder of the chargers' persisted transaction queues (None: a temporary one).
        progress: Called with the fraction of the horizon done.
        boot_timeout_s: Wall seconds to wait for every charger's boot before the simulation starts.
        drain_timeout_s: Wall seconds to let queued transaction messages reach the CSMS at the end.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        frames_path: Path | None = None,
        state_dir: Path | None = None,
        progress: Callable[[float], None] | None = None,
        boot_timeout_s: float = 30.0,
        drain_timeout_s: float = 30.0,
    ) -> None:
        """Plan the run; nothing starts before `run`."""
        self.scenario = scenario
        self.speed = speed_of(scenario)
        self.frames_path = frames_path
        self.state_dir = state_dir
        self.progress = progress
        self.boot_timeout_s = boot_timeout_s
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
        self.clock = clock = SimClock(self.speed, scenario.start)
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
                    log.warning("not every charger was online after %.0f s; the run starts anyway", self.boot_timeout_s)
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
        if self.bridge is not None:
            qa = {**self.bridge.summary.to_dict(), "bridge": self.bridge.stats.to_dict()}
            if not drained:
                log.warning("some transaction messages had not reached the CSMS when the run ended")
        received = [vars(r) for r in ven.received] if ven is not None else []
        return PacedResult(tables, lag, self.speed, qa, received, self.frames_path, drained)


async def run_paced(scenario: Scenario, **kwargs: Any) -> PacedResult:
    """Run ``scenario`` paced (see `PacedRun` for the keyword arguments)."""
    return await PacedRun(scenario, **kwargs).run()


def write_paced_results(
    result: PacedResult, out_dir: Path, finish: Callable[[Path], None] | None = None
) -> dict[str, Any]:
    """The results folder of an in-process run plus the frame log, the QA summary and the pacing KPIs."""
    from sim.results import write_results

    extra: dict[str, Any] = {"pacing": result.pacing()}
    if result.qa is not None:
        tx = result.qa["transactions"]
        extra["ocpp"] = {
            "csms_timeouts": sum(result.qa["timeouts"].values()),
            "csms_violations": result.qa["csms_violations"],
            "transactions_started": tx["started"],
            "transactions_confirmed": tx["confirmed"],
            "commands_applied": result.qa["bridge"]["commands_applied"],
            "commands_refused": result.qa["bridge"]["commands_refused_count"],
        }
    if result.openadr:
        extra["openadr"] = {"events": result.openadr}

    def add(tmp: Path) -> None:
        kpis_path = tmp / "kpis.json"
        kpis = json.loads(kpis_path.read_text(encoding="utf-8"))
        kpis.update(extra)
        kpis_path.write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        if result.qa is not None:
            (tmp / QA_FILE).write_text(json.dumps(result.qa, indent=2) + "\n", encoding="utf-8")
        if result.frames_path is not None and result.frames_path.is_file():
            shutil.copyfile(result.frames_path, tmp / FRAMES_FILE)
        if finish is not None:
            finish(tmp)

    kpis = write_results(result.tables, out_dir, finish=add)
    kpis.update(extra)
    return kpis
