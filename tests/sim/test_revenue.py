"""Revenue in whole runs: money reconciles, prices hold, drivers respond, plans pay off, demand charges."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import revenue_metrics
from sim.config.revenue import MembershipPlan
from sim.customers import REVIEW_S, Account, Customers
from sim.engine import simulate
from sim.metrics import build_tables
from sim.results import write_results
from sim.tariffs import cents
from tests.conftest import make_scenario, one_site

PAYMENTS = {
    "methods": [
        {"method": "app", "share": 2, "fee_pct": 1.5, "fee_fixed": 0.05, "failure_prob": 0.02},
        {"method": "contactless", "share": 1, "fee_pct": 2.9, "fee_fixed": 0.25, "preauth_hold": 50},
    ]
}
PLAN = {
    "name": "plus",
    "monthly_fee": 4.99,
    "discount": {"energy_frac": 0.3, "session_fee_frac": 1.0},
    "loyalty": {"kind": "every_nth", "n": 5, "discount_frac": 0.5},
}


def cents_col(df: pd.DataFrame, column: str) -> np.ndarray:
    return np.round(df[column].to_numpy() * 100).astype(np.int64)


def revenue_of(**changes):
    run = simulate(make_scenario(**changes))
    t = build_tables(run)
    invoices = revenue_metrics.invoices_frame(run)
    grid = {"network": {"energy_cost": 0.0, "demand_charge": 0.0}, "sites": {s.site_id: {"energy_cost": 0.0,
            "demand_charge": 0.0} for s in run.sites}}  # fmt: skip
    return run, t, invoices, revenue_metrics.revenue_kpis(run, t.sessions, invoices, t.ports, grid, 0.0)


prices = st.floats(0, 1.5, allow_nan=False).map(lambda x: round(x, 3))
tariffs = st.fixed_dictionaries(
    {
        "price_per_kwh": prices,
        "price_per_min": st.floats(0, 0.2).map(lambda x: round(x, 3)),
        "session_fee": prices,
        "idle_fee_per_min": st.floats(0, 1).map(lambda x: round(x, 2)),
        "idle_grace_min": st.sampled_from([0, 10, 30]),
        "min_charge": st.sampled_from([0, 1.0, 3.0]),
        "periods": st.sampled_from([[], [{"start": "17:00", "end": "21:00", "price_per_kwh": 0.9}]]),
    }
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tariff=tariffs, max_charge=st.sampled_from([None, 15.0, 40.0]))
def test_money_reconciles_to_the_cent(tariff, max_charge):
    """Σ session amounts + membership fees − payment fees = revenue, and each CDR adds up, exactly in cents."""
    tariff = {**tariff, "max_charge": max(max_charge, tariff["min_charge"]) if max_charge else None}
    _, t, invoices, k = revenue_of(horizon_days=40, tariff=tariff, payments=PAYMENTS, memberships=[PLAN],
                                   drivers={"population": 15})  # fmt: skip
    s = t.sessions
    parts = sum(cents_col(s, c) for c in revenue_metrics.COMPONENTS)
    discounts = cents_col(s, "member_discount") + cents_col(s, "loyalty_discount")
    assert np.array_equal(parts - discounts, cents_col(s, "amount_charged"))
    billed = invoices[invoices["action"] != "leave"]
    total = (cents_col(s, "amount_charged").sum() + cents_col(billed, "amount").sum()
             - cents_col(s, "payment_fee").sum() - cents_col(billed, "payment_fee").sum())  # fmt: skip
    assert total == round(k["revenue"] * 100)
    assert (s["amount_charged"] >= 0).all()
    if tariff["max_charge"] is not None:
        assert (s["amount_charged"] <= tariff["max_charge"] + 1e-9).all()


def test_price_shown_at_start_is_the_price_paid():
    """Dynamic pricing moves the price mid-session; a fixed session still pays its plug-in price per kWh."""
    pricing = {"kind": "occupancy", "interval_min": 5, "floor_per_kwh": 0.2, "ceiling_per_kwh": 0.9,
               "low_frac": 0.0, "high_frac": 1.0}  # fmt: skip
    run = simulate(make_scenario(horizon_days=2, pricing=pricing, tariff={"price_per_kwh": 0.5}))
    s = build_tables(run).sessions
    ch = revenue_metrics.tariffs_frame(run)
    plugged = s[s["plug_t_s"].notna()]
    assert len(ch) > 20
    moved = [
        ((ch["t_s"] > a) & (ch["t_s"] < b) & (ch["price_per_kwh"] != p)).any()
        for a, b, p in zip(
            plugged["plug_t_s"], plugged["departure_t_s"].fillna(math.inf), plugged["price_per_kwh"], strict=True
        )
    ]
    assert sum(moved) > 10  # the test means something: prices changed under many sessions
    expected = [cents(p * e) for p, e in zip(plugged["price_per_kwh"], plugged["energy_delivered_kwh"], strict=True)]
    assert cents_col(plugged, "energy_charge").tolist() == expected
    # The shown price is the one the policy had set last before the plug-in.
    last = np.searchsorted(ch["t_s"].to_numpy(), plugged["plug_t_s"].to_numpy(), side="right") - 1
    assert np.allclose(ch["price_per_kwh"].to_numpy()[last], plugged["price_per_kwh"])


def test_unfixed_price_follows_the_changes():
    """With fixed_at_start false, energy is billed at the prices in force while it was delivered."""
    pricing = {"kind": "occupancy", "interval_min": 5, "floor_per_kwh": 0.2, "ceiling_per_kwh": 0.9,
               "low_frac": 0.0, "high_frac": 1.0}  # fmt: skip
    tariff = {"price_per_kwh": 0.5, "fixed_at_start": False}
    run = simulate(make_scenario(horizon_days=2, pricing=pricing, tariff=tariff))
    s = build_tables(run).sessions
    plugged = s[s["energy_delivered_kwh"] > 1]
    per_kwh = plugged["energy_charge"] / plugged["energy_delivered_kwh"]
    assert (per_kwh >= 0.2 - 0.01).all()
    assert (per_kwh <= 0.9 + 0.01).all()
    assert (np.abs(per_kwh - plugged["price_per_kwh"]) > 0.01).sum() > 5


def kwh_sold(price):
    response = {"reference_price_per_kwh": 0.3, "elasticity": -0.8,
                "willingness_to_pay_per_kwh": {"dist": "uniform", "low": 0.2, "high": 1.2}}  # fmt: skip
    data = one_site(40, 3.0, {"dist": "uniform", "low": 60, "high": 240})
    run = simulate(make_scenario(horizon_days=5, tariff={"price_per_kwh": price}, drivers={"price_response": response},
                                 **data))  # fmt: skip
    s = build_tables(run).sessions
    return s["energy_delivered_kwh"].sum(), (s["outcome"] == "priced_out").sum(), len(s)


def test_higher_price_sells_fewer_kwh():
    """Holding the seed, each price step up sells fewer kWh and prices out more drivers; arrivals unchanged."""
    results = [kwh_sold(p) for p in (0.25, 0.4, 0.6, 0.9)]
    kwh, priced_out, arrivals = zip(*results, strict=True)
    assert all(a > b for a, b in zip(kwh, kwh[1:], strict=False))
    assert all(a <= b for a, b in zip(priced_out, priced_out[1:], strict=False))
    assert len(set(arrivals)) == 1


def test_driver_shifts_to_the_cheaper_hours():
    """Drivers priced out at 0.80 before 20:00 come back when the 0.20 period starts, within their window."""
    response = {"reference_price_per_kwh": 0.3, "elasticity": 0.0, "shift_share": 1.0, "shift_window_h": 3,
                "willingness_to_pay_per_kwh": 0.5}  # fmt: skip
    tariff = {"price_per_kwh": 0.8, "periods": [{"start": "20:00", "end": "06:00", "price_per_kwh": 0.2}]}
    run = simulate(make_scenario(horizon_days=2, tariff=tariff, drivers={"price_response": response}))
    s = build_tables(run).sessions
    shifted = s[s["shift_s"] > 0]
    assert len(shifted) > 3
    local_h = (shifted["arrival_t_s"] / 3600.0) % 24  # the scenario starts at local midnight
    assert ((local_h >= 20) & (local_h < 20.01)).all()
    assert (shifted["shift_s"] <= 3 * 3600).all()
    # Those arriving more than 3 h before 20:00 while it is expensive do not charge.
    first_h = ((s["arrival_t_s"] - s["shift_s"]) / 3600.0) % 24
    early = s[(first_h >= 6) & (first_h < 17)]
    assert (early["outcome"] == "priced_out").all()


def test_membership_taken_only_when_it_pays_off():
    """A review joins a plan only if last month's discounts beat the fee, renews while they do, leaves after."""
    scenario = make_scenario(memberships=[PLAN], drivers={"population": 1})
    customers = Customers(scenario, {}, {})
    plan = MembershipPlan.model_validate(PLAN)
    acct = Account(0, -1, math.inf)
    # Energy 5.00 per session: 30 % off saves 1.50; session fee 0.50 waived: 2.00 a session.
    customers.record(acct, 0.0, 0, (500, 0, 50, 0))
    customers.record(acct, 86400.0, 0, (500, 0, 50, 0))
    assert customers.savings_cents(plan, acct) == 2 * (150 + 50)
    customers.review(acct, REVIEW_S)
    assert acct.plan == -1  # 4.00 saved < 4.99 fee
    for day in range(31, 35):
        customers.record(acct, day * 86400.0, 0, (500, 0, 50, 0))
    customers.review(acct, 2 * REVIEW_S)
    assert acct.plan == 0  # 8.00 > 4.99: joins
    customers.review(acct, 3 * REVIEW_S + 1)
    assert acct.plan == -1  # no session in the third month: leaves
    inv = customers.invoices.arrays()
    assert inv["action"].tolist() == [0, 2]
    assert inv["amount"].tolist() == [4.99, 0.0]
    assert inv["savings"].tolist() == [8.0, 0.0]


