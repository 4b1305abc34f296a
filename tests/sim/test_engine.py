import math

import mesa
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose, SchedulePeriod
from sim.drivers import Driver
from sim.engine import Simulation, simulate
from sim.managers.base import SessionStarted, SetChargingProfile
from sim.metrics import BIN_S, build_tables
from sim.results import write_results
from tests.conftest import check_ev_curve, make_scenario


def test_energy_is_conserved():
    """Σ energy delivered to sessions = ∫ site power dt, per site, for a shared-cabinet site."""
    run = simulate(make_scenario(horizon_days=5))
    t = build_tables(run)
    delivered = t.sessions["energy_delivered_kwh"].sum()
    integrated = (t.load["power_kw"] * BIN_S / 3600).sum()
    assert delivered > 100
    assert math.isclose(delivered, integrated, rel_tol=1e-9)
    assert math.isclose(t.load["energy_kwh"].sum(), delivered, rel_tol=1e-9)


def test_same_seed_gives_identical_files(tmp_path):
    """Two runs with the same seed write byte-identical result tables."""
    s = make_scenario(horizon_days=3)
    write_results(simulate(s), tmp_path / "a")
    write_results(simulate(s), tmp_path / "b")
    for name in ("sessions.parquet", "events.parquet", "load.parquet", "load_steps.parquet", "kpis.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_other_seed_gives_other_arrivals():
    """A different seed draws different arrivals."""
    a = build_tables(simulate(make_scenario(seed=1))).sessions["arrival_t_s"]
    b = build_tables(simulate(make_scenario(seed=2))).sessions["arrival_t_s"]
    assert len(a) != len(b) or not np.array_equal(a, b)


def test_manager_does_not_change_arrivals():
    """Common random numbers: swapping the manager keeps every arrival time and vehicle."""
    a = build_tables(simulate(make_scenario(manager={"kind": "uncontrolled"}))).sessions
    b = build_tables(simulate(make_scenario(manager={"kind": "equal_share"}))).sessions
    pd.testing.assert_series_equal(a["arrival_t_s"], b["arrival_t_s"])
    pd.testing.assert_series_equal(a["ev_model"], b["ev_model"])


def test_queue_balk_and_renege():
    """A one-port site with long dwells turns drivers away and makes waiting drivers give up."""
    s = make_scenario(
        horizon_days=3,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 0,
                    "lon": 0,
                    "capacity_kw": 50,
                    "chargers": [{"model": "ac", "power_kw": 11, "current": "ac"}],
                }
            ]
        },
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 3},
                "dwell_min": 120,
                "patience_min": 20,
                "max_queue": 1,
            }
        ],
    )
    sessions = build_tables(simulate(s)).sessions
    counts = sessions["outcome"].value_counts()
    assert counts["balked"] > 0
    assert counts["reneged"] > 0
    assert counts["served"] > 0
    reneged = sessions[sessions["outcome"] == "reneged"]
    assert np.allclose(reneged["wait_s"], 20 * 60)
    served = sessions[sessions["outcome"] == "served"]
    # One port: sessions never overlap.
    order = served.sort_values("plug_t_s")
    assert (order["plug_t_s"].to_numpy()[1:] >= order["departure_t_s"].to_numpy()[:-1] - 1e-9).all()


def test_drivers_are_mesa_agents_while_at_a_site():
    """The Mesa model's agents are the drivers plugged in or waiting, every hour; those who left are not."""
    s = make_scenario(
        horizon_days=2,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 0,
                    "lon": 0,
                    "capacity_kw": 50,
                    "chargers": [{"model": "ac", "count": 2, "power_kw": 11, "current": "ac"}],
                }
            ]
        },
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 3},
                "dwell_min": 60,
                "patience_min": 30,
                "max_queue": 2,
            }
        ],
    )
    run = Simulation(s)
    model = run.drivers
    collector = mesa.DataCollector(model_reporters={"drivers": lambda m: len(m.agents)})
    at_site = []
    for hour in range(1, 48):
        run.advance(hour * 3600.0)
        site = run.view.site(run.view.site_ids()[0])
        at_site.append(sum(e.session_id is not None for e in site.evses) + site.waiting)
        collector.collect(model)
        assert all(isinstance(a, Driver) for a in model.agents)
        assert len(model.agents_by_type[Driver]) == len(model.agents)
    assert collector.get_model_vars_dataframe()["drivers"].tolist() == at_site
    assert max(at_site) == 4  # both ports taken and the queue full at some hour
    sessions = run.finish().sessions
    ongoing = int((sessions["outcome"] == 3).sum())  # still there at the horizon: never removed
    assert len(model.agents) == ongoing


