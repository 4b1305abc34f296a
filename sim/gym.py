"""A Gymnasium environment over any scenario: an agent sets each port's power at a fixed interval.

The agent is a network manager like any other: its actions become `SetPowerLimit` commands,
one per port, applied through `sim.engine.Simulation.apply`, and the run is moved from one
decision to the next with `Simulation.advance`. Between two decisions the event-driven
engine runs exactly as in any run (arrivals, departures, charge curves, faults, prices, PV,
demand response); a port's limit holds until the next decision, and an EV that plugs in
meanwhile gets the limit the agent last chose for its port.

Needs the optional extra ``gym`` (``pip install 'chargetwin[gym]'``): ``import sim`` does not.
Observation, action and reward are documented in docs/gym.md.
"""

from __future__ import annotations

import gc
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import gymnasium
import numpy as np
from gymnasium import spaces

from sim.config import Scenario, load_scenario
from sim.config.degradation import Degradation
from sim.degradation import CELL_AH, CYC_POWER, AgeingModel, beta_per_sqrt_ah, rainflow
from sim.engine import LivePorts, RunTables, Simulation
from sim.ev_arrivals import EvState
from sim.ids import EvseId, SiteId
from sim.load_tree import SiteTree
from sim.managers.base import (
    Command,
    Event,
    EvseStatus,
    NetworkView,
    PriceChanged,
    SessionStarted,
    SessionStopped,
    SetPowerLimit,
)
from sim.managers.smart import Estimates
from sim.metrics import BIN_S
from sim.network_plan import plan_of
from sim.tariffs import TariffSchedule
from sim.units import S_PER_H
from sim.wallclock import WallClock

if TYPE_CHECKING:
    from sim.ev import ChargeProfile
    from sim.hardware import Evse, SiteState
    from sim.sessions import Session

__all__ = [
    "PORT_FEATURES",
    "SITE_FEATURES",
    "TIME_FEATURES",
    "V2G_FEATURES",
    "V2G_SITE_FEATURES",
    "ChargingEnv",
    "RewardWeights",
]

PORT_FEATURES = (
    "occupied",  # 1 while a session is on the port
    "charging",  # 1 while the port's status is Charging
    "power_frac",  # power drawn now / the port's max_power_kw
    "delivered_kwh",  # energy of the session so far
    "need_kwh",  # energy still needed: what the EV says, else the manager estimate
    "need_known",  # 1 when the EV said its need and departure (ISO 15118 or telematics)
    "departure_h",  # hours to departure (said, else estimated), 0 once past
    "max_power_kw",  # the port's rating
)
SITE_FEATURES = (
    "power_kw",  # the site's chargers draw now
    "limit_kw",  # SiteView.limit_kw: import limit, DR cap, plus PV and battery (capped at the ports' total)
    "grid_limit_kw",  # the import limit alone (same cap)
    "dr_active",  # 1 while a demand-response cap is in force
    "pv_kw",  # PV output now
    "storage_soc_frac",  # the battery's state of charge, 0 without one
    "waiting",  # drivers queueing for a port
    "phase_limit_kw",  # what each phase of the supply may carry (capped at the ports' total)
    "l1_kw",  # the chargers' power on L1 now (single-phase connectors on their phase, others a third on each)
    "l2_kw",
    "l3_kw",
)
TIME_FEATURES = ("tod_sin", "tod_cos", "price_per_kwh", "elapsed_frac")
# With bidirectional ports (V2G) only: one row per port (observation key ``v2g``) and one per site (``v2g_sites``).
V2G_FEATURES = (
    "port_discharge_kw",  # the most the port discharges with (its max_discharge_kw; 0 on a one-way port)
    "max_discharge_kw",  # the most the EV on it may give back now (port, EV; 0 without a V2G EV)
    "soc_frac",  # the V2G EV's state of charge
    "floor_soc_frac",  # the lowest SoC it may be discharged to now: its minimum or its departure guard
    "headroom_kwh",  # energy it may still give back now, down to its floor
    "discharged_kwh",  # energy the session has given back so far
)
V2G_SITE_FEATURES = (
    "export_limit_kw",  # the most the site may feed in (capped at the ports' total)
    "export_price_per_kwh",  # the feed-in price now
    "v2g_remuneration_per_kwh",  # what the driver is paid per kWh given back now (the site's tariff)
    "dr_min_kw",  # the least a demand-response increase event asks the site to draw (0 without one)
)
_HOUR_S = 3600.0
_DAY_S = 86400.0
_STEPS_PER_KW = 10  # limits in 0.1 kW steps, as `sim.managers.smart.fill`
_CHARGING = EvseStatus.CHARGING
_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)  # sessions that want power, as the smart managers
_BIG = 1e6  # the observation's upper bound for quantities without one (kW, kWh, h, price); values are clipped to it
_STATUS = operator.attrgetter("status")
_BATCH = 6  # `_Agent._refollow` writes more lines than this in one numpy call


@dataclass(frozen=True)
class RewardWeights:
    """The reward of one step: profit, minus penalties for unmet need, overload and battery wear.

    ``profit * profit - unmet_per_kwh * unmet_kwh - overload_per_kwh * overload_kwh - degradation * wear_cost``.

    With bidirectional ports (V2G) the margin is the energy charged × the sale price, less the
    energy cost, plus the export revenue, less the V2G remuneration, energy being settled per site
    and 15 minutes as the KPIs do, and the wear adds the cycle fade V2G causes, booked as each
    session ends (docs/guide/gym.md).

    Attributes:
        profit: Weight of the step's energy margin, Σ kWh × (sale price − energy price), in currency.
        unmet_per_kwh: Penalty per kWh still needed by the EVs that left during the step.
        overload_per_kwh: Penalty per kWh above a site's limit: the mean of the overload (kW, summed
            over sites) just after the action and at the end of the step, times the step length (h).
        sale_price_per_kwh: Price the drivers pay per kWh; None takes the scenario tariff's `price_per_kwh`.
        degradation: Weight of the step's battery wear, in currency: the cycle fade charging adds to
            the EVs' batteries during the step (`sim.degradation`, the scenario's `degradation` section
            or its defaults) times the section's `cost_per_kwh`. Summed over an episode it is the
            `cost_charging` of degradation.parquet; calendar fade, which no action avoids, is left out.
    """

    profit: float = 1.0
    unmet_per_kwh: float = 1.0
    overload_per_kwh: float = 5.0
    sale_price_per_kwh: float | None = None
    degradation: float = 0.0


