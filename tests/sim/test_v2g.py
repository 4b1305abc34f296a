"""Bidirectional charging (V2G): closed forms of a discharge, and what holds under Hypothesis with discharging on.

Every expected number comes from a definition: SoC falls by P·t / C while discharging at P for
t hours; the floor is the driver's minimum SoC or the departure guard recomputed here from the
EV's charge curve; energy is recounted from the recorded rows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sim.config import ScenarioError
from sim.engine import RunTables, simulate
from sim.ev import ChargeProfile
from sim.managers.base import SessionStarted, SetPowerLimit, SetTimer, StatusChanged, Timer
from sim.metrics import load_15min, load_steps
from sim.v2g import V2gLimits, discharge_plan, guard_soc_frac
from tests.conftest import make_scenario

H = 3600.0
LEAF_KWH, LEAF_AC_KW = 39.0, 6.6  # nissan_leaf_40: capacity and on-board AC charger
TOL = 1e-9


def _site(chargers: list[dict[str, Any]], capacity_kw: float = 1000.0) -> dict[str, Any]:
    return {"sites": [{"id": "a", "lat": 0.0, "lon": 0.0, "capacity_kw": capacity_kw, "chargers": chargers}]}


def _fleet(v2g: dict[str, Any] | None, iso: float = 1.0, preset: str = "nissan_leaf_40") -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"preset": preset, "share": 1, "iso15118_share": iso}
    if v2g is not None:
        entry["v2g"] = v2g
    return [entry]


def _demand(per_hour: float, dwell_min: Any, soc: Any, target: float = 0.8, max_queue: int = 0) -> list[dict]:
    return [{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": per_hour},
             "dwell_min": dwell_min, "arrival_soc_frac": soc, "target_soc_frac": target,
             "max_queue": max_queue}]  # fmt: skip


class _Discharge:
    """Sets `kw` (negative: discharge) on every connector as its session starts; nothing else."""

    def __init__(self, kw: float) -> None:
        self.kw = kw

    def handle(self, event, network):
        if isinstance(event, SessionStarted):
            return [SetPowerLimit(event.evse_id, self.kw)]
        return ()


def _energy_out_kwh(run: RunTables, session_id: int) -> float:
    d = run.discharges
    assert d is not None
    mine = d["session_id"] == session_id
    return float((-d["power_kw"][mine] * (d["t1_s"][mine] - d["t0_s"][mine])).sum() / H)


# ---------------------------------------------------------------- closed forms


def test_discharge_drops_soc_by_p_t_over_capacity_and_stops_at_the_minimum():
    """One EV at 5 kW from SoC 0.9 stops at its minimum 0.3 after (0.9 − 0.3)·39 / 5 h, SoC falling P·t / C."""
    sc = make_scenario(
        network=_site([{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}]),
        fleet=_fleet({"max_discharge_kw": 20.0, "min_soc_frac": 0.3}),
        demand=_demand(0.5, 2000.0, 0.9, target=0.9),  # dwell 33 h: the minimum SoC comes first
        horizon_days=1,
    )
    run = simulate(sc, manager=_Discharge(-5.0))
    d = run.discharges
    assert d is not None
    first = 0  # the first session's discharge
    t0, t1 = d["t0_s"][first], d["t1_s"][first]
    assert d["power_kw"][first] == -5.0
    assert t1 - t0 == pytest.approx((0.9 - 0.3) * LEAF_KWH / 5.0 * H, rel=1e-12)
    assert d["soc0_frac"][first] == 0.9
    assert d["soc1_frac"][first] == 0.3
    hours = (t1 - t0) / H
    assert d["soc0_frac"][first] - d["soc1_frac"][first] == pytest.approx(5.0 * hours / LEAF_KWH, rel=1e-12)


def test_discharge_power_is_the_least_of_command_port_and_ev():
    """A −50 kW command on a port that discharges 7 kW, for an EV that gives 6 kW, discharges at 6 kW."""
    sc = make_scenario(
        network=_site(
            [{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True, "max_discharge_kw": 7.0}]
        ),  # fmt: skip
        fleet=_fleet({"max_discharge_kw": 6.0, "min_soc_frac": 0.3}),
        demand=_demand(0.5, 600.0, 0.9, target=0.9),
        horizon_days=1,
    )
    run = simulate(sc, manager=_Discharge(-50.0))
    assert run.discharges is not None
    assert set(run.discharges["power_kw"].tolist()) == {-6.0}


def test_departure_guard_stops_the_discharge_where_full_power_just_reaches_the_guarantee():
    """AC at 6.6 kW (flat): the guard is G − 6.6·(D − t)/C, so the stop solves s0 − P(t − t0)/C = that line.

    With s0 = 0.9, P = 5 kW, G = 0.8 and a 4 h stay from t0: 0.9 − 5τ/39 = 0.8 − 6.6(4 − τ)/39
    gives τ = (0.1·39 + 6.6·4) / (5 + 6.6) hours.
    """
    sc = make_scenario(
        network=_site([{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}]),
        fleet=_fleet({"max_discharge_kw": 20.0, "min_soc_frac": 0.1, "departure_soc_frac": 0.8}),
        demand=_demand(0.5, 240.0, 0.9, target=0.9),
        horizon_days=1,
    )
    run = simulate(sc, manager=_Discharge(-5.0))
    d = run.discharges
    assert d is not None
    tau_h = (0.1 * LEAF_KWH + LEAF_AC_KW * 4.0) / (5.0 + LEAF_AC_KW)
    assert (d["t1_s"][0] - d["t0_s"][0]) / H == pytest.approx(tau_h, rel=1e-9)
    assert d["soc1_frac"][0] == pytest.approx(0.9 - 5.0 * tau_h / LEAF_KWH, rel=1e-9)


def test_plan_refuses_at_the_floor_and_runs_to_departure_when_the_battery_is_big_enough():
    """discharge_plan: at the minimum SoC it refuses; with room to spare it runs until departure."""
    full = ChargeProfile(((0.0, 10.0), (1.0, 10.0)), 10.0, 50.0)
    limits = V2gLimits(10.0, 0.2, 0.5)
    assert discharge_plan(limits, full, 0.8, 10 * H, 0.2, 5.0, 50.0, 0.0) == (0.0, 0.2)
    # 1 kW for 1 h from 0.9: 0.88 at departure, above the 0.5 guarantee and the 0.2 minimum.
    end_t_s, soc = discharge_plan(limits, full, 0.8, H, 0.9, 1.0, 50.0, 0.0)
    assert end_t_s == math.inf
    assert soc == pytest.approx(0.9 - 1.0 / 50.0)
    # The guard at departure is the guarantee itself; an hour before, 10 kW for an hour less.
    assert guard_soc_frac(full, 0.5, H, H) == pytest.approx(0.5)
    assert guard_soc_frac(full, 0.5, H, 0.0) == pytest.approx(0.5 - 10.0 / 50.0)


def test_negative_limits_pause_ports_and_evs_that_cannot_discharge():
    """A negative limit on a one-way port, or for an EV without V2G, discharges nothing and delivers nothing."""
    for chargers, fleet in (
        ([{"model": "uni", "power_kw": 11.0, "current": "ac"}], _fleet({"max_discharge_kw": 5.0})),
        ([{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}], _fleet(None, iso=1.0)),
        ([{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}], _fleet(None, iso=0.0)),
    ):
        sc = make_scenario(network=_site(chargers), fleet=fleet, demand=_demand(1.0, 120.0, 0.5), horizon_days=1)
        run = simulate(sc, manager=_Discharge(-10.0))
        assert run.discharges is not None
        assert len(run.discharges["t0_s"]) == 0
        assert run.sessions["energy_delivered_kwh"].sum() == 0.0


def test_v2g_config_errors_name_the_fix():
    """V2G without ISO 15118, or a discharge power on a one-way charger, is refused with the fix in the message."""
    with pytest.raises(ScenarioError, match="iso15118_share"):
        make_scenario(fleet=_fleet({"max_discharge_kw": 5.0}, iso=0.0))
    with pytest.raises(ScenarioError, match="bidirectional: true"):
        make_scenario(network=_site([{"model": "x", "power_kw": 11.0, "current": "ac", "max_discharge_kw": 5.0}]))
    with pytest.raises(ScenarioError, match="same v2g everywhere"):
        make_scenario(fleet=_fleet({"max_discharge_kw": 5.0}) + _fleet({"max_discharge_kw": 7.0}))
    with pytest.raises(ScenarioError, match="departure_soc_frac"):
        make_scenario(fleet=_fleet({"max_discharge_kw": 5.0, "min_soc_frac": 0.5, "departure_soc_frac": 0.3}))


def test_scenarios_without_v2g_dump_as_before():
    """The resolved scenario of a run without V2G names none of its keys (results stay byte-identical)."""
    text = str(make_scenario().model_dump(mode="json"))
    for key in ("bidirectional", "max_discharge_kw", "'v2g'"):
        assert key not in text


# ---------------------------------------------------------------- properties


class _RandomV2g:
    """Answers events with limits drawn from a list (negative ones ask for discharge), and re-draws on timers."""

    def __init__(self, limits: list[float], every_s: float) -> None:
        self.limits = limits
        self.every_s = every_s
        self.k = 0

    def _next(self) -> float:
        self.k += 1
        return self.limits[self.k % len(self.limits)]

    def handle(self, event, network):
        if isinstance(event, Timer):
            out: list = [SetTimer(event.t_s + self.every_s, "again")]
            for sid in network.site_ids():
                out += [SetPowerLimit(e.evse_id, self._next()) for e in network.site(sid).evses if e.session_id]
            return out
        if isinstance(event, SessionStarted | StatusChanged):
            return [SetPowerLimit(event.evse_id, self._next())]
        return ()


class _HonestV2g:
    """Discharges a V2G EV only while it has headroom above its floor; otherwise lets it charge at full power."""

    def __init__(self, kw: float, every_s: float) -> None:
        self.kw = kw
        self.every_s = every_s

    def handle(self, event, network):
        out: list = []
        if isinstance(event, Timer):
            out.append(SetTimer(event.t_s + self.every_s, "again"))
        elif not isinstance(event, SessionStarted | StatusChanged):
            return ()
        for sid in network.site_ids():
            site = network.site(sid)
            for e in site.evses:
                v = site.v2g.get(e.evse_id)
                if e.session_id is not None:
                    want = -self.kw if v is not None and v.headroom_kwh > 0.01 else math.inf
                    if want != e.limit_kw:
                        out.append(SetPowerLimit(e.evse_id, want))
        return out


def _v2g_scenario(data) -> tuple[Any, dict[str, V2gLimits | None]]:
    """A site of one-way and bidirectional AC and DC ports, and a fleet of V2G and one-way EVs."""
    min_soc = data.draw(st.floats(0.05, 0.5))
    guarantee = data.draw(st.none() | st.floats(min_soc, 1.0))
    v2g = {"max_discharge_kw": data.draw(st.floats(1.0, 60.0)), "min_soc_frac": min_soc}
    if guarantee is not None:
        v2g["departure_soc_frac"] = guarantee
    chargers = [
        {
            "model": "ac_bi",
            "count": data.draw(st.integers(1, 3)),
            "power_kw": data.draw(st.sampled_from([7.4, 11.0, 22.0])),
            "current": "ac",
            "bidirectional": True,
        },  # fmt: skip
        {
            "model": "dc_bi",
            "count": data.draw(st.integers(0, 2)) or 1,
            "power_kw": 50.0,
            "current": "dc",
            "bidirectional": True,
            "max_discharge_kw": data.draw(st.floats(5.0, 50.0)),
        },  # fmt: skip
        {"model": "ac_uni", "count": data.draw(st.integers(1, 2)), "power_kw": 11.0, "current": "ac"},
    ]
    fleet = [
        {"preset": "nissan_leaf_40", "share": 1, "iso15118_share": data.draw(st.floats(0.3, 1.0)), "v2g": v2g},
        {"preset": "vw_id4_pro", "share": 1, "iso15118_share": 0.5},  # no V2G
    ]
    sc = make_scenario(
        network=_site(chargers),
        fleet=fleet,
        demand=_demand(
            data.draw(st.floats(0.5, 4.0)),
            {"dist": "uniform", "low": 60, "high": 720},
            {"dist": "uniform", "low": 0.1, "high": 0.95},
            target=data.draw(st.floats(0.5, 1.0)),
            max_queue=1,
        ),  # fmt: skip
        horizon_days=1.5,
        seed=data.draw(st.integers(0, 2**31 - 1)),
    )
    limits = V2gLimits(v2g["max_discharge_kw"], min_soc, guarantee)
    return sc, {"nissan_leaf_40": limits, "vw_id4_pro": None}


def _check_run(run: RunTables, limits: dict[str, V2gLimits | None]) -> None:
    """Conservation, floors and limits, recomputed from the recorded rows."""
    s, d = run.sessions, run.discharges
    assert d is not None
    if currently_in_test_context():
        event("discharged" if len(d["t0_s"]) else "no discharge")
    ids = s["session_id"]
    ports = run.network.ports
    capacity = np.array([m.capacity_kwh for m in run.models])[s["model"]]
    # Energy charged − energy discharged = ΔSoC × capacity, per session.
    out = np.array([_energy_out_kwh(run, int(i)) for i in ids])
    net = (s["soc_out_frac"] - s["soc_in_frac"]) * capacity
    np.testing.assert_allclose(s["energy_delivered_kwh"] - out, net, atol=1e-6)
    # Net site energy (15-minute load and exact steps alike) = Σ sessions.
    assert load_15min(run)["energy_kwh"].sum() == pytest.approx(net.sum(), abs=1e-6)
    for k in range(len(d["t0_s"])):
        row = int(np.flatnonzero(ids == d["session_id"][k])[0])
        model = run.models[s["model"][row]]
        v = limits[model.name]
        port = ports[d["evse"][k]]
        # Only a V2G EV on a bidirectional port discharges, within both limits.
        assert v is not None
        assert port.discharge_kw > 0
        assert 0 < -d["power_kw"][k] <= min(port.discharge_kw, port.rated_kw, v.max_discharge_kw) + TOL
        # SoC falls by P·t / C, and never below the minimum.
        drop = -d["power_kw"][k] * (d["t1_s"][k] - d["t0_s"][k]) / H / model.capacity_kwh
        assert d["soc0_frac"][k] - d["soc1_frac"][k] == pytest.approx(drop, abs=1e-9)
        assert d["soc1_frac"][k] >= v.min_soc_frac - TOL
        # Where it stopped, charging at full power still reaches the guarantee by departure.
        depart = s["departure_t_s"][row]
        if not np.isnan(depart):
            cap = (
                min(port.rated_kw, max(p for _, p in model.dc_curve))
                if port.dc
                else min(port.rated_kw, model.ac_max_kw)
            )
            curve = model.dc_curve if port.dc else ((0.0, cap), (1.0, cap))
            full = ChargeProfile(curve, cap, model.capacity_kwh)
            g = v.guarantee(_target(run, row))
            assert d["soc1_frac"][k] >= guard_soc_frac(full, g, depart, d["t1_s"][k]) - 1e-7
    # The exact power steps go negative only by what was discharged.
    if len(d["t0_s"]):
        assert load_steps(run)["power_kw"].min() >= float(d["power_kw"].sum()) - TOL


def _target(run: RunTables, row: int) -> float:
    """The driver's target SoC: requested energy over capacity, from where the EV arrived."""
    s = run.sessions
    capacity = run.models[s["model"][row]].capacity_kwh
    return float(s["soc_in_frac"][row] + s["energy_requested_kwh"][row] / capacity)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_commands_keep_energy_floors_and_limits(data):
    """Any mix of positive, zero, negative and lifted limits: energy is conserved, floors and limits hold."""
    sc, limits = _v2g_scenario(data)
    commands = data.draw(st.lists(st.sampled_from([-100.0, -20.0, -3.0, -0.0005, 0.0, 2.0, 11.0, math.inf]),
                                  min_size=1, max_size=8))  # fmt: skip
    run = simulate(sc, manager=_RandomV2g(commands, data.draw(st.floats(300.0, 7200.0))))
    _check_run(run, limits)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_departure_guarantee_holds_when_the_manager_honours_the_floor(data):
    """A manager that discharges only above the floor, else lets the EV charge: V2G EVs leave with their guarantee."""
    sc, limits = _v2g_scenario(data)
    run = simulate(sc, manager=_HonestV2g(data.draw(st.floats(1.0, 30.0)), data.draw(st.floats(300.0, 3600.0))))
    _check_run(run, limits)
    s, d = run.sessions, run.discharges
    assert d is not None
    for sid in np.unique(d["session_id"]):
        row = int(np.flatnonzero(s["session_id"] == sid)[0])
        if np.isnan(s["departure_t_s"][row]):
            continue  # still plugged in at the horizon
        v = limits[run.models[s["model"][row]].name]
        assert v is not None
        assert s["soc_out_frac"][row] >= v.guarantee(_target(run, row)) - 1e-6