def test_members_in_a_run_save_more_than_they_pay():
    """In a run, every invoiced month follows 30 days whose discounts would have beaten the fee."""
    run, t, invoices, k = revenue_of(horizon_days=70, memberships=[PLAN], drivers={"population": 10},
                                     tariff={"price_per_kwh": 0.6, "session_fee": 0.5})  # fmt: skip
    billed = invoices[invoices["action"] != "leave"]
    assert len(billed) > 0
    assert (billed["savings_last_30d"] > billed["amount"]).all()
    s = t.sessions[t.sessions["plug_t_s"].notna()]
    for row in billed.itertuples():
        settled = s["departure_t_s"].fillna(run.scenario.horizon_s)  # sessions count when they are settled
        mine = s[(s["driver_id"] == row.driver_id) & (settled >= row.t_s - REVIEW_S) & (settled < row.t_s)]
        saved = sum(
            cents(e * 0.3) + cents(f * 1.0)
            for e, f in zip(mine["energy_charge"], mine["session_fee_charge"], strict=True)
        )
        assert saved == round(row.savings_last_30d * 100)
    members = t.sessions[t.sessions["plan"] == "plus"]
    assert (members["member_discount"] > 0).any()
    assert k["members_joined"] >= 1


def test_payment_failures_match_the_rate():
    """Payment attempts fail at failure_prob, within 4 binomial standard errors; each is a failed session."""
    p = 0.1
    payments = {"methods": [{"method": "qr", "share": 1, "failure_prob": p}]}
    run, t, _, k = revenue_of(horizon_days=10, payments=payments, **one_site(60, 6.0, {"dist": "uniform", "low": 30,
                              "high": 90}))  # fmt: skip
    n = k["payment_attempts"]
    assert n > 1000
    assert abs(k["payment_failures"] / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    failed = t.sessions[t.sessions["cause"] == "payment"]
    assert (failed["outcome"] == "failed").all()
    assert (failed["energy_delivered_kwh"] == 0).all()


def test_site_choice_is_a_logit_over_detours():
    """Two equal sites 5 km apart, ports to spare: a driver detours with P = e^(β·d) / (1 + e^(β·d))."""
    site = {"lat": 52.0, "capacity_kw": 1000.0, "chargers": [{"model": "ac", "count": 30, "power_kw": 11.0,
                                                               "current": "ac"}]}  # fmt: skip
    d_km = 5.0
    network = {"sites": [{"id": "a", "lon": 4.0, **site}, {"id": "b", "lon": 4.0 + d_km / (111.195 * math.cos(
        math.radians(52.0))), **site}]}  # fmt: skip
    demand = [{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 4.0}, "dwell_min": 60}]
    beta = -0.3
    choice = {"radius_km": 10, "beta_detour_per_km": beta, "beta_price": 0, "beta_wait_per_min": 0}
    run = simulate(make_scenario(horizon_days=20, network=network, demand=demand, drivers={"site_choice": choice}))
    s = build_tables(run).sessions
    n = len(s)
    p = math.exp(beta * d_km) / (1 + math.exp(beta * d_km))
    share = (s["site_id"] == "b").mean()
    assert n > 1500
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert np.allclose(s.loc[s["site_id"] == "b", "detour_km"], d_km, rtol=1e-3)


