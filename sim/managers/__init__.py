"""Network managers: the protocol and the built-in managers, keyed by their config class."""

from collections.abc import Callable

from sim.config import EqualShareManager, UncontrolledManager
from sim.config.serviceability import PreventiveOperator, ReactiveOperator
from sim.managers.base import NetworkManager
from sim.managers.equal_share import EqualShare
from sim.managers.operators import Preventive, Reactive
from sim.managers.uncontrolled import Uncontrolled

__all__ = ["OPERATORS", "REGISTRY", "build_manager", "build_operator"]

REGISTRY: dict[type, Callable[..., NetworkManager]] = {
    UncontrolledManager: lambda cfg: Uncontrolled(),
    EqualShareManager: lambda cfg: EqualShare(),
}


def build_manager(cfg: object) -> NetworkManager:
    """The manager a scenario's `manager` section asks for."""
    return REGISTRY[type(cfg)](cfg)


OPERATORS: dict[type, Callable[..., NetworkManager]] = {
    ReactiveOperator: lambda cfg: Reactive(),
    PreventiveOperator: lambda cfg: Preventive(cfg.interval_days * 86400.0),
}


def build_operator(cfg: object) -> NetworkManager:
    """The maintenance operator a scenario's `serviceability.operator` asks for."""
    return OPERATORS[type(cfg)](cfg)
