import json
import subprocess
import sys

import pytest
import yaml

from sim.cli import main
from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario, scenario_data


def test_help_has_examples():
    """`chargetwin --help` shows worked examples."""
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "examples:" in proc.stdout
    assert "chargetwin run" in proc.stdout


def test_schema_is_json_schema(capsys):
    """`chargetwin schema` prints a JSON Schema that knows the top-level keys."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "seed", "start", "network", "fleet", "demand"} <= set(schema["properties"])


def test_run_overrides_seed_and_days(tmp_path, capsys):
    """--seed and --days override the scenario and show in the resolved copy."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data()))
    assert main(["run", str(path), "--seed", "99", "--days", "1", "--out", str(tmp_path / "o")]) == 0
    resolved = yaml.safe_load((tmp_path / "o" / "scenario.yaml").read_text())
    assert resolved["seed"] == 99
    assert resolved["horizon_days"] == 1
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["seed"] == 99
    assert "simpy" in manifest["versions"]


def test_failed_write_leaves_existing_results_untouched(tmp_path):
    """A run that fails while writing leaves the previous results folder exactly as it was."""
    out = tmp_path / "o"
    run = simulate(make_scenario(horizon_days=1))
    write_results(run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(_tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_results(simulate(make_scenario(horizon_days=1, seed=1)), out, finish=fail)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_report_rerenders_and_refuses_a_non_results_folder(tmp_path, capsys):
    """`chargetwin report` re-renders a results folder and refuses other folders with exit 2."""
    write_results(simulate(make_scenario(horizon_days=1)), tmp_path / "o")
    assert main(["report", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.html").is_file()
    assert main(["report", str(tmp_path)]) == 2
    assert "not a results folder" in capsys.readouterr().err


def test_missing_scenario_file(tmp_path, capsys):
    """A scenario path that does not exist exits 2 with the path."""
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read the scenario file" in capsys.readouterr().err