# ---------------------------------------------------------------- what managers see, what a run writes


class _Watch:
    """Records the site's V2G view at every session start, then discharges at 5 kW."""

    def __init__(self) -> None:
        self.seen: list = []

    def handle(self, event, network):
        if isinstance(event, SessionStarted):
            site = network.site(event.site_id)
            self.seen.append((site.v2g.get(event.evse_id), site.t_s))
            return [SetPowerLimit(event.evse_id, -5.0)]
        return ()


def test_view_shows_discharge_headroom_floor_and_negative_power():
    """The view of a V2G EV: its limits, its floor (minimum or departure guard) and a negative power while it gives."""
    sc = make_scenario(
        network=_site(
            [
                {
                    "model": "bi",
                    "count": 2,
                    "power_kw": 11.0,
                    "current": "ac",
                    "bidirectional": True,
                    "max_discharge_kw": 7.0,
                }
            ]
        ),  # fmt: skip
        fleet=_fleet({"max_discharge_kw": 9.0, "min_soc_frac": 0.25, "departure_soc_frac": 0.7}),
        demand=_demand(1.0, 300.0, 0.9, target=0.9),
        horizon_days=1,
    )
    watch = _Watch()
    simulate(sc, manager=watch)
    v, t_s = watch.seen[0]
    assert v is not None
    assert v.max_discharge_kw == 7.0  # the port's 7 kW below the EV's 9 kW
    assert (v.min_soc_frac, v.departure_soc_frac, v.soc_frac, v.full_kw) == (0.25, 0.7, 0.9, LEAF_AC_KW)
    # Five hours at 6.6 kW is 33 kWh: the guard is 0.7 − 33/39 < 0, so the floor is the minimum SoC.
    assert v.departure_t_s - t_s == pytest.approx(5 * H)
    assert v.floor_soc_frac == 0.25
    assert v.headroom_kwh == pytest.approx((0.9 - 0.25) * LEAF_KWH)


