"""Against a CSMS we did not write: the PyPI package ``ocpp-csms`` (1.6J), in its own virtual environment.

The venv lives in ``.venv-ocpp-csms/`` at the repository root (created once, reused), so its pins never
touch ours. The test is skipped, with the reason, only when the package index cannot be reached.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.testing import ChargerSet

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-ocpp-csms"
N = 10


@pytest.fixture(scope="session")
def ocpp_csms_exe() -> Path:
    """The ``ocpp-csms`` command, installed into its own venv on first use."""
    exe = VENV / "bin" / "ocpp-csms"
    if not exe.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        done = subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "ocpp-csms"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            text = done.stderr + done.stdout
            if re.search(r"No matching distribution|connection|Network is unreachable|resolve", text, re.I):
                pytest.skip(f"package index unreachable, cannot install ocpp-csms: {text.strip().splitlines()[-1]}")
            raise AssertionError(f"pip install ocpp-csms failed:\n{text}")
    return exe


@pytest.fixture
def ocpp_csms(ocpp_csms_exe: Path) -> Iterator[tuple[str, list[str]]]:
    """A running ``ocpp-csms`` on 127.0.0.1 (free port); yields its URL and the event lines it printed."""
    proc = subprocess.Popen(
        [str(ocpp_csms_exe), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.search(r"listening on port (\d+)", first)
        assert m is not None, f"ocpp-csms did not start: {first!r}"
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        yield f"ws://127.0.0.1:{m.group(1)}", lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_ten_chargers_boot_and_complete_transactions_against_ocpp_csms(
    arun: Any, tmp_path: Path, ocpp_csms: tuple[str, list[str]]
) -> None:
    """10 chargers boot, charge with meter values and stop; ocpp-csms reports every start and stop."""
    url, lines = ocpp_csms

    async def scenario() -> Any:
        async with ChargerSet(url, speed=600.0, state_dir=tmp_path) as fleet:
            chargers = [await fleet.add(f"VC{i:02d}", config={"MeterValueSampleInterval": "60"}) for i in range(N)]
            await fleet.wait_all_booted(20)
            for cp in chargers:
                await cp.plug_in(1, id_tag=f"T{cp.spec.id}")
            await asyncio.sleep(0.5)
            for cp in chargers:
                await cp.unplug(1)
            await fleet.wait_queues_empty(20)
            for _ in range(100):  # its printing thread may lag behind the protocol
                if sum("TransactionStoppedEvent" in line for line in lines) >= N:
                    break
                await asyncio.sleep(0.05)
            return fleet.log.summary

    summary = arun(scenario())
    assert summary.boots_accepted == N
    assert summary.transactions_confirmed == N
    assert summary.violation_count == 0
    assert sum(summary.call_errors_received.values()) == 0
    for i in range(N):
        cid = f"charge_point_id='VC{i:02d}'"
        assert any("BootEvent" in line and cid in line for line in lines), cid
        assert any("TransactionStartedEvent" in line and cid in line for line in lines), cid
        assert any("TransactionStoppedEvent" in line and cid in line for line in lines), cid


@pytest.mark.slow
def test_conformance_suite_gives_ocpp_csms_a_verdict_on_every_case(arun: Any, ocpp_csms: tuple[str, list[str]]) -> None:
    """The 1.6 conformance suite runs to the end against ocpp-csms, every case with a verdict.

    Without a CSMS API every CSMS-initiated case is manual; the cold boot passes, since ocpp-csms accepts
    any charger.
    """
    import logging

    from virtual_chargers.clock import SimClock
    from virtual_chargers.conformance import Outcome, SuiteConfig, all_cases, run_cases, select_cases
    from virtual_chargers.framelog import FrameLog

    url, _ = ocpp_csms
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    cases = select_cases(all_cases(), "1.6")
    results = arun(run_cases(cases, SuiteConfig(url, "1.6", timeout_s=2.0), FrameLog(SimClock(1.0))), 300)
    assert [r.case.id for r in results] == [c.id for c in cases]
    assert {r.case.id for r in results if r.outcome is Outcome.MANUAL} == {c.id for c in cases if c.csms_action}
    by_id = {r.case.id: r for r in results}
    assert by_id["CORE_001"].outcome is Outcome.PASS
