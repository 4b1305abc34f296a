"""Network managers: the protocol and the built-in managers, keyed by their config class."""

from collections.abc import Callable

from sim.config import EqualShareManager, UncontrolledManager
from sim.managers.base import NetworkManager
from sim.managers.equal_share import EqualShare
from sim.managers.uncontrolled import Uncontrolled

__all__ = ["REGISTRY", "build_manager"]

REGISTRY: dict[type, Callable[..., NetworkManager]] = {
    UncontrolledManager: lambda cfg: Uncontrolled(),
    EqualShareManager: lambda cfg: EqualShare(),
}


def build_manager(cfg: object) -> NetworkManager:
    """The manager a scenario's `manager` section asks for."""
    return REGISTRY[type(cfg)](cfg)
