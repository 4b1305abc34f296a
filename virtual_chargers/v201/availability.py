"""OCPP 2.0.1 functional block G, Availability: StatusNotification, Heartbeat and ChangeAvailability.

An EVSE's status follows from its state (Faulted, Occupied, Unavailable, Reserved, Available); a change
is written to the device model (AvailabilityState, Available) and reported to the CSMS.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.base import Connector, CsmsCallError, OfflineError
from virtual_chargers.v201.device_model import ComponentKey, VariableKey
from virtual_chargers.v201.station import StationCore

__all__ = ["AvailabilityMixin"]


class AvailabilityMixin(StationCore):
    """Functional block G, Availability of a `V201Charger`."""

    async def send_heartbeat(self) -> None:
        """One Heartbeat."""
        await self.request(call.Heartbeat())

    async def send_status(self, c: Connector) -> None:
        """StatusNotification of the connector's status (skipped while offline)."""
        if not self.accepted:
            return
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(
                call.StatusNotification(
                    timestamp=self.clock.timestamp(), connector_status=c.status, evse_id=c.id, connector_id=1
                )
            )

    def _status_of(self, c: Connector) -> str:
        if c.fault is not None:
            return "Faulted"
        if c.ev is not None or c.tx_ref is not None:
            return "Occupied"
        if not c.operative:
            return "Unavailable"
        if c.reservation_id is not None:
            return "Reserved"
        return "Available"

    async def update_status(self, c: Connector) -> None:
        """Recompute the connector's status; tell the CSMS and the device model when it changed."""
        status = self._status_of(c)
        if status == c.status:
            return
        c.status = status
        available = "true" if status in ("Available", "Occupied", "Reserved") else "false"
        for component in (ComponentKey("EVSE", evse_id=c.id), ComponentKey("Connector", evse_id=c.id, connector_id=1)):
            self.dm.write(component, VariableKey("AvailabilityState"), status)
            self.dm.write(component, VariableKey("Available"), available)
        await self.send_status(c)

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """ChangeAvailability: Accepted, or Scheduled while a transaction runs on an EVSE it concerns."""
        if evse is not None and evse.get("id", 0) != 0:
            c = self.connectors.get(int(evse["id"]))
            if c is None or evse.get("connector_id", 1) != 1:
                return call_result.ChangeAvailability(status="Rejected")
            targets = [c]
        else:
            targets = list(self.connectors.values())
        operative = operational_status == "Operative"
        scheduled = False
        for c in targets:
            if c.tx_ref is not None and not operative:
                c.pending_operative = operative
                scheduled = True
            else:
                c.operative, c.pending_operative = operative, None
                self.spawn(self.update_status(c))
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")
