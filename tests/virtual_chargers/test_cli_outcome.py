"""``chargetwin chargers`` says how the run ended: non-zero when nothing connected, a summary even on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.cli import main
from tests.virtual_chargers.test_cli import csms_process  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_charger_connected_exits_1_with_the_last_connection_error(tmp_path: Path, capsys) -> None:
    """Against a port nobody listens on: exit 1, the connection error on stderr and in the summary JSON."""
    port = _closed_port()
    summary = tmp_path / "summary.json"
    rc = main(
        [
            "chargers", "--count", "2", "--csms", f"ws://127.0.0.1:{port}", "--speed", "600", "--duration", "120",
            "--state-dir", str(tmp_path / "state"), "--summary-json", str(summary),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    assert f"no charger ever connected to ws://127.0.0.1:{port}; last connection error: " in err
    assert "refused" in err.lower()
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["connects"] == 0
    assert "refused" in data["last_connect_error"].lower()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_still_prints_the_summary_and_writes_the_json(
    csms_process: tuple[str, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
    processes: int,
) -> None:
    """SIGINT to the whole group (as Ctrl-C does) mid-run: the summary is printed and written, exit 130."""
    url, _ = csms_process
    summary = tmp_path / "summary.json"
    log = tmp_path / "frames.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "sim.cli", "chargers", "--count", "2", "--csms", url, "--speed", "1",
            "--duration", "3600", "--processes", str(processes), "--state-dir", str(tmp_path / "state"),
            "--summary-json", str(summary), "--log", str(log),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        logs = [log] if processes == 1 else [log.with_name(f"frames.p{i}.jsonl") for i in range(processes)]
        # the frame log is buffered: wait until the chargers had time to connect and boot (bounded)
        while not all(p.exists() for p in logs):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the chargers did not start in time"
            time.sleep(0.05)
        time.sleep(2.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in out  # in the summary's title
    assert "connects / boots accepted" in out
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["connects"] == 2
    assert data["boots_accepted"] == 2