def test_results_write_the_discharges_table(tmp_path):
    """A run with discharges writes discharges.parquet with the contract's columns; energy matches the sessions."""
    import pandas as pd

    from sim.results import write_results

    sc = make_scenario(
        network=_site([{"model": "bi", "count": 2, "power_kw": 11.0, "current": "ac", "bidirectional": True}]),
        fleet=_fleet({"max_discharge_kw": 9.0, "min_soc_frac": 0.4}),
        demand=_demand(1.0, 300.0, 0.9, target=0.9),
        horizon_days=1,
    )
    run = simulate(sc, manager=_Discharge(-4.0))
    write_results(run, tmp_path / "out")
    d = pd.read_parquet(tmp_path / "out" / "discharges.parquet")
    for col in ("t0_s", "t1_s", "soc0_frac", "soc1_frac", "power_kw", "site", "evse", "session_id"):
        assert col in d.columns
    assert len(d) > 0
    assert (d["power_kw"] == -4.0).all()
    sessions = pd.read_parquet(tmp_path / "out" / "sessions.parquet")
    load = pd.read_parquet(tmp_path / "out" / "load.parquet")
    net = sessions["energy_delivered_kwh"].sum() - (-d["power_kw"] * (d["t1_s"] - d["t0_s"]) / H).sum()
    assert load["energy_kwh"].sum() == pytest.approx(net, abs=1e-6)


