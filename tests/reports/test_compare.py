import json

from reports.compare import compare_runs, flat_kpis
from sim.cli import main
from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario


def test_compare_shows_the_difference_of_two_managers(tmp_path, capsys):
    """Two managers on the same arrivals: B − A of every KPI is the difference of the two kpis.json values."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_results(simulate(make_scenario(horizon_days=1, manager={"kind": "uncontrolled"})), a)
    write_results(simulate(make_scenario(horizon_days=1, manager={"kind": "equal_share"})), b)
    comparison, folder = compare_runs(a, b, tmp_path / "cmp")
    assert comparison.same_arrivals
    ka, kb = (flat_kpis(json.loads((p / "kpis.json").read_text())) for p in (a, b))
    rows = {kpi: (x, y) for kpi, x, y in comparison.rows}
    assert rows["network.peak_kw"] == (ka["network.peak_kw"], kb["network.peak_kw"])
    assert rows["network.sessions_arrived"][0] == rows["network.sessions_arrived"][1]
    assert "revenue.margin" in rows
    assert "| network.peak_kw |" in (folder / "comparison.md").read_text()
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cli")]) == 0
    assert "network.peak_kw" in capsys.readouterr().out


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    """A missing folder is a usage error naming it, exit 2."""
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "nope: not a readable results folder" in capsys.readouterr().err
