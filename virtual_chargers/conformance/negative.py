"""Negative cases, for both OCPP versions: what a CSMS does with frames that break the protocol.

Each case sends one kind of bad frame from a booted test charger and checks the answer the OCPP-J
specification asks for (OCPP-J 1.6 §4, OCPP 2.0.1 part 4 §4): the right CallError code, the connection
kept (or closed where the specification allows it), and the CSMS still serving afterwards. What the
CSMS actually answered is recorded in ``observed`` whatever the verdict.
"""

from __future__ import annotations

import json
from typing import Any

from virtual_chargers.conformance.model import Case, CaseFailed, Kind, NotApplicable
from virtual_chargers.conformance.probe import ConnectError, Probe, Reply
from virtual_chargers.conformance.runner import CaseContext

__all__ = ["PAYLOAD_ERROR_CODES", "negative_cases"]

NEG = "Negative"
# CallError codes that name a payload problem (1.6 spells one "Occurence", 2.0.1 "Occurrence"; 2.0.1 renamed
# FormationViolation to FormatViolation).
PAYLOAD_ERROR_CODES = frozenset(
    {
        "FormationViolation",
        "FormatViolation",
        "ProtocolError",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "TypeConstraintViolation",
    }
)


async def _kept(ctx: CaseContext, probe: Probe, after: str) -> None:
    serving = await ctx.still_serves(probe)
    ctx.observe(f"connection {'kept' if serving else 'closed or unresponsive'} after {after}")
    ctx.check(serving, f"after {after} the CSMS closed the connection or stopped answering Heartbeat")


def _payload_error(ctx: CaseContext, reply: Reply, what: str, best: str) -> None:
    ctx.observe(f"{what}: {reply}")
    if reply.kind != "error":
        raise CaseFailed(f"{what}: expected a CallError ({best}), got {reply}")
    ctx.check(
        reply.error_code in PAYLOAD_ERROR_CODES,
        f"{what}: CallError {reply.error_code} does not name a payload problem (expected {best})",
    )
    if reply.error_code != best:
        ctx.observe(f"the most specific code would be {best}")