def test_demand_charge_is_rate_times_monthly_peak(tmp_path):
    """Per site: demand charge = its rate × each calendar month's highest 15-min grid import, from load.parquet."""
    grid = {"demand_charge_per_kw_month": 12.0, "sites": {"a": {"demand_charge_per_kw_month": 20.0}}}
    s = make_scenario(start="2026-03-20T00:00:00+01:00", horizon_days=20, grid=grid)
    k = write_results(simulate(s), tmp_path / "r")
    load = pd.read_parquet(tmp_path / "r" / "load.parquet")
    months = pd.to_datetime(load["time"]).dt.strftime("%Y-%m") if "time" in load else (
        pd.Timestamp(s.start) + pd.to_timedelta(load["t_s"], unit="s")).strftime("%Y-%m")  # fmt: skip
    peaks = load.assign(month=np.asarray(months)).groupby("month")["grid_kw"].max()
    assert len(peaks) == 2
    assert k["grid"]["sites"]["a"]["demand_charge"] == pytest.approx(20.0 * peaks.sum())
    assert k["revenue"]["demand_charge"] == pytest.approx(20.0 * peaks.sum(), abs=0.005)
    r = k["revenue"]
    assert r["margin"] == round(r["revenue"] - r["energy_cost"] - r["demand_charge"] - r["maintenance_cost"], 2)


