"""Serviceability tables and KPIs: outages, NEVI uptime, failed attempts, crews and cost.

Port uptime follows the NEVI rule (23 CFR 680.116):
``uptime % = (T − (T_outage − T_excluded)) / T × 100`` per port and period, where
``T_outage`` is the time the port was down and ``T_excluded`` the part of it outside the
operator's control (grid outages, vandalism, scheduled maintenance within its allowance).
Overlapping outages count once. A port is down while it is out of service, or derated below the
minimum power of its class (`serviceability.uptime_min_power`; NEVI: 150 kW DC). Every KPI here
is defined in docs/kpis.md, section Serviceability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.serviceability import REPAIRED_BY, VISIT_KINDS
from sim.wallclock import WallClock

__all__ = [
    "UPTIME_TARGET_PCT",
    "attempts_frame",
    "crews_frame",
    "outages_frame",
    "service_kpis",
    "uptime_frame",
    "visits_frame",
]

UPTIME_TARGET_PCT = 97.0
_OUTSIDE = {"grid_outage", "vandalism"}
_PLANNED = {"maintenance", "firmware_update", "reset"}


def _cat(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(names, dtype=str))


def outages_frame(run: RunTables) -> pd.DataFrame:
    """One row per port and outage: the fields a NEVI quarterly submission needs.

    ``down``: the row counts as down (out of service, or derated below the port's class minimum);
    ``derated``: the port kept charging at ``available_kw`` meanwhile (0 kW: out of service).
    """
    assert run.service is not None
    o = run.service.outages
    evse = o["evse"]
    clock = WallClock.of(run.scenario)
    causes = run.service.causes
    names = [causes[c] for c in o["cause"]]
    kind = ["outside" if c in _OUTSIDE else "planned" if c in _PLANNED else "fault" for c in names]
    return pd.DataFrame({
        "site_id": [run.evses[i].site.site_id for i in evse],
        "charger_id": [run.evses[i].charger.charger_id for i in evse],
        "evse_id": [run.evses[i].evse_id for i in evse],
        "cause": _cat(o["cause"], causes),
        "kind": pd.Categorical(kind, categories=["fault", "planned", "outside"]),
        "fault_id": o["fault_id"],
        "start_t_s": o["start_t_s"],
        "end_t_s": o["end_t_s"],
        "detected_t_s": o["detected_t_s"],
        "start_time": clock.timestamps(o["start_t_s"]),
        "end_time": clock.timestamps(o["end_t_s"]),
        "duration_s": o["end_t_s"] - o["start_t_s"],
        "repaired_by": _cat(o["repaired_by"], list(REPAIRED_BY)),
        "excluded": o["excluded"].astype(bool),
        "down": o["down"].astype(bool),
        "derated": o["available_kw"] > 0,
        "available_kw": o["available_kw"],
    }).sort_values(["start_t_s", "evse_id"], kind="stable", ignore_index=True)  # fmt: skip


def measure(intervals: list[tuple[float, float, bool]], lo: float, hi: float) -> tuple[float, float, float]:
    """Within [lo, hi): time in any outage, time in an excluded one, and time counted against uptime.

    Args:
        intervals: ``(start_s, end_s, excluded)`` outages of one port; they may overlap.
        lo: Period start (s).
        hi: Period end (s).
    """
    edges = []
    for a, b, excluded in intervals:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            edges += [(a, 1, excluded), (b, -1, excluded)]
    edges.sort(key=lambda e: (e[0], e[1]))
    total = excl = counted = 0.0
    n_all = n_excl = 0
    last = lo
    for t, step, excluded in edges:
        if n_all > 0:
            total += t - last
            if n_excl > 0:
                excl += t - last
            else:
                counted += t - last
        n_all += step
        if excluded:
            n_excl += step
        last = t
    return total, excl, counted


def _down_s(outages: pd.DataFrame, lo: float, hi: float) -> float:
    """Port-seconds within [lo, hi) in at least one of the `outages` rows, overlaps counted once per port."""
    total = 0.0
    for _, rows in outages.groupby("evse_id", observed=True, sort=True):
        intervals = list(zip(rows["start_t_s"], rows["end_t_s"], [False] * len(rows), strict=True))
        total += measure(intervals, lo, hi)[0]
    return total


def _periods(run: RunTables) -> list[tuple[str, float, float]]:
    """Local calendar months of the run (`sim.wallclock`) and the trailing 12 months."""
    start = WallClock.of(run.scenario).timestamps(np.zeros(1))[0]
    horizon_s = run.scenario.horizon_s
    end = start + pd.Timedelta(seconds=horizon_s)
    out = []
    for m in pd.date_range(start.normalize().replace(day=1), end, freq="MS"):
        lo = max((m - start).total_seconds(), 0.0)
        hi = min(((m + pd.offsets.MonthBegin(1)) - start).total_seconds(), horizon_s)
        if hi > lo:
            out.append((m.strftime("%Y-%m"), lo, hi))
    out.append(("trailing_12m", max(0.0, horizon_s - 365 * 86400.0), horizon_s))
    return out


def uptime_frame(run: RunTables, outages: pd.DataFrame) -> pd.DataFrame:
    """NEVI uptime per port and period: each month, and the trailing 12 months (the whole run if shorter)."""
    down = outages[outages["down"]]
    by_port: dict[str, list[tuple[float, float, bool]]] = {}
    for evse_id, a, b, excluded in zip(
        down["evse_id"], down["start_t_s"], down["end_t_s"], down["excluded"], strict=True
    ):
        by_port.setdefault(evse_id, []).append((a, b, bool(excluded)))
    rows = []
    for period, lo, hi in _periods(run):
        for e in run.evses:
            total, excl, counted = measure(by_port.get(e.evse_id, []), lo, hi)
            uptime_pct = 100.0 * (hi - lo - counted) / (hi - lo)
            rows.append((e.site.site_id, e.evse_id, period, lo, hi, total, excl, uptime_pct))
    columns = ["site_id", "evse_id", "period", "start_t_s", "end_t_s", "outage_s", "excluded_s", "uptime_pct"]
    return pd.DataFrame(rows, columns=columns)


def attempts_frame(run: RunTables) -> pd.DataFrame:
    """Failed charging attempts: a driver plugged into a silently failed port."""
    assert run.service is not None
    a = run.service.attempts
    return pd.DataFrame({
        "t_s": a["t_s"],
        "session_id": a["session_id"],
        "site_id": [run.evses[i].site.site_id for i in a["evse"]],
        "evse_id": [run.evses[i].evse_id for i in a["evse"]],
        "fault_id": a["fault_id"],
    })  # fmt: skip


def visits_frame(run: RunTables) -> pd.DataFrame:
    """One row per technician visit."""
    assert run.service is not None
    v = run.service.visits
    crews = [c.id for c in run.service.config.crews]
    chargers = run.service.chargers
    return pd.DataFrame({
        "crew_id": _cat(v["crew"], crews),
        "technician": v["technician"],
        "charger_id": [chargers[i] for i in v["charger"]],
        "kind": _cat(v["kind"], list(VISIT_KINDS)),
        "fault_id": v["fault_id"],
        "created_t_s": v["created_t_s"],
        "arrive_t_s": v["arrive_t_s"],
        "end_t_s": v["end_t_s"],
        "travel_s": v["travel_s"],
        "work_s": v["work_s"],
        "fixed": v["fixed"].astype(bool),
        "part_ordered": v["part_ordered"].astype(bool),
        "part_cost": v["part_cost"],
    })  # fmt: skip


def crews_frame(run: RunTables) -> pd.DataFrame:
    """One row per technician: jobs, busy and travel time against shift time."""
    assert run.service is not None
    columns = ["crew_id", "technician", "busy_s", "travel_s", "jobs", "shift_s"]
    df = pd.DataFrame(run.service.technicians, columns=columns)
    df["utilization"] = df["busy_s"] / df["shift_s"].where(df["shift_s"] > 0)
    df["travel_share"] = df["travel_s"] / df["busy_s"].where(df["busy_s"] > 0)
    return df


def _mode_kpis(run: RunTables, outages: pd.DataFrame) -> dict[str, Any]:
    """Per fault mode: failures, observed MTBF (mean up time), MTTR, time to detect and outage port-hours."""
    assert run.service is not None
    hardware = run.service.config.hardware
    horizon_s = run.scenario.horizon_s
    exposure_s: dict[str, float] = {}  # charger-seconds each mode could fail in
    for site in run.scenario.network.sites:
        for g in site.chargers:
            for name in hardware.get(g.model, []):
                exposure_s[name] = exposure_s.get(name, 0.0) + g.count * horizon_s
    faults = outages[outages["fault_id"] >= 0].drop_duplicates("fault_id")  # faults and vandalism
    out = {}
    for name, f in faults.groupby("cause", observed=True):
        repaired = f[f["repaired_by"] != "none"]
        detected = f["detected_t_s"].notna()
        # A charger's mode cannot fail again while its fault is active: up time is exposure minus fault time.
        up_s = exposure_s[str(name)] - float(f["duration_s"].sum()) if str(name) in exposure_s else None
        out[str(name)] = {
            "failures": len(f),
            "observed_mtbf_h": up_s / len(f) / 3600.0 if up_s is not None else None,
            "mttr_h": float(repaired["duration_s"].mean() / 3600.0) if len(repaired) else None,
            "time_to_detect_h": float((f["detected_t_s"] - f["start_t_s"])[detected].mean() / 3600.0)
            if detected.any() else None,
            "outage_h": _down_s(outages[outages["cause"] == name], 0.0, horizon_s) / 3600.0,
        }  # fmt: skip
    return out


def service_kpis(
    run: RunTables,
    sessions: pd.DataFrame,
    outages: pd.DataFrame,
    uptime: pd.DataFrame,
    attempts: pd.DataFrame,
    visits: pd.DataFrame,
    crews: pd.DataFrame,
) -> dict[str, Any]:
    """The serviceability section of kpis.json."""
    assert run.service is not None
    cfg = run.service.config
    tariff = run.scenario.tariff
    trailing = uptime[uptime["period"] == "trailing_12m"]
    plugs = int(sessions["plug_t_s"].notna().sum())
    n_attempts = plugs + len(attempts)
    port_failed = (sessions["outcome"] == "failed") & (sessions["cause"] == "faulted_port")
    lost = sessions[port_failed | (sessions["outcome"] == "interrupted")]
    lost_kwh = float((lost["energy_requested_kwh"] - lost["energy_delivered_kwh"]).sum())
    n_failed = int(port_failed.sum())
    parts = float(visits["part_cost"].sum())
    labour_h = float(crews["busy_s"].sum()) / 3600.0
    tech_fixed = outages.loc[outages["repaired_by"] == "technician", "fault_id"].unique()
    visits_per_fault = visits[visits["fault_id"].isin(tech_fixed)].groupby("fault_id").size()
    down = outages[outages["down"]]
    busy_s, shift_s = float(crews["busy_s"].sum()), float(crews["shift_s"].sum())
    horizon_s = run.scenario.horizon_s
    return {
        "uptime_target_pct": UPTIME_TARGET_PCT,
        "port_uptime_mean_pct": float(trailing["uptime_pct"].mean()),
        "port_uptime_min_pct": float(trailing["uptime_pct"].min()),
        "ports_meeting_target_share": float((trailing["uptime_pct"] >= UPTIME_TARGET_PCT).mean()),
        "availability": 1.0 - _down_s(down, 0.0, horizon_s) / (len(run.evses) * horizon_s),
        "failed_attempts": len(attempts),
        "failed_attempts_per_100": 100.0 * len(attempts) / n_attempts if n_attempts else 0.0,
        "sessions_lost": len(lost),
        "energy_lost_kwh": lost_kwh,
        "revenue_lost": lost_kwh * tariff.price_per_kwh + n_failed * tariff.session_fee,
        "first_time_fix_rate": float((visits_per_fault == 1).mean()) if len(visits_per_fault) else None,
        "crew_utilization": busy_s / shift_s if shift_s else 0.0,
        "crew_travel_share": float(crews["travel_s"].sum()) / busy_s if busy_s else 0.0,
        "labour_h": labour_h,
        "parts_cost": parts,
        "maintenance_cost": labour_h * cfg.labour_cost_per_h + parts,
        "fault_modes": _mode_kpis(run, outages),
    }
