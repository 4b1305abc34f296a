"""Sweeps: sweep files, variants on common random numbers, backends, resume, failures and statistics."""

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from scipy import stats

import sim.sweep
from sim.cli import _sweep_progress, main
from sim.sweep import (
    RUN_MARKER,
    SweepError,
    SweepProgress,
    latin_hypercube,
    load_sweep,
    paired_difference,
    parse_path,
    run_key,
    run_sweep,
    set_path,
    summarize,
    variants_meeting,
)
from tests.conftest import one_site, scenario_data
from tests.sim.test_closed_forms import erlang_b

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "scenarios" / "data" / "sessions_trace.csv"


def write_base(folder: Path, **changes) -> Path:
    """A small valid scenario file (tests/conftest.py BASE) in `folder`."""
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(scenario_data(**{"horizon_days": 1, **changes})))
    return path


def write_sweep(folder: Path, **spec) -> Path:
    """A sweep file over base.yaml in `folder`, output in folder/out."""
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "base": "base.yaml", "out": "out", **spec}, sort_keys=False))
    return path


@pytest.fixture
def dask_cluster():
    """A real two-process Dask LocalCluster on loopback, closed after the test."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    try:
        yield cluster
    finally:
        cluster.close()


# ---------------------------------------------------------------- sweep files and variants


def test_dotted_paths_set_values_in_the_yaml_data():
    """A dotted path with list indices sets the value, creates missing mappings and refuses missing list items."""
    assert parse_path("network.sites[0].chargers[1].count") == ["network", "sites", 0, "chargers", 1, "count"]
    data = {"network": {"sites": [{"capacity_kw": 50}]}}
    set_path(data, "network.sites[0].capacity_kw", 120)
    set_path(data, "tariff.price_per_kwh", 0.4)
    assert data == {"network": {"sites": [{"capacity_kw": 120}]}, "tariff": {"price_per_kwh": 0.4}}
    with pytest.raises(ValueError, match=r"network.sites has 1 item\(s\), so \[3\] does not exist"):
        set_path(data, "network.sites[3].capacity_kw", 1)
    with pytest.raises(ValueError, match="not a dotted YAML path"):
        parse_path("network..sites")


def test_grid_is_full_factorial_and_every_variant_shares_the_seeds(tmp_path):
    """Two parameters give every combination; replication r of each variant runs on the same seed."""
    write_base(tmp_path)
    plan = load_sweep(
        write_sweep(
            tmp_path,
            replications=3,
            seeds={"start": 5},
            parameters={"manager.kind": ["uncontrolled", "equal_share"], "network.sites[0].capacity_kw": [50, 80, 120]},
        )
    )
    assert [v.id for v in plan.variants] == ["v000", "v001", "v002", "v003", "v004", "v005"]
    assert plan.variants[4].label == "manager.kind=equal_share, network.sites[0].capacity_kw=80"
    assert plan.variants[4].scenario.network.sites[0].capacity_kw == 80
    assert plan.variants[4].scenario.manager.kind == "equal_share"
    tasks = plan.tasks()
    assert len(tasks) == plan.run_count == 18
    for variant in plan.variants:
        assert [t.seed for t in tasks if t.variant == variant.id] == [5, 6, 7]
    assert len({t.key for t in tasks}) == 18
    assert Path(tasks[4].run_dir) == tmp_path / "out" / "runs" / "v001_r01"


def test_latin_hypercube_puts_one_point_in_each_stratum(tmp_path):
    """Latin hypercube: per axis, each of the n equal strata holds exactly one point; sampling is seeded."""
    points = latin_hypercube(10, 3, np.random.default_rng(1))
    assert points.shape == (10, 3)
    for axis in range(3):
        assert sorted(np.floor(points[:, axis] * 10).astype(int)) == list(range(10))
    write_base(tmp_path)
    spec = {"sample": {"method": "latin_hypercube", "n": 8, "seed": 3, "ranges": {"tariff.price_per_kwh": [0.3, 0.7]}}}
    plan = load_sweep(write_sweep(tmp_path, **spec))
    prices = [v.scenario.tariff.price_per_kwh for v in plan.variants]
    assert sorted(int((p - 0.3) / 0.05) for p in prices) == list(range(8))
    assert prices == [v.scenario.tariff.price_per_kwh for v in load_sweep(tmp_path / "sweep.yaml").variants]
    spec["sample"]["method"] = "random"
    assert all(
        0.3 <= v.scenario.tariff.price_per_kwh <= 0.7 for v in load_sweep(write_sweep(tmp_path, **spec)).variants
    )


def test_run_key_names_scenario_seed_and_version():
    """The reuse key changes with the resolved scenario, the seed and the chargetwin version."""
    scenario = {"name": "x", "horizon_days": 1}
    key = run_key(scenario, 1, "0.1.0")
    assert key == run_key(dict(reversed(scenario.items())), 1, "0.1.0")
    assert (
        len({key, run_key(scenario, 2, "0.1.0"), run_key(scenario, 1, "0.2.0"), run_key({"name": "y"}, 1, "0.1.0")})
        == 4
    )


def test_invalid_variants_are_all_reported_before_any_run(tmp_path, capsys):
    """Variants that make the scenario invalid are listed at once, with line, variant and path; nothing runs."""
    write_base(tmp_path)
    path = write_sweep(
        tmp_path,
        parameters={"network.sites[0].capacity_kw": [50, -5, 0], "manager.kind": ["uncontrolled", "smart"]},
    )
    with pytest.raises(SweepError) as caught:
        load_sweep(path)
    problems = caught.value.problems
    assert len(problems) == 7  # capacity -5 and 0 with both managers, manager smart with every capacity
    text = "\n".join(problems)
    assert f"{path}:7: variant v002 (network.sites[0].capacity_kw=-5, manager.kind=uncontrolled): " in text
    assert "network.sites[0].capacity_kw: Input should be greater than 0" in text
    assert "(set by network.sites[0].capacity_kw=-5; change or drop that value)" in text
    assert f"{path}:11: variant v001 (network.sites[0].capacity_kw=50, manager.kind=smart): manager: " in text

    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "7 problem(s); nothing was run." in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"replicatons": 3}, ":4: replicatons: unknown key"),
        (
            {"parameters": {"network.sites[3].capacity_kw": [1, 2]}},
            ":5: network.sites[3].capacity_kw: network.sites has 1",
        ),
        ({"parameters": {"network..x": [1]}}, ":5: parameters: 'network..x' is not a dotted YAML path"),
        ({"parameters": {"seed": [1, 2]}}, "seed cannot be a parameter"),
        ({"replications": 3, "seeds": [1, 2]}, "replications is 3 but 2 seeds are listed"),
        ({"seeds": [1, 1]}, "seeds repeat"),
        ({"seeds": {"start": -1}}, ":5: seeds.start: Input should be greater than or equal to 0"),
        ({"parameters": {"manager.kind": ["uncontrolled"]}, "compare": ["v000", "v007"]}, "'v007' names no variant"),
        ({"base": "missing.yaml"}, "missing.yaml: cannot read the scenario file"),
    ],
)
def test_sweep_file_mistakes_exit_2_with_the_line(tmp_path, capsys, spec, expected):
    """A mistake in the sweep file is one line naming the file, the line and the fix; exit 2, no traceback."""
    write_base(tmp_path)
    path = write_sweep(tmp_path, **spec)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err.replace("\n", "")
    assert "Traceback" not in err


def test_example_sweeps_are_valid():
    """Every sweep file in scenarios/sweeps/ validates with all its variants, and its comparison names two."""
    files = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        plan = load_sweep(path)
        assert plan.run_count > 1, path
        if plan.spec.compare:
            assert len({plan.variant(name).id for name in plan.spec.compare}) == 2, path


# ---------------------------------------------------------------- running


@pytest.mark.slow
def test_local_dask_cluster_and_dask_local_give_identical_tables(tmp_path, dask_cluster, capsys):
    """One sweep on local processes, a running Dask cluster and --dask-local: identical sweep.parquet bytes."""
    write_base(tmp_path)
    path = write_sweep(tmp_path, replications=2, parameters={"manager.kind": ["uncontrolled", "equal_share"]})
    local = run_sweep(load_sweep(path, out=tmp_path / "local"), workers=2)
    on_cluster = run_sweep(
        load_sweep(path, out=tmp_path / "cluster"), backend="dask", scheduler=dask_cluster.scheduler_address
    )
    assert main(["sweep", str(path), "--dask-local", "--workers", "2", "--out", str(tmp_path / "dask_local")]) == 0
    capsys.readouterr()
    parquet = (tmp_path / "local" / "sweep.parquet").read_bytes()
    assert (tmp_path / "cluster" / "sweep.parquet").read_bytes() == parquet
    assert (tmp_path / "dask_local" / "sweep.parquet").read_bytes() == parquet
    pd.testing.assert_frame_equal(local.table, on_cluster.table)
    assert local.failed == on_cluster.failed == 0
    assert local.table["network.sessions_arrived"].gt(0).all()
    assert set(on_cluster.timings["backend"]) == {"dask"}


@pytest.mark.slow
def test_common_random_numbers_pair_the_variants(tmp_path):
    """Variants see the same arrivals per seed, so the paired interval is narrower than the unpaired one."""
    write_base(tmp_path, horizon_days=3)
    path = write_sweep(tmp_path, replications=5, parameters={"network.sites[0].capacity_kw": [40, 100]})
    table = run_sweep(load_sweep(path), workers=2).table
    a, b = (table[table["variant"] == v].set_index("seed") for v in ("v000", "v001"))
    pd.testing.assert_series_equal(a["network.sessions_arrived"], b["network.sessions_arrived"])
    diff = paired_difference(table, "capacity_kw=40", "capacity_kw=100").set_index("kpi")
    assert diff.loc["network.sessions_arrived", "half_width"] == 0
    energy = diff.loc["network.energy_delivered_kwh"]
    assert energy["diff_mean"] > 0
    assert energy["half_width"] < energy["unpaired_half_width"]


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_table(tmp_path):
    """Kill a sweep halfway (SIGKILL to its process group), rerun: finished runs reused, the rest run, same table."""
    write_base(tmp_path, horizon_days=20)
    path = write_sweep(tmp_path, replications=6, parameters={"manager.kind": ["uncontrolled", "equal_share"]})
    runs = tmp_path / "out" / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "sweep", str(path), "--workers", "1"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(runs.glob(f"*/{RUN_MARKER}"))) < 4:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob(f"*/{RUN_MARKER}")}
    assert 4 <= len(finished) < 12
    assert not (tmp_path / "out" / "sweep.parquet").exists()

    resumed = run_sweep(load_sweep(path), workers=2)
    assert resumed.reused == len(finished)
    assert {p.parent.name: p.stat().st_mtime_ns for p in runs.glob(f"*/{RUN_MARKER}") if p.parent.name in finished} == (
        finished
    )
    assert len(list(runs.glob(f"*/{RUN_MARKER}"))) == 12
    assert not list(runs.glob(".*"))  # temporary folders of the killed run are gone
    assert resumed.table["error"].isna().all()
    assert not resumed.table["network.sessions_arrived"].isna().any()

    fresh = run_sweep(load_sweep(path, out=tmp_path / "fresh"), workers=2)
    assert fresh.reused == 0
    assert (tmp_path / "fresh" / "sweep.parquet").read_bytes() == (tmp_path / "out" / "sweep.parquet").read_bytes()


def _trace_sweep(tmp_path: Path) -> Path:
    """A sweep over two copies of a trace; a copy removed after planning makes its runs fail."""
    for name in ("a.csv", "b.csv"):
        shutil.copy(TRACE, tmp_path / name)
    write_base(tmp_path, demand=[{"kind": "trace", "path": "a.csv", "site": "a"}])
    return write_sweep(tmp_path, replications=2, parameters={"demand[0].path": ["a.csv", "b.csv"]})


@pytest.mark.slow
def test_failing_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    """A run that raises becomes a row with its error and NaN KPIs, with error.txt; the other runs complete."""
    plan = load_sweep(_trace_sweep(tmp_path))
    (tmp_path / "b.csv").unlink()
    seen = []
    result = run_sweep(plan, workers=2, progress=seen.append)
    assert (result.done, result.failed) == (2, 2)
    table = result.table.set_index(["variant", "replication"])
    assert pd.isna(table.loc[("v000", 0), "error"])
    assert "b.csv" in table.loc[("v001", 1), "error"]
    assert math.isnan(table.loc[("v001", 1), "network.sessions_arrived"])
    assert table.loc[("v000", 1), "network.sessions_arrived"] > 0
    assert "Traceback" in (tmp_path / "out" / "runs" / "v001_r01" / "error.txt").read_text()
    assert not (tmp_path / "out" / "runs" / "v001_r01" / RUN_MARKER).exists()
    summary = summarize(result.table, ["network.sessions_arrived"]).set_index("variant")
    assert summary.loc["v001", "n"] == 0
    assert summary.loc["v000", "n"] == 2
    assert (seen[0].finished, seen[-1].done, seen[-1].failed, seen[-1].total) == (0, 2, 2, 4)
    assert [p.finished for p in seen] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_cli_exits_1_only_when_every_run_fails(tmp_path, capsys, monkeypatch):
    """The command exits 0 with some failed runs listed, and 1 when all runs fail."""
    path = _trace_sweep(tmp_path)
    real = sim.sweep.load_sweep
    doomed = ["b.csv"]

    def load_then_remove(*args, **kwargs):
        plan = real(*args, **kwargs)
        for name in doomed:
            (tmp_path / name).unlink(missing_ok=True)
        return plan

    monkeypatch.setattr(sim.sweep, "load_sweep", load_then_remove)
    assert main(["sweep", str(path), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 runs done (0 reused), 2 failed" in out
    assert "failed runs/v001_r00: " in out
    assert "b.csv" in out

    shutil.copy(TRACE, tmp_path / "b.csv")
    doomed.append("a.csv")
    assert main(["sweep", str(path), "--workers", "2", "--out", str(tmp_path / "all_fail")]) == 1
    assert "every run failed" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_sweep_writes_table_report_and_reuses_runs(tmp_path, capsys):
    """`chargetwin sweep` writes sweep.parquet, run reports (--reports) and a deterministic report; a rerun reuses."""
    write_base(tmp_path)
    path = write_sweep(
        tmp_path,
        replications=2,
        parameters={"tariff.price_per_kwh": [0.4, 0.6]},
        report_kpis=["network.revenue", "sites.a.peak_kw"],
    )
    assert main(["sweep", str(path), "--workers", "2", "--reports", "--compare", "0.4", "0.6"]) == 0
    out_dir = tmp_path / "out"
    printed = capsys.readouterr().out
    assert "2 variants × 2 replications = 4 runs" in printed
    assert "v001 − v000: network.revenue" in printed
    table = pd.read_parquet(out_dir / "sweep.parquet")
    assert list(table.columns[:7]) == [
        "variant",
        "label",
        "replication",
        "seed",
        "run_dir",
        "key",
        "param.tariff.price_per_kwh",
    ]
    assert table["param.tariff.price_per_kwh"].tolist() == [0.4, 0.4, 0.6, 0.6]
    assert {"network.revenue", "sites.a.peak_kw", "error"} <= set(table.columns)
    assert (out_dir / "runs" / "v001_r01" / "report.html").is_file()
    html = (out_dir / "sweep_report.html").read_text()
    assert "data:image/png;base64," in html
    assert "Paired difference v001 − v000" in html
    markdown = (out_dir / "sweep_report.md").read_text()
    assert "sweep_sites_a_peak_kw.png" in markdown
    png = (out_dir / "sweep_network_revenue.png").read_bytes()

    assert main(["sweep", str(path), "--compare", "0.4", "0.6"]) == 0
    assert "4 runs done (4 reused), 0 failed" in capsys.readouterr().out
    assert (out_dir / "sweep_network_revenue.png").read_bytes() == png
    assert pd.read_parquet(out_dir / "sweep.parquet").equals(table)


# ---------------------------------------------------------------- statistics


def test_summary_is_a_student_t_interval_without_failed_runs():
    """Mean, sample std and t interval per variant; NaN KPIs (failed runs) are left out; one run has no interval."""
    table = pd.DataFrame(
        {
            "variant": ["v000"] * 5 + ["v001"],
            "label": ["x=1"] * 5 + ["x=2"],
            "param.x": [1] * 5 + [2],
            "seed": [1, 2, 3, 4, 5, 1],
            "error": [None, None, None, None, "boom", None],
            "network.k": [1.0, 2.0, 3.0, 4.0, math.nan, 7.0],
        }
    )
    summary = summarize(table).set_index("variant")
    row = summary.loc["v000"]
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (row["n"], row["mean"], row["param.x"]) == (4, 2.5, 1)
    assert row["half_width"] == pytest.approx(half)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((2.5 - half, 2.5 + half))
    assert summary.loc["v001", "n"] == 1
    assert math.isnan(summary.loc["v001", "half_width"])
    assert variants_meeting(summarize(table), "network.k", at_most=5.0)["variant"].tolist() == ["v000"]


def test_paired_difference_is_the_interval_of_per_seed_differences():
    """The paired difference b − a is the t interval of the per-seed differences, over seeds both have."""
    a = [10.0, 12.0, 9.0, 15.0, 11.0]
    b = [11.0, 13.5, 9.5, 16.0, math.nan]
    table = pd.DataFrame(
        {
            "variant": ["v000"] * 5 + ["v001"] * 5,
            "label": ["m=a"] * 5 + ["m=b"] * 5,
            "seed": list(range(1, 6)) * 2,
            "error": [None] * 10,
            "network.k": a + b,
        }
    )
    row = paired_difference(table, "m=a", "m=b").iloc[0]
    d = np.array(b[:4]) - np.array(a[:4])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (row["a"], row["b"], row["n_pairs"]) == ("v000", "v001", 4)
    assert row["diff_mean"] == pytest.approx(d.mean())
    assert row["half_width"] == pytest.approx(half)
    assert row["significant"]
    assert row["unpaired_half_width"] > 5 * row["half_width"]
    with pytest.raises(SweepError, match="matches more than one variant"):
        paired_difference(table, "m=", "m=b")


SITES, SWEEPS, PER_SWEEP, DAYS = 8, 25, 3, 6


@pytest.mark.slow
def test_confidence_intervals_cover_the_true_value_about_95_percent_of_the_time(tmp_path):
    """The 95 % interval covers Erlang B blocking and the Poisson arrival mean in 95 % ± 3 binomial s.e. of cases.

    Each run has eight independent M/M/4/4 sites (own arrival streams) with 3 Erlang offered:
    Erlang B blocking is 0.2061, and arrivals are Poisson with mean 2/h × 144 h exactly. 25
    sweeps of 3 replications on disjoint seeds (run as one sweep of 75 and cut into 25 tables)
    give 200 independent intervals per KPI. A run starts empty, which biases its blocking by
    about -0.005, small against the half-width (about 0.08). The share of intervals that cover
    is binomial: 3 standard errors are ±0.046.
    """
    sites = [one_site(4, 2.0, {"dist": "exponential", "mean": 90.0}, max_queue=0) for _ in range(SITES)]
    for i, site in enumerate(sites):
        site["network"]["sites"][0]["id"] = site["demand"][0]["site"] = f"q{i}"
    network = {"sites": [s["network"]["sites"][0] for s in sites]}
    data = scenario_data(
        horizon_days=DAYS, manager={"kind": "uncontrolled"}, network=network, demand=[s["demand"][0] for s in sites]
    )
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(data))
    table = run_sweep(load_sweep(write_sweep(tmp_path, replications=SWEEPS * PER_SWEEP)), workers=2).table
    truths = {}
    for i in range(SITES):
        site = f"sites.q{i}"
        table[f"{site}.blocking"] = table[f"{site}.sessions_balked"] / table[f"{site}.sessions_arrived"]
        truths[f"{site}.blocking"] = erlang_b(4, 3.0)
        truths[f"{site}.sessions_arrived"] = 2.0 * 24 * DAYS
    covered = {"blocking": 0, "sessions_arrived": 0}
    for g in range(SWEEPS):
        one_sweep = table.iloc[g * PER_SWEEP : (g + 1) * PER_SWEEP]
        for row in summarize(one_sweep, list(truths)).itertuples():
            covered[row.kpi.rsplit(".", 1)[1]] += row.ci_low <= truths[row.kpi] <= row.ci_high
    cases = SWEEPS * SITES
    tolerance = 3 * math.sqrt(0.95 * 0.05 / cases)
    for kpi, count in covered.items():
        assert abs(count / cases - 0.95) <= tolerance, (kpi, count / cases)


@pytest.mark.slow
def test_sweep_json_lists_the_variants(tmp_path):
    """sweep.json records the variants, their values and the seeds, for people reading the folder."""
    write_base(tmp_path)
    run_sweep(load_sweep(write_sweep(tmp_path, parameters={"tariff.session_fee": [0, 1]})), workers=1)
    manifest = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert manifest["seeds"] == [1]
    assert manifest["variants"][1] == {
        "id": "v001",
        "label": "tariff.session_fee=1",
        "values": {"tariff.session_fee": 1},
    }


def test_progress_bar_shows_runs_failed_and_time_left():
    """On a terminal the bar shows runs finished of the total, the failed ones and the time left; else nothing."""
    terminal = io.StringIO()
    update, stop = _sweep_progress(Console(file=terminal, force_terminal=True, width=120))
    update(SweepProgress(total=10, done=3, failed=1, reused=2))
    update(SweepProgress(total=10, done=5, failed=1, reused=2))
    stop()
    shown = terminal.getvalue()
    assert "6/10" in shown
    assert "finished, 1 failed" in shown
    assert "left" in shown
    log = io.StringIO()
    update, stop = _sweep_progress(Console(file=log, force_terminal=False))
    update(SweepProgress(total=10, done=3, failed=1, reused=2))
    stop()
    assert log.getvalue() == ""
