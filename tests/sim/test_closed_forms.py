"""Queueing closed forms: a site of c ports behaves as M/M/c/c (no waiting room) and M/M/c (with one).

Estimates use batch means: the run is cut into batches much longer than a dwell, so
batch averages are nearly independent, and the tolerance is 4 standard errors of
their mean — it shrinks as the run grows.
"""

import math

import numpy as np

from sim.engine import simulate
from sim.metrics import build_tables
from tests.conftest import make_scenario, one_site

PORTS, PER_HOUR, DWELL_MIN = 4, 2.0, 90.0  # offered load a = 2/h × 1.5 h = 3 Erlang
BATCH_DAYS, BATCHES = 20, 20


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


def _run(**demand):
    s = make_scenario(
        horizon_days=BATCH_DAYS * BATCHES,
        manager={"kind": "uncontrolled"},
        **one_site(PORTS, PER_HOUR, {"dist": "exponential", "mean": DWELL_MIN}, **demand),
    )
    return build_tables(simulate(s)).sessions


def test_blocking_matches_erlang_b():
    """With no waiting room the share of drivers turned away is Erlang B(4, 3)."""
    sessions = _run(max_queue=0)
    blocked = (sessions["outcome"] == "balked").to_numpy(dtype=float)
    mean, se = _batch_stat(sessions, blocked, np.ones(len(sessions), dtype=bool))
    expected = erlang_b(PORTS, PER_HOUR * DWELL_MIN / 60)
    assert se < 0.01, "the run is too short to test anything"
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


def test_wait_matches_erlang_c_and_littles_law():
    """With an unbounded queue the mean wait is Erlang C/(cμ − λ), and Lq = λ·Wq."""
    sessions = _run(max_queue=100_000, patience_min=1e9)
    plugged = sessions["plug_t_s"].notna().to_numpy()
    wait_h = sessions["wait_s"].to_numpy() / 3600
    mean, se = _batch_stat(sessions, wait_h, plugged)
    a, mu = PER_HOUR * DWELL_MIN / 60, 60 / DWELL_MIN
    expected_h = erlang_c(PORTS, a) / (PORTS * mu - PER_HOUR)
    assert abs(mean - expected_h) < 4 * se, (mean, expected_h, se)
    # Little's law on the recorded times: time-average queue length = arrival rate × mean wait.
    horizon_s = BATCH_DAYS * BATCHES * 86400
    queued_until = np.where(plugged, sessions["plug_t_s"], horizon_s)
    lq = (queued_until - sessions["arrival_t_s"]).sum() / horizon_s
    lam_per_s = len(sessions) / horizon_s
    assert math.isclose(lq, lam_per_s * (queued_until - sessions["arrival_t_s"]).mean(), rel_tol=1e-9)
    assert abs(lq - PER_HOUR * expected_h) < 4 * PER_HOUR * se
