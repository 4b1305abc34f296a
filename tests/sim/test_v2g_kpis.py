"""The V2G KPIs (docs/kpis.md, "Bidirectional charging (V2G)"), each recomputed from the written rows.

Closed forms where the run allows one: a single EV discharging at P for t hours alone on its site
gives back P·t kWh, is paid r·P·t, and exports P·t kWh earning the feed-in price times that.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.engine import simulate
from sim.managers.base import DemandResponseStarted, SessionStarted, SetPowerLimit
from sim.results import write_results
from tests.conftest import make_scenario

H = 3600.0
BIN_S = 900.0
LEAF_KWH = 39.0
P_KW = 5.0


class _Discharge:
    """Discharges every session at `P_KW` from its start; records the demand-response events it sees."""

    def __init__(self) -> None:
        self.dr: list[DemandResponseStarted] = []

    def handle(self, event, network):
        if isinstance(event, DemandResponseStarted):
            self.dr.append(event)
        if isinstance(event, SessionStarted):
            return [SetPowerLimit(event.evse_id, -P_KW)]
        return ()


def _scenario(tariff: dict[str, Any] | None = None, grid: dict[str, Any] | None = None, **changes: Any):
    """One bidirectional 11 kW port; the first Leaf (SoC 0.9, 33 h stay) holds it and discharges to SoC 0.3."""
    return make_scenario(
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 0.0,
                    "lon": 0.0,
                    "capacity_kw": 100.0,
                    "chargers": [{"model": "bi", "power_kw": 11.0, "current": "ac", "bidirectional": True}],
                }
            ]
        },  # fmt: skip
        fleet=[
            {
                "preset": "nissan_leaf_40",
                "share": 1,
                "iso15118_share": 1.0,
                "v2g": {"max_discharge_kw": 20.0, "min_soc_frac": 0.3},
            }
        ],  # fmt: skip
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 0.5},
                "dwell_min": 2000.0,
                "arrival_soc_frac": 0.9,
                "target_soc_frac": 0.9,
                "max_queue": 0,
            }
        ],  # fmt: skip
        tariff=tariff or {"price_per_kwh": 0.4},
        grid=grid or {},
        horizon_days=1,
        **changes,
    )


def _run(tmp_path: Path, sc, manager=None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    run = simulate(sc, manager=manager or _Discharge())
    out = tmp_path / "out"
    write_results(run, out)
    kpis = json.loads((out / "kpis.json").read_text())
    tables = {n: pd.read_parquet(out / f"{n}.parquet") for n in ("discharges", "load", "sessions", "dr_events")}
    return kpis, tables


def test_energy_discharged_is_p_times_t_and_counts_sessions(tmp_path):
    """One EV from 0.9 to its 0.3 minimum: 0.6 × 39 kWh = P·t, one session discharged."""
    kpis, t = _run(tmp_path, _scenario())
    d = t["discharges"]
    assert len(d) == 1
    energy = float((-d["power_kw"] * (d["t1_s"] - d["t0_s"]) / H).sum())
    assert energy == pytest.approx(0.6 * LEAF_KWH, rel=1e-12)
    assert kpis["v2g"]["network"]["energy_discharged_kwh"] == pytest.approx(energy, rel=1e-12)
    assert kpis["v2g"]["sites"]["a"]["energy_discharged_kwh"] == pytest.approx(energy, rel=1e-12)
    assert kpis["v2g"]["network"]["sessions_discharged"] == d["session_id"].nunique() == 1


def test_remuneration_is_rate_times_energy(tmp_path):
    """A flat 0.15 per kWh discharged: remuneration = 0.15 × 23.4 kWh."""
    kpis, _ = _run(tmp_path, _scenario(tariff={"price_per_kwh": 0.4, "v2g_remuneration_per_kwh": 0.15}))
    assert kpis["v2g"]["network"]["v2g_remuneration"] == round(0.15 * 0.6 * LEAF_KWH, 2)
    assert kpis["revenue"]["v2g_remuneration"] == kpis["v2g"]["network"]["v2g_remuneration"]


def test_remuneration_follows_time_of_use_periods(tmp_path):
    """A 0.50 morning rate (05:00-06:00 local) beside 0.10: each second of discharge is paid at its own rate."""
    tariff = {"price_per_kwh": 0.4, "v2g_remuneration_per_kwh": 0.10,
              "periods": [{"start": "05:00", "end": "06:00", "v2g_remuneration_per_kwh": 0.50}]}  # fmt: skip
    sc = _scenario(tariff=tariff)
    kpis, t = _run(tmp_path, sc)
    expected, in_period_s = 0.0, 0.0
    for t0, t1, kw in zip(t["discharges"]["t0_s"], t["discharges"]["t1_s"], t["discharges"]["power_kw"], strict=True):
        morning_s = sum(max(0.0, min(t1, d * 86400 + 6 * H) - max(t0, d * 86400 + 5 * H)) for d in range(2))
        expected += -kw / H * (0.50 * morning_s + 0.10 * (t1 - t0 - morning_s))
        in_period_s += morning_s
    assert sc.start.hour == 0  # the windows above count from a local midnight
    assert in_period_s > 0  # the discharge crosses a period edge
    assert kpis["v2g"]["network"]["v2g_remuneration"] == round(expected, 2)


def test_export_and_export_revenue_from_the_load_rows(tmp_path):
    """Alone on its site the discharge is all export: export = P·t, revenue = 0.08 × that; and from the bins."""
    grid = {"export_price": {"kind": "flat", "per_kwh": 0.08}}
    kpis, t = _run(tmp_path, _scenario(grid=grid))
    ld = t["load"]
    horizon_s = 86400.0
    width_h = (np.minimum(ld["t_s"] + BIN_S, horizon_s) - ld["t_s"]) / H
    export_kw = np.maximum(-ld["grid_kw"], 0.0)
    v = kpis["v2g"]["network"]
    assert v["export_kwh"] == pytest.approx(float((export_kw * width_h).sum()), rel=1e-12)
    assert v["export_kwh"] == pytest.approx(0.6 * LEAF_KWH, rel=1e-9)
    assert v["export_revenue"] == round(0.08 * 0.6 * LEAF_KWH, 2)
    r = kpis["revenue"]
    costs = r["energy_cost"] + r["demand_charge"] + r["maintenance_cost"]
    assert r["margin"] == pytest.approx(r["revenue"] + r["export_revenue"] - r["v2g_remuneration"] - costs, abs=1e-9)


def test_export_limit_minutes_are_the_bins_over_the_limit(tmp_path):
    """5 kW out under a 3 kW export limit: a bin is over when 5 kW × its share discharging > 3 kW."""
    grid = {"sites": {"a": {"export_limit_kw": 3.0}}}
    kpis, t = _run(tmp_path, _scenario(grid=grid))
    (t0, t1) = t["discharges"][["t0_s", "t1_s"]].to_numpy()[0]
    minutes, excess = 0.0, 0.0
    for b in range(96):
        share = max(0.0, min(t1, (b + 1) * BIN_S) - max(t0, b * BIN_S)) / BIN_S
        if P_KW * share - 3.0 > 1e-3:
            minutes += 15.0
            excess = max(excess, P_KW * share - 3.0)
    v = kpis["v2g"]["sites"]["a"]
    assert v["export_limit_minutes"] == pytest.approx(minutes)
    assert v["export_limit_max_excess_kw"] == pytest.approx(excess)
    assert kpis["v2g"]["network"]["sites_over_export_limit"] == 1


def test_increase_event_is_shown_and_its_compliance_measured(tmp_path):
    """A demand-response increase event (draw at least 4 kW): managers see it; compliance is bins with grid ≥ 4."""
    start = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    grid = {"demand_response": {"events": [{"start": start.isoformat(), "duration_min": 120, "min_kw": 4.0}]}}
    manager = _Discharge()
    kpis, t = _run(tmp_path, _scenario(grid=grid), manager)
    assert [(e.cap_kw, e.min_kw) for e in manager.dr] == [(math.inf, 4.0)]
    dr = t["dr_events"]
    assert list(dr["min_kw"]) == [4.0]
    ld = t["load"]
    inside = ld[(ld["t_s"] >= 10 * H) & (ld["t_s"] + BIN_S <= 12 * H)]
    assert dr["compliance_pct"][0] == pytest.approx(100.0 * (inside["grid_kw"] >= 4.0).mean())
    assert kpis["grid"]["network"]["dr_events"] == 1


def test_no_v2g_section_without_v2g(tmp_path):
    """A scenario without any V2G setting writes no v2g section and no discharges table."""
    run = simulate(make_scenario(horizon_days=0.5))
    write_results(run, tmp_path / "out")
    assert "v2g" not in json.loads((tmp_path / "out" / "kpis.json").read_text())
    assert not (tmp_path / "out" / "discharges.parquet").exists()