@pytest.mark.parametrize(
    "manager",
    [
        {"kind": "v2g_peak_shaving", "threshold_kw": 15.0, "interval_min": 10.0},
        {"kind": "v2g_price_arbitrage", "charge_below_per_kwh": 0.15, "discharge_above_per_kwh": 0.3},
    ],
    ids=["v2g_peak_shaving", "v2g_price_arbitrage"],
)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reference_managers_keep_every_guarantee(manager, data):
    """The shipped V2G managers discharge, and every V2G EV that discharged leaves with its guarantee."""
    sc, limits = _v2g_scenario(data)
    prices = [0.1, 0.1, 0.2, 0.35, 0.4, 0.2] * 4  # cheap nights, dear evenings
    sc = sc.model_copy(update={"manager": type(sc.manager).model_validate({"kind": "equal_share"})})
    from sim.config import validate_data

    raw = sc.model_dump(mode="json") | {"manager": manager}
    raw["grid"] = {"energy_price": {"kind": "tou", "per_kwh_by_hour": prices}}
    sc = validate_data(raw, "test", Path("."))
    run = simulate(sc)
    _check_run(run, limits)
    _check_guarantees(run, limits)


def _check_guarantees(run: RunTables, limits: dict[str, V2gLimits | None]) -> None:
    """Every V2G EV that discharged and left did so with at least its guarantee."""
    s, d = run.sessions, run.discharges
    assert d is not None
    for sid in np.unique(d["session_id"]).tolist():
        row = int(np.flatnonzero(s["session_id"] == sid)[0])
        if np.isnan(s["departure_t_s"][row]):
            continue
        v = limits[run.models[s["model"][row]].name]
        assert v is not None
        soc_out, guarantee = float(s["soc_out_frac"][row]), v.guarantee(_target(run, row))
        assert soc_out >= guarantee - 1e-6, f"session {sid} left at {soc_out}, below its guarantee {guarantee}"


