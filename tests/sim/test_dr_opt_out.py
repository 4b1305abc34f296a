"""Declining a demand-response event: the OptOutDemandResponse command, its record and its effect on compliance."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.engine import simulate
from sim.managers import build_manager
from sim.managers.base import DemandResponseNotified, DemandResponseStarted, OptOutDemandResponse
from sim.results import write_results
from tests.conftest import make_scenario

CAP_KW = 20.0


def _scenario(opt_out_allowed: bool):
    return make_scenario(
        seed=3,
        horizon_days=2,
        manager={"kind": "equal_share"},
        network={"sites": [{"id": "a", "lat": 0, "lon": 0, "capacity_kw": 400, "chargers": [
            {"model": "ac", "count": 8, "power_kw": 22, "current": "ac"}]}]},
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 2.0},
                 "dwell_min": {"dist": "uniform", "low": 240, "high": 600}, "target_soc_frac": 0.95}],
        grid={"demand_response": {"events": [{"start": "2026-03-02T14:00:00+01:00", "duration_min": 240,
                                              "notify_min": 60, "cap_kw": CAP_KW,
                                              "opt_out_allowed": opt_out_allowed}]}},
    )  # fmt: skip


class _Declines:
    """equal_share that declines every demand-response event when it is announced, once it has begun, or both."""

    def __init__(self, scenario, when: str) -> None:
        self.inner = build_manager(scenario.manager)
        self.when = when
        self.event_id: int | None = None

    def handle(self, event, network):
        commands = list(self.inner.handle(event, network))
        if isinstance(event, DemandResponseNotified):
            self.event_id = event.event_id
            if self.when in ("notified", "twice"):
                commands.append(OptOutDemandResponse(event.site_id, event.event_id))
        if isinstance(event, DemandResponseStarted) and self.when in ("started", "twice"):
            assert self.event_id is not None
            commands.append(OptOutDemandResponse(event.site_id, self.event_id))
        return commands


def _open_caps_kw(run, t: float) -> float:
    """Sum of the caps of the charging intervals open at `t` (the power the chargers were allowed)."""
    iv = run.intervals
    caps = np.array([run.profiles[k].cap_kw for k in iv["profile"]])
    return float(caps[(iv["t0_s"] <= t) & (t < iv["t1_s"])].sum())


def _window_load_kw(run) -> list[float]:
    a, b = run.dr["start_t_s"][0], run.dr["end_t_s"][0]
    iv = run.intervals
    changes = np.unique(np.concatenate([[a], iv["t0_s"][(iv["t0_s"] > a) & (iv["t0_s"] < b)]]))
    return [_open_caps_kw(run, t) for t in changes]


@pytest.mark.parametrize("when", ["notified", "started", "twice"])
def test_an_allowed_opt_out_lifts_the_cap_and_is_recorded(when, tmp_path):
    """Opting out lifts the cap (never applied, or lifted at once) and dr_events.parquet says so; twice is once."""
    scenario = _scenario(opt_out_allowed=True)
    held = simulate(scenario)
    assert max(_window_load_kw(held)) <= CAP_KW * (1 + 1e-9)
    run = simulate(scenario, manager=_Declines(scenario, when))
    assert max(_window_load_kw(run)) > CAP_KW, "the site drew above the cap it declined"
    write_results(run, tmp_path / "out")
    dr = pd.read_parquet(tmp_path / "out" / "dr_events.parquet")
    assert dr["opted_out"].tolist() == [True]
    assert dr["opt_outs_refused"].tolist() == [0]
    expected_t = dr["start_t_s"][0] if when == "started" else dr["notify_t_s"][0]  # the first one counts
    assert dr["opt_out_t_s"][0] == expected_t
    if when != "started":  # never in force: no interval to judge
        assert math.isnan(dr["compliance_pct"][0])
    grid = json.loads((tmp_path / "out" / "kpis.json").read_text())["grid"]["network"]
    assert grid["dr_events"] == 1
    assert grid["dr_opted_out"] == 1
    assert grid["dr_compliance_pct"] is None, "an opted-out event is not counted as held"


def test_an_opt_out_the_event_does_not_allow_is_refused_and_the_cap_holds(tmp_path):
    """Without opt_out_allowed the opt-out is refused, recorded, and the cap holds throughout."""
    scenario = _scenario(opt_out_allowed=False)
    run = simulate(scenario, manager=_Declines(scenario, "started"))
    assert max(_window_load_kw(run)) <= CAP_KW * (1 + 1e-9)
    write_results(run, tmp_path / "out")
    dr = pd.read_parquet(tmp_path / "out" / "dr_events.parquet")
    assert dr["opted_out"].tolist() == [False]
    assert dr["opt_outs_refused"].tolist() == [1]
    assert dr["compliance_pct"][0] == pytest.approx(100.0)
