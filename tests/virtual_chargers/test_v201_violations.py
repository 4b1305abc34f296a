"""A 2.0.1 CSMS that breaks the protocol gets the right CallError, is recorded, and the station keeps running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

SPEED = 600.0

# (frame the CSMS sends, message id of the answer, error code the station must answer)
MALFORMED = [
    ("this is not JSON", "-1", "RpcFrameworkError"),
    ('{"a": 1}', "-1", "RpcFrameworkError"),
    ('[2, 17, "TriggerMessage", {"requestedMessage": "Heartbeat"}]', "-1", "RpcFrameworkError"),
    ('[2, "m-short", "TriggerMessage"]', "m-short", "RpcFrameworkError"),
    ('[7, "m-type", "TriggerMessage", {}]', "m-type", "MessageTypeNotSupported"),
    ('[2, "m-enum", "TriggerMessage", {"requestedMessage": "Coffee"}]', "m-enum", "PropertyConstraintViolation"),
    ('[2, "m-type2", "TriggerMessage", {"requestedMessage": 5}]', "m-type2", "TypeConstraintViolation"),
    ('[2, "m-missing", "Reset", {}]', "m-missing", "OccurrenceConstraintViolation"),
    ('[2, "m-extra", "TriggerMessage", {"requestedMessage": "Heartbeat", "x": 1}]', "m-extra", "ProtocolError"),
    ('[2, "m-16", "RemoteStartTransaction", {"idTag": "A"}]', "m-16", "NotImplemented"),
    ('[2, "m-cost", "CostUpdated", {"totalCost": 1.5, "transactionId": "t"}]', "m-cost", "NotSupported"),
]


@pytest.mark.parametrize(("frame", "reply_id", "code"), MALFORMED, ids=[m[2] + ":" + m[1] for m in MALFORMED])
def test_malformed_frame_gets_call_error(arun: Any, tmp_path: Path, frame: str, reply_id: str, code: str) -> None:
    """Each malformed or unexpected frame is answered with its 2.0.1 CallError; the station answers on afterwards."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CS1", ocpp="2.0.1")
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            answer = await h.send_raw(frame, reply_id=reply_id)
            assert answer is not None
            assert answer[0] == 4
            assert answer[2] == code, answer
            assert isinstance(answer[3], str)
            assert isinstance(answer[4], dict)
            expected_violations = 0 if code == "NotSupported" else 1  # a known action we lack is not the CSMS's fault
            assert fleet.log.summary.violation_count == expected_violations
            assert (await h.trigger_message("Heartbeat")).status == "Accepted"
            assert cp.online.is_set()
            assert cp.errors == []

    arun(scenario())


def test_unexpected_and_malformed_answers_are_recorded_and_survived(arun: Any, tmp_path: Path) -> None:
    """An answer to nothing, a TransactionEvent answer that breaks the schema, a CallError: recorded, retried, done."""

    async def scenario() -> None:
        async with Csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            rec = csms.records201
            cp = await fleet.add(
                "CS1",
                ocpp="2.0.1",
                variables={"OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]": "1"},
            )
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            await h.send_raw('[3, "never-asked", {}]')
            rec.scripted["TransactionEvent"] = [
                {"idTokenInfo": {"status": "Bogus"}},  # breaks the schema
                '[4, "{id}", "InternalError", "try again", {}]',  # a CallError: a failed attempt
            ]
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            started = rec.tx_events[0]
            assert started.event_type == "Started"
            assert started.seq_no == 0
            await cp.unplug(1)
            await rec.wait_for(lambda: any(e.event_type == "Ended" for e in rec.tx_events), 10)
            await fleet.wait_queues_empty(10)
            assert [e.seq_no for e in rec.tx_events] == list(range(len(rec.tx_events)))
            kinds = [v.kind for v in fleet.log.summary.violations]
            assert "unexpected response" in kinds
            assert "invalid TransactionEvent response" in kinds
            assert fleet.log.summary.call_errors_received["InternalError"] == 1
            assert cp.errors == []
            assert cp.online.is_set()

    arun(scenario())


