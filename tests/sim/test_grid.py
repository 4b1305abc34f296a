import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose, SchedulePeriod
from sim.config import ScenarioError, validate_data
from sim.engine import simulate
from sim.managers.base import SessionStarted, SetChargingProfile
from sim.metrics import build_tables
from tests.conftest import check_ev_curve, make_scenario, scenario_data

LIMITING = ["equal_share", "first_come_first_served", "earliest_deadline_first", "least_laxity_first",
            "price_responsive", "peak_shaving"]  # fmt: skip
ALL = ["uncontrolled", *LIMITING]


def _manager(kind: str) -> dict:
    return {"kind": kind, "target_kw": 60.0} if kind == "peak_shaving" else {"kind": kind}


def _site_limit_at(run, site_index: int, t: float) -> float:
    limit = run.sites[site_index].grid_limit_kw
    dr = run.dr
    for k, a, b, cap in zip(dr["site"], dr["start_t_s"], dr["end_t_s"], dr["cap_kw"], strict=True):
        if k == site_index and a <= t < b:
            limit = min(limit, cap)
    return limit


def _check_tree(run, target_kw: float = math.inf) -> None:
    """At every change, open intervals keep site, cabinet and connector within their limits."""
    iv = run.intervals
    caps = np.array([run.profiles[k].cap_kw for k in iv["profile"]])
    for t in np.unique(np.concatenate([iv["t0_s"], iv["t1_s"]])):
        open_ = (iv["t0_s"] <= t) & (t < iv["t1_s"])
        for k in np.unique(iv["site"][open_]):
            at_site = open_ & (iv["site"] == k)
            assert caps[at_site].sum() <= min(_site_limit_at(run, k, t), target_kw) * (1 + 1e-9) + 1e-9, t
        by_charger: dict[str, float] = {}
        for j in np.flatnonzero(open_):
            evse = run.evses[iv["evse"][j]]
            assert caps[j] <= evse.rated_kw + 1e-9
            by_charger[evse.charger.charger_id] = by_charger.get(evse.charger.charger_id, 0.0) + caps[j]
            if evse.charger.shared:
                assert by_charger[evse.charger.charger_id] <= evse.charger.power_kw * (1 + 1e-9)


def _congested(manager: dict, seed: int = 3, days: float = 3, iso: float = 1.0, **grid) -> dict:
    return {
        "seed": seed, "horizon_days": days, "manager": manager,
        "network": {"sites": [{"id": "a", "lat": 0, "lon": 0, "capacity_kw": 400, "chargers": [
            {"model": "ac", "count": 8, "power_kw": 22, "current": "ac"},
            {"model": "dc", "count": 1, "connectors": 2, "power_kw": 100, "current": "dc", "shared": True}]}]},
        "fleet": [{"preset": "ford_e_transit", "share": 2, "iso15118_share": iso},
                  {"preset": "renault_zoe_ze50", "share": 1, "iso15118_share": iso}],
        "demand": [{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 1.2},
                    "dwell_min": {"dist": "uniform", "low": 120, "high": 600}, "target_soc_frac": 0.95,
                    "max_queue": 4, "patience_min": 60}],
        "grid": {"sites": {"a": {"transformer_kw": 60}}, **grid},
    }  # fmt: skip


