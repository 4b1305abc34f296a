"""The Gymnasium environment: the checker, determinism, vectorisation, and rewards recomputed from the run."""

import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.config import load_scenario
from sim.engine import simulate
from sim.gym import PORT_FEATURES, SITE_FEATURES, ChargingEnv, RewardWeights
from sim.managers.base import EvseStatus
from sim.managers.uncontrolled import Uncontrolled
from sim.metrics import load_15min, sessions_frame

ROOT = Path(__file__).resolve().parents[2]
WORKPLACE = ROOT / "scenarios" / "gym_workplace.yaml"
DEPOT = ROOT / "scenarios" / "depot_grid.yaml"


def _episode(env, actions, seed):
    """Observations, rewards and infos of one episode driven by `actions(step)`."""
    obs, _ = env.reset(seed=seed)
    seen, rewards, infos = [obs], [], []
    done, k = False, 0
    while not done:
        obs, reward, done, truncated, info = env.step(actions(k))
        assert not truncated
        seen.append(obs)
        rewards.append(reward)
        infos.append(info)
        k += 1
    return seen, rewards, infos


@pytest.mark.parametrize("action", ["continuous", (0.0, 0.5, 1.0)], ids=["continuous", "discrete"])
def test_passes_the_gymnasium_checker(action):
    """`check_env` finds nothing to warn about, with continuous and with discrete actions."""
    check_env(ChargingEnv(WORKPLACE, horizon_days=0.5, action=action), skip_render_check=True)


