"""The revenue section: KPI tables, a waterfall from gross to margin, price and occupancy, revenue per port and hour.

Reads kpis.json's "revenue" object, tariffs.parquet and the sessions' plug-in prices and times.
Each figure has a small pure function that prepares its data (tested on hand-computed inputs)
and a drawing function that takes that data as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.document import FigureRef, Section, Table
from reports.figures import DPI, png_bytes
from reports.kpi_tables import _count, _missing, _money, _percent, per_site_table, sites_by_arrivals
from reports.results import Results

__all__ = [
    "MAX_BAR_SITES",
    "MAX_OCCUPANCY_BINS",
    "MAX_PRICE_SITES",
    "NO_REVENUE_NOTE",
    "OLD_FOLDER_NOTE",
    "REVENUE_FIGURES",
    "RevenueResults",
    "bin_hours",
    "has_money",
    "load_revenue",
    "mean_in_use",
    "ports_in_use",
    "price_occupancy_figure",
    "price_steps",
    "revenue_by_hour_figure",
    "revenue_per_port_figure",
    "revenue_section",
    "waterfall_figure",
    "waterfall_steps",
]

REVENUE_FIGURES = ("revenue_waterfall.png", "price_occupancy.png", "revenue_per_port.png", "revenue_by_hour.png")
MAX_PRICE_SITES = 4
MAX_BAR_SITES = 30
MAX_OCCUPANCY_BINS = 600
"""Ports in use are drawn as means over bins of whole hours, at most this many over the run."""
SESSION_COLUMNS = ("site_id", "plug_t_s", "departure_t_s", "price_per_kwh")
OLD_FOLDER_NOTE = (
    "This results folder was written before chargetwin kept revenue results (kpis.json has no"
    ' "revenue" object); run the scenario again to see the waterfall, prices and revenue per port.'
)
NO_REVENUE_NOTE = (
    "The tariff charged nothing in this run, so there is no price, revenue per port or revenue by hour to draw."
)
TOTAL_COLOR = "#457b9d"
GAIN_COLOR = "#2a9d8f"
LOSS_COLOR = "#e76f51"
PRICE_COLOR = "#1d3557"
OCCUPANCY_COLOR = "#a8dadc"
_DAY_S = 86400.0
# (kpis.json key, label, sign): sign +1 or -1 is a step from the running total, 0 a total standing on zero.
_WATERFALL = (
    ("gross", "gross", 0),
    ("member_discount", "member discounts", -1),
    ("loyalty_discount", "loyalty discounts", -1),
    ("payment_fees", "payment fees", -1),
    ("membership_fees", "membership fees", +1),
    ("revenue", "revenue", 0),
    ("energy_cost", "energy cost", -1),
    ("demand_charge", "demand charges", -1),
    ("maintenance_cost", "maintenance", -1),
    ("margin", "margin", 0),
)


@dataclass(frozen=True)
class RevenueResults:
    """A run's revenue results; the tables hold only the columns the figures use."""

    kpis: dict[str, Any]
    """kpis.json's "revenue" object."""
    tariffs: pd.DataFrame
    """t_s, site_id, price_per_kwh: each site's starting price, then every dynamic change."""
    sessions: pd.DataFrame
    """site_id, plug_t_s, departure_t_s, price_per_kwh: one row per arriving driver."""


def load_revenue(results_dir: Path) -> RevenueResults | None:
    """The revenue results, None without kpis.json's "revenue" key; a missing table or column is an error."""
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    if "revenue" not in kpis:
        return None
    if not (results_dir / "tariffs.parquet").is_file():
        raise FileNotFoundError(f"kpis.json has revenue KPIs but {results_dir} lacks tariffs.parquet")
    names = pq.read_schema(results_dir / "sessions.parquet").names
    if missing := [name for name in SESSION_COLUMNS if name not in names]:
        raise ValueError(f"kpis.json has revenue KPIs but sessions.parquet lacks the columns {', '.join(missing)}")
    return RevenueResults(
        kpis=kpis["revenue"],
        tariffs=pd.read_parquet(results_dir / "tariffs.parquet", columns=["t_s", "site_id", "price_per_kwh"]),
        sessions=pd.read_parquet(results_dir / "sessions.parquet", columns=list(SESSION_COLUMNS)),
    )


