import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.compat import INLET_ACCEPTS, accepts_mask, bit, connector_names, preset_inlets
from sim.config import ScenarioError, load_scenario, validate_data
from sim.demand import fleet_models, generate
from sim.engine import simulate
from sim.ev_arrivals import NO_EV
from sim.ev_metrics import ev_sessions_frame, interop_by_pair, plug_attempts_frame, visits_frame
from sim.ev_side import AUTH_METHODS, NoEvSide
from sim.managers.base import NeedsSource, SessionStarted, SessionStopped, StatusChanged
from sim.metrics import build_tables
from sim.results import write_results
from sim.serviceability import haversine_km
from sim.sweep import flatten_kpis
from tests.conftest import make_scenario, scenario_data
from tests.sim.test_grid import ALL, _check_tree, _congested, _manager

DC_STANDARDS = ["ccs1", "nacs", "chademo"]
NA_FLEET = [  # inlets in market na: nacs; ccs1 (takes j1772 too); chademo and j1772
    {"preset": "tesla_model_3_lr", "share": 2},
    {"preset": "hyundai_ioniq_5_lr", "share": 2},
    {"preset": "nissan_leaf_40", "share": 1},
]


def _site(site_id: str, chargers: list[dict], lat: float = 37.3, lon: float = -121.9) -> dict:
    return {"id": site_id, "lat": lat, "lon": lon, "capacity_kw": 5000, "chargers": chargers}


def _dc(model: str, connector, count: int = 1, connectors: int = 1, **kw) -> dict:
    return {"model": model, "count": count, "connectors": connectors, "power_kw": 150, "current": "dc",
            "connector": connector, **kw}  # fmt: skip


def _demand(site: str, per_hour: float, **kw) -> dict:
    return {"kind": "synthetic", "site": site, "rate": {"kind": "constant", "per_hour": per_hour},
            "dwell_min": {"dist": "uniform", "low": 20, "high": 60}, "leave_when_charged": True,
            "patience_min": 20, "max_queue": 3, **kw}  # fmt: skip


def _plugged(run) -> pd.DataFrame:
    """Plugged-in sessions with their EV model, port connector and EV-side facts."""
    s = build_tables(run).sessions.merge(ev_sessions_frame(run), on="session_id")
    s = s[s["evse_id"].notna()].copy()
    index = {e.evse_id: e.index for e in run.evses}
    s["port_connector"] = [run.ev.port_connector[index[e]] for e in s["evse_id"].astype(str)]
    return s


# ---------------------------------------------------------------- compatibility


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mix=st.lists(st.sampled_from(DC_STANDARDS), min_size=1, max_size=4),
    adapter_share=st.floats(0, 1),
    seed=st.integers(0, 10_000),
)
def test_ev_never_charges_on_an_incompatible_connector(mix, adapter_share, seed):
    """Whatever the connector mix and queue, a port is one the EV's inlets take or one its driver has an adapter for."""
    fleet = [dict(e) for e in NA_FLEET]
    fleet[0]["adapters"] = [{"connector": "ccs1", "share": adapter_share}]
    run = simulate(make_scenario(
        seed=seed, horizon_days=1, fleet=fleet, ev_side={"market": "na"},
        network={"sites": [_site("a", [_dc(f"dc_{c}", c) for c in mix])]},
        demand=[_demand("a", 6.0)],
    ))  # fmt: skip
    plugged = _plugged(run)
    adapters = {"tesla_model_3_lr": {"ccs1"}, "hyundai_ioniq_5_lr": set(), "nissan_leaf_40": set()}
    for model, connector, adapter_used in zip(
        plugged["ev_model"].astype(str), plugged["port_connector"], plugged["adapter_used"], strict=True
    ):
        takes = {plug for inlet in preset_inlets(model, "na") for plug in INLET_ACCEPTS[inlet]}
        assert connector in takes or (adapter_used and connector in adapters[model]), (model, connector)
        assert adapter_used == (connector not in takes)