class _Profile:
    """Installs one TxDefault charging profile on every connector at the start: −P for an hour, then +P."""

    def __init__(self, kw: float) -> None:
        self.kw = kw

    def handle(self, event, network):
        from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose, SchedulePeriod
        from sim.managers.base import SetChargingProfile

        if isinstance(event, Timer) and event.name == "start":
            periods = (SchedulePeriod(0.0, -self.kw), SchedulePeriod(H, self.kw))
            profile = ChargingProfile(1, ChargingProfilePurpose.TX_DEFAULT, 0, periods)  # from each session's start
            return [SetChargingProfile(profile, evse_id=e.evse_id) for sid in network.site_ids()
                    for e in network.site(sid).evses]  # fmt: skip
        return ()


def test_a_charging_profile_with_a_negative_period_discharges_then_charges():
    """An OCPP profile −4 kW for the first hour of each session, then +4 kW: an hour out at 4 kW, then charging."""
    sc = make_scenario(
        network=_site([{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}]),
        fleet=_fleet({"max_discharge_kw": 10.0, "min_soc_frac": 0.2}),
        demand=_demand(0.5, 300.0, 0.7, target=0.9),
        horizon_days=1,
    )
    run = simulate(sc, manager=_Profile(4.0))
    d, iv, s = run.discharges, run.intervals, run.sessions
    assert d is not None
    plug = s["plug_t_s"][0]
    assert (d["t0_s"][0], d["t1_s"][0], d["power_kw"][0]) == (plug, plug + H, -4.0)
    assert d["soc0_frac"][0] - d["soc1_frac"][0] == pytest.approx(4.0 / LEAF_KWH)
    first_charge = iv["t0_s"][iv["evse"] == s["evse"][0]].min()
    assert first_charge == plug + H  # charging starts where the discharge ended


