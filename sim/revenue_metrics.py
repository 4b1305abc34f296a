"""Revenue results: membership invoices, dynamic prices, and the money KPIs from gross to margin.

Money is settled per session in whole cents (`sim.tariffs.settle`), so every sum here is
exact to the cent once rounded:

    revenue = Σ session amounts + Σ membership fees − Σ payment fees
    margin  = revenue − energy cost − demand charges − maintenance cost

With V2G configured the margin also takes the export revenue and pays the drivers' V2G
remuneration (`sim.v2g_metrics`): margin = revenue + export revenue − V2G remuneration − costs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.managers.pricing import priced
from sim.tariffs import TariffSchedule
from sim.wallclock import WallClock

__all__ = ["COMPONENTS", "invoices_frame", "revenue_kpis", "tariffs_frame"]

COMPONENTS = ("energy_charge", "time_charge", "session_fee_charge", "idle_charge", "cap_adjustment")
_ACTIONS = ["join", "renew", "leave"]


def _money(x: float) -> float:
    return round(float(x), 2)


def invoices_frame(run: RunTables) -> pd.DataFrame:
    """One row per membership decision: join, renew (both invoiced a monthly fee) or leave."""
    inv = run.invoices or {k: np.array([]) for k in ("t_s", "amount", "payment_fee", "savings", "driver_id", "plan",
                                                       "action")}  # fmt: skip
    plans = [p.name for p in run.scenario.memberships]
    return pd.DataFrame(
        {
            "t_s": inv["t_s"],
            "time": WallClock.of(run.scenario).timestamps(inv["t_s"]),
            "driver_id": inv["driver_id"].astype(np.int64),
            "plan": pd.Categorical.from_codes(inv["plan"].astype(np.int64), categories=pd.Index(plans, dtype=str)),
            "action": pd.Categorical.from_codes(inv["action"].astype(np.int64), categories=pd.Index(_ACTIONS)),
            "amount": inv["amount"],
            "payment_fee": inv["payment_fee"],
            "savings_last_30d": inv["savings"],
        }
    )


def tariffs_frame(run: RunTables) -> pd.DataFrame:
    """Every change of the price per kWh a site showed: at t_s = 0, at time-of-use boundaries, at `SetTariff`.

    Rows are in time order per site; where two rows share a time, the last holds.
    """
    scenario = run.scenario
    horizon_s = scenario.horizon_s
    priced_ids = set()
    if scenario.pricing is not None:
        priced_ids = set(scenario.pricing.sites or [c.id for c in scenario.network.sites])
    ch = run.tariff_changes or {"t_s": np.array([]), "price_per_kwh": np.array([]), "site": np.array([], dtype=int)}
    t_s: list[float] = []
    codes: list[int] = []
    prices: list[float] = []
    layouts: dict = {}
    clock = WallClock.of(scenario)
    for k, site in enumerate(scenario.network.sites):
        base = site.tariff or scenario.tariff
        if site.id in priced_ids:
            base = priced(base)
        mine = ch["site"] == k
        segments = [(0.0, base.price_per_kwh)] + list(zip(ch["t_s"][mine].tolist(), ch["price_per_kwh"][mine].tolist(),
                                                          strict=True))  # fmt: skip
        tou = any(p.price_per_kwh is not None for p in base.periods)
        for i, (a, price) in enumerate(segments):
            t_s.append(a)
            prices.append(price)
            if tou:  # time of use moves the price within the segment
                b = segments[i + 1][0] if i + 1 < len(segments) else horizon_s
                sched = TariffSchedule(base.model_copy(update={"price_per_kwh": price}), clock, layouts)
                prices[-1] = sched.at(a).per_kwh
                for t in sched.changes(a, b):
                    t_s.append(t)
                    prices.append(sched.at(t + 1.0).per_kwh)
            codes += [k] * (len(t_s) - len(codes))
    sites = [s.site_id for s in run.sites]
    return pd.DataFrame(
        {
            "t_s": np.asarray(t_s, dtype=float),
            "site_id": pd.Categorical.from_codes(
                np.asarray(codes, dtype=np.int64), categories=pd.Index(sites, dtype=str)
            ),
            "price_per_kwh": np.asarray(prices, dtype=float),
        }
    )


def _break_even(revenue: float, variable: float, fixed: float, utilization: float) -> float | None:
    """Time utilization at which revenue less variable cost pays the fixed cost, if both scale with utilization."""
    contribution = revenue - variable
    if fixed <= 0:
        return 0.0
    if contribution <= 0 or utilization <= 0:
        return None
    return utilization * fixed / contribution


def revenue_kpis(
    run: RunTables,
    sessions: pd.DataFrame,
    invoices: pd.DataFrame,
    ports: pd.DataFrame,
    grid: dict[str, Any],
    maintenance_cost: float,
    v2g: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `revenue` section of kpis.json: the waterfall, prices, memberships, payments, break-even.

    `v2g` is the `v2g` section (`sim.v2g_metrics.v2g_kpis`) when the scenario has V2G: its export
    revenue and V2G remuneration then enter the margin, and are shown beside it.
    """
    scenario = run.scenario
    days = scenario.horizon_s / 86400.0
    # The billed rows of the three columns read below: a copy of every column of a year of sessions is large.
    billed = sessions.loc[sessions["evse_id"].notna(), ["amount_charged", "energy_delivered_kwh", "plug_t_s"]]
    session_fees = float(sessions["payment_fee"].sum())
    invoiced = invoices[invoices["action"] != "leave"]
    membership_fees = float(invoiced["amount"].sum())
    membership_payment_fees = float(invoiced["payment_fee"].sum())
    components = {c: _money(sessions[c].sum()) for c in COMPONENTS}
    gross = sum(components.values())
    member = float(sessions["member_discount"].sum())
    loyalty = float(sessions["loyalty_discount"].sum())
    amounts = float(sessions["amount_charged"].sum())
    revenue = amounts + membership_fees - session_fees - membership_payment_fees
    energy_cost = _money(grid["network"]["energy_cost"])
    demand = _money(grid["network"]["demand_charge"])
    maintenance_cost = _money(maintenance_cost)
    costs = energy_cost + demand + maintenance_cost  # of the reported (rounded) costs, so the margin adds up
    v2g_money: dict[str, float] = {}
    if v2g is not None:
        v2g_money = {k: _money(v2g["network"][k]) for k in ("export_revenue", "v2g_remuneration")}
    billed_amounts = float(billed["amount_charged"].sum())  # only a plugged-in session is billed
    energy_kwh = float(billed["energy_delivered_kwh"].sum())
    clock = WallClock.of(scenario)
    wall_s = pd.Series(clock.wall_s_many(billed["plug_t_s"].to_numpy()), index=billed.index)
    local_hour = ((clock.day0_s + wall_s) // 3600).astype(int) % 24
    amounts_by_hour = billed.groupby(local_hour)["amount_charged"].sum().reindex(range(24), fill_value=0.0)
    attempts = int(sessions["plug_t_s"].notna().sum()) + int((sessions["cause"] == "payment").sum())
    failures = int((sessions["cause"] == "payment").sum())
    joined = invoices.loc[invoices["action"] == "join", "driver_id"]
    seen = sessions.loc[sessions["driver_id"] >= 0, "driver_id"].nunique()
    sites = {}
    for site in run.sites:
        s = sessions[sessions["site_id"] == site.site_id]
        p = ports[ports["site_id"] == site.site_id]
        g = grid["sites"][site.site_id]
        rev = float(s["amount_charged"].sum() - s["payment_fee"].sum())  # sessions only: memberships are not per site
        util = float(p["plugged_s"].sum() / (len(p) * scenario.horizon_s)) if len(p) else 0.0
        sites[site.site_id] = {
            "session_revenue": _money(rev),
            "energy_cost": _money(g["energy_cost"]),
            "demand_charge": _money(g["demand_charge"]),
            "margin_before_maintenance": _money(rev - g["energy_cost"] - g["demand_charge"]),
            "session_revenue_per_port_per_day": _money(rev / len(p) / days) if len(p) else 0.0,
            "time_utilization": util,
            "break_even_utilization_before_maintenance": _break_even(rev, g["energy_cost"], g["demand_charge"], util),
        }
    return {
        "currency": scenario.tariff.currency,
        "gross": _money(gross),
        "components": components,
        "member_discount": _money(member),
        "loyalty_discount": _money(loyalty),
        "session_amounts": _money(amounts),
        "membership_fees": _money(membership_fees),
        "payment_fees": _money(session_fees + membership_payment_fees),
        "revenue": _money(revenue),
        "energy_cost": _money(energy_cost),
        "demand_charge": _money(demand),
        "maintenance_cost": _money(maintenance_cost),
        **v2g_money,
        "margin": _money(
            revenue + v2g_money.get("export_revenue", 0.0) - v2g_money.get("v2g_remuneration", 0.0) - costs
        ),  # fmt: skip
        "demand_charge_share_of_cost": demand / costs if costs > 0 else 0.0,
        "average_price_per_kwh": billed_amounts / energy_kwh if energy_kwh > 0 else None,
        "session_revenue_per_port_per_day": _money((amounts - session_fees) / len(ports) / days) if len(ports) else 0.0,
        "session_amounts_by_local_hour": [_money(x) for x in amounts_by_hour.to_numpy()],
        "payment_attempts": attempts,
        "payment_failures": failures,
        "payment_failure_share": failures / attempts if attempts else 0.0,
        "members_joined": int(joined.nunique()),
        "membership_uptake": float(joined.nunique() / seen) if seen else 0.0,
        "members_at_end": int(_members_at_end(invoices)),
        "sessions_priced_out": int((sessions["outcome"] == "priced_out").sum()),
        "sessions_shifted": int((sessions["shift_s"] > 0).sum()),
        "sessions_detoured": int((sessions["detour_km"] > 0).sum()),
        "sites": sites,
    }


def _members_at_end(invoices: pd.DataFrame) -> int:
    if invoices.empty:
        return 0
    last = invoices.sort_values("t_s", kind="stable").groupby("driver_id")["action"].last()
    return int((last != "leave").sum())