def has_money(kpis: Mapping[str, Any]) -> bool:
    """Whether the run charged anything: session charges or membership fees."""
    return bool(kpis["gross"] != 0 or kpis["membership_fees"] != 0)


# ---------------------------------------------------------------- waterfall


def waterfall_steps(kpis: Mapping[str, Any]) -> pd.DataFrame:
    """The waterfall from gross to margin, bar by bar, in kpis.json's values.

    Steps (discounts, fees, costs) float from the running total; the totals (gross, revenue,
    margin) stand on zero at kpis.json's value, which the steps before them should reach.

    Returns:
        Columns key, label, kind ("total" or "step"), amount (signed: what the bar adds),
        start and end (the bar's ends; a total runs from 0).
    """
    rows, running = [], 0.0
    for key, label, sign in _WATERFALL:
        value = float(kpis[key])
        if sign == 0:
            rows.append((key, label, "total", value, 0.0, value))
            running = value
        else:
            amount = sign * value + 0.0  # + 0.0: no "-0.00" for a cost of zero
            rows.append((key, label, "step", amount, running, running + amount))
            running += amount
    return pd.DataFrame(rows, columns=["key", "label", "kind", "amount", "start", "end"])


def waterfall_figure(steps: pd.DataFrame, currency: str) -> Figure:
    """Bars of ``waterfall_steps``: totals in blue, gains in green, losses in red, each labelled with its amount."""
    figure = Figure(figsize=(10, 4.6), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(steps))
    start = steps["start"].to_numpy(dtype=float)
    end = steps["end"].to_numpy(dtype=float)
    amount = steps["amount"].to_numpy(dtype=float)
    total = (steps["kind"] == "total").to_numpy()
    colors = np.where(total, TOTAL_COLOR, np.where(amount >= 0, GAIN_COLOR, LOSS_COLOR))
    ax.bar(positions, end - start, bottom=start, width=0.7, color=colors.tolist())
    for i in range(len(steps) - 1):  # dotted connectors from each bar's end to the next bar
        ax.hlines(end[i], i + 0.35, i + 0.65, colors="#6c757d", linestyles=":", linewidth=0.8)
    ends = np.concatenate([start, end, [0.0]])
    low, high = float(ends.min()), float(ends.max())
    span = max(high - low, 1.0)
    for position, a, b, value, is_total in zip(positions, start, end, amount, total, strict=True):
        # Above the bar, or below it for a total under zero (a loss-making margin).
        below = is_total and value < 0
        ax.annotate(
            f"{value:,.2f}" if is_total or value == 0 else f"{value:+,.2f}",
            (position, min(a, b) if below else max(a, b)),
            xytext=(0, -2 if below else 2),
            textcoords="offset points",
            ha="center",
            va="top" if below else "bottom",
            fontsize=8,
        )
    ax.axhline(0.0, color="k", linewidth=0.6)
    ax.set_ylim(low - 0.08 * span if low < 0 else 0.0, high + 0.08 * span)
    ax.set_xticks(positions, steps["label"].tolist(), rotation=20, ha="right", fontsize=9)
    ax.set_ylabel(currency)
    return figure


# ---------------------------------------------------------------- price and occupancy


