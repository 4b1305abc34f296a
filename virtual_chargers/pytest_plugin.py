"""pytest plugin for testing a CSMS with virtual OCPP chargers (registered as a ``pytest11`` entry point)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--csms URL``: the CSMS the ``virtual_charger`` fixture connects to."""
    group = parser.getgroup("chargetwin", "virtual OCPP chargers")
    group.addoption("--csms", default=None, help="websocket URL of the CSMS under test, e.g. ws://127.0.0.1:9000")
