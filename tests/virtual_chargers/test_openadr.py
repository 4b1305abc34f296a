"""The OpenADR round trip: a real openleadr VTN on loopback pushes events to the twin's VEN in a paced run."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import pytest

from sim.metrics import build_tables
from tests.conftest import make_scenario
from virtual_chargers.paced_run import PacedRun

openleadr = pytest.importorskip("openleadr")
# The openleadr library's own use of aiohttp, not ours.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")]

SPEED = 3600.0  # a simulated hour per wall-clock second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def round_trip():
    port = free_port()
    vtn = openleadr.OpenADRServer(vtn_id="grid-operator", http_host="127.0.0.1", http_port=port,
                                  requested_poll_freq=timedelta(seconds=0.5), show_fingerprint=False)  # fmt: skip
    opts, reports, registered = [], [], asyncio.Event()

    async def on_registration(info):
        registered.set()
        return "ven-twin", "reg-1"

    async def on_register_report(ven_id, resource_id, measurement, unit, scale, min_sampling_interval,
                                 max_sampling_interval):  # fmt: skip
        async def on_update(data):
            reports.extend((resource_id, value) for _, value in data)

        return on_update, timedelta(seconds=1)

    async def on_opt(ven_id, event_id, opt_type):
        opts.append((event_id, opt_type))

    vtn.add_handler("on_create_party_registration", on_registration)
    vtn.add_handler("on_register_report", on_register_report)
    await vtn.run_async()
    openadr = {"vtn_url": f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b", "report_interval_s": 1.0, "speed": SPEED,
               "event_times": "wall"}  # fmt: skip
    scenario = make_scenario(horizon_days=0.5, manager={"kind": "equal_share"},
                             demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 10.0},
                                      "dwell_min": 240}],
                             grid={"demand_response": {"openadr": openadr}})  # fmt: skip
    paced = PacedRun(scenario)  # the paced run `chargetwin run` makes of a scenario with an OpenADR server
    run_task = asyncio.create_task(paced.run())
    try:
        await asyncio.wait_for(paced.started.wait(), 20)
        await asyncio.wait_for(registered.wait(), 10)
        clock = paced.clock
        assert clock is not None
        now, sim_now = datetime.now(UTC), clock.t_s()
        windows = [
            (now + timedelta(seconds=3), timedelta(seconds=2), "simple", "level", 2.0),  # 50 % of 100 kW
            (now + timedelta(seconds=7), timedelta(seconds=2), "LOAD_CONTROL", "x-loadControlSetpoint", 15.0),
        ]
        for k, (start, duration, name, kind, payload) in enumerate(windows):
            vtn.add_event(ven_id="ven-twin", signal_name=name, signal_type=kind, event_id=f"e{k}",
                          intervals=[{"dtstart": start, "duration": duration, "signal_payload": payload}],
                          callback=on_opt)  # fmt: skip
        result = await asyncio.wait_for(run_task, 60)
    finally:
        paced.stop()
        await vtn.stop()
    return result.tables, windows, (now, sim_now), opts, reports, result.openadr


def test_openadr_wall_clock_events_cap_the_simulated_load():
    """With wall-clock event times, two VTN events cap the load at the matching simulated times; opt-ins, reports."""
    tables, windows, (now, sim_now), opts, reports, received = asyncio.run(round_trip())
    dr = tables.dr
    assert dr is not None
    assert sorted(dr["cap_kw"].tolist()) == [15.0, 50.0]
    steps = build_tables(tables).load_steps
    for (start, duration, *_), a, b, cap in zip(windows, dr["start_t_s"], dr["end_t_s"], dr["cap_kw"], strict=True):
        # The simulated time at which the wall clock reads the event's end (to within 50 ms of wall time);
        # its start too, unless the VEN heard of the event only after it began (a loaded machine).
        assert b == pytest.approx(sim_now + (start + duration - now).total_seconds() * SPEED, abs=0.05 * SPEED)
        assert b - a <= duration.total_seconds() * SPEED + 1e-6
        inside = steps[(steps["t_s"] >= a) & (steps["t_s"] < b)]
        assert inside["power_kw"].max() <= cap + 1e-6
    # The windows are 4 wall seconds apart, so 4 simulated hours apart.
    assert dr["end_t_s"][1] - dr["end_t_s"][0] == pytest.approx(4 * SPEED, abs=0.01 * SPEED)
    assert steps["power_kw"].max() > 50.0  # outside the events the load was above both caps
    assert sorted(opts) == [("e0", "optIn"), ("e1", "optIn")]
    assert [r["opt"] for r in received] == ["optIn", "optIn"]
    assert {site for site, _ in reports} == {"a"}
    assert len(reports) >= 2


async def calendar_round_trip(
    start: datetime, event_start: datetime, event_h: float, speed: float, policy: str = "opt_in"
):
    """A VTN schedules one SIMPLE level 2 event at ``event_start`` on the simulated calendar, before the run starts."""
    port = free_port()
    vtn = openleadr.OpenADRServer(vtn_id="grid-operator", http_host="127.0.0.1", http_port=port,
                                  requested_poll_freq=timedelta(seconds=0.5), show_fingerprint=False)  # fmt: skip
    opts = []

    async def on_registration(info):
        return "ven-twin", "reg-1"

    async def on_opt(ven_id, event_id, opt_type):
        opts.append((event_id, opt_type))

    vtn.add_handler("on_create_party_registration", on_registration)
    vtn.add_event(ven_id="ven-twin", signal_name="simple", signal_type="level", event_id="evening",
                  intervals=[{"dtstart": event_start, "duration": timedelta(hours=event_h), "signal_payload": 2.0}],
                  callback=on_opt)  # fmt: skip
    await vtn.run_async()
    openadr = {"vtn_url": f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b", "speed": speed,  # simulated calendar
               "policy": policy}  # fmt: skip
    scenario = make_scenario(start=start.isoformat(), horizon_days=3, manager={"kind": "equal_share"},
                             demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 10.0},
                                      "dwell_min": 240}],
                             grid={"demand_response": {"openadr": openadr}})  # fmt: skip
    paced = PacedRun(scenario)
    try:
        result = await asyncio.wait_for(paced.run(), 60)
    finally:
        paced.stop()
        await vtn.stop()
    return result, opts


def test_openadr_event_times_are_on_the_simulated_calendar():
    """A VTN that schedules 18:00-19:00 on the run's third day caps exactly that, without knowing the speed."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    event_start = tomorrow + timedelta(days=2, hours=18)  # 18:00 on simulated day 3
    result, opts = asyncio.run(calendar_round_trip(tomorrow, event_start, 1.0, speed=20000.0))
    dr = result.tables.dr
    assert dr is not None
    day3_18h = 2 * 86400.0 + 18 * 3600.0
    assert dr["start_t_s"].tolist() == [day3_18h]
    assert dr["end_t_s"].tolist() == [day3_18h + 3600.0]
    assert dr["cap_kw"].tolist() == [0.5 * 100.0]  # SIMPLE level 2: half of site a's 100 kW
    steps = build_tables(result.tables).load_steps
    inside = steps[(steps["t_s"] >= day3_18h) & (steps["t_s"] < day3_18h + 3600.0)]
    assert inside["power_kw"].max() <= 50.0 + 1e-6
    assert steps["power_kw"].max() > 50.0
    assert [r["opt"] for r in result.openadr] == ["optIn"]
    assert opts == [("evening", "optIn")]


def test_a_ven_that_opts_out_records_the_event_declined_and_applies_no_cap():
    """The VEN's optOut maps to the twin's opt-out: the event is in the record as declined, and no cap holds."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    event_start = tomorrow + timedelta(days=2, hours=18)
    result, opts = asyncio.run(calendar_round_trip(tomorrow, event_start, 1.0, speed=20000.0, policy="opt_out"))
    dr, opt_outs = result.tables.dr, result.tables.dr_opt_outs
    assert dr is not None
    assert opt_outs is not None
    day3_18h = 2 * 86400.0 + 18 * 3600.0
    assert dr["start_t_s"].tolist() == [day3_18h]
    assert opt_outs["accepted"].tolist() == [1]
    assert opt_outs["event_id"].tolist() == dr["event_id"].tolist()
    steps = build_tables(result.tables).load_steps
    inside = steps[(steps["t_s"] >= day3_18h) & (steps["t_s"] < day3_18h + 3600.0)]
    assert inside["power_kw"].max() > 50.0, "the declined cap of 50 kW did not apply"
    assert [r["opt"] for r in result.openadr] == ["optOut"]
    assert opts == [("evening", "optOut")]
