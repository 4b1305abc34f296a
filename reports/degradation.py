"""The report's battery degradation section: capacity fade by cause, per site, and what it costs.

Shown when kpis.json has a ``degradation`` key (the scenario had a `degradation` section); it reads
that key and ``degradation.parquet``. Each figure has a small pure function preparing its data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.document import FigureRef, Section, Table
from reports.figures import DPI, png_bytes
from reports.kpi_tables import MAX_TABLE_SITES, _count, _energy, _missing, _money

__all__ = ["FADE_COLORS", "MAX_FADE_SITES", "degradation_section", "fade_by_site", "fade_figure", "sites_table"]

MAX_FADE_SITES = 20
FADE_COLORS = {"calendar_fade_kwh": "#8ab17d", "cycle_fade_charging_kwh": "#2a9d8f", "cycle_fade_v2g_kwh": "#e76f51"}
_FADE_LABELS = {"calendar_fade_kwh": "calendar (plugged in)", "cycle_fade_charging_kwh": "charging",
                "cycle_fade_v2g_kwh": "V2G"}  # fmt: skip
_COLUMNS = ("site_id", "charged_kwh", "discharged_kwh", *FADE_COLORS, "fade_kwh", "cost")


def _wh(value_kwh: Any) -> str:
    return "–" if _missing(value_kwh) else f"{value_kwh * 1000:,.1f} Wh"


def _wh_per_kwh(value: Any) -> str:
    return "–" if _missing(value) else f"{value:,.3f} Wh/kWh"


def kpi_table(k: Mapping[str, Any], currency: str) -> Table:
    """kpis.json's ``degradation`` object, one KPI per row."""
    money = _money(currency)
    rows = [
        ("Sessions (EV visits)", _count(k["sessions"])),
        ("Energy charged", _energy(k["charged_kwh"])),
        ("Energy given back (V2G)", _energy(k["discharged_kwh"])),
        ("Capacity lost: calendar, while plugged in", _wh(k["calendar_fade_kwh"])),
        ("Capacity lost: charging", _wh(k["cycle_fade_charging_kwh"])),
        ("Capacity lost: V2G", _wh(k["cycle_fade_v2g_kwh"])),
        ("Capacity lost: total", _wh(k["fade_kwh"])),
        (
            "Per EV visit: mean / 95th percentile / max",
            " / ".join(_wh(k[f"fade_per_ev_{s}_kwh"]) for s in ("mean", "p95", "max")),
        ),  # fmt: skip
        ("Charging: capacity lost per kWh charged", _wh_per_kwh(k["charging_fade_wh_per_kwh"])),
        ("V2G: capacity lost per kWh given back", _wh_per_kwh(k["v2g_fade_wh_per_kwh"])),
        ("Cost: calendar", money(k["cost_calendar"])),
        ("Cost: charging", money(k["cost_charging"])),
        ("Cost: V2G", money(k["cost_v2g"])),
        ("Cost: total", money(k["cost"])),
        ("V2G wear per kWh given back", "–" if not k["discharged_kwh"] else f"{k['v2g_cost_per_kwh']:,.4f} {currency}"),
    ]
    if k["drivers"]:
        rows += [("Repeat customers", _count(k["drivers"])),
                 ("Their calendar fade away from the network", _wh(k["calendar_fade_away_kwh"])),
                 ("Fade per repeat customer, away included", _wh(k["fade_per_driver_mean_kwh"]))]  # fmt: skip
    if "v2g_net_margin" in k:
        rows += [("V2G pay to drivers", money(k["v2g_remuneration"])),
                 ("V2G pay net of its wear", money(k["v2g_net_margin"]))]  # fmt: skip
    note = (
        "Schmalstieg et al. (2014) ageing model, marginal fade of the batteries at their age. Charging: cycling from"
        " the plug-in SoC up to the departure SoC; V2G: all cycling beyond that (discharges and their recharge);"
        " calendar: ageing with time while plugged in. Cost: capacity lost × the scenario's cost per kWh."
    )
    return Table("Capacity lost and its cost", ("KPI", "Value"), rows, note=note)


