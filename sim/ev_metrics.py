"""EV-side tables and KPIs: compatibility misses, handshakes, authorisation, vehicle data.

Definitions:

- A **compatibility miss** is an arrival that found free ports but none its EV could use,
  or a site with no usable port at all. It is **lost** when the driver did not charge in
  the end (outcomes in ``LOST_OUTCOMES``; a redirected driver who charged elsewhere is not
  lost); else the driver drove on to another site (**redirected**) or queued for a port that
  fits (**waited**), and charged or was still there at the horizon. Misses count at the site
  where the miss happened, the first site the driver came to.
- A **visit** is one driver at one port: up to ``1 + retries`` handshakes. Its first
  attempt succeeds when the first handshake starts the session; it succeeds after retries
  when any does. With a failure probability p per handshake these are 1 − p and
  1 − p^(1 + retries). Visits to a silently faulted port are left out of these rates (they
  are the serviceability section's failed attempts); a refused Plug & Charge certificate
  counts as a failed attempt, as the driver sees it.
- **Needs known** means the manager had the EV's SoC, target and departure, over ISO 15118
  (with OCPP 2.0.1) or telematics; a session's need is **met** when it was delivered to
  within ``NEED_MET_TOLERANCE_KWH``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.compat import CONNECTORS, connector_names
from sim.engine import RunTables
from sim.ev_side import AUTH_METHODS, CAUSES, NEEDS_SOURCES

__all__ = [
    "LOST_OUTCOMES",
    "NEED_MET_TOLERANCE_KWH",
    "ev_kpis",
    "ev_sessions_frame",
    "interop_by_pair",
    "plug_attempts_frame",
    "visits_frame",
]

NEED_MET_TOLERANCE_KWH = 0.1
LOST_OUTCOMES = ("balked", "reneged", "failed", "incompatible", "priced_out", "rejected")
"""Outcomes of a driver who left without charging; the others (served, interrupted, ongoing) charged or still may."""


def _cat(codes: np.ndarray, names: list[str] | tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(list(names), dtype=str))


def ev_sessions_frame(run: RunTables) -> pd.DataFrame:
    """One row per arriving driver (as sessions.parquet), with the EV-side facts of the session."""
    assert run.ev is not None
    e = run.ev.sessions
    masks = {int(m): "+".join(connector_names(int(m))) for m in np.unique(e["accepts"])}
    return pd.DataFrame(
        {
            "session_id": e["session_id"],
            "ev_family": _cat(e["family"], run.ev.families),
            "connectors": pd.Categorical([masks[int(m)] for m in e["accepts"]]),
            "adapter_used": e["adapter_used"].astype(bool),
            "compat_miss": e["compat_miss"].astype(bool),
            "origin_site_id": _cat(e["origin_site"], [s.site_id for s in run.sites]),
            "redirect_s": e["redirect_s"],
            "needs_source": _cat(e["needs_source"], NEEDS_SOURCES),
            "telematics": e["telematics"].astype(bool),
            "plug_and_charge": e["plug_and_charge"].astype(bool),
            "auth_method": _cat(e["auth_method"], AUTH_METHODS),
            "auth_s": e["auth_s"],
            "visits": e["visits"],
        }
    ).sort_values("session_id", kind="stable", ignore_index=True)


def plug_attempts_frame(run: RunTables) -> pd.DataFrame:
    """One row per handshake (and per attempt on a silently faulted port), in time order."""
    assert run.ev is not None
    a = run.ev.attempts
    evse = a["evse"]
    port_connector = np.array([CONNECTORS.index(c) for c in run.ev.port_connector], dtype=np.int64)
    port_model = np.asarray(run.ev.port_model, dtype=np.int64)
    return pd.DataFrame(
        {
            "t_s": a["t_s"],
            "session_id": a["session_id"],
            "site_id": _cat(np.array([run.evses[i].site.index for i in evse], dtype=np.int64),
                            [s.site_id for s in run.sites]),
            "evse_id": _cat(evse, [e.evse_id for e in run.evses]),
            "connector": _cat(port_connector[evse], CONNECTORS),
            "charger_model": _cat(port_model[evse], run.ev.charger_models),
            "ev_model": _cat(a["model"], [m.name for m in run.models]),
            "ev_family": _cat(a["family"], run.ev.families),
            "visit": a["visit"],
            "attempt": a["attempt"],
            "ok": a["ok"].astype(bool),
            "cause": _cat(a["cause"], CAUSES),
        }
    )  # fmt: skip


def visits_frame(attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per visit (a driver at a port): first attempt ok, any attempt ok, a faulted port."""
    keys = ["session_id", "visit"]
    grouped = attempts.assign(interop=(attempts["cause"] == "interop").astype(np.int64)).groupby(keys, sort=True)
    first = attempts[attempts["attempt"] == 1].set_index(keys)
    out = pd.DataFrame(
        {
            "ev_family": first["ev_family"],
            "charger_model": first["charger_model"],
            "first_ok": first["ok"],
            "any_ok": grouped["ok"].any(),
            "fault": first["cause"] == "fault",
            "handshakes": grouped.size(),
            "interop_failures": grouped["interop"].sum(),
        }
    )
    return out.reset_index()


def _rate(hits: float, total: float) -> float | None:
    return float(hits / total) if total else None


