"""Recorded columns → result tables (sessions, events, load, ports) and KPIs.

Everything here is vectorised: a year of a thousand ports is millions of rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim.engine import SESSION_FLOATS, RunTables
from sim.sessions import Cause, EventKind, Outcome
from sim.v2g import v2g_configured
from sim.wallclock import WallClock

__all__ = [
    "BIN_S",
    "Tables",
    "build_tables",
    "discharges_of",
    "events_frame",
    "kpis",
    "load_15min",
    "load_steps",
    "peak_instant_kw",
    "ports_frame",
    "sessions_frame",
]

BIN_S = 900.0  # the 15-minute interval utilities bill demand on
_CHUNK = 50_000  # intervals expanded at a time: bounds temporary arrays to ~100 MB


class Tables:
    """The result tables of one run."""

    def __init__(
        self,
        sessions: pd.DataFrame,
        events: pd.DataFrame,
        load: pd.DataFrame,
        load_steps: pd.DataFrame,
        ports: pd.DataFrame,
    ) -> None:
        """Hold the five tables a results folder stores."""
        self.sessions = sessions
        self.events = events
        self.load = load
        self.load_steps = load_steps
        self.ports = ports


def discharges_of(run: RunTables) -> dict[str, np.ndarray] | None:
    """The run's discharge stretches (V2G), or None when no session discharged."""
    d = run.discharges
    return d if d is not None and len(d["t0_s"]) else None


def _category(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(names, dtype=str))


def _times(run: RunTables, t_s: np.ndarray) -> pd.DatetimeIndex:
    return WallClock.of(run.scenario).timestamps(t_s)


def _groups_by_profile(pid: np.ndarray, n_profiles: int):  # noqa: ANN202 - a generator of index arrays
    """Yield (profile index, row indices) in chunks, rows of one profile together."""
    order = np.argsort(pid, kind="stable")
    bounds = np.searchsorted(pid[order], np.arange(n_profiles + 1))
    for p in range(n_profiles):
        rows = order[bounds[p] : bounds[p + 1]]
        for lo in range(0, len(rows), _CHUNK):
            yield p, rows[lo : lo + _CHUNK]


