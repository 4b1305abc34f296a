"""PV and storage behind the meter act on charging in the run (issue: PV and storage in the loop)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.behind_meter import RESUME_SOC_FRAC
from sim.engine import Simulation, simulate
from sim.managers import build_manager
from sim.managers.base import SiteLimitChanged, SiteView
from sim.metrics import load_steps
from sim.results import write_results
from tests.conftest import make_scenario

LIMIT_KW = 60.0
START_H = 0  # the scenarios start at local midnight


def _depot(
    manager: str = "least_laxity_first",
    days: float = 4,
    seed: int = 5,
    storage: dict | None = None,
    pv: dict | None = None,
    **extra,
) -> dict:
    """Sixteen 22 kW AC posts behind a 60 kW transformer; vans back in the evening, gone in the morning."""
    grid_site: dict = {"transformer_kw": LIMIT_KW}
    if storage is not None:
        grid_site["storage"] = storage
    if pv is not None:
        grid_site["pv"] = pv
    return {
        "seed": seed, "horizon_days": days, "start": "2026-06-01T00:00:00+02:00",
        "manager": {"kind": manager},
        "network": {"sites": [{"id": "depot", "lat": 0, "lon": 0, "capacity_kw": 400, "chargers": [
            {"model": "ac22", "count": 16, "power_kw": 22, "current": "ac"}]}]},
        "fleet": [{"preset": "ford_e_transit", "share": 2, "iso15118_share": 1.0},
                  {"preset": "renault_zoe_ze50", "share": 1, "iso15118_share": 1.0}],
        "demand": [{"kind": "synthetic", "site": "depot",
                    "rate": {"kind": "daily", "per_hour": [0] * 17 + [4, 4, 4, 3] + [0] * 3},
                    "arrival_soc_frac": {"dist": "uniform", "low": 0.05, "high": 0.2}, "target_soc_frac": 0.95,
                    "dwell_min": {"dist": "uniform", "low": 480, "high": 600}, "patience_min": 60, "max_queue": 5}],
        "grid": {"sites": {"depot": grid_site}, **extra},
    }  # fmt: skip


BATTERY = {"capacity_kwh": 200, "power_kw": 80, "round_trip_efficiency": 0.9, "strategy": "peak_shaving",
           "threshold_kw": LIMIT_KW, "initial_soc_frac": 1.0}  # fmt: skip


def _battery_steps(run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    st_ = run.storage
    last = np.r_[st_["t_s"][1:] != st_["t_s"][:-1], True]  # several rows at one instant: the last holds
    return st_["t_s"][last], st_["power_kw"][last], st_["energy_kwh"][last]


def _pv_kw_at(pv: dict, t_s: np.ndarray) -> np.ndarray:
    """PV output at `t_s`: the peak times the profile share of the local hour (the run starts at local midnight)."""
    from sim.config.grid import SolarPV

    shape = np.asarray(SolarPV(**pv).profile_by_hour)
    return pv["peak_kw"] * shape[((START_H + t_s // 3600) % 24).astype(int)]


def _step_at(t_steps: np.ndarray, values: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    return values[np.clip(np.searchsorted(t_steps, t_s, side="right") - 1, 0, len(values) - 1)]


def _import_at_changes(run, pv: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, EV power, grid import) right after every change of the EV load, the battery or PV."""
    steps = load_steps(run)
    ev_t, ev_kw = steps["t_s"].to_numpy(), steps["power_kw"].to_numpy()
    b_t, b_kw, _ = _battery_steps(run) if run.storage is not None and len(run.storage["t_s"]) else ([0.0], [0.0], 0)
    t = np.unique(np.concatenate([ev_t, b_t, np.arange(0, run.scenario.horizon_s, 3600.0)]))
    ev = _step_at(ev_t, ev_kw, t)
    pv_kw = _pv_kw_at(pv, t) if pv is not None else 0.0
    return t, ev, ev - pv_kw - _step_at(np.asarray(b_t), np.asarray(b_kw), t)


