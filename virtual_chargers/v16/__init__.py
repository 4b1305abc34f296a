"""OCPP 1.6J: the virtual charge point and its configuration key store."""

from virtual_chargers.v16.charger import DEFAULT_EV, V16Charger
from virtual_chargers.v16.keys import KeyStore

__all__ = ["DEFAULT_EV", "KeyStore", "V16Charger"]
