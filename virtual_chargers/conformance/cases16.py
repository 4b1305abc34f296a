"""OCPP 1.6J CSMS cases of the Core, Smart Charging, Remote Trigger, Firmware, Local Auth List and Reservation profiles.

Written from the OCPP 1.6 specification (edition 2) and the OCA
test-case descriptions of the CSMS side. The test chargers play the charge point; the CSMS is judged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from virtual_chargers.clock import ocpp_time
from virtual_chargers.conformance.common import csms_initiated, time_close
from virtual_chargers.conformance.model import Case, NotApplicable, case
from virtual_chargers.conformance.probe import Incoming, Probe
from virtual_chargers.conformance.runner import CaseContext

__all__ = ["CASES", "start_transaction"]

V = "1.6"
CORE, SMART, TRIGGER, FIRMWARE, LOCAL, RESERVATION = (
    "Core",
    "Smart Charging",
    "Remote Trigger",
    "Firmware Management",
    "Local Auth List",
    "Reservation",
)


def _meter(wh: float, *, tx: int | None = None, connector: int = 1) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": connector,
        "meterValue": [
            {
                "timestamp": ocpp_time(datetime.now(UTC)),
                "sampledValue": [
                    {"value": f"{wh:.0f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": "32.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
                ],
            }
        ],
    }
    if tx is not None:
        payload["transactionId"] = tx
    return payload


async def start_transaction(
    ctx: CaseContext, probe: Probe, id_tag: str | None = None, *, reservation_id: int | None = None, **extra: Any
) -> int:
    """StartTransaction that the CSMS must take with an integer transactionId; returns it."""
    payload: dict[str, Any] = {
        "connectorId": 1,
        "idTag": id_tag or ctx.cfg.valid_id_tag,
        "meterStart": 1000,
        "timestamp": ctx.now(),
        **extra,
    }
    if reservation_id is not None:
        payload["reservationId"] = reservation_id
    res = await ctx.result(probe, "StartTransaction", payload)
    status = res["idTagInfo"]["status"]
    ctx.check(status == "Accepted", f"StartTransaction with id tag {payload['idTag']} answered {status}, not Accepted")
    tx = res["transactionId"]
    ctx.observe(f"transactionId {tx}")
    return int(tx)


async def stop_transaction(ctx: CaseContext, probe: Probe, tx: int, reason: str = "Local", **extra: Any) -> None:
    """StopTransaction that the CSMS must answer with a valid CallResult."""
    payload = {"transactionId": tx, "meterStop": 5000, "timestamp": ctx.now(), "reason": reason, **extra}
    res = await ctx.result(probe, "StopTransaction", payload)
    if "idTagInfo" in res:
        ctx.observe(f"StopTransaction idTagInfo {res['idTagInfo']['status']}")


# Core: charger-initiated -------------------------------------------------------------------------


@case(
    "CORE_001",
    V,
    CORE,
    "Cold boot: BootNotification accepted with time and interval",
    spec="OCPP 1.6 §4.2 Boot Notification, §6.3; OCA TC_001_CSMS",
    checks="BootNotification is answered Accepted with a valid currentTime within 5 min of ours and an interval >= 0, "
    "and the StatusNotification Available that follows is answered.",
)
async def core_cold_boot(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.probe()
    res = await ctx.boot(probe)
    skew = time_close(res["currentTime"], "BootNotification currentTime")
    ctx.check(res["interval"] >= 0, f"interval {res['interval']} is negative")
    ctx.observe(f"interval {res['interval']} s, clock {skew:.1f} s off")
    for connector in (0, 1):
        await ctx.result(probe, "StatusNotification", ctx.status_payload("Available", connector))


@case(
    "CORE_002",
    V,
    CORE,
    "Heartbeat answered with the current time",
    spec="OCPP 1.6 §4.6 Heartbeat, §6.31",
    checks="Heartbeat after an accepted boot is answered with a currentTime within 5 min of ours.",
)
async def core_heartbeat(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Heartbeat", {})
    ctx.observe(f"clock {time_close(res['currentTime'], 'Heartbeat currentTime'):.1f} s off")


@case(
    "CORE_003",
    V,
    CORE,
    "StatusNotification of every status and an error code",
    spec="OCPP 1.6 §4.9 Status Notification, §7.7 ChargePointStatus, §7.6 ChargePointErrorCode",
    checks="Every ChargePointStatus (and Faulted with GroundFailure, vendor error info) is answered with an "
    "empty, valid CallResult.",
)
async def core_status_all(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved", "Unavailable"):
        await ctx.result(probe, "StatusNotification", ctx.status_payload(status))
    faulted = ctx.status_payload("Faulted", error="GroundFailure") | {"info": "RCD tripped", "vendorErrorCode": "E17"}
    await ctx.result(probe, "StatusNotification", faulted)
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Available"))


@case(
    "CORE_004",
    V,
    CORE,
    "Authorize a valid id tag",
    spec="OCPP 1.6 §4.1 Authorize, §6.1; OCA TC_003 (local start, authorized)",
    checks="Authorize with the configured valid id tag is answered with idTagInfo.status Accepted.",
)
async def core_authorize_valid(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Authorize", {"idTag": ctx.cfg.valid_id_tag})
    status = res["idTagInfo"]["status"]
    ctx.check(status == "Accepted", f"Authorize {ctx.cfg.valid_id_tag} answered {status}, not Accepted")


@case(
    "CORE_005",
    V,
    CORE,
    "Authorize an invalid id tag",
    spec="OCPP 1.6 §4.1 Authorize, §7.1 AuthorizationStatus; OCA TC_023 (invalid id tag)",
    checks="Authorize with the configured invalid id tag is answered Invalid, Blocked or Expired (not Accepted).",
)
async def core_authorize_invalid(ctx: CaseContext) -> None:  # noqa: D103
    if ctx.cfg.invalid_id_tag is None:
        raise NotApplicable("no invalid id tag configured (--invalid-tag)")
    probe = await ctx.booted_probe()
    res = await ctx.result(probe, "Authorize", {"idTag": ctx.cfg.invalid_id_tag})
    status = res["idTagInfo"]["status"]
    ctx.check(status in ("Invalid", "Blocked", "Expired"), f"Authorize {ctx.cfg.invalid_id_tag} answered {status}")


@case(
    "CORE_006",
    V,
    CORE,
    "Regular charging session: authorize, start, meter values, stop",
    spec="OCPP 1.6 §3.x transaction flow, §4.8 Start, §4.10 Stop, §4.7 MeterValues; OCA TC_003, TC_004",
    checks="Authorize, StartTransaction (integer transactionId, Accepted), the statuses of the session, MeterValues "
    "with the transactionId and StopTransaction with transactionData are all answered with valid CallResults.",
)
async def core_regular_session(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "Authorize", {"idTag": ctx.cfg.valid_id_tag})
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Preparing"))
    tx = await start_transaction(ctx, probe)
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Charging"))
    await ctx.result(probe, "MeterValues", _meter(2500, tx=tx))
    data = _meter(5000)["meterValue"]
    await stop_transaction(ctx, probe, tx, "Local", idTag=ctx.cfg.valid_id_tag, transactionData=data)
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Finishing"))
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Available"))


@case(
    "CORE_007",
    V,
    CORE,
    "Stop by the EV leaving, without id tag",
    spec="OCPP 1.6 §4.10 Stop Transaction (reason EVDisconnected, idTag optional)",
    checks="A StopTransaction without idTag and with reason EVDisconnected is answered with a valid CallResult.",
)
async def core_stop_ev_disconnected(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    tx = await start_transaction(ctx, probe)
    await stop_transaction(ctx, probe, tx, "EVDisconnected")


@case(
    "CORE_008",
    V,
    CORE,
    "Meter values outside a transaction",
    spec="OCPP 1.6 §4.7 Meter Values (connector 0 and a connector without transaction)",
    checks="MeterValues of connector 0 and of connector 1 without transactionId are answered with valid CallResults.",
)
async def core_meter_values_idle(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    await ctx.result(probe, "MeterValues", _meter(1000, connector=0))
    await ctx.result(probe, "MeterValues", _meter(1000, connector=1))


@case(
    "CORE_009",
    V,
    CORE,
    "DataTransfer with an unknown vendor id",
    spec="OCPP 1.6 §4.3 Data Transfer: 'no implementation for the vendorId → UnknownVendorId'",
    checks="DataTransfer from the charger with a vendorId the CSMS cannot know is answered UnknownVendorId.",
)
async def core_data_transfer_unknown(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    payload = {"vendorId": "org.example.conformance.unknown", "messageId": "probe", "data": "x"}
    res = await ctx.result(probe, "DataTransfer", payload)
    ctx.check(res["status"] == "UnknownVendorId", f"answered {res['status']}, not UnknownVendorId")


@case(
    "CORE_010",
    V,
    CORE,
    "Transaction that started while offline",
    spec="OCPP 1.6 §3.x offline behaviour, §4.8 (StartTransaction with a past timestamp); OCA TC_037",
    checks="A StartTransaction stamped an hour ago, followed by its StopTransaction, is taken with a transactionId "
    "and a valid CallResult.",
)
async def core_offline_transaction(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    hour_ago = ocpp_time(datetime.now(UTC) - timedelta(hours=1))
    tx = await start_transaction(ctx, probe, timestamp=hour_ago)
    await stop_transaction(ctx, probe, tx, "Local")


@case(
    "CORE_011",
    V,
    CORE,
    "Transaction that outlives a reconnect",
    spec="OCPP 1.6 §3.x connection loss: the CSMS keeps the transaction; OCA TC_039 (connection loss during tx)",
    checks="A transaction started, the websocket closed and reopened with a new boot, then its StopTransaction "
    "with the same transactionId is answered with a valid CallResult.",
)
async def core_tx_over_reconnect(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    tx = await start_transaction(ctx, probe)
    await probe.close()
    again = await ctx.probe()
    await ctx.boot(again)
    await ctx.result(again, "StatusNotification", ctx.status_payload("Charging"))
    await ctx.result(again, "MeterValues", _meter(3000, tx=tx))
    await stop_transaction(ctx, again, tx, "Local")


# Core: CSMS-initiated ----------------------------------------------------------------------------


async def _follow_remote_start(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then a StartTransaction with the CSMS's id tag must be Accepted with a transactionId."""
    tag = incoming.payload.get("idTag", ctx.cfg.valid_id_tag)
    await start_transaction(ctx, probe, tag)


