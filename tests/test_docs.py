"""The documentation builds without a warning, its links resolve, and the scenario reference covers the model."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.config import Scenario, scenario_schema

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hook(name: str = "scenario_reference"):
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str]:
    """The site built with `mkdocs build --strict`, and what the build printed."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    return out, log


@pytest.mark.slow
def test_docs_build_strict_without_warnings(site):
    """`mkdocs build --strict` succeeds and reports no warning."""
    out, log = site
    assert not re.search(r"^(WARNING|ERROR)\b", log, re.M), log
    assert (out / "index.html").is_file()


@pytest.mark.slow
def test_scenario_reference_lists_every_top_level_field(site):
    """The generated reference page has a row for every top-level key of the scenario model."""
    out, _ = site
    page = html.unescape((out / "reference" / "scenario" / "index.html").read_text(encoding="utf-8"))
    table = page.split('id="scenario"', 1)[1].split('id="distributions"', 1)[0]
    rows = set(re.findall(r"<tr>\s*<td><code>([a-z0-9_]+)</code></td>", table))
    assert rows == set(Scenario.model_fields)


def test_scenario_reference_has_a_section_for_every_definition():
    """Every model the schema defines gets its own section, and every field of it a row."""
    schema = scenario_schema()
    page = _hook().render(schema)
    for name, model in schema["$defs"].items():
        assert f"### {name} {{#{name.lower()}}}" in page
        section = page.split(f"### {name} {{#{name.lower()}}}", 1)[1].split("\n### ", 1)[0]
        for field in model.get("properties", {}):
            assert f"| `{field}` |" in section, f"{name}.{field}"


def test_reference_units_come_from_field_names():
    """Units follow the suffix convention of the scenario keys."""
    unit_of = _hook().unit_of
    assert unit_of("capacity_kw") == "kW"
    assert unit_of("capacity_kwh") == "kWh"
    assert unit_of("price_per_kwh") == "currency/kWh"
    assert unit_of("demand_charge_per_kw_month") == "currency/kW/month"
    assert unit_of("dwell_min") == "min"
    assert unit_of("latency_s") == "s"
    assert unit_of("target_soc_frac") == "fraction 0–1"
    assert unit_of("seed") == ""


def _links(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^( *)```.*?^\1```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    found = []
    for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        found.append((text[: m.start()].count("\n") + 1, m.group(1)))
    return found


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_target_exists(page):
    """Every relative link of the README and the docs points at a file or page that exists."""
    generated = {(DOCS / _hook(hook.stem).PAGE).resolve() for hook in (DOCS / "hooks").glob("*.py")}
    broken = []
    for line, target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        if not resolved.exists() and resolved not in generated:
            broken.append(f"{page.relative_to(ROOT)}:{line}: {target}")
    assert broken == []


def test_readme_links_into_the_docs():
    """The short README points its readers at the documentation pages."""
    targets = {target.split("#", 1)[0] for _, target in _links(ROOT / "README.md")}
    assert any(t.startswith("docs/") for t in targets)


@pytest.mark.slow
def test_cli_reference_has_every_command(site):
    """The generated command-line reference has a section for every `chargetwin` command."""
    from sim.cli import _parser

    out, _ = site
    page = (out / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    commands = _hook("cli_reference")._subcommands(_parser())
    assert commands
    for name in commands:
        assert f'id="{name}"' in page
        assert f"usage: chargetwin {name}" in page


def test_module_map_lists_every_module():
    """The generated module map names every module of the three packages."""
    hook = _hook("module_map")
    page = hook.render(ROOT)
    for package in hook.PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert f"| `{path.relative_to(ROOT).as_posix()}` |" in page


def test_every_scenario_file_the_docs_name_exists():
    """Scenario and sweep files named in the README and the docs are shipped."""
    named = set()
    for page in _pages():
        named |= set(re.findall(r"scenarios/[\w/.-]+\.yaml", page.read_text(encoding="utf-8")))
    assert named
    placeholders = {p for p in named if len(Path(p).stem) == 1}  # scenarios/x.yaml in an error example
    assert sorted(p for p in named - placeholders if not (ROOT / p).is_file()) == []


def _code_blocks(page: Path, language: str) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M)]


def test_readme_first_scenario_loads(tmp_path):
    """The whole scenario the README shows is valid as written."""
    from sim.config import load_scenario

    block = _code_blocks(ROOT / "README.md", "yaml")[0]
    path = tmp_path / "my_city.yaml"
    path.write_text(block, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "my_city"
    assert scenario.manager.kind == "equal_share"


def test_researcher_tutorial_manager_runs(tmp_path, monkeypatch):
    """The researcher tutorial's own manager runs as written and writes a results folder."""
    (code,) = [b for b in _code_blocks(DOCS / "getting-started" / "researcher.md", "python") if "simulate(" in b]
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "researcher.md", "exec"), {"__name__": "tutorial"})  # noqa: S102
    kpis = json.loads((tmp_path / "out" / "small_city_7kw" / "kpis.json").read_text(encoding="utf-8"))
    ports = kpis["network"]["ports"]
    assert 0 < kpis["network"]["peak_kw"] <= 7.0 * ports + 1e-6


def test_researcher_tutorial_manager_test_passes():
    """The tutorial's test of its manager against a hand-made site runs as written, assertion included."""
    blocks = _code_blocks(DOCS / "getting-started" / "researcher.md", "python")
    (manager,) = [b.split("scenario = load_scenario")[0] for b in blocks if "simulate(" in b]
    (test,) = [b for b in blocks if "StaticNetwork" in b]
    exec(compile(manager + test, "researcher.md", "exec"), {"__name__": "tutorial"})  # noqa: S102


def test_every_scenario_field_has_a_description():
    """Every key of the scenario model says what it is, so the generated reference describes it."""
    schema = scenario_schema()
    missing = [
        f"{name}.{field}"
        for name, model in [("Scenario", schema), *schema["$defs"].items()]
        for field, node in model.get("properties", {}).items()
        if not node.get("description")
    ]
    assert missing == []


def test_every_repository_path_the_docs_name_exists():
    """Modules, folders and files of the repository named in the README and the docs exist (they move in refactors)."""
    pattern = r"\b((?:sim|virtual_chargers|reports|bench|tests|notebooks)/[\w/.-]*\w(?:/)?)"
    missing = []
    for page in _pages():
        for path in sorted(set(re.findall(pattern, page.read_text(encoding="utf-8")))):
            if not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []
