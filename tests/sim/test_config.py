from pathlib import Path

import pytest
import yaml

from sim.cli import main
from sim.config import ScenarioError, load_scenario
from tests.conftest import scenario_data


def _write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _problems(tmp_path: Path, data: dict) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, data))
    return info.value.problems


def test_typo_names_the_file_line_and_path(tmp_path):
    """A misspelled key is reported with the file, its line and its YAML path."""
    data = scenario_data()
    data["network"]["sites"][0]["chargers"][0]["power_kww"] = 11
    [problem] = _problems(tmp_path, data)
    assert "s.yaml:" in problem
    assert "network.sites[0].chargers[0].power_kww: unknown key" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    """A negative power, a wrong type and an unknown manager kind come back together."""
    data = scenario_data(manager={"kind": "cheapest_first"}, seed="seven")
    data["network"]["sites"][0]["chargers"][1]["power_kw"] = -5
    problems = "\n".join(_problems(tmp_path, data))
    assert "network.sites[0].chargers[1].power_kw: Input should be greater than 0" in problems
    assert "seed: Input should be a valid integer" in problems
    assert "manager: Input tag 'cheapest_first'" in problems
    assert "'equal_share'" in problems


def test_unordered_charge_curve(tmp_path):
    """A DC curve not ordered by SoC names the model's curve."""
    data = scenario_data(
        fleet=[
            {
                "share": 1,
                "model": {
                    "name": "van",
                    "capacity_kwh": 60,
                    "ac_max_kw": 11,
                    "dc_curve": [[0, 50], [0.8, 40], [0.5, 30], [1, 10]],
                },
            }
        ]
    )
    [problem] = _problems(tmp_path, data)
    assert "fleet[0].model.dc_curve: charge curve points must be ordered by strictly increasing soc_frac" in problem


def test_unknown_preset_lists_the_known_ones(tmp_path):
    """An unknown preset says which presets exist."""
    [problem] = _problems(tmp_path, scenario_data(fleet=[{"preset": "tesla_roadster_9", "share": 1}]))
    assert "unknown preset 'tesla_roadster_9'" in problem
    assert "nissan_leaf_40" in problem


def test_missing_trace_file(tmp_path):
    """A trace path that does not exist is named, relative to the scenario file."""
    data = scenario_data(demand=[{"kind": "trace", "path": "nowhere.csv", "site": "a"}])
    [problem] = _problems(tmp_path, data)
    assert "demand[0].path:" in problem
    assert "nowhere.csv does not exist" in problem


