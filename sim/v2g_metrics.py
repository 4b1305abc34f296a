"""Bidirectional charging (V2G) results: the discharges table, and (with V2G configured) its KPIs.

Each row of ``discharges.parquet`` is one stretch a session discharged at constant power
(`power_kw` < 0) from `t0_s` to `t1_s`, its state of charge falling linearly from `soc0_frac`
to `soc1_frac`; energy out of the battery is ``−power_kw × (t1_s − t0_s) / 3600``.

The KPIs (`v2g` in kpis.json, defined in docs/kpis.md) count the energy discharged, what the
drivers are paid for it (the site tariff's `v2g_remuneration_per_kwh`, time-of-use periods
included), and the grid side of each 15 minutes of ``load.parquet``: energy exported (negative
`grid_kw`), what the operator is paid for it (`grid.export_price` at the start of the 15 minutes,
as energy cost is charged) and the minutes over the site's export limit.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.grid import PriceSignal
from sim.metrics import BIN_S, discharges_of
from sim.tariffs import TariffSchedule
from sim.v2g import v2g_configured
from sim.wallclock import WallClock

__all__ = ["EXPORT_TOL_KW", "V2G_FILES", "discharges_frame", "remuneration", "v2g_configured", "v2g_kpis"]

EXPORT_TOL_KW = 1e-3
"""A 15-minute interval is over the export limit when its mean export exceeds it by more than 1 W."""
V2G_FILES = ("discharges.parquet",)


def discharges_frame(run: RunTables) -> pd.DataFrame:
    """One row per discharging stretch, in the order they ended; the recorded codes and their ids."""
    d = discharges_of(run)
    if d is None:
        d = {k: np.zeros(0) for k in ("t0_s", "t1_s", "soc0_frac", "soc1_frac", "power_kw")} | {
            k: np.zeros(0, dtype=np.int64) for k in ("site", "evse", "session_id")
        }
    sites = pd.Index([s.site_id for s in run.sites], dtype=str)
    ports = pd.Index([p.evse_id for p in run.evses], dtype=str)
    return pd.DataFrame(
        {
            "t0_s": d["t0_s"],
            "t1_s": d["t1_s"],
            "soc0_frac": d["soc0_frac"],
            "soc1_frac": d["soc1_frac"],
            "power_kw": d["power_kw"],
            "site": d["site"].astype(np.int64),
            "evse": d["evse"].astype(np.int64),
            "session_id": d["session_id"].astype(np.int64),
            "site_id": pd.Categorical.from_codes(d["site"].astype(np.int64), categories=sites),
            "evse_id": pd.Categorical.from_codes(d["evse"].astype(np.int64), categories=ports),
            "energy_kwh": -d["power_kw"] * (d["t1_s"] - d["t0_s"]) / 3600.0,
        }
    )


def remuneration(run: RunTables) -> np.ndarray:
    """What the driver is paid for each discharge row: energy × the site tariff's V2G rate, split at its periods."""
    d = discharges_of(run)
    if d is None:
        return np.zeros(0)
    scenario = run.scenario
    clock = WallClock.of(scenario)
    layouts: dict = {}
    schedules = [TariffSchedule(site.tariff or scenario.tariff, clock, layouts) for site in scenario.network.sites]
    out = np.zeros(len(d["t0_s"]))
    for i, (k, t0, t1, kw) in enumerate(zip(d["site"], d["t0_s"], d["t1_s"], d["power_kw"], strict=True)):
        sched = schedules[int(k)]
        cuts = [float(t0), *sched.changes(float(t0), float(t1)), float(t1)]
        out[i] = sum(sched.at(0.5 * (a + b)).v2g_per_kwh * -kw * (b - a) / 3600.0 for a, b in pairwise(cuts))
    return out


def _site_grid_kpis(ld: pd.DataFrame, export_price: PriceSignal | None, limit_kw: float, horizon_s: float) -> dict:
    t = ld["t_s"].to_numpy()
    width_h = (np.minimum(t + BIN_S, horizon_s) - t) / 3600.0
    export_kw = np.maximum(-ld["grid_kw"].to_numpy(), 0.0)
    price = export_price.at_many(t) if export_price is not None else np.zeros(len(t))
    excess = export_kw - limit_kw
    over = excess > EXPORT_TOL_KW
    return {
        "export_kwh": float((export_kw * width_h).sum()),
        "export_revenue": float((export_kw * width_h * price).sum()),
        "export_limit_minutes": float(width_h[over].sum() * 60.0),
        "export_limit_max_excess_kw": float(excess[over].max()) if over.any() else 0.0,
    }


def v2g_kpis(run: RunTables, load: pd.DataFrame) -> dict[str, Any]:
    """The `v2g` section of kpis.json, per site and for the network; `load` is the 15-minute load with `grid_kw`."""
    scenario = run.scenario
    horizon_s = scenario.horizon_s
    frame = discharges_frame(run)
    paid = remuneration(run)
    export_price = PriceSignal(scenario.grid.export_price, scenario) if scenario.grid.export_price else None
    sites: dict[str, Any] = {}
    for k, site in enumerate(run.sites):
        cfg = scenario.grid.sites.get(site.site_id)
        limit_kw = cfg.export_limit_kw if cfg is not None and cfg.export_limit_kw is not None else np.inf
        mine = (frame["site"] == k).to_numpy()
        sites[site.site_id] = {
            "energy_discharged_kwh": float(frame["energy_kwh"][mine].sum()),
            "sessions_discharged": int(frame["session_id"][mine].nunique()),
            "v2g_remuneration": round(float(paid[mine].sum()), 2),
            **_site_grid_kpis(load[load["site_id"] == site.site_id], export_price, limit_kw, horizon_s),
        }
    network = {
        "energy_discharged_kwh": float(frame["energy_kwh"].sum()),
        "sessions_discharged": int(frame["session_id"].nunique()),
        "v2g_remuneration": round(float(paid.sum()), 2),
        "export_kwh": float(sum(s["export_kwh"] for s in sites.values())),
        "export_revenue": round(float(sum(s["export_revenue"] for s in sites.values())), 2),
        "export_limit_minutes": float(sum(s["export_limit_minutes"] for s in sites.values())),
        "export_limit_max_excess_kw": max((s["export_limit_max_excess_kw"] for s in sites.values()), default=0.0),
        "sites_over_export_limit": sum(1 for s in sites.values() if s["export_limit_minutes"] > 0),
    }
    for s in sites.values():
        s["export_revenue"] = round(s["export_revenue"], 2)
    return {"network": network, "sites": sites}
