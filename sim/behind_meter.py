"""PV and a stationary battery behind a site's meter, acting on charging as the run goes.

The power a site's chargers may draw is the grid limit (the connection, the transformer
and any demand-response cap on import) plus the PV output plus what the battery may
discharge. PV follows its hourly profile, a step function of time. The battery's power
is set at every change of the site (a connector starting, stopping or changing its cap,
a PV step, a demand-response cap starting or ending, the battery running empty or full)
and held until the next one, so its energy is a straight line between changes and the
times it runs empty or full are known in advance and scheduled as events.

The battery answers the highest EV load the site can reach before its next change (each
charging connector's highest power on the rest of its charge curve), not the load of the
instant: since EV power can only follow its curve between changes, grid import then
stays within the limit at every instant, not only at the events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import simpy

from sim.managers.base import EvseStatus, NetworkView, SiteLimitChanged
from sim.recorder import Table
from sim.units import S_PER_H

if TYPE_CHECKING:
    from sim.charging import Bus
    from sim.config.grid import SiteGrid, SolarPV, Storage
    from sim.hardware import SiteState
    from sim.wallclock import WallClock

__all__ = ["RESUME_SOC_FRAC", "BehindMeter", "Battery", "SiteEnergy", "ev_load_bound_kw", "pv_steps"]

RESUME_SOC_FRAC = 0.05
"""After running empty, a battery is offered to the chargers again once it holds this share of its capacity.

Without this margin a battery charged from PV while the chargers wait for it would be
emptied again the same instant, over and over.
"""

_CHARGING = EvseStatus.CHARGING


def pv_steps(pv: SolarPV, clock: WallClock, horizon_s: float) -> tuple[list[float], list[float]]:
    """PV output over the run: ``(t_s, power_kw)`` at time 0 and at every local hour where it changes.

    The profile is by local wall-clock hour (`clock`), so a skipped spring hour has no output
    of its own and a repeated autumn hour produces twice.
    """
    lo_w, _, shift_s = clock.pieces(S_PER_H, 0.0, horizon_s)
    t_s: list[float] = []
    kw: list[float] = []
    shape = pv.profile_by_hour
    for w, sh in zip(lo_w.tolist(), shift_s.tolist(), strict=True):
        t = max(w - clock.week0_s - sh, 0.0)
        p = pv.peak_kw * shape[int(w // S_PER_H) % 24]
        if t_s and t == t_s[-1]:
            kw[-1] = p
        elif not kw or p != kw[-1]:
            t_s.append(t)
            kw.append(p)
    return t_s, kw


def ev_load_bound_kw(site: SiteState, t_s: float) -> float:
    """The highest EV power the site can reach before its next change: each charging connector's curve ahead."""
    total = 0.0
    for e in site.evses:
        s = e.session
        if s is None or e.status is not _CHARGING:
            continue
        p = s.profile
        if p is None:  # discharging at constant power (V2G), or being plugged in (0)
            total -= s.discharge_kw
            continue
        soc = min(p.soc_at(s.tau0_s + t_s - s.t0_s), s.target_soc_frac)
        total += p.max_power(soc, s.target_soc_frac)
    return total


