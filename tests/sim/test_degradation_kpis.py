"""Every battery-degradation KPI recomputed from the recorded tables of a results folder (docs/kpis.md).

The recomputations share no code with `sim.degradation` or `sim.degradation_metrics`: they read the
parquet tables a run wrote (`sessions.parquet`, `degradation.parquet`) and the paper's formulas,
written out again here.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.config import load_scenario, validate_data
from sim.degradation_metrics import degradation_kpis
from sim.engine import simulate
from sim.ev import PRESETS
from sim.ids import EvseId
from sim.managers.base import SessionStarted, SetPowerLimit, SetTimer, Timer
from sim.results import write_results
from sim.sweep import flatten_kpis
from tests.conftest import make_scenario

ROOT = Path(__file__).resolve().parents[2]
AGE_DAYS, KM_PER_YEAR, KWH_PER_KM, T_K, PRICE = 730.0, 15_000.0, 0.186, 298.15, 115.0  # battery_ageing.yaml


def alpha(soc):
    """Calendar coefficient (per day^0.75) at SoC `soc`, 25 °C."""
    return (7.543 * (3.3324 + 0.8263 * soc) - 23.75) * 1e6 * math.exp(-6976.0 / T_K)


def half_cycle(s0, s1, capacity_kwh):
    """Marginal cycle fade (relative) of charging from s0 up to s1."""
    depth = np.maximum(s1 - s0, 0.0)
    v = 3.3324 + 0.8263 * (s0 + s1) / 2
    beta = 7.348e-3 * (v - 3.667) ** 2 + 7.6e-4 + 4.081e-3 * depth
    q_age = 2 * AGE_DAYS * KM_PER_YEAR / 365 * KWH_PER_KM / capacity_kwh * 2.05
    return 0.5 / np.sqrt(q_age) * beta * depth * 2.05


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """battery_ageing.yaml over 3 days: its results folder, sessions joined to their degradation rows, kpis."""
    scenario = load_scenario(ROOT / "scenarios" / "battery_ageing.yaml", horizon_days=3)
    out = tmp_path_factory.mktemp("ageing") / "out"
    write_results(simulate(scenario), out)
    sessions = pd.read_parquet(out / "sessions.parquet")
    rows = pd.read_parquet(out / "degradation.parquet")
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    joined = rows.merge(sessions, on="session_id", suffixes=("", "_s"), validate="one_to_one")
    return sessions, rows, joined, kpis, scenario.horizon_s


def test_one_row_per_plugged_session(results):
    """`sessions`: the rows are the sessions with a plug-in time, in session id order."""
    sessions, rows, _, kpis, _ = results
    plugged = sessions.loc[sessions["plug_t_s"].notna(), "session_id"]
    assert rows["session_id"].tolist() == sorted(plugged.tolist())
    assert kpis["degradation"]["sessions"] == len(rows) > 50


def test_charged_energy_is_the_energy_delivered(results):
    """`charged_kwh`: without V2G each row's charged energy is the session's energy delivered."""
    _, _, joined, kpis, _ = results
    np.testing.assert_allclose(joined["charged_kwh"], joined["energy_delivered_kwh"], rtol=1e-9, atol=1e-9)
    assert kpis["degradation"]["charged_kwh"] == pytest.approx(kpis["network"]["energy_delivered_kwh"], rel=1e-9)
    assert kpis["degradation"]["discharged_kwh"] == 0.0


def test_cycle_fade_of_charging_is_one_half_cycle(results):
    """`cycle_fade_charging_kwh`: half cycle from `soc_in_frac` to `soc_out_frac`, times the model's capacity."""
    _, _, joined, kpis, _ = results
    capacity = joined["ev_model"].map(lambda m: PRESETS[m].capacity_kwh).astype(float)
    expected = half_cycle(joined["soc_in_frac"], joined["soc_out_frac"], capacity) * capacity
    np.testing.assert_allclose(joined["cycle_fade_charging_kwh"], expected, rtol=1e-9, atol=1e-15)
    assert (joined["cycle_fade_v2g_kwh"] == 0.0).all()
    assert kpis["degradation"]["cycle_fade_charging_kwh"] == pytest.approx(expected.sum(), rel=1e-9)
    assert kpis["degradation"]["cycle_fade_v2g_kwh"] == 0.0


