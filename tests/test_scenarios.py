import json
import re

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.results import RESULT_FILES
from sim.sessions import Outcome

SCENARIOS = sorted(p.name for p in __import__("pathlib").Path(__file__).resolve().parents[1].glob("scenarios/*.yaml"))


def test_the_examples_exist():
    """The five documented examples ship with the product."""
    assert {
        "small_city.yaml",
        "highway_corridor.yaml",
        "workplace_campus.yaml",
        "fleet_depot.yaml",
        "trace_replay.yaml",
    } <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_validates(name, scenarios_dir):
    """Every shipped scenario loads and validates (the fast lane runs only the first example end to end)."""
    assert load_scenario(scenarios_dir / name).horizon_s > 0


FAST_RUN = "small_city.yaml"  # the fast lane's end-to-end run through the command line; the others are slow


@pytest.mark.parametrize("name", [n if n == FAST_RUN else pytest.param(n, marks=pytest.mark.slow) for n in SCENARIOS])
def test_scenario_validates_and_runs(name, scenarios_dir, tmp_path, capsys):
    """Every shipped scenario validates and runs two days through the command line into a full results folder."""
    load_scenario(scenarios_dir / name)
    out = tmp_path / "out"
    assert main(["run", str(scenarios_dir / name), "--days", "2", "--out", str(out)]) == 0
    for f in (*RESULT_FILES, "report.md", "report.html"):
        assert (out / f).is_file(), f
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["network"]["sessions_arrived"] > 0
    assert "report.html" in capsys.readouterr().out
    _check_outcomes_add_up(out, kpis)
    _check_waits(out, kpis["network"])


def _check_outcomes_add_up(out, kpis) -> None:
    """Arrivals = the sum of every outcome, in kpis.json (network and each site) and in the report's network table."""
    sessions = pd.read_parquet(out / "sessions.parquet")
    names = [f"sessions_{o.name.lower()}" for o in Outcome]
    for k in (kpis["network"], *kpis["sites"].values()):
        assert k["sessions_arrived"] == sum(k[n] for n in names)
    counts = sessions["outcome"].value_counts()
    for o in Outcome:
        assert kpis["network"][f"sessions_{o.name.lower()}"] == counts.get(o.name.lower(), 0)
    assert kpis["network"]["sessions_arrived"] == len(sessions)
    report = (out / "report.md").read_text(encoding="utf-8")
    network = report[report.index("| Sessions arrived |") :].split("\n\n")[0]
    rows = dict(re.findall(r"^\| Sessions ([a-z ]+) \| ([\d,]+) \|$", network, flags=re.MULTILINE))
    arrived = int(rows.pop("arrived").replace(",", ""))
    assert set(rows) == {o.name.lower().replace("_", " ") for o in Outcome}, "every outcome has its row"
    assert arrived == sum(int(v.replace(",", "")) for v in rows.values())


def _check_waits(out, network) -> None:
    """Waits and shares recomputed from the rows: a driver who gave up waited until the RENEGED event."""
    sessions = pd.read_parquet(out / "sessions.parquet")
    events = pd.read_parquet(out / "events.parquet")
    reneged = events[events["event"] == "reneged"].set_index("session_id")["t_s"]
    arrival = sessions.set_index("session_id")["arrival_t_s"]
    plugged = sessions.set_index("session_id")["plug_t_s"].dropna()
    waits_plugged = (plugged - arrival[plugged.index]).to_numpy()
    waits_all = np.concatenate([waits_plugged, (reneged - arrival[reneged.index]).to_numpy()])
    for name, waits in (("all", waits_all), ("plugged", waits_plugged)):
        mean = waits.mean() if len(waits) else 0.0
        p95 = np.percentile(waits, 95) if len(waits) else 0.0
        assert np.isclose(network[f"wait_{name}_mean_s"], mean, rtol=1e-9, atol=1e-9), name
        assert np.isclose(network[f"wait_{name}_p95_s"], p95, rtol=1e-9, atol=1e-9), name
    arrived = len(sessions)
    assert np.isclose(network["renege_share"], len(reneged) / arrived)
    assert np.isclose(network["balk_share"], (sessions["outcome"] == "balked").sum() / arrived)
