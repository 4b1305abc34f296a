"""Gymnasium environment steps per second on a 200-port site, beside EV2Gym's on 200 ports when it is installed.

The chargetwin workload is scenarios/gym_workplace.yaml scaled to 200 ports of 11 kW (ten
times the chargers, the connection and the arrivals: about 200 sessions a weekday), decided
every 15 minutes with random continuous actions, a day (96 steps) per episode. The EV2Gym
workload is its own public charging example (PublicPST) with 100 two-port stations, 15-minute
steps, a day (96 steps) per episode and random actions: the same step length, horizon, port
count and action shape. Both envs run in this process, one after the other, and only `step`
is timed.

    python bench/gym_steps.py [--days 1] [--episodes 10]

Target: at least 10x EV2Gym's steps per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from sim.config import Scenario, load_scenario
from sim.gym import ChargingEnv

ROOT = Path(__file__).resolve().parents[1]
PORTS = 200


def scenario_200_ports(days: float) -> Scenario:
    """gym_workplace with ten times the chargers, the connection and the arrivals."""
    data = load_scenario(ROOT / "scenarios" / "gym_workplace.yaml", horizon_days=days).model_dump(mode="json")
    site = data["network"]["sites"][0]
    site["capacity_kw"] *= 10
    site["chargers"][0]["count"] = PORTS
    rate = data["demand"][0]["rate"]
    rate["per_hour"] = [10 * r for r in rate["per_hour"]]
    return Scenario.model_validate(data)


def run_episodes(env, episodes: int, seed: int, hold: bool = False) -> tuple[int, float]:  # noqa: ANN001 - any env
    """Steps taken and seconds spent in `step` over `episodes` episodes of random actions (`hold`: always all ones)."""
    env.action_space.seed(seed)
    steps, spent_s = 0, 0.0
    ones = np.ones(env.action_space.shape, env.action_space.dtype)
    for k in range(episodes):
        env.reset(seed=seed + k)
        done = False
        while not done:
            action = ones if hold else env.action_space.sample()
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            spent_s += time.perf_counter() - t0
            steps += 1
            done = terminated or truncated
    return steps, spent_s


def ev2gym_steps_per_s(episodes: int, seed: int) -> tuple[float, int] | None:
    """EV2Gym's steps per second on 200 ports and its EVs in the last episode, or None when it is not installed."""
    try:
        import ev2gym
        from ev2gym.models.ev2gym_env import EV2Gym
    except ImportError:
        return None
    package = Path(ev2gym.__file__).resolve().parent
    config = yaml.safe_load((package / "example_config_files" / "PublicPST.yaml").read_text())
    config.update(number_of_charging_stations=PORTS // 2, number_of_ports_per_cs=2, simulation_length=96, timescale=15)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ev2gym_200_ports.yaml"
        path.write_text(yaml.safe_dump(config))
        here = Path.cwd()
        os.chdir(package.parent)  # EV2Gym reads its data files relative to the working directory
        try:
            with contextlib.redirect_stdout(None):
                env = EV2Gym(config_file=str(path), save_replay=False, save_plots=False)
                steps, spent_s = run_episodes(env, episodes, seed)
        finally:
            os.chdir(here)
    return steps / spent_s, len(env.EVs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=1.0, help="episode length of the chargetwin env (days)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per environment")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    env = ChargingEnv(scenario_200_ports(args.days), decision_interval_s=900.0)
    assert len(env.port_ids) == PORTS
    steps, spent_s = run_episodes(env, args.episodes, args.seed)
    ours = steps / spent_s
    sessions = np.count_nonzero(~np.isnan(env.run_tables.sessions["plug_t_s"])) if env.run_tables else 0
    print(f"chargetwin ChargingEnv, {PORTS} ports, 15-min steps: {ours:,.0f} steps/s "
          f"({steps} steps, {sessions} sessions in the last episode)")  # fmt: skip
    peer = ev2gym_steps_per_s(args.episodes, args.seed)
    if peer is None:
        print("EV2Gym: not installed (pip install ev2gym to compare); target >= 10x its steps/s")
        return
    theirs, evs = peer
    ratio = ours / theirs
    verdict = "met" if ratio >= 10 else "missed"
    print(f"EV2Gym, {PORTS} ports, 15-min steps: {theirs:,.0f} steps/s ({evs} EVs in the last episode); "
          f"chargetwin is {ratio:.1f}x (target >= 10x: {verdict})")  # fmt: skip
    # Context, not the target: with random actions nearly every charging session gets a new limit at every
    # step, and the engine re-plans each one exactly; an agent that holds its limits costs only the events.
    steps, spent_s = run_episodes(env, args.episodes, args.seed, hold=True)
    held = steps / spent_s
    print(f"chargetwin ChargingEnv holding every port at full power: {held:,.0f} steps/s ({held / theirs:.1f}x "
          "EV2Gym's random-action steps/s)")  # fmt: skip


if __name__ == "__main__":
    main()
