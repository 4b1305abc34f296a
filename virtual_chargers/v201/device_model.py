"""The OCPP 2.0.1 device model: components, their variables, and the attributes of each variable.

A variable is addressed by component (name, instance, EVSE, connector) and variable (name, instance);
names compare case-insensitively, as the specification says. Each variable has up to four attributes
(Actual, Target, MinSet, MaxSet) with a mutability each. ``get`` and ``set`` answer exactly like
GetVariables and SetVariables; ``report`` builds NotifyReport rows for GetBaseReport.

A variable marked ``reboot_required`` answers SetVariables with RebootRequired: the new value is kept
as pending, reads still return the value in effect, and ``reboot()`` puts the pending value in effect.
WriteOnly values (BasicAuthPassword) are never read back, reported or shown in ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

__all__ = [
    "Attribute",
    "ComponentKey",
    "DataType",
    "DeviceModel",
    "GetStatus",
    "Mutability",
    "ReportBase",
    "SetStatus",
    "Variable",
    "VariableKey",
    "standard_device_model",
]


class Attribute(Enum):
    """Attribute types of a variable (AttributeEnumType)."""

    ACTUAL = "Actual"
    TARGET = "Target"
    MIN_SET = "MinSet"
    MAX_SET = "MaxSet"


class Mutability(Enum):
    """Who may change an attribute (MutabilityEnumType)."""

    READ_ONLY = "ReadOnly"
    WRITE_ONLY = "WriteOnly"
    READ_WRITE = "ReadWrite"


class DataType(Enum):
    """Value type of a variable (DataEnumType)."""

    STRING = "string"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATE_TIME = "dateTime"
    BOOLEAN = "boolean"
    OPTION_LIST = "OptionList"
    SEQUENCE_LIST = "SequenceList"
    MEMBER_LIST = "MemberList"
    PASSWORD_STRING = "passwordString"


class GetStatus(Enum):
    """GetVariableStatusEnumType."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"


class SetStatus(Enum):
    """SetVariableStatusEnumType."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"
    REBOOT_REQUIRED = "RebootRequired"


class ReportBase(Enum):
    """ReportBaseEnumType: which variables GetBaseReport returns."""

    CONFIGURATION_INVENTORY = "ConfigurationInventory"
    FULL_INVENTORY = "FullInventory"
    SUMMARY_INVENTORY = "SummaryInventory"


_SUMMARY_VARIABLES = frozenset({"availabilitystate", "available", "problem"})


def _fold(name: str | None) -> str | None:
    return None if name is None else name.casefold()


@dataclass(frozen=True, slots=True)
class ComponentKey:
    """A component: its name, and instance, EVSE and connector when there are several."""

    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    def folded(self) -> tuple[str | None, str | None, int | None, int | None]:
        """Lookup key: names case-folded."""
        return (_fold(self.name), _fold(self.instance), self.evse_id, self.connector_id)

    def to_ocpp(self) -> dict[str, object]:
        """ComponentType as the ocpp library's snake_case dict."""
        out: dict[str, object] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        if self.evse_id is not None:
            evse: dict[str, object] = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connector_id"] = self.connector_id
            out["evse"] = evse
        return out

    @classmethod
    def from_ocpp(cls, component: dict[str, object]) -> ComponentKey:
        """Read a ComponentType dict as the ocpp library hands it to a handler (snake_case keys)."""
        evse = component.get("evse")
        evse_id = connector_id = None
        if isinstance(evse, dict):
            evse_id = evse.get("id")
            connector_id = evse.get("connector_id")
        return cls(str(component["name"]), _opt_str(component.get("instance")), evse_id, connector_id)


@dataclass(frozen=True, slots=True)
class VariableKey:
    """A variable of a component: its name, and instance when there are several."""

    name: str
    instance: str | None = None

    def folded(self) -> tuple[str | None, str | None]:
        """Lookup key: names case-folded."""
        return (_fold(self.name), _fold(self.instance))

    def to_ocpp(self) -> dict[str, object]:
        """VariableType as the ocpp library's snake_case dict."""
        out: dict[str, object] = {"name": self.name}
        if self.instance is not None:
            out["instance"] = self.instance
        return out

    @classmethod
    def from_ocpp(cls, variable: dict[str, object]) -> VariableKey:
        """Read a VariableType dict as the ocpp library hands it to a handler."""
        return cls(str(variable["name"]), _opt_str(variable.get("instance")))


