import math

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.config import ScenarioError, load_scenario
from sim.engine import simulate
from sim.results import write_results
from sim.service_metrics import measure, outages_frame, uptime_frame
from tests.conftest import make_scenario, scenario_data

ALWAYS = {"start_h": 0, "end_h": 24, "days": [0, 1, 2, 3, 4, 5, 6]}
NO_RESET = 0.0  # a remote reset takes no time, so the outage is the repair alone


def _network(chargers: int) -> dict:
    return {
        "sites": [
            {
                "id": "a",
                "lat": 52.0,
                "lon": 4.0,
                "capacity_kw": 1000,
                "chargers": [{"model": "post", "count": chargers, "power_kw": 11, "current": "ac"}],
            }
        ]
    }


def _mode(mtbf_days: float, repair_h: float, detected: bool = True, **kw) -> dict:
    return {
        "error_code": "InternalError",
        "ttf": {"dist": "exponential", "mtbf_days": mtbf_days},
        "detected": detected,
        "scope": "charger",
        "diagnosis_min": 0,
        "repair_min": {"dist": "exponential", "mean": repair_h * 60},
        **kw,
    }


def _service(mode: dict, technicians: int, **kw) -> dict:
    return {
        "fault_modes": {"m": mode},
        "hardware": {"post": ["m"]},
        "crews": [{"id": "c", "technicians": technicians, "depot": {"lat": 52.0, "lon": 4.0}, "shift": ALWAYS}],
        "remote_reset_min": NO_RESET,
        **kw,
    }


def _quiet(**changes):
    """A scenario with no arrivals, so only the hardware's life shows."""
    return make_scenario(
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 0}, "dwell_min": 60}],
        **changes,
    )


def _availability(run) -> float:
    o = outages_frame(run)
    down = o[o["down"] & (o["cause"] == "m")]
    return 1 - down["duration_s"].sum() / (len(run.evses) * run.scenario.horizon_s)


def test_availability_matches_mtbf_over_mtbf_plus_mttr():
    """One port per charger, exponential failures and repairs, a technician each: A = MTBF/(MTBF+MTTR).

    For an alternating renewal process with exponential up and down times the estimate's
    standard error is √2·A(1−A)/√N over N cycles; the test allows 4 of them.
    """
    mtbf_d, mttr_d, chargers, days = 10.0, 1.0, 10, 3650
    run = simulate(
        _quiet(
            horizon_days=days,
            network=_network(chargers),
            serviceability=_service(_mode(mtbf_d, mttr_d * 24), technicians=chargers),
        )
    )
    expected = mtbf_d / (mtbf_d + mttr_d)
    cycles = chargers * days / (mtbf_d + mttr_d)
    se = math.sqrt(2) * expected * (1 - expected) / math.sqrt(cycles)
    assert abs(_availability(run) - expected) < 4 * se, (_availability(run), expected, se)


def test_one_crew_makes_repairs_wait():
    """With one technician for twenty chargers, repairs queue and availability falls."""
    mode = _mode(5.0, 12.0)
    many = simulate(_quiet(horizon_days=365, network=_network(20), serviceability=_service(mode, technicians=20)))
    one = simulate(_quiet(horizon_days=365, network=_network(20), serviceability=_service(mode, technicians=1)))
    wait_one = one.service.visits["arrive_t_s"] - one.service.visits["created_t_s"]
    wait_many = many.service.visits["arrive_t_s"] - many.service.visits["created_t_s"]
    assert wait_many.max() == pytest.approx(0.0, abs=1e-6)
    assert wait_one.mean() > 3600.0
    assert _availability(one) < _availability(many) - 0.05


def test_measure_counts_overlaps_once_and_drops_excluded_time():
    """Overlapping outages count once; time inside an excluded outage is not held against uptime."""
    intervals = [(0.0, 10.0, False), (5.0, 20.0, False), (15.0, 30.0, True), (40.0, 50.0, False)]
    total, excluded, counted = measure(intervals, 0.0, 45.0)
    assert (total, excluded, counted) == (35.0, 15.0, 20.0)


def test_grid_outages_do_not_count_against_uptime():
    """Grid outages take ports down but NEVI uptime stays 100 %."""
    run = simulate(
        _quiet(
            horizon_days=60,
            network=_network(3),
            serviceability={
                "hardware": {},
                "crews": [{"id": "c", "depot": {"lat": 52, "lon": 4}}],
                "grid_outages": {"per_site_per_year": 50},
            },
        )
    )
    o = outages_frame(run)
    assert len(o) > 0
    assert o["excluded"].all()
    assert (uptime_frame(run, o)["uptime_pct"] == 100.0).all()