def test_a_battery_lets_a_small_connection_serve_more_energy():
    """Same vans, same 60 kW transformer: with a battery the depot delivers more, by no more than the battery gave."""
    without = simulate(make_scenario(**_depot()))
    with_ = simulate(make_scenario(**_depot(storage=BATTERY)))
    assert np.array_equal(without.sessions["arrival_t_s"], with_.sessions["arrival_t_s"])
    e0 = without.sessions["energy_delivered_kwh"].sum()
    e1 = with_.sessions["energy_delivered_kwh"].sum()
    t, p, e = _battery_steps(with_)
    discharged_kwh = float(np.sum(np.maximum(p[:-1], 0) * np.diff(t)) / 3600)
    charged_kwh = float(np.sum(np.maximum(-p[:-1], 0) * np.diff(t)) / 3600)
    # The connection alone was the bottleneck: every evening's need is far above 60 kW for the night.
    assert without.sessions["energy_requested_kwh"].sum() > e0 + 500
    # The battery starts full and refills from the grid by day: at least its first full discharge goes to the vans.
    assert discharged_kwh >= BATTERY["capacity_kwh"] * math.sqrt(0.9) * (1 - 1e-9)
    assert charged_kwh > 0
    # Measurably more: at least half of one full discharge reaches the vans (√η of the stored energy leaves it).
    assert e1 - e0 >= 0.5 * BATTERY["capacity_kwh"] * math.sqrt(0.9)
    # More than the battery gave would be energy from nowhere: the grid supplies at most the limit either way.
    assert e1 - e0 <= discharged_kwh + 1e-6


@pytest.mark.parametrize("manager", ["least_laxity_first", "equal_share", "first_come_first_served"])
def test_import_never_exceeds_the_limit_while_evs_draw_more(manager):
    """At every change of EV load, battery or PV, grid import ≤ the limit, while the EVs draw well above it."""
    pv = {"peak_kw": 40}
    run = simulate(make_scenario(**_depot(manager, storage=BATTERY, pv=pv)))
    t, ev, grid = _import_at_changes(run, pv)
    assert grid.max() <= LIMIT_KW + 1e-6
    assert ev.max() >= LIMIT_KW + 0.9 * BATTERY["power_kw"]  # the battery's full power went to the chargers
    assert (ev > LIMIT_KW + 1).sum() > 10


def test_energy_balances_from_the_recorded_tables(tmp_path: Path):
    """Grid import + PV used + battery discharge − battery charge = EV energy, from the results folder."""
    pv = {"peak_kw": 80}
    scenario = make_scenario(**_depot(storage={**BATTERY, "strategy": "self_consumption", "threshold_kw": None,
                                               "initial_soc_frac": 0.3}, pv=pv))  # fmt: skip
    write_results(simulate(scenario), tmp_path / "out")
    out = tmp_path / "out"
    sessions = pd.read_parquet(out / "sessions.parquet")
    load = pd.read_parquet(out / "load.parquet")
    storage = pd.read_parquet(out / "storage.parquet")
    horizon_s = scenario.horizon_s
    width_h = (np.minimum(load["t_s"] + 900.0, horizon_s) - load["t_s"]) / 3600
    grid = load["grid_kw"].to_numpy()
    import_kwh = float((np.maximum(grid, 0) * width_h).sum())
    export_kwh = float((np.maximum(-grid, 0) * width_h).sum())
    hours = np.arange(0, horizon_s, 3600.0)
    pv_kwh = float(_pv_kw_at(pv, hours).sum())  # one hour per step
    t, p = storage["t_s"].to_numpy(), storage["power_kw"].to_numpy()
    dt_s = np.diff(np.r_[t, horizon_s])
    discharge_kwh = float((np.maximum(p, 0) * dt_s).sum() / 3600)
    charge_kwh = float((np.maximum(-p, 0) * dt_s).sum() / 3600)
    ev_kwh = float(sessions["energy_delivered_kwh"].sum())
    assert discharge_kwh > 10
    assert charge_kwh > 10
    assert export_kwh > 10
    pv_used_kwh = pv_kwh - export_kwh
    assert import_kwh + pv_used_kwh + discharge_kwh - charge_kwh == pytest.approx(ev_kwh, rel=1e-9, abs=1e-6)
    # The battery's recorded energy follows its power with √η losses each way.
    e = storage["energy_kwh"].to_numpy()
    eta = math.sqrt(BATTERY["round_trip_efficiency"])
    step = np.where(p[:-1] > 0, -p[:-1] / eta, -p[:-1] * eta) * np.diff(t) / 3600
    assert np.allclose(e[:-1] + step, e[1:], atol=1e-6)
    assert e[-1] - e[0] == pytest.approx(charge_kwh * eta - discharge_kwh / eta, abs=1e-6)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.floats(5, 300), power=st.floats(5, 120), soc0=st.floats(0, 1), eta=st.floats(0.7, 1.0),
    strategy=st.sampled_from(["peak_shaving", "self_consumption"]), threshold=st.floats(0, 80),
    pv_peak=st.sampled_from([None, 30.0, 150.0]), seed=st.integers(0, 1000),
    manager=st.sampled_from(["least_laxity_first", "equal_share", "uncontrolled"]),
)  # fmt: skip
def test_battery_energy_stays_within_bounds(capacity, power, soc0, eta, strategy, threshold, pv_peak, seed, manager):
    """Whatever the battery, PV and manager: energy in [0, capacity], consistent with power; import within the limit."""
    storage = {"capacity_kwh": capacity, "power_kw": power, "initial_soc_frac": soc0, "round_trip_efficiency": eta,
               "strategy": strategy, "threshold_kw": threshold if strategy == "peak_shaving" else None}  # fmt: skip
    pv = {"peak_kw": pv_peak} if pv_peak is not None else None
    run = simulate(make_scenario(**_depot(manager, days=2, seed=seed, storage=storage, pv=pv)))
    t, p, e = _battery_steps(run)
    assert e.min() >= -1e-9
    assert e.max() <= capacity * (1 + 1e-12)
    step = np.where(p[:-1] > 0, -p[:-1] / math.sqrt(eta), -p[:-1] * math.sqrt(eta)) * np.diff(t) / 3600
    assert np.allclose(e[:-1] + step, e[1:], atol=1e-6 * capacity)
    assert np.abs(p).max() <= power + 1e-9
    if manager != "uncontrolled":
        _, _, grid = _import_at_changes(run, pv)
        assert grid.max() <= LIMIT_KW + 1e-6