class Battery:
    """A stationary battery: its energy, its power until the next change, and whether it may discharge.

    Losses are split evenly between charging and discharging (√η each way); ``power_kw`` is
    positive while discharging.
    """

    __slots__ = ("cfg", "energy_kwh", "eta", "power_kw", "shaving", "t_s", "threshold_kw", "usable", "version")

    def __init__(self, cfg: Storage) -> None:
        """A battery at its initial state of charge, idle."""
        self.cfg = cfg
        self.eta = math.sqrt(cfg.round_trip_efficiency)
        self.energy_kwh = cfg.initial_soc_frac * cfg.capacity_kwh
        self.shaving = cfg.strategy == "peak_shaving"
        self.threshold_kw = cfg.threshold_kw if self.shaving and cfg.threshold_kw is not None else 0.0
        self.power_kw = 0.0
        self.t_s = 0.0
        self.usable = self.energy_kwh >= RESUME_SOC_FRAC * cfg.capacity_kwh
        self.version = 0  # bumped at every new power: a scheduled breakpoint of an older one is stale

    @property
    def available_kw(self) -> float:
        """What the battery may discharge now: its rated power, or nothing while it is (still) empty."""
        return self.cfg.power_kw if self.usable else 0.0

    def advance(self, t_s: float) -> None:
        """Carry the energy forward to `t_s` at the power held since the last change."""
        dt_h = (t_s - self.t_s) / S_PER_H
        p = self.power_kw
        if p > 0:
            self.energy_kwh = max(self.energy_kwh - p * dt_h / self.eta, 0.0)
        elif p < 0:
            self.energy_kwh = min(self.energy_kwh - p * dt_h * self.eta, self.cfg.capacity_kwh)
        self.t_s = t_s

    def set_power(self, ev_bound_kw: float, pv_kw: float, import_limit_kw: float, capped: bool) -> None:
        """Choose the power until the next change from the EV load bound, the PV output and the import limit.

        Discharge covers what the EV load bound less PV puts above the threshold (peak shaving:
        `threshold_kw`, self-consumption: 0; never above the import limit). Otherwise the battery
        stores PV surplus, and peak shaving also recharges from the grid up to the threshold,
        never while a demand-response cap (`capped`) is in force.
        """
        cfg = self.cfg
        net_kw = ev_bound_kw - pv_kw
        threshold_kw = min(self.threshold_kw, import_limit_kw)
        if net_kw > threshold_kw:
            kw = min(cfg.power_kw, net_kw - threshold_kw) if self.usable and self.energy_kwh > 0 else 0.0
        else:
            room_kw = max(-net_kw, 0.0) if (not self.shaving or capped) else threshold_kw - net_kw
            kw = -min(cfg.power_kw, room_kw) if self.energy_kwh < cfg.capacity_kwh else 0.0
        self.power_kw = kw
        self.version += 1

    def breakpoint_in_s(self) -> float:
        """Seconds until the battery runs empty, full, or (after running empty) usable again; inf if never."""
        p = self.power_kw
        if p > 0:
            return self.energy_kwh * self.eta / p * S_PER_H
        if p < 0:
            cap = self.cfg.capacity_kwh
            target = cap if self.usable else min(RESUME_SOC_FRAC * cap, cap)
            return max(target - self.energy_kwh, 0.0) / (-p * self.eta) * S_PER_H
        return math.inf

    def reach_breakpoint(self, t_s: float) -> bool:
        """At the breakpoint: land exactly on it; return True when what the battery may discharge changed."""
        self.advance(t_s)
        cap = self.cfg.capacity_kwh
        if self.power_kw > 0:
            self.energy_kwh = 0.0
            self.usable, was = False, self.usable
            return was
        if not self.usable:
            self.energy_kwh = max(self.energy_kwh, RESUME_SOC_FRAC * cap)
            self.usable = True
            return True
        self.energy_kwh = cap
        return False


class SiteEnergy:
    """What one site has behind its meter: PV (a step series) and a battery, either optional."""

    __slots__ = ("battery", "pending", "pv_kw", "pv_next", "pv_t_s", "pv_values")

    def __init__(self, cfg: SiteGrid, clock: WallClock, horizon_s: float) -> None:
        """PV steps (local hours on `clock`) and a battery as `cfg` describes them."""
        self.pv_t_s, self.pv_values = pv_steps(cfg.pv, clock, horizon_s) if cfg.pv is not None else ([0.0], [0.0])
        self.pv_kw = self.pv_values[0]
        self.pv_next = 1  # index of the next PV step
        self.battery = Battery(cfg.storage) if cfg.storage is not None else None
        self.pending = False  # a re-dispatch is scheduled at the current instant

    def available_kw(self) -> float:
        """Power on top of the grid limit: PV output plus what the battery may discharge."""
        b = self.battery
        return self.pv_kw + (b.available_kw if b is not None else 0.0)


