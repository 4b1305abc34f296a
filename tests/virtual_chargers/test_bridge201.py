"""A 2.0.1 CSMS drives a bridged run: what it asks of the stations is what the simulation does.

Each test runs half a simulated day (about 9 s wall) against the reference CSMS on 127.0.0.1, port 0,
with every wait bounded and everything it starts stopped. Site ``a`` gets the drivers; site ``b`` gets
none, so its station is always empty and idle: commands to it have one possible outcome.
"""

import math

import pytest

from sim.metrics import events_frame, sessions_frame
from tests.conftest import make_scenario
from virtual_chargers.csms import Csms
from virtual_chargers.paced_run import PacedRun

SPEED = 5000.0
CHARGER = {"model": "ac22", "count": 2, "connectors": 2, "power_kw": 22.0, "current": "ac"}


def scenario(csms_url: str):
    """Site a: two 2-EVSE 22 kW stations with drivers; site b: one 2-EVSE station nobody drives to."""
    return make_scenario(
        name="bridge201",
        seed=11,
        start="2026-03-02T12:00:00+01:00",
        horizon_days=0.5,
        network={
            "sites": [
                {"id": "a", "lat": 52.0, "lon": 4.0, "capacity_kw": 1000.0, "chargers": [CHARGER]},
                {"id": "b", "lat": 52.1, "lon": 4.1, "capacity_kw": 1000.0, "chargers": [{**CHARGER, "count": 1}]},
            ]
        },
        fleet=[{"preset": "tesla_model_3_lr", "share": 1}, {"preset": "renault_zoe_ze50", "share": 1}],
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 2.0},
                "dwell_min": {"dist": "uniform", "low": 60, "high": 240},
                "max_queue": 1,
            }
        ],
        manager={
            "kind": "ocpp",
            "csms": csms_url,
            "ocpp": "2.0.1",
            "speed": SPEED,
            "response_timeout_s": 5.0,
            "meter_interval_s": 600,
        },
    )


async def bridged(paced_run, csms: Csms, script=None):
    """Run the scenario against `csms` (started here); `script(csms, runner)` runs alongside; all stopped after."""
    await csms.start()
    try:
        during = (lambda runner: script(csms, runner)) if script is not None else None
        return await paced_run(scenario(csms.url), during, drain_timeout_s=15.0)
    finally:
        await csms.stop()


def _running(records, charger: str) -> list[tuple[str, int]]:
    """(transaction id, EVSE id) of the station's transactions not yet ended, as the CSMS knows them."""
    txs = records.transactions(charger)
    return [(tx, evs[0].payload["evse"]["id"]) for tx, evs in txs.items() if evs[-1].event_type != "Ended"]


def _ended(records, tx_id: str) -> dict | None:
    events = records.transactions().get(tx_id, [])
    return events[-1].payload if events and events[-1].event_type == "Ended" else None


def _profile(profile_id: int, limit_w: float) -> dict:
    return {
        "id": profile_id,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "start_schedule": "2026-03-02T11:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": limit_w}],
            }
        ],
    }


async def remote_control(csms: Csms, runner: PacedRun) -> dict:
    """Remote stop and start, profiles set and cleared, prices, availability and resets, in that order."""
    rec = csms.records201
    await rec.wait_for(lambda: bool(_running(rec, "a.01")), 15)
    a01, a02, b01 = [await csms.wait_connected(c, 10) for c in ("a.01", "a.02", "b.01")]
    clock = runner.clock
    assert clock is not None
    tx_id, evse = _running(rec, "a.01")[0]
    out: dict = {"tx": tx_id, "evse": evse}

    out["stop"] = (await a01.request_stop(tx_id)).status
    await rec.wait_for(lambda: _ended(rec, tx_id) is not None, 10)
    out["stop_unknown"] = (await a01.request_stop("no-such-transaction")).status
    out["start"] = (await a01.request_start("DRIVER-APP", evse)).status
    out["start_empty"] = (await b01.request_start("DRIVER-APP", 1)).status  # nobody is plugged in at site b

    out["set_evse"] = (await a01.set_charging_profile(evse, _profile(21, 7000.0))).status
    out["clear_by_id"] = (await a01.clear_charging_profile(21)).status
    out["set_other"] = (await a01.set_charging_profile(3 - evse, _profile(22, 7000.0))).status
    criteria = {"evse_id": 3 - evse, "charging_profile_purpose": "TxDefaultProfile"}
    out["clear_by_criteria"] = (await a01.clear_charging_profile(criteria=criteria)).status
    out["clear_nothing"] = (await a01.clear_charging_profile(99)).status

    out["price"] = (await a01.data_transfer("chargetwin", "SetTariff", '{"price_per_kwh": 0.99}')).status
    out["bad_price"] = (await a01.data_transfer("chargetwin", "SetTariff", '{"price_per_kwh": -1}')).status
    out["not_a_price"] = (await a01.data_transfer("chargetwin", "SetTariff", "[1, 2]")).status
    out["other_vendor"] = (await a01.data_transfer("acme", "Hello", "hi")).status

    # A running transaction: the EVSE goes out of service when it ends.
    out["scheduled_t_s"] = clock.t_s()
    out["scheduled"] = (await a01.change_availability("Inoperative", {"id": evse})).status

    # The idle station: one EVSE out, a station reset (out while it reboots), the EVSE back.
    out["b_out"] = (await b01.change_availability("Inoperative", {"id": 2})).status
    out["b_reset"] = (await b01.reset("Immediate")).status
    await rec.wait_for(lambda: sum(c == "b.01" for c, _ in rec.boots) == 2, 15)
    b01 = await csms.wait_connected("b.01", 10)
    out["b_back"] = (await b01.change_availability("Operative", {"id": 2})).status
    out["evse_reset"] = (await a02.reset("Immediate", evse_id=1)).status  # ends a transaction, no reboot
    await clock.sleep(600.0)
    out["boots"] = sorted(c for c, _ in rec.boots)
    return out


