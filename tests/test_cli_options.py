"""The command line as people expect it: --version, -q/-v, plain unwrapped lines when piped, help that is true."""

import argparse
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from sim.cli import _parser, main, with_interval, with_range
from tests.conftest import scenario_data

ROOT = Path(__file__).resolve().parents[1]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console script in a real process, its output piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "sim.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env or None
    )


def test_version_prints_the_installed_version(capsys):
    """`chargetwin --version` prints the version pip installed."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"chargetwin {metadata.version('chargetwin')}"


def test_quiet_prints_nothing_but_errors(tmp_path, capsys):
    """-q before or after the command: a successful run prints nothing; a problem is still printed."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(horizon_days=1)))
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "o")]) == 0
    assert main(["validate", str(path), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "o" / "manifest.json").is_file()
    assert main(["validate", str(tmp_path / "missing.yaml"), "-q"]) == 2
    assert "missing.yaml: cannot read the scenario file" in capsys.readouterr().err


def test_quiet_and_verbose_exclude_each_other(capsys):
    """-q with -v is a usage error (argparse exits 2)."""
    with pytest.raises(SystemExit) as info:
        main(["validate", "x.yaml", "-q", "-v"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_verbose_logs_what_happens(tmp_path):
    """-v turns on INFO logging on stderr, which is quiet by default."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(horizon_days=1)))
    code = (
        "import logging, sys; from sim.cli import main; "
        "rc = main(sys.argv[1:]); logging.getLogger('sim.test').info('said at INFO'); sys.exit(rc)"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code, "validate", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    loud = subprocess.run(
        [sys.executable, "-c", code, "validate", str(path), "-v"], capture_output=True, text=True, cwd=ROOT
    )
    assert "said at INFO" not in quiet.stderr
    assert "INFO sim.test: said at INFO" in loud.stderr


@pytest.mark.slow
def test_piped_output_is_plain_whole_lines(tmp_path):
    """Piped, a long line is not wrapped mid-word and carries no colour codes (rich would wrap at 80 columns)."""
    path = tmp_path / ("a_scenario_with_a_long_name_" * 3 + ".yaml")
    path.write_text(yaml.safe_dump(scenario_data()))
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    proc = _run("validate", str(path), **env)
    assert proc.returncode == 0
    [line] = proc.stdout.splitlines()
    assert len(line) > 120
    assert line.endswith("manager equal_share")
    assert "\x1b[" not in proc.stdout


@pytest.mark.slow
def test_run_title_shows_wall_time(tmp_path, capsys):
    """The summary's title gives simulated days and the wall time the run took."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(horizon_days=1)))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"test: 1 simulated day in \d+\.\d\d s wall time \(\d+\.\d\d s simulating\), seed 7, equal_share", out
    )


@pytest.mark.parametrize(
    ("mean", "half", "expected"),
    [
        (12345.678, 123.4, "12,350 ± 120"),  # half to 2 significant figures (tens), the mean to the same place
        (0.87654, 0.01234, "0.877 ± 0.012"),
        (0.5, 0.0049, "0.5000 ± 0.0049"),
        (-0.0004, 0.03, "0.000 ± 0.030"),  # no negative zero
        (1234.5, float("nan"), "1,234"),  # one replication: no interval, four significant figures
        (float("nan"), 1.0, "–"),
    ],
)
def test_sweep_intervals_keep_the_digits_the_interval_vouches_for(mean, half, expected):
    """A mean ± half-width prints the half-width to two significant figures and the mean to the same decimal."""
    assert with_interval(mean, half) == expected


def test_paired_difference_range_is_rounded_like_its_interval():
    """A paired difference and its interval share the decimal place of the interval's half-width."""
    assert with_range(-3.2149, -5.1234, -1.3061) == "-3.2 [-5.1, -1.3]"  # half-width 1.9
    assert with_range(250.0, 130.0, 370.0) == "+250 [130, 370]"  # half-width 120: tens


_PATH = re.compile(
    r"(?<![\w/.-])((?:scenarios|notebooks|virtual_chargers|bench|docs)/[\w./-]+\.(?:yaml|csv|py|ipynb|md))"
)


def test_every_path_in_help_exists():
    """Every example file named in --help of chargetwin and of each command is a file that ships."""
    texts = [_parser().format_help(), *(p.format_help() for p in _subparsers().values())]
    paths = {m for text in texts for m in _PATH.findall(text)}
    assert "scenarios/csms/csms_smart_charging.yaml" in paths
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert missing == []


def test_every_option_has_help_text():
    """Every option of every command (csms and chargers included) says what it does in --help."""
    bare = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _subparsers().items()
        for action in parser._actions
        if not action.help and action.help is not argparse.SUPPRESS
    ]
    assert bare == []


def test_command_line_guide_lists_every_command():
    """The command-line guide (docs/guide/cli.md) names every subcommand."""
    section = (ROOT / "docs" / "guide" / "cli.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^chargetwin ([a-z]+)", section, re.M))
    assert set(_subparsers()) - listed == set()
    assert "chargetwin --version" in section


@pytest.mark.slow
def test_validate_piped_json_schema_is_whole(tmp_path):
    """`chargetwin schema` piped is valid JSON (no wrapping, no markup)."""
    proc = _run("schema")
    assert proc.returncode == 0
    assert "properties" in json.loads(proc.stdout)