def test_adapter_lets_an_ev_use_another_connector():
    """At a CCS1-only site Teslas without an adapter leave (incompatible); with one they all charge, on the adapter."""
    base = {"fleet": [{"preset": "tesla_model_3_lr", "share": 1}], "ev_side": {"market": "na"}, "horizon_days": 2,
            "network": {"sites": [_site("a", [_dc("dc", "ccs1", count=6)])]},
            "demand": [_demand("a", 2.0)]}  # fmt: skip
    without = build_tables(simulate(make_scenario(**base))).sessions
    assert len(without) > 50
    assert (without["outcome"] == "incompatible").all()
    fleet = [{"preset": "tesla_model_3_lr", "share": 1, "adapters": [{"connector": "ccs1", "share": 1.0}]}]
    plugged = _plugged(simulate(make_scenario(**{**base, "fleet": fleet})))
    assert len(plugged) == len(without)
    assert plugged["adapter_used"].all()
    assert set(plugged["port_connector"]) == {"ccs1"}


def test_waiting_drivers_get_only_ports_that_fit():
    """One NACS and one CCS1 port, long stays: a freed port goes to the first waiting driver whose EV fits it."""
    run = simulate(make_scenario(
        horizon_days=3, ev_side={"market": "na"}, fleet=NA_FLEET[:2],
        network={"sites": [_site("a", [_dc("dc_n", "nacs"), _dc("dc_c", "ccs1")])]},
        demand=[_demand("a", 3.0, leave_when_charged=False, dwell_min=45, patience_min=120, max_queue=6)],
    ))  # fmt: skip
    plugged = _plugged(run)
    waited = plugged[plugged["wait_s"] > 0]
    assert len(waited) > 20
    expected = {"tesla_model_3_lr": "nacs", "hyundai_ioniq_5_lr": "ccs1"}
    assert (plugged["port_connector"] == plugged["ev_model"].astype(str).map(expected)).all()


def test_a_driver_drives_to_the_nearest_site_that_fits():
    """A Tesla at a CCS1-only site drives to the NACS site 2.2 km away, arriving after distance × detour / speed."""
    near = (37.30, -121.90)
    far = (37.30 + 2.2 / 111.2, -121.90)  # about 2.2 km north
    sites = [_site("ccs", [_dc("dc", "ccs1", count=4)], *near), _site("nacs", [_dc("dc", "nacs", count=4)], *far)]
    data = {"network": {"sites": sites}, "fleet": [{"preset": "tesla_model_3_lr", "share": 1}], "horizon_days": 1,
            "demand": [_demand("ccs", 1.0)]}  # fmt: skip
    redirect = {"radius_km": 3.0, "speed_kmh": 30.0, "detour_factor": 1.25}
    scenario = make_scenario(**data, ev_side={"market": "na", "redirect": redirect})
    s = _plugged(simulate(scenario))
    road_km = haversine_km(*near, *far) * 1.25
    travel_s = road_km / 30.0 * 3600.0
    first_arrival_t_s = generate(scenario, fleet_models(scenario))["ccs"].t_s  # session ids follow arrivals
    assert len(s) == len(first_arrival_t_s) > 10
    assert (s["origin_site_id"] == "ccs").all()
    assert (s["site_id"] == "nacs").all()
    np.testing.assert_allclose(s["redirect_s"], travel_s, rtol=1e-12)
    np.testing.assert_allclose(s["detour_km"], road_km, rtol=1e-12)
    np.testing.assert_allclose(s["plug_t_s"], first_arrival_t_s + travel_s, rtol=1e-12)  # arrival: at nacs
    assert s["compat_miss"].all()
    too_far = build_tables(simulate(make_scenario(**data, ev_side={"market": "na", "redirect": {"radius_km": 2.0}})))
    assert (too_far.sessions["outcome"] == "incompatible").all()


def test_everything_compatible_reproduces_the_run_without_an_ev_side():
    """An ev_side section where every EV fits every port and nothing fails changes no session and no load."""
    fleet = [{"preset": "tesla_model_3_lr", "share": 2}, {"preset": "vw_id4_pro", "share": 1}]
    plain = build_tables(simulate(make_scenario(horizon_days=4, fleet=fleet)))
    ev = build_tables(simulate(make_scenario(horizon_days=4, fleet=fleet, ev_side={"market": "eu"})))
    pd.testing.assert_frame_equal(plain.sessions, ev.sessions)
    pd.testing.assert_frame_equal(plain.load, ev.load)


