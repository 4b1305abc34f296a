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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium
import numpy as np
from gymnasium import spaces

from sim.config import Scenario, load_scenario
from sim.engine import RunTables, Simulation
from sim.ids import EvseId, SiteId
from sim.managers.base import (
    Command,
    Event,
    EvseStatus,
    NetworkView,
    PriceChanged,
    SessionStarted,
    SessionStopped,
    SetPowerLimit,
    SiteView,
)
from sim.managers.smart import Estimates

__all__ = ["PORT_FEATURES", "SITE_FEATURES", "TIME_FEATURES", "ChargingEnv", "RewardWeights"]

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
_HOUR_S = 3600.0
_DAY_S = 86400.0
_STEPS_PER_KW = 10  # limits in 0.1 kW steps, as `sim.managers.smart.fill`
_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)  # sessions that want power, as the smart managers
_BIG = 1e6  # the observation's upper bound for quantities without one (kW, kWh, h, price); values are clipped to it


@dataclass(frozen=True)
class RewardWeights:
    """The reward of one step: ``profit * profit - unmet_per_kwh * unmet_kwh - overload_per_kwh * overload_kwh``.

    Attributes:
        profit: Weight of the step's energy margin, Σ kWh × (sale price − energy price), in currency.
        unmet_per_kwh: Penalty per kWh still needed by the EVs that left during the step.
        overload_per_kwh: Penalty per kWh above a site's limit: the mean of the overload (kW, summed
            over sites) just after the action and at the end of the step, times the step length (h).
        sale_price_per_kwh: Price the drivers pay per kWh; None takes the scenario tariff's `price_per_kwh`.
    """

    profit: float = 1.0
    unmet_per_kwh: float = 1.0
    overload_per_kwh: float = 5.0
    sale_price_per_kwh: float | None = None


class _Agent:
    """The agent's seat on the bus: holds its limits, re-applies them to new sessions, and meters energy.

    Energy is metered at every mark (decision, price change, session start and stop) from the
    sessions' own counters, so the step's energy and its cost at the price in force are exact.
    """

    def __init__(self, est: Estimates, price_per_kwh: float) -> None:
        self.est = est
        self.held_kw: dict[EvseId, float] = {}  # the agent's last limit per port; inf = none
        self.seen: dict[int, tuple[float, float]] = {}  # session id → (energy at last mark, need then)
        self.price_per_kwh = price_per_kwh
        self.energy_kwh = 0.0  # since the last decision
        self.cost = 0.0  # energy × the price in force, since the last decision
        self.unmet_kwh = 0.0  # need left by the sessions that ended since the last decision

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        if isinstance(event, SessionStarted):
            for e in network.site(event.site_id).evses:
                if e.evse_id == event.evse_id:
                    self.seen[int(event.session_id)] = (e.energy_kwh, self.est.need_kwh(e))
            kw = self.held_kw.get(event.evse_id, math.inf)
            return (SetPowerLimit(event.evse_id, kw),) if kw < math.inf else ()
        if isinstance(event, SessionStopped):
            energy, need = self.seen.pop(int(event.session_id), (0.0, 0.0))
            delta = max(event.energy_kwh - energy, 0.0)
            self._add(delta)
            self.unmet_kwh += max(need - delta, 0.0)
        elif isinstance(event, PriceChanged):
            for sid in network.site_ids():
                self.mark(network.site(sid))
            self.price_per_kwh = event.price_per_kwh
        return ()

    def mark(self, site: SiteView) -> None:
        """Meter every live session of `site` now."""
        seen = self.seen
        for e in site.evses:
            if e.session_id is not None:
                energy, _ = seen.get(int(e.session_id), (0.0, 0.0))
                self._add(e.energy_kwh - energy)
                seen[int(e.session_id)] = (e.energy_kwh, self.est.need_kwh(e))

    def _add(self, kwh: float) -> None:
        self.energy_kwh += kwh
        self.cost += kwh * self.price_per_kwh

    def take(self) -> tuple[float, float, float]:
        """The step's energy, cost and unmet need; the counters restart."""
        out = (self.energy_kwh, self.cost, self.unmet_kwh)
        self.energy_kwh = self.cost = self.unmet_kwh = 0.0
        return out