def _opt_str(x: object) -> str | None:
    return None if x is None else str(x)


@dataclass(slots=True)
class AttributeValue:
    """One attribute of a variable: the value in effect, its mutability, and a value awaiting reboot."""

    value: str
    mutability: Mutability
    pending: str | None = None

    def __repr__(self) -> str:
        shown = "<hidden>" if self.mutability is Mutability.WRITE_ONLY else repr(self.value)
        return f"AttributeValue({shown}, {self.mutability.value})"


@dataclass(slots=True)
class Variable:
    """A variable of a component with its attributes and characteristics.

    Attributes:
        component: The component it belongs to.
        key: Its name and instance.
        data_type: The type its values must parse as.
        attributes: Attribute type → value and mutability; absent types are NotSupportedAttributeType.
        unit: Unit reported in its characteristics (``s``, ``W``, ``A`` …) or None.
        min_limit: Lowest allowed numeric value, or None.
        max_limit: Highest allowed numeric value, or the longest string for string and list types, or None.
        values_list: Allowed values of an OptionList, MemberList or SequenceList.
        reboot_required: A change takes effect only after a reboot.
        persistent: Kept across reboots (all variables here are; reported as such).
    """

    component: ComponentKey
    key: VariableKey
    data_type: DataType
    attributes: dict[Attribute, AttributeValue]
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    reboot_required: bool = False
    persistent: bool = True

    def check(self, value: str) -> str | None:
        """Why ``value`` is not valid for this variable (a reasonCode of at most 20 characters), or None."""
        t = self.data_type
        if t in (DataType.INTEGER, DataType.DECIMAL):
            try:
                number = int(value) if t is DataType.INTEGER else float(value)
            except ValueError:
                return "InvalidValue"
            if not math.isfinite(number):
                return "InvalidValue"
            if (self.min_limit is not None and number < self.min_limit) or (
                self.max_limit is not None and number > self.max_limit
            ):
                return "ValueOutOfRange"
            return None
        if t is DataType.BOOLEAN:
            return None if value in ("true", "false") else "InvalidValue"
        if t is DataType.DATE_TIME:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return "InvalidValue"
            return None
        if self.max_limit is not None and len(value) > self.max_limit:
            return "ValueTooLong"
        if t is DataType.OPTION_LIST:
            return None if value in self.values_list else "ValueNotInList"
        if t in (DataType.MEMBER_LIST, DataType.SEQUENCE_LIST):
            members = [m for m in value.split(",") if m] if value else []
            if any(m not in self.values_list for m in members) or len(set(members)) != len(members):
                return "ValueNotInList"
            return None
        if t is DataType.PASSWORD_STRING and self.min_limit is not None and len(value) < self.min_limit:
            return "ValueTooShort"
        return None


@dataclass(frozen=True, slots=True)
class GetResult:
    """Outcome of reading one attribute; ``value`` is None unless Accepted."""

    status: GetStatus
    value: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SetResult:
    """Outcome of writing one attribute, with a reasonCode when Rejected."""

    status: SetStatus
    reason: str | None = None


