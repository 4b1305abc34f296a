"""The `chargetwin` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sim.config import Scenario, ScenarioError, load_scenario, scenario_schema
from sim.console import UsageError, lazy_progress, run_title
from sim.outputs import OutputRefusedError, describe
from sim.sessions import Outcome

__all__ = ["main"]

EXAMPLES = """\
examples:
  chargetwin run scenarios/small_city.yaml                 run, write out/<name>/, print KPIs
  chargetwin run scenarios/highway_corridor.yaml --days 2 --seed 7 --out out/try
  chargetwin validate scenarios/workplace_campus.yaml      check a scenario, run nothing
  chargetwin schema > scenario.schema.json                 JSON Schema for your editor
  chargetwin report out/small_city                         render the report again
  chargetwin sweep scenarios/sweeps/managers.yaml          variants × seeds on all cores, with a report
  chargetwin compare out/run_a out/run_b                   two runs' KPIs side by side
  chargetwin run scenarios/csms/csms_smart_charging.yaml --csms ws://127.0.0.1:9000 --speed 600
                                                           a CSMS as the manager, paced
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so every writer cleans up as on Ctrl-C; exit code 143."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def _check_flag(flag: str, field: str, value: float | None) -> None:
    """Blame a bad override on its flag, not on the scenario file: the same rule as the scenario key."""
    if value is None:
        return
    from pydantic import TypeAdapter, ValidationError

    info = Scenario.model_fields[field]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[arg-type]
        adapter.validate_python(value)
    except ValidationError as exc:
        reason = exc.errors(include_url=False)[0]["msg"]
        if isinstance(value, float) and math.isnan(value):
            reason = "not a number"
        raise UsageError(f"{flag} {value:g}: {reason} (it sets {field})") from None


def _inputs(scenario: Scenario, path: str) -> list[Path]:
    """The files a run reads: the scenario and its traces (a folder holding one is never replaced)."""
    return [Path(path), *(Path(d.path) for d in scenario.demand if d.kind == "trace")]


