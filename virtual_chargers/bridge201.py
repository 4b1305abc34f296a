"""The 2.0.1 station of a bridged run (see `virtual_chargers.bridge` for what maps to what).

It reports what the CSMS makes it do to a `virtual_chargers.twin.TwinListener`, and shows the simulated
EVSE's state; it knows nothing of the bridge.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose
from virtual_chargers.base import ChargerSpec, Connector
from virtual_chargers.meter import EVSession
from virtual_chargers.twin import SIM_CHARGING_STATUS, TARIFF_MESSAGE, TARIFF_VENDOR, RemoteStart, TwinListener
from virtual_chargers.v201 import V201Charger  # type: ignore[attr-defined]
from virtual_chargers.v201.smart_charging import PURPOSES

__all__ = ["TwinCharger201"]


class TwinCharger201(V201Charger):  # type: ignore[misc]
    """A 2.0.1 station of a bridged run: what the CSMS makes it do is also done to the simulated charger."""

    def __init__(self, spec: ChargerSpec, ctx: Any, *, listener: TwinListener, **kwargs: Any) -> None:
        """A stopped station that reports to ``listener``."""
        self.listener = listener
        self.auth_refused = False  # the last Authorize was refused
        super().__init__(spec, ctx, **kwargs)

    async def authorize(
        self, id_token: dict[str, Any], certificate_hash_data: list[dict[str, str]] | None = None
    ) -> bool:
        """Authorize as a station does; a refusal is noted for the bridge, which turns the driver away."""
        ok = bool(await V201Charger.authorize(self, id_token, certificate_hash_data))
        self.auth_refused = not ok
        return ok

    async def end_transaction(
        self, c: Connector, trigger: str, stopped_reason: str, id_token: dict[str, Any] | None = None
    ) -> None:
        """End as a station does; DeAuthorized (the CSMS refused the token) ends the simulated session."""
        if stopped_reason == "DeAuthorized" and c.tx_ref is not None:
            self.listener.authorization_refused(self.spec.id, c.id)
        await V201Charger.end_transaction(self, c, trigger, stopped_reason, id_token)

    async def after_boot(self) -> None:
        """Statuses as usual; ports a reset took out of service serve again."""
        self.listener.booted(self.spec.id)
        await super().after_boot()

    def _charging_state(self, c: Connector) -> str:
        state = super()._charging_state(c)
        if state in ("Charging", "SuspendedEV", "SuspendedEVSE"):
            sim = self.listener.sim_status(self.spec.id, c.id)
            return SIM_CHARGING_STATUS.get(sim, state) if sim is not None else state
        return state

    async def refresh_status(self, c: Connector) -> None:
        """Report the transaction's charging state as the simulation has it now."""
        self._report_charging_state(c)

    def _status_of(self, c: Connector) -> str:
        status = super()._status_of(c)
        if status == "Available" and self.listener.unavailable(self.spec.id, c.id):
            return "Unavailable"
        return status

    async def refresh_idle(self, c: Connector) -> None:
        """Report the EVSE's status as the simulation has it now (Unavailable or not)."""
        await self.update_status(c)

    async def update_status(self, c: Connector) -> None:
        """Update the status as a station does; a reservation's start and end reach the simulated port."""
        was = c.status
        await super().update_status(c)
        if (was == "Reserved") != (c.status == "Reserved"):
            self.listener.reservation_changed(self.spec.id, c.id, c.status == "Reserved")

    async def start_remote(self, c: Connector, ev: EVSession, remote: RemoteStart) -> None:
        """The waiting driver a remote start was for plugs in; the transaction starts under the CSMS's token."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.ev = ev
        c.meter.plug(ev, t_s)
        token = {"idToken": remote.id_tag, "type": remote.id_token_type}
        self.reservation_admits(c, token)  # the reservation is used (H01)
        await self.update_status(c)
        await self._remote_start(c, token, remote.remote_start_id, remote.profile)

    def profile_installed(self, target: int, profile: ChargingProfile) -> None:
        """The profile the station installed goes to the simulated connector (0: every EVSE of the station)."""
        self.listener.profile_installed(self.spec.id, target, profile)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """ClearChargingProfile: here and on the simulated connector(s)."""
        res = V201Charger.on_clear_charging_profile(self, charging_profile_id, charging_profile_criteria, **kwargs)
        if res.status == "Accepted":
            criteria = charging_profile_criteria or {}
            name = criteria.get("charging_profile_purpose")
            purpose: ChargingProfilePurpose | None = PURPOSES[name] if name else None
            evse_id = int(criteria.get("evse_id") or 0)
            stack_level = criteria.get("stack_level")
            self.listener.profile_cleared(self.spec.id, evse_id, charging_profile_id, purpose, stack_level)
        return res

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id: str, **kwargs: Any) -> Any:
        """RequestStopTransaction: the simulated session stops drawing power."""
        c = self._by_tx_id(transaction_id)
        res = V201Charger.on_request_stop_transaction(self, transaction_id, **kwargs)
        if res.status == "Accepted" and c is not None:
            self.listener.power_stopped(self.spec.id, c.id)
        return res

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """RequestStartTransaction: a plugged-in EV without an authorized transaction charges again.

        On an EVSE reserved for ``id_token`` the first driver waiting at the site plugs in there.
        """
        reserved = self.connectors.get(evse_id or 0)
        if reserved is not None and reserved.ev is None and reserved.reservation_id is not None:
            r = self._reservations.get(reserved.reservation_id)
            remote = RemoteStart(id_token["id_token"], id_token["type"], remote_start_id, charging_profile)
            ok = (
                r is not None
                and remote.id_tag in (r.id_token.get("idToken"), r.id_token.get("id_token"))
                and self.listener.start_waiting_driver(self.spec.id, reserved.id, remote)
            )
            return call_result.RequestStartTransaction(status="Accepted" if ok else "Rejected")
        candidates = [evse_id] if evse_id else list(self.connectors)
        plugged = [i for i in candidates if i in self.connectors and self.connectors[i].ev is not None]
        if not plugged:
            return call_result.RequestStartTransaction(status="Rejected")
        res = V201Charger.on_request_start_transaction(
            self, id_token, remote_start_id, plugged[0], charging_profile, **kwargs
        )
        if res.status == "Accepted":
            self.listener.power_resumed(self.spec.id, plugged[0])
        return res

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> Any:  # noqa: A002
        """Reset of the station: the simulated charger is reset too (an EVSE reset only ends its transaction)."""
        res = V201Charger.on_reset(self, type, evse_id, **kwargs)
        if res.status == "Accepted" and evse_id is None:
            self.listener.reset(self.spec.id)
        return res

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """ChangeAvailability: the simulated connectors follow, at once or when their session ends."""
        res = V201Charger.on_change_availability(self, operational_status, evse, **kwargs)
        if res.status in ("Accepted", "Scheduled"):
            scheduled = [c.id for c in self.connectors.values() if c.pending_operative is False]
            evse_id = int(evse.get("id", 0)) if evse else 0
            self.listener.availability_changed(self.spec.id, evse_id, operational_status == "Operative", scheduled)
        return res

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        """DataTransfer chargetwin/SetTariff: the price the site's next driver sees."""
        if vendor_id == TARIFF_VENDOR and message_id == TARIFF_MESSAGE:
            ok = self.listener.tariff_set(self.spec.id, data)
            return call_result.DataTransfer(status="Accepted" if ok else "Rejected")
        return V201Charger.on_data_transfer(self, vendor_id, message_id, data, **kwargs)