def test_same_seed_same_episode_other_seed_other_arrivals():
    """reset(seed=s) with the same actions replays the same observations and rewards; another seed differs."""
    env = ChargingEnv(WORKPLACE, horizon_days=1, decision_interval_s=1800)
    rng = np.random.default_rng(5)
    actions = rng.random((48, len(env.port_ids))).astype(np.float32)
    a_obs, a_rew, _ = _episode(env, lambda k: actions[k], seed=3)
    b_obs, b_rew, _ = _episode(
        ChargingEnv(WORKPLACE, horizon_days=1, decision_interval_s=1800), lambda k: actions[k], 3
    )
    assert len(a_obs) == 49  # 24 h in half hours, and the first observation
    assert a_rew == b_rew
    for x, y in zip(a_obs, b_obs, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    c_obs, _, _ = _episode(env, lambda k: actions[k], seed=4)
    assert any(not np.array_equal(x["ports"], y["ports"]) for x, y in zip(a_obs, c_obs, strict=True))


def test_full_power_changes_nothing_in_the_run():
    """An agent that always lifts every limit gives the same sessions as the uncontrolled manager: stepping is exact."""
    env = ChargingEnv(WORKPLACE, horizon_days=2, decision_interval_s=900)
    ones = np.ones(len(env.port_ids), np.float32)
    _, info = env.reset(options={"scenario_seed": 11})
    done = False
    while not done:
        _, _, done, _, _ = env.step(ones)
    scenario = load_scenario(WORKPLACE, seed=11, horizon_days=2)
    alone = simulate(scenario, manager=Uncontrolled())
    assert env.run_tables is not None
    for column in ("session_id", "plug_t_s", "energy_delivered_kwh", "energy_requested_kwh"):
        np.testing.assert_array_equal(env.run_tables.sessions[column], alone.sessions[column])
    assert info["scenario_seed"] == 11


def test_energy_and_cost_add_up_to_the_recorded_run():
    """Σ step energy equals the sessions' delivered energy, and Σ step cost the 15-minute energy × the price then."""
    env = ChargingEnv(DEPOT, horizon_days=2, decision_interval_s=600)
    rng = np.random.default_rng(1)
    _, rewards, infos = _episode(env, lambda k: rng.random(len(env.port_ids)), seed=8)
    run = env.run_tables
    assert run is not None
    sessions = sessions_frame(run)
    energy_kwh = sum(i["energy_kwh"] for i in infos)
    assert energy_kwh == pytest.approx(sessions["energy_delivered_kwh"].sum(), rel=1e-9)
    assert energy_kwh > 100  # the vans did charge
    load = load_15min(run)
    prices = np.array([run.prices.at(t) for t in load["t_s"]])  # hourly prices: constant in every 15 minutes
    assert sum(i["energy_cost"] for i in infos) == pytest.approx(float((load["energy_kwh"] * prices).sum()), rel=1e-9)
    w = env.weights
    for reward, i in zip(rewards, infos, strict=True):
        assert reward == pytest.approx(
            w.profit * i["profit"] - w.unmet_per_kwh * i["unmet_kwh"] - w.overload_per_kwh * i["overload_kwh"]
        )
        assert i["profit"] == pytest.approx(i["energy_kwh"] * env.sale_price_per_kwh - i["energy_cost"])


def test_no_power_leaves_every_need_unmet():
    """With every port at 0 nothing is delivered, and the unmet energy is what the departed drivers requested."""
    env = ChargingEnv(WORKPLACE, horizon_days=2, reward=RewardWeights(unmet_per_kwh=2.0))
    zeros = np.zeros(len(env.port_ids), np.float32)
    _, rewards, infos = _episode(env, lambda k: zeros, seed=2)
    sessions = sessions_frame(env.run_tables)
    left = sessions[sessions["outcome"] == "served"]
    assert len(left) > 10
    assert sum(i["energy_kwh"] for i in infos) == 0.0
    assert sum(i["unmet_kwh"] for i in infos) == pytest.approx(left["energy_requested_kwh"].sum(), rel=1e-9)
    assert sum(rewards) == pytest.approx(-2.0 * left["energy_requested_kwh"].sum(), rel=1e-9)


def test_observation_shows_sessions_and_the_site_limit():
    """Occupied ports carry their need and departure; the site row its limit; features are as documented."""
    env = ChargingEnv(WORKPLACE, horizon_days=1)
    env.reset(seed=1)
    half = np.full(len(env.port_ids), 0.5, np.float32)
    for _ in range(40):  # to 10:00, after the morning arrivals
        obs, *_ = env.step(half)
    ports = obs["ports"]
    occupied = ports[:, PORT_FEATURES.index("occupied")] == 1
    assert occupied.sum() >= 3
    assert (ports[occupied, PORT_FEATURES.index("need_known")] == 1).all()  # every EV speaks ISO 15118 here
    assert (ports[occupied, PORT_FEATURES.index("departure_h")] > 0).all()
    assert (ports[~occupied, : PORT_FEATURES.index("max_power_kw")] == 0).all()
    assert (ports[:, PORT_FEATURES.index("power_frac")] <= 0.5 + 1e-6).all()  # held at half the port
    assert obs["sites"][0, 1] == 66.0
    assert obs["time"][3] == pytest.approx(40 * 900 / 86400)


def test_clip_to_site_limit_keeps_the_site_within_its_limit_after_each_decision():
    """With the safety layer, full-power actions never leave the garage over its limit just after the action."""
    ones = lambda k: np.ones(20, np.float32)  # noqa: E731
    _, _, clipped = _episode(ChargingEnv(WORKPLACE, horizon_days=1, clip_to_site_limit=True), ones, seed=1)
    assert all(i["overload_after_action_kw"] == 0.0 for i in clipped)
    _, _, free = _episode(ChargingEnv(WORKPLACE, horizon_days=1), ones, seed=1)
    assert max(i["overload_after_action_kw"] for i in free) > 0  # without it, full power overloads the garage
    for i in free:
        assert i["overload_kwh"] == pytest.approx(0.5 * (i["overload_after_action_kw"] + i["overload_end_kw"]) / 4)


def test_vector_env_matches_single_envs():
    """SyncVectorEnv over two envs gives each the observations of a single env seeded alike, and autoresets."""
    make = lambda: ChargingEnv(WORKPLACE, horizon_days=0.25, decision_interval_s=1800)  # noqa: E731
    vec = gymnasium.vector.SyncVectorEnv([make, make])
    obs, _ = vec.reset(seed=[10, 20])
    single = make()
    one, _ = single.reset(seed=20)
    np.testing.assert_array_equal(obs["ports"][1], one["ports"])
    action = np.full((2, len(single.port_ids)), 0.7, np.float32)
    for k in range(12):  # 6 h in half hours: the episode ends at step 12
        obs, reward, terminated, _, _ = vec.step(action)
        o, r, done, _, _ = single.step(action[1])
        np.testing.assert_array_equal(obs["ports"][1], o["ports"])
        assert reward[1] == r
        assert terminated[1] == done == (k == 11)
    vec.close()


def test_bad_arguments_name_the_fix():
    """A non-positive interval or a discrete set out of [0, 1] is refused with its value."""
    with pytest.raises(ValueError, match="decision_interval_s"):
        ChargingEnv(WORKPLACE, decision_interval_s=0)
    with pytest.raises(ValueError, match="shares"):
        ChargingEnv(WORKPLACE, action=(0.0, 1.5))
    env = ChargingEnv(WORKPLACE, horizon_days=0.1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(len(env.port_ids), np.float32))


def test_import_sim_needs_no_gymnasium():
    """The simulation, its command line and its results load without the optional gym extra."""
    code = "import sys; sys.modules['gymnasium'] = None; import sim, sim.engine, sim.cli, sim.results, sim.sweep"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_site_rows_show_the_phases():
    """On the phase-limited garage the site row has the phase limit, and the phases add up to the site's power."""
    env = ChargingEnv(ROOT / "scenarios" / "phase_limited_garage.yaml", horizon_days=1)
    env.reset(seed=1)
    row = {name: i for i, name in enumerate(SITE_FEATURES)}
    loaded = 0
    for _ in range(96):
        obs, *_ = env.step(np.ones(len(env.port_ids), np.float32))
        site = obs["sites"][0]
        assert site[row["phase_limit_kw"]] == pytest.approx(63 * 230 / 1000)
        phases = site[[row["l1_kw"], row["l2_kw"], row["l3_kw"]]]
        assert phases.sum() == pytest.approx(site[row["power_kw"]], rel=1e-5, abs=1e-4)
        loaded += phases.max() > 0
    assert loaded > 10


def _observation_from_views(env):
    """The observation as the manager's views define it: `SiteView`s built now, one `EvseView` per port."""
    view = env.simulation.view
    now = view.t_s
    est = env.est
    ports = np.zeros((len(env.port_ids), len(PORT_FEATURES)))
    sites = np.zeros((len(env.site_ids), len(SITE_FEATURES)))
    i = 0
    for j, sid in enumerate(env.site_ids):
        site = view.site(sid)
        phases = np.zeros(3)
        for e in site.evses:
            ports[i, 7] = env.max_kw[i]
            if e.session_id is not None:
                ports[i, :7] = (
                    1.0,
                    e.status is EvseStatus.CHARGING,
                    e.power_kw / env.max_kw[i],
                    e.energy_kwh,
                    max(est.need_kwh(e), 0.0),
                    e.energy_need_kwh is not None,
                    max(est.departure_t_s(e) - now, 0.0) / 3600,
                )
                p = site.single_phase.get(e.evse_id)
                phases += np.full(3, e.power_kw / 3) if p is None else np.eye(3)[p] * e.power_kw
            i += 1
        cap_kw = env.max_kw[[k for k, x in enumerate(env.port_ids) if x.startswith(f"{sid}.")]].sum()
        sites[j] = (
            sum(e.power_kw for e in site.evses),
            min(site.limit_kw, cap_kw),
            min(site.grid_limit_kw, cap_kw),
            site.dr_cap_kw < np.inf,
            site.pv_kw,
            site.storage.soc_frac if site.storage is not None else 0.0,
            site.waiting,
            min(site.phase_limit_kw, cap_kw),
            *phases,
        )
    return np.minimum(ports, 1e6), np.minimum(sites, 1e6)


@pytest.mark.parametrize("name", ["mixed_market", "depot_grid", "phase_limited_garage", "gym_workplace"])
def test_observation_is_what_the_views_show(name):
    """Ports and sites read from the live network equal the manager's `SiteView`s at every step.

    mixed_market has several sites, shared DC cabinets, telematics and ISO 15118 EVs (`ev_side`),
    depot_grid PV and a battery, phase_limited_garage single-phase ports.
    """
    env = ChargingEnv(ROOT / "scenarios" / f"{name}.yaml", horizon_days=1.5, decision_interval_s=1800)
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=5)
    occupied = 0
    done = False
    while not done:  # the last observation is the horizon's, after which the run is closed
        ports, sites = _observation_from_views(env)
        np.testing.assert_allclose(obs["ports"], ports.astype(np.float32), rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(obs["sites"], sites.astype(np.float32), rtol=1e-6, atol=1e-4)
        occupied += int(ports[:, 0].sum())
        obs, _, done, _, _ = env.step(rng.random(len(env.port_ids)).astype(np.float32))
    assert occupied > 20


@pytest.mark.parametrize(
    ("name", "coarse"),
    [("gym_workplace", False), ("gym_workplace", True), ("mixed_market", True), ("depot_grid", False),
     ("enforced_garage", False), ("v2g_garage", True)],
)  # fmt: skip
def test_bulk_limits_record_what_commands_would(name, coarse):
    """The env's limits applied in bulk give the same events and intervals as one `SetPowerLimit` command each.

    `Ports.set_power_limits` re-plans the common case inline (a port with no local load management,
    no PV or battery, no V2G): gym_workplace; a coarse action (0, ½, 1 of each port's power) repeats
    limits, so profiles stay and sessions pause; mixed_market has shared DC cabinets, depot_grid PV and
    a battery, enforced_garage local load management, v2g_garage discharging EVs.
    """
    from sim.managers.base import SetPowerLimit

    env = ChargingEnv(ROOT / "scenarios" / f"{name}.yaml", horizon_days=1, decision_interval_s=900)
    twin = ChargingEnv(ROOT / "scenarios" / f"{name}.yaml", horizon_days=1, decision_interval_s=900)
    rng = np.random.default_rng(2)
    env.reset(seed=4)
    twin.reset(seed=4)
    low = env.action_space.low

    def by_commands(indices, power_kw):
        twin.simulation.apply([SetPowerLimit(twin.port_ids[i], kw) for i, kw in zip(indices, power_kw, strict=True)])

    twin.simulation.set_power_limits = by_commands
    done = False
    while not done:
        action = rng.uniform(low, 1.0)
        if coarse:
            action = np.round(action * 2) / 2
        _, a, done, _, _ = env.step(action.astype(np.float32))
        _, b, _, _, _ = twin.step(action.astype(np.float32))
        assert a == b
    for table in ("events", "intervals", "sessions", "discharges"):
        x, y = getattr(env.run_tables, table), getattr(twin.run_tables, table)
        if x is None:
            assert y is None
            continue
        assert x.keys() == y.keys()
        for column in x:
            np.testing.assert_array_equal(x[column], y[column])
    assert (env.run_tables.events["event"] == 3).sum() > 100  # POWER_LIMIT rows


def test_bulk_limits_on_free_ports_record_what_commands_would():
    """`Simulation.set_power_limits` on every port, free ones too (session -1), equals one `SetPowerLimit` each."""
    from sim.engine import Simulation
    from sim.managers.base import SetPowerLimit
    from sim.managers.uncontrolled import Uncontrolled

    scenario = load_scenario(ROOT / "scenarios" / "mixed_market.yaml", horizon_days=1)
    bulk, one_by_one = Simulation(scenario, Uncontrolled()), Simulation(scenario, Uncontrolled())
    ids = [e.evse_id for e in bulk.live.evses]
    rng = np.random.default_rng(5)
    for k in range(1, 40):
        bulk.advance(k * 1800.0)
        one_by_one.advance(k * 1800.0)
        kw = np.round(rng.uniform(0.0, 60.0, len(ids)), 1).tolist()
        bulk.set_power_limits(list(range(len(ids))), kw)
        one_by_one.apply([SetPowerLimit(i, p) for i, p in zip(ids, kw, strict=True)])
    x, y = bulk.finish(), one_by_one.finish()
    for table in ("events", "intervals", "sessions"):
        for column in getattr(x, table):
            np.testing.assert_array_equal(getattr(x, table)[column], getattr(y, table)[column])
    assert (x.events["session_id"][x.events["event"] == 3] == -1).any()  # limits on free ports were recorded


def test_wear_adds_up_to_the_charging_fade_of_the_recorded_run():
    """Σ step wear is degradation.parquet's charging cycle fade and its cost; the reward subtracts it by weight."""
    from sim.config.degradation import Degradation
    from sim.degradation_metrics import degradation_frame

    scenario = load_scenario(DEPOT, horizon_days=2)
    scenario = scenario.model_copy(update={"degradation": Degradation(cost_per_kwh=150.0)})
    weights = RewardWeights(degradation=2.0)
    env = ChargingEnv(scenario, decision_interval_s=600, reward=weights)
    rng = np.random.default_rng(3)
    _, rewards, infos = _episode(env, lambda k: rng.random(len(env.port_ids)), seed=8)
    run = env.run_tables
    assert run is not None
    frame = degradation_frame(run)
    fade_kwh = sum(i["fade_kwh"] for i in infos)
    assert fade_kwh > 0  # the vans charged, so their batteries wore
    assert fade_kwh == pytest.approx(frame["cycle_fade_charging_kwh"].sum(), rel=1e-9)
    assert sum(i["wear_cost"] for i in infos) == pytest.approx(frame["cost_charging"].sum(), rel=1e-9)
    for reward, i in zip(rewards, infos, strict=True):
        assert i["wear_cost"] == pytest.approx(i["fade_kwh"] * 150.0)
        assert reward == pytest.approx(i["profit"] - i["unmet_kwh"] - 5.0 * i["overload_kwh"] - 2.0 * i["wear_cost"])


def test_each_mark_books_the_cycle_fade_the_ageing_model_gives():
    """The scan's fade per port (the battery's factor kept by port) is `AgeingModel.cycle_frac`'s, bit for bit."""
    env = ChargingEnv(WORKPLACE, horizon_days=2, decision_interval_s=900)
    rng = np.random.default_rng(4)
    env.reset(seed=2)
    charged = 0
    for _ in range(150):
        env.step(rng.random(len(env.port_ids)).astype(np.float32))
        agent = env._agent
        soc, _ = agent.state(env.simulation.t_s)
        capacity, soc_in = agent.capacity_kwh, agent.soc_in_frac
        rise = np.maximum(soc - soc_in, 0.0)
        fade = env.ageing.cycle_frac(rise, soc_in + rise / 2.0, 0.5, capacity) * capacity
        np.testing.assert_array_equal(agent.fade_at_kwh, fade)
        charged += int((fade > 0).sum())
    assert charged > 20


def test_env_freezes_the_objects_alive_when_built_until_closed():
    """Built, the env freezes what is alive (`gc.freeze`); `close` hands it back; a process's own freeze is kept."""
    import gc

    gc.unfreeze()
    env = ChargingEnv(WORKPLACE, horizon_days=1)
    assert gc.get_freeze_count() > 0
    env.close()
    assert gc.get_freeze_count() == 0
    gc.freeze()
    frozen = gc.get_freeze_count()
    other = ChargingEnv(WORKPLACE, horizon_days=1)
    other.close()
    assert 0 < gc.get_freeze_count() <= frozen  # none added, none handed back (objects freed since may leave it)
    gc.unfreeze()
