"""Columnar recording while the run goes: one typed array per column, no object per row.

`array.array` grows by amortised doubling and stores raw machine values, so a year of
a thousand ports costs tens of bytes per row, and turning a column into numpy is a
zero-copy view.
"""

from __future__ import annotations

from array import array

import numpy as np

__all__ = ["Table"]


class Table:
    """A growing table with fixed, typed columns (``"d"`` float64, ``"q"`` int64, ``"b"`` int8)."""

    def __init__(self, **columns: str) -> None:
        """Create one empty column per keyword, e.g. ``Table(t_s="d", site="q")``."""
        self.columns = {name: array(code) for name, code in columns.items()}
        # Bound appends in column order make `add` a plain loop with no lookups.
        self._appends = tuple(col.append for col in self.columns.values())

    def add(self, *row: float) -> None:
        """Append one row, values in column order."""
        for append, value in zip(self._appends, row, strict=True):
            append(value)

    def __len__(self) -> int:
        """Number of rows."""
        return len(next(iter(self.columns.values())))

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (views, no copy)."""
        return {name: np.frombuffer(col, dtype=col.typecode) if len(col) else np.zeros(0, dtype=col.typecode)
                for name, col in self.columns.items()}