# ---------------------------------------------------------------- interoperability


def test_first_attempt_and_retry_success_match_one_minus_p_and_one_minus_p_squared():
    """Handshakes fail independently with p; with one retry a visit succeeds first with 1 − p, at all with 1 − p².

    Each visit's first handshake is a Bernoulli(1 − p) trial and its success after the retry a
    Bernoulli(1 − p²) trial, independent across visits (own random numbers per arrival), so the
    observed rate over n visits has standard error sqrt(q(1 − q)/n). The tolerance is 4 such
    standard errors: a correct engine misses it with probability below 1e-4 (normal
    approximation, n in the thousands), a wrong one (e.g. the retry reusing a random number,
    giving 1 − p) by far more. Two families at one charger model with their own p check the
    matrix lookup. One port tried: a failed visit ends the session as failed, cause interop.
    """
    p = {"tesla": 0.3, "hyundai_kia_egmp": 0.1}
    ev_side = {"market": "eu", "interop": {"retries": 1, "ports_tried": 1, "pairs": [
        {"family": f, "charger_model": "dc", "failure_prob": q} for f, q in p.items()]}}  # fmt: skip
    run = simulate(make_scenario(
        horizon_days=30, ev_side=ev_side,
        fleet=[{"preset": "tesla_model_3_lr", "share": 1}, {"preset": "kia_ev6_lr", "share": 1}],
        network={"sites": [_site("a", [_dc("dc", "ccs2", count=40)])]},
        demand=[_demand("a", 8.0, dwell_min=20)],
    ))  # fmt: skip
    attempts = plug_attempts_frame(run)
    pairs = interop_by_pair(visits_frame(attempts)).set_index("ev_family")
    for family, q in p.items():
        n = pairs.loc[family, "visits"]
        assert n > 2000
        for observed, expected in ((pairs.loc[family, "first_attempt_success_rate"], 1 - q),
                                   (pairs.loc[family, "success_after_retries_rate"], 1 - q**2)):  # fmt: skip
            assert abs(observed - expected) <= 4 * math.sqrt(expected * (1 - expected) / n), (family, observed)
    assert set(attempts["cause"].astype(str)) == {"none", "interop"}
    assert attempts.groupby(["session_id", "visit"]).size().max() == 2
    s = build_tables(run).sessions.merge(ev_sessions_frame(run), on="session_id")
    failed = s["outcome"] == "failed"
    assert (s.loc[failed, "cause"] == "interop").all()
    assert (s.loc[failed, "failed_attempts"] == 2).all()
    n_visits = int(pairs["visits"].sum())
    assert failed.sum() == n_visits - int(round((pairs["success_after_retries_rate"] * pairs["visits"]).sum()))


def test_after_failing_one_port_a_driver_tries_another():
    """With two ports tried, a session fails only after both visits fail; the second visit is on another port."""
    ev_side = {"market": "eu", "interop": {"failure_prob": 0.5, "retries": 0, "ports_tried": 2}}
    run = simulate(make_scenario(horizon_days=5, ev_side=ev_side, fleet=[{"preset": "vw_id4_pro", "share": 1}],
                                 network={"sites": [_site("a", [_dc("dc", "ccs2", count=10)])]},
                                 demand=[_demand("a", 4.0)]))  # fmt: skip
    attempts = plug_attempts_frame(run)
    per_session = attempts.groupby("session_id").agg(visits=("visit", "max"), ports=("evse_id", "nunique"),
                                                     ok=("ok", "any"))  # fmt: skip
    assert (per_session["visits"] == per_session["ports"]).all()
    assert (per_session.loc[~per_session["ok"], "visits"] == 2).all()
    assert (per_session["visits"] == 2).any()


