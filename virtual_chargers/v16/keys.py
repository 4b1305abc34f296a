"""The OCPP 1.6 configuration key store (§9): standard keys, types, read-only and reboot-required.

`change` answers as ChangeConfiguration must: Accepted, Rejected (read-only key or a value of the
wrong type), RebootRequired (the new value is kept and takes effect at the next boot) or
NotSupported (unknown key). ``AuthorizationKey`` is write-only: it is never listed by `get`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocpp.v16.enums import Measurand

__all__ = ["KeyStore", "KeySpec"]

_MEASURANDS = frozenset(m.value for m in Measurand)
_PROFILES = frozenset(
    {"Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation", "SmartCharging", "RemoteTrigger"}
)


def _int(v: str) -> bool:
    try:
        return int(v) >= 0
    except ValueError:
        return False


def _bool(v: str) -> bool:
    return v.lower() in ("true", "false")


def _measurands(v: str) -> bool:
    items = [x.strip() for x in v.split(",") if x.strip()]
    return all(x in _MEASURANDS for x in items)


def _any(v: str) -> bool:
    return True


def _key(v: str) -> bool:
    return 16 <= len(v) <= 40  # OCPP security whitepaper: AuthorizationKey is 16-40 characters


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key's default, its check, and whether it is read-only, write-only or needs a reboot."""

    default: str
    check: Callable[[str], bool] = _any
    readonly: bool = False
    reboot: bool = False
    writeonly: bool = False
    max_items: int | None = None


def _standard(connectors: int) -> dict[str, KeySpec]:
    sampled = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
    return {
        # 9.1 Core
        "AllowOfflineTxForUnknownId": KeySpec("true", _bool),
        "AuthorizationCacheEnabled": KeySpec("true", _bool),
        "AuthorizeRemoteTxRequests": KeySpec("false", _bool),
        "BlinkRepeat": KeySpec("3", _int),
        "ClockAlignedDataInterval": KeySpec("0", _int),
        "ConnectionTimeOut": KeySpec("60", _int),
        "ConnectorPhaseRotation": KeySpec(",".join(f"{i}.RST" for i in range(connectors + 1))),
        "GetConfigurationMaxKeys": KeySpec("100", readonly=True),
        "HeartbeatInterval": KeySpec("300", _int),
        "LightIntensity": KeySpec("50", _int),
        "LocalAuthorizeOffline": KeySpec("true", _bool),
        "LocalPreAuthorize": KeySpec("false", _bool),
        "MaxEnergyOnInvalidId": KeySpec("0", _int),
        "MeterValuesAlignedData": KeySpec("Energy.Active.Import.Register", _measurands, max_items=8),
        "MeterValuesAlignedDataMaxLength": KeySpec("8", readonly=True),
        "MeterValuesSampledData": KeySpec(sampled, _measurands, max_items=8),
        "MeterValuesSampledDataMaxLength": KeySpec("8", readonly=True),
        "MeterValueSampleInterval": KeySpec("60", _int),
        "MinimumStatusDuration": KeySpec("0", _int),
        "NumberOfConnectors": KeySpec(str(connectors), readonly=True),
        "ResetRetries": KeySpec("1", _int),
        "StopTransactionOnEVSideDisconnect": KeySpec("true", _bool),
        "StopTransactionOnInvalidId": KeySpec("true", _bool),
        "StopTxnAlignedData": KeySpec("", _measurands, max_items=8),
        "StopTxnAlignedDataMaxLength": KeySpec("8", readonly=True),
        "StopTxnSampledData": KeySpec("", _measurands, max_items=8),
        "StopTxnSampledDataMaxLength": KeySpec("8", readonly=True),
        "SupportedFeatureProfiles": KeySpec(",".join(sorted(_PROFILES)), readonly=True),
        "TransactionMessageAttempts": KeySpec("3", _int),
        "TransactionMessageRetryInterval": KeySpec("60", _int),
        "UnlockConnectorOnEVSideDisconnect": KeySpec("true", _bool),
        # the websocket is set up once per connection, so a new ping interval needs a reboot here
        "WebSocketPingInterval": KeySpec("0", _int, reboot=True),
        # 9.2 Local Auth List Management
        "LocalAuthListEnabled": KeySpec("true", _bool),
        "LocalAuthListMaxLength": KeySpec("1000", readonly=True),
        "SendLocalListMaxLength": KeySpec("100", readonly=True),
        # 9.3 Reservation
        "ReserveConnectorZeroSupported": KeySpec("false", readonly=True),
        # 9.4 Smart Charging
        "ChargeProfileMaxStackLevel": KeySpec("10", readonly=True),
        "ChargingScheduleAllowedChargingRateUnit": KeySpec("Current,Power", readonly=True),
        "ChargingScheduleMaxPeriods": KeySpec("24", readonly=True),
        "ConnectorSwitch3to1PhaseSupported": KeySpec("false", readonly=True),
        "MaxChargingProfilesInstalled": KeySpec("10", readonly=True),
        # security whitepaper
        "AuthorizationKey": KeySpec("", _key, writeonly=True),
        "SecurityProfile": KeySpec("0", lambda v: v in ("0", "1", "2", "3"), reboot=True),
    }


class KeyStore:
    """Configuration keys of one charge point with their current values."""

    def __init__(self, connectors: int, overrides: dict[str, str] | None = None) -> None:
        """Standard keys with their defaults, then ``overrides`` (which may set read-only keys)."""
        self.specs = _standard(connectors)
        self.values = {k: s.default for k, s in self.specs.items()}
        self.pending: dict[str, str] = {}  # reboot-required values, applied by `apply_pending`
        for k, v in (overrides or {}).items():
            if k not in self.specs:
                raise ValueError(f"unknown configuration key {k!r}")
            self.values[k] = v

    def get(self, keys: list[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey names); all readable keys without ``keys``."""
        names = keys if keys else list(self.specs)
        known: list[dict[str, object]] = []
        unknown: list[str] = []
        for k in names:
            spec = self.specs.get(k)
            if spec is None or (spec.writeonly and keys):
                unknown.append(k)
            elif not spec.writeonly:
                known.append({"key": k, "readonly": spec.readonly, "value": self.values[k]})
        return known, unknown

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec = self.specs.get(key)
        if spec is None:
            return "NotSupported"
        if spec.readonly or not spec.check(value):
            return "Rejected"
        if spec.max_items is not None and len([x for x in value.split(",") if x.strip()]) > spec.max_items:
            return "Rejected"
        if spec.reboot:
            self.pending[key] = value
            return "RebootRequired"
        self.values[key] = value
        return "Accepted"

    def apply_pending(self) -> None:
        """At boot: reboot-required changes take effect."""
        self.values.update(self.pending)
        self.pending.clear()

    def get_int(self, key: str) -> int:
        """An integer key's value."""
        return int(self.values[key])

    def get_bool(self, key: str) -> bool:
        """A boolean key's value."""
        return self.values[key].lower() == "true"

    def get_list(self, key: str) -> list[str]:
        """A comma-separated list key's items."""
        return [x.strip() for x in self.values[key].split(",") if x.strip()]
