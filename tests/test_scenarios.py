import json

import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.results import RESULT_FILES

SCENARIOS = sorted(p.name for p in __import__("pathlib").Path(__file__).resolve().parents[1].glob("scenarios/*.yaml"))


def test_the_examples_exist():
    """The five documented examples ship with the product."""
    assert {
        "small_city.yaml",
        "highway_corridor.yaml",
        "workplace_campus.yaml",
        "fleet_depot.yaml",
        "trace_replay.yaml",
    } <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_validates_and_runs(name, scenarios_dir, tmp_path, capsys):
    """Every shipped scenario validates and runs two days through the command line into a full results folder."""
    load_scenario(scenarios_dir / name)
    out = tmp_path / "out"
    assert main(["run", str(scenarios_dir / name), "--days", "2", "--out", str(out)]) == 0
    for f in (*RESULT_FILES, "report.md", "report.html"):
        assert (out / f).is_file(), f
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["network"]["sessions_arrived"] > 0
    assert "report.html" in capsys.readouterr().out