@dataclass
class DeviceModel:
    """All variables of a charging station, addressable by component and variable."""

    _variables: dict[tuple[object, ...], Variable] = field(default_factory=dict)
    _components: set[tuple[object, ...]] = field(default_factory=set)

    def add(self, variable: Variable) -> Variable:
        """Add a variable; its component comes into being with it.

        Raises:
            ValueError: When the variable exists already or has no attribute.
        """
        if not variable.attributes:
            raise ValueError(f"{variable.component.name}.{variable.key.name} needs at least one attribute")
        key = (*variable.component.folded(), *variable.key.folded())
        if key in self._variables:
            raise ValueError(f"{variable.component}.{variable.key} exists already")
        self._variables[key] = variable
        self._components.add(variable.component.folded())
        return variable

    def __iter__(self) -> Iterator[Variable]:
        return iter(self._variables.values())

    def __len__(self) -> int:
        return len(self._variables)

    def find(self, component: ComponentKey, variable: VariableKey) -> Variable | None:
        """The variable, or None."""
        return self._variables.get((*component.folded(), *variable.folded()))

    def _lookup(self, component: ComponentKey, variable: VariableKey) -> Variable | GetStatus:
        found = self.find(component, variable)
        if found is not None:
            return found
        if component.folded() not in self._components:
            return GetStatus.UNKNOWN_COMPONENT
        return GetStatus.UNKNOWN_VARIABLE

    def get(self, component: ComponentKey, variable: VariableKey, attribute: Attribute = Attribute.ACTUAL) -> GetResult:
        """Read an attribute as GetVariables does: WriteOnly attributes are Rejected."""
        found = self._lookup(component, variable)
        if isinstance(found, GetStatus):
            return GetResult(found)
        attr = found.attributes.get(attribute)
        if attr is None:
            return GetResult(GetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE)
        if attr.mutability is Mutability.WRITE_ONLY:
            return GetResult(GetStatus.REJECTED, reason="WriteOnly")
        return GetResult(GetStatus.ACCEPTED, attr.value)

    def set(
        self, component: ComponentKey, variable: VariableKey, value: str, attribute: Attribute = Attribute.ACTUAL
    ) -> SetResult:
        """Write an attribute as SetVariables does: ReadOnly and invalid values are Rejected.

        A variable marked ``reboot_required`` keeps the new value pending until ``reboot()``.
        """
        found = self._lookup(component, variable)
        if isinstance(found, GetStatus):
            return SetResult(SetStatus(found.value))
        attr = found.attributes.get(attribute)
        if attr is None:
            return SetResult(SetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE)
        if attr.mutability is Mutability.READ_ONLY:
            return SetResult(SetStatus.REJECTED, "ReadOnly")
        reason = found.check(value)
        if reason is not None:
            return SetResult(SetStatus.REJECTED, reason)
        if found.reboot_required:
            attr.pending = value
            return SetResult(SetStatus.REBOOT_REQUIRED)
        attr.value = value
        return SetResult(SetStatus.ACCEPTED)

    def write(
        self, component: ComponentKey, variable: VariableKey, value: str, attribute: Attribute = Attribute.ACTUAL
    ) -> None:
        """Set a value from inside the station (a measured Actual, a boot interval), whatever its mutability.

        Raises:
            KeyError: For a variable or attribute the model does not have.
        """
        found = self.find(component, variable)
        if found is None:
            raise KeyError(f"no variable {component}.{variable}")
        found.attributes[attribute].value = value

    def reboot(self) -> list[Variable]:
        """Put pending values in effect, as a reboot does, and return the variables that changed."""
        changed = []
        for var in self._variables.values():
            touched = False
            for attr in var.attributes.values():
                if attr.pending is not None:
                    attr.value, attr.pending = attr.pending, None
                    touched = True
            if touched:
                changed.append(var)
        return changed

    # Typed reads of values in effect, for the station's own use.

    def value(self, component: str, variable: str, *, instance: str | None = None, evse_id: int | None = None) -> str:
        """The Actual value in effect of a controller variable (WriteOnly included: the station may read it).

        Raises:
            KeyError: For a variable the model does not have.
        """
        found = self.find(ComponentKey(component, evse_id=evse_id), VariableKey(variable, instance))
        if found is None:
            raise KeyError(f"no variable {component}.{variable}" + (f"[{instance}]" if instance else ""))
        return found.attributes[Attribute.ACTUAL].value

    def int_value(self, component: str, variable: str, *, instance: str | None = None) -> int:
        """The Actual value of an integer variable."""
        return int(self.value(component, variable, instance=instance))

    def bool_value(self, component: str, variable: str, *, instance: str | None = None) -> bool:
        """The Actual value of a boolean variable."""
        return self.value(component, variable, instance=instance) == "true"

    def list_value(self, component: str, variable: str, *, instance: str | None = None) -> tuple[str, ...]:
        """The Actual members of a MemberList or SequenceList variable, in order."""
        return tuple(m for m in self.value(component, variable, instance=instance).split(",") if m)

    def report(self, base: ReportBase) -> list[dict[str, object]]:
        """ReportDataType rows (snake_case dicts for the ocpp library) for GetBaseReport.

        FullInventory lists everything; ConfigurationInventory the variables the CSMS may write;
        SummaryInventory the availability and problem variables. WriteOnly values are left out.
        """
        rows = []
        for var in self._variables.values():
            if base is ReportBase.CONFIGURATION_INVENTORY and all(
                a.mutability is Mutability.READ_ONLY for a in var.attributes.values()
            ):
                continue
            if base is ReportBase.SUMMARY_INVENTORY and _fold(var.key.name) not in _SUMMARY_VARIABLES:
                continue
            rows.append(_report_row(var))
        return rows


