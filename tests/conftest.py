"""Shared fixtures: small scenarios built from dicts, and a runner."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sim.config import Scenario, validate_data

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