def test_interop_failures_do_not_change_arrivals():
    """Common random numbers: interop failures on leave every arrival and every other EV-side draw as it was."""
    data = {"horizon_days": 3, "fleet": NA_FLEET[:2] + [{"preset": "chevrolet_bolt_ev", "share": 1}],
            "network": {"sites": [_site("a", [_dc("dc", "ccs1", count=4), _dc("dn", "nacs", count=4)])]},
            "demand": [_demand("a", 4.0)]}  # fmt: skip
    bare = [{k: v for k, v in g.items() if k != "connector"} for g in data["network"]["sites"][0]["chargers"]]
    plain = make_scenario(**{**data, "network": {"sites": [_site("a", bare)]}})
    off = make_scenario(**data, ev_side={"market": "na"})
    on = make_scenario(**data, ev_side={"market": "na", "interop": {"failure_prob": 0.4}})
    arrivals = {k: generate(s, fleet_models(s))["a"] for k, s in (("plain", plain), ("off", off), ("on", on))}
    for f in fields(arrivals["plain"]):
        if f.name != "ev":
            for k in ("off", "on"):
                np.testing.assert_array_equal(getattr(arrivals["plain"], f.name), getattr(arrivals[k], f.name))
    for f in fields(arrivals["off"].ev):
        if f.name != "interop_u":
            np.testing.assert_array_equal(getattr(arrivals["off"].ev, f.name), getattr(arrivals["on"].ev, f.name))
    a = build_tables(simulate(off)).sessions
    b = build_tables(simulate(on)).sessions
    assert (b["outcome"] == "failed").sum() > 0
    pd.testing.assert_series_equal(a["arrival_t_s"], b["arrival_t_s"])
    pd.testing.assert_series_equal(a["ev_model"], b["ev_model"])