# ---------------------------------------------------------------- time moves: no endless charge/discharge


class _Bounded:
    """A manager that fails the test, instead of hanging it, past `calls` events (a run that loops at one instant)."""

    def __init__(self, manager: Any, calls: int) -> None:
        self.manager, self.left = manager, calls

    def handle(self, event, network):
        self.left -= 1
        assert self.left > 0, f"the manager was called too often: the run loops at t = {event.t_s!r} s"
        return self.manager.handle(event, network)


def _hung_before() -> Any:
    """The `v2g_price_arbitrage` example drawn by the property test that looped forever (its seed 3, fd07e59).

    Three V2G EVs at their targets (two on 7.4 kW AC, one on DC) near departure were urgent (SoC
    above the guard for less than two intervals at full power) yet discharged while full, then
    charged back as urgent at the next re-plan, each stretch shorter than the last: the run
    converged on t = 101,785.36 s and crawled there by a few ulps per event.
    """
    from sim.config import validate_data

    sc = make_scenario(
        network=_site(
            [
                {"model": "ac_bi", "count": 3, "power_kw": 7.4, "current": "ac", "bidirectional": True},
                {
                    "model": "dc_bi",
                    "count": 1,
                    "power_kw": 50.0,
                    "current": "dc",
                    "bidirectional": True,
                    "max_discharge_kw": 36.23733460212247,
                },
                {"model": "ac_uni", "count": 2, "power_kw": 11.0, "current": "ac"},
            ]
        ),
        fleet=[
            {
                "preset": "nissan_leaf_40",
                "share": 1,
                "iso15118_share": 0.933462711385411,
                "v2g": {"max_discharge_kw": 50.9811103853845, "min_soc_frac": 0.06469380367806314},
            },
            {"preset": "vw_id4_pro", "share": 1, "iso15118_share": 0.5},
        ],
        demand=_demand(
            3.0577556872672367,
            {"dist": "uniform", "low": 60, "high": 720},
            {"dist": "uniform", "low": 0.1, "high": 0.95},
            target=0.5183148873199571,
            max_queue=1,
        ),
        horizon_days=1.5,
        seed=773,
    )
    raw = sc.model_dump(mode="json")
    raw["manager"] = {"kind": "v2g_price_arbitrage", "charge_below_per_kwh": 0.15, "discharge_above_per_kwh": 0.3}
    raw["grid"] = {"energy_price": {"kind": "tou", "per_kwh_by_hour": [0.1, 0.1, 0.2, 0.35, 0.4, 0.2] * 4}}
    return validate_data(raw, "test", Path("."))


