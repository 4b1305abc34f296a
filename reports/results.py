"""Read the parts of a results folder the report shows: run facts, KPIs and a few table columns."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = ["Results", "load_results"]


@dataclass(frozen=True)
class Results:
    """One run as the report sees it; the tables hold only the columns the figures use."""

    scenario_name: str
    seed: int
    start: dt.datetime
    horizon_s: float
    manager_kind: str
    currency: str
    version: str
    site_names: dict[str, str]
    network_kpis: dict[str, Any]
    site_kpis: dict[str, dict[str, Any]]
    load: pd.DataFrame
    """site_id, t_s, power_kw, capacity_kw: 15-minute means per site."""
    sessions: pd.DataFrame
    """plug_t_s, departure_t_s: one row per arriving driver."""
    ports: pd.DataFrame
    """site_id, charger_id, time_utilization: one row per EVSE."""


def load_results(results_dir: Path) -> Results:
    """Read ``results_dir``; a missing file or key is an error, not a silent default."""
    manifest = json.loads((results_dir / "manifest.json").read_text(encoding="utf-8"))
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    scenario = yaml.safe_load((results_dir / "scenario.yaml").read_text(encoding="utf-8"))
    start = dt.datetime.fromisoformat(manifest["start"])
    if start.utcoffset() is None:
        raise ValueError(f"manifest start (={manifest['start']!r}) needs a UTC offset")
    return Results(
        scenario_name=str(manifest["scenario"]),
        seed=int(manifest["seed"]),
        start=start,
        horizon_s=float(manifest["horizon_days"]) * 86400.0,
        manager_kind=str(scenario["manager"]["kind"]),
        currency=str(kpis["currency"]),
        version=str(manifest["versions"].get("chargetwin", "?")),
        site_names={str(site["id"]): str(site.get("name", "")) for site in scenario["network"]["sites"]},
        network_kpis=kpis["network"],
        site_kpis=kpis["sites"],
        load=pd.read_parquet(results_dir / "load.parquet", columns=["site_id", "t_s", "power_kw", "capacity_kw"]),
        sessions=pd.read_parquet(results_dir / "sessions.parquet", columns=["plug_t_s", "departure_t_s"]),
        ports=pd.read_parquet(results_dir / "ports.parquet", columns=["site_id", "charger_id", "time_utilization"]),
    )