def _expand(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For row i with `count[i]` slots starting at `first[i]`: (row of each slot, slot index)."""
    row = np.repeat(np.arange(len(count)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return row, first[row] + offset


def load_15min(run: RunTables) -> pd.DataFrame:
    """Energy and mean power per site per 15 minutes, integrated exactly from the intervals."""
    iv = run.intervals
    n_sites, horizon_s = len(run.sites), run.scenario.horizon_s
    n_bins = math.ceil(horizon_s / BIN_S)
    energy = np.zeros(n_sites * n_bins)
    for p, rows in _groups_by_profile(iv["profile"], len(run.profiles)):
        prof = run.profiles[p]
        t0, t1 = iv["t0_s"][rows], iv["t1_s"][rows]
        b0 = (t0 // BIN_S).astype(np.int64)
        b1 = np.maximum(b0, np.minimum(np.ceil(t1 / BIN_S).astype(np.int64) - 1, n_bins - 1))
        r, b = _expand(b0, b1 - b0 + 1)
        lo = np.maximum(t0[r], b * BIN_S)
        hi = np.minimum(t1[r], (b + 1) * BIN_S)
        base = iv["tau0_s"][rows][r] - t0[r]
        e = prof.capacity_kwh * (prof.soc_at_array(base + hi) - prof.soc_at_array(base + lo))
        key = iv["site"][rows][r].astype(np.int64) * n_bins + b  # 64 bits: sites × bins may pass 2**31
        energy += np.bincount(key, weights=e, minlength=n_sites * n_bins)
    d = discharges_of(run)
    if d is not None:  # V2G: constant negative power over each stretch
        t0, t1 = d["t0_s"], d["t1_s"]
        b0 = (t0 // BIN_S).astype(np.int64)
        b1 = np.maximum(b0, np.minimum(np.ceil(t1 / BIN_S).astype(np.int64) - 1, n_bins - 1))
        r, b = _expand(b0, b1 - b0 + 1)
        span_s = np.maximum(np.minimum(t1[r], (b + 1) * BIN_S) - np.maximum(t0[r], b * BIN_S), 0.0)
        key = d["site"][r].astype(np.int64) * n_bins + b
        energy += np.bincount(key, weights=d["power_kw"][r] * span_s / 3600.0, minlength=n_sites * n_bins)
    site = np.repeat(np.arange(n_sites), n_bins)
    t_s = np.tile(np.arange(n_bins) * BIN_S, n_sites)
    width_h = (np.minimum(t_s + BIN_S, horizon_s) - t_s) / 3600.0
    capacity = np.array([s.capacity_kw for s in run.sites])
    return pd.DataFrame(
        {
            "site_id": _category(site, [s.site_id for s in run.sites]),
            "t_s": t_s,
            "time": _times(run, t_s),
            "energy_kwh": energy,
            "power_kw": energy / width_h,
            "capacity_kw": capacity[site],
        },
        copy=False,  # every column is fresh: a year of 15-minute rows is not held twice
    )


def load_steps(run: RunTables) -> pd.DataFrame:
    """Site power right after every change (every interval start or end), evaluated exactly."""
    iv = run.intervals
    span = run.scenario.horizon_s + 1.0
    site_f = iv["site"].astype(float)
    keys = np.unique(np.concatenate([[0.0], site_f * span + iv["t0_s"], site_f * span + iv["t1_s"]]))
    keys = np.union1d(keys, np.arange(len(run.sites)) * span)  # every site starts at zero
    d = discharges_of(run)
    if d is not None:
        d_site = d["site"].astype(float)
        keys = np.union1d(keys, np.concatenate([d_site * span + d["t0_s"], d_site * span + d["t1_s"]]))
    power = np.zeros(len(keys))
    for p, rows in _groups_by_profile(iv["profile"], len(run.profiles)):
        prof = run.profiles[p]
        t0 = iv["t0_s"][rows]
        first = np.searchsorted(keys, site_f[rows] * span + t0)
        last = np.searchsorted(keys, site_f[rows] * span + iv["t1_s"][rows])
        r, k = _expand(first, last - first)
        t = keys[k] - site_f[rows][r] * span
        soc = prof.soc_at_array(iv["tau0_s"][rows][r] + t - t0[r])
        power += np.bincount(k, weights=prof.power_at_array(soc), minlength=len(keys))
    if d is not None:  # V2G: each stretch's constant negative power from its start to its end
        first = np.searchsorted(keys, d_site * span + d["t0_s"])
        last = np.searchsorted(keys, d_site * span + d["t1_s"])
        r, k = _expand(first, last - first)
        power += np.bincount(k, weights=d["power_kw"][r], minlength=len(keys))
    site = np.floor(keys / span).astype(np.int64)
    t_s = keys - site * span
    return pd.DataFrame(
        {
            "site_id": _category(site, [s.site_id for s in run.sites]),
            "t_s": t_s,
            "power_kw": power,
        },
        copy=False,  # every column is fresh
    )


def sessions_frame(run: RunTables) -> pd.DataFrame:
    """One row per arriving driver, in session id order."""
    s = run.sessions
    frame = pd.DataFrame(
        {
            "session_id": s["session_id"].astype(np.int64),  # recorded in 32 bits, written in 64
            "site_id": _category(s["site"], [site.site_id for site in run.sites]),
            "evse_id": _category(s["evse"], [e.evse_id for e in run.evses]),
            "ev_model": _category(s["model"], [m.name for m in run.models]),
            "outcome": _category(s["outcome"], [o.name.lower() for o in Outcome]),
            **{c: s[c] for c in SESSION_FLOATS},
            "cause": _category(s["cause"], [c.name.lower() for c in Cause]),
            "failed_attempts": s["failed_attempts"].astype(np.int64),
            "driver_id": s["driver_id"].astype(np.int64),
            "payment_method": _category(s["payment_method"], payment_methods(run)),
            "plan": _category(s["plan"], [p.name for p in run.scenario.memberships]),
            "arrival_time": _times(run, s["arrival_t_s"]),
        },
        copy=False,  # the engine's columns as they are: a year of sessions is not held twice
    )
    if not frame["session_id"].is_monotonic_increasing:
        frame = frame.sort_values("session_id", kind="stable", ignore_index=True)
    if v2g_configured(run.scenario):  # with V2G: energy given back, beside the energy delivered (charged)
        out = np.zeros(len(frame))
        d = discharges_of(run)
        if d is not None:
            rows = np.searchsorted(frame["session_id"].to_numpy(), d["session_id"])
            np.add.at(out, rows, -d["power_kw"] * (d["t1_s"] - d["t0_s"]) / 3600.0)
        frame.insert(frame.columns.get_loc("energy_delivered_kwh") + 1, "energy_discharged_kwh", out)
    return frame


def payment_methods(run: RunTables) -> list[str]:
    """The scenario's payment method names, in code order; then Plug & Charge where EVs can pay with it."""
    names: list[str] = [m.method for m in run.scenario.payments.methods] if run.scenario.payments else []
    ev = run.scenario.ev_side
    return [*names, "plug_and_charge"] if ev is not None and ev.authorization is not None else names


def events_frame(run: RunTables) -> pd.DataFrame:
    """Queueing events and manager commands, in time order."""
    e = run.events
    return pd.DataFrame(
        {
            "t_s": e["t_s"],
            "event": _category(e["event"], [k.name.lower() for k in EventKind]),
            "site_id": _category(e["site"], [site.site_id for site in run.sites]),
            "evse_id": _category(e["evse"], [ev.evse_id for ev in run.evses]),
            "session_id": e["session_id"].astype(np.int64),  # recorded in 32 bits, written in 64
            "value": e["value"],
        },
        copy=False,  # the columns above are the recorder's or fresh: a year of events is not held twice
    )


def build_tables(run: RunTables) -> Tables:
    """Turn the recorded columns into the result tables."""
    return Tables(sessions_frame(run), events_frame(run), load_15min(run), load_steps(run), ports_frame(run))


def ports_frame(run: RunTables) -> pd.DataFrame:
    """One row per connector: sessions, plugged and charging time, energy, utilization.

    `max_power_kw` is the port's rating from the network plan, whatever derating was in force
    when the run ended, so energy utilization is energy over rated power × horizon.
    """
    horizon_s = run.scenario.horizon_s
    n = len(run.evses)
    s = run.sessions
    plugged = s["evse"] >= 0
    end = np.where(np.isnan(s["departure_t_s"]), horizon_s, s["departure_t_s"])
    ev = s["evse"][plugged]
    plugged_s = np.bincount(ev, weights=(end - s["plug_t_s"])[plugged], minlength=n)
    energy = np.bincount(ev, weights=s["energy_delivered_kwh"][plugged], minlength=n)
    count = np.bincount(ev, minlength=n)
    iv = run.intervals
    charging_s = np.bincount(iv["evse"], weights=iv["t1_s"] - iv["t0_s"], minlength=n)
    max_kw = np.array([e.rated_kw for e in run.evses])
    return pd.DataFrame(
        {
            "site_id": [e.site.site_id for e in run.evses],
            "charger_id": [e.charger.charger_id for e in run.evses],
            "evse_id": [e.evse_id for e in run.evses],
            "current": ["dc" if e.dc else "ac" for e in run.evses],
            "max_power_kw": max_kw,
            "sessions": count,
            "plugged_s": plugged_s,
            "charging_s": charging_s,
            "energy_kwh": energy,
            "time_utilization": plugged_s / horizon_s,
            "energy_utilization": energy / (max_kw * horizon_s / 3600.0),
        }
    )


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _wait_stats(waits: pd.Series) -> tuple[float, float]:
    """Mean and 95th percentile of `waits` (s); zero when nobody is in the group."""
    return (float(waits.mean()), float(np.percentile(waits, 95))) if len(waits) else (0.0, 0.0)


def _kpis_of(sessions: pd.DataFrame, ports: pd.DataFrame, load: pd.DataFrame, horizon_s: float) -> dict[str, Any]:
    """The KPIs of one group of sessions and ports; each is defined in docs/kpis.md."""
    outcome = sessions["outcome"]
    counts = outcome.value_counts()
    plugged = sessions["plug_t_s"].notna()
    served = outcome == "served"
    reneged = outcome == "reneged"
    # Every driver whose wait ended before the horizon: at plug-in, or when they gave up.
    wait_all_mean_s, wait_all_p95_s = _wait_stats(sessions.loc[plugged | reneged, "wait_s"])
    wait_plugged_mean_s, wait_plugged_p95_s = _wait_stats(sessions.loc[plugged, "wait_s"])
    energy_kwh = float(ports["energy_kwh"].sum())
    capacity_kwh = float((ports["max_power_kw"] * horizon_s / 3600.0).sum())
    arrived = len(sessions)
    kept = sessions["energy_delivered_kwh"]  # what stayed in the battery: less what V2G took back
    if "energy_discharged_kwh" in sessions:
        kept = kept - sessions["energy_discharged_kwh"]
    return {
        "sessions_arrived": arrived,
        **{f"sessions_{o.name.lower()}": int(counts.get(o.name.lower(), 0)) for o in Outcome},
        "balk_share": _share(int(counts.get("balked", 0)), arrived),
        "renege_share": _share(int(counts.get("reneged", 0)), arrived),
        "energy_requested_kwh": float(sessions.loc[plugged, "energy_requested_kwh"].sum()),
        "energy_delivered_kwh": float(sessions["energy_delivered_kwh"].sum()),
        "unmet_energy_kwh": float((sessions.loc[served, "energy_requested_kwh"] - kept[served]).sum()),
        "wait_all_mean_s": wait_all_mean_s,
        "wait_all_p95_s": wait_all_p95_s,
        "wait_plugged_mean_s": wait_plugged_mean_s,
        "wait_plugged_p95_s": wait_plugged_p95_s,
        "time_utilization": float(ports["plugged_s"].sum() / (len(ports) * horizon_s)) if len(ports) else 0.0,
        "energy_utilization": energy_kwh / capacity_kwh if capacity_kwh else 0.0,
        "peak_kw": float(load["power_kw"].max()) if len(load) else 0.0,
        # Sessions only; the network's `revenue` (written by sim.results) adds the membership fees.
        "session_revenue": round(float(sessions["amount_charged"].sum() - sessions["payment_fee"].sum()), 2),
        "ports": len(ports),
    }


def kpis(
    run: RunTables, sessions: pd.DataFrame, ports: pd.DataFrame, load: pd.DataFrame, peak_instant_kw: pd.Series
) -> dict[str, Any]:
    """Network and per-site KPIs. `peak_kw` is the highest 15-minute mean power.

    Args:
        run: The run.
        sessions: `sessions_frame(run)`.
        ports: `ports_frame(run)`.
        load: `load_15min(run)`.
        peak_instant_kw: Highest instantaneous power per site id (from `load_steps`).
    """
    horizon_s = run.scenario.horizon_s
    network_load = load.groupby("t_s", sort=True)["power_kw"].sum().reset_index()
    out: dict[str, Any] = {
        "currency": run.scenario.tariff.currency,
        "network": _kpis_of(sessions, ports, network_load, horizon_s),
        "sites": {},
    }
    # Row positions per site, and one site's rows at a time: a copy of a year of sessions per site would double them.
    rows = {name: frame.groupby("site_id", observed=False).indices for name, frame in
            (("sessions", sessions), ("ports", ports), ("load", load))}  # fmt: skip
    empty = np.zeros(0, dtype=np.int64)
    for site in run.sites:
        sid = site.site_id
        site_sessions, site_ports, site_load = (frame.iloc[rows[name].get(sid, empty)] for name, frame in
                                                (("sessions", sessions), ("ports", ports), ("load", load)))  # fmt: skip
        k = _kpis_of(site_sessions, site_ports, site_load, horizon_s)
        k["peak_instant_kw"] = float(peak_instant_kw.get(sid, 0.0))
        k["capacity_kw"] = site.capacity_kw
        out["sites"][sid] = k
    return out


def peak_instant_kw(steps: pd.DataFrame) -> pd.Series:
    """Highest instantaneous power per site id."""
    return steps.groupby("site_id", observed=False)["power_kw"].max()
