"""The report's V2G section: there with V2G, absent without, its figures the kpis.json ones."""

import json

from reports.report import render
from sim.config import load_scenario
from sim.engine import simulate
from sim.results import write_results
from tests.conftest import make_scenario


def test_the_report_shows_v2g_from_kpis_json(scenarios_dir, tmp_path):
    """The garage's report has the V2G section with the energy given back and the drivers' pay of kpis.json."""
    out = tmp_path / "garage"
    write_results(simulate(load_scenario(scenarios_dir / "v2g_garage.yaml", horizon_days=2)), out)
    render(out)
    k = json.loads((out / "kpis.json").read_text())["v2g"]["network"]
    text = (out / "report.md").read_text()
    assert "## Bidirectional charging (V2G)" in text
    assert f"| Energy given back by EVs | {k['energy_discharged_kwh']:,.1f} kWh |" in text
    assert f"| Paid to drivers for it | {k['v2g_remuneration']:,.2f} EUR |" in text


def test_no_v2g_section_without_v2g(tmp_path):
    """A run without any V2G setting has no V2G section."""
    out = tmp_path / "plain"
    write_results(simulate(make_scenario(horizon_days=0.5)), out)
    render(out)
    assert "V2G" not in (out / "report.md").read_text()