class BehindMeter:
    """Every site's PV and battery as the run goes: PV steps, battery dispatch and breakpoints, and the storage table.

    Sites without PV or storage have no `SiteState.energy`; for them `site_changed` does nothing.
    """

    def __init__(self, env: simpy.Environment, bus: Bus, view: NetworkView) -> None:
        """Nothing behind any meter until `add` puts it there."""
        self.env = env
        self.bus = bus
        self.view = view
        self.sites: list[SiteState] = []
        self.storage = Table(floats=("t_s", "power_kw", "energy_kwh"), ints=("site",))
        # Local load management (`sim.load_tree.LoadManagement.rebalance`), told of each PV step on an enforced site.
        self.rebalance: Callable[[SiteState, float], None] | None = None

    def add(self, site: SiteState, cfg: SiteGrid, clock: WallClock, horizon_s: float) -> None:
        """PV and storage of `site` as `cfg` describes them: PV steps follow, the battery is dispatched now."""
        site.energy = energy = SiteEnergy(cfg, clock, horizon_s)
        self.sites.append(site)
        if cfg.pv is not None:
            self.env.process(self._pv(site, energy))
        if energy.battery is not None:
            self._record_battery(site, energy)
            self.site_changed(site)

    def _pv(self, site: SiteState, energy: SiteEnergy):  # noqa: ANN202 - a SimPy process
        """Step the site's PV output at each change of its hourly profile and tell the managers."""
        env = self.env
        for t_s, kw in zip(energy.pv_t_s[1:], energy.pv_values[1:], strict=True):
            yield env.timeout(t_s - env.now)
            energy.pv_kw = kw
            tree = site.tree
            if tree is not None and tree.bidirectional and self.rebalance is not None:
                self.rebalance(site, env.now)  # PV counts against the export limit local load management keeps
            if energy.battery is not None:
                self.site_changed(site)
            self.bus.send(SiteLimitChanged(env.now, site.site_id, self.view.site(site.site_id).limit_kw))

    def site_changed(self, site: SiteState) -> None:
        """The site's load, PV or import limit changed: set the battery's power once this instant's changes are in."""
        energy = site.energy
        if energy is None or energy.battery is None or energy.pending:
            return
        energy.pending = True
        self.env.timeout(0.0, site).callbacks.append(self._dispatch)

    def _dispatch(self, event: simpy.Event) -> None:
        site = cast("SiteState", event.value)
        energy = site.energy
        assert energy is not None
        assert energy.battery is not None
        energy.pending = False
        b = energy.battery
        t_s = self.env.now
        b.advance(t_s)
        before = b.power_kw
        import_kw = min(site.grid_limit_kw, min(site.dr_caps, default=math.inf))
        b.set_power(ev_load_bound_kw(site, t_s), energy.pv_kw, import_kw, bool(site.dr_caps))
        if b.power_kw != before:
            self._record_battery(site, energy)
        in_s = b.breakpoint_in_s()
        if in_s < math.inf:
            self.env.timeout(in_s, (site, b.version)).callbacks.append(self._on_battery_breakpoint)

    def _on_battery_breakpoint(self, event: simpy.Event) -> None:
        """The battery ran empty, full, or has recharged enough to be used again."""
        site, version = cast(tuple["SiteState", int], event.value)
        energy = site.energy
        assert energy is not None
        assert energy.battery is not None
        if energy.battery.version != version:
            return
        t_s = self.env.now
        usable_changed = energy.battery.reach_breakpoint(t_s)
        self._record_battery(site, energy)
        self.site_changed(site)
        if usable_changed:
            self.bus.send(SiteLimitChanged(t_s, site.site_id, self.view.site(site.site_id).limit_kw))

    def _record_battery(self, site: SiteState, energy: SiteEnergy) -> None:
        b = energy.battery
        assert b is not None
        self.storage.add_floats((b.t_s, b.power_kw, b.energy_kwh))
        self.storage.add_ints((site.index,))

    def finish(self, t_s: float) -> None:
        """Record the energy each battery holds at the end."""
        for site in self.sites:
            if site.energy is not None and site.energy.battery is not None:
                site.energy.battery.advance(t_s)
                self._record_battery(site, site.energy)