def test_leave_when_charged_departs_at_target():
    """Drivers who leave once charged depart at the end of charging with their target SoC."""
    s = make_scenario(
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 1},
                "dwell_min": 600,
                "leave_when_charged": True,
                "target_soc_frac": 0.8,
            }
        ]
    )
    sessions = build_tables(simulate(s)).sessions
    served = sessions[sessions["outcome"] == "served"]
    assert len(served) > 10
    assert np.allclose(served["departure_t_s"], served["charge_end_t_s"])
    assert np.allclose(served["soc_out_frac"], np.maximum(0.8, served["soc_in_frac"]))


site_strategy = st.fixed_dictionaries(
    {
        "capacity_kw": st.floats(5.0, 400.0),
        "ac": st.integers(0, 4),
        "dc": st.integers(0, 2),
        "connectors": st.integers(1, 3),
        "shared": st.booleans(),
        "dc_kw": st.sampled_from([50.0, 150.0, 350.0]),
        "per_hour": st.floats(0.2, 6.0),
        "dwell_min": st.floats(10.0, 300.0),
        "leave": st.booleans(),
        "seed": st.integers(0, 2**32 - 1),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(site_strategy)
def test_equal_share_invariants(p):
    """equal_share never exceeds the site's capacity, a connector's limit, the EV's own charge curve, or the need."""
    chargers = []
    if p["ac"]:
        chargers.append(
            {"model": "ac", "count": p["ac"], "connectors": p["connectors"], "power_kw": 22.0, "current": "ac"}
        )
    if p["dc"] or not p["ac"]:
        chargers.append(
            {
                "model": "dc",
                "count": max(p["dc"], 1),
                "connectors": p["connectors"],
                "power_kw": p["dc_kw"],
                "current": "dc",
                "shared": p["shared"],
            }
        )
    s = make_scenario(
        seed=p["seed"],
        horizon_days=1,
        network={"sites": [{"id": "a", "lat": 0, "lon": 0, "capacity_kw": p["capacity_kw"], "chargers": chargers}]},
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": p["per_hour"]},
                "dwell_min": {"dist": "exponential", "mean": p["dwell_min"]},
                "leave_when_charged": p["leave"],
            }
        ],
    )
    run = simulate(s)
    iv = run.intervals
    caps = np.array([run.profiles[k].cap_kw for k in iv["profile"]])
    # Site: the sum of the caps of the intervals open at any instant stays within capacity.
    times = np.concatenate([iv["t0_s"], iv["t1_s"]])
    order = np.lexsort((np.concatenate([np.ones(len(caps)), -np.ones(len(caps))]), times))
    open_kw = np.cumsum(np.concatenate([caps, -caps])[order])
    assert (open_kw <= p["capacity_kw"] * (1 + 1e-9)).all()
    # Connector and EV: no interval's cap above the connector's maximum, AC caps within the car's charger.
    for k, evse_index in enumerate(iv["evse"]):
        evse = run.evses[evse_index]
        assert caps[k] <= evse.rated_kw * (1 + 1e-12)
    sessions = build_tables(run).sessions
    assert (sessions["energy_delivered_kwh"] <= sessions["energy_requested_kwh"] + 1e-9).all()
    assert ((sessions["soc_out_frac"] >= 0) & (sessions["soc_out_frac"] <= 1)).all()
    # The EV: no interval above the EV's own charge curve, SoC continuous, energy adds up.
    assert check_ev_curve(run) == len(caps)
    # Energy delivered never beats the cap: each interval's energy ≤ cap × duration.
    for k in range(len(caps)):
        prof = run.profiles[iv["profile"][k]]
        tau0 = iv["tau0_s"][k]
        e = (prof.soc_at(tau0 + iv["t1_s"][k] - iv["t0_s"][k]) - prof.soc_at(tau0)) * prof.capacity_kwh
        assert e <= caps[k] * (iv["t1_s"][k] - iv["t0_s"][k]) / 3600 + 1e-9


