"""``chargetwin csms`` and ``chargetwin chargers`` from the command line: runs bounded in time, summaries, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHARGETWIN = str(Path(sys.executable).with_name("chargetwin"))


@pytest.fixture
def csms_process() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``chargetwin csms --port 0`` in its own process: (its URL, the process); stopped with Ctrl-C (SIGINT)."""
    proc = subprocess.Popen(
        [CHARGETWIN, "csms", "--port", "0", "--heartbeat-interval", "3600", "--duration", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the process's own --duration bounds this read
        m = re.search(r"(ws://127\.0\.0\.1:\d+)", line)
        assert m is not None, line
        yield m.group(1), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C the CSMS and return what it printed."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return out, err


@pytest.mark.slow
def test_count_run_then_csms_stopped_with_ctrl_c_prints_what_it_saw(
    csms_process: tuple[str, subprocess.Popen[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chargers --count 3 --duration` ends on its own with the summary; the CSMS's Ctrl-C prints its counts."""
    url, proc = csms_process
    summary_path = tmp_path / "summary.json"
    rc = main(
        [
            "chargers",
            "--count",
            "3",
            "--ocpp",
            "1.6",
            "--csms",
            url,
            "--speed",
            "2400",
            "--duration",
            "3600",
            "--state-dir",
            str(tmp_path / "state"),
            "--summary-json",
            str(summary_path),
            "--config",
            "MeterValueSampleInterval=300",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 chargers: 3 OCPP 1.6 chargers" in out
    assert "transactions started / ended / confirmed" in out
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["boots_accepted"] == 3
    assert summary["transactions"]["started"] >= 3  # each charger's first EV arrives within 10 minutes
    assert summary["csms_violations"] == 0
    csms_out, csms_err = _stop(proc)
    assert proc.returncode == 0
    assert "Traceback" not in csms_err
    assert re.search(r"boots 3, transactions \d+", csms_out)


@pytest.mark.slow
def test_scenario_run_plans_the_sites_chargers_and_arrivals(
    csms_process: tuple[str, subprocess.Popen[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chargers SCENARIO --speed --duration`: one charger per charger of the scenario, its EVs, a frame log."""
    url, _ = csms_process
    log_path = tmp_path / "frames.jsonl"
    summary_path = tmp_path / "summary.json"
    rc = main(
        [
            "chargers",
            str(ROOT / "scenarios" / "small_city.yaml"),
            "--csms",
            url,
            "--speed",
            "14400",
            "--duration",
            "28800",  # until 08:00 on the first morning
            "--state-dir",
            str(tmp_path / "state"),
            "--log",
            str(log_path),
            "--summary-json",
            str(summary_path),
            "--config",
            "MeterValueSampleInterval=900",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    m = re.search(r"(\d+) OCPP 1.6 chargers, (\d+) planned sessions", out)
    assert m is not None
    assert int(m.group(1)) == 13  # 4 + 2 + 5 + 1 + 1 in small_city.yaml
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["boots_accepted"] == 13
    assert summary["transactions"]["started"] >= 1
    chargers = {json.loads(line)["charger"] for line in log_path.read_text(encoding="utf-8").splitlines()}
    assert len(chargers) == 13
    assert "utrecht_centrum.01" in chargers  # the simulation's ids


@pytest.mark.slow
def test_two_processes_share_the_chargers_and_merge_the_summary(
    csms_process: tuple[str, subprocess.Popen[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--processes 2`: chargers split over two workers, one frame log each, one merged summary."""
    url, _ = csms_process
    log_path = tmp_path / "frames.jsonl"
    summary_path = tmp_path / "summary.json"
    rc = main(
        [
            "chargers",
            "--count",
            "4",
            "--csms",
            url,
            "--speed",
            "2400",
            "--duration",
            "1800",
            "--processes",
            "2",
            "--state-dir",
            str(tmp_path / "state"),
            "--log",
            str(log_path),
            "--summary-json",
            str(summary_path),
        ]
    )
    assert rc == 0
    assert "(2 process(es))" in capsys.readouterr().out
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["boots_accepted"] == 4
    parts = sorted(p.name for p in tmp_path.glob("frames.p*.jsonl"))
    assert parts == ["frames.p0.jsonl", "frames.p1.jsonl"]
    by_part = [
        {json.loads(line)["charger"] for line in (tmp_path / p).read_text(encoding="utf-8").splitlines()} for p in parts
    ]
    assert by_part == [{"CP0001", "CP0003"}, {"CP0002", "CP0004"}]


BAD_INPUT = [
    (
        ["--count", "2", "--csms", "ws://127.0.0.1:9", "--security-profile", "1", "--password-env", "CT_NO_SUCH_VAR"],
        "CT_NO_SUCH_VAR",
    ),
    (
        ["--count", "2", "--csms", "ws://127.0.0.1:9", "--processes", "2"]
        + ["--security-profile", "1", "--password-env", "CT_NO_SUCH_VAR"],
        "CT_NO_SUCH_VAR",
    ),
    (["--count", "2", "--csms", "http://127.0.0.1:9000"], "ws:// or wss://"),
    (["--count", "2", "--csms", "ws://127.0.0.1:9", "--security-profile", "1"], "needs a password"),
    (["no/such/scenario.yaml", "--csms", "ws://127.0.0.1:9"], "no/such/scenario.yaml"),
    (["--csms", "ws://127.0.0.1:9"], "give a scenario file or --count N"),
    (["--count", "0", "--csms", "ws://127.0.0.1:9"], "--count(=0)"),
    (["--count", "2", "--csms", "ws://127.0.0.1:9", "--config", "MeterValueSampleInterval"], "KEY=VALUE"),
]


@pytest.mark.parametrize(("args", "named"), BAD_INPUT)
def test_bad_input_is_one_clear_line_and_exit_2(
    args: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input: exit code 2, a line naming the problem, no traceback, nothing run."""
    monkeypatch.delenv("CT_NO_SUCH_VAR", raising=False)
    rc = main(["chargers", *args, "--state-dir", str(tmp_path / "state")])
    captured = capsys.readouterr()
    assert rc == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines
    assert named in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "state").exists()


def test_bad_scenario_content_names_the_file_and_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario with a typo fails before anything runs, naming the file and the key."""
    text = (ROOT / "scenarios" / "small_city.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "typo.yaml"
    bad.write_text(text.replace("horizon_days:", "horizon_dayz:", 1), encoding="utf-8")
    rc = main(["chargers", str(bad), "--csms", "ws://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "horizon_dayz" in err
    assert "Traceback" not in err


def test_console_script_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    """The installed `chargetwin` script itself: a missing password variable is one line on stderr, exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "CT_NO_SUCH_VAR"}
    proc = subprocess.run(
        [CHARGETWIN, "chargers", "--count", "1", "--csms", "ws://127.0.0.1:9", "--security-profile", "1"]
        + ["--password-env", "CT_NO_SUCH_VAR", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "environment variable CT_NO_SUCH_VAR is not set or empty; put the password in it"
    ]
    assert "Traceback" not in proc.stdout
