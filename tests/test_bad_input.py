"""Every bad input gives one clear line naming the file, the place and the fix, and exit code 2; never a traceback."""

import codecs
import contextlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.config import (
    MAX_EXPECTED_ARRIVALS,
    ScenarioError,
    YamlLoader,
    load_scenario,
    scenario_schema,
    validate_data,
)
from tests.conftest import examples, scenario_data

ROOT = Path(__file__).resolve().parents[1]
# sweep files and chaos timelines live beside the scenarios but are not scenarios
SCENARIOS = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml") if not {"sweeps", "chaos"} & set(p.parts))
SMALL_CITY = ROOT / "scenarios" / "small_city.yaml"


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value.problems


def _write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------- files that are not UTF-8 YAML text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 4, "is not text (byte 0x80); give a YAML text file"),
        (SMALL_CITY.read_text(encoding="utf-8").encode("utf-16"), "is UTF-16 or UTF-32 encoded; save it as UTF-8"),
        (b"# caf\xe9 au lait\nname: x\n", ":1: the scenario file is not UTF-8 (byte 0xe9"),
    ],
    ids=["binary", "utf-16", "latin-1"],
)
def test_undecodable_files_exit_2_with_one_line(tmp_path, capsys, content, expected):
    """A binary, UTF-16 or Latin-1 file is named with what it is and how to fix it."""
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.startswith(str(path))
    assert "Traceback" not in err


