"""Prices: what a session costs the driver."""

from sim.config import Tariff

__all__ = ["session_charge"]


def session_charge(tariff: Tariff, energy_kwh: float) -> float:
    """Amount charged for a session that delivered `energy_kwh` (not rounded)."""
    return tariff.session_fee + tariff.price_per_kwh * energy_kwh
