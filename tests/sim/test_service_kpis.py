"""Every serviceability KPI recomputed from the recorded tables of a results folder (docs/kpis.md).

The recomputations here share no code with `sim.service_metrics`: time in outages is measured
on the elementary segments between all row boundaries, not by the library's sweep.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.config import validate_data
from sim.engine import simulate
from sim.metrics import sessions_frame
from sim.results import write_results
from sim.service_metrics import attempts_frame, crews_frame, outages_frame, service_kpis, uptime_frame, visits_frame
from tests.conftest import scenario_data

ROOT = Path(__file__).resolve().parents[2]
DAYS = 120
TARGET_PCT = 97.0  # the NEVI uptime target
NEVI_DC_KW = 150.0  # the NEVI minimum for DC ports, the default
REL = 1e-9


def _corridor(**serviceability) -> dict:
    """The one-crew corridor (DC 150 kW ports with derating faults) over `DAYS` days, vandalism more frequent."""
    data = yaml.safe_load((ROOT / "scenarios" / "corridor_one_crew.yaml").read_text())
    data["horizon_days"] = DAYS
    data["serviceability"]["vandalism"] = {"per_charger_per_year": 2.0}  # an outside cause with a fault id
    data["serviceability"].update(serviceability)
    return data


def _run(data: dict, out: Path) -> Path:
    write_results(simulate(validate_data(data, "corridor", ROOT / "scenarios")), out)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder of the corridor with the default NEVI rule."""
    return _run(_corridor(), tmp_path_factory.mktemp("corridor") / "out")


@pytest.fixture(scope="module")
def tables(results):
    """The recorded tables, kpis.json's serviceability section and the horizon in seconds."""
    read = {n: pd.read_parquet(results / f"{n}.parquet") for n in
            ("outages", "uptime", "sessions", "attempts", "visits", "crews", "ports")}  # fmt: skip
    kpis = json.loads((results / "kpis.json").read_text())["serviceability"]
    scenario = yaml.safe_load((results / "scenario.yaml").read_text())
    return read, kpis, scenario, scenario["horizon_days"] * 86400.0


def _length_s(intervals: np.ndarray, lo: float, hi: float, minus: np.ndarray | None = None) -> float:
    """Length of the union of [a, b) rows of `intervals` within [lo, hi), less whatever any `minus` row covers."""
    minus = np.zeros((0, 2)) if minus is None else minus
    cuts = np.unique(np.clip(np.concatenate([[lo, hi], intervals.ravel(), minus.ravel()]), lo, hi))
    mid, width = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)

    def covered(rows: np.ndarray) -> np.ndarray:
        return ((rows[:, :1] <= mid) & (mid < rows[:, 1:])).any(axis=0)

    return float(width[covered(intervals) & ~covered(minus)].sum())


def _rows(outages: pd.DataFrame, mask: pd.Series) -> np.ndarray:
    return outages.loc[mask, ["start_t_s", "end_t_s"]].to_numpy(dtype=float).reshape(-1, 2)


def _port_uptime_pct(outages: pd.DataFrame, port: str, lo: float, hi: float) -> float:
    """NEVI: (T − (T_outage − T_excluded)) / T × 100 for one port over [lo, hi)."""
    here = outages["evse_id"] == port
    down = _rows(outages, here & outages["down"])
    excluded = _rows(outages, here & outages["down"] & outages["excluded"])
    return 100.0 * (hi - lo - _length_s(down, lo, hi, minus=excluded)) / (hi - lo)


# ------------------------------------------------------------------ uptime and availability


def test_uptime_table_rows(tables):
    """uptime.parquet: outage, excluded time and uptime of each port and period, from outages.parquet."""
    t, _, _, _ = tables
    o = t["outages"]
    assert len(t["uptime"]) > len(t["ports"])  # months and the trailing period
    for row in t["uptime"].itertuples():
        here = (o["evse_id"] == row.evse_id) & o["down"]
        lo, hi = row.start_t_s, row.end_t_s
        assert row.outage_s == pytest.approx(_length_s(_rows(o, here), lo, hi), rel=REL, abs=1e-6)
        assert row.excluded_s == pytest.approx(_length_s(_rows(o, here & o["excluded"]), lo, hi), rel=REL, abs=1e-6)
        assert row.uptime_pct == pytest.approx(_port_uptime_pct(o, row.evse_id, lo, hi), rel=REL)


def _trailing(tables) -> np.ndarray:
    t, _, _, horizon_s = tables
    lo = max(0.0, horizon_s - 365 * 86400.0)
    return np.array([_port_uptime_pct(t["outages"], p, lo, horizon_s) for p in t["ports"]["evse_id"]])


