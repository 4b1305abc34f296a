"""Fingerprint every shipped scenario's results, to show a change leaves them unchanged.

Runs each scenario under ``scenarios/`` (and ``scenarios/csms/`` when it needs no
CSMS) for a few days with a fixed seed, and prints a SHA-256 of every file the run
writes. Run it before and after a refactor and compare::

    python bench/identical.py --out /tmp/before.json        # on the old commit
    python bench/identical.py --out /tmp/after.json --compare /tmp/before.json

``--compare`` prints every file whose bytes differ and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def needs_csms(path: Path) -> bool:
    """A scenario whose manager is a CSMS cannot run without one."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    manager = doc.get("manager") or {}
    return isinstance(manager, dict) and manager.get("kind") == "ocpp"


def scenarios() -> list[Path]:
    found = sorted((ROOT / "scenarios").glob("*.yaml"))
    found += sorted((ROOT / "scenarios" / "csms").glob("*.yaml"))
    return [p for p in found if not needs_csms(p)]


def fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 per file; the checkout's own path (a resolved trace path) reads as ``<root>``."""
    root = str(ROOT).encode()
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes().replace(root, b"<root>")).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(scenario: Path, days: float, seed: int, out: Path) -> None:
    cmd = [sys.executable, "-m", "sim.cli", "run", str(scenario)]
    cmd += ["--days", str(days), "--seed", str(seed), "--out", str(out), "-q"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{scenario.name}: run failed (exit {done.returncode}):\n{done.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0, help="horizon of each run (default 3)")
    parser.add_argument("--seed", type=int, default=11, help="seed of every run (default 11)")
    parser.add_argument("--out", type=Path, help="write the fingerprints here as JSON")
    parser.add_argument("--compare", type=Path, help="fingerprints of an earlier commit to compare")
    args = parser.parse_args()

    prints: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="chargetwin-identical-") as tmp:
        for scenario in scenarios():
            name = str(scenario.relative_to(ROOT / "scenarios"))
            started = time.perf_counter()
            folder = Path(tmp) / name.replace("/", "_")
            run(scenario, args.days, args.seed, folder)
            prints[name] = fingerprint(folder)
            took = time.perf_counter() - started
            print(f"{name:45s} {len(prints[name]):3d} files  {took:5.1f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text(encoding="utf-8"))
    differ = [
        f"{name}/{file}"
        for name in sorted(set(before) | set(prints))
        for file in sorted(set(before.get(name, {})) | set(prints.get(name, {})))
        if before.get(name, {}).get(file) != prints.get(name, {}).get(file)
    ]
    for line in differ:
        print(f"DIFFERS  {line}")
    print(f"{len(differ)} of {sum(len(v) for v in prints.values())} files differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
