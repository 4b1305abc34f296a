import json

import pytest
import yaml

from sim.cli import main
from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario, scenario_data


def test_help_has_examples(capsys):
    """`chargetwin --help` shows worked examples."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "chargetwin run" in out


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "o.partial"]  # what the failed run produced


def test_failed_write_keeps_the_tables_written_so_far_and_the_recorded_run(tmp_path, monkeypatch, capsys):
    """A failure midway through writing keeps the tables already written and the run, and says where; exit 1."""
    import pickle

    import sim.revenue_metrics

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(horizon_days=1)))

    def fail(run):
        raise OSError("No space left on device")

    monkeypatch.setattr(sim.revenue_metrics, "invoices_frame", fail)  # written after sessions, before kpis
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    partial = tmp_path / "o.partial"
    assert "No space left on device" in err
    assert str(partial) in " ".join(err.split())
    assert not (tmp_path / "o").exists()
    kept = {p.name for p in partial.iterdir()}
    assert {"events.parquet", "load.parquet", "sessions.parquet", "run.pickle"} <= kept
    assert "kpis.json" not in kept
    monkeypatch.undo()
    with (partial / "run.pickle").open("rb") as f:
        run = pickle.load(f)
    write_results(run, tmp_path / "again")
    write_results(simulate(make_scenario(horizon_days=1)), tmp_path / "fresh")
    for name in ("sessions.parquet", "load.parquet", "kpis.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


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


def _bad_cases(tmp_path):
    """(data, expected text) for each kind of bad input the foundation names."""
    typo = scenario_data()
    typo["network"]["sites"][0]["chargers"][0]["power_kww"] = 11
    wrong_type = scenario_data(horizon_days="a week")
    negative = scenario_data()
    negative["network"]["sites"][0]["chargers"][0]["power_kw"] = -11
    (tmp_path / "bad.csv").write_text("arrival,departure,energy_kwh,station\nsoon,later,x,a\n")
    curve = [[0, 50], [0.6, 40], [0.4, 30], [1, 10]]
    return {
        "typo": (typo, "network.sites[0].chargers[0].power_kww: unknown key"),
        "wrong type": (wrong_type, "horizon_days: Input should be a valid number"),
        "negative power": (negative, "network.sites[0].chargers[0].power_kw: Input should be greater than 0"),
        "unknown manager": (scenario_data(manager={"kind": "smartest"}), "manager: Input tag 'smartest'"),
        "missing trace": (scenario_data(demand=[{"kind": "trace", "path": "gone.csv"}]), "gone.csv does not exist"),
        "bad trace rows": (scenario_data(demand=[{"kind": "trace", "path": "bad.csv"}]), "cannot be used (lines 2)"),
        "unordered curve": (
            scenario_data(
                fleet=[{"share": 1, "model": {"name": "v", "capacity_kwh": 60, "ac_max_kw": 11, "dc_curve": curve}}]
            ),
            "fleet[0].model.dc_curve: charge curve points must be ordered",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["typo", "wrong type", "negative power", "unknown manager", "missing trace", "bad trace rows", "unordered curve"],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_every_bad_input_exits_2_with_its_message(tmp_path, capsys, case, command):
    """Each kind of bad input gives its one-line message naming the file, and exit code 2."""
    data, expected = _bad_cases(tmp_path)[case]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    extra = ["--out", str(tmp_path / "o")] if command == "run" else []
    assert main([command, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert f"{path}:" in err
    assert not (tmp_path / "o").exists()
