"""Gymnasium environment steps per second on a 200-port site, beside EV2Gym's on 200 ports when it is installed.

The EV2Gym workload is its own public charging example (PublicPST): 100 stations of two ports,
each station 16 A on 400 V three-phase (11.1 kW) shared by its two ports, 15-minute steps, a day
(96 steps) per episode, random actions. The chargetwin workload is scenarios/gym_workplace.yaml
scaled to 200 ports of 11 kW each (ten times the chargers and the connection), decided every
15 minutes with random continuous actions, a day (96 steps) per episode: the same step length,
horizon, port count and action shape. Only `step` is timed (not `reset`, not sampling the
actions), on the wall clock and on the thread's CPU time, after one untimed warm-up episode.

The two differ in how many EVs an episode brings, and a step costs time in proportion to the
sessions plugged in. So the target compares like with like: EV2Gym's mean EVs per episode is
counted over its episodes, and gym_workplace's arrival rate is scaled so that our mean sessions
per episode over the same seeds matches it (in proportion to the mean at ten times gym_workplace's
rate, then once more from the rate found); both means are printed. Nothing else is changed.

A shared machine makes one measurement a lottery, so the two are measured in alternated rounds
(chargetwin, EV2Gym, chargetwin, EV2Gym, ...), each run in a fresh process of its own with the
same episodes and seeds; every round is printed, and the verdict is the median over the rounds of
the ratio of the two runs of a round (wall clock), with the CPU-time median beside it. The line at
ten times gym_workplace's rate (more sessions than EV2Gym's) and the one holding every limit are
printed after it for context.

    python bench/gym_steps.py [--days 1] [--episodes 10] [--rounds 5]

Target: at least 10x EV2Gym's steps per second on the same workload.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from sim.config import Scenario, load_scenario
from sim.gym import ChargingEnv

ROOT = Path(__file__).resolve().parents[1]
PORTS = 200


def scenario_200_ports(days: float, arrivals: float = 10.0) -> Scenario:
    """gym_workplace with ten times the chargers and the connection, and `arrivals` times its arrival rate."""
    data = load_scenario(ROOT / "scenarios" / "gym_workplace.yaml", horizon_days=days).model_dump(mode="json")
    site = data["network"]["sites"][0]
    site["capacity_kw"] *= 10
    site["chargers"][0]["count"] = PORTS
    rate = data["demand"][0]["rate"]
    rate["per_hour"] = [arrivals * r for r in rate["per_hour"]]
    return Scenario.model_validate(data)


class Rate(NamedTuple):
    """Steps per second of wall time and of the stepping thread's CPU time, spent in `step` only."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall:,.0f} steps/s ({self.cpu:,.0f} per CPU second)"

    def over(self, other: Rate) -> str:
        """How many times `other` this is, on wall and on CPU time."""
        return f"{self.wall / other.wall:.1f}x ({self.cpu / other.cpu:.1f}x on CPU time)"


def run_episodes(
    env: Any, episodes: int, seed: int, count: Callable[[Any], int], hold: bool = False
) -> tuple[Rate, float]:
    """Steps per second in `step` and the mean `count(env)` at the end of an episode, over `episodes` episodes.

    Actions are random (`hold`: always all ones). One episode on another seed goes first, untimed: a
    training run steps warm envs (caches filled, code paths taken), not a fresh process's first episode.
    """
    env.action_space.seed(seed)
    env.reset(seed=seed + 10_000)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    steps, wall_s, cpu_s, counted = 0, 0.0, 0.0, []
    ones = np.ones(env.action_space.shape, env.action_space.dtype)
    for k in range(episodes):
        env.reset(seed=seed + k)
        done = False
        while not done:
            action = ones if hold else env.action_space.sample()
            t0, c0 = time.perf_counter(), time.thread_time()
            _, _, terminated, truncated, _ = env.step(action)
            wall_s += time.perf_counter() - t0
            cpu_s += time.thread_time() - c0
            steps += 1
            done = terminated or truncated
        counted.append(count(env))
    return Rate(steps / wall_s, steps / cpu_s), float(np.mean(counted))


def sessions(env: ChargingEnv) -> int:
    """Sessions that plugged in during the episode just ended."""
    assert env.run_tables is not None
    return int(np.count_nonzero(~np.isnan(env.run_tables.sessions["plug_t_s"])))


def ours(days: float, arrivals: float, episodes: int, seed: int, hold: bool = False) -> tuple[Rate, float]:
    """Steps per second of our env on the 200-port site at `arrivals` x gym_workplace's rate, and its mean sessions."""
    env = ChargingEnv(scenario_200_ports(days, arrivals), decision_interval_s=900.0)
    assert len(env.port_ids) == PORTS
    return run_episodes(env, episodes, seed, sessions, hold)


