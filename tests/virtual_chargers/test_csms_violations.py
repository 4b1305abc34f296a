"""A CSMS that breaks the protocol gets the right CallError, is recorded as a violation, and the charger runs on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

CASES = [  # (frame, id of the answer or None: OCPP-J 1.6 gives no CallError for it, code or "unanswerable")
    ("not json at all", None, "unanswerable"),
    ('[2, "u1", "ChangeConfiguration", {"key": "HeartbeatInterval"}]', "u1", "ProtocolError"),
    ('[2, "u2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": 5}]', "u2", "TypeConstraintViolation"),
    ('[2, "u3", "Reset", {"type": "Sideways"}]', "u3", "PropertyConstraintViolation"),
    ('[2, "u4", "Reset", {"type": "Soft", "extra": 1}]', "u4", "FormationViolation"),
    ('[2, "u5", "FlyToTheMoon", {}]', "u5", "NotImplemented"),
    ('[7, "u6", "Reset", {}]', None, "unanswerable"),
    ('{"type": 2}', None, "unanswerable"),
]


def test_malformed_frames_get_call_errors_and_the_charger_survives(arun: Any, tmp_path: Path) -> None:
    """Each bad frame gets its CallError code; afterwards a normal transaction still works."""

    async def scenario() -> None:
        log_path = tmp_path / "frames.jsonl"
        async with Csms() as csms, ChargerSet(csms.url, speed=600.0, state_dir=tmp_path, log_path=log_path) as fleet:
            cp = await fleet.add("CP1")
            await fleet.wait_booted(cp)
            handler = await csms.wait_connected("CP1")
            for text, uid, code in CASES:
                if uid is not None:
                    reply = await handler.send_raw(text, reply_id=uid, timeout_s=5)
                    assert reply is not None
                    assert reply[0] == 4, text
                    assert reply[2] == code, text
                else:
                    await handler.send_raw(text)
            # an answer to nothing we asked is a violation too
            await handler.send_raw('[3, "nobody-asked", {}]')
            await cp.plug_in(1)
            rec = csms.records16
            await rec.wait_for(lambda: len(rec.starts) == 1, 10)
            await cp.unplug(1)
            await rec.wait_for(lambda: len(rec.stops) == 1, 10)
            summary = fleet.log.summary
            assert cp.online.is_set()
            assert cp.errors == []
        kinds = [v.kind for v in summary.violations]
        for _, _, code in CASES:
            assert code in kinds
        assert "unexpected response" in kinds
        assert summary.violation_count == len(CASES) + 1
        assert sum(summary.call_errors_sent.values()) == sum(1 for _, uid, _ in CASES if uid is not None)
        assert summary.unanswerable == sum(1 for _, uid, _ in CASES if uid is None)
        assert "FormationViolation" in log_path.read_text()

    arun(scenario())


def test_invalid_response_from_csms_is_a_violation(arun: Any, tmp_path: Path) -> None:
    """A BootNotification answer that breaks the schema is recorded and the charger retries until a good one."""
    accepted = '{"currentTime": "2026-01-01T00:00:00Z", "interval": 300, "status": "Accepted"}'
    answers = [accepted.replace("Accepted", "Maybe")]

    async def raw_csms(ws: ServerConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue
            if frame[2] == "BootNotification":
                body = (
                    answers.pop(0)
                    if answers
                    else '{"currentTime": "2026-01-01T00:00:00Z", "interval": 300, "status": "Accepted"}'
                )
            else:
                body = "{}"
            await ws.send(f'[3, "{frame[1]}", {body}]')

    async def scenario() -> None:
        async with serve(raw_csms, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")]) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with ChargerSet(
                f"ws://127.0.0.1:{port}", speed=600.0, state_dir=tmp_path, backoff_base_s=10, backoff_max_s=20
            ) as fleet:
                cp = await fleet.add("CP1")
                await fleet.wait_booted(cp, 10)
                kinds = {v.kind for v in fleet.log.summary.violations}
                assert cp.boot_count == 1
        assert "invalid BootNotification response" in kinds

    arun(scenario())
