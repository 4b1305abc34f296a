"""Reading the CSV files a scenario points at (traces, price series): one place for the checks they share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["read_columns", "zoned_timestamps"]

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
