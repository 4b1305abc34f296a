"""``chargetwin chargers`` and ``chargetwin csms``: virtual chargers against a CSMS, and the reference CSMS.

Registered into `sim.cli` by `add_subcommands`; problems the user can fix raise `sim.console.UsageError`
or `sim.config.ScenarioError`, which `sim.cli.main` prints as one line each with exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import ssl
import time
from pathlib import Path
from typing import Any

import platformdirs
from rich.console import Console
from rich.table import Table

from virtual_chargers.connection import SecurityConfig, SecurityError, client_ssl_context, load_password
from virtual_chargers.faults import FaultTimeline, load_faults
from virtual_chargers.framelog import FrameLog, Summary

__all__ = ["add_subcommands", "cmd_chargers", "cmd_csms", "summary_table"]

CHARGERS_EXAMPLES = """\
examples:
  chargetwin csms --port 9000                                        the reference CSMS on 127.0.0.1
  chargetwin chargers scenarios/small_city.yaml --csms ws://127.0.0.1:9000 --speed 60
  chargetwin chargers --count 1000 --ocpp 1.6 --csms ws://127.0.0.1:9000 --processes 2
  CSMS_PASSWORD=… chargetwin chargers --count 10 --csms wss://csms.example:443/ocpp \\
      --security-profile 2 --password-env CSMS_PASSWORD --ca ca.pem --log frames.jsonl
"""


def default_state_dir() -> Path:
    """Where `chargetwin chargers` keeps its queues unless told: the user's cache directory."""
    return Path(platformdirs.user_cache_dir("chargetwin")) / "chargers"


def _usage(message: str) -> Exception:
    from sim.console import UsageError

    return UsageError(message)


def add_subcommands(sub: Any) -> None:
    """Add ``chargers`` and ``csms`` to the `chargetwin` subparsers."""
    ch = sub.add_parser(
        "chargers",
        help="run virtual OCPP chargers against a CSMS (a scenario's sites and EVs, or --count N)",
        description="Run virtual OCPP 1.6J / 2.0.1 chargers against a CSMS and print what happened.",
        epilog=CHARGERS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ch.add_argument("scenario", nargs="?", help="scenario YAML: its sites' chargers and its EV arrivals")
    ch.add_argument(
        "--csms",
        required=True,
        metavar="URL",
        help="CSMS websocket URL; chargers add /<charger id>, or replace {id} of a template "
        "such as ws://host/ws/ocpp/{id}/ or ws://host/ocpp?cp={id}",
    )
    ch.add_argument("--count", type=int, help="instead of a scenario: N single-connector 22 kW chargers")
    ch.add_argument("--ocpp", choices=["1.6", "2.0.1"], default="1.6", help="OCPP version (default 1.6)")
    ch.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second (default 60)")
    ch.add_argument(
        "--duration", type=float, metavar="SIM_S", help="simulated seconds to run (default: scenario horizon, or 3600)"
    )
    ch.add_argument("--processes", type=int, default=1, help="worker processes to spread the chargers over")
    ch.add_argument("--log", type=Path, metavar="FILE", help="JSONL frame log (one file per process if several)")
    ch.add_argument("--summary-json", type=Path, metavar="FILE", help="write the end summary as JSON")
    ch.add_argument("--force", action="store_true", help="let --log and --summary-json overwrite other files")
    ch.add_argument("--faults", type=Path, metavar="FILE", help="fault timeline YAML (see virtual_chargers.faults)")
    ch.add_argument(
        "--state-dir",
        type=Path,
        help="where queued transaction messages persist, by CSMS URL and charger id (default: the user's cache "
        "directory, e.g. ~/.cache/chargetwin/chargers)",
    )
    ch.add_argument(
        "--leave-open",
        action="store_true",
        help="at the end, leave running transactions open at the CSMS (default: stop them with reason Local first)",
    )
    ch.add_argument("--seed", type=int, help="seed for arrivals and backoff jitter (default: the scenario's, or 0)")
    ch.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="a configuration key")
    ch.add_argument(
        "--security-profile", type=int, choices=[0, 1, 2, 3], default=0,
        help="OCPP security profile: 0 none, 1 basic auth, 2 basic auth over TLS, 3 client certificate (default 0)",
    )  # fmt: skip
    ch.add_argument("--password-env", metavar="VAR", help="environment variable holding the basic-auth password")
    ch.add_argument("--password-file", type=Path, metavar="FILE", help="file whose first line is the password")
    ch.add_argument("--ca", type=Path, metavar="FILE", help="CA bundle that signed the CSMS certificate")
    ch.add_argument("--cert", type=Path, metavar="FILE", help="client certificate (profile 3)")
    ch.add_argument("--key", type=Path, metavar="FILE", help="client private key (profile 3)")
    ch.set_defaults(func=cmd_chargers)

    cs = sub.add_parser("csms", help="run the reference CSMS (in memory) for loopback tests and demos")
    cs.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    cs.add_argument("--port", type=int, default=9000, help="port (default 9000; 0 picks a free one)")
    cs.add_argument("--heartbeat-interval", type=int, default=300, help="interval in BootNotification answers")
    cs.add_argument(
        "--registration", choices=["Accepted", "Pending", "Rejected"], default="Accepted",
        help="the status every BootNotification is answered with (default Accepted)",
    )  # fmt: skip
    cs.add_argument("--reject-tag", action="append", default=[], metavar="ID", help="answer this id tag Invalid")
    cs.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate chain + key (PEM): wss://")
    cs.add_argument("--duration", type=float, metavar="WALL_S", help="stop after this many wall seconds")
    cs.add_argument("--log", type=Path, metavar="FILE", help="JSONL frame log")
    cs.add_argument("--force", action="store_true", help="let --log overwrite a file that is not a frame log")
    cs.add_argument(
        "--cap",
        metavar="KW@HH:MM-HH:MM[+HH:MM]",
        help="smart charging: cap every connector, daily, e.g. 7@17:00-20:00+01:00 (1.6 chargers)",
    )
    cs.add_argument(
        "--cap-on", choices=["boot", "transaction"], default="boot",
        help="send the cap as a TxDefaultProfile on boot (default) or a TxProfile on each transaction",
    )  # fmt: skip
    cs.set_defaults(func=cmd_csms)