@pytest.mark.slow
def test_csms_remote_control_of_201_stations_reaches_the_simulation(paced_run, arun):
    """Every CSMS request a 2.0.1 station accepts becomes the matching simulation command; refusals change nothing."""
    result, out = arun(bridged(paced_run, Csms(response_timeout_s=5.0), remote_control), timeout_s=120)
    answers = {k: out[k] for k in out if k not in ("tx", "evse", "scheduled_t_s", "boots")}
    assert answers == {
        "stop": "Accepted",
        "stop_unknown": "Rejected",
        "start": "Accepted",
        "start_empty": "Rejected",  # every driver starts by plugging in: no EV, no transaction
        "set_evse": "Accepted",
        "clear_by_id": "Accepted",
        "set_other": "Accepted",
        "clear_by_criteria": "Accepted",
        "clear_nothing": "Unknown",
        "price": "Accepted",
        "bad_price": "Rejected",
        "not_a_price": "Rejected",
        "other_vendor": "UnknownVendorId",
        "scheduled": "Scheduled",
        "b_out": "Accepted",
        "b_reset": "Accepted",
        "b_back": "Accepted",
        "evse_reset": "Accepted",
    }
    tables = result.tables
    port = f"a.01.{out['evse']}"

    # Remote stop then start: the session's power is limited to 0, then the limit is lifted.
    events = events_frame(tables)
    limits = events[(events["event"] == "power_limit") & (events["evse_id"] == port)]["value"].tolist()
    assert limits[:2] == [0.0, math.inf]
    assert 0.99 in tables.tariff_changes["price_per_kwh"].tolist()

    sessions = sessions_frame(tables)
    # Scheduled out of service: once the running session ends, no driver plugs in there again.
    later = sessions[(sessions["evse_id"] == port) & (sessions["plug_t_s"] > out["scheduled_t_s"])]
    assert later.empty
    current = sessions[(sessions["evse_id"] == port) & (sessions["plug_t_s"] <= out["scheduled_t_s"])].iloc[-1]
    ended_in_run = current["outcome"] != "ongoing"
    # Nobody drove to site b: the idle station's requests had nothing else to act on.
    assert not (sessions["site_id"] == "b").any()

    applied = result.qa["bridge"]["commands_applied"]
    assert applied["SetPowerLimit"] == 2  # the stop and the start; refusals sent none
    assert applied["SetTariff"] == 1  # invalid prices are refused at the station
    assert applied["SetChargingProfile"] == 2
    assert applied["ClearChargingProfile"] == 2  # a clear that removed nothing is not forwarded
    # b.01.2 out, b.01.1 out for the reboot and back at boot, b.01.2 back; a.01's EVSE out once its session ended
    assert applied["ChangeAvailability"] == 4 + int(ended_in_run)
    assert "Reset" not in applied  # without serviceability a reset is ports out of service, not a repair
    assert result.qa["bridge"]["commands_refused_count"] == 0

    # The station reset rebooted b.01 only; the EVSE reset of a.02 did not reboot it.
    assert out["boots"] == ["a.01", "a.02", "b.01", "b.01"]


@pytest.mark.slow
@pytest.mark.parametrize("refused_by", ["authorize", "transaction_event"])
def test_csms_refusing_201_tokens_turns_those_drivers_away(paced_run, arun, refused_by):
    """Tokens the CSMS refuses (in Authorize, or later in TransactionEvent) end those sessions, rejected.

    The CSMS refuses the token of every odd-numbered session: exactly those, of the sessions it heard of, end
    with outcome ``rejected`` and cause ``authorization``; the even ones are served as usual.
    """
    csms = Csms(response_timeout_s=5.0)
    rec = csms.records201
    rec.rejected_tokens.update(f"SIM{i:08d}" for i in range(1, 400, 2))
    if refused_by == "transaction_event":  # Authorize says yes; the transaction's token is refused afterwards
        rec.scripted["Authorize"] = [{"idTokenInfo": {"status": "Accepted"}}] * 400
    result, _ = arun(bridged(paced_run, csms), timeout_s=120)

    sessions = sessions_frame(result.tables)
    plugged = sessions[sessions["evse_id"].notna()]
    if refused_by == "authorize":
        told = {int(token[3:]) for _, token in rec.authorizations}
    else:
        told = {int(e.payload["idToken"]["idToken"][3:]) for e in rec.tx_events if "idToken" in e.payload}
    heard = plugged[plugged["session_id"].isin(told)]
    odd = heard[heard["session_id"] % 2 == 1]
    even = heard[heard["session_id"] % 2 == 0]
    assert len(odd) >= 2
    assert len(even) >= 2
    assert set(odd["outcome"]) == {"rejected"}
    assert set(odd["cause"]) == {"authorization"}
    assert "rejected" not in set(even["outcome"])
    assert result.qa["bridge"]["events_forwarded"]["AuthorizationRefused"] == len(odd)
    # They leave when the answer arrives: within a few round trips (at 5000×, 2 wall seconds ≈ 2.8 simulated hours).
    assert ((odd["departure_t_s"] - odd["plug_t_s"]) < 2.0 * SPEED).all()
    if refused_by == "transaction_event":  # the station ended those transactions itself, DeAuthorized
        reasons = [e.payload["transactionInfo"].get("stoppedReason") for e in rec.tx_events if e.event_type == "Ended"]
        assert reasons.count("DeAuthorized") >= len(odd)
