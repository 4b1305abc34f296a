"""Every writer replaces only what it recognises as its own output; everything else is refused up front."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import sim.engine
from sim.cli import main
from sim.engine import simulate
from sim.outputs import OutputRefusedError
from sim.results import write_results
from tests.conftest import make_scenario, scenario_data

ROOT = Path(__file__).resolve().parents[1]


def _scenario(folder: Path, **changes) -> Path:
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(**{"horizon_days": 1, **changes})))
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts: refusals must come before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the simulation started")

    monkeypatch.setattr(sim.engine, "simulate", refuse)


def test_run_refuses_a_folder_without_a_manifest_before_simulating(tmp_path, capsys, no_simulation):
    """`run --out precious` exits 2 with one line naming what is there; every file stays."""
    scenario = _scenario(tmp_path)
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work")
    (precious / "sub" / "data.csv").write_text("1,2\n")
    before = _snapshot(precious)
    assert main(["run", str(scenario), "--out", str(precious)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"--out {precious}: holds 2 entries: sub/, thesis.tex" in err
    assert "--force" in err
    assert _snapshot(precious) == before
    assert _hidden(tmp_path) == []


def test_run_refuses_a_file(tmp_path, capsys, no_simulation):
    """`run --out some_file` exits 2 and leaves the file where and as it was (no hidden copy)."""
    scenario = _scenario(tmp_path)
    target = tmp_path / "some_file"
    target.write_text("keep me")
    assert main(["run", str(scenario), "--out", str(target), "--force"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert _hidden(tmp_path) == []


def test_run_refuses_a_path_under_a_file(tmp_path, capsys, no_simulation):
    """`--out some_file/results` cannot be created: exit 2 before the run."""
    scenario = _scenario(tmp_path)
    (tmp_path / "some_file").write_text("x")
    assert main(["run", str(scenario), "--out", str(tmp_path / "some_file" / "results")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("force", [False, True])
def test_run_never_replaces_the_current_folder_or_the_scenario_folder(tmp_path, capsys, monkeypatch, force):
    """`--out .` and `--out <folder of the scenario>` are refused, even with --force."""
    scenario = _scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    extra = ["--force"] if force else []
    assert main(["run", str(scenario), "--out", ".", *extra]) == 2
    assert "is the current folder" in capsys.readouterr().err
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    inner_scenario = _scenario(outer / "inner")
    assert main(["run", str(inner_scenario), "--out", str(outer), *extra]) == 2
    assert f"holds {inner_scenario}, an input of this command" in capsys.readouterr().err
    assert inner_scenario.is_file()
    assert scenario.is_file()


def test_run_replaces_its_own_results_and_fills_an_empty_folder(tmp_path):
    """A results folder (manifest.json) is replaced whole, an empty folder is used; nothing hidden stays."""
    scenario = _scenario(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    (out / "stale_from_an_older_run.txt").write_text("x")
    assert main(["run", str(scenario), "--out", str(out), "--seed", "3"]) == 0
    assert not (out / "stale_from_an_older_run.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["seed"] == 3
    assert _hidden(tmp_path) == []


def test_force_says_what_it_removes_then_replaces(tmp_path, capsys):
    """With --force a folder that is not a results folder is listed on stderr, then replaced by the results."""
    scenario = _scenario(tmp_path)
    out = tmp_path / "notes"
    out.mkdir()
    (out / "a.txt").write_text("a")
    assert main(["run", str(scenario), "--out", str(out), "--force"]) == 0
    assert f"--out {out}: --force: removing 1 entry: a.txt" in capsys.readouterr().err
    assert not (out / "a.txt").exists()
    assert (out / "manifest.json").is_file()


def test_write_results_refuses_a_foreign_folder(tmp_path):
    """The library writer keeps the same rule: OutputRefusedError, nothing written, nothing removed."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "x.txt").write_text("x")
    with pytest.raises(OutputRefusedError, match="not a chargetwin results folder"):
        write_results(simulate(make_scenario(horizon_days=1)), out)
    assert [p.name for p in out.iterdir()] == ["x.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def _sweep(folder: Path, out: str) -> Path:
    _scenario(folder)
    path = folder / "sweep.yaml"
    parameters = {"manager.kind": ["uncontrolled"]}
    spec = {"name": "t", "base": "s.yaml", "out": out, "replications": 1, "parameters": parameters}
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_refuses_a_foreign_folder_and_a_file(tmp_path, capsys):
    """`sweep --out` follows the rule: a folder without sweep.json or a file is refused with exit 2."""
    path = _sweep(tmp_path, "out")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("k")
    assert main(["sweep", str(path), "--out", str(precious), "--workers", "1"]) == 2
    assert "not a chargetwin sweep folder" in capsys.readouterr().err
    assert [p.name for p in precious.iterdir()] == ["keep.txt"]
    (tmp_path / "f").write_text("f")
    assert main(["sweep", str(path), "--out", str(tmp_path / "f"), "--workers", "1"]) == 2
    assert (tmp_path / "f").read_text() == "f"
    assert main(["sweep", str(path), "--out", str(tmp_path), "--force", "--workers", "1"]) == 2
    assert "an input of this command" in capsys.readouterr().err


def test_report_refuses_a_folder_without_a_manifest(tmp_path, capsys):
    """`report` writes only into a results folder: one with tables but no manifest is refused."""
    out = tmp_path / "o"
    write_results(simulate(make_scenario(horizon_days=1)), out)
    (out / "manifest.json").unlink()
    assert main(["report", str(out)]) == 2
    assert "missing manifest.json" in capsys.readouterr().err
    assert not (out / "report.html").exists()


def test_compare_refuses_a_foreign_folder(tmp_path, capsys):
    """`compare --out` does not write into a folder that is not a comparison."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("k")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(precious)]) == 2
    assert "not a comparison folder" in capsys.readouterr().err


def test_chargers_and_csms_refuse_to_overwrite_other_files(tmp_path, capsys):
    """`chargers --summary-json`, `--log` and `csms --log` refuse an existing file they did not write."""
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    url = "ws://127.0.0.1:9"  # never reached: the refusal comes first
    assert main(["chargers", "--count", "1", "--csms", url, "--summary-json", str(notes)]) == 2
    assert "--summary-json" in capsys.readouterr().err
    assert main(["chargers", "--count", "1", "--csms", url, "--log", str(notes)]) == 2
    assert "not a frame log" in capsys.readouterr().err
    assert main(["csms", "--port", "0", "--duration", "0.01", "--log", str(notes)]) == 2
    assert notes.read_text() == '{"mine": true}'
    assert main(["chargers", "--count", "1", "--csms", url, "--summary-json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


_SLOW_WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    import sim.cli

    def slow_report(tmp):
        pathlib.Path(sys.argv[1]).write_text(str(tmp))
        time.sleep(60)

    sim.cli._render_report = slow_report
    sys.exit(sim.cli.main(sys.argv[2:]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_writing_leaves_no_hidden_folder(tmp_path, signum, code):
    """SIGTERM or SIGINT while the results are written: the temporary folder goes, the old results stay."""
    scenario = _scenario(tmp_path)
    out = tmp_path / "o"
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    before = _snapshot(out)
    ready = tmp_path / "writing"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(ready), "run", str(scenario), "--out", str(out), "--seed", "5"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not reach the writing step in time"
            time.sleep(0.02)
        tmp = Path(ready.read_text())
        assert tmp.is_dir()  # the signal lands mid-write
        assert tmp.name.startswith(".")
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == code
    assert "Traceback" not in err
    assert "interrupted" in err
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert _snapshot(out) == before