def test_calendar_fade_follows_the_soc_while_plugged_in(results):
    """`calendar_fade_kwh`: 0.75·age^-0.25·∫α dt; on the AC garage (one constant-power stretch) exactly.

    Plug-in to charge start at `soc_in_frac`, a linear ramp to `soc_out_frac` until `charge_end_t_s`,
    then `soc_out_frac` until departure (or the horizon). Every row lies between resting at its
    plug-in SoC and resting at its departure SoC the whole time.
    """
    _, _, joined, kpis, horizon_s = results
    capacity = joined["ev_model"].map(lambda m: PRESETS[m].capacity_kwh).astype(float)
    end = joined["departure_t_s"].fillna(horizon_s)
    plugged_s = end - joined["plug_t_s"]
    np.testing.assert_allclose(joined["plugged_s"], plugged_s, rtol=1e-12)
    scale = 0.75 * AGE_DAYS**-0.25 / 86400.0 * capacity
    low = scale * alpha(joined["soc_in_frac"]) * plugged_s
    high = scale * alpha(joined["soc_out_frac"]) * plugged_s
    assert (joined["calendar_fade_kwh"] >= low * (1 - 1e-12)).all()
    assert (joined["calendar_fade_kwh"] <= high * (1 + 1e-12)).all()
    ac = (joined["site_id"] == "htc_garage") & joined["charge_start_t_s"].notna()
    start, stop = joined["charge_start_t_s"], joined["charge_end_t_s"]
    soc_in, soc_out = joined["soc_in_frac"], joined["soc_out_frac"]
    alpha_s = (
        alpha(soc_in) * (start - joined["plug_t_s"])
        + alpha((soc_in + soc_out) / 2) * (stop - start)
        + alpha(soc_out) * (end - stop)
    )
    assert ac.sum() > 10
    np.testing.assert_allclose(joined.loc[ac, "calendar_fade_kwh"], (scale * alpha_s)[ac], rtol=1e-9)
    assert kpis["degradation"]["calendar_fade_kwh"] == pytest.approx(joined["calendar_fade_kwh"].sum(), rel=1e-12)


def test_totals_stats_and_costs(results):
    """`fade_kwh`, per-EV stats, per-kWh figures and every cost: sums of the rows, fade × `cost_per_kwh`."""
    _, rows, _, kpis, _ = results
    k = kpis["degradation"]
    fade = rows["calendar_fade_kwh"] + rows["cycle_fade_charging_kwh"] + rows["cycle_fade_v2g_kwh"]
    np.testing.assert_allclose(rows["fade_kwh"], fade, rtol=1e-12)
    assert k["fade_kwh"] == pytest.approx(fade.sum(), rel=1e-12)
    assert k["fade_per_ev_mean_kwh"] == pytest.approx(fade.mean(), rel=1e-12)
    assert k["fade_per_ev_p95_kwh"] == pytest.approx(np.percentile(fade, 95), rel=1e-12)
    assert k["fade_per_ev_max_kwh"] == pytest.approx(fade.max(), rel=1e-12)
    assert k["charging_fade_wh_per_kwh"] == pytest.approx(
        1000 * rows["cycle_fade_charging_kwh"].sum() / rows["charged_kwh"].sum(), rel=1e-12
    )
    assert k["v2g_fade_wh_per_kwh"] == k["v2g_cost_per_kwh"] == 0.0
    for part, column in (("calendar", "calendar_fade_kwh"), ("charging", "cycle_fade_charging_kwh"),
                         ("v2g", "cycle_fade_v2g_kwh")):  # fmt: skip
        np.testing.assert_allclose(rows[f"cost_{part}"], rows[column] * PRICE, rtol=1e-12)
        assert k[f"cost_{part}"] == round(rows[column].sum() * PRICE, 2)
    assert k["cost"] == round(fade.sum() * PRICE, 2)