def test_frames_we_send_follow_the_schemas(arun: Any, tmp_path: Path) -> None:
    """Every request the station sends in a busy session validates against the official 2.0.1 schemas."""

    async def scenario() -> None:
        log_path = tmp_path / "frames.jsonl"
        async with (
            Csms() as csms,
            ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path, log_path=log_path) as fleet,
        ):
            cp = await fleet.add(
                "CS1",
                ocpp="2.0.1",
                dc=True,
                power_kw=150.0,
                variables={
                    "SampledDataCtrlr.TxUpdatedInterval": "60",
                    "SampledDataCtrlr.TxUpdatedMeasurands": "Energy.Active.Import.Register,Power.Active.Import,"
                    "Current.Import,Voltage,SoC,Power.Offered,Current.Offered",
                },
            )
            await fleet.wait_booted(cp)
            h = await csms.wait_connected("CS1")
            rec = csms.records201
            await cp.plug_in(1, iso15118=True, departure_s=3600)
            await rec.wait_for(lambda: len(rec.tx_events) >= 3, 10)
            assert (await h.get_base_report(1, "SummaryInventory")).status == "Accepted"
            for message in (
                "Heartbeat",
                "StatusNotification",
                "MeterValues",
                "TransactionEvent",
                "FirmwareStatusNotification",
            ):
                assert (await h.trigger_message(message)).status == "Accepted"
            await rec.wait_for(lambda: len(rec.meter_values) == 1, 10)
            await cp.unplug(1)
            await rec.wait_for(lambda: any(e.event_type == "Ended" for e in rec.tx_events), 10)
            await fleet.wait_queues_empty(10)
        from ocpp.messages import Call, _validate_payload

        sent = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
        calls = [line["msg"] for line in sent if line["dir"] == "tx" and line["msg"][0] == 2]
        assert {c[2] for c in calls} >= {
            "BootNotification",
            "StatusNotification",
            "Authorize",
            "TransactionEvent",
            "NotifyEVChargingNeeds",
            "NotifyReport",
            "Heartbeat",
            "MeterValues",
            "FirmwareStatusNotification",
        }
        for c in calls:
            _validate_payload(Call(c[1], c[2], c[3]), "2.0.1")  # raises on a schema breach

    arun(scenario())


def test_transaction_event_retried_per_message_attempts_then_dropped(arun: Any, tmp_path: Path) -> None:
    """A refused TransactionEvent is tried MessageAttempts times, waiting interval x attempt, then dropped."""

    async def scenario() -> None:
        seen: list[tuple[int, float]] = []  # (seqNo, wall time) of every TransactionEvent the CSMS received

        def on_frame(station: str, direction: str, raw: str) -> None:
            frame = json.loads(raw)
            if direction == "rx" and frame[0] == 2 and frame[2] == "TransactionEvent":
                seen.append((frame[3]["seqNo"], fleet.clock.t_s()))

        async with (
            Csms(on_frame=on_frame) as csms,
            ChargerSet(csms.url, speed=120.0, state_dir=tmp_path) as fleet,  # slow enough to time the waits
        ):
            rec = csms.records201
            cp = await fleet.add(
                "CS1",
                ocpp="2.0.1",
                variables={
                    "OCPPCommCtrlr.MessageAttempts[TransactionEvent]": "3",
                    "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]": "30",
                },
            )
            await fleet.wait_booted(cp)
            rec.scripted["TransactionEvent"] = ['[4, "{id}", "InternalError", "busy", {}]'] * 3
            await cp.plug_in(1)
            await rec.wait_for(lambda: len(rec.tx_events) >= 1, 10)
            assert [s for s, _ in seen[:4]] == [0, 0, 0, 1]  # Started three times, then given up
            waits_s = [b - a for (_, a), (_, b) in zip(seen[:2], seen[1:3], strict=True)]
            assert 30 <= waits_s[0] < 60  # interval x 1
            assert 60 <= waits_s[1] < 90  # interval x 2
            assert fleet.log.summary.queued_dropped == 1
            assert fleet.log.summary.call_errors_received["InternalError"] == 3
            assert rec.tx_events[0].seq_no == 1

    arun(scenario())
