"""What the network manager knows of a plugged-in EV, and where it came from.

Three sources, best first:

- **ISO 15118** at plug-in: the EV tells the charger its state of charge, capacity,
  target and departure, live. The charger passes them to the CSMS only over OCPP 2.0.1
  (NotifyEVChargingNeeds and the SoC measurand); over OCPP 1.6 the manager does not see them.
- **OEM telematics**: the carmaker's feed reports the vehicle every `report_interval_s`
  and reaches the manager `latency_s` later, so the view at ``t`` reflects the vehicle at
  the last report at or before ``t − latency_s``; some sessions' SoC readings are off by
  a drawn error. A report from before plug-in carries the arrival SoC (driving to the site
  is not modelled).
- **Estimate**: nothing is known; the manager uses its own assumptions.

A manager combines a telematics report with what it meters itself: the need it sees is the
reported need less the energy delivered since the report.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.ids import SessionId
from sim.managers.base import EvseView, NeedsSource, VehicleView

if TYPE_CHECKING:
    from sim.config.ev_side import EvSide
    from sim.ev import ProfileCache
    from sim.ev_arrivals import EvState
    from sim.hardware import Evse
    from sim.sessions import Session

__all__ = ["VehicleData", "needs_source", "soc_at"]

_ISO, _TELEMATICS, _ESTIMATE = NeedsSource.ISO15118, NeedsSource.TELEMATICS, NeedsSource.ESTIMATE


def needs_source(iso15118: bool, telematics: bool, iso_reaches_csms: bool) -> NeedsSource:
    """The best source the manager has for one EV."""
    if iso15118 and iso_reaches_csms:
        return _ISO
    return _TELEMATICS if telematics else _ESTIMATE


def soc_at(s: Session, t_s: float) -> float:
    """The true state of charge of `s` at a past or present `t_s`, from its charging intervals."""
    if s.profile is not None and t_s >= s.t0_s:
        return min(s.profile.soc_at(s.tau0_s + t_s - s.t0_s), s.target_soc_frac)
    for t0_s, t1_s, tau0_s, profile in reversed(s.intervals):  # reports are recent: the last intervals first
        if t0_s <= t_s:
            return min(profile.soc_at(tau0_s + min(t_s, t1_s) - t0_s), s.target_soc_frac)
    return s.soc_in_frac


class VehicleData:
    """Builds the manager's view of EVs under the scenario's EV-side settings."""

    def __init__(self, cfg: EvSide, profiles: ProfileCache) -> None:
        """Read the CSMS protocol and the telematics feed's timing from `cfg`."""
        self.iso_reaches_csms = cfg.csms_protocol == "ocpp2.0.1"
        self.latency_s = cfg.telematics.latency_s
        self.interval_s = cfg.telematics.report_interval_s
        self._profiles = profiles

    def report_t_s(self, ev: EvState, t_s: float) -> float:
        """Time of the vehicle state in the latest telematics report the manager holds at `t_s`."""
        seen_s = t_s - self.latency_s
        if self.interval_s <= 0:
            return seen_s
        phase = ev.report_phase_s
        return phase + math.floor((seen_s - phase) / self.interval_s) * self.interval_s

    def evse_view(
        self, e: Evse, s: Session, ev: EvState, t_s: float, charger_max_kw: float
    ) -> tuple[EvseView, VehicleView | None]:
        """The connector `e` with session `s` as the manager sees it at `t_s`, and what the EV reported."""
        soc, power_kw = s.soc_power_at(t_s)
        capacity_kwh = s.model.capacity_kwh
        energy_kwh = (soc - s.soc_in_frac) * capacity_kwh
        source = needs_source(s.iso15118, ev.telematics, self.iso_reaches_csms)
        head = (e.evse_id, e.charger.charger_id, e.status, e.max_kw, e.limit_kw, power_kw, SessionId(s.session_id),
                charger_max_kw, s.plug_t_s, energy_kwh)  # fmt: skip
        if source is _ISO:
            ev_max_kw = self._profiles.get(s.model, e.dc, e.max_kw).power_at(soc)
            need_kwh = (s.target_soc_frac - soc) * capacity_kwh
            vehicle = VehicleView(source, soc, capacity_kwh, s.target_soc_frac, 0.0)
            return EvseView(*head, s.depart_t_s, need_kwh, ev_max_kw), vehicle
        if source is _TELEMATICS:
            report_t_s = self.report_t_s(ev, t_s)
            true_then = soc_at(s, report_t_s)
            reported = min(1.0, max(0.0, true_then + ev.soc_error_frac))
            metered_since_kwh = (soc - true_then) * capacity_kwh
            need_kwh = max(0.0, (s.target_soc_frac - reported) * capacity_kwh - metered_since_kwh)
            vehicle = VehicleView(source, reported, capacity_kwh, s.target_soc_frac, t_s - report_t_s)
            return EvseView(*head, s.depart_t_s, need_kwh), vehicle
        return EvseView(*head), None
