"""Bidirectional charging (V2G) results: the discharges table, and (with V2G configured) its KPIs.

Each row of ``discharges.parquet`` is one stretch a session discharged at constant power
(`power_kw` < 0) from `t0_s` to `t1_s`, its state of charge falling linearly from `soc0_frac`
to `soc1_frac`; energy out of the battery is ``−power_kw × (t1_s − t0_s) / 3600``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.engine import RunTables
from sim.metrics import discharges_of

__all__ = ["V2G_FILES", "discharges_frame"]

V2G_FILES = ("discharges.parquet",)


def discharges_frame(run: RunTables) -> pd.DataFrame:
    """One row per discharging stretch, in the order they ended; the recorded codes and their ids."""
    d = discharges_of(run)
    if d is None:
        d = {k: np.zeros(0) for k in ("t0_s", "t1_s", "soc0_frac", "soc1_frac", "power_kw")} | {
            k: np.zeros(0, dtype=np.int64) for k in ("site", "evse", "session_id")
        }
    sites = pd.Index([s.site_id for s in run.sites], dtype=str)
    ports = pd.Index([p.evse_id for p in run.evses], dtype=str)
    return pd.DataFrame(
        {
            "t0_s": d["t0_s"],
            "t1_s": d["t1_s"],
            "soc0_frac": d["soc0_frac"],
            "soc1_frac": d["soc1_frac"],
            "power_kw": d["power_kw"],
            "site": d["site"].astype(np.int64),
            "evse": d["evse"].astype(np.int64),
            "session_id": d["session_id"].astype(np.int64),
            "site_id": pd.Categorical.from_codes(d["site"].astype(np.int64), categories=sites),
            "evse_id": pd.Categorical.from_codes(d["evse"].astype(np.int64), categories=ports),
            "energy_kwh": -d["power_kw"] * (d["t1_s"] - d["t0_s"]) / 3600.0,
        }
    )
