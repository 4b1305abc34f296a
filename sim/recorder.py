"""Columnar recording while the run goes: rows packed into flat typed buffers, no object per row.

A table keeps one float64 buffer for its float columns and one integer buffer for its
integer columns; recording a row packs it with `struct` (native layout, as the buffer's)
and appends the bytes, several times faster than ``array.extend`` over a tuple, and
`Table.arrays` hands out the columns as zero-copy numpy views.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from typing import NoReturn

import numpy as np

__all__ = ["Table"]

_INT_CODES = {64: ("q", np.int64), 32: ("i", np.int32)}


class Table:
    """A growing table of float and integer columns."""

    def __init__(self, floats: Sequence[str], ints: Sequence[str], int_bits: int = 64) -> None:
        """Create the columns; rows are added as ``add_floats(...)`` and ``add_ints(...)`` tuples in this order.

        ``int_bits=32`` halves the integer columns of a table with millions of rows whose codes and ids
        fit in 32 bits; a value that does not raises `OverflowError` as it is recorded, never wraps.
        """
        if int_bits not in _INT_CODES:
            raise ValueError(f"int_bits(={int_bits}) must be one of {sorted(_INT_CODES)}")
        code, self._int_dtype = _INT_CODES[int_bits]
        self.floats = tuple(floats)
        self.ints = tuple(ints)
        self._code = code
        self._f = array("d")
        self._i = array(code)
        self._pack_floats = struct.Struct(f"{len(self.floats)}d").pack  # native, as the array's items
        self._pack_ints = struct.Struct(f"{len(self.ints)}{code}").pack

    def add_floats(self, row: Sequence[float]) -> None:
        """Append the float values of one row, in `floats` order."""
        try:
            packed = self._pack_floats(*row)
        except struct.error:
            self._refuse(row, self.floats, "d")
        self._f.frombytes(packed)

    def add_ints(self, row: Sequence[int]) -> None:
        """Append the integer values of one row, in `ints` order."""
        try:
            packed = self._pack_ints(*row)
        except struct.error:
            self._refuse(row, self.ints, self._code)
        self._i.frombytes(packed)

    def add_rows(self, floats: Sequence[float], ints: Sequence[int]) -> None:
        """Append several rows at once: their float values row after row, then their integer values row after row.

        The same rows as `add_floats` and `add_ints` row by row, packed in one go; nothing is
        recorded when a value does not fit.
        """
        n_f, n_i = len(self.floats), len(self.ints)
        n = len(floats) // n_f if n_f else len(ints) // n_i
        if len(floats) != n * n_f or len(ints) != n * n_i:
            raise ValueError(
                f"{len(floats)} float and {len(ints)} integer values are not whole rows of {n_f} and {n_i}"
            )
        try:
            packed_f = struct.pack(f"{len(floats)}d", *floats)
            packed_i = struct.pack(f"{len(ints)}{self._code}", *ints)
        except struct.error:
            for k in range(n):  # the first row that does not fit raises as `add_floats` or `add_ints` would
                row_f, row_i = floats[k * n_f : (k + 1) * n_f], ints[k * n_i : (k + 1) * n_i]
                for row, names, code in ((row_f, self.floats, "d"), (row_i, self.ints, self._code)):
                    try:
                        struct.pack(f"{len(names)}{code}", *row)
                    except struct.error:
                        self._refuse(row, names, code)
            raise
        self._f.frombytes(packed_f)
        self._i.frombytes(packed_i)

    def add(self, floats: Sequence[float], ints: Sequence[int]) -> None:
        """Append one row: its float values in `floats` order and its integer values in `ints` order.

        One call where a row has both kinds (the hot path: a session's row, an interval's); if either
        part does not fit, nothing is recorded and the error is that of `add_floats` or `add_ints`.
        """
        try:
            packed_f = self._pack_floats(*floats)
        except struct.error:
            self._refuse(floats, self.floats, "d")
        try:
            packed_i = self._pack_ints(*ints)
        except struct.error:
            self._refuse(ints, self.ints, self._code)
        self._f.frombytes(packed_f)
        self._i.frombytes(packed_i)

    @staticmethod
    def _refuse(row: Sequence[float], names: tuple[str, ...], code: str) -> NoReturn:
        """Raise what the buffer would for `row`, of which nothing is recorded.

        A row of the wrong length raises `ValueError`, a value that does not fit `OverflowError`,
        a value of another kind `TypeError`.
        """
        if len(row) != len(names):
            raise ValueError(f"a row needs {len(names)} value(s) ({', '.join(names)}), got {len(row)}")
        array(code, row)
        raise TypeError(f"a row of {', '.join(names)} the table cannot hold: {row!r}")

    def __len__(self) -> int:
        """Number of rows."""
        return len(self._f) // len(self.floats) if self.floats else len(self._i) // len(self.ints)

    def sort_rows(self, by: str) -> None:
        """Reorder the rows by the integer column `by` (stable), in place.

        One column at a time, so the only copy held is one column, not the table.
        """
        if not len(self):
            return
        ints = np.frombuffer(self._i, dtype=self._int_dtype).reshape(-1, len(self.ints))
        order = np.argsort(ints[:, self.ints.index(by)], kind="stable")
        if np.array_equal(order, np.arange(len(order))):
            return
        blocks = [ints]
        if self.floats:
            blocks.append(np.frombuffer(self._f, dtype=np.float64).reshape(-1, len(self.floats)))
        for rows in blocks:
            for k in range(rows.shape[1]):
                rows[:, k] = np.take(rows[:, k], order)  # about twice as fast as `rows[order, k]`

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (strided views of the buffers, no copy)."""
        out: dict[str, np.ndarray] = {}
        for names, buf, dtype in ((self.floats, self._f, np.float64), (self.ints, self._i, self._int_dtype)):
            if not names:
                continue
            flat = np.frombuffer(buf, dtype=dtype) if len(buf) else np.zeros(0, dtype=dtype)
            rows = flat.reshape(-1, len(names))
            out.update({name: rows[:, k] for k, name in enumerate(names)})
        return out
