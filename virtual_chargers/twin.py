"""What a twin charger of a bridged run tells its listener, for both OCPP versions.

A twin charger (`virtual_chargers.bridge16.TwinCharger16`, `virtual_chargers.bridge201.TwinCharger201`)
is a virtual charger whose connectors are simulated ones. Whatever the CSMS makes it do that the
simulation must follow, it reports to a `TwinListener` in the listener's own terms (connector ids of
the charger, kW, the simulation's statuses); `virtual_chargers.bridge.Bridge` implements it once and
turns each call into simulation commands. The chargers depend on this module only, never on the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose
from sim.ids import SessionId
from sim.managers.base import EvseStatus
from virtual_chargers.v201.certificates import ContractIssuer

__all__ = [
    "SIM_CHARGING_STATUS",
    "TARIFF_MESSAGE",
    "TARIFF_VENDOR",
    "RemoteStart",
    "TwinListener",
    "session_of_tag",
]

TARIFF_VENDOR = "chargetwin"
"""DataTransfer vendorId of a price update (messageId `TARIFF_MESSAGE`, data: tariff fields as JSON)."""
TARIFF_MESSAGE = "SetTariff"

SIM_CHARGING_STATUS = {
    EvseStatus.CHARGING: "Charging",
    EvseStatus.SUSPENDED_EV: "SuspendedEV",
    EvseStatus.SUSPENDED_EVSE: "SuspendedEVSE",
}
"""A simulated session's status as the charging status (1.6) / charging state (2.0.1) of its connector."""


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """A remote start the CSMS sent for a driver who is waiting: the id token (1.6 idTag) and what came with it."""

    id_tag: str
    id_token_type: str = "Central"  # 2.0.1
    remote_start_id: int = 0  # 2.0.1
    profile: dict[str, Any] | None = None


class TwinListener(Protocol):
    """What a twin charger reports; connector ids are the charger's (1.6 connector, 2.0.1 EVSE), 0 for all."""

    def profile_installed(self, charger_id: str, connector_id: int, profile: ChargingProfile) -> None:
        """The charger installed a charging profile (0: one for the whole charger)."""
        ...

    def profile_cleared(
        self,
        charger_id: str,
        connector_id: int,
        profile_id: int | None,
        purpose: ChargingProfilePurpose | None,
        stack_level: int | None,
    ) -> None:
        """The charger cleared the profiles matching these criteria (None: any)."""
        ...

    def power_stopped(self, charger_id: str, connector_id: int) -> None:
        """A transaction was stopped remotely or by an unlock: the EV stays plugged in and draws no more power."""
        ...

    def power_resumed(self, charger_id: str, connector_id: int) -> None:
        """A remote start on a plugged-in EV without a transaction: it charges again."""
        ...

    def availability_changed(self, charger_id: str, connector_id: int, operative: bool, scheduled: list[int]) -> None:
        """ChangeAvailability was accepted: now, or once their transaction ends for the ``scheduled`` connectors."""
        ...

    def reset(self, charger_id: str) -> None:
        """The charger accepted a reset of the whole charger."""
        ...

    def booted(self, charger_id: str) -> None:
        """The charger's boot was accepted."""
        ...

    def tariff_set(self, charger_id: str, data: Any) -> bool:
        """A price update (DataTransfer `TARIFF_VENDOR` / `TARIFF_MESSAGE`); False if it is not a valid one."""
        ...

    def authorization_refused(self, charger_id: str, connector_id: int, session_id: SessionId | None = None) -> None:
        """The CSMS refused the token of the session on the connector (None: whichever is on it)."""
        ...

    def reservation_changed(self, charger_id: str, connector_id: int, reserved: bool) -> None:
        """The connector became Reserved, or stopped being so."""
        ...

    def start_waiting_driver(self, charger_id: str, connector_id: int, remote: RemoteStart) -> bool:
        """A remote start on a reserved, empty connector: True if a waiting driver will plug in there."""
        ...

    def sim_status(self, charger_id: str, connector_id: int) -> EvseStatus | None:
        """The simulated connector's status now (None before the run has one)."""
        ...

    def unavailable(self, charger_id: str, connector_id: int) -> bool:
        """The simulated connector is out of service for something other than a fault."""
        ...


def session_of_tag(id_tag: str | None) -> SessionId | None:
    """The simulated session of an id tag the bridge made (``SIM<session id>``, or its contract's eMAID), else None."""
    for prefix in ("SIM", ContractIssuer.emaid(0)[:6]):
        if id_tag is not None and id_tag.startswith(prefix) and id_tag[len(prefix) :].isdigit():
            return SessionId(int(id_tag[len(prefix) :]))
    return None