def test_trace_with_bad_rows(tmp_path):
    """Unparseable trace rows are listed by line number."""
    (tmp_path / "t.csv").write_text(
        "arrival,departure,energy_kwh,station\n"
        "2026-03-02T08:00:00+01:00,2026-03-02T09:00:00+01:00,10,a\n"
        "yesterday,2026-03-02T09:00:00+01:00,10,a\n"
        "2026-03-02T08:00:00+01:00,2026-03-02T07:00:00+01:00,10,a\n"
        "2026-03-02T08:00:00+01:00,2026-03-02T09:00:00+01:00,lots,a\n"
    )
    [problem] = _problems(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv"}]))
    assert "3 row(s) cannot be used (lines 3, 4, 5)" in problem


def test_trace_station_must_be_a_site(tmp_path):
    """Trace stations that are not sites are named."""
    (tmp_path / "t.csv").write_text(
        "arrival,departure,energy_kwh,station\n2026-03-02T08:00:00+01:00,2026-03-02T09:00:00+01:00,10,elsewhere\n"
    )
    [problem] = _problems(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv"}]))
    assert "trace stations elsewhere are not sites" in problem


def test_start_needs_a_timezone(tmp_path):
    """A start without a zone is refused with an example of the right form."""
    [problem] = _problems(tmp_path, scenario_data(start="2026-03-02T00:00:00"))
    assert "start:" in problem
    assert "timezone" in problem


def test_duplicate_key_and_bad_yaml(tmp_path):
    """A key given twice and broken YAML both name the line."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nseed: 1\nseed: 2\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:3: not valid YAML: key 'seed' is given twice"):
        load_scenario(path)
    path.write_text("name: [a\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:2: not valid YAML"):
        load_scenario(path)


def test_distribution_outside_its_domain(tmp_path):
    """An arrival SoC that could exceed 1 is refused."""
    data = scenario_data()
    data["demand"][0]["arrival_soc_frac"] = {"dist": "uniform", "low": 0.2, "high": 1.4}
    [problem] = _problems(tmp_path, data)
    assert (
        "demand[0].arrival_soc_frac must take values in [0.0, 1.0]" in problem
        or "arrival_soc_frac must take values in [0.0, 1.0]" in problem
    )


@pytest.mark.parametrize("command", ["run", "validate"])
def test_cli_bad_input_exits_2_without_traceback(tmp_path, capsys, command):
    """The command line prints the problems, exits 2 and shows no traceback.

    In-process (`main`): the exit code and stderr are what is checked here; the real process around them
    is checked by tests/test_bad_input.py and tests/virtual_chargers/test_cli.py.
    """
    data = scenario_data()
    data["network"]["sites"][0]["capacity_kw"] = -1
    data["demand"][0]["dwell_minutes"] = 5
    path = _write(tmp_path, data)
    out = ["--out", str(tmp_path / "o")] if command == "run" else []
    assert main([command, str(path), *out]) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert "network.sites[0].capacity_kw: Input should be greater than 0" in stderr
    assert "demand[0].dwell_minutes: unknown key" in stderr
    assert not (tmp_path / "o").exists()


def test_trace_timestamps_need_an_offset(tmp_path):
    """A trace timestamp without a UTC offset is refused rather than read as UTC."""
    (tmp_path / "t.csv").write_text(
        "arrival,departure,energy_kwh,station\n2026-03-02T08:00:00,2026-03-02T09:00:00+01:00,10,a\n"
    )
    [problem] = _problems(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv"}]))
    assert "(lines 2)" in problem


def test_trace_outside_the_horizon(tmp_path):
    """A trace none of whose sessions arrives within the horizon says how to fix the start."""
    (tmp_path / "t.csv").write_text(
        "arrival,departure,energy_kwh,station\n2025-03-02T08:00:00+01:00,2025-03-02T09:00:00+01:00,10,a\n"
    )
    [problem] = _problems(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv"}]))
    assert "arrives within the horizon" in problem
    assert "move start" in problem


def test_yaml_anchors_and_merge_keys():
    """YAML merge keys work, and keys written beside a merge override it without counting as repeats."""
    from sim.config import _UniqueKeyLoader

    merged = yaml.load("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\n", Loader=_UniqueKeyLoader)  # noqa: S506
    assert merged["b"] == {"p": 1, "q": 3}


def test_revenue_sections_name_the_field_and_the_fix(tmp_path):
    """A bad time of day, tiers not starting at 0, a plan without a population: each names its path and the fix."""
    data = scenario_data(
        tariff={"periods": [{"start": "25:00", "end": "06:00"}], "time_tiers": [{"from_kw": 50, "price_per_min": 1}]},
        memberships=[{"name": "plus", "monthly_fee": 5}],
        pricing={"kind": "occupancy", "floor_per_kwh": 0.6, "ceiling_per_kwh": 0.3},
    )
    problems = "\n".join(_problems(tmp_path, data))
    assert "tariff.periods[0].start: '25:00' is not a time of day; write HH:MM" in problems
    assert "tariff.time_tiers: the first time tier must start at from_kw: 0" in problems
    assert "pricing: ceiling_per_kwh (=0.3) must be >= floor_per_kwh" in problems
    data = scenario_data(memberships=[{"name": "plus", "monthly_fee": 5}])
    assert "set drivers.population" in "\n".join(_problems(tmp_path, data))


def test_revenue_guide_example_is_a_valid_scenario():
    """The revenue sections shown in the revenue guide (docs/guide/revenue.md) load as written."""
    section = (Path(__file__).resolve().parents[2] / "docs" / "guide" / "revenue.md").read_text(encoding="utf-8")
    block = yaml.safe_load(section[section.index("```yaml") + 7 : section.index("```", section.index("```yaml") + 7)])
    from sim.config import validate_data

    s = validate_data(scenario_data(**block), "docs/guide/revenue.md", Path("."))
    assert s.pricing is not None
    assert s.memberships[0].loyalty is not None
    assert [m.method for m in s.payments.methods] == ["app", "contactless", "rfid", "qr"]
