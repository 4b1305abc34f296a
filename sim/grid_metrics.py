"""Grid results: the 15-minute series behind the meter, demand-response compliance, energy cost.

PV and the battery act on charging in the run (`sim.behind_meter`); the battery's power
is recorded as a step series (`storage.parquet`) and PV is a step series of the scenario,
so both are integrated exactly into the 15-minute bins. The site's grid import is
EV load − PV − battery. Energy is paid on import at the price in force at the start of
each 15 minutes, demand charges on each calendar month's highest 15-minute import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.behind_meter import pv_steps
from sim.engine import RunTables
from sim.metrics import BIN_S
from sim.units import S_PER_H
from sim.wallclock import WallClock

__all__ = ["OVERLOAD_TOL_KW", "dr_frame", "grid_kpis", "step_integral", "storage_frame", "with_grid_columns"]

_DT_H = BIN_S / 3600.0
OVERLOAD_TOL_KW = 1e-3
"""A 15-minute interval is overloaded when its mean grid import exceeds the site limit by more than 1 W."""


def step_integral(t_s: np.ndarray, value: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    """∫₀ᵗ of a step function at each time in `at_s`: `value[k]` holds from `t_s[k]` (the last of equal times wins).

    `t_s` is sorted and starts at 0.
    """
    t_s, value = np.asarray(t_s, dtype=float), np.asarray(value, dtype=float)
    last = np.r_[t_s[1:] != t_s[:-1], True]
    t_s, value = t_s[last], value[last]
    cum = np.r_[0.0, np.cumsum(value[:-1] * np.diff(t_s))]
    k = np.clip(np.searchsorted(t_s, at_s, side="right") - 1, 0, len(t_s) - 1)
    return cum[k] + value[k] * (at_s - t_s[k])


def storage_frame(run: RunTables) -> pd.DataFrame:
    """The batteries' power (+ discharging) from `t_s` until the site's next row, and their energy at `t_s`."""
    st = run.storage
    names = [s.site_id for s in run.sites]
    if st is None or not len(st["site"]):
        return pd.DataFrame({"site_id": pd.Categorical([], categories=names), "t_s": np.zeros(0),
                             "power_kw": np.zeros(0), "energy_kwh": np.zeros(0)})  # fmt: skip
    order = np.argsort(st["site"], kind="stable")
    return pd.DataFrame(
        {
            "site_id": pd.Categorical.from_codes(st["site"][order], categories=pd.Index(names, dtype=str)),
            "t_s": st["t_s"][order],
            "power_kw": st["power_kw"][order],
            "energy_kwh": st["energy_kwh"][order],
        }
    )


def _bin_means(t_s: np.ndarray, value: np.ndarray, bins_t_s: np.ndarray, horizon_s: float) -> np.ndarray:
    """Mean of a step function over each 15-minute bin starting at `bins_t_s` (the last bin may end at the horizon)."""
    ends = np.minimum(bins_t_s + BIN_S, horizon_s)
    return (step_integral(t_s, value, ends) - step_integral(t_s, value, bins_t_s)) / (ends - bins_t_s)


def _battery_energy_at(rows: pd.DataFrame, eta: float, at_s: np.ndarray) -> np.ndarray:
    """A battery's energy at each time in `at_s`, carried from its last row at or before it."""
    t, p, e = rows["t_s"].to_numpy(), rows["power_kw"].to_numpy(), rows["energy_kwh"].to_numpy()
    k = np.clip(np.searchsorted(t, at_s, side="right") - 1, 0, len(t) - 1)
    dt_h = (at_s - t[k]) / S_PER_H
    return e[k] - np.where(p[k] > 0, p[k] / eta, p[k] * eta) * dt_h


