"""The twin as an OpenADR 2.0b VEN: a real VTN's events become demand-response caps in a paced run.

The VEN (the `openleadr` library) registers with the VTN, answers every event with the scenario's
policy (opt in or out), and for an opted-in event submits one cap per interval and targeted site to
the `Pacer`, at the interval's times on the simulated calendar (or, with ``event_times: wall``, the
simulated times at which the wall clock reads them). It offers one
telemetry report per site (real power, kW) and sends it wherever the VTN asks for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.config.grid import OpenAdr
from sim.engine import Simulation
from sim.ids import SiteId
from virtual_chargers.pacing import Pacer

__all__ = ["Received", "TwinVen"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    """One event from the VTN and what the twin did with it."""

    event_id: str
    opt: str  # "optIn" or "optOut"
    signals: int  # caps submitted to the simulation
    reason: str = ""


class TwinVen:
    """The VEN of a paced run."""

    def __init__(self, cfg: OpenAdr, pacer: Pacer) -> None:
        """Set up the VEN for the run paced by `pacer` (call `start` inside its event loop)."""
        from openleadr import OpenADRClient  # the OpenADR edge is optional at import time

        self.cfg = cfg
        self.pacer = pacer
        self.received: list[Received] = []
        self.reports_sent = 0
        sim = pacer.simulation
        self._sites = [str(s) for s in sim.view.site_ids()]
        self._capacity_kw = {sid: sim.view.site(SiteId(sid)).capacity_kw for sid in self._sites}
        self.client = OpenADRClient(
            ven_name=cfg.ven_name, vtn_url=cfg.vtn_url, show_fingerprint=False, allow_jitter=False
        )
        self.client.add_handler("on_event", self._on_event)
        for site_id in self._sites:
            self.client.add_report(
                callback=self._power_reader(site_id),
                resource_id=site_id,
                measurement="powerReal",
                unit="W",
                scale="k",
                sampling_rate=timedelta(seconds=cfg.report_interval_s),
            )

    async def start(self) -> None:
        """Register with the VTN and start polling it."""
        await self.client.run()

    async def stop(self) -> None:
        """Stop polling and close the connection."""
        await self.client.stop()

    def _power_reader(self, site_id: str) -> Any:
        async def read() -> float:
            self.reports_sent += 1
            site = self.pacer.simulation.view.site(SiteId(site_id))
            return float(sum(e.power_kw for e in site.evses))

        return read

    def _sim_t_s(self, when: datetime) -> float:
        """The simulated time of event time `when`: on the simulated calendar, or when the wall clock reads it."""
        clock = self.pacer.clock
        if self.cfg.event_times == "simulated":
            return clock.t_s_of(when)
        return clock.t_s() + clock.to_sim_s((when - datetime.now(UTC)).total_seconds())

    def _sim_duration_s(self, duration: timedelta) -> float:
        """An interval's length in simulated seconds."""
        if self.cfg.event_times == "simulated":
            return duration.total_seconds()
        return self.pacer.clock.to_sim_s(duration.total_seconds())

    def _targets(self, event: dict[str, Any]) -> list[str]:
        resources = (event.get("targets_by_type") or {}).get("resource_id")
        if not resources:
            return list(self._sites)
        if isinstance(resources, str):
            resources = [resources]
        return [r for r in resources if r in self._sites]

    def _limit(self, signal_name: str, signal_type: str, payload: float, site_id: str) -> tuple[float | None, ...]:
        """``(cap_kw, shed_kw)`` of one interval's payload at a site; ``(None, None)`` if not a load signal."""
        capacity = self._capacity_kw[site_id]
        if signal_name.lower() == "simple":
            level = min(max(int(round(payload)), 0), 3)
            return capacity * self.cfg.simple_level_cap_frac[level], None
        if signal_type == "x-loadControlCapacity":
            return capacity * payload, None
        if signal_type in ("x-loadControlSetpoint", "setpoint"):
            return payload, None
        if signal_type == "x-loadControlLevelOffset":
            return None, payload
        return None, None

    async def _on_event(self, event: dict[str, Any]) -> str:
        event_id = str(event.get("event_descriptor", {}).get("event_id", "?"))
        opted_out = self.cfg.policy == "opt_out"  # the twin records the event, declined: no cap applies
        submitted = 0
        for signal in event.get("event_signals", []):
            name, kind = signal.get("signal_name", ""), signal.get("signal_type", "")
            for interval in signal.get("intervals", []):
                start = interval["dtstart"]
                duration: timedelta = interval["duration"]
                t0 = self._sim_t_s(start)
                t1 = t0 + self._sim_duration_s(duration)
                for site_id in self._targets(event):
                    cap_kw, shed_kw = self._limit(name, kind, float(interval["signal_payload"]), site_id)
                    if cap_kw is None and shed_kw is None:
                        continue
                    self.pacer.submit(_Signal(SiteId(site_id), t0, t1, cap_kw, shed_kw, opted_out))
                    submitted += 1
        if not submitted:
            log.warning("OpenADR event %s carries no load signal the twin can follow; opting out", event_id)
            self.received.append(Received(event_id, "optOut", 0, "no load signal"))
            return "optOut"
        if opted_out:
            self.received.append(Received(event_id, "optOut", submitted, "policy"))
            return "optOut"
        self.received.append(Received(event_id, "optIn", submitted))
        return "optIn"


@dataclass(frozen=True)
class _Signal:
    site_id: SiteId
    start_t_s: float
    end_t_s: float
    cap_kw: float | None
    shed_kw: float | None
    opted_out: bool = False

    def __call__(self, sim: Simulation) -> None:
        sim.demand_response(self.site_id, self.start_t_s, self.end_t_s, self.cap_kw, self.shed_kw, self.opted_out)
