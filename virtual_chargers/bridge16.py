"""The 1.6 charger of a bridged run (see `virtual_chargers.bridge` for what maps to what).

It reports what the CSMS makes it do to a `virtual_chargers.twin.TwinListener`, and shows the simulated
connector's status; it knows nothing of the bridge.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose
from virtual_chargers.base import ChargerSpec, Connector
from virtual_chargers.meter import EVSession
from virtual_chargers.twin import (
    SIM_CHARGING_STATUS,
    TARIFF_MESSAGE,
    TARIFF_VENDOR,
    RemoteStart,
    TwinListener,
    session_of_tag,
)
from virtual_chargers.v16 import V16Charger

__all__ = ["TwinCharger16"]


class TwinCharger16(V16Charger):
    """A 1.6 charger of a bridged run: what the CSMS makes it do is also done to the simulated charger."""

    def __init__(self, spec: ChargerSpec, ctx: Any, *, listener: TwinListener, **kwargs: Any) -> None:
        """A stopped charger that reports to ``listener``."""
        self.listener = listener
        self.auth_refused = False  # the last Authorize was refused
        super().__init__(spec, ctx, **kwargs)

    async def after_boot(self) -> None:
        """Statuses as usual; ports a reset took out of service serve again."""
        self.listener.booted(self.spec.id)
        await super().after_boot()

    async def authorize(self, id_tag: str) -> bool:
        """Authorize as a charger does; a refusal is noted for the bridge, which turns the driver away."""
        ok = bool(await V16Charger.authorize(self, id_tag))
        self.auth_refused = not ok
        return ok

    async def stop_transaction(self, c: Connector, reason: str, id_tag: str | None = None) -> None:
        """Stop as a charger does; DeAuthorized (the CSMS refused the StartTransaction) ends the simulated session."""
        if reason == "DeAuthorized" and c.tx_ref is not None:
            self.listener.authorization_refused(self.spec.id, c.id, session_of_tag(c.id_tag))
        await V16Charger.stop_transaction(self, c, reason, id_tag)

    def _charging_status(self, c: Connector) -> str:
        status = self.listener.sim_status(self.spec.id, c.id)
        if c.fault is None and status in SIM_CHARGING_STATUS:
            return SIM_CHARGING_STATUS[status]
        return super()._charging_status(c)

    async def refresh_status(self, c: Connector) -> None:
        """Report the transaction's status as the simulation has it now."""
        await self.set_status(c, self._charging_status(c))

    def _idle_status(self, c: Connector) -> str:
        if c.fault is None and c.reservation_id is None and self.listener.unavailable(self.spec.id, c.id):
            return "Unavailable"
        return super()._idle_status(c)

    async def set_status(self, c: Connector, status: str, error_code: str = "NoError") -> None:
        """Change the status as a charger does; a reservation's start and end reach the simulated port."""
        was = c.status
        await super().set_status(c, status, error_code)
        if (was == "Reserved") != (c.status == "Reserved"):
            self.listener.reservation_changed(self.spec.id, c.id, c.status == "Reserved")

    async def start_remote(self, c: Connector, ev: EVSession, remote: RemoteStart) -> None:
        """The waiting driver a remote start was for plugs in; the transaction starts under the CSMS's idTag."""
        t_s = self.clock.t_s()
        c.sync(t_s)
        c.ev = ev
        c.meter.plug(ev, t_s)
        await self.set_status(c, "Preparing")
        await self._remote_start(c, remote.id_tag, remote.profile)

    async def refresh_idle(self, c: Connector) -> None:
        """Report a connector without a transaction as the simulation has it now (Unavailable or not)."""
        if c.tx_ref is None:
            await self.set_status(c, self._idle_status(c))

    def profile_installed(self, target: int, profile: ChargingProfile) -> None:
        """The profile the charger installed goes to the simulated connector (0: every connector of the charger)."""
        self.listener.profile_installed(self.spec.id, target, profile)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,  # noqa: A002
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        """ClearChargingProfile: here and on the simulated connector(s)."""
        res = V16Charger.on_clear_charging_profile(self, id, connector_id, charging_profile_purpose, stack_level)
        if res.status == "Accepted":
            purpose = ChargingProfilePurpose(charging_profile_purpose) if charging_profile_purpose else None
            self.listener.profile_cleared(self.spec.id, connector_id or 0, id, purpose, stack_level)
        return res

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> Any:
        """RemoteStopTransaction: the simulated session stops drawing power."""
        c = self._by_tx_id(transaction_id)
        res = V16Charger.on_remote_stop(self, transaction_id)
        if res.status == "Accepted" and c is not None:
            self.listener.power_stopped(self.spec.id, c.id)
        return res

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> Any:
        """UnlockConnector: a running transaction ends, so the simulated session stops drawing power."""
        c = self.connectors.get(connector_id)
        running = c is not None and c.tx_ref is not None
        res = V16Charger.on_unlock_connector(self, connector_id)
        if running and c is not None:
            self.listener.power_stopped(self.spec.id, c.id)
        return res

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
    ) -> Any:
        """RemoteStartTransaction: a plugged-in EV without a transaction charges again.

        On a connector reserved for ``id_tag`` the first driver waiting at the site plugs in there.
        """
        reserved = self.connectors.get(connector_id or 0)
        if reserved is not None and reserved.ev is None and reserved.reservation_id is not None:
            ok = reserved.id_tag == id_tag and self.listener.start_waiting_driver(
                self.spec.id, reserved.id, RemoteStart(id_tag, profile=charging_profile)
            )
            return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")
        candidates = [connector_id] if connector_id else list(self.connectors)
        plugged = [
            i for i in candidates if i in self.connectors and self.connectors[i].ev is not None
            and self.connectors[i].tx_ref is None
        ]  # fmt: skip
        if not plugged:
            return call_result.RemoteStartTransaction(status="Rejected")
        res = V16Charger.on_remote_start(self, id_tag, plugged[0], charging_profile)
        if res.status == "Accepted":
            self.listener.power_resumed(self.spec.id, plugged[0])
        return res

    @on(Action.reset)
    def on_reset(self, type: str) -> Any:  # noqa: A002 - the OCPP field name
        """Reset: Accepted; the simulated charger is reset too."""
        res = V16Charger.on_reset(self, type)
        self.listener.reset(self.spec.id)
        return res

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id: int, type: str) -> Any:  # noqa: A002
        """ChangeAvailability: the simulated connectors follow, at once or when their session ends."""
        res = await V16Charger.on_change_availability(self, connector_id, type)
        if res.status in ("Accepted", "Scheduled"):
            scheduled = [c.id for c in self.connectors.values() if c.pending_operative is False]
            self.listener.availability_changed(self.spec.id, connector_id, type == "Operative", scheduled)
        return res

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        """DataTransfer chargetwin/SetTariff: the price the site's next driver sees."""
        if vendor_id == TARIFF_VENDOR and message_id == TARIFF_MESSAGE:
            ok = self.listener.tariff_set(self.spec.id, data)
            return call_result.DataTransfer(status="Accepted" if ok else "Rejected")
        return V16Charger.on_data_transfer(self, vendor_id, message_id, data)
