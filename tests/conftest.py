"""Shared fixtures: small scenarios built from dicts, and a runner."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

from sim.config import Scenario, validate_data

FAST_EXAMPLES = 20
settings.register_profile("fast", max_examples=FAST_EXAMPLES)
"""The fast lane's Hypothesis profile (`make test-fast` passes ``--hypothesis-profile=fast``): few examples."""


def examples(n: int) -> int:
    """`n` Hypothesis examples for a test that asks for many; at most `FAST_EXAMPLES` in the fast lane."""
    return min(n, FAST_EXAMPLES) if settings.default.max_examples == FAST_EXAMPLES else n


BASE: dict[str, Any] = {
    "name": "test",
    "seed": 7,
    "start": "2026-03-02T00:00:00+01:00",
    "horizon_days": 2,
    "network": {
        "sites": [
            {
                "id": "a",
                "lat": 52.0,
                "lon": 4.0,
                "capacity_kw": 100.0,
                "chargers": [
                    {"model": "ac", "count": 2, "connectors": 2, "power_kw": 11.0, "current": "ac"},
                    {"model": "dc", "count": 1, "connectors": 2, "power_kw": 150.0, "current": "dc", "shared": True},
                ],
            }
        ]
    },
    "fleet": [
        {"preset": "tesla_model_3_lr", "share": 2},
        {"preset": "nissan_leaf_40", "share": 1},
        {"preset": "renault_zoe_ze50", "share": 1},
    ],
    "demand": [
        {
            "kind": "synthetic",
            "site": "a",
            "rate": {"kind": "constant", "per_hour": 2.0},
            "dwell_min": {"dist": "lognormal", "median": 90, "sigma": 0.5},
        }
    ],
    "tariff": {"price_per_kwh": 0.5, "session_fee": 1.0},
    "manager": {"kind": "equal_share"},
}


def scenario_data(**changes: Any) -> dict[str, Any]:
    """A copy of `BASE` with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return data


def make_scenario(**changes: Any) -> Scenario:
    """A validated scenario: `BASE` with top-level keys replaced."""
    return validate_data(scenario_data(**changes), "test", Path("."))


def one_site(ports: int, per_hour: float, dwell: dict[str, Any], **demand: Any) -> dict[str, Any]:
    """Network and demand of one site with `ports` single-connector 11 kW AC chargers."""
    return {
        "network": {
            "sites": [
                {
                    "id": "q",
                    "lat": 0.0,
                    "lon": 0.0,
                    "capacity_kw": 1000.0,
                    "chargers": [{"model": "ac", "count": ports, "power_kw": 11.0, "current": "ac"}],
                }
            ]
        },
        "demand": [
            {
                "kind": "synthetic",
                "site": "q",
                "rate": {"kind": "constant", "per_hour": per_hour},
                "dwell_min": dwell,
                **demand,
            }
        ],
    }


@pytest.fixture
def scenarios_dir() -> Path:
    """The shipped example scenarios."""
    return Path(__file__).resolve().parents[1] / "scenarios"


def check_ev_curve(run: Any) -> int:
    """Every charging interval follows its own EV's charge curve; returns the number of intervals checked.

    Recomputed from the recorded rows, not from the engine's state: each interval is matched to the
    session plugged into its connector at the time, and then
    - its profile is that EV's battery (capacity) and never draws more than the EV's own curve
      (DC: the model's curve at that state of charge; AC: the on-board charger) — both are
      piecewise linear in SoC, so checking every breakpoint inside the interval suffices;
    - the state of charge is continuous: the first interval starts at the session's `soc_in_frac`,
      each next one where the previous ended, and the last ends at `soc_out_frac`;
    - the intervals' energies add up to the session's `energy_delivered_kwh`.
    """
    s, iv = run.sessions, run.intervals
    horizon_s = run.scenario.horizon_s
    depart = np.where(np.isnan(s["departure_t_s"]), horizon_s, s["departure_t_s"])
    order = np.lexsort((iv["t0_s"], iv["evse"]))
    soc_now: dict[int, float] = {}
    energy: dict[int, float] = {}
    for k in order:
        evse, t0, t1 = iv["evse"][k], iv["t0_s"][k], iv["t1_s"][k]
        (match,) = np.flatnonzero((s["evse"] == evse) & (s["plug_t_s"] <= t0) & (t0 < depart))
        model = run.models[s["model"][match]]
        prof = run.profiles[iv["profile"][k]]
        assert prof.capacity_kwh == model.capacity_kwh
        soc0, soc1 = prof.soc_at(iv["tau0_s"][k]), prof.soc_at(iv["tau0_s"][k] + t1 - t0)
        expected0 = soc_now.get(match, s["soc_in_frac"][match])
        assert abs(soc0 - expected0) < 1e-9, ("SoC jumps between intervals", match, soc0, expected0)
        soc_now[match] = soc1
        energy[match] = energy.get(match, 0.0) + (soc1 - soc0) * model.capacity_kwh
        curve = np.array(model.dc_curve)
        points = np.concatenate([[soc0, soc1], curve[:, 0], np.array(prof.soc)])
        points = points[(points >= soc0) & (points <= soc1)]
        for soc in points:
            ev_kw = np.interp(soc, curve[:, 0], curve[:, 1]) if run.evses[evse].dc else model.ac_max_kw
            assert prof.power_at(min(soc, 1.0)) <= ev_kw * (1 + 1e-9) + 1e-9, (match, soc, prof.cap_kw, ev_kw)
    for match, soc in soc_now.items():
        assert abs(soc - s["soc_out_frac"][match]) < 1e-9, ("final SoC", match)
        assert abs(energy[match] - s["energy_delivered_kwh"][match]) < 1e-6, ("energy", match)
    return len(order)