def test_ev_side_results_are_byte_identical(scenarios_dir, tmp_path):
    """The mixed-market scenario twice with the same seed: identical EV-side tables, sessions and KPIs."""
    s = load_scenario(scenarios_dir / "mixed_market.yaml", horizon_days=2)
    kpis = write_results(simulate(s), tmp_path / "a")
    write_results(simulate(s), tmp_path / "b")
    columns = flatten_kpis(kpis)  # what a sweep tabulates
    assert columns["ev_side.sessions_lost_to_compat"] == kpis["ev_side"]["network"]["sessions_lost_to_compat"] > 0
    for name in ("ev_sessions.parquet", "plug_attempts.parquet", "sessions.parquet", "events.parquet", "kpis.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# ---------------------------------------------------------------- vehicle data


class _Recorder:
    """A manager that sends nothing and keeps every plugged-in EV's view at every event."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def handle(self, event, network):
        if isinstance(event, SessionStarted | SessionStopped | StatusChanged):
            site = network.site(event.site_id)
            for e in site.evses:
                if e.session_id is not None:
                    v = site.vehicle(e.evse_id)
                    soc, age = (v.soc_frac, v.data_age_s) if v is not None else (None, None)
                    self.rows.append((network.t_s, int(e.session_id), site.needs_source(e.evse_id), soc, age,
                                      e.energy_need_kwh, e.departure_t_s, e.energy_kwh))  # fmt: skip
        return ()


_VAN = {"name": "van60", "capacity_kwh": 60.0, "ac_max_kw": 11.0, "dc_curve": [[0, 50], [1, 50]]}


def _telematics_run(telematics: dict, **fleet):
    recorder = _Recorder()
    run = simulate(make_scenario(
        horizon_days=2, ev_side={"market": "eu", "telematics": telematics},
        fleet=[{"model": _VAN, "share": 1, "telematics_share": 1.0, **fleet}],
        network={"sites": [_site("a", [{"model": "ac", "count": 30, "power_kw": 11, "current": "ac"}])]},
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 3},
                 "dwell_min": {"dist": "uniform", "low": 60, "high": 300}, "target_soc_frac": 0.9}],
        manager={"kind": "uncontrolled"},
    ), manager=recorder)  # fmt: skip
    views = pd.DataFrame(recorder.rows, columns=["t_s", "session_id", "source", "soc_frac", "data_age_s", "need_kwh",
                                                 "view_departure_t_s", "energy_kwh"])  # fmt: skip
    sessions = build_tables(run).sessions.set_index("session_id")
    return views.join(sessions, on="session_id"), sessions


def _true_soc(v: pd.DataFrame, t_s: pd.Series) -> pd.Series:
    """Closed form on an 11 kW AC port (the van's own limit, no manager limits): linear up to the target."""
    charged_h = np.maximum(t_s - v["plug_t_s"], 0.0) / 3600.0
    target = v["soc_in_frac"] + v["energy_requested_kwh"] / 60.0
    return np.minimum(v["soc_in_frac"] + 11.0 * charged_h / 60.0, target)


def test_telematics_view_is_the_vehicle_latency_ago():
    """With a continuous feed the manager's SoC at t is the vehicle's at t − latency; the meter corrects the need."""
    latency_s = 600.0
    v, _ = _telematics_run({"latency_s": latency_s, "report_interval_s": 0})
    assert len(v) > 200
    assert (v["source"] == NeedsSource.TELEMATICS).all()
    np.testing.assert_allclose(v["data_age_s"], latency_s)
    np.testing.assert_allclose(v["soc_frac"], _true_soc(v, v["t_s"] - latency_s), atol=1e-9)
    charged = v[v["t_s"] - latency_s > v["plug_t_s"] + 60]
    assert (charged["soc_frac"] < _true_soc(charged, charged["t_s"]) - 1e-3).mean() > 0.5  # stale: behind the car
    target = v["soc_in_frac"] + v["energy_requested_kwh"] / 60.0
    np.testing.assert_allclose(v["need_kwh"], (target - _true_soc(v, v["t_s"])) * 60.0, atol=1e-9)
    served = v["outcome"] == "served"  # they stay their whole dwell: the departure they planned is when they left
    np.testing.assert_allclose(v.loc[served, "view_departure_t_s"], v.loc[served, "departure_t_s"])


def test_telematics_reports_come_at_intervals_and_may_be_wrong():
    """Reports every 900 s seen 120 s late: age in [120, 1020); a wrong feed is off by its drawn error."""
    v, _ = _telematics_run({"latency_s": 120, "report_interval_s": 900, "wrong_share": 1.0, "soc_error_frac": 0.05})
    assert ((v["data_age_s"] >= 120 - 1e-9) & (v["data_age_s"] < 1020)).all()
    assert v["data_age_s"].nunique() > 20
    expected = np.minimum(1.0, _true_soc(v, v["t_s"] - v["data_age_s"]) + 0.05)
    np.testing.assert_allclose(v["soc_frac"], expected, atol=1e-9)


def test_iso15118_reaches_the_manager_only_over_ocpp_2_0_1():
    """ISO 15118 needs are live over OCPP 2.0.1; over OCPP 1.6 the manager has to estimate."""
    for protocol, source in (("ocpp2.0.1", NeedsSource.ISO15118), ("ocpp1.6", NeedsSource.ESTIMATE)):
        recorder = _Recorder()
        simulate(make_scenario(horizon_days=1, fleet=[{"model": _VAN, "share": 1, "iso15118_share": 1.0}],
                               ev_side={"market": "eu", "csms_protocol": protocol}), manager=recorder)  # fmt: skip
        v = pd.DataFrame(recorder.rows).rename(columns={2: "source", 4: "age", 5: "need", 6: "departure"})
        assert len(v) > 20
        assert (v["source"] == source).all()
        assert v["departure"].isna().all() == (source is NeedsSource.ESTIMATE)
        if source is NeedsSource.ISO15118:
            assert (v["age"] == 0.0).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manager=st.sampled_from(ALL), seed=st.integers(0, 10_000), protocol=st.sampled_from(["ocpp1.6", "ocpp2.0.1"]),
       telematics=st.sampled_from([0.0, 0.5, 1.0]))  # fmt: skip
def test_every_manager_keeps_its_limits_with_late_and_wrong_vehicle_data(manager, seed, protocol, telematics):
    """Telematics late and wrong, ISO 15118 hidden over OCPP 1.6, slow starts: limits hold and energy is conserved."""
    data = _congested(_manager(manager), seed=seed, days=2, iso=0.5)
    for entry in data["fleet"]:
        entry.update(telematics_share=telematics, plug_and_charge_share=0.3)
    ev_side = {"market": "eu", "csms_protocol": protocol, "authorization": {},
               "telematics": {"latency_s": 300, "wrong_share": 0.5, "soc_error_frac": {"dist": "uniform", "low": -0.3,
                                                                                       "high": 0.3}}}  # fmt: skip
    run = simulate(make_scenario(**data, ev_side=ev_side))
    if manager != "uncontrolled":
        _check_tree(run, 60.0 if manager == "peak_shaving" else math.inf)
    t = build_tables(run)
    s = t.sessions
    assert (s["energy_delivered_kwh"] <= s["energy_requested_kwh"] + 1e-9).all()
    assert math.isclose(t.load["energy_kwh"].sum(), s["energy_delivered_kwh"].sum(), rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------- Plug & Charge


def _auth_run(plug_and_charge: dict, **entry):
    auth = {"start_s": {"rfid": 20}, "plug_and_charge": plug_and_charge}
    run = simulate(make_scenario(
        horizon_days=3, ev_side={"market": "eu", "authorization": auth},
        payments={"methods": [{"method": "rfid", "share": 1, "fee_pct": 2.0}]},
        fleet=[{"preset": "kia_ev6_lr", "share": 1, "iso15118_share": 0.6, "plug_and_charge_share": 0.6, **entry}],
        network={"sites": [_site("a", [_dc("dc", "ccs2", count=8), _dc("dc_old", "ccs2", count=8)])]},
        demand=[_demand("a", 4.0)],
    ))  # fmt: skip
    return build_tables(run).sessions.merge(ev_sessions_frame(run), on="session_id"), run


def test_plug_and_charge_starts_sooner_and_counts_as_a_payment_method():
    """Power flows 5 s after plug-in with Plug & Charge, 20 s with RFID; each pays its own fee as its method."""
    s, _ = _auth_run({"start_s": 5, "fee_pct": 0.5})
    charged = s[s["charge_start_t_s"].notna()]
    pnc = charged["auth_method"] == "plug_and_charge"
    assert pnc.sum() > 50
    assert (~pnc).sum() > 30
    assert (charged.loc[pnc, "plug_and_charge"]).all()
    np.testing.assert_allclose((charged["charge_start_t_s"] - charged["plug_t_s"])[pnc], 5.0, atol=1e-9)
    np.testing.assert_allclose((charged["charge_start_t_s"] - charged["plug_t_s"])[~pnc], 20.0, atol=1e-9)
    assert set(charged.loc[~pnc, "auth_method"].astype(str)) == {"rfid"}
    assert (charged["payment_method"].astype(str) == charged["auth_method"].astype(str)).all()
    paid = charged[charged["amount_charged"] > 0]
    fee_pct = np.where(paid["payment_method"] == "plug_and_charge", 0.5, 2.0)
    np.testing.assert_allclose(paid["payment_fee"], np.round(paid["amount_charged"] * fee_pct / 100, 2), atol=0.005)


def test_refused_certificate_falls_back_or_fails():
    """All certificates refused: drivers with another method start after 5 + 20 s; the others leave (certificate)."""
    s, _ = _auth_run({"start_s": 5, "certificate_failure_prob": 1.0, "fallback_share": 0.5})
    assert not (s["auth_method"] == "plug_and_charge").any()
    fell_back = s["plug_and_charge"] & s["charge_start_t_s"].notna()
    assert fell_back.sum() > 20
    np.testing.assert_allclose((s["charge_start_t_s"] - s["plug_t_s"])[fell_back], 25.0, atol=1e-9)
    failed = s[s["outcome"] == "failed"]
    assert len(failed) > 20
    assert (failed["cause"] == "authorization").all()
    assert failed["plug_and_charge"].all()
    assert (failed["visits"] == 1).all()


def test_plug_and_charge_only_where_the_charger_takes_it():
    """Only `dc` takes Plug & Charge: on `dc_old` Plug & Charge drivers start with their other method."""
    s, _ = _auth_run({"start_s": 5, "charger_models": ["dc"]})
    on_old = s["evse_id"].astype(str).str.slice(0, 4).isin([f"a.{k:02d}" for k in range(9, 17)])
    assert (s.loc[on_old & s["plug_and_charge"], "auth_method"] == "rfid").all()
    assert (s.loc[on_old & s["plug_and_charge"]].shape[0]) > 5
    assert (s.loc[~on_old & s["plug_and_charge"] & s["plug_t_s"].notna(), "auth_method"] == "plug_and_charge").all()


def test_silent_faults_and_handshakes_share_one_attempts_table(tmp_path):
    """A silently faulted port is a failed attempt of cause fault; sessions lost to downtime leave interop out."""
    mode = {
        "error_code": "InternalError",
        "ttf": {"dist": "exponential", "mtbf_days": 3},
        "detected": False,
        "scope": "charger",
        "diagnosis_min": 0,
        "repair_min": {"dist": "exponential", "mean": 240},
    }
    crews = [{"id": "c", "technicians": 1, "depot": {"lat": 37.3, "lon": -121.9},
              "shift": {"start_h": 0, "end_h": 24, "days": [0, 1, 2, 3, 4, 5, 6]}}]  # fmt: skip
    run = simulate(make_scenario(
        horizon_days=10, ev_side={"market": "na", "interop": {"failure_prob": 0.4, "ports_tried": 1}},
        fleet=NA_FLEET[:2],
        network={"sites": [_site("a", [_dc("dc", "ccs1", count=3), _dc("dn", "nacs", count=3)])]},
        demand=[_demand("a", 2.0)],
        serviceability={"fault_modes": {"m": mode}, "hardware": {"dc": ["m"], "dn": ["m"]}, "crews": crews},
    ))  # fmt: skip
    attempts = plug_attempts_frame(run)
    faults = attempts[attempts["cause"] == "fault"]
    assert len(faults) == len(run.service.attempts["t_s"]) > 0
    assert (attempts["cause"] == "interop").sum() > 0
    assert (~faults["ok"]).all()
    assert (faults["attempt"] == 1).all()
    s = build_tables(run).sessions.merge(ev_sessions_frame(run), on="session_id")
    interop_only = (s["outcome"] == "failed") & ~s["session_id"].isin(faults["session_id"])
    assert interop_only.sum() > 0
    assert (s.loc[interop_only, "cause"] == "interop").all()
    lost = (s["outcome"] == "interrupted") | ((s["outcome"] == "failed") & (s["cause"] == "faulted_port"))
    assert write_results(run, tmp_path / "out")["serviceability"]["sessions_lost"] == lost.sum()


# ---------------------------------------------------------------- scenario input


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"network": {"sites": [_site("a", [{"model": "x", "power_kw": 50, "current": "dc", "connector": "type2"}])]}},
         "network.sites[0].chargers[0]: connector type2 is not a dc connector; dc chargers have ccs1, ccs2, chademo,"),
        ({"network": {"sites": [_site("a", [_dc("x", ["ccs1", "chademo", "nacs"], connectors=2)])]}},
         "connector lists 3 standards for 2 connectors"),
        ({"fleet": [{"preset": "vw_id4_pro", "share": 1, "adapters": [{"connector": "nacs", "share": 0.5}]}],
          "ev_side": None},
         "fleet[0].adapters only apply with an ev_side section; add one, e.g. `ev_side: {market: eu}`"),
        ({"fleet": [{"preset": "renault_zoe_ze50", "share": 1}], "ev_side": {"market": "na"}},
         "fleet[0]: preset renault_zoe_ze50 is not sold in market na; give its inlets, e.g. `inlets: [ccs1]`"),
        ({"ev_side": {"market": "eu", "interop": {"pairs": [{"family": "tesla_s", "charger_model": "dc",
                                                              "failure_prob": 0.1}]}}},
         "ev_side.interop.pairs[0].family 'tesla_s' is no fleet model's family; families: nissan_leaf, renault_zoe,"),
        ({"fleet": [{"preset": "kia_ev6_lr", "share": 1, "iso15118_share": 0.2, "plug_and_charge_share": 0.5}],
          "ev_side": {"market": "eu", "authorization": {}}},
         "fleet[0]: Plug & Charge runs over ISO 15118: plug_and_charge_share (=0.5) must be <= iso15118_share (=0.2)"),
        ({"fleet": [{"preset": "kia_ev6_lr", "share": 1, "iso15118_share": 0.5, "plug_and_charge_share": 0.5}],
          "ev_side": {"market": "eu"}},
         "fleet[0].plug_and_charge_share needs ev_side.authorization"),
        ({"ev_side": {"market": "mars"}}, "ev_side.market: Input should be 'eu', 'na', 'cn' or 'jp'"),
        ({"fleet": [{"preset": "nissan_leaf_40", "share": 1, "inlets": ["type2"],
                     "adapters": [{"connector": "chademo", "share": 1}]}], "ev_side": {"market": "eu"}},
         "fleet[0].adapters: a chademo adapter needs a DC inlet, and inlets type2 take AC only"),
    ],
)  # fmt: skip
def test_bad_ev_side_input_names_the_file_the_field_and_the_fix(tmp_path, change, expected):
    """Wrong connector for the current, miscounted connectors, settings without the section, unsold presets, etc."""
    data = scenario_data(**change)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert any(p.startswith(f"{path}:") and expected in p for p in err.value.problems), err.value.problems