def test_pricing_policies_are_linear_between_floor_and_ceiling():
    """Occupancy: 3 of 4 ports in use, floor at 20 %, ceiling at 100 %; demand adds the queue; energy price × markup."""
    from sim.config.revenue import DemandPricing, EnergyPricePricing, OccupancyPricing
    from sim.managers.base import EvseStatus, EvseView, SiteView
    from sim.managers.pricing import DynamicPricing

    def view(in_use, waiting):
        evses = tuple(EvseView(f"e{i}", "c", EvseStatus.CHARGING, 11, math.inf, 0, f"s{i}" if i < in_use else None)
                      for i in range(4))  # fmt: skip
        return SiteView("a", 100, evses, waiting=waiting)

    band = {"floor_per_kwh": 0.3, "ceiling_per_kwh": 0.7, "low_frac": 0.2, "high_frac": 1.0}
    occ = DynamicPricing(OccupancyPricing(kind="occupancy", **band), {})
    assert occ.price_per_kwh(view(3, 5), 0.0) == round(0.3 + 0.4 * (0.75 - 0.2) / 0.8, 2)
    assert occ.price_per_kwh(view(0, 0), 0.0) == 0.3
    dem = DynamicPricing(DemandPricing(kind="demand_based", **band), {})
    assert dem.price_per_kwh(view(3, 1), 0.0) == 0.7  # (3 + 1) / 4 = 100 %
    follow = DynamicPricing(EnergyPricePricing(kind="follow_energy_price", floor_per_kwh=0.2, ceiling_per_kwh=0.8,
                                               markup=2.0, adder_per_kwh=0.1), {})  # fmt: skip
    assert follow.price_per_kwh(view(0, 0), 0.15) == 0.4
    assert follow.price_per_kwh(view(0, 0), 0.5) == 0.8  # capped at the ceiling


def test_points_loyalty_redeems_after_enough_spending():
    """1 point per unit paid; 100 points take 5.00 off the next session."""
    plan = MembershipPlan.model_validate(
        {
            "name": "p",
            "monthly_fee": 1,
            "loyalty": {"kind": "points", "points_per_unit": 1, "redeem_points": 100, "redeem_value": 5},
        }  # fmt: skip
    )
    customers = Customers(make_scenario(memberships=[PLAN], drivers={"population": 1}), {}, {})
    acct = Account(0, -1, math.inf)
    assert customers.loyalty(acct, plan, 6000) == 0  # earns 60
    assert customers.loyalty(acct, plan, 4000) == 0  # earns 40: 100
    assert customers.loyalty(acct, plan, 2000) == 500  # redeems, then earns 15
    assert acct.points == 15


