"""Conformance reports (JSON, HTML, JUnit XML) and the output folder's safety rules.

``conformance.json``, ``report.html`` (summary by functional block, every case,
the frames of each failure) and JUnit XML for CI; plus the output folder's safety rules.

The output folder is written next to its final place and renamed into it at the end, so an interrupted
run leaves the previous report intact. An existing folder is replaced only when it is empty or is a
previous conformance output holding nothing else; any other folder or file is refused.
"""

from __future__ import annotations

import contextlib
import html
import json
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virtual_chargers.conformance.model import CaseResult, Outcome

__all__ = [
    "KIND",
    "OutDir",
    "OutputError",
    "build_report",
    "check_junit_path",
    "junit_xml",
    "render_html",
    "write_junit",
]

KIND = "chargetwin-conformance"
FILES = frozenset({"conformance.json", "report.html", "frames.jsonl"})
_JUNIT_MARK = "chargetwin conformance"


class OutputError(Exception):
    """An output path the suite must not write to; the message names it and the fix."""


def _is_previous_output(path: Path, files: frozenset[str]) -> bool:
    main = min(n for n in files if n.endswith(".json"))
    try:
        meta = json.loads((path / main).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    names = {p.name for p in path.iterdir()}
    return isinstance(meta, dict) and meta.get("kind") in (KIND, "chargetwin-chaos") and names <= files


class OutDir:
    """A report folder written in a temporary sibling and renamed into place by `commit`."""

    def __init__(self, path: Path, files: frozenset[str] = FILES) -> None:
        self.path, self.files = path, files
        if path.exists():
            if not path.is_dir():
                raise OutputError(
                    f"--out {path}: is a file; give a folder (new, empty, or a previous conformance report)"
                )
            if any(path.iterdir()) and not _is_previous_output(path, files):
                raise OutputError(
                    f"--out {path}: the folder holds files that are not a conformance report; "
                    "give a new or empty folder (nothing was overwritten)"
                )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        except OSError as exc:
            raise OutputError(f"--out {path}: cannot write there ({exc.strerror})") from None

    def commit(self) -> Path:
        """Move the finished report into place (replacing a previous conformance report)."""
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old")
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(old)
            self.path.rename(old)
        self.tmp.rename(self.path)
        if old is not None:
            for name in self.files:
                with contextlib.suppress(FileNotFoundError):
                    (old / name).unlink()
            old.rmdir()
        return self.path

    def discard(self) -> None:
        """Remove the unfinished report."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _counts(results: Sequence[CaseResult]) -> dict[str, int]:
    c = Counter(str(r.outcome) for r in results)
    return {str(o): c.get(str(o), 0) for o in Outcome}


def build_report(meta: dict[str, Any], results: Sequence[CaseResult]) -> dict[str, Any]:
    """The JSON report: run facts, counts overall and by block, and every case."""
    blocks: dict[str, list[CaseResult]] = {}
    for r in results:
        blocks.setdefault(r.case.block, []).append(r)
    return {
        "kind": KIND,
        **meta,
        "summary": _counts(results),
        "blocks": {b: _counts(rs) for b, rs in sorted(blocks.items())},
        "cases": [r.to_dict() for r in results],
    }


_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "not_applicable": "#6e7781", "manual": "#9a6700"}


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the report."""
    e = html.escape
    rows = []
    for block, counts in report["blocks"].items():
        rows.append(f"<tr><td>{e(block)}</td>" + "".join(f"<td>{counts[o]}</td>" for o in _COLOURS) + "</tr>")
    total = report["summary"]
    rows.append("<tr><th>all</th>" + "".join(f"<th>{total[o]}</th>" for o in _COLOURS) + "</tr>")
    cases = []
    for c in report["cases"]:
        colour = _COLOURS[c["outcome"]]
        frames = ""
        if c["frames"]:
            lines = "\n".join(
                f"{f['t']:8.3f} {f['charger']} {'→' if f['dir'] == 'tx' else '←'} {f['frame'][:2000]}"
                for f in c["frames"]
            )
            summary = f"{len(c['frames'])} frames (→ to the CSMS, ← from it)"
            frames = f"<details><summary>{summary}</summary><pre>{e(lines)}</pre></details>"
        observed = "".join(f"<li>{e(o)}</li>" for o in c["observed"])
        cases.append(
            f"<tr id='{e(c['id'])}'><td><b>{e(c['id'])}</b><br><small>{e(c['block'])} · {e(c['kind'])}"
            f"{' · CSMS-initiated' if c['csms_initiated'] else ''}</small></td>"
            f"<td style='color:{colour};font-weight:bold'>{e(c['outcome'].replace('_', ' '))}</td>"
            f"<td>{e(c['title'])}<br><small>checks: {e(c['checks'])}<br>spec: {e(c['spec'])}</small>"
            f"{'<p>' + e(c['message']) + '</p>' if c['message'] else ''}"
            f"{'<ul>' + observed + '</ul>' if observed else ''}{frames}</td></tr>"
        )
    head = "".join(f"<th>{o.replace('_', ' ')}</th>" for o in _COLOURS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OCPP {e(report["ocpp"])} conformance of {e(report["csms"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}}
pre{{white-space:pre-wrap;font-size:12px}}</style>
</head><body>
<h1>OCPP {e(report["ocpp"])} conformance</h1>
<p>CSMS <code>{e(report["csms"])}</code> · security profile {report["security_profile"]} ·
CSMS API {"configured" if report["csms_api"] else "not configured (CSMS-initiated cases are manual)"} ·
started {e(report["started"])} · {report["duration_s"]} s</p>
<h2>Summary by functional block</h2>
<table><tr><th>block</th>{head}</tr>{"".join(rows)}</table>
<h2>Cases</h2>
<table><tr><th>case</th><th>verdict</th><th>what it checks, and what the CSMS did</th></tr>{"".join(cases)}</table>
</body></html>
"""


def junit_xml(report: dict[str, Any]) -> bytes:
    """JUnit XML: one testcase per case; not applicable and manual cases are skipped with their reason."""
    s = report["summary"]
    suite = ET.Element(
        "testsuite",
        name=f"{_JUNIT_MARK} OCPP {report['ocpp']}",
        tests=str(len(report["cases"])),
        failures=str(s["fail"]),
        errors="0",
        skipped=str(s["not_applicable"] + s["manual"]),
        time=str(report["duration_s"]),
    )
    for c in report["cases"]:
        tc = ET.SubElement(
            suite, "testcase", classname=c["block"], name=f"{c['id']} {c['title']}", time=str(c["duration_s"])
        )
        if c["outcome"] == "fail":
            failure = ET.SubElement(tc, "failure", message=c["message"])
            failure.text = "\n".join(f"{f['t']:.3f} {f['charger']} {f['dir']} {f['frame'][:2000]}" for f in c["frames"])
        elif c["outcome"] in ("not_applicable", "manual"):
            ET.SubElement(tc, "skipped", message=f"{c['outcome']}: {c['message']}")
        if c["observed"]:
            ET.SubElement(tc, "system-out").text = "\n".join(c["observed"])
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def check_junit_path(path: Path) -> None:
    """Refuse a --junit path that is a folder or a file this suite did not write."""
    if path.is_dir():
        raise OutputError(f"--junit {path}: is a folder; give a file name, e.g. conformance.xml")
    if path.exists():
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:400]
        except OSError as exc:
            raise OutputError(f"--junit {path}: cannot read it ({exc.strerror})") from None
        if _JUNIT_MARK not in head:
            raise OutputError(f"--junit {path}: the file exists and is not a conformance JUnit report; give a new name")


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """Write the JUnit XML (atomically; refusing paths `check_junit_path` refuses)."""
    check_junit_path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(junit_xml(report))
    tmp.replace(path)
