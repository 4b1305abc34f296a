"""Every revenue KPI recomputed from the recorded tables of a results folder (docs/kpis.md, Revenue).

The recomputations here share no code with `sim.revenue_metrics`: they read the parquet tables
a run wrote, in whole cents where money is summed, and follow the definitions in docs/kpis.md.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario
from tests.reports.test_revenue import REVENUE_RUN

COMPONENTS = ("energy_charge", "time_charge", "session_fee_charge", "idle_charge", "cap_adjustment")
ZONE = "Europe/Amsterdam"  # the run crosses the spring-forward night of 29 March


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """The revenue run of the report tests (every part of revenue, 35 days), in local time with DST."""
    out = tmp_path_factory.mktemp("revenue") / "out"
    write_results(simulate(make_scenario(**copy.deepcopy(REVENUE_RUN), timezone=ZONE)), out)
    return out


@pytest.fixture(scope="module")
def rows(results):
    """sessions, invoices and ports tables, kpis.json, the scenario and the horizon in days."""
    sessions = pd.read_parquet(results / "sessions.parquet")
    invoices = pd.read_parquet(results / "invoices.parquet")
    ports = pd.read_parquet(results / "ports.parquet")
    kpis = json.loads((results / "kpis.json").read_text())
    scenario = yaml.safe_load((results / "scenario.yaml").read_text())
    return sessions, invoices, ports, kpis, scenario, float(scenario["horizon_days"])


def cents(values) -> int:
    """Σ of money values in whole cents (each value is settled in cents)."""
    return int(np.round(np.asarray(values, dtype=float) * 100).astype(np.int64).sum())


def money(c: int) -> float:
    return c / 100


def test_components_gross_discounts_and_amounts(rows):
    """Each component is its column's sum; gross their sum; amounts are gross less both discounts."""
    sessions, _, _, kpis, _, _ = rows
    r = kpis["revenue"]
    for c in COMPONENTS:
        assert r["components"][c] == money(cents(sessions[c])), c
    gross = sum(cents(sessions[c]) for c in COMPONENTS)
    assert r["gross"] == money(gross)
    assert r["member_discount"] == money(cents(sessions["member_discount"]))
    assert r["loyalty_discount"] == money(cents(sessions["loyalty_discount"]))
    assert r["session_amounts"] == money(cents(sessions["amount_charged"]))
    assert cents(sessions["amount_charged"]) == gross - cents(sessions["member_discount"]) - cents(
        sessions["loyalty_discount"]
    )


def test_memberships_payment_fees_revenue_and_margin(rows):
    """Membership fees, payment fees of sessions and invoices, revenue and the margin after all costs."""
    sessions, invoices, _, kpis, _, _ = rows
    r = kpis["revenue"]
    invoiced = invoices[invoices["action"].isin(["join", "renew"])]
    assert len(invoiced) > 0
    fees = cents(sessions["payment_fee"]) + cents(invoiced["payment_fee"])
    revenue = cents(sessions["amount_charged"]) + cents(invoiced["amount"]) - fees
    assert r["membership_fees"] == money(cents(invoiced["amount"]))
    assert r["payment_fees"] == money(fees)
    assert r["revenue"] == money(revenue)
    assert kpis["network"]["revenue"] == r["revenue"]
    assert r["energy_cost"] == round(kpis["grid"]["network"]["energy_cost"], 2)
    assert r["demand_charge"] == round(kpis["grid"]["network"]["demand_charge"], 2)
    assert r["maintenance_cost"] == round(kpis["serviceability"]["maintenance_cost"], 2)
    costs = cents([r["energy_cost"], r["demand_charge"], r["maintenance_cost"]])
    assert r["margin"] == money(revenue - costs)
    assert r["demand_charge_share_of_cost"] == pytest.approx(cents([r["demand_charge"]]) / costs)


def test_session_revenue_adds_up_over_sites_and_excludes_memberships(rows):
    """Network and site session revenue: amounts less their payment fees; sites add up to the network."""
    sessions, _, _, kpis, _, _ = rows
    network = cents(sessions["amount_charged"]) - cents(sessions["payment_fee"])
    assert kpis["network"]["session_revenue"] == money(network)
    per_site = {}
    for site_id, site in kpis["sites"].items():
        mine = sessions[sessions["site_id"] == site_id]
        per_site[site_id] = cents(mine["amount_charged"]) - cents(mine["payment_fee"])
        assert site["session_revenue"] == money(per_site[site_id]), site_id
        assert kpis["revenue"]["sites"][site_id]["session_revenue"] == money(per_site[site_id])
        assert "revenue" not in site
    assert sum(per_site.values()) == network
    assert kpis["network"]["revenue"] > kpis["network"]["session_revenue"]  # the membership fees


def test_average_price_per_kwh(rows):
    """Amounts over energy, both over billed (plugged-in) sessions; the others carry neither."""
    sessions, _, _, kpis, _, _ = rows
    billed = sessions[sessions["plug_t_s"].notna()]
    unbilled = sessions[sessions["plug_t_s"].isna()]
    assert len(unbilled) > 0
    assert cents(unbilled["amount_charged"]) == 0
    assert unbilled["energy_delivered_kwh"].sum() == 0
    expected = billed["amount_charged"].sum() / billed["energy_delivered_kwh"].sum()
    assert kpis["revenue"]["average_price_per_kwh"] == pytest.approx(expected, rel=1e-12)