# A free port's column of `_Agent.p`: no line, no session (capacity 1 keeps the fade formula finite).
_FREE = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])


class _V2gMeter:
    """Energy both ways on a network with bidirectional ports: charged, given back, and settled per 15 minutes.

    At every mark the agent hands it each port's net energy since the last one (charged less given
    back, from the SoC); the sessions' own discharge counters split it into energy charged and
    energy given back. The net of each site is summed per 15-minute bin of the run and settled when
    the bin ends, as the KPIs settle ``load.parquet``: a bin's import at the energy price and its
    export at the feed-in price, both at the bin's start. What is given back earns the driver the V2G
    remuneration of the site's tariff in force; the env marks every port at each tariff change, so
    the rate is constant between two marks.
    """

    def __init__(
        self, site_of: np.ndarray, n_sites: int, schedules: list[TariffSchedule], horizon_s: float, live: LivePorts
    ) -> None:
        self.site_of = site_of
        self.n_sites = n_sites
        self.schedules = schedules
        self.horizon_s = horizon_s
        self.live = live
        self.discharged_at_kwh = np.zeros(len(site_of))  # each session's energy given back at its last mark
        self.bin_kwh = np.zeros(n_sites)  # each site's net energy in the bin under way
        self.bin_t0_s = 0.0
        self.t_mark_s = 0.0  # the last mark of every port: the tariff in force since is the one at any time after
        self.charged_kwh = self.discharged_kwh = 0.0  # since the last decision
        self.cost = self.export_revenue = self.remuneration = 0.0
        self.v2g_fade_kwh = 0.0  # cycle fade V2G added to the sessions that ended since the last decision
        self.soc_path: dict[int, list[float]] = {}  # each V2G session's SoC at its marks, from plug-in

    def cuts(self, a_s: float, b_s: float) -> list[float]:
        """Times strictly between `a_s` and `b_s` at which every port is marked: bin ends and tariff changes."""
        k0 = math.floor(a_s / BIN_S) + 1
        out = {k * BIN_S for k in range(k0, math.ceil(b_s / BIN_S))}
        for sched in self.schedules:
            out.update(sched.changes(a_s, b_s))
        return sorted(t for t in out if a_s < t < b_s)

    def mark(self, net_kwh: np.ndarray, discharged_kwh: dict[int, float], now: float) -> None:
        """Book each port's net energy since its last mark; `discharged_kwh`: the V2G sessions' energy given back."""
        out = np.zeros(len(net_kwh))
        for i, kwh in discharged_kwh.items():
            out[i] = kwh - self.discharged_at_kwh[i]
            self.discharged_at_kwh[i] = kwh
        self._book(net_kwh, out, now)
        self.t_mark_s = now

    def stop(self, i: int, net_kwh: float, discharged_kwh: float, now: float) -> None:
        """The session on port `i` ended at `now` with `discharged_kwh` given back: book its last piece."""
        net = np.zeros(len(self.site_of))
        out = np.zeros(len(self.site_of))
        net[i], out[i] = net_kwh, discharged_kwh - self.discharged_at_kwh[i]
        self.discharged_at_kwh[i] = 0.0
        self._book(net, out, now)

    def _book(self, net: np.ndarray, out: np.ndarray, now: float) -> None:
        self.charged_kwh += float((net + out).sum())
        given = float(out.sum())
        self.discharged_kwh += given
        if given:
            mid = 0.5 * (self.t_mark_s + now)  # inside one tariff period: every change is a mark
            sites = np.bincount(self.site_of, weights=out, minlength=self.n_sites)
            self.remuneration += sum(
                float(kwh) * self.schedules[k].at(mid).v2g_per_kwh for k, kwh in enumerate(sites.tolist()) if kwh
            )
        self.bin_kwh += np.bincount(self.site_of, weights=net, minlength=self.n_sites)

    def settle(self, now: float) -> None:
        """The bin under way ends at `now` (a bin end or the horizon): its import costs, its export earns."""
        view = self.live.view
        price = view.price_at(self.bin_t0_s)
        export_price = view.export_prices.at(self.bin_t0_s) if view.export_prices is not None else 0.0
        self.cost += float(np.maximum(self.bin_kwh, 0.0).sum()) * price
        self.export_revenue += float(np.maximum(-self.bin_kwh, 0.0).sum()) * export_price
        self.bin_kwh[:] = 0.0
        self.bin_t0_s = now

    def take(self) -> tuple[float, float, float, float, float, float]:
        """Energy charged and given back, energy cost, export revenue, remuneration and V2G fade since the last call."""
        out = (self.charged_kwh, self.discharged_kwh, self.cost, self.export_revenue, self.remuneration,
               self.v2g_fade_kwh)  # fmt: skip
        self.charged_kwh = self.discharged_kwh = self.cost = self.export_revenue = self.remuneration = 0.0
        self.v2g_fade_kwh = 0.0
        return out