def test_utf8_with_a_byte_order_mark_is_read():
    """A UTF-8 file saved with a byte order mark (as some editors do) is fine."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_bytes(codecs.BOM_UTF8 + yaml.safe_dump(scenario_data()).encode())
        assert load_scenario(path).name == "test"


@pytest.mark.parametrize(
    ("start", "reason"),
    [("2026-02-30T00:00:00+01:00", "day is out of range for month"), ("2026-13-02T00:00:00+01:00", "month must be")],
)
def test_impossible_dates_are_named_at_their_line(tmp_path, start, reason):
    """A date that does not exist is a YAML problem at its line, not a traceback."""
    text = yaml.safe_dump(scenario_data(), sort_keys=False).replace("'2026-03-02T00:00:00+01:00'", start)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("start:"))
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:{line}: ")
    assert f"{start} is not a date and time that exists" in problem
    assert reason in problem


# ---------------------------------------------------------------- values


def test_absurd_rate_is_bounded_with_the_reason(tmp_path):
    """`per_hour: 1e9` is refused before anything is allocated, saying what a run can hold."""
    data = scenario_data(horizon_days=7)
    data["demand"][0]["rate"] = {"kind": "constant", "per_hour": 1e9}
    [problem] = _problems(_write(tmp_path, data))
    assert "demand[0].rate: this rate brings about 1.68e+11 arrivals in 7 days" in problem  # 1e9 × 168 h
    assert f"a run holds at most {MAX_EXPECTED_ARRIVALS:,} sessions" in problem
    assert "lower per_hour or horizon_days" in problem


def test_the_arrival_bound_is_the_expected_count():
    """The bound is on rate × horizon: the same rate passes over a shorter horizon."""
    per_hour = MAX_EXPECTED_ARRIVALS / (24 * 10)  # exactly the bound over 10 days
    with tempfile.TemporaryDirectory() as tmp:
        data = scenario_data(horizon_days=10)
        data["demand"][0]["rate"] = {"kind": "constant", "per_hour": per_hour}
        assert load_scenario(_write(Path(tmp), data)).horizon_days == 10
        data["horizon_days"] = 10.5
        assert "arrivals in 10.5 days" in _problems(_write(Path(tmp), data))[0]


def test_too_many_ports_are_bounded(tmp_path):
    """A charger count beyond what a run holds names the site and the bound."""
    data = scenario_data()
    data["network"]["sites"][0]["chargers"][0]["count"] = 10**9
    [problem] = _problems(_write(tmp_path, data))
    assert "network.sites[0].chargers: the network has 2,000,000,002 ports" in problem  # 1e9 × 2 + 2
    assert "a run holds at most 100,000" in problem


def test_nan_is_not_a_number(tmp_path):
    """`.nan` is reported as not a number at its line, not as 'greater than 0'."""
    text = yaml.safe_dump(scenario_data(), sort_keys=False).replace("capacity_kw: 100.0", "capacity_kw: .nan")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "capacity_kw" in s)
    assert _problems(path) == [f"{path}:{line}: network.sites[0].capacity_kw: not a number (.nan); give a number"]


def test_unknown_key_suggests_the_nearest(tmp_path):
    """A misspelt key offers the nearest valid key of that place."""
    data = scenario_data()
    site = data["network"]["sites"][0]
    site["capacity_kww"] = site.pop("capacity_kw")
    data["demand"][0]["dwell_min"]["sigmaa"] = data["demand"][0]["dwell_min"].pop("sigma")
    problems = "\n".join(_problems(_write(tmp_path, data)))
    assert "network.sites[0].capacity_kww: unknown key; did you mean `capacity_kw`?" in problems
    assert "demand[0].dwell_min.sigmaa: unknown key; did you mean `sigma`?" in problems


def test_a_key_the_kind_does_not_take_lists_what_it_takes(tmp_path):
    """A key far from every valid one says what the kind takes."""
    data = scenario_data(manager={"kind": "uncontrolled", "target_kw": 50})
    [problem] = _problems(_write(tmp_path, data))
    assert "manager.target_kw: unknown key: kind uncontrolled does not take `target_kw`; it takes only kind" in problem


# ---------------------------------------------------------------- cross-references point at their line


def _line_of(text: str, needle: str, after: str | None = None) -> int:
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if after in s) if after else 0
    return next(i for i, s in enumerate(lines[start:], start + 1) if needle in s)


@pytest.mark.parametrize(
    ("change", "needle", "expected"),
    [
        ({"demand": [{**scenario_data()["demand"][0], "site": "nowhere"}]}, "site: nowhere",
         "demand[0].site: 'nowhere' is not a site of the network"),
        ({"grid": {"sites": {"ghost": {"transformer_kw": 50}}}}, "ghost:",
         "grid.sites.ghost: grid names site(s) ghost"),
        ({"network": {"sites": [{**scenario_data()["network"]["sites"][0],
                                 "tariff": {"currency": "USD", "price_per_kwh": 0.4}}]}},
         "currency: USD", "network.sites[0].tariff.currency: site a bills in USD"),
        ({"serviceability": {"hardware": {"nope": ["software_hang"]},
                             "crews": [{"id": "c", "depot": {"lat": 52.0, "lon": 4.0}}]}}, "nope:",
         "serviceability.hardware.nope: serviceability.hardware names charger model(s) nope"),
        ({"pricing": {"kind": "occupancy", "sites": ["a", "zzz"], "floor_per_kwh": 0.3, "ceiling_per_kwh": 0.6}},
         "- zzz", "pricing.sites[1]: names site(s) zzz"),
    ],
    ids=["demand site", "grid site", "currency", "hardware model", "pricing site"],
)  # fmt: skip
def test_cross_reference_errors_name_the_offending_line(tmp_path, change, needle, expected):
    """A reference to something that does not exist is reported at the line that makes it."""
    path = _write(tmp_path, scenario_data(**change))
    line = _line_of(path.read_text(), needle)
    problems = _problems(path)
    assert any(p.startswith(f"{path}:{line}: ") and expected in p for p in problems), (line, problems)


def test_unknown_trace_station_points_at_the_trace(tmp_path):
    """Trace stations that are no site are reported at the demand's path line, naming the stations."""
    (tmp_path / "t.csv").write_text(
        "arrival,departure,energy_kwh,station\n2026-03-02T08:00:00+01:00,2026-03-02T09:00:00+01:00,10,elsewhere\n"
    )
    path = _write(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv"}]))
    line = _line_of(path.read_text(), "path: t.csv")
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:{line}: demand[0].path: trace stations elsewhere are not sites")


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", "is empty; it needs a header line"), ("arrival,departure,energy_kwh,station\n", "has a header but no rows")],
)
def test_empty_trace_names_its_file(tmp_path, content, expected):
    """An empty trace (no bytes, or a header only) names the file."""
    (tmp_path / "t.csv").write_text(content)
    [problem] = _problems(_write(tmp_path, scenario_data(demand=[{"kind": "trace", "path": "t.csv", "site": "a"}])))
    assert f"trace file {tmp_path / 't.csv'} {expected}" in problem


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--days", "0"], "--days 0: Input should be greater than 0 (it sets horizon_days)"),
        (["--days", "nan"], "--days nan: not a number (it sets horizon_days)"),
        (["--days", "4000"], "--days 4000: Input should be less than or equal to 3660 (it sets horizon_days)"),
        (["--seed", "-1"], "--seed -1: Input should be greater than or equal to 0 (it sets seed)"),
    ],
)
def test_bad_flag_values_are_blamed_on_the_flag(tmp_path, capsys, argv, expected):
    """`--days 0` is the flag's fault, not the file's: the message names the flag and not the file."""
    path = _write(tmp_path, scenario_data())
    assert main(["run", str(path), *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == expected
    assert str(path) not in err


def test_sweep_over_manager_kind_says_which_keys_the_new_kind_does_not_take(tmp_path, capsys):
    """Sweeping manager.kind away from a kind with its own keys names the key and how to sweep instead."""
    _write(tmp_path, scenario_data(horizon_days=1, manager={"kind": "peak_shaving", "target_kw": 50}), "base.yaml")
    spec = {"name": "t", "base": "base.yaml", "replications": 1, "parameters": {"manager.kind": ["uncontrolled"]}}
    path = _write(tmp_path, spec, "sweep.yaml")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    line = _line_of(path.read_text(), "- uncontrolled")
    assert f"sweep.yaml:{line}: variant v000 (manager.kind=uncontrolled): manager.target_kw: unknown key: " in err
    assert "kind uncontrolled does not take `target_kw`" in err
    assert "sweep the whole manager instead" in err


# ---------------------------------------------------------------- the JSON Schema


def _jsonable(data):
    return json.loads(json.dumps(data, default=lambda o: o.isoformat()))


def _readme_yaml_blocks() -> list[tuple[str, dict]]:
    """The YAML examples of the README and the documentation pages, each with its file and line."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^( *)```yaml\n(.*?)^\1```", text, re.S | re.M):
            body = "\n".join(line[len(m.group(1)) :] for line in m.group(2).splitlines())
            where = f"{page.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
            blocks.append((where, yaml.load(body, Loader=YamlLoader)))  # noqa: S506
    return blocks


_SCHEMA = scenario_schema()
# A README or docs fragment shows one section: every value it gives must fit, the keys it leaves out are not checked.
_Fragment = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"required": lambda *args: iter(())})


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_schema_accepts_every_shipped_scenario(path):
    """`chargetwin schema` accepts every scenario that ships (bare numbers for distributions included)."""
    data = _jsonable(yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader))  # noqa: S506
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(_SCHEMA).iter_errors(data)
    ]
    assert errors == []


def test_schema_accepts_every_documented_example():
    """Every scenario example of the README and docs fits the schema: a whole scenario fully, a section as given."""
    checked = 0
    for where, data in _readme_yaml_blocks():
        if not isinstance(data, dict) or not set(data) <= set(_SCHEMA["properties"]):
            continue  # a sweep file or a fault timeline: not a scenario
        whole = set(_SCHEMA["required"]) <= set(data)
        validator = (jsonschema.Draft202012Validator if whole else _Fragment)(_SCHEMA)
        errors = [f"{where}: {list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_jsonable(data))]
        assert errors == []
        checked += 1
    assert checked >= 8


def _invalid_cases():
    base = _jsonable(scenario_data())
    cases = {}
    for name, (key, value) in {
        "unknown top-level key": ("horizon_dayz", 3),
        "negative horizon": ("horizon_days", -1),
        "seed as text": ("seed", "seven"),
        "unknown manager": ("manager", {"kind": "smartest"}),
        "demand is not a list": ("demand", {"kind": "synthetic"}),
    }.items():
        cases[name] = {**base, key: value}
    missing = dict(base)
    del missing["network"]
    cases["network missing"] = missing
    bad_dist = json.loads(json.dumps(base))
    bad_dist["demand"][0]["dwell_min"] = {"dist": "lognormal", "median": 90}
    cases["distribution without sigma"] = bad_dist
    text_dist = json.loads(json.dumps(base))
    text_dist["demand"][0]["patience_min"] = "fifteen"
    cases["distribution as text"] = text_dist
    return cases


@pytest.mark.parametrize("case", list(_invalid_cases()))
def test_schema_rejects_invalid_scenarios(case):
    """Typos, wrong types, missing sections and incomplete distributions fail the schema, as they fail the loader."""
    data = _invalid_cases()[case]
    assert list(jsonschema.Draft202012Validator(_SCHEMA).iter_errors(data))
    with pytest.raises(ScenarioError):
        validate_data(data, "s.yaml", ROOT)


def test_schema_accepts_the_valid_base():
    """The fixtures' base scenario fits the schema (so the rejections above are about the change alone)."""
    assert not list(jsonschema.Draft202012Validator(_SCHEMA).iter_errors(_jsonable(scenario_data())))


# ---------------------------------------------------------------- fuzz: mutated scenarios and raw bytes

_NUMBER = re.compile(r"(?<=[:\[,] )-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_ODD_VALUES = ["0", "-1", "1e9", "1e308", "-1e308", ".nan", ".inf", "-.inf", "''", "x", "[]", "{}", "null",
               "2026-02-30", "2026-13-02T00:00:00+01:00", "true", "99999999999999999999", "0.0000001"]  # fmt: skip


@st.composite
def _mutated(draw) -> tuple[str, bytes]:
    """A shipped scenario with one or two mutations: odd values, lines dropped or repeated, cut, bytes spliced."""
    path = draw(st.sampled_from(SCENARIOS))
    text = path.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 2))):
        lines = text.splitlines(keepends=True)
        how = draw(st.sampled_from(["value", "value", "drop", "repeat", "cut", "splice", "dedent"]))
        if how == "value" and (numbers := list(_NUMBER.finditer(text))):
            m = numbers[draw(st.integers(0, len(numbers) - 1))]
            odd = draw(st.sampled_from(_ODD_VALUES) | st.floats(allow_nan=True, allow_infinity=True).map(repr))
            text = text[: m.start()] + odd + text[m.end() :]
        elif how in ("drop", "repeat", "dedent") and lines:
            i = draw(st.integers(0, len(lines) - 1))
            new = {"drop": [], "repeat": [lines[i], lines[i]], "dedent": [lines[i].lstrip(" ")]}[how]
            text = "".join(lines[:i] + new + lines[i + 1 :])
        elif how == "cut":
            text = text[: draw(st.integers(0, len(text)))]
        elif how == "splice":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    return path.relative_to(ROOT / "scenarios").as_posix(), text.encode("utf-8", "surrogatepass")


