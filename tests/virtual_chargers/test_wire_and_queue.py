"""The fast paths keep the contract: schema checks as the `ocpp` library's, and queued messages on disk before sent."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, MessageType, _validate_payload
from ocpp.v16 import call
from ocpp.v201 import call as call201

from virtual_chargers.txqueue import TxStore
from virtual_chargers.wire import snake_keys, to_wire, validate

CASES_16 = [  # (action, payload, the OCPP-J 1.6 code for the breach or None)
    ("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}, None),
    ("BootNotification", {"chargePointVendor": "v"}, "ProtocolError"),  # incomplete
    ("BootNotification", {"chargePointVendor": "v", "chargePointModel": 5}, "TypeConstraintViolation"),
    ("BootNotification", {"chargePointVendor": "v" * 21, "chargePointModel": "m"}, "TypeConstraintViolation"),
    ("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m", "x": 1}, "FormationViolation"),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Sideways"},
        "PropertyConstraintViolation",
    ),
    ("Heartbeat", {}, None),
    ("StopTransaction", {"meterStop": 5, "timestamp": "not a time", "transactionId": 3}, None),  # no format checks
]


@pytest.mark.parametrize(("action", "payload", "code"), CASES_16)
def test_validate_rejects_what_the_library_rejects_with_the_spec_code(
    action: str, payload: dict[str, Any], code: str | None
) -> None:
    """Precompiled checks accept and reject the same 1.6 requests as the library, with OCPP-J's code for each."""
    try:
        _validate_payload(Call("1", action, payload), "1.6")
        library_rejects = False
    except OCPPError:
        library_rejects = True
    assert library_rejects is (code is not None)
    if code is None:
        assert validate("1.6", MessageType.Call, action, payload) is payload
    else:
        with pytest.raises(OCPPError) as caught:
            validate("1.6", MessageType.Call, action, payload)
        assert caught.value.code == code


def test_responses_and_201_and_multiple_of_schemas() -> None:
    """Responses use the Response schema; 2.0.1 the Request one; 1.6 multipleOf schemas go to the library."""
    ok = {"currentTime": "2026-01-01T00:00:00Z", "interval": 300, "status": "Accepted"}
    validate("1.6", MessageType.CallResult, "BootNotification", ok)
    with pytest.raises(OCPPError, match="invalid value"):
        validate("1.6", MessageType.CallResult, "BootNotification", {**ok, "status": "Maybe"})
    validate("2.0.1", MessageType.Call, "Heartbeat", {})
    with pytest.raises(OCPPError, match="data type"):  # the library checks 2.0.1 with draft 4 rules too
        validate("2.0.1", MessageType.CallResult, "BootNotification", {**ok, "interval": 1.0})
    with pytest.raises(OCPPError, match="occurrence"):
        validate("2.0.1", MessageType.Call, "BootNotification", {"reason": "PowerUp"})
    schedule = {
        "status": "Accepted",
        "connectorId": 1,
        "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}]},
    }
    sent = validate("1.6", MessageType.CallResult, "GetCompositeSchedule", schedule)
    assert '"limit":21.4' in CallResult("1", sent, "GetCompositeSchedule").to_json()  # one decimal, as the library
    too_precise = {**schedule, "chargingSchedule": {**schedule["chargingSchedule"]}}
    too_precise["chargingSchedule"]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 21.45}]
    with pytest.raises(OCPPError) as caught:  # multipleOf 0.1: a value the schema does not allow
        validate("1.6", MessageType.CallResult, "GetCompositeSchedule", too_precise)
    assert caught.value.code == "PropertyConstraintViolation"


def test_to_wire_and_snake_keys_match_the_library() -> None:
    """Payload dataclasses become the library's camelCase JSON (Nones dropped); answers come back snake_case."""
    from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case

    payloads = [
        call.StartTransaction(connector_id=1, id_tag="A", meter_start=0, timestamp="t", reservation_id=None),
        call.MeterValues(
            connector_id=1,
            meter_value=[{"timestamp": "t", "sampledValue": [{"value": "1", "measurand": "SoC", "unit": None}]}],
        ),
        call201.NotifyEVChargingNeeds(
            evse_id=1, charging_needs={"requested_energy_transfer": "DC", "dc_charging_parameters": {"ev_max_soc": 1}}
        ),
    ]
    for p in payloads:
        assert to_wire(p) == remove_nones(snake_to_camel_case(serialize_as_dict(p)))
    answer = {"idTagInfo": {"status": "Accepted", "parentIdTag": "P"}, "transactionId": 4, "list": [{"evMaxSoC": 1}]}
    assert snake_keys(answer) == camel_to_snake_case(answer)


def test_queued_message_is_sendable_only_once_committed_and_survives_a_crash(tmp_path: Path) -> None:
    """A put is invisible to peek until its batch is on disk; a committed message is in the file without close()."""
    path = tmp_path / "q.sqlite"

    async def scenario() -> TxStore:
        store = TxStore(path, commit_window_s=0.05)
        q = store.queue("CP1")
        seq = q.put("StartTransaction", {"connectorId": 1}, 1.0, "tx1", offline=False)
        assert q.peek() is None  # not on disk yet: must not be sent
        await asyncio.wait_for(q.changed.wait(), 5)
        msg = q.peek()
        assert msg is not None
        assert msg.seq == seq
        # "crash": another connection reads the file while this store is still open and never closed
        other = sqlite3.connect(str(path))
        assert other.execute("SELECT action, payload FROM queue").fetchall() == [
            ("StartTransaction", '{"connectorId":1}')
        ]
        other.close()
        q.done(seq)
        q.put("MeterValues", {"connectorId": 1}, 2.0, "tx1", offline=True)
        return store

    store = asyncio.run(scenario())
    store.close()  # commits what is pending
    again = TxStore(path)
    q = again.queue("CP1")
    assert [m.action for m in q.all()] == ["MeterValues"]
    peeked = q.peek()
    assert peeked is not None
    assert peeked.offline
    again.close()
    assert store.commits >= 2