def test_port_uptime_mean_pct(tables):
    """Mean over ports of NEVI uptime over the trailing 12 months."""
    assert tables[1]["port_uptime_mean_pct"] == pytest.approx(_trailing(tables).mean(), rel=REL)


def test_port_uptime_min_pct(tables):
    """Lowest port's NEVI uptime over the trailing 12 months."""
    assert tables[1]["port_uptime_min_pct"] == pytest.approx(_trailing(tables).min(), rel=REL)
    assert tables[1]["port_uptime_min_pct"] < 100.0


def test_ports_meeting_target_share(tables):
    """Share of ports with trailing-12-month uptime at or above the 97 % target."""
    assert tables[1]["uptime_target_pct"] == TARGET_PCT
    assert tables[1]["ports_meeting_target_share"] == pytest.approx((_trailing(tables) >= TARGET_PCT).mean())


def test_availability_is_one_minus_the_union_of_outages(tables):
    """Availability: 1 − Σ over ports of the union of its down rows, over ports × T; overlaps count once."""
    t, kpis, _, horizon_s = tables
    o = t["outages"]
    union = sum(_length_s(_rows(o, (o["evse_id"] == p) & o["down"]), 0.0, horizon_s) for p in t["ports"]["evse_id"])
    summed = float(o.loc[o["down"], "duration_s"].sum())
    assert summed > union  # the corridor has overlapping outages: a reset inside a fault's outage
    assert kpis["availability"] == pytest.approx(1.0 - union / (len(t["ports"]) * horizon_s), rel=REL)


# ------------------------------------------------------------------ NEVI minimum power


def test_derated_below_the_minimum_is_down_by_exactly_those_port_hours(tmp_path, results):
    """Under the 150 kW DC minimum, uptime falls by exactly the port-hours derated below it and not otherwise down."""
    before = _run(_corridor(uptime_min_power={"dc_kw": 0.0}), tmp_path / "any_power")
    o_new = pd.read_parquet(results / "outages.parquet")
    o_old = pd.read_parquet(before / "outages.parquet")
    same = [c for c in o_new.columns if c != "down"]
    pd.testing.assert_frame_equal(o_new[same], o_old[same])  # the rule changes what counts, not what happens
    derated = o_new["available_kw"] > 0
    assert (o_new.loc[derated, "down"] == (o_new.loc[derated, "available_kw"] < NEVI_DC_KW)).all()
    assert (o_new.loc[~derated, "down"]).all()
    assert not o_old.loc[derated, "down"].any()

    horizon_s = DAYS * 86400.0
    below = derated & (o_new["available_kw"] < NEVI_DC_KW)
    assert below.any()
    expected_h = {}
    for port in o_new.loc[below, "evse_id"].unique():
        here = o_new["evse_id"] == port
        otherwise_down = _rows(o_new, here & ~derated)  # every down row but the derated ones, excluded included
        expected_h[port] = _length_s(_rows(o_new, here & below), 0.0, horizon_s, minus=otherwise_down) / 3600.0
    assert sum(expected_h.values()) > 0

    u_new = pd.read_parquet(results / "uptime.parquet")
    u_old = pd.read_parquet(before / "uptime.parquet")
    trailing = (u_new["period"] == "trailing_12m").to_numpy()
    lost_h = (u_old["uptime_pct"] - u_new["uptime_pct"])[trailing] / 100.0 * horizon_s / 3600.0
    by_port = dict(zip(u_new.loc[trailing, "evse_id"], lost_h, strict=True))
    for port, hours in by_port.items():
        assert hours == pytest.approx(expected_h.get(port, 0.0), abs=1e-6), port
    k_new = json.loads((results / "kpis.json").read_text())["serviceability"]
    k_old = json.loads((before / "kpis.json").read_text())["serviceability"]
    n_ports = len(u_new.loc[trailing])
    assert k_old["port_uptime_mean_pct"] - k_new["port_uptime_mean_pct"] == pytest.approx(
        100.0 * sum(expected_h.values()) * 3600.0 / horizon_s / n_ports, rel=1e-9
    )
    assert k_new["port_uptime_mean_pct"] < k_old["port_uptime_mean_pct"]
    assert k_new["availability"] < k_old["availability"]


# ------------------------------------------------------------------ fault modes


def _faults(tables) -> pd.DataFrame:
    o = tables[0]["outages"]
    return o[o["fault_id"] >= 0].groupby("fault_id").first()


def _exposure_s(tables, mode: str) -> float:
    """Charger-seconds in which `mode` could fail: chargers of the models it is listed for, over the horizon."""
    _, _, scenario, horizon_s = tables
    models = {m for m, modes in scenario["serviceability"]["hardware"].items() if mode in modes}
    groups = [g for s in scenario["network"]["sites"] for g in s["chargers"]]
    chargers = sum(g.get("count", 1) for g in groups if g["model"] in models)
    return chargers * horizon_s