def test_without_the_section_nothing_is_computed(tmp_path):
    """A scenario without `degradation` writes no degradation table and no KPI section."""
    scenario = load_scenario(ROOT / "scenarios" / "small_city.yaml", horizon_days=1)
    kpis = write_results(simulate(scenario), tmp_path / "out")
    assert "degradation" not in kpis
    assert not (tmp_path / "out" / "degradation.parquet").exists()


class _DischargeFirstHour:
    """V2G for the first hour of every session at 5 kW, then charging at the port's full power."""

    def handle(self, event, network):
        if isinstance(event, SessionStarted):
            return [SetPowerLimit(event.evse_id, -5.0), SetTimer(event.t_s + 3600.0, str(event.evse_id))]
        if isinstance(event, Timer) and event.name != "start":
            return [SetPowerLimit(EvseId(event.name), 11.0)]
        return ()


@pytest.fixture(scope="module")
def v2g_results(tmp_path_factory):
    """Two days of V2G EVs on bidirectional AC ports that give 5 kW for an hour, then charge."""
    scenario = make_scenario(
        network={"sites": [{"id": "a", "lat": 0.0, "lon": 0.0, "capacity_kw": 1000.0, "chargers": [
            {"model": "bi", "count": 4, "power_kw": 11.0, "current": "ac", "bidirectional": True}]}]},
        fleet=[{"preset": "nissan_leaf_40", "share": 1, "iso15118_share": 1.0,
                "v2g": {"max_discharge_kw": 20.0, "min_soc_frac": 0.2}},
               {"preset": "renault_zoe_ze50", "share": 1, "iso15118_share": 1.0,
                "v2g": {"max_discharge_kw": 20.0, "min_soc_frac": 0.2}}],
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 1.0},
                 "dwell_min": {"dist": "uniform", "low": 120.0, "high": 600.0},
                 "arrival_soc_frac": {"dist": "uniform", "low": 0.3, "high": 0.9}, "target_soc_frac": 0.95,
                 "max_queue": 0}],
        horizon_days=2,
        degradation={},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("v2g") / "out"
    write_results(simulate(scenario, manager=_DischargeFirstHour()), out)
    rows = pd.read_parquet(out / "degradation.parquet")
    sessions = pd.read_parquet(out / "sessions.parquet")
    discharges = pd.read_parquet(out / "discharges.parquet")
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    joined = rows.merge(sessions, on="session_id", suffixes=("", "_s"), validate="one_to_one")
    return joined, discharges, kpis


def test_v2g_energy_from_the_discharge_rows(v2g_results):
    """`discharged_kwh`: Σ of the session's discharge rows; charged − discharged = the SoC gained × capacity."""
    joined, discharges, kpis = v2g_results
    out_kwh = discharges.groupby("session_id")["energy_kwh"].sum()
    given = joined["session_id"].map(out_kwh).fillna(0.0)
    assert (given > 0).sum() > 10
    np.testing.assert_allclose(joined["discharged_kwh"], given, rtol=1e-9, atol=1e-12)
    capacity = joined["ev_model"].map(lambda m: PRESETS[m].capacity_kwh).astype(float)
    net = (joined["soc_out_frac"] - joined["soc_in_frac"]) * capacity
    np.testing.assert_allclose(joined["charged_kwh"] - joined["discharged_kwh"], net, rtol=1e-9, atol=1e-9)
    assert kpis["degradation"]["discharged_kwh"] == pytest.approx(discharges["energy_kwh"].sum(), rel=1e-9)