def _report_row(var: Variable) -> dict[str, object]:
    attributes = []
    for kind, attr in var.attributes.items():
        item: dict[str, object] = {
            "type": kind.value,
            "mutability": attr.mutability.value,
            "persistent": var.persistent,
            "constant": False,
        }
        if attr.mutability is not Mutability.WRITE_ONLY:
            item["value"] = attr.value
        attributes.append(item)
    # The 2.0.1 JSON schema has no passwordString (the prose does): a password is reported as a string.
    data_type = DataType.STRING if var.data_type is DataType.PASSWORD_STRING else var.data_type
    characteristics: dict[str, object] = {"data_type": data_type.value, "supports_monitoring": False}
    if var.unit is not None:
        characteristics["unit"] = var.unit
    if var.min_limit is not None:
        characteristics["min_limit"] = var.min_limit
    if var.max_limit is not None:
        characteristics["max_limit"] = var.max_limit
    if var.values_list:
        characteristics["values_list"] = ",".join(var.values_list)
    return {
        "component": var.component.to_ocpp(),
        "variable": var.key.to_ocpp(),
        "variable_attribute": attributes,
        "variable_characteristics": characteristics,
    }


# The standard model ------------------------------------------------------------------------------

RO, RW, WO = Mutability.READ_ONLY, Mutability.READ_WRITE, Mutability.WRITE_ONLY
TX_POINTS = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned", "PowerPathClosed", "EnergyTransfer")
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",  # what a bidirectional EVSE took back (V2X)
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
    "Power.Offered",
    "Current.Offered",
)
"""Measurands the simulated meter can report."""


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    data_type: DataType
    value: str
    mutability: Mutability = RW
    instance: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    reboot_required: bool = False


def _add_all(model: DeviceModel, component: ComponentKey, specs: Iterable[_Spec]) -> None:
    for s in specs:
        model.add(
            Variable(
                component=component,
                key=VariableKey(s.name, s.instance),
                data_type=s.data_type,
                attributes={Attribute.ACTUAL: AttributeValue(s.value, s.mutability)},
                unit=s.unit,
                min_limit=s.min_limit,
                max_limit=s.max_limit,
                values_list=s.values_list,
                reboot_required=s.reboot_required,
            )
        )


