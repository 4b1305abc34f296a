"""``chargetwin conformance``: run the conformance suite against a CSMS and write its reports.

Registered into `sim.cli` by `add_subcommand`; problems the user can fix raise `sim.console.UsageError`
(one line, exit code 2). The exit code is 0 when no case failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from virtual_chargers.clock import SimClock, ocpp_time
from virtual_chargers.conformance.model import CaseResult, Outcome
from virtual_chargers.framelog import FrameLog

__all__ = ["add_subcommand", "cmd_conformance"]

EXAMPLES = """\
examples:
  chargetwin conformance --ocpp 1.6                                   self-check against the reference CSMS
  chargetwin conformance --csms ws://csms.example:9000/ocpp --ocpp 2.0.1 --select 'E*,K*' --junit e.xml
  chargetwin conformance --csms ws://127.0.0.1:9000 --ocpp 1.6 --csms-api http://127.0.0.1:8080/conformance
  CSMS_PASSWORD=… chargetwin conformance --csms wss://csms.example/ocpp --ocpp 2.0.1 \\
      --security-profile 2 --password-env CSMS_PASSWORD --ca ca.pem --charger-id CP-QA-01
  chargetwin conformance --ocpp 1.6 --list                            the cases, without running them
  chargetwin conformance --chaos scenarios/chaos/loss_reorder.yaml --csms ws://127.0.0.1:9000 --out out/chaos