def test_revenue_runs_are_byte_identical(tmp_path):
    """Same scenario and seed with every revenue feature on: identical result files."""
    site_b = {"id": "b", "lat": 52.01, "lon": 4.01, "capacity_kw": 50.0,
              "chargers": [{"model": "ac", "count": 2, "power_kw": 11.0, "current": "ac"},
                           {"model": "dc", "count": 1, "power_kw": 50.0, "current": "dc"}]}  # fmt: skip
    data = make_scenario().model_dump(mode="json")
    network = {"sites": [*data["network"]["sites"], site_b]}
    s = make_scenario(
        horizon_days=35,
        network=network,
        tariff={
            "price_per_kwh": 0.5,
            "idle_fee_per_min": 0.2,
            "periods": [{"start": "17:00", "end": "21:00", "price_per_kwh": 0.7}],
        },  # fmt: skip
        pricing={"kind": "demand_based", "floor_per_kwh": 0.3, "ceiling_per_kwh": 0.8, "sites": ["b"]},
        drivers={
            "population": 30,
            "site_choice": {"radius_km": 5},
            "price_response": {"reference_price_per_kwh": 0.4, "shift_share": 0.5},
        },  # fmt: skip
        memberships=[PLAN],
        payments=PAYMENTS,
    )
    write_results(simulate(s), tmp_path / "a")
    write_results(simulate(s), tmp_path / "b")
    for name in ("sessions.parquet", "invoices.parquet", "tariffs.parquet", "kpis.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    sessions = pd.read_parquet(tmp_path / "a" / "sessions.parquet")
    assert (sessions["site_id"] == "b").any()
    assert (sessions["detour_km"] > 0).any()


@pytest.mark.parametrize("pricing", [None, "occupancy"])
def test_tariffs_table_holds_the_price_every_session_was_shown(pricing):
    """With time of use (and dynamic pricing over it), the last price in tariffs.parquet at plug-in is the one paid."""
    tariff = {"price_per_kwh": 0.5, "periods": [{"start": "17:00", "end": "21:00", "price_per_kwh": 0.8},
                                                {"start": "23:00", "end": "06:00", "price_per_kwh": 0.3}]}  # fmt: skip
    extra = {}
    if pricing:
        extra["pricing"] = {"kind": pricing, "interval_min": 30, "floor_per_kwh": 0.2, "ceiling_per_kwh": 0.9}
    run = simulate(make_scenario(horizon_days=3, tariff=tariff, **extra))
    s = build_tables(run).sessions
    plugged = s[s["plug_t_s"].notna()]
    ch = revenue_metrics.tariffs_frame(run)
    t = ch["t_s"].to_numpy()
    last = np.searchsorted(t, plugged["plug_t_s"].to_numpy(), side="right") - 1
    assert np.allclose(ch["price_per_kwh"].to_numpy()[last], plugged["price_per_kwh"])
    shown = set(np.round(plugged["price_per_kwh"], 2))
    if pricing:
        assert len(shown) > 3  # the policy's prices, not the periods'
        assert all(0.2 <= p <= 0.9 for p in shown)
    else:
        assert shown == {0.3, 0.5, 0.8}


def test_plain_tariff_shortcut_bills_as_the_general_settlement(monkeypatch):
    """Sessions a plain tariff bills by its shortcut get the columns the segment-by-segment settlement gives."""
    from sim.tariffs import TariffSchedule

    tariff = {"price_per_kwh": 0.45, "price_per_min": 0.02, "session_fee": 0.5, "idle_grace_min": 10}
    scenario = make_scenario(horizon_days=10, tariff=tariff, payments=PAYMENTS)
    assert TariffSchedule(scenario.tariff, scenario.start).plain
    shortcut = simulate(scenario).sessions
    init = TariffSchedule.__init__

    def general(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        init(self, *args, **kwargs)
        self.plain = False

    monkeypatch.setattr(TariffSchedule, "__init__", general)
    settled = simulate(scenario).sessions
    assert len(shortcut["session_id"]) > 100
    assert (shortcut["amount_charged"] > 0).any()
    assert (shortcut["payment_fee"] > 0).any()
    assert (shortcut["idle_min"] > 0).any()
    for name, column in shortcut.items():
        assert np.array_equal(column, settled[name], equal_nan=True), name