def negative_cases(ocpp: str) -> list[Case]:
    """The negative cases of one OCPP version."""
    v16 = ocpp == "1.6"
    status_action = "StatusNotification"
    tx_action = "StopTransaction" if v16 else "TransactionEvent"
    cases: list[Case] = []

    def add(id_: str, title: str, spec: str, checks: str, csms_action: str | None = None, manual: str = "") -> Any:
        def wrap(fn: Any) -> Any:
            cases.append(Case(id_, ocpp, NEG, title, spec, checks, Kind.NEGATIVE, fn, csms_action, manual))
            return fn

        return wrap

    @add(
        "NEG_001",
        "Request missing a required field",
        "OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.3: payload violates the occurrence constraints",
        f"A {status_action} without its status field is answered with a payload CallError "
        "(OccurrenceConstraintViolation is the exact code; other payload codes are accepted and noted) and the "
        "connection is kept.",
    )
    async def missing_field(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        payload = ctx.status_payload()
        payload.pop("status" if v16 else "connectorStatus")
        reply = await probe.call(status_action, payload, check_schema=False)
        best = "OccurenceConstraintViolation" if v16 else "OccurrenceConstraintViolation"
        _payload_error(ctx, reply, f"{status_action} without status", best)
        await _kept(ctx, probe, "the invalid request")

    @add(
        "NEG_002",
        "Field of the wrong type",
        "OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.3: TypeConstraintViolation",
        f"A {status_action} with a number where the schema wants a string (its status) is answered with a payload "
        "CallError (TypeConstraintViolation is exact) and the connection is kept.",
    )
    async def wrong_type(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        payload = ctx.status_payload()
        payload["status" if v16 else "connectorStatus"] = 17
        reply = await probe.call(status_action, payload, check_schema=False)
        _payload_error(ctx, reply, f"{status_action} with a numeric status", "TypeConstraintViolation")
        await _kept(ctx, probe, "the invalid request")

    @add(
        "NEG_003",
        "Enumeration value that does not exist",
        "OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.3: PropertyConstraintViolation",
        "A request whose status is not one of the enumeration's values is answered with a payload CallError "
        "(PropertyConstraintViolation is exact) and the connection is kept.",
    )
    async def bad_enum(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        payload = ctx.status_payload()
        payload["status" if v16 else "connectorStatus"] = "Exploded"
        reply = await probe.call(status_action, payload, check_schema=False)
        _payload_error(ctx, reply, f"{status_action} with status Exploded", "PropertyConstraintViolation")
        await _kept(ctx, probe, "the invalid request")

    @add(
        "NEG_004",
        "Unknown action",
        "OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.3: NotImplemented = 'Requested Action is not known by receiver'",
        "A Call of an action no OCPP version defines is answered with CallError NotImplemented (not NotSupported, "
        "which means a known action this CSMS does not support) and the connection is kept.",
    )
    async def unknown_action(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        reply = await probe.call("FlyToTheMoon", {"speed": 1}, check_schema=False)
        ctx.observe(f"FlyToTheMoon: {reply}")
        ctx.check(reply.kind == "error", f"an unknown action was answered with {reply}")
        ctx.check(
            reply.error_code == "NotImplemented", f"unknown action answered {reply.error_code}, not NotImplemented"
        )
        await _kept(ctx, probe, "the unknown action")

    @add(
        "NEG_005",
        "Unknown message type id",
        "OCPP-J 1.6 §4.1.3 ('a message type not in this list SHALL be ignored'); 2.0.1 part 4 §4.2.1 "
        "(ignored, or CallError MessageTypeNotSupported)",
        "A frame with message type id 7 is ignored or answered with a CallError (MessageTypeNotSupported / "
        "ProtocolError / FormatViolation); either way the connection is kept and the CSMS still answers.",
    )
    async def wrong_type_id(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        uid = probe.next_id()
        reply = await probe.call_text(json.dumps([7, uid, "Heartbeat", {}]), uid, timeout_s=min(ctx.cfg.timeout_s, 2.0))
        ctx.observe(f"message type 7: {'ignored' if reply.kind == 'timeout' else reply}")
        ctx.check(reply.kind in ("timeout", "error"), f"a frame of message type 7 was answered with {reply}")
        await _kept(ctx, probe, "the unknown message type")

    @add(
        "NEG_006",
        "Truncated frame (not JSON)",
        "OCPP-J 1.6 §4.2.3 FormationViolation / 2.0.1 part 4 §4.3 FormatViolation, RpcFrameworkError",
        "A frame cut in the middle of its JSON is ignored or answered with a CallError, the connection is kept and "
        "the next request is answered normally.",
    )
    async def truncated(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        uid = probe.next_id()
        text = json.dumps([2, uid, status_action, ctx.status_payload()])
        reply = await probe.call_text(text[: len(text) // 2], uid, timeout_s=min(ctx.cfg.timeout_s, 2.0))
        ctx.observe(f"truncated frame: {'ignored' if reply.kind == 'timeout' else reply}")
        ctx.check(reply.kind in ("timeout", "error"), f"a truncated frame was answered with {reply}")
        await _kept(ctx, probe, "the truncated frame")

    @add(
        "NEG_007",
        "Message id used twice",
        "OCPP-J 1.6 §4.1.4 / 2.0.1 part 4 §4.1.4: message ids unique per sender; a repeat is a retransmission",
        "A Heartbeat repeated with the message id of the previous, answered one gets an answer carrying that id "
        "(a CallResult, or a CallError) and the connection is kept.",
    )
    async def duplicate_id(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        uid = probe.next_id()
        first = await probe.call("Heartbeat", {}, unique_id=uid)
        ctx.check(first.kind == "result", f"Heartbeat answered {first}")
        second = await probe.call("Heartbeat", {}, unique_id=uid)
        ctx.observe(f"repeated message id: {second}")
        ctx.check(second.kind in ("result", "error"), f"the repeated message id got {second}")
        await _kept(ctx, probe, "the repeated message id")

    @add(
        "NEG_008",
        "CallResult and CallError for no request",
        "OCPP-J 1.6 §4.2 / 2.0.1 part 4 §4.2: a response must match an outstanding request",
        "A CallResult and a CallError carrying message ids the CSMS never used are ignored: no answer to them, the "
        "connection kept, the next request answered.",
    )
    async def stray_answers(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        before = len(probe.frames)
        await probe.send_text(json.dumps([3, "never-asked-1", {"status": "Accepted"}]))
        await probe.send_text(json.dumps([4, "never-asked-2", "GenericError", "", {}]))
        await _kept(ctx, probe, "the stray answers")
        answers = [f for f in probe.frames[before:] if f["dir"] == "rx" and "never-asked" in f["frame"]]
        ctx.check(not answers, f"the CSMS answered a stray response: {answers[0]['frame'] if answers else ''}")

    async def out_of_order(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        action = "GetConfiguration" if v16 else "GetVariables"
        order: dict[str, Any] = (
            {"key": ["HeartbeatInterval"]}
            if v16
            else {
                "getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
            }
        )
        incoming = await ctx.csms_sends(probe, action, order)
        answer: dict[str, Any] = (
            {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
            if v16
            else {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": "300",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            }
        )
        await probe.send_text(json.dumps([3, f"{incoming.unique_id}-stale", answer]))
        await probe.answer(incoming, answer)
        await probe.answer(incoming, answer)  # late: the same answer again
        await _kept(ctx, probe, "a stale, a right and a late answer")

    add(
        "NEG_009",
        "Out-of-order and late CallResults",
        "OCPP-J 1.6 §4.2 / 2.0.1 part 4 §4.2: responses are matched by message id",
        "To a CSMS request the charger sends a CallResult with an id the CSMS never used, then the right one, then "
        "the right one again; the CSMS takes the right one, ignores the others and keeps the connection.",
        csms_action="GetConfiguration" if v16 else "GetVariables",
        manual="Needs the CSMS to send a request on command (GetConfiguration / GetVariables to charger {charger}).",
    )(out_of_order)

    @add(
        "NEG_010",
        "Oversized frame",
        "OCPP-J: frame size is not bounded by the specification; RFC 6455 §7.4.1 close code 1009 'message too big'",
        "A 1 MiB DataTransfer is answered (CallResult or CallError) or the connection is closed with code 1009; "
        "it must not go unanswered on an open connection, and a new connection boots afterwards.",
    )
    async def oversized(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        data = "x" * (1 << 20)
        reply = await probe.call(
            "DataTransfer", {"vendorId": "org.example.conformance", "data": data}, timeout_s=ctx.cfg.timeout_s * 2
        )
        ctx.observe(f"1 MiB frame: {reply}" + (f", close code {probe.close_code}" if reply.kind == "closed" else ""))
        if reply.kind == "timeout":
            raise CaseFailed("a 1 MiB frame went unanswered on an open connection")
        if reply.kind == "closed":
            ctx.check(probe.close_code == 1009, f"closed with code {probe.close_code}, not 1009 (message too big)")
        await probe.close()
        again = await ctx.probe(ctx.charger_id("-b"))
        await ctx.boot(again)

    @add(
        "NEG_011",
        "Transaction message for an unknown transaction",
        "OCPP 1.6 §4.10 ('Central System SHALL respond with StopTransaction.conf') / 2.0.1 E (TransactionEvent "
        "is always answered; the CSMS must not make the station retry forever)",
        f"A {tx_action} for a transaction the CSMS never saw is answered with a schema-valid CallResult (not a "
        "CallError, which would make the charger retry it forever).",
    )
    async def unknown_tx(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        if v16:
            payload: dict[str, Any] = {
                "transactionId": 987654321,
                "meterStop": 5000,
                "timestamp": ctx.now(),
                "reason": "Local",
            }
        else:
            payload = {
                "eventType": "Ended",
                "timestamp": ctx.now(),
                "triggerReason": "EVCommunicationLost",
                "seqNo": 7,
                "transactionInfo": {"transactionId": "conf-never-started", "stoppedReason": "EVDisconnected"},
                "evse": {"id": 1, "connectorId": 1},
            }
        reply = await probe.call(tx_action, payload)
        ctx.observe(f"{tx_action} for an unknown transaction: {reply}")
        ctx.valid_result(tx_action, reply)

    @add(
        "NEG_012",
        "Requests before any BootNotification",
        "OCPP 1.6 §4.2 / 2.0.1 B01-B03: a charger boots first; a CSMS may refuse others (2.0.1: CallError "
        "SecurityError) but must answer",
        "Heartbeat and StatusNotification sent right after connecting, before any BootNotification, are answered "
        "(a CallResult or a CallError such as SecurityError: both noted), the connection is kept, and the "
        "BootNotification sent afterwards is Accepted.",
    )
    async def no_boot(ctx: CaseContext) -> None:
        probe = await ctx.probe()
        for action, payload in (("Heartbeat", {}), (status_action, ctx.status_payload())):
            reply = await probe.call(action, payload)
            ctx.observe(f"{action} before boot: {reply}")
            ctx.check(reply.kind in ("result", "error"), f"{action} before boot got {reply}")
        await ctx.boot(probe)

    @add(
        "NEG_013",
        "Charger ids with odd characters",
        "OCPP-J 1.6 §3.1.1 / 2.0.1 part 4 §3.1.1: the id is the last URL path segment, percent-encoded; 2.0.1 "
        "limits it to identifierString",
        "Connecting as ids with a percent-encoded space, slash and non-ASCII letter either boots normally or is "
        "refused at the handshake with an HTTP 4xx; a 5xx, an accepted socket that never answers, or a CSMS that "
        "no longer boots a plain charger afterwards fails.",
    )
    async def odd_ids(ctx: CaseContext) -> None:
        for suffix in ("%20space", "a%2Fb", "%C3%A4%C3%B6"):
            probe = ctx.new_probe(ctx.charger_id(suffix))
            try:
                await probe.connect()
            except ConnectError as exc:
                ctx.observe(f"{probe.charger_id}: {exc}")
                ctx.check(exc.status is not None and 400 <= exc.status < 500, f"{probe.charger_id}: {exc}")
                continue
            reply = await probe.call("BootNotification", ctx.boot_payload())
            ctx.observe(f"{probe.charger_id}: handshake accepted, BootNotification {reply}")
            ctx.check(reply.kind in ("result", "error"), f"{probe.charger_id}: BootNotification got {reply}")
            await probe.close()
        await ctx.booted_probe(ctx.charger_id("-plain"), status=False)

    @add(
        "NEG_014",
        "Wrong basic-auth password",
        "OCPP security profiles 1-2 (1.6 security whitepaper, 2.0.1 A00): wrong credentials are refused at the "
        "handshake with HTTP 401",
        "With security profile 1 or 2, a connection with a wrong password is refused with HTTP 401 (not accepted, "
        "not a 5xx); not applicable to profiles 0 and 3.",
    )
    async def wrong_password(ctx: CaseContext) -> None:
        if ctx.cfg.security.profile not in (1, 2):
            raise NotApplicable(f"security profile {ctx.cfg.security.profile} uses no password")
        probe = ctx.new_probe(password="wrong-" + (ctx.cfg.password or "")[:4] + "-conformance")
        try:
            await probe.connect()
        except ConnectError as exc:
            ctx.observe(str(exc))
            ctx.check(exc.status == 401, f"refused with {exc}, expected HTTP 401")
            return
        raise CaseFailed("the CSMS accepted a connection with a wrong password")

    return cases