_HUNG_LIMITS = {"nissan_leaf_40": V2gLimits(50.9811103853845, 0.06469380367806314), "vw_id4_pro": None}


def test_price_arbitrage_never_discharges_an_urgent_ev_and_the_run_ends():
    """The example that hung: the reference manager discharges no urgent EV, so the run ends with every guarantee.

    Urgent, by the manager's definition: SoC above the departure guard for less than two intervals
    (2 × 15 min) at full power, (s − guard)·C / P_full < 1800 s, whatever the EV does now.
    """
    from sim.managers import build_manager

    sc = _hung_before()
    run = simulate(sc, manager=_Bounded(build_manager(sc.manager), 5_000))  # it needs 280
    _check_run(run, _HUNG_LIMITS)
    _check_guarantees(run, _HUNG_LIMITS)
    s, d = run.sessions, run.discharges
    assert d is not None
    assert len(d["t0_s"]) > 0
    v = _HUNG_LIMITS["nissan_leaf_40"]
    model = run.models[0]
    assert model.name == "nissan_leaf_40"
    for k in range(len(d["t0_s"])):
        row = int(np.flatnonzero(s["session_id"] == d["session_id"][k])[0])
        port = run.network.ports[d["evse"][k]]
        cap = min(port.rated_kw, max(p for _, p in model.dc_curve)) if port.dc else min(port.rated_kw, model.ac_max_kw)
        full = ChargeProfile(model.dc_curve if port.dc else ((0.0, cap), (1.0, cap)), cap, model.capacity_kwh)
        t0, soc0 = float(d["t0_s"][k]), float(d["soc0_frac"][k])
        if np.isnan(s["departure_t_s"][row]):
            continue  # still plugged in at the horizon: its departure is not in the table
        guard = guard_soc_frac(full, v.guarantee(_target(run, row)), float(s["departure_t_s"][row]), t0)
        slack_s = (soc0 - guard) * model.capacity_kwh / full.power_at(soc0) * H
        assert slack_s >= 2 * 15 * 60 - 1e-6, f"discharge {k} started with {slack_s:.0f} s of slack"


