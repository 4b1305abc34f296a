"""Per-phase load and unbalance of the sites that declare phases: power on L1, L2, L3 from the recorded intervals.

A single-phase connector draws its whole power on its phase, any other connector (three-phase
AC, and DC, whose rectifier draws on all three) a third on each. The KPIs are defined in
docs/kpis.md (Grid and load).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.network_plan import SitePlan

__all__ = ["add_phase_kpis", "has_phases", "phase_energy_kwh", "phase_kpis", "phase_load_steps"]


def has_phases(run: RunTables, site: SitePlan) -> bool:
    """Whether `site` has per-phase limits or single-phase connectors: the sites phase KPIs are written for."""
    return site.phase_limit_kw < np.inf or any(p.phase is not None for p in run.network.ports if p.site is site)


def phase_load_steps(run: RunTables, site: SitePlan, panel: int | None = None) -> pd.DataFrame:
    """Power (kW) on L1, L2 and L3 of `site` (or of its `panel`) after every change, exactly from the intervals."""
    iv = run.intervals
    rows = np.flatnonzero(iv["site"] == site.index)
    if panel is not None:
        on_panel = np.array([p.panel == panel and p.site is site for p in run.network.ports])
        rows = rows[on_panel[iv["evse"][rows]]]
    share = np.array([p.phase_share for p in run.network.ports]).reshape(-1, 3)
    t0, t1 = iv["t0_s"][rows], iv["t1_s"][rows]
    keys = np.unique(np.concatenate([[0.0], t0, t1]))
    power = np.zeros((len(keys), 3))
    for p in np.unique(iv["profile"][rows]).tolist():
        prof = run.profiles[p]
        mine = rows[iv["profile"][rows] == p]
        a, b = iv["t0_s"][mine], iv["t1_s"][mine]
        first, last = np.searchsorted(keys, a), np.searchsorted(keys, b)
        count = last - first
        r = np.repeat(np.arange(len(mine)), count)  # one row per (interval, breakpoint inside it)
        k = first[r] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        soc = prof.soc_at_array(iv["tau0_s"][mine][r] + keys[k] - a[r])
        kw = prof.power_at_array(soc)
        weights = share[iv["evse"][mine][r]]
        for phase in range(3):
            power[:, phase] += np.bincount(k, weights=kw * weights[:, phase], minlength=len(keys))
    return pd.DataFrame({"t_s": keys, "l1_kw": power[:, 0], "l2_kw": power[:, 1], "l3_kw": power[:, 2]})


def phase_kpis(run: RunTables, steps: pd.DataFrame, energy_kwh: np.ndarray, site: SitePlan) -> dict[str, object]:
    """Per-phase KPIs of `site` from its `phase_load_steps` and its energy per phase over the run."""
    power = steps[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    mean_kwh = float(energy_kwh.mean())
    limit_kw = site.phase_limit_kw
    return {
        "phase_energy_kwh": [float(e) for e in energy_kwh],
        "phase_peak_kw": [float(x) for x in power.max(axis=0)] if len(power) else [0.0, 0.0, 0.0],
        "phase_unbalance_pct": (float(energy_kwh.max()) - mean_kwh) / mean_kwh * 100.0 if mean_kwh > 0 else 0.0,
        "phase_limit_kw": limit_kw if limit_kw < np.inf else None,
        "phase_max_excess_kw": max(float((power - limit_kw).max()), 0.0) if len(power) and limit_kw < np.inf else 0.0,
    }


def phase_energy_kwh(run: RunTables, site: SitePlan) -> np.ndarray:
    """Energy (kWh) each phase of `site` carried over the run: the sessions' interval energy split by phase share."""
    iv = run.intervals
    rows = np.flatnonzero(iv["site"] == site.index)
    share = np.array([p.phase_share for p in run.network.ports]).reshape(-1, 3)
    out = np.zeros(3)
    for p in np.unique(iv["profile"][rows]).tolist():
        prof = run.profiles[p]
        mine = rows[iv["profile"][rows] == p]
        base = iv["tau0_s"][mine]
        e = prof.capacity_kwh * (
            prof.soc_at_array(base + iv["t1_s"][mine] - iv["t0_s"][mine]) - prof.soc_at_array(base)
        )
        out += (share[iv["evse"][mine]] * e[:, None]).sum(axis=0)
    return out


def add_phase_kpis(run: RunTables, grid: dict) -> None:
    """Add the phase KPIs of every site with phases to the grid KPIs' ``sites`` part."""
    for site in run.sites:
        if has_phases(run, site):
            steps = phase_load_steps(run, site)
            grid["sites"].setdefault(site.site_id, {}).update(phase_kpis(run, steps, phase_energy_kwh(run, site), site))
