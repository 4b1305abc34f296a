"""Battery degradation from the recorded rows: one row per plugged-in session, and the `degradation` KPIs.

Charging segments are the recorded charging intervals, their SoC evaluated on their charge profile
in closed form (`sim.ev.ChargeProfile`, `sim.degradation.soc_time_integral`); discharging (V2G)
segments are the rows of the ``discharges`` table where the run has one. `sim.degradation` turns
them into capacity fade; everything here is vectorised, and runs only for a scenario with a
`degradation` section, after the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.degradation import AgeingModel, session_fade, soc_time_integral
from sim.engine import RunTables

__all__ = [
    "DISCHARGE_COLUMNS",
    "away_calendar",
    "charging_segments",
    "degradation_frame",
    "degradation_kpis",
    "plugged_sessions",
]

_SUMMED = ("charged_kwh", "discharged_kwh", "calendar_fade_kwh", "cycle_fade_charging_kwh", "cycle_fade_v2g_kwh",
           "fade_kwh", "cost_calendar", "cost_charging", "cost_v2g", "cost")  # fmt: skip
DISCHARGE_COLUMNS = ("t0_s", "t1_s", "soc0_frac", "soc1_frac", "power_kw", "site", "evse", "session_id")


def _cat(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(names, dtype=str))


def _by_profile(profile: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(profile id, row numbers) of every profile the intervals use."""
    order = np.argsort(profile, kind="stable")
    ids, starts = np.unique(profile[order], return_index=True)
    return list(zip(ids.tolist(), np.split(order, starts[1:]), strict=True))


def plugged_sessions(run: RunTables) -> np.ndarray:
    """Row numbers of the sessions table that plugged in, in session id order."""
    s = run.sessions
    rows = np.flatnonzero((s["evse"] >= 0) & ~np.isnan(s["plug_t_s"]))
    return rows[np.argsort(s["session_id"][rows], kind="stable")]


def _session_of(evse: np.ndarray, t_s: np.ndarray, s_evse: np.ndarray, s_plug: np.ndarray) -> np.ndarray:
    """For each (evse, t_s), the index of the session on that port that plugged in last at or before t_s."""
    n_s = len(s_evse)
    ev = np.concatenate([s_evse, evse]).astype(np.int64)
    t = np.concatenate([s_plug, t_s])
    kind = np.concatenate([np.zeros(n_s, np.int8), np.ones(len(evse), np.int8)])  # a plug-in first at a tie
    order = np.lexsort((kind, t, ev))
    pos = np.arange(len(order))
    latest = np.maximum.accumulate(np.where(order < n_s, pos, -1))
    owner = np.where(latest >= 0, order[np.maximum(latest, 0)], -1)
    out = np.empty(len(evse), dtype=np.int64)
    out[order[order >= n_s] - n_s] = owner[order >= n_s]
    if len(out) and ((out < 0).any() or (s_evse[np.maximum(out, 0)] != evse).any()):
        raise ValueError("a charging interval lies outside every session on its port")
    return out