def _security(args: argparse.Namespace) -> SecurityConfig:
    """The security settings, with the password and TLS files checked now (not in a worker process later)."""
    try:
        security = SecurityConfig(
            profile=args.security_profile,
            password_env=args.password_env,
            password_file=args.password_file,
            ca_file=args.ca,
            cert_file=args.cert,
            key_file=args.key,
        )
        load_password(security)
        client_ssl_context(security)
    except SecurityError as exc:
        raise _usage(str(exc)) from None
    return security


def _is_summary(path: Path) -> bool:
    from sim.outputs import json_with_keys

    return json_with_keys(path, ("sent", "received", "transactions", "connects"))


def _is_frame_log(path: Path) -> bool:
    """The file starts with a line of a frame log (`FrameLog`)."""
    try:
        with path.open("rb") as f:
            first = json.loads(f.readline(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and {"t", "charger", "dir"} <= set(first)


def _check_outputs(args: argparse.Namespace, files: list[tuple[str, Path | None]]) -> None:
    """Refuse, before anything runs, to overwrite a file this command did not write (unless --force)."""
    from sim.outputs import check_file

    owned = {"--summary-json": (_is_summary, "a chargers summary"), "--log": (_is_frame_log, "a frame log")}
    for flag, path in files:
        if path is None:
            continue
        recognise, what = owned[flag]
        if check_file(path, owned=recognise, what=what, flag=flag, force=args.force):
            Console(stderr=True).print(f"{flag} {path}: --force: overwriting it", markup=False, highlight=False)


def _config(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _usage(f"--config {item!r}: write KEY=VALUE, e.g. --config MeterValueSampleInterval=10")
        out[key] = value
    return out


def summary_table(summary: Summary, title: str) -> Table:
    """The end summary as a rich table."""
    d = summary.to_dict()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("value", justify="right")
    tx = d["transactions"]
    rows = [
        ("frames sent / received", f"{sum(d['sent'].values()):,} / {sum(d['received'].values()):,}"),
        ("connects / boots accepted", f"{d['connects']:,} / {d['boots_accepted']:,}"),
        ("transactions started / ended / confirmed", f"{tx['started']:,} / {tx['ended']:,} / {tx['confirmed']:,}"),
        ("queued messages delivered after reconnect", f"{d['queued_delivered_after_reconnect']:,}"),
        ("  of them queued by an earlier run", f"{d['queued_delivered_from_earlier_run']:,}"),
        ("queued messages dropped", f"{d['queued_dropped']:,}"),
        (
            "CallErrors sent / received",
            f"{sum(d['call_errors_sent'].values())} / {sum(d['call_errors_received'].values())}",
        ),
        ("CSMS violations (of them unanswerable frames)", f"{d['csms_violations']:,} ({d['unanswerable_frames']:,})"),
        ("request timeouts", f"{sum(d['timeouts'].values()):,}"),
        ("warnings", f"{len(d['warnings']):,}"),
    ]
    if d["csms_clock_offset"]:
        rows.append(("CSMS clock − simulated calendar (median)", f"{d['csms_clock_offset']['median_s']:+,.0f} s"))
    for action, q in d["rtt_ms"].items():
        rows.append((f"RTT {action} p50/p95/p99", f"{q['p50']:.1f} / {q['p95']:.1f} / {q['p99']:.1f} ms"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def cmd_chargers(args: argparse.Namespace, console: Console) -> int:
    """Run virtual chargers against a CSMS and print the end summary."""
    from sim.config import load_scenario
    from virtual_chargers.fleet import FleetOptions, plan_quick, plan_scenario, run_fleet

    if (args.scenario is None) == (args.count is None):
        raise _usage("give a scenario file or --count N (not both)")
    from sim.config.ocpp import csms_url_problem

    problem = csms_url_problem(args.csms)
    if problem is not None:
        raise _usage(f"--csms {args.csms}: {problem}")
    if args.speed <= 0:
        raise _usage(f"--speed(={args.speed}) must be > 0")
    if args.processes < 1:
        raise _usage(f"--processes(={args.processes}) must be >= 1")
    if args.duration is not None and args.duration <= 0:
        raise _usage(f"--duration(={args.duration}) must be > 0 simulated seconds")
    _check_outputs(args, [("--summary-json", args.summary_json), ("--log", args.log)])
    security = _security(args)
    faults = load_faults(args.faults) if args.faults else FaultTimeline()
    if args.scenario is not None:
        scenario = load_scenario(args.scenario, seed=args.seed)
        plans = plan_scenario(scenario)
        duration_s = args.duration or scenario.horizon_s
        start, seed, name = scenario.start, scenario.seed, scenario.name
    else:
        if args.count < 1:
            raise _usage(f"--count(={args.count}) must be >= 1")
        duration_s = args.duration or 3600.0
        seed = args.seed or 0
        plans = plan_quick(args.count, duration_s, seed)
        start, name = None, f"{args.count} chargers"
    opts = FleetOptions(
        csms_url=args.csms,
        ocpp=args.ocpp,
        speed=args.speed,
        duration_s=duration_s,
        start=start,
        seed=seed,
        processes=args.processes,
        log_path=args.log,
        state_dir=args.state_dir if args.state_dir is not None else default_state_dir(),
        security=security,
        faults=faults,
        config=_config(args.config),
        leave_open=args.leave_open,
    )
    if args.ocpp == "2.0.1":
        from virtual_chargers.testing import charger_class

        try:
            charger_class("2.0.1")
        except ValueError as exc:
            raise _usage(str(exc)) from None
    unmatched = faults.unmatched([p.spec.id for p in plans])
    if unmatched:
        raise _usage("; ".join(f"{args.faults}: {line}" for line in unmatched))
    sessions = sum(len(p.sessions) for p in plans)
    console.print(
        f"{name}: {len(plans)} OCPP {args.ocpp} chargers, {sessions} planned sessions, "
        f"{duration_s:g} simulated s at {args.speed:g}× → {args.csms} ({args.processes} process(es))"
    )
    started = time.perf_counter()
    last = [0.0]

    def progress(t_s: float, fleet: Any) -> None:
        now = time.perf_counter()
        if now - last[0] < 5 or not console.is_terminal:
            return
        last[0] = now
        s = fleet.log.summary
        online = sum(c.online.is_set() for c in fleet.chargers.values())
        console.print(
            f"  t={t_s:,.0f} s: {online}/{len(fleet.chargers)} online, {sum(s.sent.values()):,} frames sent, "
            f"{s.transactions_started} tx started, {s.violation_count} CSMS violations",
            highlight=False,
        )

    partial: list[Summary] = []
    interrupted: KeyboardInterrupt | None = None
    try:
        summary = run_fleet(plans, opts, progress, partial=partial)
    except SecurityError as exc:
        raise _usage(str(exc)) from None
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM): still say what happened and write the summary
        if not partial:
            raise
        summary, interrupted = partial[0], exc
    wall_s = time.perf_counter() - started
    ended = ", interrupted" if interrupted is not None else ""
    console.print(summary_table(summary, f"{name} against {args.csms} ({wall_s:.1f} s wall{ended})"))
    if summary.queued_from_earlier_run:
        console.print(
            f"{summary.queued_from_earlier_run:,} transaction message(s) queued by an earlier run were delivered "
            f"to {args.csms} (state: {opts.state_dir})",
            highlight=False,
        )
    for v in summary.violations[:10]:
        console.print(f"  violation {v.t} {v.charger}: {v.kind}: {v.detail}", markup=False, highlight=False)
    for w in summary.all_warnings()[:10]:
        console.print(f"  warning: {w}", markup=False, highlight=False)
    if args.summary_json:
        from sim.outputs import write_text_atomic

        write_text_atomic(args.summary_json, json.dumps(summary.to_dict(), indent=2) + "\n")
    if args.log:
        console.print(f"frames: {args.log}" + (" (one file per process)" if args.processes > 1 else ""))
    if interrupted is not None:
        raise interrupted
    if summary.connects == 0:
        Console(stderr=True).print(
            f"no charger ever connected to {args.csms}; last connection error: "
            f"{summary.last_connect_error or 'none recorded (did the run last long enough to try?)'}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0


async def _keep_gc_pauses_short(interval_s: float = 2.0) -> None:
    """Collect, then freeze what survived, every ``interval_s``.

    The CSMS's records only grow (a thousand chargers add a million objects in minutes); a full collection
    walks them all and stalls every connection for hundreds of ms. Frozen, they are skipped, and each
    collection here only walks what the last interval made.
    """
    while True:
        await asyncio.sleep(interval_s)
        gc.collect()
        gc.freeze()


def cmd_csms(args: argparse.Namespace, console: Console) -> int:
    """Run the reference CSMS until interrupted (or ``--duration``)."""
    from virtual_chargers.clock import SimClock
    from virtual_chargers.csms import CapRule, Csms

    _check_outputs(args, [("--log", args.log)])
    ssl_context = None
    if args.tls_cert is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(str(args.tls_cert))
        except (OSError, ssl.SSLError) as exc:
            raise _usage(f"--tls-cert {args.tls_cert}: cannot load it ({exc})") from None
    log = FrameLog(SimClock(1.0), args.log) if args.log else None
    try:
        cap_rule = CapRule.parse(args.cap, args.cap_on) if args.cap else None
    except ValueError as exc:
        raise _usage(f"--cap: {exc}") from None

    def on_frame(charger: str, direction: str, raw: str) -> None:
        if log is not None:
            log.frame(charger, direction, raw)

    served: list[Csms] = []

    async def serve() -> None:
        csms = Csms(args.host, args.port, ssl_context=ssl_context, on_frame=on_frame if log else None)
        csms.records16.heartbeat_interval_s = args.heartbeat_interval
        csms.records16.registration = args.registration
        csms.records16.rejected_tags.update(args.reject_tag)
        csms.records16.cap_rule = cap_rule
        if csms.records201 is not None:
            csms.records201.boot_interval_s = args.heartbeat_interval
            csms.records201.registration = args.registration
            csms.records201.rejected_tokens.update(args.reject_tag)
        try:
            await csms.start()
        except OSError as exc:
            raise _usage(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); try another --port") from None
        served.append(csms)
        tidy = asyncio.ensure_future(_keep_gc_pauses_short())
        console.print(f"CSMS listening on {csms.url} (OCPP {', '.join(csms.subprotocols())}); Ctrl-C stops it")
        try:
            if args.duration is not None:
                await asyncio.sleep(args.duration)
            else:
                await asyncio.Event().wait()
        finally:
            tidy.cancel()
            gc.unfreeze()
            await csms.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass  # Ctrl-C is how it is meant to stop: say what it saw
    finally:
        if log is not None:
            log.close()
    if not served:
        return 1
    csms = served[0]
    rec = csms.records16
    console.print(f"boots {len(rec.boots)}, transactions {len(rec.transactions)}, meter values {len(rec.meter_values)}")
    if csms.records201 is not None and csms.records201.boots:
        r2 = csms.records201
        console.print(
            f"OCPP 2.0.1: boots {len(r2.boots)}, transactions {len(r2.transactions())}, "
            f"TransactionEvents {len(r2.tx_events)}, EV charging needs {len(r2.charging_needs)}"
        )
    return 0
