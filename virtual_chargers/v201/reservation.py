"""OCPP 2.0.1 functional block H, Reservation: ReserveNow, CancelReservation and ReservationStatusUpdate.

A reservation holds one EVSE for one idToken until its expiry: the EVSE shows Reserved, another token
presented there is refused, the reserved token's transaction carries the ``reservationId``, and at the
expiry the station sends ReservationStatusUpdate ``Expired``. A reservation without ``evseId`` (allowed
by ReservationCtrlr.NonEvseSpecific) takes the first Available EVSE with the asked connector type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.base import CsmsCallError, OfflineError
from virtual_chargers.clock import parse_ocpp_time

if TYPE_CHECKING:
    from virtual_chargers.base import ChargerContext, Connector
    from virtual_chargers.clock import ChargerClock
    from virtual_chargers.v201.device_model import DeviceModel

__all__ = ["Reservation", "ReservationMixin"]


def _token_id(token: dict[str, Any]) -> Any:
    """The idToken string of a token as received (snake_case keys) or as sent (camelCase)."""
    return token.get("idToken", token.get("id_token"))


@dataclass
class Reservation:
    """A held EVSE: for whom and until when (simulated seconds)."""

    id: int
    evse_id: int
    id_token: dict[str, Any]
    expiry_t_s: float


class ReservationMixin:
    """ReserveNow / CancelReservation handlers and the reservation rules of a `V201Charger`."""

    if TYPE_CHECKING:
        connectors: dict[int, Connector]
        dm: DeviceModel
        ctx: ChargerContext
        clock: ChargerClock
        spawn: Callable[..., Any]
        request: Callable[[Any], Awaitable[Any]]

        async def update_status(self, c: Connector) -> None:  # noqa: D102 (the charger's)
            ...

    _reservations: dict[int, Reservation]
    _used_reservation: dict[int, int]  # EVSE → reservation its token just used, for the next TransactionEvent

    def _init_reservations(self) -> None:
        self._reservations = {}
        self._used_reservation = {}

    def _connector_type(self, c: Connector) -> str:
        return "cCCS2" if c.spec.dc else "cType2"

    @on(Action.reserve_now)
    async def on_reserve_now(
        self,
        id: int,  # noqa: A002 (the field's name in OCPP)
        expiry_date_time: str,
        id_token: dict[str, Any],
        connector_type: str | None = None,
        evse_id: int | None = None,
        group_id_token: dict[str, Any] | None = None,
    ) -> call_result.ReserveNow:
        """H01: hold an EVSE for ``id_token`` until ``expiry_date_time``; a known ``id`` is replaced."""
        if not self.dm.bool_value("ReservationCtrlr", "Enabled"):
            return call_result.ReserveNow(status="Rejected")
        expiry_t_s = self.ctx.clock.t_s_of(parse_ocpp_time(expiry_date_time))
        old = self._reservations.get(id)
        if evse_id is not None:
            c = self.connectors.get(evse_id)
            if c is None or (connector_type is not None and connector_type != self._connector_type(c)):
                return call_result.ReserveNow(status="Rejected")
            if c.fault is not None:
                return call_result.ReserveNow(status="Faulted")
            if not c.operative:
                return call_result.ReserveNow(status="Unavailable")
            if c.ev is not None or c.tx_ref is not None or c.reservation_id not in (None, id):
                return call_result.ReserveNow(status="Occupied")
        else:
            if not self.dm.bool_value("ReservationCtrlr", "NonEvseSpecific"):
                return call_result.ReserveNow(status="Rejected")
            free = [
                c
                for c in self.connectors.values()
                if c.status == "Available" and connector_type in (None, self._connector_type(c))
            ]
            if old is not None:
                free.insert(0, self.connectors[old.evse_id])
            if not free:
                return call_result.ReserveNow(status="Occupied")
            c = free[0]
        if old is not None and old.evse_id != c.id:
            self.connectors[old.evse_id].reservation_id = None
            await self.update_status(self.connectors[old.evse_id])
        self._reservations[id] = Reservation(id, c.id, id_token, expiry_t_s)
        c.reservation_id = id
        self.spawn(self._expire(id, expiry_t_s))
        self.spawn(self.update_status(c))
        return call_result.ReserveNow(status="Accepted")

    async def _expire(self, reservation_id: int, expiry_t_s: float) -> None:
        await self.ctx.clock.sleep_until(expiry_t_s)
        r = self._reservations.get(reservation_id)
        if r is None or r.expiry_t_s != expiry_t_s:
            return  # used, cancelled or replaced meanwhile
        await self._remove(r, "Expired")

    async def _remove(self, r: Reservation, status: str | None) -> None:
        """Drop ``r``, free its EVSE and, for ``status`` Expired or Removed, tell the CSMS."""
        self._reservations.pop(r.id, None)
        c = self.connectors[r.evse_id]
        if c.reservation_id == r.id:
            c.reservation_id = None
        await self.update_status(c)
        if status is not None:
            with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
                await self.request(call.ReservationStatusUpdate(reservation_id=r.id, reservation_update_status=status))

    @on(Action.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        """H02: cancel a known reservation (Accepted) or answer Rejected."""
        r = self._reservations.get(reservation_id)
        if r is None:
            return call_result.CancelReservation(status="Rejected")
        self._reservations.pop(reservation_id)
        c = self.connectors[r.evse_id]
        c.reservation_id = None
        self.spawn(self.update_status(c))
        return call_result.CancelReservation(status="Accepted")

    def reservation_admits(self, c: Connector, id_token: dict[str, Any]) -> bool:
        """H01.FR: on a Reserved EVSE only the reservation's token may charge; using it ends the reservation."""
        if c.reservation_id is None:
            return True
        r = self._reservations.get(c.reservation_id)
        if r is None:
            c.reservation_id = None
            return True
        if _token_id(r.id_token) != _token_id(id_token):
            return False
        self._reservations.pop(r.id)
        c.reservation_id = None
        self._used_reservation[c.id] = r.id
        return True

    def take_used_reservation(self, evse_id: int) -> int | None:
        """The reservation the token on ``evse_id`` used, once (for its TransactionEvent's reservationId)."""
        return self._used_reservation.pop(evse_id, None)
