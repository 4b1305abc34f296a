"""The reference CSMS of this tree in a process of its own, for the benchmarks that measure a CSMS on loopback.

with reference_csms("--heartbeat-interval", "30") as (url, pid):
...  # chargers connect to url; proc_cpu_s(pid) is the CSMS's CPU time
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])  # the CSMS of this tree, not of whatever is installed


@contextlib.contextmanager
def reference_csms(*args: str) -> Iterator[tuple[str, int]]:
    """Start `chargetwin csms --port 0 ARGS` (127.0.0.1, a free port); yield (url, pid); stop it on exit."""
    boot = f"import sys; sys.path.insert(0, {ROOT!r}); from sim.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", boot, "csms", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"(ws://[\d.]+:\d+)", line)
        if m is None:
            raise SystemExit(f"the reference CSMS did not start: {line!r}")
        yield m.group(1), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def cpu_s() -> float:
    """CPU seconds of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of another process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
