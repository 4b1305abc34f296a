"""One charger naming: `chargetwin chargers SCENARIO`, bridged runs and the simulation use the same ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.config.ocpp import OcppManager
from sim.network_plan import plan_network
from virtual_chargers.bridge import Bridge
from virtual_chargers.clock import SimClock
from virtual_chargers.fleet import plan_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "small_city.yaml"


def test_fleet_bridge_and_simulation_name_every_charger_alike() -> None:
    """The same ids, connectors and ratings, in the same order, from all three."""
    scenario = load_scenario(SCENARIO)
    network = plan_network(scenario.network.sites)
    sim_ids = [c.charger_id for c in network.chargers]
    fleet = plan_scenario(scenario)
    bridge = Bridge(scenario, OcppManager(kind="ocpp", csms="ws://127.0.0.1:9"), SimClock(1.0))
    assert [p.spec.id for p in fleet] == sim_ids
    assert list(bridge.specs) == sim_ids
    connectors = {c.charger_id: 0 for c in network.chargers}
    for port in network.ports:
        connectors[port.charger.charger_id] += 1
    assert {p.spec.id: len(p.spec.connectors) for p in fleet} == connectors
    site = scenario.network.sites[0]
    assert sim_ids[0] == f"{site.id}.01"  # <site>.<nn>, numbered from 1 in scenario order


def test_a_fault_pattern_that_matches_no_charger_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pattern written for another naming (site-001) stops the run with exit 2 and names file, entry and fix."""
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "faults:\n"
        "  - {at_s: 60, kind: reboot, chargers: ['utrecht_centrum.0*']}\n"
        "  - {at_s: 90, kind: reboot, chargers: ['utrecht_centrum-00*']}\n",
        encoding="utf-8",
    )
    rc = main(
        ["chargers", str(SCENARIO), "--csms", "ws://127.0.0.1:9", "--faults", str(faults)]
        + ["--state-dir", str(tmp_path / "state")]
    )
    out = capsys.readouterr()
    text = out.err + out.out
    assert rc == 2
    assert "faults[1].chargers" in text
    assert "'utrecht_centrum-00*' matches no charger" in text
    assert "faults[0]" not in text
    assert "Traceback" not in text
