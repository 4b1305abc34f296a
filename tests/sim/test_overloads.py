"""Limit violations are reported: overload minutes and worst excess per site, a CLI warning, a report box."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from reports.alerts import run_warnings
from sim.cli import main
from tests.conftest import scenario_data

# The test site: 100 kW connection, a 150 kW DC cabinet and four 11 kW AC ports.
OVERLOADING = {"manager": {"kind": "uncontrolled"}, "demand": [{
    "kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 4.0},
    "dwell_min": {"dist": "lognormal", "median": 90, "sigma": 0.5}}]}  # fmt: skip


def _run(tmp_path, capsys, **changes):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(**changes)))
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out)]) == 0
    return out, capsys.readouterr().out


def _overloads(load: pd.DataFrame, horizon_s: float) -> tuple[float, float]:
    """Minutes of 15-minute intervals with mean import above the limit (by more than 1 W), and the worst excess."""
    excess = load["grid_kw"] - load["limit_kw"]
    over = excess > 1e-3
    width_min = (np.minimum(load["t_s"] + 900.0, horizon_s) - load["t_s"]) / 60
    return float(width_min[over].sum()), float(excess[over].max()) if over.any() else 0.0


def test_overload_minutes_and_worst_excess_recomputed_from_the_load_series(tmp_path, capsys):
    """kpis.json's overload KPIs per site and network equal those recomputed from load.parquet; the CLI warns."""
    out, stdout = _run(tmp_path, capsys, **OVERLOADING)
    kpis = json.loads((out / "kpis.json").read_text())
    load = pd.read_parquet(out / "load.parquet")
    horizon_s = 2 * 86400.0
    minutes, worst = _overloads(load[load["site_id"] == "a"], horizon_s)
    assert minutes >= 15  # the DC cabinet alone can draw more than the connection
    site = kpis["grid"]["sites"]["a"]
    assert site["overload_minutes"] == pytest.approx(minutes)
    assert site["overload_max_excess_kw"] == pytest.approx(worst)
    assert worst > 0
    net = kpis["grid"]["network"]
    assert net["overload_minutes"] == pytest.approx(minutes)
    assert net["sites_overloaded"] == 1
    warning = [line for line in stdout.splitlines() if line.startswith("warning: grid limit exceeded")]
    assert len(warning) == 1
    assert f"a {minutes:,.0f} min" in warning[0]
    report = (out / "report.md").read_text()
    box = report.index("> **Warnings**")
    assert box < report.index("\n## ")  # the box opens the report, before the first table
    assert "grid limit exceeded at 1 site" in report[box : report.index("\n## ")]
    assert 'class="warnings"' in (out / "report.html").read_text()


def test_a_limiting_manager_has_no_overload_and_no_warning(tmp_path, capsys):
    """equal_share keeps the site within its limit: zero overload minutes, no grid warning, no box without warnings."""
    out, stdout = _run(tmp_path, capsys, **{**OVERLOADING, "manager": {"kind": "equal_share"}})
    kpis = json.loads((out / "kpis.json").read_text())
    load = pd.read_parquet(out / "load.parquet")
    assert _overloads(load, 2 * 86400.0) == (0.0, 0.0)
    assert kpis["grid"]["sites"]["a"]["overload_minutes"] == 0
    assert "grid limit exceeded" not in stdout
    lost = kpis["sites"]["a"]["sessions_balked"] + kpis["sites"]["a"]["sessions_reneged"]
    assert ("> **Warnings**" in (out / "report.md").read_text()) == (lost > 0)


def _kpis(lost: dict[str, int], overload_min: dict[str, float], uptime_share: float | None = None) -> dict:
    sites = {sid: {"sessions_balked": n, "sessions_reneged": 0} for sid, n in lost.items()}
    grid = {sid: {"overload_minutes": m, "overload_max_excess_kw": 2.5} for sid, m in overload_min.items()}
    k = {"network": {"ports": 40}, "sites": sites, "grid": {"sites": grid}}
    if uptime_share is not None:
        k["serviceability"] = {"ports_meeting_target_share": uptime_share, "uptime_target_pct": 97.0,
                               "port_uptime_min_pct": 91.234}  # fmt: skip
    return k


def test_warnings_name_the_worst_sites_and_count_the_rest():
    """One line per kind: overloaded sites by minutes, sites losing drivers by count, ports below 97 %."""
    lines = run_warnings(_kpis({"a": 0, "b": 3, "c": 9, "d": 1, "e": 2}, {"a": 30.0, "b": 0.0, "c": 45.0}, 0.95))
    assert lines == [
        "grid limit exceeded at 2 sites (15-minute import above the connection or transformer): "
        "c 45 min, worst +2.5 kW, a 30 min, worst +2.5 kW",
        "drivers lost (balked or reneged) at 4 sites: c 9, b 3, e 2 and 1 more",
        "2 of 40 ports below 97 % uptime (NEVI; lowest 91.23 %)",
    ]
    assert run_warnings(_kpis({"a": 0}, {"a": 0.0}, 1.0)) == []