def test_session_revenue_per_port_per_day(rows):
    """Network and sites: session revenue over ports and days of the horizon."""
    sessions, _, ports, kpis, _, days = rows
    network = (cents(sessions["amount_charged"]) - cents(sessions["payment_fee"])) / 100
    assert kpis["revenue"]["session_revenue_per_port_per_day"] == round(network / len(ports) / days, 2)
    for site_id, site in kpis["revenue"]["sites"].items():
        mine = sessions[sessions["site_id"] == site_id]
        n_ports = (ports["site_id"] == site_id).sum()
        value = (cents(mine["amount_charged"]) - cents(mine["payment_fee"])) / 100 / n_ports / days
        assert site["session_revenue_per_port_per_day"] == round(value, 2), site_id


def test_session_amounts_by_local_hour_follow_the_wall_clock(rows):
    """24 sums of amounts by local hour of plug-in (the zone's clock, DST included); they add up to the amounts."""
    sessions, _, _, kpis, scenario, _ = rows
    billed = sessions[sessions["plug_t_s"].notna()]
    start = pd.Timestamp(scenario["start"])
    local = (start + pd.to_timedelta(billed["plug_t_s"], unit="s")).dt.tz_convert(scenario["timezone"])
    by_hour = kpis["revenue"]["session_amounts_by_local_hour"]
    assert len(by_hour) == 24
    for hour in range(24):
        assert by_hour[hour] == money(cents(billed.loc[local.dt.hour == hour, "amount_charged"])), hour
    assert cents(by_hour) == cents(sessions["amount_charged"])
    assert (start + pd.Timedelta(days=float(scenario["horizon_days"]))).tz_convert(ZONE).utcoffset() != (
        start.tz_convert(ZONE).utcoffset()
    )  # the run crosses a change of the clocks


def test_payment_kpis(rows):
    """Attempts are plug-ins plus refused payments; failures the refused ones."""
    sessions, _, _, kpis, _, _ = rows
    r = kpis["revenue"]
    failures = int((sessions["cause"] == "payment").sum())
    attempts = int(sessions["plug_t_s"].notna().sum()) + failures
    assert failures > 0
    assert r["payment_failures"] == failures
    assert r["payment_attempts"] == attempts
    assert r["payment_failure_share"] == pytest.approx(failures / attempts)


def test_membership_kpis(rows):
    """Joined: distinct drivers with a join; uptake over the drivers seen; at the end: last invoice not a leave."""
    sessions, invoices, _, kpis, _, _ = rows
    r = kpis["revenue"]
    joined = set(invoices.loc[invoices["action"] == "join", "driver_id"])
    seen = set(sessions.loc[sessions["driver_id"] >= 0, "driver_id"])
    assert r["members_joined"] == len(joined)
    assert r["membership_uptake"] == pytest.approx(len(joined) / len(seen))
    at_end = 0
    for _, mine in invoices.groupby("driver_id"):
        last = mine.sort_values("t_s", kind="stable").iloc[-1]
        at_end += last["action"] != "leave"
    assert r["members_at_end"] == at_end
    assert (invoices["action"] == "leave").any() or r["members_at_end"] == r["members_joined"]


def test_driver_answer_counts(rows):
    """Priced out, shifted to a cheaper time and detoured: counts of their session columns."""
    sessions, _, _, kpis, _, _ = rows
    r = kpis["revenue"]
    assert (
        r["sessions_priced_out"]
        == (sessions["outcome"] == "priced_out").sum()
        == kpis["network"]["sessions_priced_out"]
    )
    assert r["sessions_shifted"] == (sessions["shift_s"] > 0).sum()
    assert r["sessions_detoured"] == (sessions["detour_km"] > 0).sum()


def test_site_margin_and_break_even_before_maintenance(rows):
    """Per site: grid costs, the margin before maintenance and the utilization that would pay the demand charge."""
    sessions, _, ports, kpis, scenario, days = rows
    horizon_s = days * 86400.0
    for site_id, site in kpis["revenue"]["sites"].items():
        grid = kpis["grid"]["sites"][site_id]
        mine = sessions[sessions["site_id"] == site_id]
        rev = (cents(mine["amount_charged"]) - cents(mine["payment_fee"])) / 100
        p = ports[ports["site_id"] == site_id]
        u = p["plugged_s"].sum() / (len(p) * horizon_s)
        assert site["energy_cost"] == round(grid["energy_cost"], 2)
        assert site["demand_charge"] == round(grid["demand_charge"], 2)
        assert site["margin_before_maintenance"] == round(rev - grid["energy_cost"] - grid["demand_charge"], 2)
        assert site["time_utilization"] == pytest.approx(u)
        contribution = rev - grid["energy_cost"]
        assert grid["demand_charge"] > 0
        assert contribution > 0
        assert u > 0
        expected = u * grid["demand_charge"] / contribution
        assert site["break_even_utilization_before_maintenance"] == pytest.approx(expected)
        assert "break_even_utilization" not in site
    assert kpis["revenue"]["currency"] == kpis["currency"] == scenario["tariff"]["currency"]
