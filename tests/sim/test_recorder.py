"""The recorder's columnar tables: rows in, columns out, sorted in place, integers never wrapped."""

from __future__ import annotations

import numpy as np
import pytest

from sim.recorder import Table


def _table(int_bits: int) -> Table:
    t = Table(floats=("t_s", "value"), ints=("id", "site"), int_bits=int_bits)
    for row_id, site, t_s in ((3, 1, 30.0), (1, 0, 10.0), (2, 1, 20.0), (1, 2, 11.0)):
        t.add_floats((t_s, t_s / 10))
        t.add_ints((row_id, site))
    return t


@pytest.mark.parametrize(("int_bits", "dtype"), [(64, np.int64), (32, np.int32)])
def test_columns_come_back_as_recorded_in_the_chosen_width(int_bits: int, dtype: type) -> None:
    """Each column holds its values in row order; integer columns have the table's width."""
    cols = _table(int_bits).arrays()
    assert cols["id"].dtype == dtype
    assert cols["id"].tolist() == [3, 1, 2, 1]
    assert cols["site"].tolist() == [1, 0, 1, 2]
    assert cols["t_s"].tolist() == [30.0, 10.0, 20.0, 11.0]
    assert cols["value"].tolist() == [3.0, 1.0, 2.0, 1.1]


@pytest.mark.parametrize("int_bits", [64, 32])
def test_sort_rows_keeps_rows_together_and_ties_in_order(int_bits: int) -> None:
    """Sorting by one column moves every column of a row along; equal keys keep their recorded order."""
    t = _table(int_bits)
    t.sort_rows("id")
    cols = t.arrays()
    assert cols["id"].tolist() == [1, 1, 2, 3]
    assert cols["site"].tolist() == [0, 2, 1, 1]
    assert cols["t_s"].tolist() == [10.0, 11.0, 20.0, 30.0]
    assert cols["value"].tolist() == [1.0, 1.1, 2.0, 3.0]


def test_a_32_bit_table_refuses_a_value_that_does_not_fit() -> None:
    """An id past 2**31 - 1 raises as it is recorded instead of wrapping to a negative number."""
    t = Table(floats=("t_s",), ints=("id",), int_bits=32)
    t.add_ints((2**31 - 1,))
    with pytest.raises(OverflowError):
        t.add_ints((2**31,))
    assert t.arrays()["id"].tolist() == [2**31 - 1]


def test_an_unknown_integer_width_is_refused() -> None:
    """Only 32 and 64 bits are offered."""
    with pytest.raises(ValueError, match="int_bits"):
        Table(floats=("t_s",), ints=("id",), int_bits=16)
