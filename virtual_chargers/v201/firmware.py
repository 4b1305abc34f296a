"""OCPP 2.0.1 functional block L, FirmwareManagement: UpdateFirmware and FirmwareStatusNotification.

Firmware updates take simulated time; a location containing ``fail-download`` or ``fail-install``
makes that step fail. Installation waits for running transactions, then the station reboots into the
new version and reports Installed after its BootNotification.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.base import CsmsCallError, OfflineError
from virtual_chargers.clock import parse_ocpp_time
from virtual_chargers.v201.device_model import ComponentKey, VariableKey
from virtual_chargers.v201.smart_charging_messages import SmartChargingMixin

__all__ = ["FirmwareMixin"]


class FirmwareMixin(SmartChargingMixin):
    """Functional block L, FirmwareManagement of a `V201Charger`."""

    @on(Action.update_firmware)
    def on_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """UpdateFirmware: download at retrieveDateTime, install when idle, reboot into the new version.

        A new request cancels one in progress (AcceptedCanceled).
        """
        status = "Accepted"
        if self._firmware_task is not None and not self._firmware_task.done():
            self._firmware_task.cancel()
            status = "AcceptedCanceled"
        self._firmware_request_id = request_id
        self._firmware_task = self.spawn(
            self._update_firmware(request_id, firmware, retries or 0, retry_interval or 60)
        )
        return call_result.UpdateFirmware(status=status)

    async def _firmware_status(self, status: str, request_id: int) -> None:
        self.firmware_status = status
        with contextlib.suppress(CsmsCallError, TimeoutError, OfflineError, OCPPError):
            await self.request(call.FirmwareStatusNotification(status=status, request_id=request_id))

    async def _update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int, retry_s: int) -> None:
        await asyncio.sleep(0)  # the answer goes out first
        location = str(firmware["location"])
        with contextlib.suppress(ValueError):
            retrieve_t_s = self.ctx.clock.t_s_of(parse_ocpp_time(firmware["retrieve_date_time"]))
            if retrieve_t_s > self.clock.t_s():
                await self._firmware_status("DownloadScheduled", request_id)
                await self.ctx.clock.sleep_until(retrieve_t_s)
        for attempt in range(retries + 1):
            await self._firmware_status("Downloading", request_id)
            await self.clock.sleep(self.firmware_step_s)
            if "fail-download" not in location:
                break
            await self._firmware_status("DownloadFailed", request_id)
            if attempt == retries:
                self.firmware_status = "Idle"
                return
            await self.clock.sleep(retry_s)
        await self._firmware_status("Downloaded", request_id)
        if firmware.get("signature"):
            await self._firmware_status("SignatureVerified", request_id)
        if self._txs:
            await self._firmware_status("InstallScheduled", request_id)
            while self._txs:
                await self.clock.sleep(self.firmware_step_s)
        await self._firmware_status("Installing", request_id)
        await self.clock.sleep(self.firmware_step_s)
        if "fail-install" in location:
            await self._firmware_status("InstallationFailed", request_id)
            self.firmware_status = "Idle"
            return
        version = location.rstrip("/").rsplit("/", 1)[-1] or self.dm.value("ChargingStation", "FirmwareVersion")
        self.dm.write(ComponentKey("ChargingStation"), VariableKey("FirmwareVersion"), version[:50])
        await self._firmware_status("InstallRebooting", request_id)
        self._installed_request_id = request_id
        self._boot_reason = "FirmwareUpdate"
        self._reboot_cause = ("AbnormalCondition", "Reboot")
        self.request_reboot(hard=False)