def test_v2g_cycle_fade_splits_by_the_counterfactual_charge(v2g_results):
    """Down from the plug-in SoC s_in to s_d, then up to s_out: two half cycles; charging owns s_in → s_out.

    The rainflow of (s_in, s_d, s_out) is two half cycles whichever swing is larger; V2G owns what is
    beyond one half cycle from s_in up to s_out (all of it when the EV left lower than it came).
    """
    joined, discharges, kpis = v2g_results
    by_session = discharges.sort_values("t0_s").groupby("session_id")
    low = joined["session_id"].map(by_session["soc1_frac"].last())
    v2g = low.notna()
    s_in, s_out, s_d = joined["soc_in_frac"][v2g], joined["soc_out_frac"][v2g], low[v2g]
    capacity = joined["ev_model"][v2g].map(lambda m: PRESETS[m].capacity_kwh).astype(float)
    total = (half_cycle(s_d, s_in, capacity) + half_cycle(s_d, s_out, capacity)) * capacity
    charging = np.minimum(half_cycle(s_in, s_out, capacity) * capacity, total)
    np.testing.assert_allclose(joined["cycle_fade_charging_kwh"][v2g], charging, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(joined["cycle_fade_v2g_kwh"][v2g], total - charging, rtol=1e-9, atol=1e-15)
    assert (joined["cycle_fade_v2g_kwh"][v2g] > 0).all()
    assert (joined["cycle_fade_v2g_kwh"][~v2g] == 0).all()
    k = kpis["degradation"]
    assert k["v2g_fade_wh_per_kwh"] == pytest.approx(1000 * joined["cycle_fade_v2g_kwh"].sum() / given_kwh(joined))
    assert k["v2g_cost_per_kwh"] == pytest.approx(joined["cost_v2g"].sum() / given_kwh(joined), rel=1e-12)
    assert k["cost_v2g"] == round(joined["cycle_fade_v2g_kwh"].sum() * PRICE, 2)


def given_kwh(joined):
    """Energy the EVs gave back."""
    return joined["discharged_kwh"].sum()


def test_v2g_pay_is_set_beside_its_wear():
    """`v2g_net_margin` = the drivers' V2G pay − Σ `cost_v2g`; without V2G KPIs neither key is written."""
    rows = pd.DataFrame({c: [1.0, 2.0] for c in ("charged_kwh", "discharged_kwh", "calendar_fade_kwh",
                                                 "cycle_fade_charging_kwh", "cycle_fade_v2g_kwh", "fade_kwh",
                                                 "cost_calendar", "cost_charging", "cost")})  # fmt: skip
    rows["cost_v2g"] = [0.125, 0.25]
    k = degradation_kpis(rows, v2g={"v2g_remuneration": 1.5})
    assert k["v2g_remuneration"] == 1.5
    assert k["v2g_net_margin"] == round(1.5 - 0.375, 2)
    assert "v2g_net_margin" not in degradation_kpis(rows)


def test_repeat_customers_age_away_from_the_network(tmp_path):
    """`drivers`, `calendar_fade_away_kwh`, `fade_per_driver_mean_kwh` from sessions.parquet, stretch by stretch."""
    data = yaml.safe_load((ROOT / "scenarios" / "pricing_flat.yaml").read_text())
    data["horizon_days"] = 3
    data["degradation"] = {}
    scenario = validate_data(data, "pricing_flat+degradation", ROOT / "scenarios")
    kpis = write_results(simulate(scenario), tmp_path / "out")["degradation"]
    s = pd.read_parquet(tmp_path / "out" / "sessions.parquet")
    rows = pd.read_parquet(tmp_path / "out" / "degradation.parquet")
    s = s[s["plug_t_s"].notna() & (s["driver_id"] >= 0)].sort_values(["driver_id", "plug_t_s"])
    horizon_s = scenario.horizon_s
    scale = 0.75 * AGE_DAYS**-0.25 / 86400.0
    away = 0.0
    for _, visits in s.groupby("driver_id"):
        v = visits.to_dict("records")
        cap = [PRESETS[r["ev_model"]].capacity_kwh for r in v]
        away += scale * alpha(v[0]["soc_in_frac"]) * v[0]["plug_t_s"] * cap[0]
        for i, r in enumerate(v):
            end = horizon_s if math.isnan(r["departure_t_s"]) else r["departure_t_s"]
            nxt, soc = (
                (v[i + 1]["plug_t_s"], v[i + 1]["soc_in_frac"]) if i + 1 < len(v) else (horizon_s, r["soc_out_frac"])
            )
            away += scale * alpha((r["soc_out_frac"] + soc) / 2) * max(nxt - end, 0.0) * cap[i]
    assert kpis["drivers"] == s["driver_id"].nunique() > 20
    assert kpis["calendar_fade_away_kwh"] == pytest.approx(away, rel=1e-9)
    at_network = rows.loc[rows["driver_id"] >= 0, "fade_kwh"].sum()
    assert kpis["fade_per_driver_mean_kwh"] == pytest.approx((at_network + away) / kpis["drivers"], rel=1e-9)


def test_a_sweep_tabulates_the_degradation_kpis():
    """A sweep's table has a `degradation.<kpi>` column for every scalar of the section."""
    columns = flatten_kpis({"network": {}, "degradation": {"cost_v2g": 1.25, "fade_kwh": 0.5, "drivers": 3}})
    assert columns == {"degradation.cost_v2g": 1.25, "degradation.fade_kwh": 0.5, "degradation.drivers": 3.0}


@pytest.mark.parametrize("manager", ["uncontrolled", "equal_share", "least_laxity_first", "price_responsive"])
def test_every_session_of_a_managed_run_ages_as_its_closed_form(manager, tmp_path):
    """However a manager splits a charge, a session charges its energy delivered in one half cycle of fade."""
    scenario = make_scenario(manager={"kind": manager}, horizon_days=1, degradation={})
    write_results(simulate(scenario), tmp_path / "out")
    rows = pd.read_parquet(tmp_path / "out" / "degradation.parquet")
    s = pd.read_parquet(tmp_path / "out" / "sessions.parquet")
    joined = rows.merge(s, on="session_id", suffixes=("", "_s"), validate="one_to_one")
    capacity = joined["ev_model"].map(lambda m: PRESETS[m].capacity_kwh).astype(float)
    assert len(joined) > 10
    np.testing.assert_allclose(joined["charged_kwh"], joined["energy_delivered_kwh"], rtol=1e-9, atol=1e-9)
    expected = half_cycle(joined["soc_in_frac"], joined["soc_out_frac"], capacity) * capacity
    np.testing.assert_allclose(joined["cycle_fade_charging_kwh"], expected, rtol=1e-9, atol=1e-15)
    assert (joined["calendar_fade_kwh"] > 0).all()


def test_the_v2g_garage_sets_the_residents_pay_beside_their_wear(tmp_path):
    """scenarios/v2g_garage.yaml (2 days): the V2G energy is the v2g section's, and v2g_net_margin its pay − wear."""
    scenario = load_scenario(ROOT / "scenarios" / "v2g_garage.yaml", horizon_days=2)
    kpis = write_results(simulate(scenario), tmp_path / "out")
    k, v2g = kpis["degradation"], kpis["v2g"]["network"]
    rows = pd.read_parquet(tmp_path / "out" / "degradation.parquet")
    discharges = pd.read_parquet(tmp_path / "out" / "discharges.parquet")
    assert v2g["energy_discharged_kwh"] > 0
    assert k["discharged_kwh"] == pytest.approx(v2g["energy_discharged_kwh"], rel=1e-9)
    assert k["v2g_remuneration"] == v2g["v2g_remuneration"]
    assert k["v2g_net_margin"] == round(v2g["v2g_remuneration"] - rows["cost_v2g"].sum(), 2)
    gave = rows["session_id"].isin(discharges["session_id"])
    assert (rows.loc[gave, "cycle_fade_v2g_kwh"] > 0).all()
    assert (rows.loc[~gave, "cycle_fade_v2g_kwh"] == 0).all()
