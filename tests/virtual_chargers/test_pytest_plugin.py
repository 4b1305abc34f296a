"""The pytest plugin: the shipped example test passes against the reference CSMS (run by pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "virtual_chargers" / "examples" / "test_my_csms.py"


@pytest.mark.slow
def test_example_test_file_passes_with_the_plugin(pytester: pytest.Pytester) -> None:
    """``virtual_charger`` boots a charger against a reference CSMS and the example's asserts hold."""
    pytester.makepyfile(test_example=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--csms-speed", "600", "-W", "error")
    result.assert_outcomes(passed=1)
