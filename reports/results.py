"""Read the parts of a results folder the report shows: run facts, KPIs and a few table columns."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.parquet as pq
import yaml

__all__ = [
    "EV_FILES",
    "GRID_LOAD_COLUMNS",
    "EvResults",
    "GridResults",
    "SERVICE_FILES",
    "Results",
    "ServiceResults",
    "load_results",
]

SERVICE_FILES = ("outages.parquet", "uptime.parquet", "attempts.parquet", "visits.parquet", "crews.parquet")
"""The tables a run with serviceability writes besides kpis.json's "serviceability" key."""
GRID_LOAD_COLUMNS = ("site_id", "t_s", "power_kw", "capacity_kw", "limit_kw", "dr_cap_kw", "grid_kw")
"""The load.parquet columns the grid figures use; runs with kpis.json's "grid" key write them."""
EV_FILES = ("ev_sessions.parquet", "plug_attempts.parquet")
"""The tables a run with an ev_side section writes besides kpis.json's "ev_side" key."""
DR_EVENT_COLUMNS = ("event_id", "site_id", "start_t_s", "end_t_s", "cap_kw", "max_kw", "mean_grid_kw", "compliance_pct")


@dataclass(frozen=True)
class ServiceResults:
    """A run's serviceability results; the tables hold only the columns the figures use."""

    kpis: dict[str, Any]
    """kpis.json's "serviceability" object."""
    outages: pd.DataFrame
    """site_id, evse_id, cause, kind, start_t_s, end_t_s, duration_s, down: one row per port and outage."""
    uptime: pd.DataFrame
    """site_id, evse_id, period, uptime_pct: NEVI uptime per port, per month and "trailing_12m"."""
    crews: pd.DataFrame
    """crew_id, technician, busy_s, travel_s, shift_s: one row per technician."""


@dataclass(frozen=True)
class GridResults:
    """A run's grid results; the tables hold only the columns the figures and tables use."""

    kpis: dict[str, Any]
    """kpis.json's "grid" object: "network" and "sites"."""
    load: pd.DataFrame
    """``GRID_LOAD_COLUMNS``: 15-minute means per site, with the limit, DR cap and grid import."""
    dr_events: pd.DataFrame
    """event_id, site_id, start_t_s, end_t_s, cap_kw, max_kw, mean_grid_kw, compliance_pct; may have no rows."""


@dataclass(frozen=True)
class EvResults:
    """A run's EV-side results: the report draws on kpis.json's "ev_side" object alone."""

    kpis: dict[str, Any]


@dataclass(frozen=True)
class Results:
    """One run as the report sees it; the tables hold only the columns the figures use."""

    scenario_name: str
    seed: int
    start: dt.datetime
    """The start in the scenario's time zone (or at its fixed UTC offset without one): local time of the axes."""
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
    """site_id, outcome, plug_t_s, departure_t_s: one row per arriving driver."""
    ports: pd.DataFrame
    """site_id, charger_id, evse_id, time_utilization: one row per EVSE."""
    service: ServiceResults | None = None
    """None when the run had no serviceability model."""
    grid: GridResults | None = None
    """None for results written before grid results existed."""
    ev: EvResults | None = None
    """None when the run had no ev_side section."""

    @property
    def zone_name(self) -> str:
        """The time zone of the figures' local hours: the IANA name, else the start's UTC offset."""
        return str(getattr(self.start.tzinfo, "key", None) or self.start.tzname() or "local time")


def _load_service(results_dir: Path, kpis: dict[str, Any]) -> ServiceResults | None:
    """The serviceability results, None without kpis.json's "serviceability" key; a missing table is an error."""
    if "serviceability" not in kpis:
        return None
    if missing := [name for name in SERVICE_FILES if not (results_dir / name).is_file()]:
        raise FileNotFoundError(f"kpis.json has serviceability KPIs but {results_dir} lacks {', '.join(missing)}")
    outage_columns = ["site_id", "evse_id", "cause", "kind", "start_t_s", "end_t_s", "duration_s", "down"]
    return ServiceResults(
        kpis=kpis["serviceability"],
        outages=pd.read_parquet(results_dir / "outages.parquet", columns=outage_columns),
        uptime=pd.read_parquet(results_dir / "uptime.parquet", columns=["site_id", "evse_id", "period", "uptime_pct"]),
        crews=pd.read_parquet(
            results_dir / "crews.parquet", columns=["crew_id", "technician", "busy_s", "travel_s", "shift_s"]
        ),
    )


def _load_grid(results_dir: Path, kpis: dict[str, Any]) -> GridResults | None:
    """The grid results, None without kpis.json's "grid" key; a missing table or column is an error."""
    if "grid" not in kpis:
        return None
    if not (results_dir / "dr_events.parquet").is_file():
        raise FileNotFoundError(f"kpis.json has grid KPIs but {results_dir} lacks dr_events.parquet")
    names = pq.read_schema(results_dir / "load.parquet").names
    if missing := [name for name in GRID_LOAD_COLUMNS if name not in names]:
        raise ValueError(f"kpis.json has grid KPIs but load.parquet lacks the columns {', '.join(missing)}")
    return GridResults(
        kpis=kpis["grid"],
        load=pd.read_parquet(results_dir / "load.parquet", columns=list(GRID_LOAD_COLUMNS)),
        dr_events=pd.read_parquet(results_dir / "dr_events.parquet", columns=list(DR_EVENT_COLUMNS)),
    )


def _load_ev(results_dir: Path, kpis: dict[str, Any]) -> EvResults | None:
    """The EV-side results, None without kpis.json's "ev_side" key; a missing table is an error."""
    if "ev_side" not in kpis:
        return None
    if missing := [name for name in EV_FILES if not (results_dir / name).is_file()]:
        raise FileNotFoundError(f"kpis.json has EV-side KPIs but {results_dir} lacks {', '.join(missing)}")
    return EvResults(kpis=kpis["ev_side"])


def load_results(results_dir: Path) -> Results:
    """Read ``results_dir``; a missing file or key is an error, not a silent default."""
    manifest = json.loads((results_dir / "manifest.json").read_text(encoding="utf-8"))
    kpis = json.loads((results_dir / "kpis.json").read_text(encoding="utf-8"))
    scenario = yaml.safe_load((results_dir / "scenario.yaml").read_text(encoding="utf-8"))
    start = dt.datetime.fromisoformat(manifest["start"])
    if start.utcoffset() is None:
        raise ValueError(f"manifest start (={manifest['start']!r}) needs a UTC offset")
    if scenario.get("timezone"):
        start = start.astimezone(ZoneInfo(str(scenario["timezone"])))
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
        sessions=pd.read_parquet(
            results_dir / "sessions.parquet", columns=["site_id", "outcome", "plug_t_s", "departure_t_s"]
        ),
        ports=pd.read_parquet(
            results_dir / "ports.parquet", columns=["site_id", "charger_id", "evse_id", "time_utilization"]
        ),
        service=_load_service(results_dir, kpis),
        grid=_load_grid(results_dir, kpis),
        ev=_load_ev(results_dir, kpis),
    )