INT, D, B, S = DataType.INTEGER, DataType.DECIMAL, DataType.BOOLEAN, DataType.STRING
ML, OL, SL = DataType.MEMBER_LIST, DataType.OPTION_LIST, DataType.SEQUENCE_LIST
_AVAILABILITY = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def standard_device_model(
    *,
    vendor_name: str,
    model: str,
    serial_number: str,
    firmware_version: str,
    evse_max_power_w: list[float],
    connector_types: list[str] | None = None,
    security_profile: int = 1,
    basic_auth_password: str = "",
    heartbeat_interval_s: int = 300,
    items_per_message: int = 50,
    tx_updated_interval_s: int = 60,
    message_attempts: int = 3,
    message_attempt_interval_s: int = 10,
    identity: str = "",
) -> DeviceModel:
    """The controllers of a charging station (OCPP 2.0.1 Part 2 Appendix 3) and its EVSEs and connectors.

    Args:
        vendor_name: ChargingStation.VendorName.
        model: ChargingStation.Model.
        serial_number: ChargingStation.SerialNumber.
        firmware_version: ChargingStation.FirmwareVersion (updated by UpdateFirmware).
        evse_max_power_w: Rated power of each EVSE (EVSE ids 1..n, one connector each): EVSE.Power MaxSet.
        connector_types: ConnectorType per EVSE (``cType2``, ``cCCS2`` …); cType2 when omitted.
        security_profile: SecurityCtrlr.SecurityProfile (1 to 3; 0 for a test CSMS without security).
        basic_auth_password: SecurityCtrlr.BasicAuthPassword, WriteOnly.
        heartbeat_interval_s: OCPPCommCtrlr.HeartbeatInterval until the CSMS's boot answer sets it.
        items_per_message: DeviceDataCtrlr.ItemsPerMessage for GetReport, GetVariables and SetVariables.
        tx_updated_interval_s: SampledDataCtrlr.TxUpdatedInterval.
        message_attempts: OCPPCommCtrlr.MessageAttempts[TransactionEvent].
        message_attempt_interval_s: OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent].
        identity: SecurityCtrlr.Identity (the station id in the URL).
    """
    if not evse_max_power_w:
        raise ValueError("a charging station needs at least one EVSE (evse_max_power_w is empty)")
    if not 0 <= security_profile <= 3:
        raise ValueError(f"security_profile(={security_profile}) must be 0 (none), 1, 2 or 3")
    types = connector_types or ["cType2"] * len(evse_max_power_w)
    if len(types) != len(evse_max_power_w):
        raise ValueError(f"connector_types has {len(types)} entries for {len(evse_max_power_w)} EVSEs")
    dm = DeviceModel()
    total_w = sum(evse_max_power_w)
    _add_all(
        dm,
        ComponentKey("ChargingStation"),
        [
            _Spec("AvailabilityState", OL, "Available", RO, values_list=_AVAILABILITY),
            _Spec("Available", B, "true", RO),
            _Spec("Problem", B, "false", RO),
            _Spec("Model", S, model, RO),
            _Spec("VendorName", S, vendor_name, RO),
            _Spec("SerialNumber", S, serial_number, RO),
            _Spec("FirmwareVersion", S, firmware_version, RO),
            _Spec("SupplyPhases", INT, "3", RO),
        ],
    )
    dm.add(
        Variable(
            ComponentKey("ChargingStation"),
            VariableKey("Power"),
            D,
            {Attribute.ACTUAL: AttributeValue("0", RO), Attribute.MAX_SET: AttributeValue(f"{total_w:g}", RO)},
            unit="W",
        )
    )
    for evse_id, (power_w, ctype) in enumerate(zip(evse_max_power_w, types, strict=True), start=1):
        evse = ComponentKey("EVSE", evse_id=evse_id)
        _add_all(
            dm,
            evse,
            [
                _Spec("AvailabilityState", OL, "Available", RO, values_list=_AVAILABILITY),
                _Spec("Available", B, "true", RO),
                _Spec("SupplyPhases", INT, "3", RO),
            ],
        )
        dm.add(
            Variable(
                evse,
                VariableKey("Power"),
                D,
                {Attribute.ACTUAL: AttributeValue("0", RO), Attribute.MAX_SET: AttributeValue(f"{power_w:g}", RO)},
                unit="W",
            )
        )
        _add_all(
            dm,
            ComponentKey("Connector", evse_id=evse_id, connector_id=1),
            [
                _Spec("AvailabilityState", OL, "Available", RO, values_list=_AVAILABILITY),
                _Spec("Available", B, "true", RO),
                _Spec("ConnectorType", S, ctype, RO),
                _Spec("SupplyPhases", INT, "3", RO),
            ],
        )
    _add_all(
        dm,
        ComponentKey("OCPPCommCtrlr"),
        [
            _Spec("HeartbeatInterval", INT, str(heartbeat_interval_s), unit="s", min_limit=1),
            _Spec("MessageTimeout", INT, "30", RO, instance="Default", unit="s"),
            _Spec("NetworkProfileConnectionAttempts", INT, "3", min_limit=1),
            # Both slots name the context's CSMS URL; the order takes effect at the next boot.
            _Spec("NetworkConfigurationPriority", SL, "0", values_list=("0", "1"), reboot_required=True),
            _Spec("OfflineThreshold", INT, "60", unit="s", min_limit=0),
            _Spec("ResetRetries", INT, "2", min_limit=0),
            _Spec("RetryBackOffRandomRange", INT, "10", unit="s", min_limit=0),
            _Spec("RetryBackOffRepeatTimes", INT, "5", min_limit=0),
            _Spec("RetryBackOffWaitMinimum", INT, "2", unit="s", min_limit=0),
            _Spec("MessageAttempts", INT, str(message_attempts), instance="TransactionEvent", min_limit=1),
            _Spec(
                "MessageAttemptInterval",
                INT,
                str(message_attempt_interval_s),
                instance="TransactionEvent",
                unit="s",
                min_limit=0,
            ),
            _Spec("UnlockOnEVSideDisconnect", B, "true"),
            _Spec("WebSocketPingInterval", INT, "0", unit="s", min_limit=0),
            _Spec("FileTransferProtocols", ML, "HTTP,HTTPS", RO, values_list=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")),
        ],
    )
    _add_all(
        dm,
        ComponentKey("TxCtrlr"),
        [
            _Spec("EVConnectionTimeOut", INT, "120", unit="s", min_limit=0),
            _Spec("StopTxOnEVSideDisconnect", B, "true", RO),
            _Spec("StopTxOnInvalidId", B, "true"),
            _Spec("TxStartPoint", ML, "PowerPathClosed", values_list=TX_POINTS),
            _Spec("TxStopPoint", ML, "EVConnected,Authorized", values_list=TX_POINTS),
        ],
    )
    _add_all(
        dm,
        ComponentKey("SampledDataCtrlr"),
        [
            _Spec("Enabled", B, "true"),
            _Spec("TxStartedMeasurands", ML, "Energy.Active.Import.Register", values_list=MEASURANDS),
            _Spec("TxUpdatedInterval", INT, str(tx_updated_interval_s), unit="s", min_limit=0),
            _Spec(
                "TxUpdatedMeasurands",
                ML,
                "Energy.Active.Import.Register,Power.Active.Import",
                values_list=MEASURANDS,
            ),
            _Spec("TxEndedInterval", INT, "0", unit="s", min_limit=0),
            _Spec("TxEndedMeasurands", ML, "Energy.Active.Import.Register", values_list=MEASURANDS),
        ],
    )
    _add_all(
        dm,
        ComponentKey("AlignedDataCtrlr"),
        [
            _Spec("Enabled", B, "false"),
            _Spec("Interval", INT, "900", unit="s", min_limit=0),
            _Spec("Measurands", ML, "Energy.Active.Import.Register", values_list=MEASURANDS),
            _Spec("TxEndedInterval", INT, "0", unit="s", min_limit=0),
            _Spec("TxEndedMeasurands", ML, "Energy.Active.Import.Register", values_list=MEASURANDS),
        ],
    )
    _add_all(
        dm,
        ComponentKey("AuthCtrlr"),
        [
            _Spec("Enabled", B, "true"),
            _Spec("AuthorizeRemoteStart", B, "false"),
            _Spec("LocalAuthorizeOffline", B, "true"),
            _Spec("LocalPreAuthorize", B, "false"),
            _Spec("OfflineTxForUnknownIdEnabled", B, "true"),
        ],
    )
    _add_all(
        dm,
        ComponentKey("LocalAuthListCtrlr"),
        [
            _Spec("Enabled", B, "true"),
            _Spec("Entries", INT, "0", RO),
            _Spec("ItemsPerMessage", INT, "100", RO, min_limit=1),
            _Spec("BytesPerMessage", INT, "65000", RO),
        ],
    )
    _add_all(
        dm,
        ComponentKey("ReservationCtrlr"),
        [_Spec("Enabled", B, "true"), _Spec("NonEvseSpecific", B, "true")],
    )
    _add_all(
        dm,
        ComponentKey("SmartChargingCtrlr"),
        [
            _Spec("Enabled", B, "true"),
            _Spec("EntriesChargingProfiles", INT, "0", RO),
            _Spec("LimitChangeSignificance", D, "0.1", min_limit=0),
            _Spec("PeriodsPerSchedule", INT, "24", RO),
            _Spec("ProfileStackLevel", INT, "8", RO),
            _Spec("RateUnit", ML, "A,W", RO, values_list=("A", "W")),
        ],
    )
    _add_all(
        dm,
        ComponentKey("SecurityCtrlr"),
        [
            _Spec("SecurityProfile", INT, str(security_profile), RO, min_limit=0, max_limit=3),
            _Spec("BasicAuthPassword", DataType.PASSWORD_STRING, basic_auth_password, WO, min_limit=16, max_limit=40),
            _Spec("Identity", S, identity, RO, max_limit=48),
            _Spec("OrganizationName", S, vendor_name, max_limit=100),
            _Spec("CertificateEntries", INT, "0", RO),
        ],
    )
    _add_all(
        dm,
        ComponentKey("DeviceDataCtrlr"),
        [
            _Spec("ItemsPerMessage", INT, str(items_per_message), RO, instance=kind, min_limit=1)
            for kind in ("GetReport", "GetVariables", "SetVariables")
        ]
        + [
            _Spec("BytesPerMessage", INT, "65000", RO, instance=kind)
            for kind in ("GetReport", "GetVariables", "SetVariables")
        ],
    )
    _add_all(
        dm,
        ComponentKey("ClockCtrlr"),
        [
            _Spec("DateTime", DataType.DATE_TIME, "2025-01-01T00:00:00+00:00", RO),
            _Spec("TimeSource", SL, "Heartbeat", values_list=("Heartbeat", "NTP", "GPS", "RealTimeClock")),
        ],
    )
    return dm