async def _prepare_remote_stop(ctx: CaseContext, probe: Probe) -> dict[str, Any]:
    tx = await start_transaction(ctx, probe)
    return {"transactionId": tx}


async def _follow_remote_stop(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then StopTransaction with reason Remote must be answered."""
    ctx.check(
        incoming.payload.get("transactionId") == order["transactionId"],
        f"RemoteStopTransaction names transaction {incoming.payload.get('transactionId')}, "
        f"not {order['transactionId']}",
    )
    await stop_transaction(ctx, probe, order["transactionId"], "Remote")


async def _follow_reset(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> Probe:
    """Then the charger reboots: a new connection's BootNotification must be Accepted."""
    await probe.close()
    again = await ctx.probe()
    await ctx.boot(again)
    return again


async def _follow_unavailable(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then StatusNotification Unavailable must be answered."""
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Unavailable"))


def _core_csms() -> list[Case]:
    manual_remote = (
        "Connect charger {charger}, then from the CSMS start a charging session on connector 1 remotely; a "
        "compliant CSMS sends RemoteStartTransaction and accepts the StartTransaction that follows."
    )
    return [
        csms_initiated(
            "CORE_101", V, CORE, "Remote start transaction", spec="OCPP 1.6 §5.11; OCA TC_010/TC_011",
            action="RemoteStartTransaction", request={"connectorId": 1, "idTag": "CONFREMOTE1"},
            answer={"status": "Accepted"}, follow_up=_follow_remote_start, manual=manual_remote,
        ),
        csms_initiated(
            "CORE_102", V, CORE, "Remote stop transaction", spec="OCPP 1.6 §5.12; OCA TC_012",
            action="RemoteStopTransaction", request=_prepare_remote_stop, answer={"status": "Accepted"},
            follow_up=_follow_remote_stop,
        ),
        csms_initiated(
            "CORE_103", V, CORE, "Soft reset, then reboot", spec="OCPP 1.6 §5.14; OCA TC_013",
            action="Reset", request={"type": "Soft"}, answer={"status": "Accepted"}, follow_up=_follow_reset,
        ),
        csms_initiated(
            "CORE_104", V, CORE, "Change availability to Inoperative", spec="OCPP 1.6 §5.2; OCA TC_018",
            action="ChangeAvailability", request={"connectorId": 1, "type": "Inoperative"},
            answer={"status": "Accepted"}, follow_up=_follow_unavailable,
        ),
        csms_initiated(
            "CORE_105", V, CORE, "Get configuration", spec="OCPP 1.6 §5.8; OCA TC_019",
            action="GetConfiguration", request={"key": ["HeartbeatInterval"]},
            answer={"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
        ),
        csms_initiated(
            "CORE_106", V, CORE, "Change configuration", spec="OCPP 1.6 §5.3; OCA TC_021",
            action="ChangeConfiguration", request={"key": "MeterValueSampleInterval", "value": "60"},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "CORE_107", V, CORE, "Clear authorization cache", spec="OCPP 1.6 §5.4; OCA TC_061",
            action="ClearCache", request={}, answer={"status": "Accepted"},
        ),
        csms_initiated(
            "CORE_108", V, CORE, "Unlock connector", spec="OCPP 1.6 §5.18; OCA TC_017",
            action="UnlockConnector", request={"connectorId": 1}, answer={"status": "Unlocked"},
        ),
        csms_initiated(
            "CORE_109", V, CORE, "DataTransfer from the CSMS", spec="OCPP 1.6 §5.6",
            action="DataTransfer", request={"vendorId": "org.example.conformance", "messageId": "ping"},
            answer={"status": "UnknownVendorId"},
        ),
    ]  # fmt: skip


# Smart charging ----------------------------------------------------------------------------------


def _profile(purpose: str, profile_id: int, limit_a: float = 16.0, tx: int | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative" if purpose == "TxProfile" else "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}],
        },
    }
    if purpose != "TxProfile":
        profile["chargingSchedule"]["startSchedule"] = ocpp_time(datetime.now(UTC).replace(microsecond=0))
    if tx is not None:
        profile["transactionId"] = tx
    return profile


async def _prepare_tx_profile(ctx: CaseContext, probe: Probe) -> dict[str, Any]:
    tx = await start_transaction(ctx, probe)
    return {"connectorId": 1, "csChargingProfiles": _profile("TxProfile", 202, 10.0, tx)}


async def _follow_composite(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """The request must name a connector and a positive duration."""
    ctx.check(incoming.payload.get("duration", 0) > 0, f"GetCompositeSchedule duration {incoming.payload}")


def _smart() -> list[Case]:
    return [
        csms_initiated(
            "SC_101", V, SMART, "Set a TxDefaultProfile on the charger", spec="OCPP 1.6 §5.16, §3.13; OCA TC_056",
            action="SetChargingProfile",
            request={"connectorId": 0, "csChargingProfiles": _profile("TxDefaultProfile", 201)},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "SC_102", V, SMART, "Set a TxProfile during a transaction", spec="OCPP 1.6 §5.16; OCA TC_066",
            action="SetChargingProfile", request=_prepare_tx_profile, answer={"status": "Accepted"},
        ),
        csms_initiated(
            "SC_103", V, SMART, "Clear a charging profile", spec="OCPP 1.6 §5.5; OCA TC_057",
            action="ClearChargingProfile", request={"id": 201}, answer={"status": "Accepted"},
        ),
        csms_initiated(
            "SC_104", V, SMART, "Get the composite schedule", spec="OCPP 1.6 §5.7; OCA TC_067",
            action="GetCompositeSchedule", request={"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
            answer={"status": "Rejected"}, follow_up=_follow_composite,
        ),
    ]  # fmt: skip


# Remote trigger ----------------------------------------------------------------------------------


def _follow_triggered(action: str) -> Any:
    async def follow(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
        payload = ctx.status_payload() if action == "StatusNotification" else {}
        if action == "BootNotification":
            payload = ctx.boot_payload()
        if action == "MeterValues":
            payload = _meter(1000)
        await ctx.result(probe, action, payload)

    follow.__doc__ = f"Then the triggered {action} must be answered with a valid CallResult."
    return follow


def _trigger() -> list[Case]:
    out = []
    for n, action in enumerate(("StatusNotification", "Heartbeat", "MeterValues", "BootNotification"), start=101):
        out.append(
            csms_initiated(
                f"RT_{n}", V, TRIGGER, f"TriggerMessage {action}", spec="OCPP 1.6 §5.17; OCA TC_054",
                action="TriggerMessage", request={"requestedMessage": action, "connectorId": 1}
                if action in ("StatusNotification", "MeterValues") else {"requestedMessage": action},
                answer={"status": "Accepted"}, follow_up=_follow_triggered(action),
            )
        )  # fmt: skip
    return out


# Firmware management -----------------------------------------------------------------------------


@case(
    "FW_001",
    V,
    FIRMWARE,
    "Firmware and diagnostics status notifications",
    spec="OCPP 1.6 §4.4 Diagnostics Status Notification, §4.5 Firmware Status Notification",
    checks="Every FirmwareStatus and DiagnosticsStatus value is answered with an empty, valid CallResult.",
)
async def fw_status_notifications(ctx: CaseContext) -> None:  # noqa: D103
    probe = await ctx.booted_probe()
    for status in (
        "Idle",
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
        "DownloadFailed",
        "InstallationFailed",
    ):
        await ctx.result(probe, "FirmwareStatusNotification", {"status": status})
    for status in ("Idle", "Uploading", "Uploaded", "UploadFailed"):
        await ctx.result(probe, "DiagnosticsStatusNotification", {"status": status})


async def _follow_firmware(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then Downloading, Downloaded, Installing, Installed and a reboot with a new boot must be answered."""
    for status in ("Downloading", "Downloaded", "Installing"):
        await ctx.result(probe, "FirmwareStatusNotification", {"status": status})
    await ctx.boot(probe)
    await ctx.result(probe, "FirmwareStatusNotification", {"status": "Installed"})


async def _follow_diagnostics(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then Uploading and Uploaded must be answered."""
    for status in ("Uploading", "Uploaded"):
        await ctx.result(probe, "DiagnosticsStatusNotification", {"status": status})


def _firmware() -> list[Case]:
    return [
        csms_initiated(
            "FW_101", V, FIRMWARE, "Update firmware", spec="OCPP 1.6 §5.19; OCA TC_044",
            action="UpdateFirmware",
            request={"location": "https://example.org/fw.bin",
                     "retrieveDate": ocpp_time(datetime(2030, 1, 1, tzinfo=UTC))},
            answer={}, follow_up=_follow_firmware,
        ),
        csms_initiated(
            "FW_102", V, FIRMWARE, "Get diagnostics", spec="OCPP 1.6 §5.9; OCA TC_045",
            action="GetDiagnostics", request={"location": "ftp://example.org/diag/"},
            answer={"fileName": "diagnostics.zip"}, follow_up=_follow_diagnostics,
        ),
    ]  # fmt: skip


# Local auth list ---------------------------------------------------------------------------------


def _local_list() -> list[Case]:
    return [
        csms_initiated(
            "LAL_101", V, LOCAL, "Send a full local list", spec="OCPP 1.6 §5.15, §3.5; OCA TC_042",
            action="SendLocalList",
            request={"listVersion": 7, "updateType": "Full",
                     "localAuthorizationList": [{"idTag": "CONFLOCAL1", "idTagInfo": {"status": "Accepted"}}]},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "LAL_102", V, LOCAL, "Differential local list update", spec="OCPP 1.6 §5.15; OCA TC_043",
            action="SendLocalList",
            request={"listVersion": 8, "updateType": "Differential",
                     "localAuthorizationList": [{"idTag": "CONFLOCAL2", "idTagInfo": {"status": "Blocked"}}]},
            answer={"status": "Accepted"},
        ),
        csms_initiated(
            "LAL_103", V, LOCAL, "Get the local list version", spec="OCPP 1.6 §5.10; OCA TC_041",
            action="GetLocalListVersion", request={}, answer={"listVersion": 7},
        ),
    ]  # fmt: skip


# Reservation -------------------------------------------------------------------------------------


async def _follow_reserved(ctx: CaseContext, probe: Probe, incoming: Incoming, order: dict[str, Any]) -> None:
    """Then Reserved, and a StartTransaction with the reservationId and its id tag must be Accepted."""
    await ctx.result(probe, "StatusNotification", ctx.status_payload("Reserved"))
    tag = incoming.payload.get("idTag", "CONFRES1")
    await start_transaction(ctx, probe, tag, reservation_id=int(incoming.payload.get("reservationId", 0)))


def _expiry() -> str:
    return ocpp_time(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))


def _reservation() -> list[Case]:
    return [
        csms_initiated(
            "RES_101", V, RESERVATION, "Reserve a connector, then use the reservation",
            spec="OCPP 1.6 §5.13, §3.11; OCA TC_046",
            action="ReserveNow",
            request=lambda ctx, probe: _reserve_order(),
            answer={"status": "Accepted"}, follow_up=_follow_reserved,
        ),
        csms_initiated(
            "RES_102", V, RESERVATION, "Cancel a reservation", spec="OCPP 1.6 §5.1; OCA TC_051",
            action="CancelReservation", request={"reservationId": 41}, answer={"status": "Accepted"},
        ),
    ]  # fmt: skip


async def _reserve_order() -> dict[str, Any]:
    return {"connectorId": 1, "expiryDate": _expiry(), "idTag": "CONFRES1", "reservationId": 42}


def _all() -> tuple[Case, ...]:
    plain = [v for v in globals().values() if isinstance(v, Case)]
    return tuple(plain + _core_csms() + _smart() + _trigger() + _firmware() + _local_list() + _reservation())


CASES: tuple[Case, ...] = _all()