def charging_segments(run: RunTables, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The charging intervals as segments of the sessions `rows` (sessions-table rows, see `plugged_sessions`)."""
    iv = run.intervals
    s = run.sessions
    n = len(iv["t0_s"])
    soc0, soc1, soc_time = np.empty(n), np.empty(n), np.empty(n)
    for p, idx in _by_profile(iv["profile"]):
        prof = run.profiles[p]
        tau0 = iv["tau0_s"][idx]
        tau1 = tau0 + iv["t1_s"][idx] - iv["t0_s"][idx]
        soc0[idx] = prof.soc_at_array(tau0)
        soc1[idx] = prof.soc_at_array(tau1)
        soc_time[idx] = soc_time_integral(prof, tau1) - soc_time_integral(prof, tau0)
    session = _session_of(iv["evse"], iv["t0_s"], s["evse"][rows], s["plug_t_s"][rows])
    # A session stops at its target SoC: the profile's SoC at that instant differs from it by rounding only.
    # (A session that discharged later may have left below the SoC a charging interval reached.)
    soc_out = s["soc_out_frac"][rows][session]
    discharged = np.zeros(len(rows), dtype=bool)
    if run.discharges is not None and len(run.discharges["session_id"]):
        discharged = np.isin(s["session_id"][rows], run.discharges["session_id"])
    soc1 = np.where(discharged[session], soc1, np.minimum(soc1, soc_out))
    return {"session": session, "t0_s": iv["t0_s"], "t1_s": iv["t1_s"], "soc0_frac": soc0, "soc1_frac": soc1,
            "soc_time_s": soc_time}  # fmt: skip


def _discharge_segments(run: RunTables, rows: np.ndarray) -> dict[str, np.ndarray] | None:
    """The ``discharges`` table's rows as segments of the sessions `rows`; None when the run has none."""
    d = run.discharges
    if d is None or not len(d["t0_s"]):
        return None
    ids = run.sessions["session_id"][rows]  # ascending
    session = np.searchsorted(ids, d["session_id"])
    if (session >= len(ids)).any() or (ids[np.minimum(session, len(ids) - 1)] != d["session_id"]).any():
        raise ValueError("a discharge row names a session that never plugged in")
    return {"session": session, "t0_s": d["t0_s"], "t1_s": d["t1_s"], "soc0_frac": d["soc0_frac"],
            "soc1_frac": d["soc1_frac"]}  # fmt: skip


def away_calendar(run: RunTables) -> pd.DataFrame:
    """Calendar fade of repeat customers' EVs away from the network over the horizon, one row per driver.

    Only drivers of a population (``driver_id`` ≥ 0) are seen more than once. Away is the horizon less
    their plugged-in time: before the first plug-in at its plug-in SoC, between a departure and the
    driver's next plug-in at the SoC going straight from the one to the other (its mean), after the
    last departure at its departure SoC; each stretch with the capacity of the session before it (the
    first session's before the first). Visits that overlap add no away time.
    """
    cfg = run.scenario.degradation
    assert cfg is not None, "away_calendar needs a scenario with a degradation section"
    s = run.sessions
    rows = plugged_sessions(run)
    rows = rows[s["driver_id"][rows] >= 0]
    driver = s["driver_id"][rows].astype(np.int64)
    plug = s["plug_t_s"][rows]
    order = np.lexsort((plug, driver))
    driver, plug = driver[order], plug[order]
    rows = rows[order]
    horizon_s = run.scenario.horizon_s
    end = np.where(np.isnan(s["departure_t_s"][rows]), horizon_s, s["departure_t_s"][rows])
    soc_in, soc_out = s["soc_in_frac"][rows], s["soc_out_frac"][rows]
    capacity = np.array([m.capacity_kwh for m in run.models])[s["model"][rows]]
    first = np.r_[True, driver[1:] != driver[:-1]]
    last = np.r_[driver[1:] != driver[:-1], True]
    next_plug = np.where(last, horizon_s, np.r_[plug[1:], horizon_s])
    next_soc = np.where(last, soc_out, np.r_[soc_in[1:], 0.0])
    after_s = np.maximum(next_plug - end, 0.0)  # to the next plug-in, or to the horizon after the last visit
    before_s = np.where(first, plug, 0.0)
    model = AgeingModel.of(cfg)
    soc_time = after_s * (soc_out + next_soc) / 2.0 + before_s * soc_in
    fade_kwh = np.asarray(model.calendar_frac(after_s + before_s, soc_time)) * capacity
    grouped = pd.DataFrame({"driver_id": driver, "away_s": after_s + before_s, "calendar_fade_away_kwh": fade_kwh})
    return grouped.groupby("driver_id", sort=True).sum().reset_index()


def degradation_frame(run: RunTables) -> pd.DataFrame:
    """One row per plugged-in session: energy through the battery, capacity fade by cause, and its cost."""
    cfg = run.scenario.degradation
    assert cfg is not None, "degradation_frame needs a scenario with a degradation section"
    s = run.sessions
    rows = plugged_sessions(run)
    capacity = np.array([m.capacity_kwh for m in run.models])[s["model"][rows]]
    end = np.where(np.isnan(s["departure_t_s"][rows]), run.scenario.horizon_s, s["departure_t_s"][rows])
    segments = charging_segments(run, rows)
    discharges = _discharge_segments(run, rows)
    if discharges is not None:
        segments = {key: np.concatenate([segments[key], discharges[key]]) for key in discharges} | {
            "soc_time_s": np.concatenate([segments["soc_time_s"], _linear_soc_time(discharges)])
        }
    sessions = {"plug_t_s": s["plug_t_s"][rows], "end_t_s": end, "soc_in_frac": s["soc_in_frac"][rows],
                "soc_out_frac": s["soc_out_frac"][rows], "capacity_kwh": capacity}  # fmt: skip
    fade = session_fade(AgeingModel.of(cfg), sessions, segments)
    kwh = {
        "calendar": fade.calendar_frac * capacity,
        "charging": fade.cycle_charging_frac * capacity,
        "v2g": fade.cycle_v2g_frac * capacity,
    }
    price = cfg.cost_per_kwh
    return pd.DataFrame(
        {
            "session_id": s["session_id"][rows].astype(np.int64),
            "site_id": _cat(s["site"][rows], [site.site_id for site in run.sites]),
            "evse_id": _cat(s["evse"][rows], [e.evse_id for e in run.evses]),
            "ev_model": _cat(s["model"][rows], [m.name for m in run.models]),
            "driver_id": s["driver_id"][rows].astype(np.int64),
            "capacity_kwh": capacity,
            "plugged_s": end - s["plug_t_s"][rows],
            "charged_kwh": fade.charged_frac * capacity,
            "discharged_kwh": fade.discharged_frac * capacity,
            "calendar_fade_kwh": kwh["calendar"],
            "cycle_fade_charging_kwh": kwh["charging"],
            "cycle_fade_v2g_kwh": kwh["v2g"],
            "fade_kwh": kwh["calendar"] + kwh["charging"] + kwh["v2g"],
            "cost_calendar": kwh["calendar"] * price,
            "cost_charging": kwh["charging"] * price,
            "cost_v2g": kwh["v2g"] * price,
            "cost": (kwh["calendar"] + kwh["charging"] + kwh["v2g"]) * price,
        }
    )


def _linear_soc_time(seg: dict[str, np.ndarray]) -> np.ndarray:
    """∫ SoC dt of constant-power segments, whose SoC is linear in time."""
    return (seg["t1_s"] - seg["t0_s"]) * (seg["soc0_frac"] + seg["soc1_frac"]) / 2.0


def _per_kwh(part: float, energy_kwh: float) -> float:
    return part / energy_kwh if energy_kwh > 0 else 0.0


def degradation_kpis(
    frame: pd.DataFrame, away: pd.DataFrame | None = None, v2g: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `degradation` section of kpis.json from `degradation_frame`; each KPI is defined in docs/kpis.md.

    Args:
        frame: `degradation_frame` of the run.
        away: `away_calendar` of the run (repeat customers); None or empty without a population.
        v2g: The network KPIs of kpis.json's `v2g` section, for runs with V2G: what the drivers were
            paid for it is then set beside the wear it cost them.
    """
    total = {c: float(frame[c].sum()) for c in _SUMMED}
    fade = frame["fade_kwh"]
    out = {
        "sessions": len(frame),
        "charged_kwh": total["charged_kwh"],
        "discharged_kwh": total["discharged_kwh"],
        "calendar_fade_kwh": total["calendar_fade_kwh"],
        "cycle_fade_charging_kwh": total["cycle_fade_charging_kwh"],
        "cycle_fade_v2g_kwh": total["cycle_fade_v2g_kwh"],
        "fade_kwh": total["fade_kwh"],
        "fade_per_ev_mean_kwh": float(fade.mean()) if len(frame) else 0.0,
        "fade_per_ev_p95_kwh": float(np.percentile(fade, 95)) if len(frame) else 0.0,
        "fade_per_ev_max_kwh": float(fade.max()) if len(frame) else 0.0,
        "charging_fade_wh_per_kwh": 1000.0 * _per_kwh(total["cycle_fade_charging_kwh"], total["charged_kwh"]),
        "v2g_fade_wh_per_kwh": 1000.0 * _per_kwh(total["cycle_fade_v2g_kwh"], total["discharged_kwh"]),
        "cost_calendar": round(total["cost_calendar"], 2),
        "cost_charging": round(total["cost_charging"], 2),
        "cost_v2g": round(total["cost_v2g"], 2),
        "cost": round(total["cost"], 2),
        "v2g_cost_per_kwh": _per_kwh(total["cost_v2g"], total["discharged_kwh"]),
        **_driver_kpis(frame, away),
    }
    if v2g is not None:
        out["v2g_remuneration"] = v2g["v2g_remuneration"]
        out["v2g_net_margin"] = round(v2g["v2g_remuneration"] - total["cost_v2g"], 2)
    return out


def _driver_kpis(frame: pd.DataFrame, away: pd.DataFrame | None) -> dict[str, Any]:
    """Repeat customers over the horizon: their EVs' fade at the network plus their calendar fade away from it."""
    if away is None or not len(away):
        return {"drivers": 0, "calendar_fade_away_kwh": 0.0, "fade_per_driver_mean_kwh": 0.0}
    at_network = frame.loc[frame["driver_id"] >= 0, "fade_kwh"].sum()
    away_kwh = float(away["calendar_fade_away_kwh"].sum())
    return {
        "drivers": len(away),
        "calendar_fade_away_kwh": away_kwh,
        "fade_per_driver_mean_kwh": (float(at_network) + away_kwh) / len(away),
    }
