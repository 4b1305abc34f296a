"""OCPP 2.0.1 functional block B, Provisioning: BootNotification, Get/SetVariables, GetBaseReport and Reset.

Settings live in the device model (`virtual_chargers.v201.device_model`), which the CSMS reads and
writes here; the station reads its intervals, start and stop points and retry counts from it at the
moment it needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ocpp.exceptions import OccurrenceConstraintViolationError, OCPPError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.base import CsmsCallError, OfflineError
from virtual_chargers.v201.device_model import Attribute, ComponentKey, ReportBase, SetStatus, VariableKey
from virtual_chargers.v201.firmware import FirmwareMixin

__all__ = ["ProvisioningMixin"]


class ProvisioningMixin(FirmwareMixin):
    """Functional block B, Provisioning of a `V201Charger`."""

    async def boot(self) -> None:
        """BootNotification until Accepted (waiting the interval while Pending or Rejected); not on a reconnect."""
        if not self._needs_boot:
            return
        payload = call.BootNotification(
            charging_station={
                "model": self.spec.model,
                "vendor_name": self.spec.vendor,
                "serial_number": self.spec.serial or self.spec.id,
                "firmware_version": self.dm.value("ChargingStation", "FirmwareVersion"),
            },
            reason=self._boot_reason,
        )
        while True:
            try:
                res = await self.request(payload)
            except (CsmsCallError, TimeoutError, OCPPError):
                await self.clock.sleep(self.backoff.next_s())
                continue
            self.registration = str(res.status)
            self.note_csms_time(res.current_time)
            interval_s = float(res.interval)
            if res.status == "Accepted":
                if interval_s > 0:
                    self.heartbeat_interval_s = interval_s
                    self.dm.write(ComponentKey("OCPPCommCtrlr"), VariableKey("HeartbeatInterval"), str(int(interval_s)))
                self._needs_boot = False
                self._boot_reason = "PowerUp"
                return
            self._boot_now.clear()
            waits = {
                asyncio.ensure_future(self.clock.sleep(interval_s if interval_s > 0 else self.heartbeat_interval_s)),
                asyncio.ensure_future(self._boot_now.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await self._cancel(waits)
            if self._boot_now.is_set():
                payload.reason = "Triggered"

    async def after_boot(self) -> None:
        """StatusNotification of every connector; Installed after a firmware reboot."""
        for c in self.connectors.values():
            await self.send_status(c)
        if self._installed_request_id is not None:
            request_id, self._installed_request_id = self._installed_request_id, None
            await self._firmware_status("Installed", request_id)

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        """GetVariables over the device model (more items than ItemsPerMessage is a CallError)."""
        limit = self._items_per_message("GetVariables")
        if len(get_variable_data) > limit:
            raise OccurrenceConstraintViolationError(
                description=f"{len(get_variable_data)} getVariableData items, ItemsPerMessage is {limit}"
            )
        self._refresh_live_values()
        results = []
        for item in get_variable_data:
            attribute = Attribute(item.get("attribute_type", "Actual"))
            res = self.dm.get(
                ComponentKey.from_ocpp(item["component"]), VariableKey.from_ocpp(item["variable"]), attribute
            )
            result: dict[str, Any] = {
                "attribute_status": res.status.value,
                "attribute_type": attribute.value,
                "component": item["component"],
                "variable": item["variable"],
            }
            if res.value is not None:
                result["attribute_value"] = res.value
            if res.reason is not None:
                result["attribute_status_info"] = {"reason_code": res.reason}
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        """SetVariables over the device model; accepted values take effect at once (or at reboot)."""
        limit = self._items_per_message("SetVariables")
        if len(set_variable_data) > limit:
            raise OccurrenceConstraintViolationError(
                description=f"{len(set_variable_data)} setVariableData items, ItemsPerMessage is {limit}"
            )
        results = []
        for item in set_variable_data:
            attribute = Attribute(item.get("attribute_type", "Actual"))
            component = ComponentKey.from_ocpp(item["component"])
            variable = VariableKey.from_ocpp(item["variable"])
            value = str(item["attribute_value"])
            res = self.dm.set(component, variable, value, attribute)
            if res.status is SetStatus.ACCEPTED:
                self._variable_changed(component, variable, value)
            result: dict[str, Any] = {
                "attribute_status": res.status.value,
                "attribute_type": attribute.value,
                "component": item["component"],
                "variable": item["variable"],
            }
            if res.reason is not None:
                result["attribute_status_info"] = {"reason_code": res.reason}
            results.append(result)
        return call_result.SetVariables(set_variable_result=results)

    def _variable_changed(self, component: ComponentKey, variable: VariableKey, value: str) -> None:
        name = (component.name.casefold(), variable.name.casefold())
        if name == ("ocppcommctrlr", "heartbeatinterval"):
            self.heartbeat_interval_s = float(value)
        elif name == ("securityctrlr", "basicauthpassword"):
            self.ctx.log.add_secret(value)
            self.password = value
            # A.2: reconnect with the new password once the answer is out (see `after_set_variables`).
            self._reconnect_after_answer = self.ctx.security.profile in (1, 2)

    @after(Action.set_variables)
    def after_set_variables(self, **kwargs: Any) -> None:
        """Reconnect when the basic-auth password changed."""
        if self._reconnect_after_answer:
            self._reconnect_after_answer = False
            self.spawn(self._close_ws())

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **kwargs: Any) -> Any:
        """GetBaseReport: Accepted, the report follows as NotifyReport pages of ItemsPerMessage."""
        self._refresh_live_values()
        rows = self.dm.report(ReportBase(report_base))
        self._pending_report = (request_id, rows)
        return call_result.GetBaseReport(status="Accepted" if rows else "EmptyResultSet")

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **kwargs: Any) -> None:
        """Send the pages."""
        pending = self._pending_report
        if pending is not None and pending[0] == request_id and pending[1]:
            self._pending_report = None
            self.spawn(self._send_report(request_id, pending[1]))

    async def _send_report(self, request_id: int, rows: list[dict[str, object]]) -> None:
        per_page = max(1, self._items_per_message("GetReport"))
        pages = [rows[i : i + per_page] for i in range(0, len(rows), per_page)]
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            for seq_no, page in enumerate(pages):
                await self.request(
                    call.NotifyReport(
                        request_id=request_id,
                        generated_at=self.clock.timestamp(),
                        seq_no=seq_no,
                        report_data=page,
                        tbc=seq_no < len(pages) - 1,
                    )
                )

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> Any:  # noqa: A002 - OCPP's name
        """Reset Immediate (transactions end, then reboot) or OnIdle (Scheduled while transactions run)."""
        if evse_id is not None:
            c = self.connectors.get(evse_id)
            if c is None:
                return call_result.Reset(status="Rejected")
            if c.tx_ref is not None and type == "OnIdle":
                return call_result.Reset(status="Scheduled")
            if c.tx_ref is not None:
                self.spawn(self.end_transaction(c, "ResetCommand", "ImmediateReset"))
            return call_result.Reset(status="Accepted")
        if type == "OnIdle" and self._txs:
            self._reset_when_idle = True
            return call_result.Reset(status="Scheduled")
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **kwargs: Any) -> None:  # noqa: A002
        """Reboot once the answer is out (a station-wide reset that was not scheduled)."""
        if evse_id is None and not self._reset_when_idle:
            self.spawn(self._reset_now())

    async def _reset_now(self) -> None:
        """End every transaction while still online (ResetCommand, ImmediateReset), then reboot."""
        await asyncio.sleep(0)
        for c in self.connectors.values():
            await self.end_transaction(c, "ResetCommand", "ImmediateReset")
        # Give the Ended events a chance to go out before the connection closes (they stay queued if not).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue_drained(), self.ctx.response_timeout_s)
        self._boot_reason = "RemoteReset"
        self._reboot_cause = ("ResetCommand", "ImmediateReset")
        self.request_reboot(hard=False)