def test_scenarios_without_ev_side_need_nothing_new(scenarios_dir):
    """Every shipped scenario but the mixed-market one loads without an ev_side section, as before the section."""
    for path in sorted(scenarios_dir.glob("*.yaml")):
        s = load_scenario(path)
        assert (s.ev_side is None) == (path.name != "mixed_market.yaml"), path.name


def test_without_an_ev_side_section_the_null_ev_side_stands_in():
    """Without an ev_side section sessions carry the shared `NO_EV`, which nothing can change; no EV table is made."""
    with pytest.raises(AttributeError):
        NO_EV.auth_s = 30.0
    assert (NO_EV.auth_s, NO_EV.auth_method) == (0.0, AUTH_METHODS.index("none"))
    options = [(0, 0.0), (1, 2.5)]
    assert NoEvSide().listed(None, options) is options
    assert simulate(make_scenario()).ev is None


def test_default_connectors_and_preset_inlets_follow_the_market():
    """A group without a connector gets the market's standard for its current; presets their market's inlets."""
    data = scenario_data(ev_side={"market": "na"}, fleet=[{"preset": "nissan_leaf_40", "share": 1}])
    run = simulate(validate_data(data, "test", __import__("pathlib").Path(".")))
    assert run.ev.port_connector == ["j1772"] * 4 + ["ccs1"] * 2  # 2 × 2 AC, 1 × 2 DC in the base network
    assert accepts_mask(preset_inlets("nissan_leaf_40", "na")) == bit("chademo") | bit("j1772")
    assert connector_names(accepts_mask(["ccs2"])) == ["ccs2", "type2"]
    plugged = _plugged(run)
    assert set(plugged["port_connector"]) == {"j1772"}  # the Leaf has no CCS1 inlet


