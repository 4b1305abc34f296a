"""The core of an OCPP 2.0.1 charging station: its state, its device-model settings and small helpers.

`StationCore` holds what every functional block of `virtual_chargers.v201` reads and writes: the device
model, the EVSEs (`VirtualCharger.connectors`), the running transactions and the boot, firmware and reset
state. Each block adds its messages as a mixin on top (availability, authorization, transactions, smart
charging, firmware, provisioning, remote control), and `virtual_chargers.v201.charger.V201Charger` is
the station with all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ocpp.v201 import ChargePoint as LibChargePoint

from virtual_chargers.base import ChargerContext, ChargerSpec, Connector, VirtualCharger
from virtual_chargers.meter import EVSession, kw_to_w
from virtual_chargers.v16.charger import DEFAULT_EV
from virtual_chargers.v201.certificates import CertificatesMixin
from virtual_chargers.v201.device_model import ComponentKey, DeviceModel, VariableKey, standard_device_model
from virtual_chargers.v201.local_list import LocalListMixin
from virtual_chargers.v201.reservation import ReservationMixin
from virtual_chargers.v201.smart_charging import StationProfiles

__all__ = ["KEYS_16", "StationCore", "TxState"]


KEYS_16 = {
    "HeartbeatInterval": "OCPPCommCtrlr.HeartbeatInterval",
    "MeterValueSampleInterval": "SampledDataCtrlr.TxUpdatedInterval",
    "MeterValuesSampledData": "SampledDataCtrlr.TxUpdatedMeasurands",
    "StopTxnSampledData": "SampledDataCtrlr.TxEndedMeasurands",
    "ClockAlignedDataInterval": "AlignedDataCtrlr.Interval",
    "MeterValuesAlignedData": "AlignedDataCtrlr.Measurands",
    "TransactionMessageAttempts": "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
    "TransactionMessageRetryInterval": "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]",
    "ConnectionTimeOut": "TxCtrlr.EVConnectionTimeOut",
    "StopTransactionOnInvalidId": "TxCtrlr.StopTxOnInvalidId",
    "AuthorizeRemoteTxRequests": "AuthCtrlr.AuthorizeRemoteStart",
    "LocalAuthorizeOffline": "AuthCtrlr.LocalAuthorizeOffline",
    "LocalPreAuthorize": "AuthCtrlr.LocalPreAuthorize",
    "AllowOfflineTxForUnknownId": "AuthCtrlr.OfflineTxForUnknownIdEnabled",
    "ChargeProfileMaxStackLevel": "SmartChargingCtrlr.ProfileStackLevel",
    "ChargingScheduleMaxPeriods": "SmartChargingCtrlr.PeriodsPerSchedule",
}
"""1.6 key → ``Component.Variable[Instance]`` of the 2.0.1 device model."""


@dataclass
class TxState:
    """What the station remembers of a running transaction beyond the connector's state."""

    id: str
    seq_no: int = 0
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None
    charging_state: str | None = None
    charging_since_t_s: float | None = None
    charging_s: float = 0.0


