"""Grid results: the 15-minute series behind the meter, demand-response compliance, energy cost.

PV and the battery are dispatched on the 15-minute EV load (`sim.grid.dispatch_storage`);
the site's grid import is EV load − PV − battery. Energy is paid on import at the price in
force at the start of each 15 minutes, demand charges on each calendar month's highest
15-minute import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.grid import dispatch_storage
from sim.metrics import BIN_S
from sim.wallclock import WallClock

__all__ = ["dr_frame", "grid_kpis", "with_grid_columns"]

_DT_H = BIN_S / 3600.0


def with_grid_columns(run: RunTables, load: pd.DataFrame) -> pd.DataFrame:
    """Add limit, DR cap, price, PV, battery and grid import columns to the 15-minute `load`, in place."""
    assert run.prices is not None
    scenario = run.scenario
    start = scenario.start
    t = load["t_s"].to_numpy()
    local_h = ((start.hour + start.minute / 60 + t / 3600.0) % 24).astype(int)
    site_index = load["site_id"].cat.codes.to_numpy()
    limit = np.array([s.grid_limit_kw for s in run.sites])[site_index]
    dr_cap = np.full(len(load), np.nan)
    if run.dr is not None:
        for k, a, b, cap in zip(run.dr["site"], run.dr["start_t_s"], run.dr["end_t_s"], run.dr["cap_kw"], strict=True):
            inside = (site_index == k) & (t + BIN_S > a) & (t < b)
            dr_cap[inside] = np.fmin(dr_cap[inside], cap)
    pv = np.zeros(len(load))
    storage_kw = np.zeros(len(load))
    storage_kwh = np.full(len(load), np.nan)
    ev_kw = load["power_kw"].to_numpy()
    for k, site in enumerate(run.sites):
        cfg = scenario.grid.sites.get(site.site_id)
        if cfg is None:
            continue
        rows = site_index == k
        if cfg.pv is not None:
            pv[rows] = cfg.pv.peak_kw * np.asarray(cfg.pv.profile_by_hour)[local_h[rows]]
        if cfg.storage is not None:
            storage_kw[rows], storage_kwh[rows] = dispatch_storage(
                ev_kw[rows], pv[rows], cfg.storage, _DT_H, dr_cap[rows]
            )
    # Added in place: the frame is the caller's fresh table, and a copy of a year of 15-minute rows is large.
    load["limit_kw"] = limit
    load["dr_cap_kw"] = dr_cap
    load["price_per_kwh"] = run.prices.at_many(t)
    load["pv_kw"] = pv
    load["storage_kw"] = storage_kw
    load["storage_energy_kwh"] = storage_kwh
    load["grid_kw"] = ev_kw - pv - storage_kw
    return load


def dr_frame(run: RunTables, steps: pd.DataFrame, load: pd.DataFrame) -> pd.DataFrame:
    """One row per demand-response event and site: the cap against the load while it was in force.

    `max_kw` is the highest EV load at any change of the load inside the event;
    `compliance_pct` the share of the event's 15-minute intervals whose mean grid import
    stayed within the cap.
    """
    assert run.dr is not None
    d = run.dr
    rows = []
    columns = ("event_id", "site", "notify_t_s", "start_t_s", "end_t_s", "cap_kw", "opt_out")
    for event_id, k, notify, a, b, cap, opt_out in zip(*(d[c] for c in columns), strict=True):
        site = run.sites[k]
        st = steps[steps["site_id"] == site.site_id]
        t, p = st["t_s"].to_numpy(), st["power_kw"].to_numpy()
        before = np.searchsorted(t, a, side="right") - 1  # the step in force when the event starts
        inside = (t >= a) & (t < b)
        powers = np.concatenate([p[max(before, 0) : max(before, 0) + 1], p[inside]])
        ld = load[(load["site_id"] == site.site_id) & (load["t_s"] >= a - 1e-9) & (load["t_s"] + BIN_S <= b + 1e-9)]
        grid = ld["grid_kw"].to_numpy()
        rows.append({
            "event_id": int(event_id), "site_id": site.site_id, "notify_t_s": notify, "start_t_s": a, "end_t_s": b,
            "cap_kw": cap, "opt_out_allowed": bool(opt_out), "max_kw": float(powers.max()) if len(powers) else 0.0,
            "mean_grid_kw": float(grid.mean()) if len(grid) else np.nan,
            "compliance_pct": float(100.0 * (grid <= cap * (1 + 1e-9) + 1e-9).mean()) if len(grid) else np.nan,
        })  # fmt: skip
    names = ["event_id", "site_id", "notify_t_s", "start_t_s", "end_t_s", "cap_kw", "opt_out_allowed", "max_kw",
             "mean_grid_kw", "compliance_pct"]  # fmt: skip
    return pd.DataFrame(rows, columns=names)


def _site_kpis(ld: pd.DataFrame, months: np.ndarray, rate_per_kw_month: float) -> dict[str, Any]:
    ev = ld["power_kw"].to_numpy()
    grid = ld["grid_kw"].to_numpy()
    pv = ld["pv_kw"].to_numpy()
    storage = ld["storage_kw"].to_numpy()
    pv_kwh = float(pv.sum() * _DT_H)
    export_kwh = float(np.maximum(-grid, 0.0).sum() * _DT_H)
    monthly_peak = pd.Series(np.maximum(grid, 0.0)).groupby(months).max()
    capacity = ld["storage_energy_kwh"].notna().any()
    return {
        "load_factor": float(ev.mean() / ev.max()) if len(ev) and ev.max() > 0 else 0.0,
        "grid_peak_kw": float(grid.max()) if len(grid) else 0.0,
        "grid_import_kwh": float(np.maximum(grid, 0.0).sum() * _DT_H),
        "energy_cost": float((np.maximum(grid, 0.0) * ld["price_per_kwh"].to_numpy()).sum() * _DT_H),
        "demand_charge": float(monthly_peak.sum() * rate_per_kw_month),
        "pv_generation_kwh": pv_kwh,
        "pv_self_consumption": (pv_kwh - export_kwh) / pv_kwh if pv_kwh > 0 else None,
        "storage_discharged_kwh": float(np.maximum(storage, 0.0).sum() * _DT_H) if capacity else 0.0,
    }


def grid_kpis(run: RunTables, load: pd.DataFrame, sessions: pd.DataFrame, dr: pd.DataFrame) -> dict[str, Any]:
    """The `grid` section of kpis.json: per site and for the network."""
    scenario = run.scenario
    clock = WallClock.of(scenario)
    rate = scenario.grid.demand_charge_per_kw_month
    sites = {}
    for site in run.sites:
        ld = load[load["site_id"] == site.site_id]
        months = clock.timestamps(ld["t_s"].to_numpy()).strftime("%Y-%m").to_numpy()  # local calendar months
        cfg = scenario.grid.sites.get(site.site_id)
        site_rate = cfg.demand_charge_per_kw_month if cfg is not None else None
        k = _site_kpis(ld, months, rate if site_rate is None else site_rate)
        if cfg is not None and cfg.storage is not None:
            k["storage_cycles"] = k["storage_discharged_kwh"] / cfg.storage.capacity_kwh
        ev_dr = dr[dr["site_id"] == site.site_id]
        k["dr_events"] = len(ev_dr)
        k["dr_compliance_pct"] = float(ev_dr["compliance_pct"].mean()) if len(ev_dr) else None
        sites[site.site_id] = k
    served = sessions[sessions["outcome"] == "served"]
    unmet = served["energy_requested_kwh"] - served["energy_delivered_kwh"]
    total = {key: sum(s[key] for s in sites.values()) for key in
             ("grid_import_kwh", "energy_cost", "demand_charge", "pv_generation_kwh")}  # fmt: skip
    network_grid = load.groupby("t_s")["grid_kw"].sum()
    return {
        "network": {
            **total,
            "grid_peak_kw": float(network_grid.max()) if len(network_grid) else 0.0,
            "unmet_energy_kwh": float(unmet.sum()),
            "unmet_sessions_share": float((unmet > 0.01).mean()) if len(unmet) else 0.0,
            "dr_events": len(dr),
            "dr_compliance_pct": float(dr["compliance_pct"].mean()) if len(dr) else None,
        },
        "sites": sites,
    }