def interop_by_pair(visits: pd.DataFrame) -> pd.DataFrame:
    """First-attempt and after-retries success per EV family × charger model, over visits to working ports."""
    ok = visits[~visits["fault"]]
    per = ok.groupby(["ev_family", "charger_model"], sort=True, observed=True).agg(
        visits=("first_ok", "size"),
        first_ok=("first_ok", "sum"),
        any_ok=("any_ok", "sum"),
        handshakes=("handshakes", "sum"),
        interop_failures=("interop_failures", "sum"),
    )
    per = per[per["visits"] > 0].reset_index()
    per["first_attempt_success_rate"] = per["first_ok"] / per["visits"]
    per["success_after_retries_rate"] = per["any_ok"] / per["visits"]
    per["interop_failure_rate"] = per["interop_failures"] / per["handshakes"]
    per["ev_family"] = per["ev_family"].astype(str)
    per["charger_model"] = per["charger_model"].astype(str)
    return per.drop(columns=["first_ok", "any_ok"])


def _energy_vs_need(served: pd.DataFrame) -> dict[str, Any]:
    requested = float(served["energy_requested_kwh"].sum())
    delivered = float(served["energy_delivered_kwh"].sum())
    met = served["energy_delivered_kwh"] >= served["energy_requested_kwh"] - NEED_MET_TOLERANCE_KWH
    return {
        "sessions": len(served),
        "energy_requested_kwh": requested,
        "energy_delivered_kwh": delivered,
        "delivered_share": _rate(delivered, requested),
        "need_met_share": _rate(float(met.sum()), len(served)),
    }


def _compat(frame: pd.DataFrame, arrivals_key: str) -> dict[str, Any]:
    """Misses of the drivers in `frame` and what followed: lost, redirected or waited, which add up to the misses."""
    miss = frame["compat_miss"]
    lost = miss & frame["outcome"].isin(LOST_OUTCOMES)
    redirected = frame["origin_site_id"].notna()
    return {
        arrivals_key: len(frame),
        "compat_misses": int(miss.sum()),
        "compat_miss_share": _rate(float(miss.sum()), len(frame)),
        "sessions_lost_to_compat": int(lost.sum()),
        "sessions_incompatible": int((frame["outcome"] == "incompatible").sum()),
        "compat_misses_redirected": int((miss & ~lost & redirected).sum()),  # drove on and charged there
        # Stayed: a driver who misses and stays queues (no free port fits), so charged after a wait or still there.
        "compat_misses_waited": int((miss & ~lost & ~redirected).sum()),
    }


def ev_kpis(run: RunTables, sessions: pd.DataFrame, ev_sessions: pd.DataFrame, attempts: pd.DataFrame) -> dict:
    """The ``ev_side`` section of kpis.json."""
    assert run.scenario.ev_side is not None
    both = sessions[["session_id", "site_id", "outcome", "cause", "plug_t_s", "energy_requested_kwh",
                     "energy_delivered_kwh"]].merge(ev_sessions, on="session_id", validate="one_to_one")  # fmt: skip
    both["miss_site_id"] = (
        both["origin_site_id"].astype(str).where(both["origin_site_id"].notna(), both["site_id"].astype(str))
    )
    plugged = both[both["plug_t_s"].notna()]
    served = both[both["outcome"] == "served"]
    visits = visits_frame(attempts)
    working = visits[~visits["fault"]]
    redirected = both["origin_site_id"].notna()
    source_share = plugged["needs_source"].value_counts(normalize=True, sort=False) if len(plugged) else None
    methods = plugged["auth_method"].astype(str)
    network = {
        **_compat(both, "arrivals"),
        "redirected": int(redirected.sum()),
        "redirected_served": int((redirected & (both["outcome"] == "served")).sum()),
        "adapter_sessions": int(plugged["adapter_used"].sum()),
        "visits": len(working),
        "handshakes": int(working["handshakes"].sum()),
        "interop_failures": int(working["interop_failures"].sum()),
        "interop_failure_rate": _rate(float(working["interop_failures"].sum()), float(working["handshakes"].sum())),
        "first_attempt_success_rate": _rate(float(working["first_ok"].sum()), len(working)),
        "success_after_retries_rate": _rate(float(working["any_ok"].sum()), len(working)),
        "sessions_failed_interop": int(((both["outcome"] == "failed") & (both["cause"] == "interop")).sum()),
        "sessions_failed_authorization": int(
            ((both["outcome"] == "failed") & (both["cause"] == "authorization")).sum()
        ),
        "known_needs_share": _rate(float((plugged["needs_source"] != "estimate").sum()), len(plugged)),
        "needs_source_share": {s: float(source_share[s]) if source_share is not None else None for s in NEEDS_SOURCES},
        "plug_and_charge_sessions": int((methods == "plug_and_charge").sum()),
        "certificate_failures": int((attempts["cause"] == "certificate").sum()),
        "auth_method_share": {m: _rate(float((methods == m).sum()), len(plugged)) for m in AUTH_METHODS},
        "auth_mean_s": {
            m: float(plugged.loc[methods == m, "auth_s"].mean()) if (methods == m).any() else None for m in AUTH_METHODS
        },
    }
    known = served["needs_source"] != "estimate"
    energy = {s: _energy_vs_need(served[served["needs_source"] == s]) for s in NEEDS_SOURCES}
    energy["known"] = _energy_vs_need(served[known])
    energy["estimated"] = _energy_vs_need(served[~known])
    sites: dict[str, Any] = {}
    for site in run.sites:
        sid = site.site_id
        here = both[both["miss_site_id"] == sid]
        k = _compat(here, "first_arrivals")  # a redirected driver counts at the site of the miss
        k["redirected_away"] = int((both["origin_site_id"].astype(str) == sid).sum())
        k["redirected_in"] = int((redirected & (both["site_id"].astype(str) == sid)).sum())
        sites[sid] = k
    pairs = interop_by_pair(visits)
    return {
        "market": run.scenario.ev_side.market,
        "csms_protocol": run.scenario.ev_side.csms_protocol,
        "network": network,
        "energy_vs_need": energy,
        "interop_by_pair": [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in pairs.to_dict(orient="records")
        ],
        "sites": sites,
    }