def price_steps(tariffs: pd.DataFrame, site_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A site's price per kWh as a step function from tariffs.parquet.

    Changes at the same time keep the last one in the file (the price then in force).

    Returns:
        Times in seconds since the start, ascending, and the price from each time on.
    """
    rows = tariffs.loc[tariffs["site_id"].astype(str) == site_id, ["t_s", "price_per_kwh"]]
    rows = rows.astype(float).sort_values("t_s", kind="stable")
    rows = rows.drop_duplicates("t_s", keep="last")
    return rows["t_s"].to_numpy(dtype=float), rows["price_per_kwh"].to_numpy(dtype=float)


def ports_in_use(plug_t_s: Any, departure_t_s: Any, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Ports in use over the run as a step function: +1 at each plug-in, -1 at each departure.

    A NaN departure (ongoing) lasts until ``horizon_s``; a NaN plug-in (never plugged in) is
    skipped. Times are clipped to [0, horizon_s].

    Returns:
        Times from 0, ascending and distinct, and the count from each time on (the last is at ``horizon_s``).
    """
    plug = np.asarray(plug_t_s, dtype=float)
    departure = np.asarray(departure_t_s, dtype=float)
    plugged = ~np.isnan(plug)
    begin_s = np.clip(plug[plugged], 0.0, horizon_s)
    end_s = np.clip(np.nan_to_num(departure[plugged], nan=horizon_s), 0.0, horizon_s)
    times = np.concatenate([[0.0, horizon_s], begin_s, end_s])
    deltas = np.concatenate([[0, 0], np.ones(len(begin_s), dtype=np.int64), -np.ones(len(end_s), dtype=np.int64)])
    t_s, index = np.unique(times, return_inverse=True)
    return t_s, np.cumsum(np.bincount(index, weights=deltas, minlength=len(t_s))).round().astype(np.int64)


def bin_hours(horizon_s: float, max_bins: int = MAX_OCCUPANCY_BINS) -> float:
    """The shortest bin of 1, 2, 3, 4, 6 or 12 hours, or whole days, that cuts the run into at most ``max_bins``."""
    horizon_h = horizon_s / 3600.0
    for hours in (1, 2, 3, 4, 6, 12):
        if horizon_h / hours <= max_bins:
            return float(hours)
    return 24.0 * np.ceil(horizon_h / 24.0 / max_bins)


def mean_in_use(t_s: np.ndarray, count: np.ndarray, bin_s: float, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The time-weighted mean of a step function (``ports_in_use``) over bins of ``bin_s`` from 0.

    Returns:
        Bin starts and each bin's mean over the part of it within ``horizon_s``.
    """
    edges_s = np.append(np.arange(0.0, horizon_s, bin_s), horizon_s)
    # The integral of the step function up to each edge, from the cumulative integral at its own breakpoints.
    area = np.concatenate([[0.0], np.cumsum(count[:-1] * np.diff(t_s))])
    k = np.clip(np.searchsorted(t_s, edges_s, side="right") - 1, 0, len(t_s) - 1)
    at_edges = area[k] + count[k] * (edges_s - t_s[k])
    return edges_s[:-1], np.diff(at_edges) / np.diff(edges_s)


def price_occupancy_figure(
    revenue: RevenueResults,
    ports: pd.DataFrame,
    site_ids: Sequence[str],
    site_names: Mapping[str, str],
    horizon_s: float,
    currency: str,
) -> Figure:
    """One axis per site: the price per kWh set (step line), each plug-in's price (dots), ports in use (right axis).

    Ports in use are means over bins of ``bin_hours``, so a run of months stays readable.
    """
    figure = Figure(figsize=(10, 1.4 + 2.0 * len(site_ids)), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(site_ids), 1, sharex=True, squeeze=False)[:, 0]
    sessions = revenue.sessions
    session_site = sessions["site_id"].astype(str)
    port_site = ports["site_id"].astype(str)
    horizon_d = horizon_s / _DAY_S
    bin_s = bin_hours(horizon_s) * 3600.0
    bin_label = "hour" if bin_s == 3600.0 else f"{bin_s / 3600.0:g} h"
    for ax, site_id in zip(axes, site_ids, strict=True):
        rows = sessions[session_site == site_id]
        n_ports = int((port_site == site_id).sum())
        t_s, count = ports_in_use(rows["plug_t_s"], rows["departure_t_s"], horizon_s)
        bin_start_s, mean = mean_in_use(t_s, count, bin_s, horizon_s)
        in_use = ax.twinx()
        in_use.fill_between(
            np.append(bin_start_s, horizon_s) / _DAY_S,
            np.append(mean, mean[-1] if len(mean) else 0.0),
            step="post",
            color=OCCUPANCY_COLOR,
            lw=0,
            label=f"ports in use, mean per {bin_label}",
        )
        in_use.set_ylim(0, max(n_ports, 1) * 1.05)
        in_use.yaxis.set_major_locator(MaxNLocator(integer=True))
        in_use.set_ylabel("ports in use", fontsize=8)
        # The price axis in front of the occupancy area.
        ax.set_zorder(in_use.get_zorder() + 1)
        ax.patch.set_visible(False)
        change_s, price = price_steps(revenue.tariffs, site_id)
        shown = price
        if len(change_s):
            ax.step(
                np.append(change_s, horizon_s) / _DAY_S,
                np.append(price, price[-1]),
                where="post",
                color=PRICE_COLOR,
                linewidth=1.0,
                zorder=3,
                label="price per kWh set",
            )
        plugged = rows[rows["plug_t_s"].notna()]
        if len(plugged):
            ax.plot(
                plugged["plug_t_s"].to_numpy(dtype=float) / _DAY_S,
                plugged["price_per_kwh"].to_numpy(dtype=float),
                ".",
                color=LOSS_COLOR,
                markersize=2,
                alpha=0.5,
                label="price at plug-in",
            )
            shown = np.concatenate([price, plugged["price_per_kwh"].to_numpy(dtype=float)])
        top = float(np.nanmax(shown, initial=0.0))
        ax.set_ylim(0.0, max(top, 0.01) * 1.15)
        ax.set_ylabel(f"{currency}/kWh")
        title = f"{site_id} {site_names.get(site_id, '')}".strip() + f" · {n_ports} port{'s' * (n_ports != 1)}"
        ax.set_title(title, loc="left", fontsize=9)
    axes[-1].set_xlim(0.0, horizon_d)
    axes[-1].set_xlabel("days since start")
    handles: dict[str, Artist] = {}
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="outside upper center", fontsize=8, ncols=len(handles))
    return figure


# ---------------------------------------------------------------- revenue per port, by hour


def revenue_per_port_figure(per_port: pd.Series, currency: str) -> Figure:
    """Horizontal bars of session revenue per port per day, one per site in the order given (top first)."""
    figure = Figure(figsize=(10, 1.4 + 0.32 * max(len(per_port), 1)), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(per_port))
    values = per_port.to_numpy(dtype=float)
    ax.barh(positions, values, color=np.where(values >= 0, GAIN_COLOR, LOSS_COLOR).tolist())
    for position, value in zip(positions, values, strict=True):
        ax.annotate(
            f"{value:,.2f}",
            (max(value, 0.0), position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(positions, [str(site_id) for site_id in per_port.index], fontsize=8)
    ax.set_ylim(len(per_port) - 0.4, -0.6)
    ax.set_xlim(min(float(values.min(initial=0.0)), 0.0), 1.15 * max(float(values.max(initial=0.0)), 1.0))
    ax.set_xlabel(f"session revenue per port per day ({currency})")
    return figure


def revenue_by_hour_figure(by_hour: Sequence[float], zone_name: str, currency: str) -> Figure:
    """Bars of session amounts by local hour of plug-in (24 values)."""
    figure = Figure(figsize=(10, 3.6), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    ax.bar(np.arange(24), np.asarray(by_hour, dtype=float), color=TOTAL_COLOR)
    ax.set_xticks(range(24))
    ax.set_xlim(-0.6, 23.6)
    ax.set_xlabel(f"hour of plug-in ({zone_name})")
    ax.set_ylabel(currency)
    return figure


# ---------------------------------------------------------------- tables


def _price(currency: str) -> Any:
    return lambda value: "–" if _missing(value) else f"{value:,.3f} {currency}/kWh"


def revenue_table(kpis: Mapping[str, Any], currency: str) -> Table:
    """The network revenue KPIs, from gross to margin, then prices, payments, memberships and drivers' answers."""
    money = _money(currency)
    rows = [
        ("Gross (list price after minimum and maximum)", money(kpis["gross"])),
        ("Member discounts", money(kpis["member_discount"])),
        ("Loyalty discounts", money(kpis["loyalty_discount"])),
        ("Session amounts", money(kpis["session_amounts"])),
        ("Membership fees", money(kpis["membership_fees"])),
        ("Payment fees", money(kpis["payment_fees"])),
        ("Revenue", money(kpis["revenue"])),
        ("Energy cost", money(kpis["energy_cost"])),
        ("Demand charges", money(kpis["demand_charge"])),
        ("Maintenance cost", money(kpis["maintenance_cost"])),
        ("Margin", money(kpis["margin"])),
        ("Demand charges, share of cost", _percent(kpis["demand_charge_share_of_cost"])),
        ("Average price paid", _price(currency)(kpis["average_price_per_kwh"])),
        ("Session revenue per port per day (after payment fees)", money(kpis["session_revenue_per_port_per_day"])),
        ("Payment attempts", _count(kpis["payment_attempts"])),
        ("Payment failures", f"{_count(kpis['payment_failures'])} ({_percent(kpis['payment_failure_share'])})"),
        ("Members joined", _count(kpis["members_joined"])),
        ("Membership uptake (of drivers seen)", _percent(kpis["membership_uptake"])),
        ("Members at the end", _count(kpis["members_at_end"])),
        ("Sessions priced out", _count(kpis["sessions_priced_out"])),
        ("Sessions shifted to a cheaper time", _count(kpis["sessions_shifted"])),
        ("Sessions at another site (detour)", _count(kpis["sessions_detoured"])),
    ]
    note = (
        "Revenue = session amounts + membership fees − payment fees; margin = revenue − energy cost − demand charges"
        " − maintenance cost. Average price paid: session amounts over energy delivered. Payment failures: refused"
        " payments over attempts."
    )
    return Table("Revenue KPIs", ("KPI", "Value"), rows, note=note)


def components_table(kpis: Mapping[str, Any], currency: str) -> Table:
    """Gross by tariff component, with each one's share of gross."""
    money = _money(currency)
    labels = {
        "energy_charge": "Energy",
        "time_charge": "Time",
        "session_fee_charge": "Session fees",
        "idle_charge": "Idle fees",
        "cap_adjustment": "Minimum and maximum charge",
    }
    gross = float(kpis["gross"])
    rows = [
        (labels.get(key, key), money(value), _percent(value / gross if gross else None))
        for key, value in kpis["components"].items()
    ]
    note = "Minimum and maximum charge: what raising sessions to the minimum and capping them at the maximum added."
    return Table("Gross by component", ("Component", "Amount", "Share of gross"), rows, note=note)


def revenue_sites_table(
    sites: Mapping[str, Mapping[str, Any]], site_names: Mapping[str, str], currency: str, by_arrivals: Sequence[str]
) -> Table:
    """One row per site of kpis.json's revenue "sites", in the order of ``by_arrivals``, at most ``MAX_BAR_SITES``."""
    money = _money(currency)
    columns = [
        ("Session revenue", "session_revenue", money),
        ("Energy cost", "energy_cost", money),
        ("Demand charge", "demand_charge", money),
        ("Margin before maintenance", "margin_before_maintenance", money),
        ("Session revenue per port per day", "session_revenue_per_port_per_day", money),
        ("Time utilization", "time_utilization", _percent),
        ("Break-even utilization before maintenance", "break_even_utilization_before_maintenance", _percent),
    ]
    note = (
        "Session revenue: session amounts − their payment fees (membership fees are not per site). Break-even"
        " utilization before maintenance: the time utilization at which session revenue less energy cost would pay"
        " the demand charge; –: never at this margin."
    )
    return per_site_table("Revenue per site", sites, site_names, columns, by_arrivals, MAX_BAR_SITES, note)


# ---------------------------------------------------------------- the section


def _figures(revenue: RevenueResults, results: Results) -> list[FigureRef]:
    kpis, currency = revenue.kpis, results.currency
    steps = waterfall_steps(kpis)
    figures = []
    if (steps["amount"] != 0).any():  # nothing charged and nothing spent: no waterfall either
        caption = "From gross to margin: discounts, payment fees, membership fees and costs; blue: totals, green: adds,"
        caption += " red: takes away."
        figures.append(FigureRef("revenue_waterfall.png", caption, png_bytes(waterfall_figure(steps, currency))))
    if not has_money(kpis):
        return figures
    by_arrivals = sites_by_arrivals(results.site_kpis)
    price_sites = [site_id for site_id in by_arrivals if site_id in kpis["sites"]][:MAX_PRICE_SITES]
    price_caption = (
        "Price per kWh per site: line, the price set (the starting tariff and every dynamic change, from"
        " tariffs.parquet); dots, the list price per kWh in force at each plug-in, time-of-use periods included;"
        " shaded, ports in use (right axis)."
    )
    if n_more := len(kpis["sites"]) - len(price_sites):
        price_caption += f" The {len(price_sites)} sites with the most arrivals; {n_more} more in tariffs.parquet."
    per_port = pd.Series({site_id: site["session_revenue_per_port_per_day"] for site_id, site in kpis["sites"].items()})
    per_port = per_port.astype(float).sort_values(ascending=False, kind="stable")
    per_port_caption = "Session revenue (session amounts − payment fees) per port per day by site, highest first."
    if len(per_port) > MAX_BAR_SITES:
        per_port_caption += f" The top {MAX_BAR_SITES} of {len(per_port)} sites."
        per_port = per_port.iloc[:MAX_BAR_SITES]
    zone_name = results.zone_name
    return [
        *figures,
        FigureRef(
            "price_occupancy.png",
            price_caption,
            png_bytes(
                price_occupancy_figure(
                    revenue, results.ports, price_sites, results.site_names, results.horizon_s, currency
                )
            ),
        ),
        FigureRef("revenue_per_port.png", per_port_caption, png_bytes(revenue_per_port_figure(per_port, currency))),
        FigureRef(
            "revenue_by_hour.png",
            f"Session amounts by hour of plug-in ({zone_name}), summed over the run.",
            png_bytes(revenue_by_hour_figure(kpis["session_amounts_by_local_hour"], zone_name, currency)),
        ),
    ]


def revenue_section(revenue: RevenueResults | None, results: Results) -> Section:
    """The revenue section; for a folder without revenue results, one sentence that says so."""
    if revenue is None:
        table = Table(
            "Revenue KPIs", ("KPI", "Value"), [("Revenue results", "not in this folder")], note=OLD_FOLDER_NOTE
        )
        return Section("Revenue", [table], [])
    kpis, currency = revenue.kpis, results.currency
    main = revenue_table(kpis, currency)
    if not has_money(kpis):
        main = Table(main.title, main.headers, main.rows, note=f"{main.note} {NO_REVENUE_NOTE}")
    tables = [
        main,
        components_table(kpis, currency),
        revenue_sites_table(kpis["sites"], results.site_names, currency, sites_by_arrivals(results.site_kpis)),
    ]
    return Section("Revenue", tables, _figures(revenue, results))
