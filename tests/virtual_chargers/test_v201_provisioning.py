"""OCPP 2.0.1 provisioning on loopback: boot registration, Get/SetVariables, GetBaseReport, password rotation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OccurrenceConstraintViolationError

from virtual_chargers.connection import SecurityConfig
from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

SPEED = 600.0


def _get(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}, **extra}


def _set(component: str, variable: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}, "attribute_value": value, **extra}


def _statuses(result: Any, key: str) -> list[str]:
    return [r["attribute_status"] for r in getattr(result, key)]


def test_get_and_set_variables(arun: Any, tmp_path: Path) -> None:
    """ReadWrite is set and read back; ReadOnly is Rejected; unknown names; attributes; WriteOnly is never read."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            res = await h.set_variables(
                [
                    _set("OCPPCommCtrlr", "HeartbeatInterval", "42"),
                    _set("ChargingStation", "Model", "other"),
                    _set("NoSuchCtrlr", "HeartbeatInterval", "1"),
                    _set("OCPPCommCtrlr", "NoSuchVariable", "1"),
                    _set("OCPPCommCtrlr", "HeartbeatInterval", "-5"),
                    _set("OCPPCommCtrlr", "HeartbeatInterval", "5", attribute_type="Target"),
                ]
            )
            assert _statuses(res, "set_variable_result") == [
                "Accepted",
                "Rejected",
                "UnknownComponent",
                "UnknownVariable",
                "Rejected",
                "NotSupportedAttributeType",
            ]
            assert res.set_variable_result[1]["attribute_status_info"]["reason_code"] == "ReadOnly"
            assert cp.heartbeat_interval_s == 42.0
            res = await h.get_variables(
                [
                    _get("OCPPCommCtrlr", "HeartbeatInterval"),
                    _get("ChargingStation", "Model"),
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "attribute_type": "MaxSet",
                    },
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "attribute_type": "Target",
                    },
                    {"component": {"name": "EVSE", "evse": {"id": 9}}, "variable": {"name": "Power"}},
                    _get("SecurityCtrlr", "BasicAuthPassword"),
                    _get("TxCtrlr", "NoSuchVariable"),
                ]
            )
            assert _statuses(res, "get_variable_result") == [
                "Accepted",
                "Accepted",
                "Accepted",
                "NotSupportedAttributeType",
                "UnknownComponent",
                "Rejected",
                "UnknownVariable",
            ]
            values = [r.get("attribute_value") for r in res.get_variable_result]
            assert values[:3] == ["42", "virtual", "22000"]
            assert values[5] is None
            assert fleet.log.summary.violation_count == 0

    arun(scenario())


def test_reboot_required_takes_effect_after_reset(arun: Any, tmp_path: Path) -> None:
    """A RebootRequired value is read as before until a Reset; after the reboot it is in effect."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path, boot_time_s=10) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            priority = _get("OCPPCommCtrlr", "NetworkConfigurationPriority")
            res = await h.set_variables([_set("OCPPCommCtrlr", "NetworkConfigurationPriority", "1,0")])
            assert _statuses(res, "set_variable_result") == ["RebootRequired"]
            assert (await h.get_variables([priority])).get_variable_result[0]["attribute_value"] == "0"
            assert (await h.reset("Immediate")).status == "Accepted"
            rec = csms.records201
            await rec.wait_for(lambda: len(rec.boots) == 2, 10)
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            assert (await h.get_variables([priority])).get_variable_result[0]["attribute_value"] == "1,0"

    arun(scenario())


def test_too_many_items_is_a_call_error_and_the_station_goes_on(arun: Any, tmp_path: Path) -> None:
    """More getVariableData than ItemsPerMessage[GetVariables] gets OccurrenceConstraintViolation."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1", variables={"DeviceDataCtrlr.ItemsPerMessage[GetVariables]": "2"})
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            with pytest.raises(OccurrenceConstraintViolationError):
                await h.get_variables([_get("OCPPCommCtrlr", "HeartbeatInterval")] * 3)
            assert fleet.log.summary.violation_count == 1
            res = await h.get_variables([_get("OCPPCommCtrlr", "HeartbeatInterval")] * 2)
            assert _statuses(res, "get_variable_result") == ["Accepted", "Accepted"]

    arun(scenario())


