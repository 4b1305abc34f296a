"""A CSMS sees the simulated hardware's outages as real chargers report them: faults Faulted, the rest Unavailable.

One charger with two connectors and no drivers, so every status the CSMS receives comes from an
outage: faults (Faulted, with the fault mode's error code in 1.6), and a reset sent by the CSMS,
firmware installs and preventive maintenance (Unavailable), each followed by Available. The status
sequence the CSMS must see is derived from the run's recorded outage rows by that rule alone, and what
a real charger can report: while it reboots for the reset it is offline, and on its return it reports
the status it has then.
Loopback on 127.0.0.1, port 0; every wait is bounded and everything started is stopped.
"""

import asyncio

import pytest

from sim.service_metrics import outages_frame
from tests.conftest import make_scenario
from tests.virtual_chargers.raw_csms import RawCsms

SPEED = 5000.0
HORIZON_DAYS = 0.5
RESET_AT_S = 3 * 3600.0


def scenario(csms_url: str, ocpp: str):
    """Faults every few hours per connector, firmware and maintenance every 6 h, a crew around the clock."""
    return make_scenario(
        name="statuses",
        seed=7,
        start="2026-03-02T00:00:00+01:00",
        horizon_days=HORIZON_DAYS,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 100.0,
                    "chargers": [{"model": "ac22", "count": 1, "connectors": 2, "power_kw": 22.0, "current": "ac"}],
                }
            ]
        },
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 0.0}, "dwell_min": 60}],
        serviceability={
            "fault_modes": {
                "trip": {
                    "error_code": "GroundFailure",
                    "ttf": {"dist": "exponential", "mtbf_days": 0.2},
                    "detected": True,
                    "scope": "connector",
                    "diagnosis_min": 10,
                    "repair_min": 30,
                }
            },
            "hardware": {"ac22": ["trip"]},
            "crews": [
                {
                    "id": "c",
                    "technicians": 2,
                    "depot": {"lat": 52.0, "lon": 4.0},
                    "shift": {"start_h": 0, "end_h": 24, "days": [0, 1, 2, 3, 4, 5, 6]},
                }
            ],
            "operator": {"kind": "preventive", "interval_days": 0.25, "visit_min": 40},
            "firmware": {"interval_days": 0.25, "duration_min": 20, "failure_prob": 0.0},
        },
        manager={"kind": "ocpp", "csms": csms_url, "ocpp": ocpp, "speed": SPEED, "response_timeout_s": 5.0},
    )


async def run_with_reset(paced_run, ocpp: str):
    """The paced run; the CSMS resets the charger at RESET_AT_S."""
    csms = await RawCsms(version=ocpp).start()
    boots: list[float] = []  # simulated times the CSMS accepted a boot

    async def reset(runner) -> tuple[dict, float]:
        clock = runner.clock
        assert clock is not None
        await asyncio.wait_for(clock.sleep_until(RESET_AT_S), 30)
        csms.after = lambda _c, _ch, action, _p, _a: boots.append(clock.t_s()) if action == "BootNotification" else None
        reset_t_s = clock.t_s()
        return await csms.call("a.01", "Reset", {"type": "Soft" if ocpp == "1.6" else "Immediate"}), reset_t_s

    try:
        result, (answer, reset_t_s) = await paced_run(scenario(csms.url, ocpp), reset)
    finally:
        await csms.stop()
    return result, csms, answer, (reset_t_s, boots[0])


def expected_statuses(outages, evse_id: str, horizon_s: float, offline: tuple[float, float]) -> list[str]:
    """The statuses a connector must show, derived from its outage rows; repeats collapse.

    Available at first, then after each change Faulted while a fault is open, else Unavailable
    while any outage is, else Available. Changes while the charger is ``offline`` (from, to) are not
    reported; on its return it reports the status it has then.

    At one instant outages end first, then faults begin, then the rest: a repair ends before the next
    visit starts, and a fault comes before the reset the operator answers it with.
    """
    rows = outages[outages["evse_id"] == evse_id]
    changes = []  # (t_s, order, +1 start / -1 end, is a fault)
    for start, end, fault_id in zip(rows["start_t_s"], rows["end_t_s"], rows["fault_id"], strict=True):
        fault = bool(fault_id >= 0)
        changes.append((start, 1 if fault else 2, 1, fault))
        if end < horizon_s:
            changes.append((end, 0, -1, fault))
    changes.append((offline[1], 3, 0, False))  # the return: the status then
    seq, faults, others = ["Available"], 0, 0
    for t_s, _, delta, fault in sorted(changes):
        if fault:
            faults += delta
        else:
            others += delta
        status = "Faulted" if faults else "Unavailable" if others else "Available"
        if status != seq[-1] and not offline[0] < t_s < offline[1]:
            seq.append(status)
    return seq


def seen_statuses(csms: RawCsms, ocpp: str, connector: int) -> tuple[list[str], set[str]]:
    """The connector's statuses as the CSMS got them (repeats collapsed), and the 1.6 error codes of Faulted."""
    seq: list[str] = []
    codes: set[str] = set()
    for r in csms.of("StatusNotification", "a.01"):
        p = r.payload
        if ocpp == "1.6":
            if p["connectorId"] != connector:
                continue
            status = p["status"]
            if status == "Faulted":
                codes.add(p["errorCode"])
        else:
            if p["evseId"] != connector:
                continue
            status = p["connectorStatus"]
        if not seq or seq[-1] != status:
            seq.append(status)
    return seq, codes


@pytest.mark.slow
@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_csms_sees_faults_as_faulted_and_planned_outages_as_unavailable(paced_run, arun, ocpp):
    """Faults show Faulted, resets, firmware installs and maintenance Unavailable, each end Available.

    Exactly the sequence the recorded outages define; 1.6 Faulted carries the fault mode's error code.
    """
    result, csms, answer, offline = arun(run_with_reset(paced_run, ocpp), timeout_s=120)
    assert answer == {"status": "Accepted"}
    tables = result.tables
    outages = outages_frame(tables)
    causes = set(outages["cause"].astype(str))
    assert {"reset", "firmware_update", "maintenance"} <= causes, causes  # the run has every kind of outage
    assert (outages["fault_id"] >= 0).any()
    horizon_s = tables.scenario.horizon_s
    for connector in (1, 2):
        seen, codes = seen_statuses(csms, ocpp, connector)
        want = expected_statuses(outages, f"a.01.{connector}", horizon_s, offline)
        assert seen == want, (connector, seen, want)
        if ocpp == "1.6":
            assert codes == {"GroundFailure"}