@pytest.mark.parametrize("manager", ALL)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), iso=st.sampled_from([0.0, 0.5, 1.0]), cap_kw=st.floats(0, 50))
def test_every_manager_keeps_the_tree_the_curve_and_the_need(manager, seed, iso, cap_kw):
    """Twenty congested runs per manager: no node, connector or EV curve exceeded, no energy past the need."""
    dr = {"demand_response": {"events": [{"start": "2026-03-03T12:00:00+01:00", "duration_min": 240,
                                          "notify_min": 30, "cap_kw": cap_kw}]}}  # fmt: skip
    run = simulate(make_scenario(**_congested(_manager(manager), seed=seed, days=2, iso=iso, **dr)))
    if manager != "uncontrolled":
        _check_tree(run, 60.0 if manager == "peak_shaving" else math.inf)
    assert check_ev_curve(run) > 0
    t = build_tables(run)
    s = t.sessions
    assert (s["energy_delivered_kwh"] <= s["energy_requested_kwh"] + 1e-9).all()
    assert math.isclose(t.load["energy_kwh"].sum(), s["energy_delivered_kwh"].sum(), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("manager", LIMITING)
def test_demand_response_cap_holds_from_the_start(manager):
    """During a 40 kW cap every limiting manager keeps the chargers' total cap within it."""
    dr = {"demand_response": {"events": [{"start": "2026-03-02T14:00:00+01:00", "duration_min": 180,
                                          "notify_min": 60, "cap_kw": 40.0}]}}  # fmt: skip
    run = simulate(make_scenario(**_congested(_manager(manager), **dr)))
    assert len(run.dr["start_t_s"]) == 1
    _check_tree(run)
    iv = run.intervals
    a, b = run.dr["start_t_s"][0], run.dr["end_t_s"][0]
    during = (iv["t0_s"] < b) & (iv["t1_s"] > a)
    assert during.any()


def test_shed_event_caps_at_load_minus_shed():
    """A shed event's cap is the site's load at its start less the shed."""
    dr = {"demand_response": {"events": [{"start": "2026-03-02T20:00:00+01:00", "duration_min": 60,
                                          "shed_kw": 15.0}]}}  # fmt: skip
    run = simulate(make_scenario(**_congested(_manager("least_laxity_first"), **dr)))
    t = build_tables(run)
    steps = t.load_steps
    a = run.dr["start_t_s"][0]
    before = steps[steps["t_s"] < a]["power_kw"].iloc[-1]
    assert math.isclose(run.dr["cap_kw"][0], max(0.0, before - 15.0), rel_tol=1e-9, abs_tol=1e-9)


def test_deadline_managers_deliver_at_least_equal_share():
    """On a congested site with the same arrivals, EDF and LLF deliver as much requested energy as equal_share."""
    delivered = {}
    for kind in ("equal_share", "earliest_deadline_first", "least_laxity_first"):
        sessions = build_tables(simulate(make_scenario(**_congested(_manager(kind), days=7)))).sessions
        delivered[kind] = sessions["energy_delivered_kwh"].sum()
    assert delivered["earliest_deadline_first"] >= delivered["equal_share"]
    assert delivered["least_laxity_first"] >= delivered["equal_share"]


def test_price_responsive_buys_cheaper_energy():
    """With a cheap night, price-responsive charging pays a lower mean price per kWh than first come first served."""
    night_cheap = [0.1] * 6 + [0.4] * 16 + [0.1] * 2
    grid = {"energy_price": {"kind": "tou", "per_kwh_by_hour": night_cheap}}
    mean_price = {}
    for kind in ("first_come_first_served", "price_responsive"):
        rate = {"kind": "constant", "per_hour": 0.5}
        demand = [{"kind": "synthetic", "site": "a", "rate": rate, "dwell_min": 720, "target_soc_frac": 0.8}]
        s = make_scenario(**{**_congested(_manager(kind), days=5, **grid), "demand": demand})
        run = simulate(s)
        load = build_tables(run).load
        price = run.prices.at_many(load["t_s"].to_numpy())
        mean_price[kind] = float((load["energy_kwh"] * price).sum() / load["energy_kwh"].sum())
    assert mean_price["price_responsive"] < mean_price["first_come_first_served"] - 0.05


class _EveningCap:
    """Installs a daily TxDefaultProfile on every connector: 7 kW from 17:00 to 20:00."""

    def __init__(self) -> None:
        self.done: set[str] = set()

    def handle(self, event, network):
        if isinstance(event, SessionStarted) and event.evse_id not in self.done:
            self.done.add(event.evse_id)
            day = 86400.0
            periods = (SchedulePeriod(0, 1000.0), SchedulePeriod(17 * 3600, 7.0), SchedulePeriod(20 * 3600, 1000.0))
            profile = ChargingProfile(1, ChargingProfilePurpose.TX_DEFAULT, 0, periods, start_t_s=0.0, recurring_s=day)
            return [SetChargingProfile(profile, evse_id=event.evse_id)]
        return ()


def test_charging_profile_caps_power_in_its_window():
    """A daily TxDefaultProfile of 7 kW from 17:00 to 20:00 holds every connector there, and only there."""
    run = simulate(make_scenario(horizon_days=3, manager={"kind": "uncontrolled"}), manager=_EveningCap())
    iv = run.intervals
    caps = np.array([run.profiles[k].cap_kw for k in iv["profile"]])
    hour_start = (iv["t0_s"] % 86400) / 3600
    hour_end = ((iv["t1_s"] - 1e-6) % 86400) / 3600
    same_day = iv["t0_s"] // 86400 == (iv["t1_s"] - 1e-6) // 86400
    inside = same_day & (hour_start >= 17) & (hour_end < 20)
    assert inside.any()
    assert (caps[inside] <= 7.0 + 1e-9).all()
    assert (caps[~inside] > 7.0).any()


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ({"sites": {"nowhere": {"transformer_kw": 50}}}, "grid names site(s) nowhere not in the network"),
        ({"demand_response": {"events": [{"start": "2026-03-02T18:00:00+01:00", "duration_min": 60,
                                          "cap_kw": 10, "shed_kw": 5}]}}, "give exactly one of cap_kw or shed_kw"),
        ({"energy_price": {"kind": "series", "path": "prices.csv"}}, "prices.csv does not exist"),
        ({"sites": {"a": {"storage": {"capacity_kwh": 100, "power_kw": 50}}}}, "peak_shaving needs threshold_kw"),
    ],
)  # fmt: skip
def test_bad_grid_input(grid, expected, tmp_path):
    """Unknown sites, ambiguous events, missing price files and incomplete batteries are named."""
    with pytest.raises(ScenarioError) as info:
        validate_data(scenario_data(grid=grid), "s.yaml", tmp_path)
    assert expected in "\n".join(info.value.problems)


def test_price_series_from_csv(tmp_path):
    """A price CSV sets the price from each timestamp on."""
    (tmp_path / "prices.csv").write_text("timestamp,price_per_kwh\n2026-03-02T00:00:00+01:00,0.2\n"
                                         "2026-03-02T12:00:00+01:00,0.5\n")  # fmt: skip
    s = validate_data(scenario_data(grid={"energy_price": {"kind": "series", "path": "prices.csv"}}), "s", tmp_path)
    run = simulate(s)
    assert run.prices.at(3600.0) == 0.2
    assert run.prices.at(13 * 3600.0) == 0.5
    assert pd.Series(run.prices.changes()).size == 1
