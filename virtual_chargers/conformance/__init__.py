"""`chargetwin conformance`: OCPP conformance, negative and chaos testing of a CSMS.

Cases (`model.Case`) are written from the OCPP 1.6J and 2.0.1 use cases; `runner.run_cases` runs them
with test chargers (`probe.Probe`) against a CSMS, and `report` writes the JSON, HTML and JUnit reports.
"""

from __future__ import annotations

from virtual_chargers.conformance.model import Case, CaseResult, Kind, Outcome
from virtual_chargers.conformance.runner import SuiteConfig, run_cases, select_cases

__all__ = ["Case", "CaseResult", "Kind", "Outcome", "SuiteConfig", "all_cases", "run_cases", "select_cases"]


def all_cases() -> tuple[Case, ...]:
    """Every case of both versions, sorted by version then id."""
    from virtual_chargers.conformance import cases16, cases201
    from virtual_chargers.conformance.negative import negative_cases

    cases = [*cases16.CASES, *cases201.CASES, *negative_cases("1.6"), *negative_cases("2.0.1")]
    ids = [(c.ocpp, c.id) for c in cases]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate case ids: {sorted(dupes)}")
    return tuple(sorted(cases, key=lambda c: (c.ocpp, c.id)))