class _ClosesPortOnDayTwo:
    """Takes connector a.01.1 out of service for the second day (OCPP ChangeAvailability)."""

    def handle(self, event, network):
        from sim.managers.base import ChangeAvailability, Tick

        if isinstance(event, Tick) and event.t_s == 86400.0:
            return [ChangeAvailability("a.01.1", operative=False)]
        if isinstance(event, Tick) and event.t_s == 2 * 86400.0:
            return [ChangeAvailability("a.01.1", operative=True)]
        return ()


def test_change_availability_takes_a_port_out_of_service():
    """A manager of one's own closes a port for a day: nobody plugs in there meanwhile, and it serves again after."""
    s = make_scenario(
        horizon_days=3,
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 6},
                "dwell_min": 30,
                "max_queue": 5,
                "patience_min": 60,
            }
        ],
    )
    sessions = build_tables(simulate(s, manager=_ClosesPortOnDayTwo())).sessions
    on_port = sessions[sessions["evse_id"] == "a.01.1"]
    during = on_port[(on_port["plug_t_s"] >= 86400) & (on_port["plug_t_s"] < 2 * 86400)]
    assert len(during) == 0
    assert (on_port["plug_t_s"] >= 2 * 86400).any()
    assert (on_port["plug_t_s"] < 86400).any()
    ended = on_port[on_port["outcome"] == "interrupted"]
    assert (ended["departure_t_s"] == 86400.0).all()


def test_stepping_from_outside_gives_the_same_run():
    """Advancing a Simulation in uneven steps (as a paced run does) records exactly what simulate does."""
    from sim.engine import Simulation

    s = make_scenario(horizon_days=2)
    whole = simulate(s)
    run = Simulation(s)
    t = 0.0
    for k in range(10_000):
        t += 37.0 + (k % 7) * 101.0
        run.advance(t)
        if run.t_s >= s.horizon_s:
            break
    stepped = run.finish()
    for name in whole.sessions:
        assert np.array_equal(whole.sessions[name], stepped.sessions[name], equal_nan=True), name


def test_demand_response_added_while_running_caps_the_site():
    """A cap signalled mid-run (as from an OpenADR server) holds the site's load from its start to its end."""
    from sim.engine import Simulation

    s = make_scenario(horizon_days=1, manager={"kind": "equal_share"},
                      demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 8.0},
                               "dwell_min": 240}])  # fmt: skip
    run = Simulation(s)
    run.advance(10 * 3600.0)
    run.demand_response("a", 11 * 3600.0, 13 * 3600.0, 20.0)
    run.advance(s.horizon_s)
    steps = build_tables(run.finish()).load_steps
    inside = steps[(steps["t_s"] >= 11 * 3600.0) & (steps["t_s"] < 13 * 3600.0)]
    before = steps[(steps["t_s"] >= 10.5 * 3600.0) & (steps["t_s"] < 11 * 3600.0)]
    assert len(inside) > 0
    assert inside["power_kw"].max() <= 20.0 + 1e-6
    assert before["power_kw"].max() > 20.0


class _ChangeAtHorizon:
    """Installs on every connector a TxDefaultProfile whose limit changes exactly at the horizon."""

    def __init__(self, horizon_s: float) -> None:
        periods = (SchedulePeriod(0.0, 1000.0), SchedulePeriod(horizon_s, 3.0))
        self.profile = ChargingProfile(1, ChargingProfilePurpose.TX_DEFAULT, 0, periods, start_t_s=0.0)

    def handle(self, event, network):
        if isinstance(event, SessionStarted):
            return [SetChargingProfile(self.profile, evse_id=event.evse_id)]
        return ()


def test_profile_change_exactly_at_the_horizon_does_not_extend_the_series(tmp_path):
    """A limit change at the horizon records no interval there; the 15-minute load has one row per bin."""
    s = make_scenario(horizon_days=1)
    run = simulate(s, manager=_ChangeAtHorizon(s.horizon_s))
    assert len(run.intervals["t0_s"]) > 0
    assert (run.intervals["t0_s"] < s.horizon_s).all()
    kpis = write_results(run, tmp_path / "o")
    load = pd.read_parquet(tmp_path / "o" / "load.parquet")
    assert len(load) == len(run.sites) * math.ceil(s.horizon_s / BIN_S)
    sessions = pd.read_parquet(tmp_path / "o" / "sessions.parquet")
    assert math.isclose(load["energy_kwh"].sum(), sessions["energy_delivered_kwh"].sum(), rel_tol=1e-9)
    assert kpis["network"]["energy_delivered_kwh"] > 0


