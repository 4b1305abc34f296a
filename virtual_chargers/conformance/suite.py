"""The conformance suite as one pytest test: ``pytest --pyargs virtual_chargers.conformance.suite --csms URL``.

Add ``-m conformance`` in a project that has tests of its own, ``--csms-ocpp 2.0.1`` for the 2.0.1 cases,
``--csms-api URL`` to run the CSMS-initiated cases, ``-k 'E_0'`` to pick cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_conformance(conformance_case: Any, run_conformance_case: Callable[[Any], None]) -> None:
    """The CSMS behaves as the case's specification text says (see the case's ``checks``)."""
    run_conformance_case(conformance_case)
