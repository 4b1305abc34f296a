"""Every OCPP-J CallError code of 1.6 and 2.0.1, checked against its definition, with a raw-frame CSMS.

The CSMS here is raw frames over `websockets` (`conftest.RawCsms`), so it can send what a schema-bound
library would refuse, as a third-party CSMS might. A frame OCPP-J gives no CallError for is recorded as
unanswerable; every malformed frame counts as a CSMS violation, and the charger runs on.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16.enums import Action

from virtual_chargers.base import ChargerSpec, CsmsCallError
from virtual_chargers.rpc import CALL_ERROR_CODES, RpcError, call_error_code
from virtual_chargers.testing import ChargerSet
from virtual_chargers.v16 import V16Charger

BOOT16 = {"chargePointVendor": "x", "chargePointModel": "y"}

# (frame, id of the answer or None when OCPP-J gives none, the code OCPP-J defines for it or None)
FRAMES = {
    "1.6": [
        ("not json at all", None, None),  # no message id to answer to
        ('{"type": 2}', None, None),
        ('[2, 17, "ClearCache", {}]', None, None),  # the message id is not a string
        ('[7, "t7", "ClearCache", {}]', None, None),  # 1.6: an unknown message type "SHALL be ignored"
        ('["2", "ts", "ClearCache", {}]', None, None),
        ("[3]", None, None),  # a malformed CALLRESULT / CALLERROR is never answered
        ('[4, "e1", 5]', None, None),
        ('[2, "a1", ["ClearCache"], {}]', "a1", "FormationViolation"),  # the PDU of a CALL
        ('[2, "a2", 5, {}]', "a2", "FormationViolation"),
        ('[2, "a3", "ClearCache", {}, {}]', "a3", "FormationViolation"),
        ('[2, "a4", "ClearCache"]', "a4", "ProtocolError"),  # payload incomplete (missing)
        ('[2, "a5", "ClearCache", []]', "a5", "FormationViolation"),  # payload not an object
        ('[2, "u1", "ChangeConfiguration", {"key": "HeartbeatInterval"}]', "u1", "ProtocolError"),
        ('[2, "u2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": 5}]', "u2", "TypeConstraintViolation"),
        ('[2, "u3", "Reset", {"type": "Sideways"}]', "u3", "PropertyConstraintViolation"),
        ('[2, "u4", "Reset", {"type": "Soft", "extra": 1}]', "u4", "FormationViolation"),
        ('[2, "u5", "FlyToTheMoon", {}]', "u5", "NotImplemented"),  # not known
        (f'[2, "u6", "BootNotification", {json.dumps(BOOT16)}]', "u6", "NotSupported"),  # known, not supported
    ],
    "2.0.1": [
        ("not json at all", "-1", "RpcFrameworkError"),
        ('{"type": 2}', "-1", "RpcFrameworkError"),
        ('[2, 17, "ClearCache", {}]', "-1", "RpcFrameworkError"),
        ('[7, "t7", "ClearCache", {}]', "t7", "MessageTypeNotSupported"),
        ('["2", "ts", "ClearCache", {}]', "ts", "RpcFrameworkError"),
        ("[3]", None, None),
        ('[4, "e1", 5]', None, None),
        ('[2, "a1", ["ClearCache"], {}]', "a1", "RpcFrameworkError"),
        ('[2, "a2", 5, {}]', "a2", "RpcFrameworkError"),
        ('[2, "a3", "Reset", {"type": "Immediate"}, {}]', "a3", "RpcFrameworkError"),
        ('[2, "a4", "Reset"]', "a4", "RpcFrameworkError"),
        ('[2, "a5", "Reset", []]', "a5", "FormatViolation"),  # payload syntactically incorrect
        ('[2, "m1", "Reset", {}]', "m1", "OccurrenceConstraintViolation"),  # required field missing
        ('[2, "m2", "GetVariables", {"getVariableData": []}]', "m2", "OccurrenceConstraintViolation"),  # minItems
        ('[2, "m3", "TriggerMessage", {"requestedMessage": 5}]', "m3", "TypeConstraintViolation"),
        ('[2, "m4", "TriggerMessage", {"requestedMessage": "Coffee"}]', "m4", "PropertyConstraintViolation"),
        ('[2, "m5", "TriggerMessage", {"requestedMessage": "Heartbeat", "x": 1}]', "m5", "ProtocolError"),  # PDU
        ('[2, "m6", "RemoteStartTransaction", {"idTag": "A"}]', "m6", "NotImplemented"),  # a 1.6 name: not known
        ('[2, "m7", "CostUpdated", {"totalCost": 1.5, "transactionId": "t"}]', "m7", "NotSupported"),
    ],
}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_malformed_frame_gets_its_call_error_or_is_recorded_unanswerable(
    arun: Any, raw_csms: Any, tmp_path: Path, version: str
) -> None:
    """Each frame gets the code OCPP-J defines (with its definition as description) or none; all are counted."""
    cases = FRAMES[version]

    async def scenario() -> Any:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=600.0, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", ocpp=version)
            await fleet.wait_booted(cp)
            for text, reply_id, code in cases:
                if reply_id is None:
                    before = len(csms.received)
                    await csms.send("/CP1", text)
                    await asyncio.sleep(0.05)
                    assert [f for _, f in csms.received[before:] if f[0] == 4] == [], text
                    continue
                answer = await csms.send("/CP1", text, reply_id=reply_id)
                assert answer[0] == 4, text
                assert answer[2] == code, (text, answer)
                assert answer[3] == CALL_ERROR_CODES[version][code], text
                assert isinstance(answer[4], dict), text
            # the charger still answers a well-formed request
            trigger = '[2, "ok", "TriggerMessage", {"requestedMessage": "Heartbeat"}]'
            answer = await csms.send("/CP1", trigger, reply_id="ok")
            assert answer[0] == 3
            assert answer[2]["status"] == "Accepted"
            assert cp.online.is_set()
            assert cp.errors == []
            return fleet.log.summary

    summary = arun(scenario())
    unanswerable = sum(1 for _, rid, _ in cases if rid is None)
    answered = [code for _, rid, code in cases if rid is not None]
    assert summary.unanswerable == unanswerable
    assert dict(summary.call_errors_sent) == {c: answered.count(c) for c in set(answered)}
    # every malformed frame is the CSMS's fault; asking for a known action this side does not support is not
    assert summary.violation_count == unanswerable + sum(1 for c in answered if c != "NotSupported")
    assert summary.to_dict()["unanswerable_frames"] == unanswerable


class _FailingClearCache(V16Charger):  # type: ignore[misc]
    @on(Action.clear_cache)
    def on_clear_cache(self) -> Any:
        raise RuntimeError("the cache's storage failed")


def test_a_failing_handler_answers_internal_error_and_is_not_a_violation(
    arun: Any, raw_csms: Any, tmp_path: Path
) -> None:
    """InternalError: the receiver could not process the action; the CSMS did nothing wrong."""

    async def scenario() -> Any:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=600.0, state_dir=tmp_path) as fleet:
            cp = _FailingClearCache(ChargerSpec("CP1"), fleet.ctx)
            fleet.chargers["CP1"] = cp
            fleet.start(cp)
            await fleet.wait_booted(cp)
            answer = await csms.send("/CP1", '[2, "c1", "ClearCache", {}]', reply_id="c1")
            return answer, fleet.log.summary

    answer, summary = arun(scenario())
    assert answer[2] == "InternalError"
    assert answer[3] == CALL_ERROR_CODES["1.6"]["InternalError"]
    assert summary.violation_count == 0


@pytest.mark.parametrize(("version", "code"), [(v, c) for v in CALL_ERROR_CODES for c in CALL_ERROR_CODES[v]])
def test_every_code_the_csms_answers_reaches_the_caller_as_that_code(
    arun: Any, raw_csms: Any, tmp_path: Path, version: str, code: str
) -> None:
    """A CallError with any code of the version is the request's failure with that code, counted, no violation."""

    async def scenario() -> Any:
        async with (
            raw_csms({"DataTransfer": lambda _: None}) as csms,
            ChargerSet(csms.url, speed=600.0, state_dir=tmp_path) as fleet,
        ):
            cp = await fleet.add("CP1", ocpp=version)
            await fleet.wait_booted(cp)

            async def answer_with_error() -> None:
                await csms.wait_until(lambda: bool(csms.calls("DataTransfer")))
                uid = next(f[1] for _, f in csms.received if f[0] == 2 and f[2] == "DataTransfer")
                await csms.send("/CP1", json.dumps([4, uid, code, "as the CSMS says", {}]))

            answering = asyncio.ensure_future(answer_with_error())
            with pytest.raises(CsmsCallError) as caught:
                await cp.request_wire("DataTransfer", {"vendorId": "x"})
            await answering
            return caught.value, fleet.log.summary

    error, summary = arun(scenario())
    assert error.error.code == code
    assert error.error.description == "as the CSMS says"
    assert summary.call_errors_received[code] == 1
    assert summary.violation_count == 0