def test_a_manager_that_discharges_full_evs_and_charges_them_back_lets_time_move():
    """The engine's rule, for any manager: a V2G EV less than `MIN_V2G_STRETCH_S` of charging from its target is full.

    The manager here discharges every V2G EV at its target and charges every other one at full
    power (what `v2g_price_arbitrage` did with urgent EVs): on the example above each stretch was
    shorter than the one before and the run never got past t = 101,785.36 s. With the rule the run
    ends, energy is conserved, floors and limits hold, and no charge to a target is shorter than the
    rule's minimum. (This manager keeps no guarantee: it lets EVs at their floor idle.)
    """
    from sim.charging import MIN_V2G_STRETCH_S
    from sim.managers.base import EvseStatus
    from sim.managers.smart import Estimates
    from sim.managers.v2g import V2gManager, allocate_price_arbitrage

    est = Estimates(4.0, 25.0)

    def flip_flop(site):
        alloc = allocate_price_arbitrage(site, est, 0.15, 0.3, 900.0)
        for e in site.evses:
            v = site.v2g.get(e.evse_id)
            if v is not None and e.status is EvseStatus.SUSPENDED_EV and site.price_per_kwh >= 0.3:
                alloc[e.evse_id] = -math.floor(v.max_discharge_kw * 10) / 10  # full: give back
            elif v is not None and e.status is EvseStatus.CHARGING:
                alloc[e.evse_id] = math.inf  # charging or giving back: charge at full power
        return alloc

    bounded = _Bounded(V2gManager(flip_flop, 900.0), 20_000)
    run = simulate(_hung_before(), manager=bounded)
    _check_run(run, _HUNG_LIMITS)
    # A charging interval of a V2G EV that ended at its target (its own "full" event) lasted at least
    # MIN_V2G_STRETCH_S: that is what makes time move. The run ends well within the manager's bound.
    iv, s, d = run.intervals, run.sessions, run.discharges
    assert d is not None
    assert len(d["t0_s"]) > 0
    v2g_ports = set(d["evse"].tolist())
    full_ends = 0
    for k in range(len(iv["t0_s"])):
        if int(iv["evse"][k]) not in v2g_ports:
            continue
        p = run.profiles[iv["profile"][k]]
        soc1 = p.soc_at(iv["tau0_s"][k] + iv["t1_s"][k] - iv["t0_s"][k])
        on_port = (s["evse"] == iv["evse"][k]) & (s["plug_t_s"] <= iv["t0_s"][k])
        rows = np.flatnonzero(on_port)
        row = int(rows[np.argmax(s["plug_t_s"][rows])])  # the session on the port then: the last plugged in before
        if soc1 >= _target(run, row) - TOL:
            full_ends += 1
            assert iv["t1_s"][k] - iv["t0_s"][k] >= MIN_V2G_STRETCH_S
    assert full_ends > 0
