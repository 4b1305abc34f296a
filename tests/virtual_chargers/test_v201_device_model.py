"""The OCPP 2.0.1 device model answers Get/SetVariables and GetBaseReport as the specification says."""

from __future__ import annotations

import pytest

from virtual_chargers.v201.device_model import (
    Attribute,
    ComponentKey,
    GetStatus,
    Mutability,
    ReportBase,
    SetStatus,
    VariableKey,
    standard_device_model,
)


@pytest.fixture
def dm():
    return standard_device_model(
        vendor_name="Acme",
        model="AC22",
        serial_number="S1",
        firmware_version="1.0",
        evse_max_power_w=[22000.0, 22000.0],
        basic_auth_password="s3cret-password-1234",
        items_per_message=7,
    )


def test_read_write_variable_round_trips(dm):
    """A ReadWrite integer is Accepted and read back."""
    comp, var = ComponentKey("OCPPCommCtrlr"), VariableKey("HeartbeatInterval")
    assert dm.set(comp, var, "42").status is SetStatus.ACCEPTED
    assert dm.get(comp, var).value == "42"
    assert dm.int_value("OCPPCommCtrlr", "HeartbeatInterval") == 42


def test_names_are_case_insensitive(dm):
    """Component and variable names compare case-insensitively."""
    assert dm.get(ComponentKey("ocppcommctrlr"), VariableKey("heartbeatinterval")).status is GetStatus.ACCEPTED


def test_read_only_is_refused(dm):
    """Writing a ReadOnly variable is Rejected and leaves the value."""
    comp, var = ComponentKey("ChargingStation"), VariableKey("Model")
    result = dm.set(comp, var, "Other")
    assert (result.status, result.reason) == (SetStatus.REJECTED, "ReadOnly")
    assert dm.get(comp, var).value == "AC22"


def test_unknown_component_and_variable(dm):
    """An unknown component is UnknownComponent; an unknown variable of a known one is UnknownVariable."""
    assert dm.get(ComponentKey("NoSuchCtrlr"), VariableKey("X")).status is GetStatus.UNKNOWN_COMPONENT
    assert dm.get(ComponentKey("TxCtrlr"), VariableKey("NoSuch")).status is GetStatus.UNKNOWN_VARIABLE
    assert dm.set(ComponentKey("NoSuchCtrlr"), VariableKey("X"), "1").status is SetStatus.UNKNOWN_COMPONENT
    assert dm.set(ComponentKey("TxCtrlr"), VariableKey("NoSuch"), "1").status is SetStatus.UNKNOWN_VARIABLE
    # EVSE 3 does not exist on a two-EVSE station.
    assert dm.get(ComponentKey("EVSE", evse_id=3), VariableKey("Power")).status is GetStatus.UNKNOWN_COMPONENT


def test_attribute_types(dm):
    """EVSE.Power has Actual and MaxSet; an attribute a variable lacks is NotSupportedAttributeType."""
    evse = ComponentKey("EVSE", evse_id=1)
    assert dm.get(evse, VariableKey("Power"), Attribute.MAX_SET).value == "22000"
    assert dm.get(evse, VariableKey("Power"), Attribute.TARGET).status is GetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE
    comp, var = ComponentKey("OCPPCommCtrlr"), VariableKey("HeartbeatInterval")
    assert dm.set(comp, var, "5", Attribute.MIN_SET).status is SetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE


def test_write_only_password_is_never_read(dm):
    """BasicAuthPassword is WriteOnly: Get is Rejected, it is absent from reports and repr; Set checks length."""
    comp, var = ComponentKey("SecurityCtrlr"), VariableKey("BasicAuthPassword")
    assert dm.get(comp, var).status is GetStatus.REJECTED
    assert dm.set(comp, var, "short").status is SetStatus.REJECTED
    assert dm.set(comp, var, "another-password-5678").status is SetStatus.ACCEPTED
    assert dm.value("SecurityCtrlr", "BasicAuthPassword") == "another-password-5678"
    rows = dm.report(ReportBase.FULL_INVENTORY)
    (row,) = [r for r in rows if r["variable"] == {"name": "BasicAuthPassword"}]
    assert row["variable_attribute"] == [
        {"type": "Actual", "mutability": "WriteOnly", "persistent": True, "constant": False}
    ]
    assert "another-password" not in repr(dm.find(comp, var))