class ChargingEnv(gymnasium.Env[dict[str, np.ndarray], np.ndarray]):
    """Power per port at a fixed decision interval, over a scenario's network.

    Args:
        scenario: A scenario, or the path of a scenario file.
        decision_interval_s: Simulated time between two decisions (e.g. 300 or 900).
        action: ``"continuous"``: one value in [0, 1] per port, the share of its max_power_kw
            (1 lifts the limit); or a tuple of such shares, one discrete choice per port.
        reward: The reward's weights (see `RewardWeights`).
        horizon_days: Episode length; None keeps the scenario's horizon.
        clip_to_site_limit: Scale each site's limits down so that their sum over the sessions
            wanting power stays within the site's limit now (a safety layer; off by default).
        assumed_dwell_h: Departure estimate for EVs that do not say theirs (as the smart managers).
        assumed_energy_kwh: Need estimate for EVs that do not say theirs.

    Observations are a `spaces.Dict` of ``ports`` (n_ports × `PORT_FEATURES`), ``sites``
    (n_sites × `SITE_FEATURES`) and ``time`` (`TIME_FEATURES`), ports and sites in scenario
    order. `reset(seed=s)` runs the scenario with a seed drawn from `s`, so the same seed gives
    the same arrivals and the same observations and rewards for the same actions.
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
        probe = Simulation(scenario, _Agent(self.est, 0.0))  # the network's layout, which no seed changes
        view = probe.view
        self.site_ids: tuple[SiteId, ...] = view.site_ids()
        sites = [view.site(s) for s in self.site_ids]
        self.port_ids: tuple[EvseId, ...] = tuple(e.evse_id for s in sites for e in s.evses)
        self.max_kw = np.array([e.max_power_kw for s in sites for e in s.evses], dtype=np.float64)
        self._site_ports_kw = np.array([sum(e.max_power_kw for e in s.evses) for s in sites])
        bounds = np.cumsum([0] + [len(s.evses) for s in sites])
        self._site_ports = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        # What the last observation saw, which is the state when the next action comes.
        self._occupied = np.zeros(len(self.port_ids), bool)
        self._wanting = np.zeros(len(self.port_ids), bool)
        self._site_limit_kw = np.zeros(len(sites))
        n_ports, n_sites = len(self.port_ids), len(sites)
        if isinstance(action, str):
            if action != "continuous":
                raise ValueError(f"action(={action!r}) must be 'continuous' or a tuple of shares in [0, 1]")
            self.levels: np.ndarray | None = None
            self.action_space: spaces.Space[np.ndarray] = spaces.Box(0.0, 1.0, (n_ports,), np.float32)
        else:
            if len(action) < 2 or not all(0.0 <= a <= 1.0 for a in action):
                raise ValueError(f"action(={action!r}) needs at least two shares, each in [0, 1]")
            self.levels = np.asarray(action, dtype=np.float64)
            self.action_space = spaces.MultiDiscrete(np.full(n_ports, len(action), dtype=np.int64))
        inf = _BIG  # finite bounds: Gymnasium's checker (and most agents) want them
        self.observation_space: spaces.Dict = spaces.Dict(  # type: ignore[assignment]
            {
                "ports": spaces.Box(0.0, inf, (n_ports, len(PORT_FEATURES)), np.float32),
                "sites": spaces.Box(0.0, inf, (n_sites, len(SITE_FEATURES)), np.float32),
                "time": spaces.Box(
                    np.array([-1, -1, 0, 0], np.float32), np.array([1, 1, inf, 1], np.float32), (4,), np.float32
                ),
            }
        )
        start = scenario.start
        self._tod0_s = start.hour * _HOUR_S + start.minute * 60.0 + start.second
        self._sim: Simulation | None = None
        self._agent: _Agent | None = None
        self.run_tables: RunTables | None = None  # the finished episode's tables, for the usual KPIs

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
        self._agent = _Agent(self.est, 0.0)
        self._sim = Simulation(scenario, self._agent)
        self._agent.price_per_kwh = self._sim.view.price_at(0.0)
        self.run_tables = None
        obs, _ = self._observe(self._sim.view)
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
        held = agent.held_kw
        commands: list[Command] = []
        for i in np.flatnonzero(self._occupied).tolist():
            evse_id = self.port_ids[i]
            if kw[i] != held.get(evse_id, math.inf):
                commands.append(SetPowerLimit(evse_id, kw[i]))
        for evse_id, limit in zip(self.port_ids, kw, strict=True):
            held[evse_id] = limit
        sim.apply(commands)
        view = sim.view
        over_start_kw = sum(self._overload_kw(view.site(sid)) for sid in self.site_ids)
        horizon_s = self.scenario.horizon_s
        sim.advance(min(sim.t_s + self.interval_s, horizon_s))
        obs, over_end_kw = self._observe(view)
        energy_kwh, cost, unmet_kwh = agent.take()
        profit = energy_kwh * self.sale_price_per_kwh - cost
        overload_kwh = 0.5 * (over_start_kw + over_end_kw) * self.interval_s / _HOUR_S
        w = self.weights
        reward = w.profit * profit - w.unmet_per_kwh * unmet_kwh - w.overload_per_kwh * overload_kwh
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
        }
        return obs, float(reward), terminated, False, info

    # ------------------------------------------------------------ helpers

    def _limits_kw(self, action: np.ndarray) -> list[float]:
        """Each port's limit (kW, inf for none) for `action`."""
        a = np.asarray(action)
        if a.shape != (len(self.port_ids),):
            raise ValueError(f"action has shape {a.shape}; this env takes {(len(self.port_ids),)}")
        share = self.levels[a.astype(np.int64)] if self.levels is not None else np.clip(a.astype(np.float64), 0, 1)
        kw = np.floor(share * self.max_kw * _STEPS_PER_KW) / _STEPS_PER_KW
        if self.clip:
            for j, ports in enumerate(self._site_ports):
                total = float(kw[ports][self._wanting[ports]].sum())
                limit_kw = self._site_limit_kw[j]
                if total > limit_kw:
                    kw[ports] = np.floor(kw[ports] * (limit_kw / total) * _STEPS_PER_KW) / _STEPS_PER_KW
            return kw.tolist()
        return [math.inf if s >= 1.0 else k for s, k in zip(share.tolist(), kw.tolist(), strict=True)]

    @staticmethod
    def _overload_kw(site: SiteView) -> float:
        return max(sum(e.power_kw for e in site.evses) - site.limit_kw, 0.0)

    def _observe(self, view: NetworkView) -> tuple[dict[str, np.ndarray], float]:
        """The observation now (metering every session on the way), and the sites' overload (kW)."""
        assert self._agent is not None
        agent, est = self._agent, self.est
        now = view.t_s
        ports = np.zeros((len(self.port_ids), len(PORT_FEATURES)), np.float32)
        ports[:, 7] = self.max_kw
        sites = np.zeros((len(self.site_ids), len(SITE_FEATURES)), np.float32)
        occupied, wanting = self._occupied, self._wanting
        occupied[:] = False
        wanting[:] = False
        overload_kw = 0.0
        i = 0
        for j, sid in enumerate(self.site_ids):
            site = view.site(sid)
            agent.mark(site)
            power_kw = 0.0
            single = site.single_phase
            phase_kw = [0.0, 0.0, 0.0]
            for e in site.evses:
                power_kw += e.power_kw
                if e.session_id is not None:
                    p = single.get(e.evse_id)
                    if p is None:
                        for k in range(3):
                            phase_kw[k] += e.power_kw / 3
                    else:
                        phase_kw[p] += e.power_kw
                    occupied[i] = True
                    wanting[i] = e.status in _WANTS
                    row = ports[i]
                    row[0] = 1.0
                    row[1] = e.status is EvseStatus.CHARGING
                    row[2] = e.power_kw / e.max_power_kw
                    row[3] = e.energy_kwh
                    row[4] = max(est.need_kwh(e), 0.0)
                    row[5] = e.energy_need_kwh is not None
                    row[6] = max(est.departure_t_s(e) - now, 0.0) / _HOUR_S
                i += 1
            cap_kw = float(self._site_ports_kw[j])
            self._site_limit_kw[j] = site.limit_kw
            storage = site.storage
            sites[j] = (
                power_kw,
                min(site.limit_kw, cap_kw),
                min(site.grid_limit_kw, cap_kw),
                site.dr_cap_kw < math.inf,
                site.pv_kw,
                storage.soc_frac if storage is not None else 0.0,
                site.waiting,
                min(site.phase_limit_kw, cap_kw),
                *phase_kw,
            )
            overload_kw += max(power_kw - site.limit_kw, 0.0)
        agent.price_per_kwh = price = view.price_at(now)
        angle = 2.0 * math.pi * ((self._tod0_s + now) % _DAY_S) / _DAY_S
        time = np.array(
            [math.sin(angle), math.cos(angle), price, min(now / self.scenario.horizon_s, 1.0)], dtype=np.float32
        )
        np.minimum(ports, _BIG, out=ports)
        np.minimum(sites, _BIG, out=sites)
        time[2] = min(time[2], _BIG)
        return {"ports": ports, "sites": sites, "time": time}, overload_kw
