"""OCPP 2.0.1 CSMS cases of functional blocks A, B, C, D, E, F, G, H, J, K, L and N.

Blocks A (security), B (provisioning), C (authorization), D (local
list), E (transactions), F (remote control), G (availability), H (reservation), J (meter values), K (smart
charging), L (firmware) and N (diagnostics), written from the use cases of OCPP 2.0.1 part 2 and the OCA
test-case descriptions of the CSMS side. The test chargers play the charging station; the CSMS is judged.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from virtual_chargers.clock import ocpp_time
from virtual_chargers.conformance.common import csms_initiated, time_close
from virtual_chargers.conformance.model import Case, NotApplicable, case
from virtual_chargers.conformance.probe import Incoming, Probe
from virtual_chargers.conformance.runner import CaseContext

__all__ = ["CASES", "TxFlow"]

V = "2.0.1"
A, B, C, D, E, F, G, H, J, K, L, N = (
    "A Security",
    "B Provisioning",
    "C Authorization",
    "D Local authorization list",
    "E Transactions",
    "F Remote control",
    "G Availability",
    "H Reservation",
    "J Meter values",
    "K Smart charging",
    "L Firmware management",
    "N Diagnostics",
)


def _token(tag: str) -> dict[str, Any]:
    return {"idToken": tag, "type": "ISO14443"}


def _sampled(wh: float, context: str = "Sample.Periodic") -> list[dict[str, Any]]:
    return [
        {
            "timestamp": ocpp_time(datetime.now(UTC)),
            "sampledValue": [
                {
                    "value": wh,
                    "measurand": "Energy.Active.Import.Register",
                    "context": context,
                    "unitOfMeasure": {"unit": "Wh"},
                },
                {"value": 7400.0, "measurand": "Power.Active.Import", "context": context},
            ],
        }
    ]


class TxFlow:
    """One transaction of a test station: TransactionEvents with a running seqNo, answers checked."""

    _n = itertools.count(1)

    def __init__(self, ctx: CaseContext, probe: Probe, tx_id: str | None = None) -> None:
        self.ctx, self.probe = ctx, probe
        self.tx_id = tx_id or f"conf-{ctx.case.id}-{next(self._n)}"
        self.seq = 0

    async def event(
        self, event_type: str, trigger: str, *, id_token: str | None = None, timestamp: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Send a TransactionEvent; a schema-valid CallResult is required (idTokenInfo Accepted with a token)."""
        info: dict[str, Any] = {"transactionId": self.tx_id}
        info.update(extra.pop("info", {}))
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": timestamp or self.ctx.now(),
            "triggerReason": trigger,
            "seqNo": self.seq,
            "transactionInfo": info,
            **extra,
        }
        if event_type == "Started" or "evse" in extra:
            payload.setdefault("evse", {"id": 1, "connectorId": 1})
        if id_token is not None:
            payload["idToken"] = _token(id_token)
        self.seq += 1
        res = await self.ctx.result(self.probe, "TransactionEvent", payload)
        if id_token is not None:
            self.ctx.check(
                "idTokenInfo" in res, f"TransactionEvent with idToken {id_token} answered without idTokenInfo"
            )
            status = res["idTokenInfo"]["status"]
            self.ctx.check(status == "Accepted", f"idToken {id_token} in TransactionEvent answered {status}")
        return res

    async def start(self, tag: str | None = None, **extra: Any) -> None:
        """Started by an authorized token (the token in the event)."""
        await self.event("Started", "Authorized", id_token=tag or self.ctx.cfg.valid_id_tag, **extra)

    async def end(self, reason: str = "Local", trigger: str = "StopAuthorized") -> None:
        """Ended with the final register."""
        await self.event("Ended", trigger, info={"stoppedReason": reason}, meterValue=_sampled(5000, "Transaction.End"))


# A Security --------------------------------------------------------------------------------------