def test_a_call_error_code_the_version_does_not_define_is_a_violation(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """2.0.1's RpcFrameworkError is no 1.6 code: the request fails as GenericError and the CSMS is recorded."""

    async def scenario() -> Any:
        async with (
            raw_csms({"DataTransfer": lambda _: None}) as csms,
            ChargerSet(csms.url, speed=600.0, state_dir=tmp_path) as fleet,
        ):
            cp = await fleet.add("CP1")
            await fleet.wait_booted(cp)

            async def answer_with_error() -> None:
                await csms.wait_until(lambda: bool(csms.calls("DataTransfer")))
                uid = next(f[1] for _, f in csms.received if f[0] == 2 and f[2] == "DataTransfer")
                await csms.send("/CP1", json.dumps([4, uid, "RpcFrameworkError", "", {}]))

            answering = asyncio.ensure_future(answer_with_error())
            with pytest.raises(CsmsCallError) as caught:
                await cp.request_wire("DataTransfer", {"vendorId": "x"})
            await answering
            return caught.value, fleet.log.summary

    error, summary = arun(scenario())
    assert error.error.code == "GenericError"
    assert [v.kind for v in summary.violations] == ["unknown CallError code"]


def test_error_codes_map_to_the_version_spelling_and_generic_error_covers_the_rest() -> None:
    """GenericError: any error no other code covers; the two codes spelt differently per version are renamed."""
    rpc_only_201 = RpcError("2.0.1", "RpcFrameworkError", "x")
    assert call_error_code("1.6", rpc_only_201)[0] == "GenericError"
    assert call_error_code("2.0.1", rpc_only_201)[0] == "RpcFrameworkError"
    assert call_error_code("1.6", RpcError("2.0.1", "FormatViolation", "x"))[0] == "FormationViolation"
    assert call_error_code("2.0.1", RpcError("1.6", "OccurenceConstraintViolation", "x"))[0] == (
        "OccurrenceConstraintViolation"
    )
    assert call_error_code("1.6", ValueError("boom"))[0] == "InternalError"
    with pytest.raises(ValueError, match="not an OCPP 1.6 CallError code"):
        RpcError("1.6", "MessageTypeNotSupported", "x")
    assert isinstance(rpc_only_201, OCPPError)