def fade_by_site(rows: pd.DataFrame, count: int = MAX_FADE_SITES) -> pd.DataFrame:
    """Capacity lost per site by cause (kWh), the `count` sites with the most, most first, ties by id.

    Returns:
        One row per site (index: site id), the columns of `FADE_COLORS`, then ``charged_kwh``,
        ``discharged_kwh``, ``fade_kwh``, ``cost`` and ``sessions``.
    """
    columns = [*FADE_COLORS, "charged_kwh", "discharged_kwh", "fade_kwh", "cost"]
    grouped = rows.groupby("site_id", observed=True, sort=False)
    sums = grouped[columns].sum()
    sums["sessions"] = grouped.size()
    order = sorted(sums.index, key=lambda site: (-sums.loc[site, "fade_kwh"], str(site)))[:count]
    out = sums.loc[order].astype(float)
    out.index = pd.Index([str(s) for s in order], dtype=object)
    return out


def sites_table(per_site: pd.DataFrame, site_names: Mapping[str, str], currency: str, total_sites: int) -> Table:
    """Capacity lost and its cost per site (`fade_by_site`, at most ``MAX_TABLE_SITES`` rows)."""
    money = _money(currency)
    shown = per_site.iloc[:MAX_TABLE_SITES]
    rows = [
        (
            site_id,
            site_names.get(site_id, ""),
            _count(r["sessions"]),
            _energy(r["charged_kwh"]),
            _energy(r["discharged_kwh"]),
            _wh(r["calendar_fade_kwh"]),
            _wh(r["cycle_fade_charging_kwh"]),
            _wh(r["cycle_fade_v2g_kwh"]),
            "–" if not r["charged_kwh"] else _wh_per_kwh(1000 * r["cycle_fade_charging_kwh"] / r["charged_kwh"]),
            money(r["cost"]),
        )
        for site_id, r in shown.iterrows()
    ]
    headers = ("Site", "Name", "Sessions", "Charged", "Given back", "Calendar", "Charging", "V2G",
               "Charging per kWh", "Cost")  # fmt: skip
    note = "Capacity lost by cause; sites with the most capacity lost first."
    if more := total_sites - len(shown):
        note = f"The {len(shown)} sites with the most capacity lost; {more} more in degradation.parquet. " + note
    return Table("Battery degradation per site", headers, rows, label_columns=2, note=note)


def fade_figure(per_site: pd.DataFrame) -> Figure:
    """Stacked horizontal bars of capacity lost per site by cause (`fade_by_site`), most on top."""
    figure = Figure(figsize=(10, 1.4 + 0.3 * max(len(per_site), 1)), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    if per_site.empty:
        ax.text(0.5, 0.5, "No EV plugged in.", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    positions = np.arange(len(per_site))
    left = np.zeros(len(per_site))
    for column, color in FADE_COLORS.items():
        values = per_site[column].to_numpy(dtype=float) * 1000.0
        ax.barh(positions, values, left=left, color=color, label=_FADE_LABELS[column])
        left += values
    ax.set_yticks(positions, per_site.index.tolist())
    ax.invert_yaxis()
    ax.set_xlabel("battery capacity lost (Wh)")
    figure.legend(loc="outside upper center", fontsize=8, ncols=len(FADE_COLORS))
    return figure


def degradation_section(results_dir: Path, site_names: Mapping[str, str], currency: str) -> Section | None:
    """The section, or None when kpis.json has no ``degradation`` key; a missing table is an error."""
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    if "degradation" not in kpis:
        return None
    path = results_dir / "degradation.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"kpis.json has degradation KPIs but {results_dir} lacks degradation.parquet")
    rows = pd.read_parquet(path, columns=list(_COLUMNS))
    per_site = fade_by_site(rows, count=max(MAX_FADE_SITES, MAX_TABLE_SITES))
    n_sites = rows["site_id"].nunique()
    caption = "Battery capacity lost per site by cause: calendar ageing while plugged in, charging, V2G."
    if n_sites > MAX_FADE_SITES:
        caption += f" The {MAX_FADE_SITES} sites with the most; {n_sites - MAX_FADE_SITES} more in degradation.parquet."
    figure = FigureRef("degradation.png", caption, png_bytes(fade_figure(per_site.iloc[:MAX_FADE_SITES])))
    tables = [kpi_table(kpis["degradation"], currency), sites_table(per_site, site_names, currency, n_sites)]
    return Section("Battery degradation", tables, [figure])