@case(
    "A_001",
    V,
    A,
    "Connect with the configured security profile",
    spec="OCPP 2.0.1 A00 (security profiles), part 4 §3.1",
    checks="With the configured profile's credentials (basic auth / TLS) the handshake succeeds with "
    "subprotocol ocpp2.0.1 and the BootNotification is Accepted.",
)
async def a_connect(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe(status=False)
    ctx.observe(f"security profile {ctx.cfg.security.profile}, subprotocol {probe.ws.subprotocol if probe.ws else '?'}")


@case(
    "A_002",
    V,
    A,
    "Security event notification",
    spec="OCPP 2.0.1 A04 Security Event Notification",
    checks="SecurityEventNotification (type SettingSystemTime, tech info) is answered with an empty valid CallResult.",
)
async def a_security_event(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    payload = {"type": "SettingSystemTime", "timestamp": ctx.now(), "techInfo": "conformance"}
    await ctx.result(probe, "SecurityEventNotification", payload)


# B Provisioning ----------------------------------------------------------------------------------


@case(
    "B_001",
    V,
    B,
    "Cold boot accepted",
    spec="OCPP 2.0.1 B01 Cold Boot Charging Station; OCA TC_B_01_CSMS",
    checks="BootNotification (reason PowerUp) is Accepted with a currentTime within 5 min of ours and an interval; "
    "the StatusNotification Available of each connector that follows is answered.",
)
async def b_cold_boot(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.probe()
    res = await ctx.boot(probe)
    skew = time_close(res["currentTime"], "BootNotification currentTime")
    ctx.check(res["interval"] >= 0, f"interval {res['interval']} is negative")
    ctx.observe(f"interval {res['interval']} s, clock {skew:.1f} s off")
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Available", 1))


@case(
    "B_002",
    V,
    B,
    "Boot after a reset and after a firmware update",
    spec="OCPP 2.0.1 B01, BootReasonEnumType",
    checks="BootNotifications with reasons RemoteReset and FirmwareUpdate on a connection already booted are Accepted.",
)
async def b_reboot_reasons(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for reason in ("RemoteReset", "FirmwareUpdate"):
        res = await ctx.result(probe, "BootNotification", ctx.boot_payload(reason))
        ctx.check(res["status"] == "Accepted", f"BootNotification reason {reason} answered {res['status']}")


async def _follow_report(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then two NotifyReport pages with the request's requestId must be answered."""
    request_id = incoming.payload.get("requestId", 1)
    item = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
    }
    for seq, more in ((0, True), (1, False)):
        payload = {"requestId": request_id, "generatedAt": ctx.now(), "seqNo": seq, "tbc": more, "reportData": [item]}
        await ctx.result(probe, "NotifyReport", payload)


async def _follow_reboot(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> Probe:
    """Then the station reboots: a new connection's BootNotification (reason RemoteReset) must be Accepted."""
    await probe.close()
    again = await ctx.probe()
    res = await ctx.result(again, "BootNotification", ctx.boot_payload("RemoteReset"))
    ctx.check(res["status"] == "Accepted", f"BootNotification after reset answered {res['status']}")
    return again


_HB = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


def _b() -> list[Case]:
    return [
        csms_initiated(
            "B_101", V, B, "Get variables", spec="OCPP 2.0.1 B06; OCA TC_B_06_CSMS",
            action="GetVariables", request={"getVariableData": [_HB]},
            answer={"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "300", **_HB}]},
        ),
        csms_initiated(
            "B_102", V, B, "Set variables", spec="OCPP 2.0.1 B05; OCA TC_B_05_CSMS",
            action="SetVariables", request={"setVariableData": [{"attributeValue": "120", **_HB}]},
            answer={"setVariableResult": [{"attributeStatus": "Accepted", **_HB}]},
        ),
        csms_initiated(
            "B_103", V, B, "Get base report", spec="OCPP 2.0.1 B07; OCA TC_B_07_CSMS",
            action="GetBaseReport", request={"requestId": 31, "reportBase": "ConfigurationInventory"},
            answer={"status": "Accepted"}, follow_up=_follow_report,
        ),
        csms_initiated(
            "B_104", V, B, "Reset the station", spec="OCPP 2.0.1 B11; OCA TC_B_20_CSMS",
            action="Reset", request={"type": "Immediate"}, answer={"status": "Accepted"}, follow_up=_follow_reboot,
        ),
    ]  # fmt: skip


# C Authorization ---------------------------------------------------------------------------------


@case(
    "C_001",
    V,
    C,
    "Authorize a valid id token",
    spec="OCPP 2.0.1 C01 EV Driver Authorization using RFID; OCA TC_C_02_CSMS",
    checks="Authorize with the configured valid token (ISO14443) is answered with idTokenInfo.status Accepted.",
)
async def c_authorize_valid(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Authorize", {"idToken": _token(ctx.cfg.valid_id_tag)})
    status = res["idTokenInfo"]["status"]
    ctx.check(status == "Accepted", f"Authorize {ctx.cfg.valid_id_tag} answered {status}")


@case(
    "C_002",
    V,
    C,
    "Authorize an invalid id token",
    spec="OCPP 2.0.1 C01, AuthorizationStatusEnumType; OCA TC_C_06_CSMS",
    checks="Authorize with the configured invalid token is answered Invalid, Blocked, Expired or Unknown.",
)
async def c_authorize_invalid(ctx: CaseContext) -> None:  # noqa: D103
    if ctx.cfg.invalid_id_tag is None:
        raise NotApplicable("no invalid id token configured (--invalid-tag)")
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Authorize", {"idToken": _token(ctx.cfg.invalid_id_tag)})
    status = res["idTokenInfo"]["status"]
    ctx.check(status in ("Invalid", "Blocked", "Expired", "Unknown"), f"Authorize {ctx.cfg.invalid_id_tag}: {status}")


def _c() -> list[Case]:
    return [
        csms_initiated(
            "C_101", V, C, "Clear the authorization cache", spec="OCPP 2.0.1 C11; OCA TC_C_37_CSMS",
            action="ClearCache", request={}, answer={"status": "Accepted"},
        ),
    ]  # fmt: skip


# D Local authorization list ----------------------------------------------------------------------


def _d() -> list[Case]:
    entry = {"idToken": _token("CONFLOCAL1"), "idTokenInfo": {"status": "Accepted"}}
    return [
        csms_initiated(
            "D_101", V, D, "Send a full local list", spec="OCPP 2.0.1 D01; OCA TC_D_01_CSMS",
            action="SendLocalList",
            request={"versionNumber": 5, "updateType": "Full", "localAuthorizationList": [entry]},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "D_102", V, D, "Differential local list update", spec="OCPP 2.0.1 D01; OCA TC_D_08_CSMS",
            action="SendLocalList",
            request={"versionNumber": 6, "updateType": "Differential",
                     "localAuthorizationList": [
                         {"idToken": _token("CONFLOCAL2"), "idTokenInfo": {"status": "Blocked"}}]},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "D_103", V, D, "Get the local list version", spec="OCPP 2.0.1 D02; OCA TC_D_02_CSMS",
            action="GetLocalListVersion", request={}, answer={"versionNumber": 5},
        ),
    ]  # fmt: skip


# E Transactions ----------------------------------------------------------------------------------


@case(
    "E_001",
    V,
    E,
    "Cable plugged in first, then authorized",
    spec="OCPP 2.0.1 E02 Start Transaction - Cable Plugin First; E01; OCA TC_E_02_CSMS",
    checks="TransactionEvent Started (CablePluggedIn, no token), Updated (Authorized, token Accepted in idTokenInfo), "
    "Updated (ChargingStateChanged), Ended (StopAuthorized) with a running seqNo are all answered validly.",
)
async def e_cable_first(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Occupied"))
    tx = TxFlow(ctx, probe)
    await tx.event("Started", "CablePluggedIn", info={"chargingState": "EVConnected"})
    await tx.event("Updated", "Authorized", id_token=ctx.cfg.valid_id_tag)
    await tx.event("Updated", "ChargingStateChanged", info={"chargingState": "Charging"})
    await tx.end()
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Available"))


@case(
    "E_002",
    V,
    E,
    "Authorized first, then cable plugged in",
    spec="OCPP 2.0.1 E03 Start Transaction - IdToken First; OCA TC_E_03_CSMS",
    checks="Authorize (Accepted), then TransactionEvent Started carrying the token (idTokenInfo Accepted), Updated "
    "(CablePluggedIn) and Ended are answered validly.",
)
async def e_token_first(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "Authorize", {"idToken": _token(ctx.cfg.valid_id_tag)})
    tx = TxFlow(ctx, probe)
    await tx.start()
    await tx.event("Updated", "CablePluggedIn", info={"chargingState": "Charging"})
    await tx.end()


@case(
    "E_003",
    V,
    E,
    "Transaction that ran while offline",
    spec="OCPP 2.0.1 E04 Offline behaviour (offline flag, past timestamps); OCA TC_E_04_CSMS",
    checks="Started, Updated and Ended events flagged offline with timestamps up to an hour old are answered validly.",
)
async def e_offline(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    tx = TxFlow(ctx, probe)
    base = datetime.now(UTC) - timedelta(hours=1)
    await tx.start(offline=True, timestamp=ocpp_time(base))
    await tx.event("Updated", "MeterValuePeriodic", offline=True, timestamp=ocpp_time(base + timedelta(minutes=30)),
                   meterValue=_sampled(3000))  # fmt: skip
    await tx.event("Ended", "EVCommunicationLost", offline=True, info={"stoppedReason": "EVDisconnected"})


@case(
    "E_004",
    V,
    E,
    "Transaction that outlives a reconnect",
    spec="OCPP 2.0.1 E (transactions survive a lost connection), B01 after reconnect",
    checks="A transaction started, the connection closed and reopened with a new boot, its Updated and Ended events "
    "(seqNo continuing) are answered validly.",
)
async def e_reconnect(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    tx = TxFlow(ctx, probe)
    await tx.start()
    await probe.close()
    again = await ctx.probe()
    await ctx.boot(again)
    tx.probe = again
    await tx.event("Updated", "MeterValuePeriodic", meterValue=_sampled(3000))
    await tx.end()


async def _prepare_tx201(ctx: CaseContext, probe: Probe) -> dict[str, Any]:
    tx = TxFlow(ctx, probe)
    await tx.start()
    return {"transactionId": tx.tx_id}


def _e() -> list[Case]:
    return [
        csms_initiated(
            "E_101", V, E, "Get transaction status", spec="OCPP 2.0.1 E14; OCA TC_E_29_CSMS",
            action="GetTransactionStatus", request=_prepare_tx201,
            answer={"messagesInQueue": False, "ongoingIndicator": True},
        ),
    ]  # fmt: skip


# F Remote control --------------------------------------------------------------------------------


async def _follow_request_start(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then TransactionEvent Started (RemoteStart, the CSMS's token and remoteStartId) must be Accepted."""
    tag = incoming.payload.get("idToken", {}).get("idToken", ctx.cfg.valid_id_tag)
    tx = TxFlow(ctx, probe)
    await tx.event(
        "Started", "RemoteStart", id_token=tag, info={"remoteStartId": incoming.payload.get("remoteStartId", 1)}
    )


async def _follow_request_stop(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then TransactionEvent Ended (RemoteStop) must be answered."""
    ctx.check(
        incoming.payload.get("transactionId") == order["transactionId"],
        f"RequestStopTransaction names {incoming.payload.get('transactionId')}, not {order['transactionId']}",
    )
    tx = TxFlow(ctx, probe, order["transactionId"])
    tx.seq = 1
    await tx.end("Remote", "RemoteStop")


def _follow_triggered(action: str) -> Any:
    async def follow(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
        payload: dict[str, Any] = {
            "StatusNotification": ctx.status_payload(),
            "Heartbeat": {},
            "BootNotification": ctx.boot_payload("Triggered"),
            "MeterValues": {"evseId": 1, "meterValue": _sampled(1000, "Trigger")},
        }[action]
        await ctx.result(probe, action, payload)

    follow.__doc__ = f"Then the triggered {action} must be answered with a valid CallResult."
    return follow


def _f() -> list[Case]:
    out = [
        csms_initiated(
            "F_101", V, F, "Remote start", spec="OCPP 2.0.1 F01 Remote Start Transaction - Cable Plugin First; "
            "OCA TC_F_01_CSMS", action="RequestStartTransaction",
            request={"idToken": _token("CONFREMOTE1"), "remoteStartId": 17, "evseId": 1},
            answer={"status": "Accepted"}, follow_up=_follow_request_start,
        ),
        csms_initiated(
            "F_102", V, F, "Remote stop", spec="OCPP 2.0.1 F03 Remote Stop Transaction; OCA TC_F_08_CSMS",
            action="RequestStopTransaction", request=_prepare_tx201, answer={"status": "Accepted"},
            follow_up=_follow_request_stop,
        ),
        csms_initiated(
            "F_103", V, F, "Unlock connector", spec="OCPP 2.0.1 F05; OCA TC_F_05_CSMS",
            action="UnlockConnector", request={"evseId": 1, "connectorId": 1}, answer={"status": "Unlocked"},
        ),
    ]  # fmt: skip
    for n, action in enumerate(("StatusNotification", "Heartbeat", "MeterValues", "BootNotification"), start=104):
        request: dict[str, Any] = {"requestedMessage": action}
        if action in ("StatusNotification", "MeterValues"):
            request["evse"] = {"id": 1, "connectorId": 1} if action == "StatusNotification" else {"id": 1}
        out.append(
            csms_initiated(
                f"F_{n}", V, F, f"Trigger {action}", spec="OCPP 2.0.1 F06 Trigger Message; OCA TC_F_11_CSMS",
                action="TriggerMessage", request=request, answer={"status": "Accepted"},
                follow_up=_follow_triggered(action),
            )
        )  # fmt: skip
    return out


# G Availability ----------------------------------------------------------------------------------


@case(
    "G_001",
    V,
    G,
    "Status notification of every connector status",
    spec="OCPP 2.0.1 G01 Status Notification, ConnectorStatusEnumType",
    checks="StatusNotification with each of Available, Occupied, Reserved, Unavailable, Faulted is answered with an "
    "empty valid CallResult.",
)
async def g_statuses(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for status in ("Occupied", "Reserved", "Unavailable", "Faulted", "Available"):
        await ctx.result(probe, "StatusNotification", ctx.status_payload(status))


@case(
    "G_002",
    V,
    G,
    "Heartbeat",
    spec="OCPP 2.0.1 G02 Heartbeat",
    checks="Heartbeat is answered with a currentTime within 5 min of ours.",
)
async def g_heartbeat(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Heartbeat", {})
    ctx.observe(f"clock {time_close(res['currentTime'], 'Heartbeat currentTime'):.1f} s off")


@case(
    "G_003",
    V,
    G,
    "Availability change reported as an event",
    spec="OCPP 2.0.1 G05 Lock Failure / N07 Alert Event (NotifyEvent of AvailabilityState)",
    checks="NotifyEvent reporting Connector.AvailabilityState Unavailable is answered with an empty valid CallResult.",
)
async def g_notify_event(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "NotifyEvent", _event_payload("AvailabilityState", "Unavailable"))


def _event_payload(variable: str, value: str) -> dict[str, Any]:
    return {
        "generatedAt": ocpp_time(datetime.now(UTC)),
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": ocpp_time(datetime.now(UTC)),
                "trigger": "Delta",
                "actualValue": value,
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": variable},
            }
        ],
    }


async def _follow_unavailable(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then StatusNotification Unavailable must be answered."""
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Unavailable"))


def _g() -> list[Case]:
    return [
        csms_initiated(
            "G_101", V, G, "Change availability of an EVSE", spec="OCPP 2.0.1 G03; OCA TC_G_03_CSMS",
            action="ChangeAvailability", request={"operationalStatus": "Inoperative", "evse": {"id": 1}},
            answer={"status": "Accepted"}, follow_up=_follow_unavailable,
        ),
    ]  # fmt: skip


# H Reservation -----------------------------------------------------------------------------------


@case(
    "H_001",
    V,
    H,
    "Reservation status update",
    spec="OCPP 2.0.1 H04 Reservation expired, ReservationStatusUpdate",
    checks="ReservationStatusUpdate (Expired) is answered with an empty valid CallResult.",
)
async def h_status_update(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "ReservationStatusUpdate", {"reservationId": 9, "reservationUpdateStatus": "Expired"})


async def _follow_reserved(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then Reserved, and a transaction started with the reservationId and its token must be Accepted."""
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Reserved"))
    tag = incoming.payload.get("idToken", {}).get("idToken", "CONFRES1")
    tx = TxFlow(ctx, probe)
    await tx.event("Started", "Authorized", id_token=tag, reservationId=incoming.payload.get("id", 0))


def _h() -> list[Case]:
    async def order(ctx: CaseContext, probe: Probe) -> dict[str, Any]:
        expiry = ocpp_time(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
        return {"id": 42, "expiryDateTime": expiry, "idToken": _token("CONFRES1"), "evseId": 1}

    return [
        csms_initiated(
            "H_101", V, H, "Reserve an EVSE, then use the reservation", spec="OCPP 2.0.1 H01; OCA TC_H_07_CSMS",
            action="ReserveNow", request=order, answer={"status": "Accepted"}, follow_up=_follow_reserved,
        ),
        csms_initiated(
            "H_102", V, H, "Cancel a reservation", spec="OCPP 2.0.1 H02; OCA TC_H_03_CSMS",
            action="CancelReservation", request={"reservationId": 42}, answer={"status": "Accepted"},
        ),
    ]  # fmt: skip


# J Meter values ----------------------------------------------------------------------------------


@case(
    "J_001",
    V,
    J,
    "Meter values outside a transaction",
    spec="OCPP 2.0.1 J01 Sending Meter Values not related to a transaction",
    checks="MeterValues of EVSE 0 (the grid connection) and EVSE 1 are answered with empty valid CallResults.",
)
async def j_idle(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for evse in (0, 1):
        await ctx.result(probe, "MeterValues", {"evseId": evse, "meterValue": _sampled(1000)})


@case(
    "J_002",
    V,
    J,
    "Meter values inside a transaction",
    spec="OCPP 2.0.1 J02 Sending transaction related Meter Values",
    checks="TransactionEvent Updated (MeterValuePeriodic) with sampled energy and power, then Ended with "
    "Transaction.End values, are answered validly.",
)
async def j_tx(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    tx = TxFlow(ctx, probe)
    await tx.start(meterValue=_sampled(1000, "Transaction.Begin"))
    for wh in (2000, 3000):
        await tx.event("Updated", "MeterValuePeriodic", meterValue=_sampled(wh))
    await tx.end()


# K Smart charging --------------------------------------------------------------------------------


@case(
    "K_001",
    V,
    K,
    "EV charging needs (ISO 15118)",
    spec="OCPP 2.0.1 K15 Charging with load leveling based on High Level Communication",
    checks="NotifyEVChargingNeeds with AC needs and a departure time is answered Accepted, Rejected or Processing.",
)
async def k_needs(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    departure = ocpp_time(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4))
    payload = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "departureTime": departure,
            "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 32, "evMaxVoltage": 400},
        },
    }
    res = await ctx.result(probe, "NotifyEVChargingNeeds", payload)
    ctx.observe(f"status {res['status']}")


@case(
    "K_002",
    V,
    K,
    "External charging limit reported",
    spec="OCPP 2.0.1 K12 Set Charging Limit from external source (NotifyChargingLimit)",
    checks="NotifyChargingLimit (source EMS, grid critical) is answered with an empty valid CallResult.",
)
async def k_limit(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    payload = {"chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": True}, "evseId": 1}
    await ctx.result(probe, "NotifyChargingLimit", payload)


def _profile201(purpose: str, profile_id: int) -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": ocpp_time(datetime.now(UTC).replace(microsecond=0)),
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            }
        ],
    }


async def _follow_charging_profiles(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then ReportChargingProfiles with the request's requestId must be answered."""
    payload = {
        "requestId": incoming.payload.get("requestId", 1),
        "chargingLimitSource": "CSO",
        "evseId": 0,
        "chargingProfile": [_profile201("ChargingStationMaxProfile", 301)],
    }
    await ctx.result(probe, "ReportChargingProfiles", payload)


def _k() -> list[Case]:
    return [
        csms_initiated(
            "K_101", V, K, "Set a TxDefaultProfile", spec="OCPP 2.0.1 K01 SetChargingProfile; OCA TC_K_01_CSMS",
            action="SetChargingProfile", request={"evseId": 0, "chargingProfile": _profile201("TxDefaultProfile", 300)},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "K_102", V, K, "Clear a charging profile", spec="OCPP 2.0.1 K10; OCA TC_K_05_CSMS",
            action="ClearChargingProfile", request={"chargingProfileId": 300}, answer={"status": "Accepted"},
        ),
        csms_initiated(
            "K_103", V, K, "Get the composite schedule", spec="OCPP 2.0.1 K08; OCA TC_K_36_CSMS",
            action="GetCompositeSchedule", request={"duration": 3600, "evseId": 1, "chargingRateUnit": "A"},
            answer={"status": "Rejected"},
        ),
        csms_initiated(
            "K_104", V, K, "Get installed charging profiles", spec="OCPP 2.0.1 K09; OCA TC_K_29_CSMS",
            action="GetChargingProfiles",
            request={"requestId": 55, "chargingProfile": {"chargingProfilePurpose": "ChargingStationMaxProfile"}},
            answer={"status": "Accepted"}, follow_up=_follow_charging_profiles,
        ),
    ]  # fmt: skip


# L Firmware management ---------------------------------------------------------------------------


@case(
    "L_001",
    V,
    L,
    "Firmware status notifications",
    spec="OCPP 2.0.1 L01 Secure Firmware Update (FirmwareStatusNotification)",
    checks="FirmwareStatusNotification with each status of a successful update (Downloading … Installed) is answered "
    "with an empty valid CallResult.",
)
async def l_statuses(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for status in ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"):
        await ctx.result(probe, "FirmwareStatusNotification", {"status": status, "requestId": 77})


async def _follow_firmware(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then the statuses of a successful update with the request's requestId must be answered."""
    request_id = incoming.payload.get("requestId", 1)
    for status in ("Downloading", "Downloaded", "Installing", "Installed"):
        await ctx.result(probe, "FirmwareStatusNotification", {"status": status, "requestId": request_id})


def _l() -> list[Case]:
    firmware = {
        "location": "https://example.org/fw.bin",
        "retrieveDateTime": ocpp_time(datetime(2030, 1, 1, tzinfo=UTC)),
    }
    return [
        csms_initiated(
            "L_101", V, L, "Update firmware", spec="OCPP 2.0.1 L01; OCA TC_L_01_CSMS",
            action="UpdateFirmware", request={"requestId": 77, "firmware": firmware},
            answer={"status": "Accepted"}, follow_up=_follow_firmware,
        ),
    ]  # fmt: skip


# N Diagnostics -----------------------------------------------------------------------------------


@case(
    "N_001",
    V,
    N,
    "Log status notifications",
    spec="OCPP 2.0.1 N01 Retrieve Log Information (LogStatusNotification)",
    checks="LogStatusNotification Uploading then Uploaded is answered with empty valid CallResults.",
)
async def n_log_status(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for status in ("Uploading", "Uploaded"):
        await ctx.result(probe, "LogStatusNotification", {"status": status, "requestId": 88})


@case(
    "N_002",
    V,
    N,
    "Event notification",
    spec="OCPP 2.0.1 N07 Alert Event / N08 Periodic Event (NotifyEvent)",
    checks="NotifyEvent of a Connector Problem=true event is answered with an empty valid CallResult.",
)
async def n_notify_event(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "NotifyEvent", _event_payload("Problem", "true"))


async def _follow_log(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then LogStatusNotification Uploading and Uploaded with the request's requestId must be answered."""
    for status in ("Uploading", "Uploaded"):
        payload = {"status": status, "requestId": incoming.payload.get("requestId", 1)}
        await ctx.result(probe, "LogStatusNotification", payload)


def _n() -> list[Case]:
    return [
        csms_initiated(
            "N_101", V, N, "Get a diagnostics log", spec="OCPP 2.0.1 N01; OCA TC_N_25_CSMS",
            action="GetLog", request={"logType": "DiagnosticsLog", "requestId": 88,
                                      "log": {"remoteLocation": "ftp://example.org/logs/"}},
            answer={"status": "Accepted", "filename": "diag.log"}, follow_up=_follow_log,
        ),
        csms_initiated(
            "N_102", V, N, "Set the monitoring base", spec="OCPP 2.0.1 N03; OCA TC_N_01_CSMS",
            action="SetMonitoringBase", request={"monitoringBase": "FactoryDefault"}, answer={"status": "Accepted"},
        ),
    ]  # fmt: skip


def _all() -> tuple[Case, ...]:
    plain = [v for v in globals().values() if isinstance(v, Case)]
    return tuple(plain + _b() + _c() + _d() + _e() + _f() + _g() + _h() + _k() + _l() + _n())


CASES: tuple[Case, ...] = _all()