class _Recorder:
    """A least-laxity-first manager that also keeps every site view it is shown."""

    def __init__(self, scenario) -> None:
        self.inner = build_manager(scenario.manager)
        self.views: list[SiteView] = []
        self.limit_events: list[SiteLimitChanged] = []

    def handle(self, event, network):
        if isinstance(event, SiteLimitChanged):
            self.limit_events.append(event)
        if hasattr(event, "site_id"):
            self.views.append(network.site(event.site_id))
        return self.inner.handle(event, network)


def test_managers_see_pv_and_storage_in_the_site_view():
    """SiteView shows PV output, the battery and a limit of grid + PV + what the battery may discharge."""
    pv = {"peak_kw": 50}
    scenario = make_scenario(**_depot(storage={**BATTERY, "capacity_kwh": 60}, pv=pv))
    manager = _Recorder(scenario)
    run = Simulation(scenario, manager)
    run.advance(scenario.horizon_s)
    run.finish()
    views = manager.views
    assert views
    for v in views:
        now, before = _pv_kw_at(pv, np.array([v.t_s, max(v.t_s - 1.0, 0.0)]))
        assert v.pv_kw == now or (v.t_s % 3600 == 0 and v.pv_kw == before)  # at a step, events before it see the old
        assert v.storage is not None
        assert 0 <= v.storage.energy_kwh <= 60 + 1e-9
        assert v.storage.available_kw in (0.0, BATTERY["power_kw"])
        assert v.grid_limit_kw == LIMIT_KW
        assert v.limit_kw == pytest.approx(LIMIT_KW + v.pv_kw + v.storage.available_kw)
    # The battery ran empty (the limit dropped) and came back once recharged by RESUME_SOC_FRAC of its capacity.
    assert any(v.storage.available_kw == 0 for v in views)
    assert {e.limit_kw for e in manager.limit_events} > {LIMIT_KW}
    assert any(abs(v.storage.energy_kwh - RESUME_SOC_FRAC * 60) < 1e-6 for v in views)


def test_sites_without_pv_or_storage_see_none():
    """A site with nothing behind the meter: no storage in its view and a limit of the grid alone."""
    scenario = make_scenario(**_depot())
    manager = _Recorder(scenario)
    run = Simulation(scenario, manager)
    run.advance(86400.0)
    assert manager.views
    assert all(v.storage is None and v.pv_kw == 0 and v.limit_kw == LIMIT_KW for v in manager.views)
    assert not manager.limit_events
    assert len(run.finish().storage["t_s"]) == 0