def _validate_in_process(folder: Path, rel: str, content: bytes) -> tuple[int, str]:
    path = folder / rel
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def scenario_copy():
    """The shipped scenarios with their data files, in a folder the fuzz tests may write into."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "scenarios", Path(tmp) / "scenarios")
        yield Path(tmp) / "scenarios"


# CI runs 300 examples of each (seconds; 20 in the fast lane); CHARGETWIN_FUZZ_EXAMPLES=3000 for a longer hunt
_FUZZ = settings(
    max_examples=examples(int(os.environ.get("CHARGETWIN_FUZZ_EXAMPLES", "300"))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_BUDGET_MB = 512


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@_FUZZ
@given(case=_mutated())
def test_fuzz_mutated_scenarios_exit_0_or_2_never_a_traceback(scenario_copy, case):
    """A mutated shipped scenario validates or gives problems with exit 2; never exit 1, never an exception."""
    rel, content = case
    before = _max_rss_mb()
    code, output = _validate_in_process(scenario_copy, rel, content)
    assert code in (0, 2), output
    assert "Traceback" not in output
    assert _max_rss_mb() - before < _BUDGET_MB


@_FUZZ
@given(content=st.binary(max_size=4000) | st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_fuzz_raw_bytes_exit_2_never_a_traceback(scenario_copy, content):
    """Any bytes at all: exit 2 with a message (no bytes make a scenario), never an exception."""
    code, output = _validate_in_process(scenario_copy, "fuzz.yaml", content)
    assert code == 2, output
    assert output.strip()


_AS_LIMIT = 3 << 30  # address space of each subprocess: far below what the unbounded inputs used to ask for


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_AS_LIMIT, _AS_LIMIT))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["demand"][0].update(rate={"kind": "constant", "per_hour": 1e9}), "a run holds at most"),
        pytest.param(  # each case is a process of its own: the fast lane keeps the rate and the date
            lambda d: d["network"]["sites"][0]["chargers"][0].update(count=10**12),
            "a run holds at most 100,000",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            lambda d: d.update(drivers={"population": 10**12}), "less than or equal to 10000000", marks=pytest.mark.slow
        ),
        (lambda d: d.update(start="2026-02-30T00:00:00+01:00"), "Input should be a valid datetime"),
    ],
    ids=["rate 1e9", "count 1e12", "population 1e12", "impossible date"],
)
def test_run_of_an_unbounded_input_exits_2_within_a_memory_limit(tmp_path, edit, expected):
    """`chargetwin run` in a real process with a memory limit: the bound refuses it, exit 2, no traceback."""
    data = scenario_data(horizon_days=7)
    edit(data)
    path = _write(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "run", str(path), "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
    )
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_binary_scenario_in_a_real_process(tmp_path):
    """The console script on a binary file: exit 2, one line and the count, no traceback."""
    path = tmp_path / "s.yaml"
    path.write_bytes(bytes(range(256)))
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "validate", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{path}:2: the scenario file is not text (byte 0x80); give a YAML text file",  # after the byte 0x0a
        "1 problem(s); nothing was run.",
    ]
