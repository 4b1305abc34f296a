"""Results are frozen snapshots: static facts come from the network plan, never from live hardware."""

import dataclasses
import json

import pandas as pd
import pytest

from sim.engine import RunTables, simulate
from sim.hardware import Charger, Evse, SiteState
from sim.network_plan import NetworkPlan, plan_network
from sim.results import write_results
from sim.service_metrics import outages_frame
from sim.sessions import Session
from tests.conftest import make_scenario

RATED_KW = 150.0
DERATE_FRAC = 0.5
ALWAYS = {"start_h": 0, "end_h": 24, "days": [0, 1, 2, 3, 4, 5, 6]}


def _derated_for_good(days: float):
    """One 150 kW DC port whose cooling fails on day one and whose part never arrives within the run."""
    mode = {
        "error_code": "HighTemperature",
        "ttf": {"dist": "weibull", "shape": 50.0, "scale_days": 1.0},  # fails within hours of day 1
        "detected": True,
        "scope": "charger",
        "derate_frac": DERATE_FRAC,
        "part_in_van_prob": 0.0,
        "part_lead_days": 10_000,
    }
    return make_scenario(
        horizon_days=days,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 1000,
                    "chargers": [{"model": "dc", "count": 1, "power_kw": RATED_KW, "current": "dc"}],
                }
            ]
        },
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 3.0}, "dwell_min": 40}],
        manager={"kind": "uncontrolled"},
        serviceability={
            "fault_modes": {"hot": mode},
            "hardware": {"dc": ["hot"]},
            "crews": [{"id": "c", "depot": {"lat": 52.0, "lon": 4.0}, "shift": ALWAYS}],
        },
    )


def test_port_derated_at_the_end_is_reported_at_its_rating(tmp_path):
    """A port still derated when the run ends shows its rated power, and utilization divides by the rating."""
    scenario = _derated_for_good(days=4)
    run = simulate(scenario)
    outages = outages_frame(run)
    at_end = outages[(outages["end_t_s"] == scenario.horizon_s) & (outages["repaired_by"] == "none")]
    assert len(at_end) == 1
    assert at_end["available_kw"].iloc[0] == pytest.approx(RATED_KW * DERATE_FRAC)

    kpis = write_results(run, tmp_path / "out")
    ports = pd.read_parquet(tmp_path / "out" / "ports.parquet")
    assert ports["max_power_kw"].tolist() == [RATED_KW]
    energy_kwh = float(ports["energy_kwh"].iloc[0])
    assert energy_kwh > 0
    rated_kwh = RATED_KW * scenario.horizon_s / 3600.0
    assert ports["energy_utilization"].iloc[0] == pytest.approx(energy_kwh / rated_kwh, rel=1e-12)
    written = json.loads((tmp_path / "out" / "kpis.json").read_text())
    assert written["network"]["energy_utilization"] == pytest.approx(energy_kwh / rated_kwh, rel=1e-12)
    assert kpis["sites"]["a"]["energy_utilization"] == pytest.approx(energy_kwh / rated_kwh, rel=1e-12)


def _objects(value):
    """Every object reachable from `value` through containers, dataclass fields and the attributes of our objects."""
    seen, stack = set(), [value]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        yield v
        if isinstance(v, dict):
            stack += list(v.keys()) + list(v.values())
        elif isinstance(v, list | tuple | set):
            stack += list(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack += [getattr(v, f.name) for f in dataclasses.fields(v)]
        elif type(v).__module__.startswith("sim.") and hasattr(v, "__dict__"):
            stack += list(vars(v).values())


def test_run_tables_hold_no_live_simulation_objects():
    """Nothing a run returns reaches a connector, charger, site state or session of the simulation."""
    run = simulate(_derated_for_good(days=2))
    live = (Evse, Charger, SiteState, Session)
    found = [type(v).__name__ for v in _objects(run) if isinstance(v, live)]
    assert found == []
    assert isinstance(run, RunTables)
    assert isinstance(run.network, NetworkPlan)
    for item in (run.network, *run.sites, *run.evses, *run.network.chargers):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(item, dataclasses.fields(item)[0].name, None)


def test_plan_follows_the_scenario_order_and_ids():
    """Ports are numbered site by site, charger group by group, as the tables' codes expect."""
    scenario = make_scenario()
    plan = plan_network(scenario.network.sites)
    assert [p.evse_id for p in plan.ports] == ["a.01.1", "a.01.2", "a.02.1", "a.02.2", "a.03.1", "a.03.2"]
    assert [p.index for p in plan.ports] == list(range(6))
    assert [(p.rated_kw, p.dc, p.charger.shared) for p in plan.ports[-2:]] == [(150.0, True, True)] * 2
    assert {p.site.site_id for p in plan.ports} == {"a"}