@pytest.mark.parametrize(("cap_h", "counted"), [(None, False), (0.0, True)])
def test_scheduled_maintenance_is_excluded_within_the_allowance(cap_h, counted):
    """Preventive visits are excluded outages, unless the yearly allowance is used up."""
    run = simulate(
        _quiet(
            horizon_days=120,
            network=_network(3),
            serviceability={
                "hardware": {},
                "crews": [{"id": "c", "depot": {"lat": 52, "lon": 4}}],
                "operator": {"kind": "preventive", "interval_days": 30, "visit_min": 90},
                "maintenance_excluded_h_per_port_year": cap_h,
            },
        )
    )
    o = outages_frame(run)
    maintenance = o[o["cause"] == "maintenance"]
    assert len(maintenance) >= 3 * 3
    assert np.allclose(maintenance["duration_s"], 90 * 60)
    uptime = uptime_frame(run, o)
    trailing = uptime[uptime["period"] == "trailing_12m"]["uptime_pct"]
    if counted:
        assert (trailing < 100.0).all()
    else:
        assert (trailing == 100.0).all()


def _busy_site(mode: dict, days: float = 60) -> dict:
    return {
        "horizon_days": days,
        "network": _network(4),
        "demand": [
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 2},
                "dwell_min": 60,
                "patience_min": 0,
                "max_queue": 0,
            }
        ],
        "serviceability": _service(mode, technicians=1),
    }


def test_silent_fault_fails_one_driver_then_is_known():
    """A silent fault makes the next driver fail, and that failure reports it: no second failure on it."""
    run = simulate(make_scenario(**_busy_site(_mode(5.0, 8.0, detected=False))))
    attempts = pd.DataFrame(run.service.attempts)
    outages = outages_frame(run)
    assert len(attempts) > 5
    assert attempts["fault_id"].is_unique
    detected = outages.drop_duplicates("fault_id").set_index("fault_id")["detected_t_s"]
    assert np.allclose(attempts["t_s"], detected.loc[attempts["fault_id"]].to_numpy())
    sessions = pd.DataFrame(run.sessions)
    assert sessions["failed_attempts"].sum() == len(attempts)


def test_detected_fault_causes_no_failed_attempt():
    """A fault the charger reports takes the port out of service before any driver tries it."""
    run = simulate(make_scenario(**_busy_site(_mode(5.0, 8.0, detected=True))))
    assert len(run.service.attempts["t_s"]) == 0
    assert len(outages_frame(run)) > 5


def test_same_seed_same_outages_and_faults_keep_arrivals(tmp_path):
    """The same seed gives identical outage files; switching faults on leaves arrivals as they were."""
    data = _busy_site(_mode(5.0, 8.0, detected=False), days=30)
    write_results(simulate(make_scenario(**data)), tmp_path / "a")
    write_results(simulate(make_scenario(**data)), tmp_path / "b")
    for name in ("outages.parquet", "uptime.parquet", "visits.parquet", "sessions.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    without = {k: v for k, v in data.items() if k != "serviceability"}
    plain = pd.DataFrame(simulate(make_scenario(**without)).sessions).sort_values("session_id")
    faulty = pd.DataFrame(simulate(make_scenario(**data)).sessions).sort_values("session_id")
    assert np.array_equal(plain["arrival_t_s"], faulty["arrival_t_s"])
    assert np.array_equal(plain["model"], faulty["model"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"fault_modes": {"m": {**_mode(5, 1), "ttf": {"dist": "exponential", "mtbf_days": -3}}}},
            "serviceability.fault_modes.m.ttf.mtbf_days: Input should be greater than 0",
        ),
        ({"hardware": {"post": ["flux_capacitor"]}}, "unknown fault mode 'flux_capacitor'"),
        ({"crews": [{"id": "c", "technicians": 2}]}, "serviceability.crews[0].depot: required key is missing"),
        ({"hardware": {"pots": ["software_hang"]}}, "charger model(s) pots that no site has"),
        ({"uptime_min_power": {"dc_kw": -50}}, "serviceability.uptime_min_power.dc_kw: Input should be greater"),
        ({"uptime_min_power": {"dc": 150}}, "serviceability.uptime_min_power.dc"),
    ],
)
def test_bad_serviceability_input(tmp_path, capsys, change, expected):
    """Negative MTBF, unknown fault mode, crew without depot, unknown charger model: exit 2 with the path."""
    svc = {**_service(_mode(5, 1), technicians=1), **change}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(network=_network(2), serviceability=svc), sort_keys=False))
    with pytest.raises(ScenarioError):
        load_scenario(path)
    assert main(["validate", str(path)]) == 2
    assert expected in capsys.readouterr().err