def _tables(run) -> dict[str, np.ndarray]:
    """Every recorded column of `run`, by table and column."""
    out = {}
    for table in ("sessions", "events", "intervals", "dr", "invoices", "tariff_changes", "storage", "discharges"):
        for column, values in (getattr(run, table) or {}).items():
            out[f"{table}.{column}"] = values
    return out


def _runs(name: str, monkeypatch, slow_path) -> tuple[dict, dict]:
    """The run of scenario `name` (its own manager, then random gym actions) as is and with `slow_path` patched in."""
    from pathlib import Path

    from sim.config import load_scenario
    from sim.gym import ChargingEnv

    path = Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.yaml"
    scenario = load_scenario(path, horizon_days=2)

    def both():
        env = ChargingEnv(scenario, decision_interval_s=900)
        env.reset(seed=3)
        rng = np.random.default_rng(4)
        done = False
        while not done:
            _, _, done, _, _ = env.step(rng.random(len(env.port_ids)).astype(np.float32))
        return _tables(simulate(scenario)), _tables(env.run_tables)

    fast = both()
    with monkeypatch.context() as m:
        slow_path(m)
        slow = both()
    return fast, slow


def _one_timeout_per_replan(m) -> None:
    """The "battery full" wake-up as it was: a SimPy timeout per interval opened, stale ones doing nothing."""
    from sim.charging import FullAlarms
    from sim.sessions import State

    class PerReplan(FullAlarms):
        def set(self, s, delay_s):
            version = s.version

            def ring(_):
                if s.version == version and s.state is State.PLUGGED:
                    self.on_full(s)

            self.env.timeout(delay_s).callbacks.append(ring)

    m.setattr("sim.charging.FullAlarms", PerReplan)


def _close_then_open(m) -> None:
    """No shortcut for a new interval: `Ports._close` then `Ports._open`, the general re-plan."""
    m.setattr("sim.charging.Ports._reopen", lambda *_: False)


@pytest.mark.parametrize("slow_path", [_one_timeout_per_replan, _close_then_open], ids=["alarms", "reopen"])
@pytest.mark.parametrize("name", ["gym_workplace", "mixed_market", "v2g_garage", "depot_grid"])
def test_replanning_shortcuts_record_what_the_general_path_does(name, slow_path, monkeypatch):
    """One queued "full" entry per session (`FullAlarms`) and the re-plan shortcut (`Ports._reopen`) change no row.

    Each scenario runs with its own manager and with random gym actions (a new limit on every port
    at every decision), once as shipped and once the plain way; every recorded column is identical.
    """
    for fast, slow in zip(*_runs(name, monkeypatch, slow_path), strict=True):
        assert fast.keys() == slow.keys()
        for column in fast:
            np.testing.assert_array_equal(fast[column], slow[column], err_msg=column)
        assert len(fast["intervals.t0_s"]) > 20


def test_a_run_leaves_the_garbage_collector_as_it_found_it():
    """`simulate` tunes the collector only while it runs: thresholds and frozen objects are as before, after."""
    import gc

    scenario = make_scenario(horizon_days=1)
    before = gc.get_threshold()
    gc.unfreeze()  # from a process that froze nothing (a ChargingEnv built earlier in this worker freezes)
    try:
        gc.set_threshold(500, 7, 9)
        simulate(scenario)
        assert gc.get_threshold() == (500, 7, 9)
        assert gc.get_freeze_count() == 0
        gc.freeze()  # someone else's frozen objects stay frozen
        frozen = gc.get_freeze_count()
        simulate(scenario)
        assert gc.get_freeze_count() > 0.9 * frozen  # not unfrozen (a few frozen objects are freed meanwhile)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_session_events_are_built_only_for_managers_that_may_answer_them():
    """Uncontrolled and the maintenance operators, alone or combined, get no session events; any other does."""
    from sim.managers import answers_sessions
    from sim.managers.base import CompositeManager
    from sim.managers.operators import Preventive, Reactive
    from sim.managers.uncontrolled import Uncontrolled

    class Mine:
        def handle(self, event, network):  # noqa: ANN001, ANN202
            return ()

    assert not answers_sessions(Uncontrolled())
    assert not answers_sessions(CompositeManager([Uncontrolled(), Reactive(), Preventive(86400.0)]))
    assert answers_sessions(Mine())
    assert answers_sessions(CompositeManager([Uncontrolled(), Mine()]))