def test_get_base_report_pages_notify_report(arun: Any, tmp_path: Path) -> None:
    """GetBaseReport answers Accepted and sends the report in NotifyReport pages of ItemsPerMessage[GetReport]."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add(
                "CS1",
                ocpp="2.0.1",
                connectors=2,
                variables={"DeviceDataCtrlr.ItemsPerMessage[GetReport]": "10"},
            )
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            rec = csms.records201
            assert (await h.get_base_report(5, "FullInventory")).status == "Accepted"
            pages_n = math.ceil(len(cp.dm) / 10)
            await rec.wait_for(lambda: len(rec.reports.get(("CS1", 5), [])) == pages_n, 10)
            pages = rec.reports[("CS1", 5)]
            assert [p["seqNo"] for p in pages] == list(range(pages_n))
            assert [p.get("tbc", False) for p in pages] == [True] * (pages_n - 1) + [False]
            assert all(len(p["reportData"]) <= 10 for p in pages)
            rows = [r for p in pages for r in p["reportData"]]
            assert len(rows) == len(cp.dm)
            password = next(r for r in rows if r["variable"]["name"] == "BasicAuthPassword")
            assert "value" not in password["variableAttribute"][0]
            assert password["variableAttribute"][0]["mutability"] == "WriteOnly"
            connectors = [r for r in rows if r["component"]["name"] == "Connector"]
            assert {r["component"]["evse"]["id"] for r in connectors} == {1, 2}
            assert (await h.get_base_report(6, "ConfigurationInventory")).status == "Accepted"
            await rec.wait_for(lambda: any(not p.get("tbc") for p in rec.reports.get(("CS1", 6), [])), 10)
            config_rows = [r for p in rec.reports[("CS1", 6)] for r in p["reportData"]]
            assert 0 < len(config_rows) < len(rows)
            assert all(any(a["mutability"] != "ReadOnly" for a in r["variableAttribute"]) for r in config_rows)

    arun(scenario())


def test_pending_and_rejected_registration(arun: Any, tmp_path: Path) -> None:
    """Pending: the CSMS may read variables, then a triggered BootNotification is Accepted; Rejected: retry later."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            rec = csms.records201
            rec.registration, rec.boot_interval_s = "Pending", 3600
            cp = await fleet.add("CS1", ocpp="2.0.1")
            h = await csms.wait_connected("CS1")
            await rec.wait_for(lambda: len(rec.boots) == 1, 10)
            res = await h.get_variables([_get("ChargingStation", "SerialNumber")])
            assert res.get_variable_result[0]["attribute_value"] == "CS1"
            assert not cp.online.is_set()
            rec.registration, rec.boot_interval_s = "Accepted", 300
            assert (await h.trigger_message("BootNotification")).status == "Accepted"
            await fleet.wait_booted(cp, 10)
            assert rec.boots[1][1]["reason"] == "Triggered"
            assert (await h.trigger_message("BootNotification")).status == "Rejected"  # already accepted
            # A Rejected station retries after the interval the CSMS gave.
            rec.registration, rec.boot_interval_s = "Rejected", 60
            cp2 = await fleet.add("CS2", ocpp="2.0.1")
            await rec.wait_for(lambda: sum(c == "CS2" for c, _ in rec.boots) >= 2, 10)
            assert not cp2.online.is_set()
            rec.registration = "Accepted"
            await fleet.wait_booted(cp2, 10)

    arun(scenario())


def test_basic_auth_password_rotation(arun: Any, tmp_path: Path) -> None:
    """Setting SecurityCtrlr.BasicAuthPassword makes the station reconnect with it; it never reaches the log."""

    async def scenario() -> None:
        old, new = "old-password-0123456", "new-password-9876543"
        passwords = {"CS1": old}
        log_path = tmp_path / "frames.jsonl"
        async with (
            Csms(passwords=passwords) as csms,
            ChargerSet(
                csms.url,
                speed=SPEED,
                state_dir=tmp_path,
                log_path=log_path,
                security=SecurityConfig(profile=1, password_env="UNUSED"),
                password=old,
            ) as fleet,
        ):
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            passwords["CS1"] = new
            res = await h.set_variables([_set("SecurityCtrlr", "BasicAuthPassword", new)])
            assert _statuses(res, "set_variable_result") == ["Accepted"]
            old_handler = h
            await csms.records201.wait_for(lambda: csms.handlers.get("CS1") not in (None, old_handler), 10)
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            assert cp.password == new
            assert fleet.log.summary.connects == 2
            assert len(csms.records201.boots) == 1  # a reconnect is not a boot
            assert (await h.get_variables([_get("SecurityCtrlr", "BasicAuthPassword")])).get_variable_result[0][
                "attribute_status"
            ] == "Rejected"
        text = log_path.read_text(encoding="utf-8")
        assert new not in text
        assert old not in text

    arun(scenario())