def _modes(tables):
    modes = tables[1]["fault_modes"]
    assert {"software_hang", "power_module_failure", "vandalism"} <= set(modes)
    return modes


def test_fault_mode_failures(tables):
    """failures: distinct fault ids of the mode in outages.parquet."""
    f = _faults(tables)
    for name, mode in _modes(tables).items():
        assert mode["failures"] == int((f["cause"] == name).sum()), name


def test_fault_mode_observed_mtbf_h_is_mean_up_time(tables):
    """observed_mtbf_h: (exposure − time the mode's faults were active) / failures; none for outside causes."""
    f = _faults(tables)
    for name, mode in _modes(tables).items():
        mine = f[f["cause"] == name]
        exposure_s = _exposure_s(tables, name)
        if exposure_s == 0:
            assert mode["observed_mtbf_h"] is None, name
            continue
        up_s = exposure_s - float((mine["end_t_s"] - mine["start_t_s"]).sum())
        assert mode["observed_mtbf_h"] == pytest.approx(up_s / len(mine) / 3600.0, rel=REL), name
        assert mode["observed_mtbf_h"] < exposure_s / len(mine) / 3600.0  # less than calendar time per failure


def test_fault_mode_mttr_h(tables):
    """mttr_h: mean start-to-restore time of the mode's faults that were cleared within the run."""
    f = _faults(tables)
    for name, mode in _modes(tables).items():
        done = f[(f["cause"] == name) & (f["repaired_by"] != "none")]
        expected = float((done["end_t_s"] - done["start_t_s"]).mean() / 3600.0) if len(done) else None
        assert mode["mttr_h"] == pytest.approx(expected, rel=REL), name


def test_fault_mode_time_to_detect_h(tables):
    """time_to_detect_h: mean fault start to detection, over the mode's faults detected within the run."""
    f = _faults(tables)
    for name, mode in _modes(tables).items():
        known = f[(f["cause"] == name) & f["detected_t_s"].notna()]
        expected = float((known["detected_t_s"] - known["start_t_s"]).mean() / 3600.0) if len(known) else None
        assert mode["time_to_detect_h"] == pytest.approx(expected, rel=REL), name


def test_fault_mode_outage_h(tables):
    """outage_h: port-hours inside the mode's outage rows (derated ones included), overlaps once per port."""
    o, horizon_s = tables[0]["outages"], tables[3]
    for name, mode in _modes(tables).items():
        mine = o[o["cause"] == name]
        hours = sum(_length_s(_rows(mine, mine["evse_id"] == p), 0.0, horizon_s) for p in mine["evse_id"].unique())
        assert mode["outage_h"] == pytest.approx(hours / 3600.0, rel=REL), name


# ------------------------------------------------------------------ drivers and money


def test_failed_attempts(tables):
    """failed_attempts: rows of attempts.parquet; per 100: over plug-ins plus failed attempts."""
    t, kpis, _, _ = tables
    n = len(t["attempts"])
    assert n > 0
    assert kpis["failed_attempts"] == n
    plugs = int(t["sessions"]["plug_t_s"].notna().sum())
    assert kpis["failed_attempts_per_100"] == pytest.approx(100.0 * n / (plugs + n), rel=REL)


def _lost(sessions: pd.DataFrame) -> pd.DataFrame:
    failed_at_port = (sessions["outcome"] == "failed") & (sessions["cause"] == "faulted_port")
    return sessions[failed_at_port | (sessions["outcome"] == "interrupted")]


def test_sessions_lost(tables):
    """sessions_lost: sessions that failed on faulted ports or were interrupted by an outage."""
    lost = _lost(tables[0]["sessions"])
    assert len(lost) > 0
    assert tables[1]["sessions_lost"] == len(lost)


def test_energy_lost_kwh(tables):
    """energy_lost_kwh: requested minus delivered energy of the lost sessions."""
    lost = _lost(tables[0]["sessions"])
    expected = float((lost["energy_requested_kwh"] - lost["energy_delivered_kwh"]).sum())
    assert tables[1]["energy_lost_kwh"] == pytest.approx(expected, rel=REL)


def test_revenue_lost(tables):
    """revenue_lost: lost energy at the network price per kWh plus a session fee per session failed at a port."""
    t, kpis, scenario, _ = tables
    lost = _lost(t["sessions"])
    tariff = scenario["tariff"]
    failed = int((lost["outcome"] == "failed").sum())
    expected = kpis["energy_lost_kwh"] * tariff["price_per_kwh"] + failed * tariff["session_fee"]
    assert kpis["revenue_lost"] == pytest.approx(expected, rel=REL)


