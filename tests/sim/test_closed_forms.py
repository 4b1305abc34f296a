"""Queueing closed forms: a site of c ports behaves as M/M/c/c (no waiting room) and M/M/c (with one).

Estimates use batch means: the run is cut into batches much longer than a dwell, so
batch averages are nearly independent, and the tolerance is 4 standard errors of
their mean — it shrinks as the run grows.
"""

import math

import numpy as np
import pytest

from sim.engine import simulate
from sim.managers.base import SetTimer, Timer
from sim.metrics import build_tables
from tests.conftest import make_scenario, one_site

PORTS, PER_HOUR, DWELL_MIN = 4, 2.0, 90.0  # offered load a = 2/h × 1.5 h = 3 Erlang
BATCH_DAYS, BATCHES = 20, 20
SAMPLE_S = 600.0  # the queue sampler's period


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load a (the stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a < c."""
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def _batch_stat(sessions, value, keep) -> tuple[float, float]:
    batch = (sessions["arrival_t_s"] // (BATCH_DAYS * 86400)).to_numpy()
    means = np.array([value[(batch == k) & keep].mean() for k in range(BATCHES)])
    return means.mean(), means.std(ddof=1) / math.sqrt(BATCHES)


class _QueueSampler:
    """Reads the site's queue length every `SAMPLE_S` through the manager's view; never commands anything.

    Sampling the queue as a manager sees it measures L = E[queue length] without reading any
    recorded wait, so L = λW compares two independent measurements.
    """

    def __init__(self) -> None:
        self.samples: list[int] = []

    def handle(self, event, network):
        if isinstance(event, Timer):
            self.samples.append(network.site(network.site_ids()[0]).waiting)
            return [SetTimer(event.t_s + SAMPLE_S, "sample")]
        return ()


def _run(sampler=None, **demand):
    s = make_scenario(
        horizon_days=BATCH_DAYS * BATCHES,
        manager={"kind": "uncontrolled"},
        **one_site(PORTS, PER_HOUR, {"dist": "exponential", "mean": DWELL_MIN}, **demand),
    )
    return build_tables(simulate(s, manager=sampler)).sessions


def test_blocking_matches_erlang_b():
    """With no waiting room the share of drivers turned away is Erlang B(4, 3)."""
    sessions = _run(max_queue=0)
    blocked = (sessions["outcome"] == "balked").to_numpy(dtype=float)
    mean, se = _batch_stat(sessions, blocked, np.ones(len(sessions), dtype=bool))
    expected = erlang_b(PORTS, PER_HOUR * DWELL_MIN / 60)
    assert se < 0.01, "the run is too short to test anything"
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


@pytest.mark.slow
def test_wait_matches_erlang_c_and_littles_law():
    """With an unbounded queue the mean wait is Erlang C/(cμ − λ), and the sampled queue length L = λ·W."""
    sampler = _QueueSampler()
    sessions = _run(sampler, max_queue=100_000, patience_min=1e9)
    plugged = sessions["plug_t_s"].notna().to_numpy()
    wait_h = sessions["wait_s"].to_numpy() / 3600
    mean, se = _batch_stat(sessions, wait_h, plugged)
    a, mu = PER_HOUR * DWELL_MIN / 60, 60 / DWELL_MIN
    expected_h = erlang_c(PORTS, a) / (PORTS * mu - PER_HOUR)
    assert abs(mean - expected_h) < 4 * se, (mean, expected_h, se)
    # Little's law: L from the queue as the manager saw it, sampled every SAMPLE_S (batch means
    # over the same batches), against λ·W from the recorded waits and the arrival count.
    per_batch = int(BATCH_DAYS * 86400 / SAMPLE_S)
    samples = np.array(sampler.samples[: BATCHES * per_batch], dtype=float)
    assert len(samples) == BATCHES * per_batch
    l_batches = samples.reshape(BATCHES, per_batch).mean(axis=1)
    l_mean, l_se = l_batches.mean(), l_batches.std(ddof=1) / math.sqrt(BATCHES)
    horizon_h = BATCH_DAYS * BATCHES * 24
    lam_per_h = len(sessions) / horizon_h
    w_h = sessions["wait_s"].mean() / 3600  # every arrival: zero for those who found a free port
    assert l_mean > 0.1, "the queue must be busy enough for the test to mean something"
    assert abs(l_mean - lam_per_h * w_h) < 4 * (l_se + PER_HOUR * se), (l_mean, lam_per_h * w_h)
    assert abs(l_mean - PER_HOUR * expected_h) < 4 * l_se, (l_mean, PER_HOUR * expected_h, l_se)