@pytest.mark.parametrize(
    ("component", "variable", "value", "reason"),
    [
        ("OCPPCommCtrlr", "HeartbeatInterval", "soon", "InvalidValue"),
        ("OCPPCommCtrlr", "HeartbeatInterval", "0", "ValueOutOfRange"),
        ("AuthCtrlr", "Enabled", "yes", "InvalidValue"),
        ("TxCtrlr", "TxStartPoint", "EVConnected,Teleported", "ValueNotInList"),
        ("TxCtrlr", "TxStartPoint", "EVConnected,EVConnected", "ValueNotInList"),
        ("SmartChargingCtrlr", "LimitChangeSignificance", "nan", "InvalidValue"),
    ],
)
def test_invalid_values_are_rejected(dm, component, variable, value, reason):
    """Values that do not parse, lie outside the limits or the list are Rejected with a reason code."""
    result = dm.set(ComponentKey(component), VariableKey(variable), value)
    assert (result.status, result.reason) == (SetStatus.REJECTED, reason)


def test_member_list_accepts_subsets(dm):
    """A MemberList takes any subset of its values, the empty one included."""
    comp, var = ComponentKey("TxCtrlr"), VariableKey("TxStartPoint")
    assert dm.set(comp, var, "Authorized,EVConnected").status is SetStatus.ACCEPTED
    assert dm.list_value("TxCtrlr", "TxStartPoint") == ("Authorized", "EVConnected")
    assert dm.set(ComponentKey("SampledDataCtrlr"), VariableKey("TxEndedMeasurands"), "").status is SetStatus.ACCEPTED


def test_reboot_required_takes_effect_at_reboot(dm):
    """RebootRequired keeps the old value in effect until reboot()."""
    comp, var = ComponentKey("OCPPCommCtrlr"), VariableKey("NetworkConfigurationPriority")
    assert dm.set(comp, var, "1,0").status is SetStatus.REBOOT_REQUIRED
    assert dm.get(comp, var).value == "0"
    changed = dm.reboot()
    assert [v.key.name for v in changed] == ["NetworkConfigurationPriority"]
    assert dm.get(comp, var).value == "1,0"
    assert dm.reboot() == []


def test_report_bases(dm):
    """Full lists every variable; Configuration only writable ones; Summary availability and problems."""
    full = dm.report(ReportBase.FULL_INVENTORY)
    assert len(full) == len(dm)
    config = dm.report(ReportBase.CONFIGURATION_INVENTORY)
    assert config
    assert all(any(a["mutability"] != Mutability.READ_ONLY.value for a in r["variable_attribute"]) for r in config)
    summary = dm.report(ReportBase.SUMMARY_INVENTORY)
    assert {r["variable"]["name"] for r in summary} == {"AvailabilityState", "Available", "Problem"}
    # ChargingStation + 2 EVSEs + 2 connectors report AvailabilityState.
    assert sum(r["variable"]["name"] == "AvailabilityState" for r in summary) == 5
    connector = next(r for r in full if r["component"]["name"] == "Connector")
    assert connector["component"]["evse"] == {"id": 1, "connector_id": 1}


def test_controllers_named_in_the_brief_exist(dm):
    """The standard controllers and their variables are present."""
    for component, variable, instance in [
        ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
        ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"),
        ("OCPPCommCtrlr", "OfflineThreshold", None),
        ("OCPPCommCtrlr", "ResetRetries", None),
        ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", None),
        ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", None),
        ("TxCtrlr", "EVConnectionTimeOut", None),
        ("TxCtrlr", "StopTxOnInvalidId", None),
        ("TxCtrlr", "TxStopPoint", None),
        ("SampledDataCtrlr", "TxUpdatedInterval", None),
        ("SampledDataCtrlr", "TxUpdatedMeasurands", None),
        ("AlignedDataCtrlr", "Interval", None),
        ("AuthCtrlr", "AuthorizeRemoteStart", None),
        ("SmartChargingCtrlr", "ProfileStackLevel", None),
        ("SecurityCtrlr", "SecurityProfile", None),
        ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"),
    ]:
        result = dm.get(ComponentKey(component), VariableKey(variable, instance))
        assert result.status is GetStatus.ACCEPTED, (component, variable)