class _Agent:
    """The agent's seat on the bus: tracks the occupied ports, re-applies its limits to new sessions, and meters energy.

    It reads the live connectors (`sim.engine.LivePorts`) rather than the manager's views: a step
    builds no object per port, and keeps what a session fixes at plug-in (capacity, target,
    departure) and the line its SoC follows in arrays over every port, a free port's column all
    zeros (capacity 1), so that a step evaluates every port at once with no gather or scatter.
    Energy is metered at every mark (decision, price change, session start and stop) from the
    sessions' own state, so the step's energy and its cost at the price in force are exact.
    """

    def __init__(self, est: Estimates, index: dict[EvseId, int], n_ports: int, ageing: AgeingModel) -> None:
        self.est = est
        self.ageing = ageing
        self.index = index  # port id → plan index
        self.live: LivePorts | None = None  # set once the simulation is built
        self.held_kw = np.full(n_ports, math.inf)  # the agent's last limit per port; inf = none
        self.occupied: dict[int, Session] = {}  # plan index → the session on the port, in plug-in order
        self.occupied_evses: dict[int, Evse] = {}  # the same ports' connectors, in the same order
        self.moved = True  # a session started or stopped since the last observation
        self.occ = np.zeros(n_ports, bool)  # the same, as a mask over the ports
        self.reporting: set[int] = set()  # occupied ports whose EV reports through its vehicle data (ev_side)
        self.curved: dict[int, Session] = {}  # occupied ports off a straight line (a DC curve, a discharge)
        self.freed: list[int] = []  # ports whose session ended since the last observation
        self.version = [-1] * n_ports  # the session's `version` each port's line is for; -1: none yet
        self._lines: dict[ChargeProfile, tuple[bool, float, float]] = {}  # `_line` of each profile met (immutable)
        self.n_estimated = 0  # occupied ports whose EV does not say its need (the need is the manager's estimate)
        self.estimated = np.zeros(n_ports, bool)
        # One row per quantity, one column per port: set at plug-in and by `_refollow`, reset when the port frees.
        self.p = p = np.zeros((len(_FREE), n_ports))
        p[:] = _FREE[:, None]
        (
            # The line in SoC the session follows in its current interval: base + rate × (t_s + offset_s), power_kw.
            self.base_soc_frac,
            self.rate_per_s,
            self.offset_s,
            self.line_kw,
            # The session, as fixed at plug-in.
            self.soc_cap_frac,  # min(1, target): past the end of its curve a battery is full
            self.target_soc_frac,
            self.soc_in_frac,
            self.capacity_kwh,
            self.known,  # 1 when the EV says its need and departure (ISO 15118)
            self.departure_t_s,  # said, else plug-in + the assumed stay
        ) = p
        # The sessions at their last mark.
        self.energy_at_kwh = np.zeros(n_ports)
        self.need_at_kwh = np.zeros(n_ports)
        self.fade_at_kwh = np.zeros(n_ports)  # cycle fade of the charge from plug-in to the last mark
        # Each port's factor of the cycle fade that depends on the battery only (`_fade_factor`), by capacity.
        self._factors: dict[float, float] = {}
        self.fade_factor = np.full(n_ports, self._fade_factor(1.0))
        self.price_per_kwh = 0.0
        self.energy_kwh = 0.0  # since the last decision
        self.cost = 0.0  # energy × the price in force, since the last decision
        self.unmet_kwh = 0.0  # need left by the sessions that ended since the last decision
        self.fade_kwh = 0.0  # battery capacity lost to charging since the last decision
        # With bidirectional ports: the meter of energy both ways, and the occupied ports whose EV may discharge.
        self.meter: _V2gMeter | None = None
        self.bidirectional = np.zeros(n_ports, bool)
        self.v2g_ports: dict[int, Session] = {}

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        if isinstance(event, SessionStarted):
            assert self.live is not None
            i = self.index[event.evse_id]
            s = self.live.evses[i].session
            assert s is not None
            self.occupied[i] = s
            self.occupied_evses[i] = self.live.evses[i]
            self.moved = True
            self.occ[i] = True
            self.version[i] = -1
            target = s.target_soc_frac
            self.soc_cap_frac[i] = min(1.0, target)
            self.target_soc_frac[i] = target
            self.soc_in_frac[i] = s.soc_in_frac
            self.capacity_kwh[i] = capacity_kwh = s.model.capacity_kwh
            self.fade_factor[i] = self._fade_factor(capacity_kwh)
            self.known[i] = s.iso15118
            self.departure_t_s[i] = s.depart_t_s if s.iso15118 else s.plug_t_s + self.est.dwell_s
            if not s.iso15118:
                self.estimated[i] = True
                self.n_estimated += 1
            if isinstance(s.ev, EvState):
                self.reporting.add(i)
            _, _, energy, need, _, _ = self.read(i, s, event.t_s)
            self.energy_at_kwh[i], self.need_at_kwh[i] = energy, need
            self.fade_at_kwh[i] = 0.0
            if self.meter is not None and s.v2g is not None and self.bidirectional[i]:
                self.v2g_ports[i] = s
                self.meter.discharged_at_kwh[i] = 0.0
                self.meter.soc_path[i] = [s.soc_in_frac]
            kw = float(self.held_kw[i])
            return (SetPowerLimit(event.evse_id, kw),) if kw < math.inf else ()
        if isinstance(event, SessionStopped):
            i = self.index[event.evse_id]
            if self.occupied.pop(i, None) is not None:
                del self.occupied_evses[i]
                self.moved = True
                self.freed.append(i)
                self.reporting.discard(i)
                self.curved.pop(i, None)
                if self.meter is None:
                    delta = max(event.energy_kwh - float(self.energy_at_kwh[i]), 0.0)
                    self._add(delta)
                else:  # net of what it charged and gave back since its last mark
                    delta = event.energy_kwh - event.energy_discharged_kwh - float(self.energy_at_kwh[i])
                    self.meter.stop(i, delta, event.energy_discharged_kwh, event.t_s)
                    if self.v2g_ports.pop(i, None) is not None:
                        net_kwh = event.energy_kwh - event.energy_discharged_kwh
                        soc_out = float(self.soc_in_frac[i]) + net_kwh / float(self.capacity_kwh[i])
                        self._close_v2g_fade(i, soc_out, event.energy_discharged_kwh > 0)
                self.unmet_kwh += max(float(self.need_at_kwh[i]) - delta, 0.0)
                capacity = float(self.capacity_kwh[i])
                soc_in = float(self.soc_in_frac[i])
                # Charging's fade: one half cycle from the plug-in SoC to the SoC it left with (net of any discharge).
                net_kwh = event.energy_kwh if self.meter is None else event.energy_kwh - event.energy_discharged_kwh
                fade = self._charging_fade_kwh(soc_in + net_kwh / capacity, soc_in, capacity)
                self.fade_kwh += fade - float(self.fade_at_kwh[i])
                self.occ[i] = False
                if self.estimated[i]:
                    self.estimated[i] = False
                    self.n_estimated -= 1
                self.p[:, i] = _FREE
                self.fade_factor[i] = self._fade_factor(1.0)
                self.energy_at_kwh[i] = self.need_at_kwh[i] = self.fade_at_kwh[i] = 0.0
        elif isinstance(event, PriceChanged):
            self.scan(event.t_s)
            self.price_per_kwh = event.price_per_kwh
        return ()

    def read(self, i: int, s: Session, now: float) -> tuple[EvseStatus, float, float, float, bool, float]:
        """The session on port `i` now, one port at a time: status, power, energy, need, need known, departure."""
        assert self.live is not None
        e = self.live.evses[i]
        if isinstance(s.ev, EvState):  # what the EV reports goes through its vehicle data (ISO 15118, telematics)
            assert self.live.vehicle_data is not None
            v, _ = self.live.vehicle_data.evse_view(e, s, s.ev, now, e.charger.shared_kw)
            need = self.est.need_kwh(v)
            return v.status, v.power_kw, v.energy_kwh, need, v.energy_need_kwh is not None, self.est.departure_t_s(v)
        soc, power_kw = s.soc_power_at(now)
        capacity_kwh = s.model.capacity_kwh
        energy_kwh = (soc - s.soc_in_frac) * capacity_kwh
        if s.iso15118:
            return e.status, power_kw, energy_kwh, (s.target_soc_frac - soc) * capacity_kwh, True, s.depart_t_s
        need_kwh = max(self.est.energy_kwh - energy_kwh, 0.0)
        return e.status, power_kw, energy_kwh, need_kwh, False, s.plug_t_s + self.est.dwell_s

    def _refollow(self) -> None:
        """Follow the sessions whose interval changed since they were last read (`Session.version`).

        Keeps the line each follows in its new interval, or marks it as curved. Many at once (after a
        decision re-planned them) are written in one numpy call, a few one by one.
        """
        version, curved, lines = self.version, self.curved, self._lines
        stale = [(i, s) for i, s in self.occupied.items() if s.version != version[i]]
        if not stale:
            return
        rows = []  # base SoC, SoC per second, time offset, power
        for i, s in stale:
            version[i] = s.version
            p = s.profile
            if p is None:
                linear = not s.discharge_kw  # a discharge is read one by one
                rows.append((s.soc_frac, 0.0, 0.0, 0.0))
            else:
                line = lines.get(p)
                if line is None:
                    line = lines[p] = self._line(p)
                linear, rate, kw = line
                rows.append((0.0, rate, s.tau0_s - s.t0_s, kw))
            if not linear:
                curved[i] = s
            elif curved:
                curved.pop(i, None)
        if len(rows) > _BATCH:
            self.p[:4, [i for i, _ in stale]] = np.array(rows).T
            return
        base, rate_per_s, offset, line_kw = self.base_soc_frac, self.rate_per_s, self.offset_s, self.line_kw
        for (i, _), row in zip(stale, rows, strict=True):
            base[i], rate_per_s[i], offset[i], line_kw[i] = row

    def state(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Every port's SoC and power now (0 on a free port).

        A session on a flat piece of its curve (an AC charge, a capped DC one) or not charging follows a
        straight line in SoC until its next interval, so its line is kept by port and evaluated for all at
        once; only the sessions on a curve or discharging are read one by one.
        The power is the agent's own array when no session is curved: read it, do not write it.
        """
        self._refollow()
        soc = self.base_soc_frac + self.rate_per_s * (now + self.offset_s)
        np.minimum(soc, self.soc_cap_frac, out=soc)
        if not self.curved:
            return soc, self.line_kw
        power = self.line_kw.copy()
        for i, s in self.curved.items():
            soc[i], power[i] = s.soc_power_at(now)
        return soc, power

    def power_now(self, now: float) -> np.ndarray:
        """Every port's power now (0 on a free port): `state` without the SoC (read it, do not write it)."""
        self._refollow()
        if not self.curved:
            return self.line_kw
        power = self.line_kw.copy()
        for i, s in self.curved.items():
            power[i] = s.soc_power_at(now)[1]
        return power

    @staticmethod
    def _line(p: ChargeProfile) -> tuple[bool, float, float]:
        """Whether `p` is one flat piece from SoC 0, and then its SoC per second and power (`ChargeProfile.flat_kw`).

        On such a profile soc = kW × profile time / capacity.
        """
        flat_kw = p.flat_kw
        if flat_kw is None:
            return False, 0.0, 0.0
        return True, flat_kw / p.capacity_kwh / S_PER_H, flat_kw

    def scan(self, now: float) -> _Scan:
        """Read and meter every live session now, as arrays over every port (zeros on a free one)."""
        soc, power = self.state(now)
        capacity, soc_in = self.capacity_kwh, self.soc_in_frac
        rise = soc - soc_in
        energy = rise * capacity
        need = (self.target_soc_frac - soc) * capacity
        if self.n_estimated:
            need = np.where(self.estimated, np.maximum(self.est.energy_kwh - energy, 0.0), need)
        known, departure = self.known, self.departure_t_s
        reported: dict[int, EvseStatus] = {}
        if self.reporting:  # EVs whose reports go through their vehicle data: one at a time
            known, departure, power = known.copy(), departure.copy(), power.copy()
            sessions = self.occupied
            for i in self.reporting:
                reported[i], power[i], energy[i], need[i], known[i], departure[i] = self.read(i, sessions[i], now)
        if self.meter is None:
            self._add(float((energy - self.energy_at_kwh).sum()))
        else:
            self.meter.mark(energy - self.energy_at_kwh, self._discharged_kwh(now), now)
            for i in self.v2g_ports:
                self.meter.soc_path[i].append(float(soc[i]))
        # `_charging_fade_kwh` over every port, the battery's factor kept by port: the same operations and numbers.
        np.maximum(rise, 0.0, out=rise)
        fade = self.fade_factor * beta_per_sqrt_ah(soc_in + rise / 2.0, rise) * (rise * CELL_AH) * capacity
        self.fade_kwh += float((fade - self.fade_at_kwh).sum())
        self.fade_at_kwh, self.energy_at_kwh, self.need_at_kwh = fade, energy, need
        return _Scan(reported, power, energy, need, known, departure)

    def _close_v2g_fade(self, i: int, soc_out_frac: float, discharged: bool) -> None:
        """The V2G session on port `i` ends at `soc_out_frac`: split its cycle fade between charging and V2G.

        As degradation.parquet does: the rainflow cycles of its SoC path (between two marks the SoC
        only rises, falls or holds, so the marks hold every turning point); charging owns the half
        cycle from the plug-in SoC to `soc_out_frac`, never more than the total, which the marks already
        counted; V2G the rest. A session that never gave back is charging's alone.
        """
        meter = self.meter
        assert meter is not None
        path = meter.soc_path.pop(i)
        if not discharged:
            return
        path.append(soc_out_frac)
        capacity = float(self.capacity_kwh[i])
        soc_in = float(self.soc_in_frac[i])
        cycles = np.array(rainflow(path)).reshape(-1, 3)
        total = float(np.sum(self.ageing.cycle_frac(cycles[:, 0], cycles[:, 1], cycles[:, 2], capacity)))
        alone = float(self.ageing.cycle_frac(max(soc_out_frac - soc_in, 0.0), (soc_in + soc_out_frac) / 2.0, 0.5,
                                             capacity))  # fmt: skip
        charging = min(total, alone)
        self.fade_kwh += (charging - alone) * capacity  # the marks counted the whole half cycle
        meter.v2g_fade_kwh += (total - charging) * capacity

    def close_ongoing(self) -> None:
        """At the horizon: the V2G sessions still plugged in end their fade where their SoC is now."""
        if self.meter is None:
            return
        for i, s in list(self.v2g_ports.items()):
            soc = self.meter.soc_path[i][-1]
            self._close_v2g_fade(i, soc, s.discharged_kwh > 0 or bool(s.discharge_kw))
            del self.v2g_ports[i]

    def _discharged_kwh(self, now: float) -> dict[int, float]:
        """Energy each V2G session has given back up to `now`, its open discharge included."""
        out = {}
        for i, s in self.v2g_ports.items():
            kwh = s.discharged_kwh
            if s.discharge_kw:
                kwh += (s.dis_soc0 - s.discharge_soc_at(now)) * s.model.capacity_kwh
            out[i] = kwh
        return out

    def _add(self, kwh: float) -> None:
        self.energy_kwh += kwh
        self.cost += kwh * self.price_per_kwh

    def _charging_fade_kwh(self, soc: float, soc_in: float, capacity_kwh: float) -> float:
        """Cycle fade (kWh of capacity) of charging from `soc_in` up to `soc`: one half cycle, as the KPI attributes it.

        One session's, in Python floats; `scan` marks every port's with the same operations on arrays, and the
        increments add up to the session's `cycle_fade_charging_kwh`.
        """
        rise = max(soc - soc_in, 0.0)
        return float(self.ageing.cycle_frac(rise, soc_in + rise / 2.0, 0.5, capacity_kwh)) * capacity_kwh

    def _fade_factor(self, capacity_kwh: float) -> float:
        """The factor of `AgeingModel.cycle_frac` a battery of `capacity_kwh` brings: CYC_POWER × its throughput^-½.

        Evaluated as `cycle_frac` evaluates it over every port, by numpy on an array, once per capacity.
        """
        k = self._factors.get(capacity_kwh)
        if k is None:
            q_age = self.ageing.throughput_behind_ah(np.array([capacity_kwh]))
            k = self._factors[capacity_kwh] = float((CYC_POWER * q_age ** (CYC_POWER - 1.0))[0])
        return k

    def take(self) -> tuple[float, float, float, float]:
        """The step's energy, cost, unmet need and capacity fade from charging; the counters restart."""
        out = (self.energy_kwh, self.cost, self.unmet_kwh, self.fade_kwh)
        self.energy_kwh = self.cost = self.unmet_kwh = self.fade_kwh = 0.0
        return out


class _Scan(NamedTuple):
    """Every port now, column by column (zeros on a free port), and the status each reporting EV gave."""

    reported: dict[int, EvseStatus]
    power_kw: np.ndarray
    energy_kwh: np.ndarray
    need_kwh: np.ndarray
    known: np.ndarray
    departure_t_s: np.ndarray


class ChargingEnv(gymnasium.Env[dict[str, np.ndarray], np.ndarray]):
    """Power per port at a fixed decision interval, over a scenario's network.

    Args:
        scenario: A scenario, or the path of a scenario file.
        decision_interval_s: Simulated time between two decisions (e.g. 300 or 900).
        action: ``"continuous"``: one value in [0, 1] per port, the share of its max_power_kw
            (1 lifts the limit), in [-1, 1] on a bidirectional port, a negative value being the
            share of its max_discharge_kw to give back; or a tuple of such shares, one discrete
            choice per port (a negative share holds a one-way port at 0).
        reward: The reward's weights (see `RewardWeights`).
        horizon_days: Episode length; None keeps the scenario's horizon.
        clip_to_site_limit: Scale each site's limits down so that their sum over the sessions
            wanting power stays within the site's limit now (a safety layer; off by default).
        assumed_dwell_h: Departure estimate for EVs that do not say theirs (as the smart managers).
        assumed_energy_kwh: Need estimate for EVs that do not say theirs.

    Observations are a `spaces.Dict` of ``ports`` (n_ports × `PORT_FEATURES`), ``sites``
    (n_sites × `SITE_FEATURES`) and ``time`` (`TIME_FEATURES`), ports and sites in scenario
    order; with bidirectional ports also ``v2g`` (n_ports × `V2G_FEATURES`) and ``v2g_sites``
    (n_sites × `V2G_SITE_FEATURES`). `reset(seed=s)` runs the scenario with a seed drawn from `s`,
    so the same seed gives the same arrivals and the same observations and rewards for the same actions.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        scenario: Scenario | str | Path,
        *,
        decision_interval_s: float = 900.0,
        action: Literal["continuous"] | tuple[float, ...] = "continuous",
        reward: RewardWeights = RewardWeights(),  # noqa: B008 - frozen
        horizon_days: float | None = None,
        clip_to_site_limit: bool = False,
        assumed_dwell_h: float = 4.0,
        assumed_energy_kwh: float = 25.0,
    ) -> None:
        if not decision_interval_s > 0:
            raise ValueError(f"decision_interval_s(={decision_interval_s}) must be > 0")
        if isinstance(scenario, str | Path):
            scenario = load_scenario(scenario, horizon_days=horizon_days)
        elif horizon_days is not None:
            data = scenario.model_dump(mode="json") | {"horizon_days": horizon_days}
            scenario = Scenario.model_validate(data)
        self.scenario = scenario
        self.interval_s = float(decision_interval_s)
        self.weights = reward
        self.clip = clip_to_site_limit
        self.est = Estimates(assumed_dwell_h, assumed_energy_kwh)
        self.sale_price_per_kwh = (
            reward.sale_price_per_kwh if reward.sale_price_per_kwh is not None else scenario.tariff.price_per_kwh
        )
        wear = scenario.degradation or Degradation()
        self.ageing = AgeingModel.of(wear)
        self.wear_cost_per_kwh = wear.cost_per_kwh
        plan = plan_of(scenario)  # the network's layout, which no seed changes
        self.site_ids: tuple[SiteId, ...] = tuple(site.site_id for site in plan.sites)
        self.port_ids: tuple[EvseId, ...] = tuple(p.evse_id for p in plan.ports)
        self.max_kw = np.array([p.rated_kw for p in plan.ports], dtype=np.float64)
        self._site_of = np.array([p.site.index for p in plan.ports], dtype=np.int64)
        counts = np.bincount(self._site_of, minlength=len(plan.sites))
        bounds = np.concatenate([[0], np.cumsum(counts)])  # a site's ports are consecutive in plan order
        self._site_ports = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        self._site_ports_kw = np.array([self.max_kw[sl].sum() for sl in self._site_ports])
        self._caps_kw = self._site_ports_kw.tolist()
        self._trees = [SiteTree.of(site, plan.ports[sl]) for site, sl in zip(plan.sites, self._site_ports, strict=True)]
        self._share = np.array([p.phase_share for p in plan.ports], dtype=np.float64).reshape(-1, 3)
        self._index = {evse_id: i for i, evse_id in enumerate(self.port_ids)}
        # What the last observation saw, which is the state when the next action comes.
        self._wanting = np.zeros(len(self.port_ids), bool)
        self._site_limit_kw = np.zeros(len(plan.sites))
        self._phase_limit_kw = np.array([site.phase_limit_kw for site in plan.sites])
        # Each site's phase_limit_kw row, which no seed changes: capped at its ports' total, at most _BIG.
        self._phase_caps_kw = [min(kw, cap, _BIG) for kw, cap in zip(self._phase_limit_kw.tolist(), self._caps_kw,
                                                                     strict=True)]  # fmt: skip
        sites = plan.sites
        n_ports, n_sites = len(self.port_ids), len(sites)
        # V2G: the ports that discharge, and what each discharges with at most (0 on a one-way port).
        self.discharge_kw = np.array([p.discharge_kw for p in plan.ports], dtype=np.float64)
        self._bidirectional = self.discharge_kw > 0
        self.v2g = bool(self._bidirectional.any())
        self._low = np.where(self._bidirectional, -1.0, 0.0)  # each port's lowest share
        self._export_room_kw = np.zeros(n_sites)  # what each site may export now (export limit less PV)
        self._can_discharge = np.zeros(n_ports, bool)  # a V2G EV on a bidirectional port, above its floor
        if isinstance(action, str):
            if action != "continuous":
                raise ValueError(f"action(={action!r}) must be 'continuous' or a tuple of shares in [0, 1]")
            self.levels: np.ndarray | None = None
            low = self._low.astype(np.float32) if self.v2g else 0.0
            self.action_space: spaces.Space[np.ndarray] = spaces.Box(low, 1.0, (n_ports,), np.float32)
        else:
            lowest = -1.0 if self.v2g else 0.0
            if len(action) < 2 or not all(lowest <= a <= 1.0 for a in action):
                what = "in [-1, 1] (negative: discharge)" if self.v2g else "in [0, 1] (no port is bidirectional)"
                raise ValueError(f"action(={action!r}) needs at least two shares, each {what}")
            self.levels = np.asarray(action, dtype=np.float64)
            self.action_space = spaces.MultiDiscrete(np.full(n_ports, len(action), dtype=np.int64))
        inf = _BIG  # finite bounds: Gymnasium's checker (and most agents) want them
        port_low = np.zeros((n_ports, len(PORT_FEATURES)), np.float32)
        site_low = np.zeros((n_sites, len(SITE_FEATURES)), np.float32)
        if self.v2g:  # a discharging port's power, a session's net energy and a site's power go below zero
            port_low[:, PORT_FEATURES.index("power_frac")] = -1.0
            port_low[:, PORT_FEATURES.index("delivered_kwh")] = -inf
            site_low[:, [SITE_FEATURES.index(k) for k in ("power_kw", "l1_kw", "l2_kw", "l3_kw")]] = -inf
        obs_spaces: dict[str, spaces.Space] = {
            "ports": spaces.Box(port_low if self.v2g else 0.0, inf, (n_ports, len(PORT_FEATURES)), np.float32),
            "sites": spaces.Box(site_low if self.v2g else 0.0, inf, (n_sites, len(SITE_FEATURES)), np.float32),
            "time": spaces.Box(
                np.array([-1, -1, 0, 0], np.float32), np.array([1, 1, inf, 1], np.float32), (4,), np.float32
            ),
        }
        if self.v2g:
            obs_spaces["v2g"] = spaces.Box(0.0, inf, (n_ports, len(V2G_FEATURES)), np.float32)
            obs_spaces["v2g_sites"] = spaces.Box(-inf, inf, (n_sites, len(V2G_SITE_FEATURES)), np.float32)
            clock = WallClock.of(scenario)
            layouts: dict = {}
            self._schedules = [TariffSchedule(site.tariff or scenario.tariff, clock, layouts)
                               for site in scenario.network.sites]  # fmt: skip
        self.observation_space: spaces.Dict = spaces.Dict(obs_spaces)  # type: ignore[assignment]
        start = scenario.start
        self._tod0_s = start.hour * _HOUR_S + start.minute * 60.0 + start.second
        self._sim: Simulation | None = None
        self._agent: _Agent | None = None
        self.run_tables: RunTables | None = None  # the finished episode's tables, for the usual KPIs
        # The objects alive now (modules, the scenario, its network plan: over 100,000) outlive every episode, yet
        # each full collection during one would visit them all again (about 30 us a step on the bench's workload,
        # a quarter of a step's CPU at times): freeze them, as `sim.collector.collector_tuned` does for a run,
        # until `close`. A process that froze objects itself is left as it was.
        self._froze = gc.get_freeze_count() == 0
        if self._froze:
            gc.freeze()

    def close(self) -> None:
        """Hand the objects frozen when the env was built back to the collector's oldest generation."""
        if self._froze:
            gc.unfreeze()
            self._froze = False
        super().close()

    @property
    def simulation(self) -> Simulation | None:
        """The episode's running simulation (None before the first `reset`): its `view` is what a manager sees."""
        return self._sim

    # ------------------------------------------------------------ Gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: the scenario with a seed drawn from the env's generator (seeded by `seed`).

        ``options={"scenario_seed": k}`` runs the scenario with seed k itself (e.g. to compare
        with another manager on the same arrivals).
        """
        super().reset(seed=seed)
        if options is not None and "scenario_seed" in options:
            run_seed = int(options["scenario_seed"])
        else:
            run_seed = int(self.np_random.integers(0, 2**31 - 1))
        scenario = self.scenario.model_copy(update={"seed": run_seed})
        self._agent = agent = _Agent(self.est, self._index, len(self.port_ids), self.ageing)
        self._sim = sim = Simulation(scenario, agent)
        agent.live = sim.live
        agent.price_per_kwh = sim.view.price_at(0.0)
        if self.v2g:
            agent.bidirectional = self._bidirectional
            agent.meter = _V2gMeter(self._site_of, len(self.site_ids), self._schedules, scenario.horizon_s, sim.live)
            self._v2g_cols = np.zeros((len(V2G_FEATURES), len(self.port_ids)))
            self._v2g_cols[0] = self.discharge_kw
            self._can_discharge[:] = False
        self._cols = np.zeros((len(PORT_FEATURES), len(self.port_ids)))  # the ports' observation, transposed
        self._cols[PORT_FEATURES.index("max_power_kw")] = self.max_kw
        self._wanting[:] = False
        self._seen: list[EvseStatus | None] = [None] * len(self.port_ids)  # each port's status at the last observation
        self._statuses: list[EvseStatus] | None = None  # the occupied ports' statuses then, in plug-in order
        self.run_tables = None
        obs, _ = self._observe()
        return obs, {"t_s": 0.0, "scenario_seed": run_seed}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Hold `action`'s limits for one decision interval; reward as `RewardWeights` says."""
        sim, agent = self._sim, self._agent
        if sim is None or agent is None:
            raise RuntimeError("call reset() before step()")
        if self.run_tables is not None:
            raise RuntimeError("the episode has ended: call reset()")
        # The last observation is the state now: which ports hold a session, and the limit each
        # has (the agent's last one: sessions that started since were given it at plug-in).
        kw = self._limits_kw(action)
        if agent.occupied:
            changed = np.flatnonzero((kw != agent.held_kw) & agent.occ)  # in port order
            sim.set_power_limits(changed.tolist(), kw[changed].tolist())
        agent.held_kw = kw
        over_start_kw = self._overload_now()
        horizon_s = self.scenario.horizon_s
        end_s = min(sim.t_s + self.interval_s, horizon_s)
        meter = agent.meter
        if meter is not None:  # every port is marked at each 15-minute bin's end and each tariff change
            for cut_s in meter.cuts(sim.t_s, end_s):
                sim.advance(cut_s)
                agent.scan(cut_s)
                if cut_s % BIN_S == 0.0:
                    meter.settle(cut_s)
        sim.advance(end_s)
        obs, over_end_kw = self._observe()
        energy_kwh, cost, unmet_kwh, fade_kwh = agent.take()
        wear_cost = fade_kwh * self.wear_cost_per_kwh
        v2g_info: dict[str, float] = {}
        v2g_wear_cost = 0.0
        if meter is not None:
            if end_s % BIN_S == 0.0 or end_s >= horizon_s:
                meter.settle(end_s)
            if end_s >= horizon_s:
                agent.close_ongoing()
                fade_kwh += agent.fade_kwh  # the charging share of the sessions closed at the horizon
                agent.fade_kwh = 0.0
                wear_cost = fade_kwh * self.wear_cost_per_kwh
            energy_kwh, discharged_kwh, cost, export_revenue, remuneration, v2g_fade_kwh = meter.take()
            v2g_wear_cost = v2g_fade_kwh * self.wear_cost_per_kwh
            v2g_info = {
                "discharged_kwh": discharged_kwh,
                "export_revenue": export_revenue,
                "v2g_remuneration": remuneration,
                "v2g_fade_kwh": v2g_fade_kwh,
                "v2g_wear_cost": v2g_wear_cost,
            }
            profit = energy_kwh * self.sale_price_per_kwh - cost + export_revenue - remuneration
        else:
            profit = energy_kwh * self.sale_price_per_kwh - cost
        overload_kwh = 0.5 * (over_start_kw + over_end_kw) * self.interval_s / _HOUR_S
        w = self.weights
        reward = w.profit * profit - w.unmet_per_kwh * unmet_kwh - w.overload_per_kwh * overload_kwh
        reward -= w.degradation * (wear_cost + v2g_wear_cost)
        terminated = sim.t_s >= horizon_s
        if terminated:
            self.run_tables = sim.finish()
        info = {
            "t_s": sim.t_s,
            "energy_kwh": energy_kwh,
            "energy_cost": cost,
            "profit": profit,
            "unmet_kwh": unmet_kwh,
            "overload_kwh": overload_kwh,
            "overload_after_action_kw": over_start_kw,
            "overload_end_kw": over_end_kw,
            "fade_kwh": fade_kwh,
            "wear_cost": wear_cost,
            **v2g_info,
        }
        return obs, float(reward), terminated, False, info

    # ------------------------------------------------------------ helpers

    def _limits_kw(self, action: np.ndarray) -> np.ndarray:
        """Each port's limit (kW, inf for none) for `action`."""
        a = np.asarray(action)
        if a.shape != (len(self.port_ids),):
            raise ValueError(f"action has shape {a.shape}; this env takes {(len(self.port_ids),)}")
        if self.levels is not None:
            share = self.levels[a.astype(np.int64)]
        else:
            share = a.astype(np.float64).clip(
                self._low if self.v2g else 0.0, 1.0
            )  # the method: np.clip's ufunc, sooner
        kw = np.floor(share * self.max_kw * _STEPS_PER_KW) / _STEPS_PER_KW
        if self.v2g:  # a negative share gives back that share of the port's discharge power (0 on a one-way port)
            out = np.floor(np.maximum(-share, 0.0) * self.discharge_kw * _STEPS_PER_KW) / _STEPS_PER_KW
            kw = np.where(share < 0, -out, kw) + 0.0  # + 0.0: no -0.0 limits
        if not self.clip:
            kw[share >= 1.0] = math.inf
            return kw
        for j, ports in enumerate(self._site_ports):
            # The site's tree (connection, phases, panels) scales what the ports wanting power would draw.
            demand = np.where(self._wanting[ports], kw[ports], 0.0)
            if self.v2g:
                demand = np.maximum(demand, 0.0)
            f = self._trees[j].factors(demand, float(self._site_limit_kw[j]))
            if (f < 1.0).any():
                scaled = np.floor(kw[ports] * f * _STEPS_PER_KW) / _STEPS_PER_KW
                kw[ports] = np.where(kw[ports] < 0, kw[ports], scaled) if self.v2g else scaled
            if self.v2g:  # and what the ports that may discharge would give back, against the export limit
                out = np.where(self._can_discharge[ports] & (kw[ports] < 0), -kw[ports], 0.0)
                g = self._trees[j].export_factors(out, np.zeros(len(out)), float(self._export_room_kw[j]))
                if (g < 1.0).any():
                    kw[ports] = np.where(out > 0, -np.floor(out * g * _STEPS_PER_KW) / _STEPS_PER_KW, kw[ports]) + 0.0
        return kw

    def _overload_now(self) -> float:
        """Σ over sites of the chargers' power above the site's limit now (and, with V2G, the export above its own)."""
        assert self._agent is not None
        live = self._agent.live
        assert live is not None
        power = self._agent.power_now(live.view.t_s)
        supply = live.view.supply
        if self.v2g:
            site_kw = np.bincount(self._site_of, weights=power, minlength=len(self.site_ids))
            return sum(max(float(kw) - supply(site)[0], 0.0) + self._export_over_kw(site, float(kw))
                       for kw, site in zip(site_kw, live.sites, strict=True))  # fmt: skip
        if len(live.sites) == 1:
            return max(float(power.sum()) - supply(live.sites[0])[0], 0.0)
        site_kw = np.bincount(self._site_of, weights=power, minlength=len(self.site_ids))
        return sum(max(float(kw) - supply(site)[0], 0.0) for kw, site in zip(site_kw, live.sites, strict=True))

    def _export_over_kw(self, site: SiteState, power_kw: float) -> float:
        """What `site` feeds into the grid above its export limit when its chargers draw `power_kw` (< 0: give back).

        The site exports what PV and its battery produce and the EVs give back beyond what the EVs draw.
        """
        limit_kw = site.export_limit_kw
        if limit_kw == math.inf:
            return 0.0
        _, _, _, pv_kw, storage = self._agent.live.view.supply(site)  # type: ignore[union-attr]
        out_kw = pv_kw + (storage.power_kw if storage is not None else 0.0) - power_kw
        return max(out_kw - limit_kw, 0.0)

    def _observe(self) -> tuple[dict[str, np.ndarray], float]:
        """The observation now (metering every session on the way), and the sites' overload (kW)."""
        assert self._agent is not None
        assert self._sim is not None
        agent = self._agent
        live = agent.live
        assert live is not None
        now = self._sim.t_s
        cols, wanting, seen = self._cols, self._wanting, self._seen
        if agent.freed:
            freed = agent.freed
            cols[:2, freed] = 0.0  # occupied, charging: the other features are zero on a free port
            wanting[freed] = False
            for i in freed:
                seen[i] = None
            freed.clear()
        scan = agent.scan(now)
        power = scan.power_kw
        # Occupied, charging and wanting change with a port's status (or a new session on it): set them then.
        reported, moved = scan.reported, agent.moved
        if reported:
            evses = live.evses
            status = [reported[i] if i in reported else evses[i].status for i in agent.occupied]
            self._statuses = None
        else:  # the occupied ports' statuses, and where nothing moved and no status changed, nothing to do
            status = list(map(_STATUS, agent.occupied_evses.values()))
            if not moved and status == self._statuses:
                status = []
            else:
                self._statuses = status
        agent.moved = False
        for i, st in zip(agent.occupied, status, strict=False):  # status is empty when nothing changed
            if st is not seen[i]:
                seen[i] = st
                cols[0, i] = 1.0
                cols[1, i] = st is _CHARGING
                wanting[i] = st in _WANTS
        np.divide(power, self.max_kw, out=cols[2])
        cols[3] = scan.energy_kwh
        np.maximum(scan.need_kwh, 0.0, out=cols[4])
        if moved or reported:  # else the same as at the last observation: fixed at plug-in, 0 on a free port
            cols[5] = scan.known
        np.maximum(scan.departure_t_s - now, 0.0, out=cols[6])
        cols[6] /= _HOUR_S
        ports = np.empty((len(self.port_ids), len(PORT_FEATURES)), np.float32)
        np.minimum(cols.T, _BIG, out=ports, casting="same_kind")
        rows = []
        overload_kw = 0.0
        supply = live.view.supply
        for j, (site, sl, cap_kw, phase_kw) in enumerate(zip(live.sites, self._site_ports, self._caps_kw,
                                                             self._phase_caps_kw, strict=True)):  # fmt: skip
            limit_kw, import_kw, dr_cap_kw, pv_kw, storage = supply(site)
            site_power = power[sl]
            power_kw = float(site_power.sum())
            self._site_limit_kw[j] = limit_kw
            # Each value at most _BIG, as np.minimum would clip it (NaN stays NaN), then float32 for all at once.
            rows.append((
                min(power_kw, _BIG),
                min(limit_kw, cap_kw, _BIG),
                min(import_kw, cap_kw, _BIG),
                dr_cap_kw < math.inf,
                min(pv_kw, _BIG),
                min(storage.soc_frac, _BIG) if storage is not None else 0.0,
                min(len(site.queue), _BIG),
                phase_kw,
                *[min(kw, _BIG) for kw in (site_power @ self._share[sl]).tolist()],
            ))  # fmt: skip
            overload_kw += max(power_kw - limit_kw, 0.0)
            if self.v2g:
                overload_kw += self._export_over_kw(site, power_kw)
        agent.price_per_kwh = price = live.view.price_at(now)
        angle = 2.0 * math.pi * ((self._tod0_s + now) % _DAY_S) / _DAY_S
        time = np.array(
            [math.sin(angle), math.cos(angle), min(price, _BIG), min(now / self.scenario.horizon_s, 1.0)],
            dtype=np.float32,
        )
        obs = {"ports": ports, "sites": np.array(rows, np.float32), "time": time}
        if self.v2g:
            obs["v2g"], obs["v2g_sites"] = self._observe_v2g(now)
        return obs, overload_kw

    def _observe_v2g(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The V2G rows now: each port's V2G EV as `V2gView` shows it, and each site's export limit and prices."""
        agent = self._agent
        assert agent is not None
        live = agent.live
        assert live is not None
        cols = self._v2g_cols
        cols[1:] = 0.0
        for i, s in agent.v2g_ports.items():
            v = live.view.v2g_at(live.evses[i], s, now)
            cols[1:, i] = (v.max_discharge_kw, v.soc_frac, v.floor_soc_frac, v.headroom_kwh, v.discharged_kwh)
        self._can_discharge[:] = cols[V2G_FEATURES.index("headroom_kwh")] > 0
        ports = np.minimum(cols.T, _BIG).astype(np.float32)
        view = live.view
        export_price = view.export_prices.at(now) if view.export_prices is not None else 0.0
        sites = np.zeros((len(self.site_ids), len(V2G_SITE_FEATURES)))
        for j, site in enumerate(live.sites):
            pv_kw = view.supply(site)[3]
            self._export_room_kw[j] = max(site.export_limit_kw - pv_kw, 0.0)
            sites[j] = (
                min(site.export_limit_kw, float(self._site_ports_kw[j])),
                export_price,
                self._schedules[j].at(now).v2g_per_kwh,
                max(site.dr_mins, default=0.0),
            )
        return ports, np.clip(sites, -_BIG, _BIG).astype(np.float32)
