"""Reading the CSV files a scenario points at (session traces, price series): their formats and checks.

The scenario model (`sim.config`) reads them to validate a scenario, demand replay (`sim.demand`) and the
price signal (`sim.grid`) to run one; all three import the formats from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TRACE_COLUMNS", "read_columns", "read_price_series", "read_trace", "zoned_timestamps"]

TRACE_COLUMNS = ("arrival", "departure", "energy_kwh", "station")

_ZONE = r"(?:Z|[+-]\d\d:?\d\d)\s*$"


def read_columns(path: Path, what: str, columns: Sequence[str]) -> pd.DataFrame:
    """Read `path` as text columns; a missing, unreadable or incomplete file is a ValueError naming it.

    Args:
        path: The CSV file.
        what: What the file is, for messages ("trace file", "price file").
        columns: Columns it must have.
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist; give a path relative to the scenario file") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} {path} is empty; it needs a header line ({', '.join(columns)}) and rows") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} cannot be read as CSV: {exc}") from None
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"{what} {path} lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    if raw.empty:
        raise ValueError(f"{what} {path} has a header but no rows; add rows under {', '.join(columns)}")
    return raw


def zoned_timestamps(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 timestamps to UTC; also return which rows are bad (unparseable or without a UTC offset).

    A timestamp without an offset is refused rather than guessed: a trace in local time read
    as UTC would shift every session silently.
    """
    t = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    return t, t.isna() | ~text.str.contains(_ZONE)


def read_trace(path: Path) -> pd.DataFrame:
    """Read a session trace CSV; raise ValueError naming the file and every bad row."""
    raw = read_columns(path, "trace file", TRACE_COLUMNS)
    arrival, bad_arrival = zoned_timestamps(raw["arrival"])
    departure, bad_departure = zoned_timestamps(raw["departure"])
    energy = pd.to_numeric(raw["energy_kwh"], errors="coerce")
    bad = bad_arrival | bad_departure | energy.isna() | (energy < 0) | (departure < arrival)
    bad |= raw["station"].str.strip() == ""
    if bad.any():
        rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())]  # +2: header line, 1-based
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        raise ValueError(
            f"trace file {path}: {len(rows)} row(s) cannot be used (lines {shown}); each row needs ISO "
            "timestamps with a zone for arrival and departure (departure not before arrival), "
            "energy_kwh >= 0 and a station"
        )
    return pd.DataFrame(
        {"arrival": arrival, "departure": departure, "energy_kwh": energy.astype(float), "station": raw["station"]}
    )


def read_price_series(path: Path) -> pd.DataFrame:
    """Read a price CSV (timestamp, price_per_kwh); raise ValueError naming the file and the bad rows."""
    raw = read_columns(path, "price file", ("timestamp", "price_per_kwh"))
    t, bad_t = zoned_timestamps(raw["timestamp"])
    price = pd.to_numeric(raw["price_per_kwh"], errors="coerce")
    bad = bad_t | price.isna()
    if bad.any() or len(raw) == 0:
        rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())][:10]
        raise ValueError(
            f"price file {path}: rows {rows or 'none'} cannot be used; each row needs an ISO timestamp with a "
            "zone and a number price_per_kwh (and the file at least one row)"
        )
    order = np.argsort(t.to_numpy(), kind="stable")
    return pd.DataFrame({"timestamp": t.to_numpy()[order], "price_per_kwh": price.to_numpy()[order]})