class StationCore(VirtualCharger, LibChargePoint, ReservationMixin, LocalListMixin, CertificatesMixin):  # type: ignore[misc]
    """The state and settings of an emulated OCPP 2.0.1 charging station (see `V201Charger` for the arguments)."""

    subprotocol: ClassVar[str] = "ocpp2.0.1"
    ocpp_version: ClassVar[str] = "2.0.1"

    def __init__(
        self,
        spec: ChargerSpec,
        ctx: ChargerContext,
        variables: Mapping[str, str] | None = None,
        default_ev: EVSession = DEFAULT_EV,
        firmware_step_s: float = 60.0,
        config: Mapping[str, str] | None = None,
    ) -> None:
        """A stopped station; `run` brings it up."""
        self.dm: DeviceModel = standard_device_model(
            vendor_name=spec.vendor,
            model=spec.model,
            serial_number=spec.serial or spec.id,
            firmware_version=spec.firmware,
            evse_max_power_w=[kw_to_w(c.max_power_kw) for c in spec.connectors],
            connector_types=[c.connector_type or ("cCCS2" if c.dc else "cType2") for c in spec.connectors],
            security_profile=ctx.security.profile,
            basic_auth_password=ctx.password or "",
            identity=spec.id,
        )
        for key, value in (config or {}).items():
            name = KEYS_16.get(key, key)
            if "." not in name:
                raise ValueError(
                    f"config: {key} is a 1.6 key without a 2.0.1 variable here; give Component.Variable "
                    f"(e.g. SampledDataCtrlr.TxUpdatedInterval) or one of {', '.join(sorted(KEYS_16))}"
                )
            self._configure(name, value)
        for name, value in (variables or {}).items():
            self._configure(name, value)
        self.default_ev = default_ev
        self.firmware_step_s = firmware_step_s
        self.registration = "Unknown"  # last BootNotification status
        self.firmware_status = "Idle"
        self._firmware_request_id: int | None = None
        self._firmware_task: asyncio.Task[Any] | None = None
        self._installed_request_id: int | None = None  # "Installed" is reported after the reboot
        self._needs_boot = True  # a BootNotification is due after (re)boot, not after a reconnect
        self._boot_reason = "PowerUp"
        self._reboot_cause = ("AbnormalCondition", "PowerLoss")  # trigger and stoppedReason of a hard reboot
        self._reset_when_idle = False
        self._pending_report: tuple[int, list[dict[str, object]]] | None = None
        self._boot_now = asyncio.Event()  # a triggered BootNotification while Pending or Rejected
        self._reconnect_after_answer = False
        self._txs: dict[int, TxState] = {}
        self._init_reservations()
        self._init_local_list()
        self._init_certificates()
        super().__init__(spec, ctx)
        self.profiles = StationProfiles({c.id: c.profile_set for c in self.connectors.values()})
        self.heartbeat_interval_s = float(self.dm.int_value("OCPPCommCtrlr", "HeartbeatInterval"))

    def _configure(self, name: str, value: str) -> None:
        component, _, variable = name.partition(".")
        instance = None
        if variable.endswith("]") and "[" in variable:
            variable, _, rest = variable.partition("[")
            instance = rest[:-1]
        key = (ComponentKey(component), VariableKey(variable, instance))
        found = self.dm.find(*key)
        if found is None:
            raise ValueError(f"variables: no {name} in the device model (e.g. SampledDataCtrlr.TxUpdatedInterval)")
        reason = found.check(value)
        if reason is not None:
            raise ValueError(f"variables: {name}={value!r} is not valid ({reason})")
        self.dm.write(*key, value)

    def meter_interval_s(self) -> float:
        """SampledDataCtrlr.TxUpdatedInterval."""
        return float(self.dm.int_value("SampledDataCtrlr", "TxUpdatedInterval"))

    def transaction_attempts(self) -> int:
        """OCPPCommCtrlr.MessageAttempts[TransactionEvent]."""
        return max(1, self.dm.int_value("OCPPCommCtrlr", "MessageAttempts", instance="TransactionEvent"))

    def transaction_retry_interval_s(self) -> float:
        """OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]."""
        return float(self.dm.int_value("OCPPCommCtrlr", "MessageAttemptInterval", instance="TransactionEvent"))

    def _items_per_message(self, kind: str) -> int:
        return self.dm.int_value("DeviceDataCtrlr", "ItemsPerMessage", instance=kind)

    @staticmethod
    def _token(id_tag: str, kind: str = "ISO14443") -> dict[str, Any]:
        return {"idToken": id_tag, "type": kind}

    def _connector(self, evse_id: int) -> Connector:
        c = self.connectors.get(evse_id)
        if c is None:
            raise ValueError(f"{self.spec.id} has EVSEs 1..{len(self.connectors)}, not {evse_id}")
        return c

    def _by_tx_id(self, transaction_id: str) -> Connector | None:
        for c in self.connectors.values():
            if c.tx_ref is not None and c.tx_ref == transaction_id:
                return c
        return None

    def _count_profiles(self) -> None:
        self.dm.write(
            ComponentKey("SmartChargingCtrlr"), VariableKey("EntriesChargingProfiles"), str(self.profiles.count)
        )

    def _refresh_live_values(self) -> None:
        """Update measured values (power, clock) before the CSMS reads the device model."""
        t_s = self.clock.t_s()
        total_w = 0.0
        for c in self.connectors.values():
            power_w = c.meter.read(t_s).power_w
            total_w += power_w
            self.dm.write(ComponentKey("EVSE", evse_id=c.id), VariableKey("Power"), f"{power_w:g}")
        self.dm.write(ComponentKey("ChargingStation"), VariableKey("Power"), f"{total_w:g}")
        self.dm.write(
            ComponentKey("ClockCtrlr"), VariableKey("DateTime"), self.clock.timestamp().replace("Z", "+00:00")
        )

    async def _queue_drained(self) -> None:
        while len(self.queue) and self.accepted:
            await asyncio.sleep(0.01)