# ------------------------------------------------------------------ crews and cost


def test_first_time_fix_rate(tables):
    """first_time_fix_rate: share of faults a technician cleared that took exactly one visit."""
    t, kpis, _, _ = tables
    o, v = t["outages"], t["visits"]
    by_tech = o.loc[o["repaired_by"] == "technician", "fault_id"].unique()
    visits = np.array([(v["fault_id"] == f).sum() for f in by_tech])
    assert (visits > 1).any()  # parts were ordered: some faults took a second visit
    assert kpis["first_time_fix_rate"] == pytest.approx((visits == 1).mean(), rel=REL)


def test_crew_utilization_and_travel_share(tables):
    """crew_utilization: busy over shift time of all technicians; crew_travel_share: travel over busy time."""
    t, kpis, _, _ = tables
    c = t["crews"]
    assert kpis["crew_utilization"] == pytest.approx(c["busy_s"].sum() / c["shift_s"].sum(), rel=REL)
    assert kpis["crew_travel_share"] == pytest.approx(c["travel_s"].sum() / c["busy_s"].sum(), rel=REL)
    v = t["visits"]
    assert c["busy_s"].sum() == pytest.approx((v["travel_s"] + v["work_s"]).sum(), rel=REL)


def test_labour_parts_and_maintenance_cost(tables):
    """labour_h: technician busy hours; parts_cost: Σ part cost of visits; maintenance_cost: labour × rate + parts."""
    t, kpis, scenario, _ = tables
    labour_h = float(t["crews"]["busy_s"].sum()) / 3600.0
    parts = float(t["visits"]["part_cost"].sum())
    assert parts > 0
    assert kpis["labour_h"] == pytest.approx(labour_h, rel=REL)
    assert kpis["parts_cost"] == pytest.approx(parts, rel=REL)
    rate = scenario["serviceability"]["labour_cost_per_h"]
    assert kpis["maintenance_cost"] == pytest.approx(labour_h * rate + parts, rel=REL)


def test_every_kpi_is_defined_in_the_docs(tables):
    """Each key of the serviceability section and of a fault mode has a row in docs/kpis.md."""
    docs = (ROOT / "docs" / "kpis.md").read_text()
    section = docs[docs.index("## Serviceability") :]
    section = section[: section.index("\n## ", 3)]
    kpis = tables[1]
    names = [k for k in kpis if k != "fault_modes"]
    names += [f"fault_modes.<m>.{k}" for k in next(iter(kpis["fault_modes"].values()))]
    missing = [n for n in names if f"`{n}`" not in section]
    assert missing == []


def test_observed_mtbf_is_mean_up_time_not_up_plus_down():
    """Exponential up (10 d) and repair (1 d) times: observed MTBF estimates 10 d, not the 11 d of a full cycle.

    Total up time over N failures estimates the mean up time with standard error MTBF/√N; 4 of them allowed.
    """
    mtbf_d, mttr_d, chargers, days = 10.0, 1.0, 10, 3650
    mode = {
        "error_code": "InternalError",
        "ttf": {"dist": "exponential", "mtbf_days": mtbf_d},
        "detected": True,
        "scope": "charger",
        "diagnosis_min": 0,
        "repair_min": {"dist": "exponential", "mean": mttr_d * 24 * 60},
    }
    always = {"start_h": 0, "end_h": 24, "days": [0, 1, 2, 3, 4, 5, 6]}
    data = scenario_data(
        horizon_days=days,
        network={"sites": [{"id": "a", "lat": 52.0, "lon": 4.0, "capacity_kw": 1000,
                            "chargers": [{"model": "post", "count": chargers, "power_kw": 11, "current": "ac"}]}]},
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 0}, "dwell_min": 60}],
        serviceability={"fault_modes": {"m": mode}, "hardware": {"post": ["m"]}, "remote_reset_min": 0.0,
                        "crews": [{"id": "c", "technicians": chargers, "depot": {"lat": 52.0, "lon": 4.0},
                                   "shift": always}]},
    )  # fmt: skip
    run = simulate(validate_data(data, "test", ROOT))
    outages = outages_frame(run)
    frames = (attempts_frame(run), visits_frame(run), crews_frame(run))
    k = service_kpis(run, sessions_frame(run), outages, uptime_frame(run, outages), *frames)["fault_modes"]["m"]
    failures = k["failures"]
    se_h = mtbf_d * 24 / np.sqrt(failures)
    assert abs(k["observed_mtbf_h"] - mtbf_d * 24) < 4 * se_h, (k["observed_mtbf_h"], se_h)
    assert abs(k["observed_mtbf_h"] - (mtbf_d + mttr_d) * 24) > 4 * se_h