def with_grid_columns(run: RunTables, load: pd.DataFrame, storage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add limit, DR cap, price, PV, battery and grid import columns to the 15-minute `load`, in place.

    `storage` is `storage_frame(run)` (built here when not given).
    """
    assert run.prices is not None
    scenario = run.scenario
    horizon_s = scenario.horizon_s
    storage = storage_frame(run) if storage is None else storage
    clock = WallClock.of(scenario)
    t = load["t_s"].to_numpy()
    site_index = load["site_id"].cat.codes.to_numpy()
    limit = np.array([s.grid_limit_kw for s in run.sites])[site_index]
    dr_cap = np.full(len(load), np.nan)
    if run.dr is not None:
        for k, a, b, cap in zip(run.dr["site"], run.dr["start_t_s"], run.dr["end_t_s"], run.dr["cap_kw"], strict=True):
            if cap == np.inf:  # an increase event caps nothing
                continue
            inside = (site_index == k) & (t + BIN_S > a) & (t < b)
            dr_cap[inside] = np.fmin(dr_cap[inside], cap)
    pv = np.zeros(len(load))
    storage_kw = np.zeros(len(load))
    storage_kwh = np.full(len(load), np.nan)
    ev_kw = load["power_kw"].to_numpy()
    by_site = storage.groupby("site_id", observed=False).indices
    for k, site in enumerate(run.sites):
        cfg = scenario.grid.sites.get(site.site_id)
        if cfg is None:
            continue
        rows = site_index == k
        if cfg.pv is not None:
            pv_t, pv_kw = pv_steps(cfg.pv, clock, horizon_s)
            pv[rows] = _bin_means(np.asarray(pv_t), np.asarray(pv_kw), t[rows], horizon_s)
        if cfg.storage is not None:
            st = storage.iloc[by_site[site.site_id]]
            storage_kw[rows] = _bin_means(st["t_s"].to_numpy(), st["power_kw"].to_numpy(), t[rows], horizon_s)
            eta = float(np.sqrt(cfg.storage.round_trip_efficiency))
            storage_kwh[rows] = _battery_energy_at(st, eta, np.minimum(t[rows] + BIN_S, horizon_s))
    # Added in place: the frame is the caller's fresh table, and a copy of a year of 15-minute rows is large.
    # Setting a column copies the array, so each local array is dropped once the frame has its copy.
    grid_kw = ev_kw - pv - storage_kw
    load["limit_kw"] = limit
    del limit
    load["dr_cap_kw"] = dr_cap
    del dr_cap
    load["price_per_kwh"] = run.prices.at_many(t)
    load["pv_kw"] = pv
    del pv
    load["storage_kw"] = storage_kw
    del storage_kw
    load["storage_energy_kwh"] = storage_kwh
    del storage_kwh
    load["grid_kw"] = grid_kw
    return load


def dr_frame(run: RunTables, steps: pd.DataFrame, load: pd.DataFrame) -> pd.DataFrame:
    """One row per demand-response event and site: the cap against the load while it was in force.

    The cap is in force from the event's start to its end, or to the moment a manager (or the
    OpenADR VEN) opted out (`opt_out_t_s`; an event declined before its start never applies).
    `max_kw` is the highest EV load at any change of the load while it was in force;
    `compliance_pct` the share of those whole 15-minute intervals whose mean grid import stayed
    within the cap (empty when no whole interval falls inside). `opt_outs_refused` counts the
    opt-outs asked for but refused (the event did not allow it). With increase events (a
    `min_kw` the site should draw at least, `cap_kw` inf) the frame has a `min_kw` column
    (0 for the other events), and their compliance is the share of those intervals whose mean
    grid import reached `min_kw`.
    """
    assert run.dr is not None
    d = run.dr
    opt = run.dr_opt_outs or {"t_s": np.zeros(0), "event_id": np.zeros(0, int), "site": np.zeros(0, int),
                              "accepted": np.zeros(0, int)}  # fmt: skip
    rows = []
    columns = ("event_id", "site", "notify_t_s", "start_t_s", "end_t_s", "cap_kw", "opt_out", "min_kw")
    for event_id, k, notify, a, b, cap, opt_out, min_kw in zip(*(d[c] for c in columns), strict=True):
        site = run.sites[k]
        mine = (opt["event_id"] == event_id) & (opt["site"] == k)
        accepted = mine & (opt["accepted"] == 1)
        opt_out_t = float(opt["t_s"][accepted].min()) if accepted.any() else np.nan
        in_force_end = min(b, max(a, opt_out_t)) if accepted.any() else b
        st = steps[steps["site_id"] == site.site_id]
        t, p = st["t_s"].to_numpy(), st["power_kw"].to_numpy()
        before = np.searchsorted(t, a, side="right") - 1  # the step in force when the event starts
        inside = (t >= a) & (t < in_force_end)
        powers = np.concatenate([p[max(before, 0) : max(before, 0) + 1], p[inside]]) if in_force_end > a else p[:0]
        ld = load[(load["site_id"] == site.site_id) & (load["t_s"] >= a - 1e-9)
                  & (load["t_s"] + BIN_S <= in_force_end + 1e-9)]  # fmt: skip
        grid = ld["grid_kw"].to_numpy()
        kept = grid >= min_kw * (1 - 1e-9) - 1e-9 if min_kw > 0 else grid <= cap * (1 + 1e-9) + 1e-9
        rows.append({
            "event_id": int(event_id), "site_id": site.site_id, "notify_t_s": notify, "start_t_s": a, "end_t_s": b,
            "cap_kw": cap, "opt_out_allowed": bool(opt_out), "opted_out": bool(accepted.any()),
            "opt_out_t_s": opt_out_t, "opt_outs_refused": int((mine & (opt["accepted"] == 0)).sum()),
            "max_kw": float(powers.max()) if len(powers) else 0.0,
            "mean_grid_kw": float(grid.mean()) if len(grid) else np.nan,
            "compliance_pct": float(100.0 * kept.mean()) if len(grid) else np.nan, "min_kw": float(min_kw),
        })  # fmt: skip
    names = ["event_id", "site_id", "notify_t_s", "start_t_s", "end_t_s", "cap_kw", "opt_out_allowed", "opted_out",
             "opt_out_t_s", "opt_outs_refused", "max_kw", "mean_grid_kw", "compliance_pct"]  # fmt: skip
    if (d["min_kw"] > 0).any():  # increase events: a column of their own
        names.append("min_kw")
    return pd.DataFrame(rows, columns=names)


def _dr_kpis(dr: pd.DataFrame) -> dict[str, Any]:
    """Events, opt-outs and compliance: compliance over the events not opted out, which held their cap throughout."""
    held = dr[~dr["opted_out"].astype(bool)]
    return {
        "dr_events": len(dr),
        "dr_opted_out": int(dr["opted_out"].sum()),
        "dr_opt_outs_refused": int(dr["opt_outs_refused"].sum()),
        "dr_compliance_pct": float(held["compliance_pct"].mean()) if held["compliance_pct"].notna().any() else None,
    }


def _site_kpis(ld: pd.DataFrame, months: np.ndarray, rate_per_kw_month: float, horizon_s: float) -> dict[str, Any]:
    ev = ld["power_kw"].to_numpy()
    grid = ld["grid_kw"].to_numpy()
    pv = ld["pv_kw"].to_numpy()
    pv_kwh = float(pv.sum() * _DT_H)
    export_kwh = float(np.maximum(-grid, 0.0).sum() * _DT_H)
    monthly_peak = pd.Series(np.maximum(grid, 0.0)).groupby(months).max()
    excess = grid - ld["limit_kw"].to_numpy()
    over = excess > OVERLOAD_TOL_KW
    width_min = (np.minimum(ld["t_s"].to_numpy() + BIN_S, horizon_s) - ld["t_s"].to_numpy()) / 60.0
    return {
        "load_factor": float(ev.mean() / ev.max()) if len(ev) and ev.max() > 0 else 0.0,
        "grid_peak_kw": float(grid.max()) if len(grid) else 0.0,
        "grid_import_kwh": float(np.maximum(grid, 0.0).sum() * _DT_H),
        "energy_cost": float((np.maximum(grid, 0.0) * ld["price_per_kwh"].to_numpy()).sum() * _DT_H),
        "demand_charge": float(monthly_peak.sum() * rate_per_kw_month),
        "grid_export_kwh": export_kwh,
        "pv_generation_kwh": pv_kwh,
        "pv_used_kwh": pv_kwh - export_kwh if pv_kwh > 0 else 0.0,
        "pv_self_consumption": (pv_kwh - export_kwh) / pv_kwh if pv_kwh > 0 else None,
        "overload_minutes": float(width_min[over].sum()),
        "overload_max_excess_kw": float(excess[over].max()) if over.any() else 0.0,
    }


def _storage_kpis(rows: pd.DataFrame, capacity_kwh: float, horizon_s: float) -> dict[str, Any]:
    """Energy out of and into one battery over the run, exactly from its power steps."""
    t, p = rows["t_s"].to_numpy(), rows["power_kw"].to_numpy()
    end = np.array([horizon_s])
    out_kwh = float(step_integral(t, np.maximum(p, 0.0), end)[0]) / 3600.0
    in_kwh = float(step_integral(t, np.maximum(-p, 0.0), end)[0]) / 3600.0
    return {
        "storage_discharged_kwh": out_kwh,
        "storage_charged_kwh": in_kwh,
        "storage_cycles": out_kwh / capacity_kwh,
    }


def grid_kpis(
    run: RunTables, load: pd.DataFrame, sessions: pd.DataFrame, dr: pd.DataFrame, storage: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The `grid` section of kpis.json: per site and for the network. `storage` is `storage_frame(run)`."""
    scenario = run.scenario
    clock = WallClock.of(scenario)
    storage = storage_frame(run) if storage is None else storage
    by_site = storage.groupby("site_id", observed=False).indices
    rate = scenario.grid.demand_charge_per_kw_month
    sites = {}
    for site in run.sites:
        ld = load[load["site_id"] == site.site_id]
        months = clock.timestamps(ld["t_s"].to_numpy()).strftime("%Y-%m").to_numpy()  # local calendar months
        cfg = scenario.grid.sites.get(site.site_id)
        site_rate = cfg.demand_charge_per_kw_month if cfg is not None else None
        k = _site_kpis(ld, months, rate if site_rate is None else site_rate, scenario.horizon_s)
        if cfg is not None and cfg.storage is not None:
            k.update(_storage_kpis(storage.iloc[by_site[site.site_id]], cfg.storage.capacity_kwh, scenario.horizon_s))
        else:
            k.update(storage_discharged_kwh=0.0, storage_charged_kwh=0.0)
        k.update(_dr_kpis(dr[dr["site_id"] == site.site_id]))
        sites[site.site_id] = k
    served = sessions["outcome"] == "served"  # two columns of the served rows, not a copy of the table
    kept = sessions["energy_delivered_kwh"][served]  # with V2G: less what was discharged
    if "energy_discharged_kwh" in sessions:
        kept = kept - sessions["energy_discharged_kwh"][served]
    unmet = sessions["energy_requested_kwh"][served] - kept
    total = {key: sum(s[key] for s in sites.values()) for key in
             ("grid_import_kwh", "grid_export_kwh", "energy_cost", "demand_charge", "pv_generation_kwh", "pv_used_kwh",
              "storage_discharged_kwh", "storage_charged_kwh")}  # fmt: skip
    network_grid = load.groupby("t_s")["grid_kw"].sum()
    return {
        "network": {
            **total,
            "grid_peak_kw": float(network_grid.max()) if len(network_grid) else 0.0,
            "overload_minutes": float(sum(k["overload_minutes"] for k in sites.values())),
            "overload_max_excess_kw": max((k["overload_max_excess_kw"] for k in sites.values()), default=0.0),
            "sites_overloaded": sum(1 for k in sites.values() if k["overload_minutes"] > 0),
            "unmet_energy_kwh": float(unmet.sum()),
            "unmet_sessions_share": float((unmet > 0.01).mean()) if len(unmet) else 0.0,
            **_dr_kpis(dr),
        },
        "sites": sites,
    }