"""

_MARK = {
    "pass": "[green]PASS[/]",
    "fail": "[red]FAIL[/]",
    "not_applicable": "[dim]N/A [/]",
    "manual": "[yellow]MANUAL[/]",
}


def _usage(message: str) -> Exception:
    from sim.console import UsageError

    return UsageError(message)


def add_subcommand(sub: Any) -> None:
    """Add ``conformance`` to the `chargetwin` subparsers."""
    p = sub.add_parser(
        "conformance",
        help="OCPP conformance and negative cases against a CSMS; JSON, HTML and JUnit reports",
        description="Run OCPP 1.6J / 2.0.1 conformance and negative cases against a CSMS (test chargers play the "
        "charge points) and write conformance.json, report.html and frames.jsonl.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--csms", metavar="URL", help="CSMS websocket URL (default: a reference CSMS started in-process)")
    p.add_argument("--ocpp", choices=["1.6", "2.0.1"], help="OCPP version of the suite (required unless --chaos)")
    p.add_argument("--chaos", type=Path, metavar="FILE", help="instead of the cases: a chaos scenario (fault proxy)")
    p.add_argument("--select", metavar="GLOBS", help="comma-separated globs on case ids, e.g. 'E*,K*' or 'CORE_00?'")
    p.add_argument("--out", type=Path, help="report folder (default out/conformance-<ocpp>)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML for CI")
    p.add_argument(
        "--csms-api", metavar="URL", help="HTTP endpoint that makes the CSMS send a request (docs/ocpp/conformance.md)"
    )
    p.add_argument("--valid-tag", default="CONFTAG01", help="an id tag the CSMS accepts (default CONFTAG01)")
    p.add_argument("--invalid-tag", help="an id tag the CSMS answers Invalid (without it those cases do not apply)")
    p.add_argument("--charger-id", help="use this (registered) charger id in every case instead of CT-<case id>")
    p.add_argument("--timeout", type=float, default=5.0, help="wall seconds to wait for one answer (default 5)")
    p.add_argument("--case-timeout", type=float, default=30.0, help="wall seconds one case may take (default 30)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument(
        "--security-profile", type=int, choices=[0, 1, 2, 3], default=0,
        help="OCPP security profile: 0 none, 1 basic auth, 2 basic auth over TLS, 3 client certificate (default 0)",
    )  # fmt: skip
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the basic-auth password")
    p.add_argument("--password-file", type=Path, metavar="FILE", help="file whose first line is the password")
    p.add_argument("--ca", type=Path, metavar="FILE", help="CA bundle that signed the CSMS certificate")
    p.add_argument("--cert", type=Path, metavar="FILE", help="client certificate (profile 3)")
    p.add_argument("--key", type=Path, metavar="FILE", help="client private key (profile 3)")
    p.set_defaults(func=cmd_conformance)


def _selected(args: argparse.Namespace) -> list[Any]:
    from virtual_chargers.conformance import all_cases, select_cases

    patterns = [s.strip() for s in (args.select or "").split(",") if s.strip()]
    cases = select_cases(all_cases(), args.ocpp, patterns)
    if not cases:
        raise _usage(f"--select {args.select!r}: no OCPP {args.ocpp} case id matches; `--list` shows them")
    return cases


def _block_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"OCPP {report['ocpp']} conformance of {report['csms']}")
    table.add_column("block")
    for o in Outcome:
        table.add_column(str(o).replace("_", " "), justify="right")
    for block, counts in report["blocks"].items():
        table.add_row(block, *(str(counts[str(o)]) for o in Outcome))
    table.add_row("[b]all[/]", *(f"[b]{report['summary'][str(o)]}[/]" for o in Outcome))
    return table


def cmd_conformance(args: argparse.Namespace, console: Console) -> int:
    """Run the selected cases and write the reports; 1 if any case failed."""
    from virtual_chargers.cli import _security
    from virtual_chargers.conformance.api import HttpApi
    from virtual_chargers.conformance.report import (
        OutDir,
        OutputError,
        build_report,
        check_junit_path,
        render_html,
        write_junit,
    )
    from virtual_chargers.conformance.runner import SuiteConfig, run_cases
    from virtual_chargers.connection import client_ssl_context, load_password

    if args.chaos is not None:
        return _cmd_chaos(args, console)
    if args.ocpp is None:
        raise _usage("--ocpp 1.6 or --ocpp 2.0.1 is required (or --chaos FILE)")
    cases = _selected(args)
    if args.list:
        for c in cases:
            line = f"{c.id:10} {c.block:28} {c.kind:8} {'CSMS-initiated ' if c.csms_action else ''}{c.title}"
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        return 0
    if args.csms is not None and not args.csms.startswith(("ws://", "wss://")):
        raise _usage(f"--csms {args.csms}: give a ws:// or wss:// URL")
    security = _security(args)
    password, ssl_context = load_password(security), client_ssl_context(security)
    api = None
    if args.csms_api:
        try:
            api = HttpApi(args.csms_api)
        except ValueError as exc:
            raise _usage(f"--csms-api: {exc}") from None
    if args.csms is None and security.profile != 0:
        raise _usage("--security-profile needs --csms: the in-process reference CSMS runs without security")
    try:
        if args.junit is not None:
            check_junit_path(args.junit)
        out = OutDir(args.out or Path("out") / f"conformance-{args.ocpp}")
    except OutputError as exc:
        raise _usage(str(exc)) from None

    def progress(r: CaseResult) -> None:
        line = f"{_MARK[str(r.outcome)]} {r.case.id:10} {r.case.title}"
        console.print(line + (f"\n       {r.message}" if r.outcome is Outcome.FAIL else ""), highlight=False)

    log = FrameLog(SimClock(1.0), out.tmp / "frames.jsonl")
    started = ocpp_time(datetime.now(UTC))
    t0 = time.monotonic()

    async def run() -> tuple[str, bool, list[CaseResult]]:
        cfg = SuiteConfig(
            args.csms or "",
            args.ocpp,
            api=api,
            security=security,
            password=password,
            ssl_context=ssl_context,
            valid_id_tag=args.valid_tag,
            invalid_id_tag=args.invalid_tag,
            charger_id=args.charger_id,
            timeout_s=args.timeout,
            case_timeout_s=args.case_timeout,
        )
        if args.csms is not None:
            return args.csms, api is not None, await run_cases(cases, cfg, log, progress)
        from virtual_chargers.conformance.api import ReferenceApi
        from virtual_chargers.csms import Csms

        logging.getLogger("ocpp").setLevel(logging.CRITICAL)  # its tracebacks of the negative cases' frames
        async with Csms() as csms:
            cfg.url, cfg.api = csms.url, ReferenceApi(csms)
            if cfg.invalid_id_tag is None:
                cfg.invalid_id_tag = "CONFBADTAG"
            csms.records16.rejected_tags.add(cfg.invalid_id_tag)
            csms.records201.rejected_tokens.add(cfg.invalid_id_tag)
            console.print(f"reference CSMS (in-process) at {csms.url}, with its API")
            return f"reference CSMS ({csms.url})", True, await run_cases(cases, cfg, log, progress)

    try:
        csms_name, has_api, results = asyncio.run(run())
    except BaseException:
        log.close()
        out.discard()
        raise
    log.close()
    meta = {
        "csms": csms_name,
        "ocpp": args.ocpp,
        "security_profile": security.profile,
        "csms_api": has_api,
        "select": args.select or "*",
        "started": started,
        "duration_s": round(time.monotonic() - t0, 2),
    }
    report = build_report(meta, results)
    import json

    (out.tmp / "conformance.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out.tmp / "report.html").write_text(render_html(report), encoding="utf-8")
    try:
        path = out.commit()
        if args.junit is not None:
            write_junit(args.junit, report)
    except OutputError as exc:
        raise _usage(str(exc)) from None
    finally:
        with contextlib.suppress(OSError):
            out.discard()
    console.print(_block_table(report))
    console.print(f"report: {path / 'report.html'}" + (f", JUnit: {args.junit}" if args.junit else ""))
    return 1 if report["summary"]["fail"] else 0


def _cmd_chaos(args: argparse.Namespace, console: Console) -> int:
    """Run a chaos scenario through the fault proxy; write chaos.json; 1 if an invariant did not hold."""
    import json
    import tempfile

    from virtual_chargers.conformance.chaos import ChaosError, load_chaos, run_chaos
    from virtual_chargers.conformance.report import OutDir, OutputError

    try:
        scenario = load_chaos(args.chaos)
    except ChaosError as exc:
        raise _usage(str(exc)) from None
    if args.csms is not None and not args.csms.startswith(("ws://", "wss://")):
        raise _usage(f"--csms {args.csms}: give a ws:// or wss:// URL")
    try:
        out = OutDir(args.out or Path("out") / f"chaos-{scenario.name}", files=frozenset({"chaos.json"}))
    except OutputError as exc:
        raise _usage(str(exc)) from None

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as state:
            if args.csms is not None:
                return await run_chaos(scenario, args.csms, Path(state), console.print)
            from virtual_chargers.csms import Csms

            async with Csms() as csms:
                console.print(f"reference CSMS (in-process) at {csms.url}")
                return await run_chaos(scenario, csms.url, Path(state), console.print)

    try:
        report = asyncio.run(run())
    except BaseException:
        out.discard()
        raise
    (out.tmp / "chaos.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    path = out.commit()
    for name, r in report["invariants"].items():
        extra = f" (recovery {r['recovery_s']} s)" if r.get("recovery_s") is not None else ""
        console.print(f"{'[green]held[/]' if r['held'] else '[red]BROKEN[/]'} {name}{extra}")
    console.print(
        f"faults applied: {report['faults_applied']}; wall {report['wall_s']} s; report: {path / 'chaos.json'}"
    )
    return 0 if report["held"] else 1
