"""The recorder's columnar tables: rows in, columns out, sorted in place, integers never wrapped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.recorder import Table
from sim.sessions import Outcome


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


def test_values_come_back_bit_for_bit() -> None:
    """Signed zeros, infinities, NaN, the extremes of each width and enum codes are stored exactly."""
    t = Table(floats=("x", "y"), ints=("a", "b"), int_bits=64)
    floats = [(-0.0, math.inf), (math.nan, -math.inf), (5e-324, 1.7976931348623157e308)]
    for row in floats:
        t.add_floats(row)
    t.add_ints((-(2**63), 2**63 - 1))
    t.add_ints((True, Outcome.RENEGED))
    t.add_ints((np.int64(7), -1))
    cols = t.arrays()
    got = np.stack([cols["x"], cols["y"]], axis=1)
    assert got.tobytes() == np.array(floats, dtype=np.float64).tobytes()
    assert cols["a"].tolist() == [-(2**63), 1, 7]
    assert cols["b"].tolist() == [2**63 - 1, int(Outcome.RENEGED), -1]


def test_a_row_of_the_wrong_length_or_kind_is_refused_whole() -> None:
    """A short row, a text in a float column or a fraction in an integer column raises; nothing of it is kept."""
    t = Table(floats=("t_s", "value"), ints=("id",), int_bits=32)
    with pytest.raises(ValueError, match=r"a row needs 2 value\(s\) \(t_s, value\), got 1"):
        t.add_floats((1.0,))
    with pytest.raises(TypeError):
        t.add_floats(("noon", 1.0))
    with pytest.raises(TypeError):
        t.add_ints((1.5,))
    with pytest.raises(ValueError, match=r"a row needs 1 value\(s\) \(id\), got 2"):
        t.add_ints((1, 2))
    t.add_floats((1.0, 2.0))
    t.add_ints((7,))
    assert len(t) == 1
    assert t.arrays()["value"].tolist() == [2.0]
    assert t.arrays()["id"].tolist() == [7]


@pytest.mark.parametrize("int_bits", [64, 32])
def test_rows_added_at_once_are_the_rows_added_one_by_one(int_bits: int) -> None:
    """`add_rows` gives the columns `add_floats` and `add_ints` give row by row; a row that does not fit keeps none."""
    t = Table(floats=("t_s", "value"), ints=("id", "site"), int_bits=int_bits)
    t.add_rows([30.0, 3.0, 10.0, 1.0, 20.0, 2.0, 11.0, 1.1], [3, 1, 1, 0, 2, 1, 1, 2])
    one_by_one = _table(int_bits).arrays()
    at_once = t.arrays()
    for name, column in one_by_one.items():
        assert at_once[name].dtype == column.dtype
        assert at_once[name].tobytes() == column.tobytes(), name
    with pytest.raises(OverflowError):
        t.add_rows([1.0, 1.0, 2.0, 2.0], [5, 0, 2 ** (int_bits - 1), 0])
    with pytest.raises(TypeError):
        t.add_rows([1.0, "noon"], [5, 0])
    with pytest.raises(ValueError, match="whole rows"):
        t.add_rows([1.0, 2.0], [5])
    assert len(t) == 4


def test_add_records_a_whole_row_or_nothing() -> None:
    """`add` stores what `add_floats` and `add_ints` would; a row with a bad part leaves both parts out."""
    t = Table(floats=("t_s", "value"), ints=("id",), int_bits=32)
    t.add((1.0, 2.0), (7,))
    with pytest.raises(OverflowError):
        t.add((3.0, 4.0), (2**31,))
    with pytest.raises(ValueError, match=r"a row needs 2 value\(s\) \(t_s, value\), got 1"):
        t.add((3.0,), (8,))
    with pytest.raises(TypeError):
        t.add((3.0, 4.0), (1.5,))
    t.add((5.0, -0.0), (9,))
    cols = t.arrays()
    assert len(t) == 2
    assert cols["t_s"].tolist() == [1.0, 5.0]
    assert cols["value"].tobytes() == np.array([2.0, -0.0]).tobytes()
    assert cols["id"].tolist() == [7, 9]