def ev2gym_installed() -> bool:
    """Whether EV2Gym imports in this interpreter."""
    try:
        import ev2gym  # noqa: F401
        from ev2gym.models.ev2gym_env import EV2Gym  # noqa: F401
    except ImportError:
        return False
    return True


def ev2gym_run(episodes: int, seed: int) -> tuple[Rate, float]:
    """EV2Gym's steps per second on 200 ports and its mean EVs per episode."""
    import ev2gym
    from ev2gym.models.ev2gym_env import EV2Gym

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
                return run_episodes(env, episodes, seed, lambda e: len(e.EVs))
        finally:
            os.chdir(here)


def in_fresh_process(
    args: argparse.Namespace, env: str, arrivals: float = 0.0, hold: bool = False
) -> tuple[Rate, float]:
    """`ours` or `ev2gym_run` in a new interpreter (this one, this environment), so no run inherits another's heap."""
    cmd = [sys.executable, __file__, "--worker", env, "--days", str(args.days), "--episodes", str(args.episodes),
           "--seed", str(args.seed), "--arrivals", repr(arrivals)] + (["--hold"] if hold else [])  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Rate(out["wall"], out["cpu"]), out["mean"]


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=1.0, help="episode length of the chargetwin env (days)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per environment and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (chargetwin, then EV2Gym)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", choices=("ours", "ev2gym"), help=argparse.SUPPRESS)
    parser.add_argument("--arrivals", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:  # one measurement, in this fresh process: print it as JSON
        if args.worker == "ours":
            rate, mean = ours(args.days, args.arrivals, args.episodes, args.seed, args.hold)
        else:
            rate, mean = ev2gym_run(args.episodes, args.seed)
        print(json.dumps({"wall": rate.wall, "cpu": rate.cpu, "mean": mean}))
        return

    n = args.episodes
    shape = f"{PORTS} ports, 15-min steps, random actions"
    print(f"load average at the start: {load()} ({os.cpu_count()} CPUs); {n} episodes per run, each run in a "
          f"fresh process")  # fmt: skip
    full, full_sessions = in_fresh_process(args, "ours", 10.0)
    if not ev2gym_installed():
        print(f"chargetwin ChargingEnv, {shape}, gym_workplace x10 ({full_sessions:.1f} sessions per episode): "
              f"{full}")  # fmt: skip
        print("EV2Gym: not installed (pip install ev2gym to compare); target >= 10x its steps/s on the same workload")
        return
    # The same workload: EV2Gym's EVs per episode are the same in every round (same seeds); scale our arrivals to them.
    theirs, evs = in_fresh_process(args, "ev2gym")
    arrivals = 10.0 * evs / full_sessions
    _, near = in_fresh_process(args, "ours", arrivals)  # once more from there: fewer ports busy, fewer arrivals balk
    arrivals *= evs / near
    print(f"EV2Gym 2.0.0 PublicPST, {shape} (100 stations of 11.1 kW, each shared by 2 ports): "
          f"{evs:.1f} EVs per episode (mean of {n})")  # fmt: skip
    print(f"chargetwin ChargingEnv, {shape} (11 kW each), arrivals scaled to the same workload: "
          f"gym_workplace x{arrivals:.2f}")  # fmt: skip
    walls, cpus = [], []
    for r in range(1, args.rounds + 1):
        same, same_sessions = in_fresh_process(args, "ours", arrivals)
        theirs, _ = in_fresh_process(args, "ev2gym")
        walls.append(same.wall / theirs.wall)
        cpus.append(same.cpu / theirs.cpu)
        print(f"round {r}: chargetwin {same}, {same_sessions:.1f} sessions per episode; EV2Gym {theirs}; "
              f"chargetwin is {same.over(theirs)}; load {load()}")  # fmt: skip
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    verdict = "met" if wall >= 10 else "MISSED"
    print(f"chargetwin on the same workload, median of {args.rounds} rounds: {wall:.1f}x EV2Gym's steps/s "
          f"(rounds {min(walls):.1f}x to {max(walls):.1f}x), {cpu:.1f}x per CPU second (rounds {min(cpus):.1f}x to "
          f"{max(cpus):.1f}x) (target >= 10x: {verdict})")  # fmt: skip
    # Context, not the target: more sessions than EV2Gym's episodes bring, and an agent that holds its limits
    # (random actions give nearly every charging session a new limit at every step, each re-planned exactly).
    print(f"context: chargetwin at gym_workplace x10 ({full_sessions:.1f} sessions per episode): {full}, "
          f"{full.over(theirs)} EV2Gym's last round")  # fmt: skip
    held, _ = in_fresh_process(args, "ours", arrivals, hold=True)
    print(f"context: chargetwin on the same workload holding every port at full power: {held}, "
          f"{held.over(theirs)} EV2Gym's last round; load {load()}")  # fmt: skip


if __name__ == "__main__":
    main()
