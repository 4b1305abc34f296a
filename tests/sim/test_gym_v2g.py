"""The Gymnasium environment with bidirectional ports: discharge actions, the V2G observation, and money both ways.

Every sum is recomputed from the recorded run (sessions, discharges, the 15-minute load) with the
KPI definitions of docs/kpis.md, never pasted from a run.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from sim.config import Scenario, load_scenario
from sim.degradation_metrics import degradation_frame
from sim.gym import PORT_FEATURES, V2G_FEATURES, V2G_SITE_FEATURES, ChargingEnv, RewardWeights
from sim.metrics import load_15min, sessions_frame
from sim.results import write_results
from sim.v2g_metrics import discharges_frame, remuneration

ROOT = Path(__file__).resolve().parents[2]
GARAGE = ROOT / "scenarios" / "v2g_garage.yaml"  # 18 bidirectional ports, then 6 one-way ones
WORKPLACE = ROOT / "scenarios" / "gym_workplace.yaml"


def _garage(days: float = 2.0) -> Scenario:
    """The V2G garage, its drivers paid more from 17:10 to 20:50: a tariff that changes between 15-minute bins."""
    scenario = load_scenario(GARAGE, horizon_days=days)
    data = scenario.model_dump(mode="json")
    data["tariff"]["periods"] = [{"start": "17:10", "end": "20:50", "v2g_remuneration_per_kwh": 0.15}]
    return Scenario.model_validate(data)


def _episode(env, actions, seed):
    env.reset(seed=seed)
    rewards, infos, done, k = [], [], False, 0
    while not done:
        _, reward, done, _, info = env.step(actions(k))
        rewards.append(reward)
        infos.append(info)
        k += 1
    return rewards, infos


@pytest.mark.parametrize("action", ["continuous", (-1.0, -0.5, 0.0, 0.5, 1.0)], ids=["continuous", "discrete"])
def test_v2g_env_passes_the_gymnasium_checker(action):
    """`check_env` passes with discharge in the action space, continuous and discrete."""
    check_env(ChargingEnv(GARAGE, horizon_days=0.5, action=action), skip_render_check=True)


def test_bidirectional_ports_take_negative_actions_and_one_way_ports_do_not():
    """The Box goes down to -1 on the 18 bidirectional ports, to 0 on the 6 one-way ones; 1-way scenarios keep it."""
    env = ChargingEnv(GARAGE, horizon_days=1)
    assert isinstance(env.action_space, spaces.Box)
    assert env.action_space.low.tolist() == [-1.0] * 18 + [0.0] * 6
    assert env.action_space.high.tolist() == [1.0] * 24
    assert set(env.observation_space.spaces) == {"ports", "sites", "time", "v2g", "v2g_sites"}
    one_way = ChargingEnv(WORKPLACE, horizon_days=1)
    assert one_way.action_space == spaces.Box(0.0, 1.0, (len(one_way.port_ids),), np.float32)
    assert set(one_way.observation_space.spaces) == {"ports", "sites", "time"}
    with pytest.raises(ValueError, match="no port is bidirectional"):
        ChargingEnv(WORKPLACE, action=(-1.0, 0.0, 1.0))


def test_limits_are_shares_of_the_discharge_power_by_hand():
    """-0.5 on an 11 kW V2G box is -5.5 kW; -1 on a 20 kW DC one -20 kW; -0.33 on a one-way box 0; 0.5 is 5.5 kW.

    v2g_garage: ports 0-15 are 11 kW AC boxes (max_discharge_kw = power_kw), 16-17 20 kW DC units, 18-23 one-way.
    """
    env = ChargingEnv(GARAGE, horizon_days=1)
    env.reset(seed=1)
    a = np.zeros(24, np.float32)
    a[0], a[1], a[16], a[18], a[19], a[2] = -0.5, 0.5, -1.0, -0.33, 1.0, -0.123
    kw = env._limits_kw(a)
    assert kw[[0, 1, 16, 18]].tolist() == [-5.5, 5.5, -20.0, 0.0]
    assert kw[19] == math.inf  # 1 lifts the limit, as on any port
    assert kw[2] == -math.floor(0.123 * 11 * 10) / 10 == -1.3  # rounded towards zero to 0.1 kW
    assert not np.signbit(kw[3])  # 0 is +0.0, never -0.0


def test_v2g_observation_is_what_the_v2g_views_show():
    """The ``v2g`` rows are each port's `V2gView` (free and one-way ports: only the port's discharge rating)."""
    env = ChargingEnv(GARAGE, horizon_days=1.5, decision_interval_s=1800)
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(4)
    seen = discharged = 0
    done = False
    while not done:
        view = env.simulation.view
        site = view.site(env.site_ids[0])
        expected = np.zeros((24, len(V2G_FEATURES)))
        expected[:, 0] = env.discharge_kw
        for k, e in enumerate(site.evses):
            v = site.v2g.get(e.evse_id)
            if v is not None:
                expected[k, 1:] = (v.max_discharge_kw, v.soc_frac, v.floor_soc_frac, v.headroom_kwh, v.discharged_kwh)
                seen += 1
        np.testing.assert_allclose(obs["v2g"], expected.astype(np.float32), rtol=1e-6, atol=1e-4)
        sites = obs["v2g_sites"][0]
        assert sites[V2G_SITE_FEATURES.index("export_limit_kw")] == 80.0
        assert sites[V2G_SITE_FEATURES.index("export_price_per_kwh")] == pytest.approx(site.export_price_per_kwh)
        assert sites[V2G_SITE_FEATURES.index("v2g_remuneration_per_kwh")] == pytest.approx(0.10)
        assert sites[V2G_SITE_FEATURES.index("dr_min_kw")] == site.dr_min_kw
        discharged += int((obs["ports"][:, PORT_FEATURES.index("power_frac")] < 0).sum())
        assert env.observation_space.contains(obs)
        obs, _, done, _, _ = env.step(rng.uniform(-1, 1, 24).astype(np.float32))
    assert seen > 20
    assert discharged > 5


def test_money_both_ways_adds_up_to_the_recorded_run(tmp_path):
    """Σ step charged and given-back energy, energy cost, export revenue and V2G pay are the run's own figures.

    Energy charged: Σ energy_delivered_kwh of sessions.parquet; given back: Σ discharges.parquet energy_kwh;
    the pay: each discharge row × the tariff's V2G rate in force (0.15 from 17:10 to 20:50, else 0.10), split
    at the period edges; energy cost and export revenue: each 15-minute bin's net energy of load.parquet,
    import × the energy price and export × the feed-in price at the bin's start, which the garage (no PV,
    no battery) reports as grid energy_cost and v2g export_revenue in kpis.json. Decisions every 10 minutes,
    so bins and tariff edges fall inside steps.
    """
    weights = RewardWeights(degradation=0.5)
    env = ChargingEnv(_garage(), decision_interval_s=600, reward=weights)
    rng = np.random.default_rng(7)
    rewards, infos = _episode(env, lambda k: rng.uniform(-1, 1, 24).astype(np.float32), seed=3)
    run = env.run_tables
    assert run is not None

    def total(key):
        return sum(i[key] for i in infos)

    sessions = sessions_frame(run)
    assert total("energy_kwh") == pytest.approx(sessions["energy_delivered_kwh"].sum(), rel=1e-9)
    out = discharges_frame(run)
    assert total("discharged_kwh") == pytest.approx(out["energy_kwh"].sum(), rel=1e-9)
    assert total("discharged_kwh") > 50  # the cars did give back
    pay = remuneration(run)
    assert total("v2g_remuneration") == pytest.approx(pay.sum(), rel=1e-9)
    assert pay.sum() > 0.10 * out["energy_kwh"].sum() + 1e-6  # some of it at the evening rate
    load = load_15min(run)
    net_kwh = load["energy_kwh"].to_numpy()
    price = run.prices.at_many(load["t_s"].to_numpy())
    export_price = np.array(
        [
            0.04,
            0.04,
            0.04,
            0.04,
            0.04,
            0.05,
            0.08,
            0.12,
            0.12,
            0.08,
            0.06,
            0.05,
            0.04,
            0.04,
            0.05,
            0.08,
            0.14,
            0.24,
            0.30,
            0.30,
            0.24,
            0.12,
            0.06,
            0.05,
        ]
    )[(load["t_s"].to_numpy() // 3600 % 24).astype(int)]  # fmt: skip  - the scenario's feed-in price by local hour
    cost = float((np.maximum(net_kwh, 0.0) * price).sum())
    export = float((np.maximum(-net_kwh, 0.0) * export_price).sum())
    assert total("energy_cost") == pytest.approx(cost, rel=1e-9)
    assert total("export_revenue") == pytest.approx(export, rel=1e-9)
    assert export > 0  # some bins exported
    kpis = write_results(run, tmp_path / "out")
    assert total("energy_cost") == pytest.approx(kpis["grid"]["network"]["energy_cost"], rel=1e-9)
    assert total("export_revenue") == pytest.approx(kpis["v2g"]["network"]["export_revenue"], abs=0.005)
    assert total("v2g_remuneration") == pytest.approx(kpis["v2g"]["network"]["v2g_remuneration"], abs=0.005)
    # Wear: charging's share of the cycle fade (degradation.parquet's cycle_fade_charging_kwh and cost_charging).
    # and V2G's, settled as each session ends (rainflow cycles are not additive over steps).
    frame = degradation_frame(run)
    assert total("fade_kwh") == pytest.approx(frame["cycle_fade_charging_kwh"].sum(), rel=1e-9)
    assert total("wear_cost") == pytest.approx(frame["cost_charging"].sum(), rel=1e-9)
    assert total("v2g_fade_kwh") == pytest.approx(frame["cycle_fade_v2g_kwh"].sum(), rel=1e-9)
    assert total("v2g_wear_cost") == pytest.approx(frame["cost_v2g"].sum(), rel=1e-9)
    assert total("v2g_fade_kwh") > 0
    for reward, i in zip(rewards, infos, strict=True):
        margin = i["energy_kwh"] * env.sale_price_per_kwh - i["energy_cost"] + i["export_revenue"]
        assert i["profit"] == pytest.approx(margin - i["v2g_remuneration"])
        wear = i["wear_cost"] + i["v2g_wear_cost"]
        assert reward == pytest.approx(i["profit"] - i["unmet_kwh"] - 5.0 * i["overload_kwh"] - 0.5 * wear)


def test_v2g_episode_is_deterministic_under_reset_seed():
    """The same seed and the same actions, discharge included, give the same observations and rewards."""
    actions = np.random.default_rng(9).uniform(-1, 1, (48, 24)).astype(np.float32)

    def run():
        env = ChargingEnv(GARAGE, horizon_days=1, decision_interval_s=1800)
        obs, _ = env.reset(seed=6)
        seen, rewards = [obs], []
        for k in range(48):
            obs, reward, done, _, _ = env.step(actions[k])
            seen.append(obs)
            rewards.append(reward)
        assert done
        return seen, rewards

    a_obs, a_rew = run()
    b_obs, b_rew = run()
    assert a_rew == b_rew
    for x, y in zip(a_obs, b_obs, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


def test_clip_keeps_the_discharges_within_the_export_limit_at_the_decision():
    """With the safety layer, every port giving back at full power stays within the 80 kW export limit.

    18 V2G-capable ports could give back 16 × 11 + 2 × 20 = 216 kW; right after each action the site's
    export (what the cars give back less what the others draw) is at most 80 kW.
    """
    env = ChargingEnv(GARAGE, horizon_days=2, decision_interval_s=900, clip_to_site_limit=True)
    env.reset(seed=4)
    action = np.array([-1.0] * 18 + [1.0] * 6, np.float32)
    worst = 0.0
    done = False
    while not done:
        _, _, done, _, info = env.step(action)
        worst = max(worst, info["overload_after_action_kw"])
    assert worst == 0.0
    assert discharges_frame(env.run_tables)["energy_kwh"].sum() > 50


def test_ports_and_sites_rows_are_what_the_views_show_while_cars_give_back():
    """With discharge actions the ``ports`` and ``sites`` rows still equal the manager's views (negative power too)."""
    from tests.sim.test_gym import _observation_from_views

    env = ChargingEnv(GARAGE, horizon_days=1.5, decision_interval_s=1800)
    rng = np.random.default_rng(11)
    obs, _ = env.reset(seed=8)
    negative = 0
    done = False
    while not done:
        ports, sites = _observation_from_views(env)
        np.testing.assert_allclose(obs["ports"], ports.astype(np.float32), rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(obs["sites"], sites.astype(np.float32), rtol=1e-6, atol=1e-4)
        negative += int(sites[0, 0] < 0)
        obs, _, done, _, _ = env.step(rng.uniform(-1, 1, 24).astype(np.float32))
    assert negative > 0  # the site gave back more than it drew at some decision
