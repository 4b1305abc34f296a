"""Network managers: the protocol and the built-in managers, keyed by their config class."""

from collections.abc import Callable

from sim.config import (
    EarliestDeadlineFirstManager,
    EqualShareManager,
    FirstComeFirstServedManager,
    LeastLaxityFirstManager,
    OcppManager,
    PeakShavingManager,
    PriceResponsiveManager,
    UncontrolledManager,
    V2gPeakShavingManager,
    V2gPriceArbitrageManager,
)
from sim.config.serviceability import PreventiveOperator, ReactiveOperator
from sim.managers.base import CompositeManager, NetworkManager
from sim.managers.equal_share import EqualShare
from sim.managers.operators import Preventive, Reactive
from sim.managers.smart import Estimates, make_smart_manager
from sim.managers.uncontrolled import Uncontrolled
from sim.managers.v2g import V2gManager, allocate_peak_shaving, allocate_price_arbitrage

__all__ = ["OPERATORS", "REGISTRY", "answers_sessions", "build_manager", "build_operator"]

PriceAt = Callable[[float], float]


def _smart(cfg, price_at: PriceAt) -> NetworkManager:  # noqa: ANN001 - any smart manager config
    return make_smart_manager(
        cfg.kind,
        Estimates(cfg.assumed_dwell_h, cfg.assumed_energy_kwh),
        price_at,
        getattr(cfg, "target_kw", float("inf")),
    )


def _needs_pacing(cfg, price_at: PriceAt) -> NetworkManager:  # noqa: ANN001
    raise ValueError(
        f"manager kind ocpp puts the CSMS at {cfg.csms} in the loop: run the scenario paced, with "
        "`chargetwin run SCENARIO` or virtual_chargers.paced_run.run_paced, not in-process"
    )


def _v2g_peak_shaving(cfg: V2gPeakShavingManager, price_at: PriceAt) -> NetworkManager:
    est, interval_s = Estimates(cfg.assumed_dwell_h, cfg.assumed_energy_kwh), cfg.interval_min * 60.0
    return V2gManager(lambda site: allocate_peak_shaving(site, est, cfg.threshold_kw, interval_s), interval_s)


def _v2g_price_arbitrage(cfg: V2gPriceArbitrageManager, price_at: PriceAt) -> NetworkManager:
    est, interval_s = Estimates(cfg.assumed_dwell_h, cfg.assumed_energy_kwh), cfg.interval_min * 60.0
    low, high = cfg.charge_below_per_kwh, cfg.discharge_above_per_kwh
    return V2gManager(lambda site: allocate_price_arbitrage(site, est, low, high, interval_s), interval_s)


REGISTRY: dict[type, Callable[..., NetworkManager]] = {
    UncontrolledManager: lambda cfg, price_at: Uncontrolled(),
    EqualShareManager: lambda cfg, price_at: EqualShare(),
    FirstComeFirstServedManager: _smart,
    EarliestDeadlineFirstManager: _smart,
    LeastLaxityFirstManager: _smart,
    PriceResponsiveManager: _smart,
    PeakShavingManager: _smart,
    V2gPeakShavingManager: _v2g_peak_shaving,
    V2gPriceArbitrageManager: _v2g_price_arbitrage,
    OcppManager: _needs_pacing,
}


def build_manager(cfg: object, price_at: PriceAt = lambda t_s: 0.0) -> NetworkManager:
    """The manager a scenario's `manager` section asks for; `price_at` gives the energy price at a time."""
    return REGISTRY[type(cfg)](cfg, price_at)


OPERATORS: dict[type, Callable[..., NetworkManager]] = {
    ReactiveOperator: lambda cfg: Reactive(),
    PreventiveOperator: lambda cfg: Preventive(cfg.interval_days * 86400.0),
}


def build_operator(cfg: object) -> NetworkManager:
    """The maintenance operator a scenario's `serviceability.operator` asks for."""
    return OPERATORS[type(cfg)](cfg)


_DEAF_TO_SESSIONS = (Uncontrolled, Reactive, Preventive)  # they answer no session start, status or stop


def answers_sessions(manager: NetworkManager) -> bool:
    """Whether `manager` may answer a session's events; if not, the ports do not even build them.

    `Uncontrolled` answers nothing, the maintenance operators only faults and ticks, so neither they
    nor a composite of them only (``uncontrolled`` with a serviceability section) need them.
    """
    if isinstance(manager, CompositeManager):
        return any(answers_sessions(m) for m in manager.managers)
    return type(manager) not in _DEAF_TO_SESSIONS
