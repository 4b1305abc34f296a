"""OCPP 2.0.1: the virtual charging station, its device model, and the 2.0.1 side of the reference CSMS."""

from virtual_chargers.v201.charger import V201Charger
from virtual_chargers.v201.device_model import DeviceModel, standard_device_model

__all__ = ["DeviceModel", "V201Charger", "standard_device_model"]