def test_site_choice_only_offers_sites_that_fit():
    """With site choice a Tesla meant for a CCS1-only site picks the NACS site nearby: no miss, no redirect."""
    near = (37.30, -121.90)
    far = (37.30 + 2.2 / 111.2, -121.90)
    sites = [_site("ccs", [_dc("dc", "ccs1", count=4)], *near), _site("nacs", [_dc("dc", "nacs", count=4)], *far)]
    s = _plugged(simulate(make_scenario(
        network={"sites": sites}, fleet=[{"preset": "tesla_model_3_lr", "share": 1}], horizon_days=1,
        demand=[_demand("ccs", 1.0)], ev_side={"market": "na"}, drivers={"site_choice": {"radius_km": 5}},
    )))  # fmt: skip
    assert len(s) > 10
    assert (s["site_id"] == "nacs").all()
    assert not s["compat_miss"].any()
    assert s["origin_site_id"].isna().all()
    np.testing.assert_allclose(s["detour_km"], haversine_km(*near, *far), rtol=1e-9)


def test_plug_and_charge_is_not_a_payment_method_to_draw(tmp_path):
    """Listing plug_and_charge among the payment methods is an error that says where it is set instead."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(payments={"methods": [{"method": "plug_and_charge", "share": 1}]})))
    with pytest.raises(ScenarioError, match="plug_and_charge is not drawn by share"):
        load_scenario(path)
