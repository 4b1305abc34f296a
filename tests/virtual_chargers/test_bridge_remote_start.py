"""A CSMS's remote start serves a driver waiting in the queue, as a real charger would.

The CSMS reserves the site's only connector for an app user (ReserveNow): the simulated port is kept
free, so arriving drivers queue. Its remote start for that user's token on that connector then plugs the
first waiting driver in there, and the transaction starts under the CSMS's token (1.6 idTag with the
reservationId; 2.0.1 idToken, trigger RemoteStart). A remote start for another token is Rejected.
Loopback on 127.0.0.1, port 0; every wait is bounded and everything started is stopped.
"""

import asyncio
from datetime import datetime, timedelta

import pytest

from sim.metrics import sessions_frame
from tests.conftest import make_scenario
from tests.virtual_chargers.raw_csms import RawCsms

SPEED = 5000.0
START = "2026-03-02T00:00:00+01:00"
WAIT_S = 5400.0  # how long after the reservation the CSMS starts its user (drivers queue meanwhile)
TAG = "APP-7"


def scenario(csms_url: str, ocpp: str):
    """One single-connector charger; drivers arrive 3 an hour and queue with a long patience."""
    return make_scenario(
        name="remote_start",
        seed=3,
        start=START,
        horizon_days=0.25,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 100.0,
                    "chargers": [{"model": "ac22", "count": 1, "connectors": 1, "power_kw": 22.0, "current": "ac"}],
                }
            ]
        },
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 3.0},
                "dwell_min": {"dist": "uniform", "low": 30, "high": 60},
                "max_queue": 10,
                "patience_min": 600,
            }
        ],
        manager={"kind": "ocpp", "csms": csms_url, "ocpp": ocpp, "speed": SPEED, "response_timeout_s": 5.0},
    )


def reserve_now(ocpp: str) -> dict:
    """ReserveNow of connector / EVSE 1 for TAG until a day after the start (simulated calendar)."""
    expiry = (datetime.fromisoformat(START) + timedelta(days=1)).isoformat()
    if ocpp == "1.6":
        return {"connectorId": 1, "expiryDate": expiry, "idTag": TAG, "reservationId": 1}
    return {"id": 1, "expiryDateTime": expiry, "idToken": {"idToken": TAG, "type": "Central"}, "evseId": 1}


def remote_start(ocpp: str, tag: str) -> tuple[str, dict]:
    """The remote start of ``tag`` on connector / EVSE 1."""
    if ocpp == "1.6":
        return "RemoteStartTransaction", {"idTag": tag, "connectorId": 1}
    return "RequestStartTransaction", {"idToken": {"idToken": tag, "type": "Central"}, "remoteStartId": 9, "evseId": 1}


async def run(paced_run, ocpp: str):
    """Reserve at once (again while a driver is still on the connector), wait, remote-start a stranger, then TAG."""
    csms = await RawCsms(version=ocpp).start()

    async def during(runner) -> tuple[dict, float, float]:
        answers = {}
        clock = runner.clock
        assert clock is not None
        for _ in range(200):  # bounded: the connector is free again after a session's dwell
            answer = await csms.call("a.01", "ReserveNow", reserve_now(ocpp))
            if answer["status"] == "Accepted":
                break
            await asyncio.wait_for(clock.sleep(300.0), 5)
        answers["reserve"], reserved_t_s = answer["status"], clock.t_s()
        await asyncio.wait_for(clock.sleep_until(reserved_t_s + WAIT_S), 30)
        answers["stranger"] = (await csms.call("a.01", *remote_start(ocpp, "STRANGER")))["status"]
        answers["start"] = (await csms.call("a.01", *remote_start(ocpp, TAG)))["status"]
        return answers, reserved_t_s, clock.t_s()

    try:
        result, (answers, reserved_t_s, start_t_s) = await paced_run(scenario(csms.url, ocpp), during)
    finally:
        await csms.stop()
    return result, csms, answers, reserved_t_s, start_t_s


@pytest.mark.slow
@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_remote_start_plugs_in_the_first_waiting_driver(paced_run, arun, ocpp):
    """Nobody plugs into the reserved connector; the remote start gives it to the first waiting driver."""
    result, csms, answers, reserved_t_s, start_t_s = arun(run(paced_run, ocpp), timeout_s=120)
    assert answers == {"reserve": "Accepted", "stranger": "Rejected", "start": "Accepted"}
    sessions = sessions_frame(result.tables)
    plugged = sessions[sessions["evse_id"].notna()]
    # while reserved, nobody plugged in (a driver can plug in within the CSMS's round trip of the reservation)
    assert not ((plugged["plug_t_s"] > reserved_t_s + 60.0) & (plugged["plug_t_s"] < start_t_s - 60.0)).any()
    # the remote start went to the driver who had waited longest
    waiting = sessions[(sessions["arrival_t_s"] > reserved_t_s) & (sessions["arrival_t_s"] < start_t_s - 60.0)]
    first = waiting.iloc[0]
    assert first["evse_id"] == "a.01.1"
    assert start_t_s - 60.0 <= first["plug_t_s"] <= start_t_s + 60.0  # the CSMS's round trip at 5000×
    assert first["wait_s"] == pytest.approx(first["plug_t_s"] - first["arrival_t_s"])
    assert first["wait_s"] > 600.0
    # the CSMS saw that transaction start under its own token, on the connector it named
    if ocpp == "1.6":
        starts = [r.payload for r in csms.of("StartTransaction") if r.payload["idTag"] == TAG]
        assert len(starts) == 1
        assert (starts[0]["connectorId"], starts[0]["reservationId"]) == (1, 1)
    else:
        events = [r.payload for r in csms.of("TransactionEvent") if r.payload.get("idToken", {}).get("idToken") == TAG]
        assert events
        assert events[0]["evse"]["id"] == 1
        assert events[0]["triggerReason"] == "RemoteStart"
        assert events[0]["transactionInfo"]["remoteStartId"] == 9