def _say_removed(flag: str, folder: Path, entries: list[Path]) -> None:
    """Tell the user what --force is about to remove, before any work starts."""
    if entries:
        Console(stderr=True).print(
            f"{flag} {folder}: --force: removing {describe(entries, limit=20)} when the results are written",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _outcome_rows(n: dict[str, Any]) -> list[tuple[str, str]]:
    """How the arrivals ended: served, balked and reneged always; other outcomes when any session had them."""
    rows = [
        (
            "served / balked / reneged",
            f"{n['sessions_served']:,} / {n['sessions_balked']:,} / {n['sessions_reneged']:,}",
        )
    ]
    for outcome in Outcome:
        key = f"sessions_{outcome.name.lower()}"
        if outcome not in (Outcome.SERVED, Outcome.BALKED, Outcome.RENEGED) and n[key]:
            rows.append((outcome.name.lower().replace("_", " "), f"{n[key]:,}"))
    return rows


def _summary(kpis: dict[str, Any], title: str) -> Table:
    n = kpis["network"]
    cur = kpis["currency"]
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    rows = [
        ("sessions arrived", f"{n['sessions_arrived']:,}"),
        *_outcome_rows(n),
        ("energy delivered", f"{n['energy_delivered_kwh'] / 1000:,.2f} MWh"),
        ("unmet energy (served)", f"{n['unmet_energy_kwh'] / 1000:,.2f} MWh"),
        ("wait mean / p95, all who queued", f"{n['wait_all_mean_s'] / 60:,.1f} / {n['wait_all_p95_s'] / 60:,.1f} min"),
        (
            "wait mean / p95, plugged in",
            f"{n['wait_plugged_mean_s'] / 60:,.1f} / {n['wait_plugged_p95_s'] / 60:,.1f} min",
        ),
        ("port time utilization", f"{n['time_utilization']:.1%}"),
        ("port energy utilization", f"{n['energy_utilization']:.1%}"),
        ("network peak (15 min)", f"{n['peak_kw']:,.0f} kW"),
        ("revenue", f"{n['revenue']:,.2f} {cur}"),
    ]
    grid = kpis.get("grid", {}).get("network")
    if grid is not None:
        rows.append(("sessions short of their need", f"{grid['unmet_sessions_share']:.1%}"))
        if grid["energy_cost"] or grid["demand_charge"]:
            rows.append(
                ("energy cost / demand charge", f"{grid['energy_cost']:,.2f} / {grid['demand_charge']:,.2f} {cur}")
            )
        if grid["dr_events"]:
            rows.append(
                ("demand-response compliance", f"{grid['dr_compliance_pct']:.1f} % of {grid['dr_events']} events")
            )
    rev = kpis.get("revenue")
    if rev is not None:
        price = rev["average_price_per_kwh"]
        rows += [
            ("average price paid", f"{price:,.3f} {cur}/kWh" if price is not None else "–"),
            ("margin", f"{rev['margin']:,.2f} {cur}"),
        ]
        if rev["members_joined"] or rev["payment_failures"] or rev["sessions_priced_out"]:
            rows.append(
                (
                    "members / payment failures / priced out",
                    f"{rev['members_joined']:,} / {rev['payment_failures']:,} / {rev['sessions_priced_out']:,}",
                )
            )
    svc = kpis.get("serviceability")
    if svc is not None:
        fix = svc["first_time_fix_rate"]
        rows += [
            ("failed / interrupted sessions", f"{n['sessions_failed']:,} / {n['sessions_interrupted']:,}"),
            (
                "port uptime mean / min (NEVI)",
                f"{svc['port_uptime_mean_pct']:.2f} / {svc['port_uptime_min_pct']:.2f} %",
            ),
            (f"ports ≥ {svc['uptime_target_pct']:g} % uptime", f"{svc['ports_meeting_target_share']:.1%}"),
            ("failed attempts per 100", f"{svc['failed_attempts_per_100']:.2f}"),
            ("first-time fix rate", f"{fix:.1%}" if fix is not None else "–"),
            ("crew utilization / travel share", f"{svc['crew_utilization']:.1%} / {svc['crew_travel_share']:.1%}"),
            ("maintenance cost", f"{svc['maintenance_cost']:,.2f} {cur}"),
        ]
    ev = kpis.get("ev_side", {}).get("network")
    if ev is not None:
        rows += _ev_rows(ev)
    for name, value in rows:
        table.add_row(name, value)
    return table


def _ev_rows(ev: dict[str, Any]) -> list[tuple[str, str]]:
    def share(x: float | None) -> str:
        return f"{x:.1%}" if x is not None else "–"

    return [
        ("compatibility misses / lost", f"{ev['compat_misses']:,} / {ev['sessions_lost_to_compat']:,}"),
        ("first-attempt / after-retry success", f"{share(ev['first_attempt_success_rate'])} / "
                                                f"{share(ev['success_after_retries_rate'])}"),
        ("sessions with known needs", share(ev["known_needs_share"])),
    ]  # fmt: skip


def _render_report(results_dir: Path) -> None:
    from reports import render

    render(results_dir)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    """Run a scenario and write its results folder."""
    from sim.engine import simulate
    from sim.results import check_results_dir, write_results

    _check_flag("--seed", "seed", args.seed)
    _check_flag("--days", "horizon_days", args.days)
    scenario = load_scenario(args.scenario, seed=args.seed, horizon_days=args.days)
    out = Path(args.out) if args.out else Path("out") / scenario.name
    _say_removed("--out", out, check_results_dir(out, force=args.force, inputs=_inputs(scenario, args.scenario)))
    if args.csms or args.speed or scenario.manager.kind == "ocpp" or scenario.grid.demand_response.openadr:
        from virtual_chargers.paced_run import cmd_run_paced

        return cmd_run_paced(scenario, out, args, console, _summary, _render_report)
    started = time.perf_counter()
    update, stop = lazy_progress(console, f"simulating {scenario.name}")
    try:
        run = simulate(scenario, progress=update)
    finally:
        stop()
    with console.status("writing results and report"):
        kpis = write_results(run, out, finish=_render_report, force=args.force)
    console.print(_summary(kpis, run_title(scenario, time.perf_counter() - started, run.wall_s)))
    _print_warnings(kpis, console)
    console.print(f"report: {out / 'report.html'}")
    return 0


def _print_warnings(kpis: dict[str, Any], console: Console) -> None:
    """One ``warning:`` line per problem the run shows (`reports.alerts`)."""
    from reports.alerts import run_warnings

    for line in run_warnings(kpis):
        console.print(f"warning: {line}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Check a scenario file and say what it holds."""
    s = load_scenario(args.scenario)
    ports = sum(site.port_count for site in s.network.sites)
    console.print(
        f"{args.scenario}: valid — {len(s.network.sites)} sites, {ports} ports, "
        f"{len(s.demand)} demand sources, {s.horizon_days:g} days, manager {s.manager.kind}"
    )
    return 0


def cmd_schema(args: argparse.Namespace, console: Console) -> int:
    """Print the scenario JSON Schema."""
    sys.stdout.write(json.dumps(scenario_schema(), indent=2) + "\n")
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Render the report of an existing results folder again."""
    from reports import render

    folder = Path(args.results_dir)
    required = ("manifest.json", "kpis.json", "sessions.parquet", "load.parquet")
    missing = [f for f in required if not (folder / f).is_file()]
    if missing:
        raise UsageError(
            f"{folder}: not a results folder (missing {', '.join(missing)}); "
            "give the folder `chargetwin run` wrote, e.g. out/<scenario name>"
        )
    console.print(f"report: {render(folder)}")
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    """Show two runs' KPIs side by side and write comparison.md/.html."""
    from reports.compare import compare_runs
    from sim.outputs import check_folder

    out = Path(args.out) if args.out else Path("out") / f"compare-{Path(args.run_a).name}-vs-{Path(args.run_b).name}"
    check_folder(
        out,
        owned=lambda p: (p / "comparison.md").is_file(),
        what="a comparison folder (it has no comparison.md)",
        force=args.force,
        inputs=[Path(args.run_a) / "kpis.json", Path(args.run_b) / "kpis.json"],
    )
    try:
        comparison, folder = compare_runs(Path(args.run_a), Path(args.run_b), out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    table = Table(title=f"A: {args.run_a}   B: {args.run_b}", header_style="bold")
    for name in ("KPI", "A", "B", "B − A", "change"):
        table.add_column(name, justify="left" if name == "KPI" else "right")
    for row in comparison.table().rows:
        table.add_row(*row)
    console.print(table)
    if not comparison.same_arrivals:
        console.print("note: the runs differ in scenario, seed, start or horizon, so their drivers differ too")
    console.print(f"comparison: {folder}")
    return 0


def _sweep_progress(console: Console) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """A bar of runs done, failed and time left; shown only on a terminal, so logs and tests stay quiet."""
    state: dict[str, Any] = {}

    def update(p: Any) -> None:
        if not console.is_terminal:
            return
        if "bar" not in state:
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("finished, {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            bar.start()
            # reused runs are counted from the start, so the time left is estimated from new runs only
            task = bar.add_task("sweep", total=p.total, completed=p.finished, failed=p.failed)
            state["bar"], state["task"] = bar, task
        state["bar"].update(state["task"], completed=p.finished, failed=p.failed)

    def stop() -> None:
        if "bar" in state:
            state["bar"].stop()

    return update, stop


def _decimals(half: float) -> int:
    """Decimal places that keep two significant figures of an interval's half-width (negative: tens, hundreds)."""
    return 1 - math.floor(math.log10(abs(half)))


def _fixed(x: float, decimals: int) -> str:
    return f"{round(x, decimals) + 0.0:,.{max(decimals, 0)}f}"  # + 0.0: no "-0.000"


def with_interval(mean: float, half: float) -> str:
    """``mean ± half`` with the half-width to two significant figures and the mean to the same decimal place.

    ``12,345.678 ± 123.4`` prints as ``12,350 ± 120``, ``0.87654 ± 0.01234`` as ``0.877 ± 0.012``: digits
    the interval cannot vouch for are not shown. Without an interval the mean keeps four significant figures.
    """
    if math.isnan(mean):
        return "–"
    if math.isnan(half) or half == 0 or math.isinf(half):
        return f"{mean:,.4g}" if abs(mean) < 1e15 else f"{mean:.4g}"
    d = _decimals(half)
    return f"{_fixed(mean, d)} ± {_fixed(half, d)}"


def with_range(diff: float, low: float, high: float) -> str:
    """A paired difference and its interval ``[low, high]``, to two significant figures of the half-width."""
    half = (high - low) / 2.0
    if math.isnan(half) or half == 0 or math.isinf(half):
        return f"{diff:+,.4g} [{low:,.4g}, {high:,.4g}]"
    d = _decimals(half)
    return f"{'+' if diff >= 0 else ''}{_fixed(diff, d)} [{_fixed(low, d)}, {_fixed(high, d)}]"


def _sweep_summary(summary: Any, kpis: Sequence[str], title: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("variant")
    for kpi in kpis:
        table.add_column(kpi.removeprefix("network.").removeprefix("serviceability."), justify="right")
    for variant, rows in summary.groupby("variant", sort=True):
        by_kpi = rows.set_index("kpi")
        cells = []
        for kpi in kpis:
            mean, half = by_kpi.loc[kpi, "mean"], by_kpi.loc[kpi, "half_width"]
            cells.append(with_interval(float(mean), float(half)))
        table.add_row(str(variant), *cells)
    return table


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    """Run a sweep: every variant × replication, reusing finished runs; write sweep.parquet and the report."""
    from reports.sweep_report import render_sweep
    from sim.sweep import (
        check_sweep_dir,
        default_kpis,
        load_sweep,
        paired_difference,
        report_kpis,
        run_sweep,
        summarize,
    )

    if args.scheduler and args.dask_local:
        raise UsageError("give --scheduler ADDRESS or --dask-local, not both")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers(={args.workers}) must be >= 1")
    _check_flag("--days", "horizon_days", args.days)
    plan = load_sweep(args.sweep, horizon_days=args.days, out=args.out)
    inputs = [Path(args.sweep), plan.base_path]
    _say_removed("--out", plan.out_dir, check_sweep_dir(plan.out_dir, force=args.force, inputs=inputs))
    compare = tuple(args.compare) if args.compare else plan.spec.compare
    if compare is not None:
        a, b = (plan.variant(name).id for name in compare)  # a typo fails here, before any run
    backend: Literal["local", "dask"] = "dask" if args.scheduler or args.dask_local else "local"
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else f"{backend} backend"
    console.print(
        f"{plan.spec.name}: {len(plan.variants)} variants × {len(plan.seeds)} replications = "
        f"{plan.run_count} runs on the {where} → {plan.out_dir}"
    )
    update, stop = _sweep_progress(console)
    started = time.perf_counter()
    try:
        result = run_sweep(
            plan,
            backend=backend,
            workers=args.workers,
            scheduler=args.scheduler,
            finish=_render_report if args.reports else None,
            progress=update,
            force=args.force,
        )
    finally:
        stop()
    wall_s = time.perf_counter() - started
    console.print(
        f"{result.done} runs done ({result.reused} reused), {result.failed} failed in {wall_s:.1f} s; "
        f"table: {result.out_dir / 'sweep.parquet'}"
    )
    for row in result.table[result.table["error"].notna()].head(5).itertuples(index=False):
        console.print(f"  failed {row.run_dir}: {row.error}", markup=False, highlight=False, soft_wrap=True)
    if result.done == 0:
        console.print("every run failed; see error.txt in the run folders", markup=False)
        return 1
    shown = report_kpis(result.table, plan.spec.report_kpis)
    summary = summarize(result.table, list(dict.fromkeys([*default_kpis(result.table), *shown])))
    differences = paired_difference(result.table, a, b, list(summary["kpi"].unique())) if compare is not None else None
    summary.to_parquet(result.out_dir / "summary.parquet", index=False)
    for variant in plan.variants:
        console.print(f"{variant.id}: {variant.label}", markup=False, highlight=False, soft_wrap=True)
    console.print(_sweep_summary(summary, shown, "mean ± 95 % CI half-width per variant"))
    if differences is not None:
        for row in differences[differences["kpi"].isin(shown)].itertuples(index=False):
            console.print(
                f"{b} − {a}: {row.kpi} {with_range(row.diff_mean, row.ci_low, row.ci_high)}"
                + (" significant" if row.significant else ""),
                markup=False,
                highlight=False,
            )
    report = render_sweep(
        result.out_dir, result.table, summary, differences, kpis=shown, title=f"Sweep {plan.spec.name}"
    )
    console.print(f"report: {report}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargetwin",
        description="Digital twin of an EV charging network: run scenarios, read reports.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_output_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a scenario and write a results folder",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results folder (default: out/<scenario name>); only a results folder is replaced")
    run.add_argument("--force", action="store_true", help="let --out replace a folder that is not a results folder")
    run.add_argument("--seed", type=int, help="override the scenario seed")
    run.add_argument("--days", type=float, help="override horizon_days")
    run.add_argument("--csms", metavar="URL", help="a CSMS as the network manager (ws:// or wss://): a paced run")
    run.add_argument("--speed", type=float, help="simulated seconds per wall second of a paced run")
    run.set_defaults(func=cmd_run)
    val = sub.add_parser("validate", help="check a scenario without running it")
    val.add_argument("scenario", help="scenario YAML file")
    val.set_defaults(func=cmd_validate)
    sch = sub.add_parser("schema", help="print the scenario JSON Schema")
    sch.set_defaults(func=cmd_schema)
    rep = sub.add_parser("report", help="render the report of a results folder again")
    rep.add_argument("results_dir", help="a folder written by `chargetwin run`")
    rep.set_defaults(func=cmd_report)
    swp = sub.add_parser(
        "sweep",
        help="run variants × replications of a scenario (sweep file), locally or on a Dask cluster",
        description="Run every variant × replication of a sweep file; runs already complete are reused.",
    )
    swp.add_argument("sweep", help="sweep YAML file (base scenario, parameters, replications, seeds)")
    swp.add_argument("--workers", type=int, help="local processes or --dask-local workers (default: all cores)")
    swp.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    swp.add_argument("--dask-local", action="store_true", help="start a Dask LocalCluster on this machine")
    swp.add_argument("--out", help="output folder (default: the file's out, else out/sweeps/<name>)")
    swp.add_argument("--force", action="store_true", help="let --out replace a folder that is not a sweep folder")
    swp.add_argument("--days", type=float, help="override horizon_days of every run")
    swp.add_argument("--compare", nargs=2, metavar=("A", "B"), help="paired difference B − A (variant id or label)")
    swp.add_argument("--reports", action="store_true", help="also render each run's report (slower)")
    swp.set_defaults(func=cmd_sweep)
    cmp = sub.add_parser("compare", help="two results folders' KPIs side by side (e.g. a CSMS against a manager)")
    cmp.add_argument("run_a", help="results folder A")
    cmp.add_argument("run_b", help="results folder B")
    cmp.add_argument("--out", help="where to write comparison.md/.html (default: out/compare-A-vs-B)")
    cmp.add_argument("--force", action="store_true", help="let --out write into a folder that is not a comparison")
    cmp.set_defaults(func=cmd_compare)
    from virtual_chargers.cli import add_subcommands

    add_subcommands(sub)  # chargers, csms
    from virtual_chargers.conformance.cli import add_subcommand

    add_subcommand(sub)  # conformance
    for command in sub.choices.values():  # -q / -v also after the command, as people type them
        _add_output_options(command, argparse.SUPPRESS)
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("chargetwin")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _add_output_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """-q / -v: how much the command says (errors are always shown)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if default is not None else False,
        help="print nothing but errors",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=default if default is not None else 0,
        help="also print what happens on the way (-vv: debugging detail)",
    )  # fmt: skip


def _consoles(quiet: bool) -> tuple[Console, Console]:
    """Consoles for results (stdout) and problems (stderr).

    On a terminal rich fits the output to its width; piped or redirected, lines are written whole
    (no wrapping in the middle of a word, no colour codes), so a log or `grep` sees each line once.
    """
    consoles = []
    for stream in (sys.stdout, sys.stderr):
        tty = stream.isatty()
        wide = None if tty or os.environ.get("COLUMNS") else 10_000
        consoles.append(Console(file=stream, width=wide, soft_wrap=not tty, quiet=quiet and stream is sys.stdout))
    return consoles[0], consoles[1]


def _logging(verbose: int, quiet: bool) -> None:
    """-q: only errors are logged; -v: INFO, -vv: DEBUG; neither: logging is left as it is (warnings show)."""
    if not quiet and not verbose:
        return
    level = logging.ERROR if quiet else (logging.INFO, logging.DEBUG)[min(verbose, 2) - 1]
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    if verbose < 2:
        for noisy in ("websockets", "asyncio", "distributed", "matplotlib"):  # their INFO is not ours
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `chargetwin` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    console, err = _consoles(args.quiet)
    _logging(args.verbose, args.quiet)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return int(args.func(args, console))
    except OutputRefusedError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2
    except ScenarioError as exc:
        for line in exc.problems:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s); nothing was run.", markup=False, highlight=False)
        return 2
    except UsageError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt as exc:
        err.print("interrupted; results folders already written are unchanged", markup=False, highlight=False)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:
        from sim.results import ResultsWriteError  # not at import: it loads the table libraries

        if not isinstance(exc, ResultsWriteError):
            raise
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
