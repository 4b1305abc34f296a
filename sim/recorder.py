"""Columnar recording while the run goes: rows packed into one flat float64 array, no object per row.

`Table.add` is a single C call (``array.extend``) per row, which keeps recording off
the hot path's profile; `arrays` reshapes the buffer and casts each column to its type.
Integers are exact in float64 up to 2**53, far beyond any id or count of a run.
"""

from __future__ import annotations

from array import array

import numpy as np

__all__ = ["Table"]


class Table:
    """A growing table with fixed, typed columns."""

    def __init__(self, **columns: type) -> None:
        """Create the columns, e.g. ``Table(t_s=float, site=int)``."""
        self.columns = columns
        self._data = array("d")
        self.add = self._data.extend
        """Append one row: a tuple of numbers in column order."""

    def __len__(self) -> int:
        """Number of rows."""
        return len(self._data) // len(self.columns)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays of their declared types; float columns share the buffer."""
        flat = np.frombuffer(self._data, dtype=np.float64) if len(self._data) else np.zeros(0)
        rows = flat.reshape(-1, len(self.columns))
        # Float columns stay strided views of the buffer (no copy); integer columns are cast.
        return {
            name: rows[:, i] if kind is float else rows[:, i].astype(kind)
            for i, (name, kind) in enumerate(self.columns.items())
        }
