"""Every KPI a shipped scenario writes to kpis.json is defined in docs/kpis.md, in the section of its kpis.json part.

A key counts as defined when its dotted name, or a dotted tail of it, is written in backticks in
that section, e.g. `session_revenue` or `energy_vs_need.<group>.sessions`. A placeholder stands
for one name: `<m>` for a name the scenario gives (a fault mode); any other placeholder (as in
`sessions_<outcome>`) only for a value also written in backticks in the section, so a new key of a
documented family still needs its own mention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sim.config import load_scenario
from sim.engine import simulate
from sim.results import write_results

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "kpis.md"
SCENARIOS = (
    "small_city",
    "mixed_market",
    "depot_grid",
    "corridor_one_crew",
    "pricing_tou_membership",
    "battery_ageing",
    "v2g_garage",
)
DAYS = 2
# kpis.json's top-level keys → the docs/kpis.md section ("## " heading) that defines them.
SECTION_OF = {
    "currency": "Sessions and queueing",
    "network": "Sessions and queueing",
    "sites": "Sessions and queueing",
    "serviceability": "Serviceability",
    "revenue": "Revenue",
    "grid": "Grid and load",
    "ev_side": "EV side",
    "degradation": "Battery degradation",
    "v2g": "Bidirectional charging (V2G)",
}
SCENARIO_NAMED = {"m"}  # placeholders for names a scenario defines, which no document can list
_TOKEN = re.compile(r"`([^`\n]+)`")
_PLACEHOLDER = re.compile(r"<([^<>]+)>")


def doc_tokens(text: str) -> dict[str, set[str]]:
    """The backticked names of each "## " section of a KPI document."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = set()
        elif current is not None:
            sections[current].update(token.strip() for token in _TOKEN.findall(line))
    return sections


def _pattern(token: str) -> re.Pattern[str] | None:
    """A regex for a backticked name with placeholders; None for what cannot name a key (a lone placeholder)."""
    if _PLACEHOLDER.fullmatch(token) or not re.fullmatch(r"[A-Za-z0-9_.\[\]<> -]+", token):
        return None
    parts, names, pos = [], [], 0
    for match in _PLACEHOLDER.finditer(token):
        parts.append(re.escape(token[pos : match.start()]))
        names.append(match.group(1))
        parts.append(f"(?P<p{len(names) - 1}>[A-Za-z0-9_-]+)")
        pos = match.end()
    parts.append(re.escape(token[pos:]))
    return re.compile("".join(parts))


def leaf_keys(kpis: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(top-level key, dotted name) of every leaf of kpis.json, without the site-id level under `sites`.

    A list of objects contributes its items' keys as `name[].key`; a list of numbers is one leaf.
    """

    def walk(value: Any, path: list[str]) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if path and path[-1] == "sites":  # a site id: the level below is the site's KPIs
                    yield from walk(item, [*path, "<site>"])
                else:
                    yield from walk(item, [*path, str(key)])
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                yield from walk(item, [*path[:-1], f"{path[-1]}[]"])
        else:
            yield ".".join(p for p in path if p != "<site>")

    for top, value in kpis.items():
        for name in walk(value, [top]):
            yield top, name


def undocumented(kpis: Mapping[str, Any], text: str) -> list[str]:
    """The leaf keys of `kpis` that `text` (a KPI document) does not define; sorted, each once."""
    sections = doc_tokens(text)
    missing = set()
    for top, name in leaf_keys(kpis):
        section = SECTION_OF.get(top)
        tokens = sections.get(section, set()) if section else set()
        patterns = [(p, t) for t in tokens if (p := _pattern(t)) is not None]
        parts = name.split(".")
        tails = [".".join(parts[i:]) for i in range(len(parts))]
        if not any(_defines(pattern, token, tail, tokens) for tail in tails for pattern, token in patterns):
            missing.add(name)
    return sorted(missing)


def _defines(pattern: re.Pattern[str], token: str, tail: str, tokens: set[str]) -> bool:
    match = pattern.fullmatch(tail)
    if match is None:
        return False
    names = _PLACEHOLDER.findall(token)
    return all(names[i] in SCENARIO_NAMED or match.group(f"p{i}") in tokens for i in range(len(names)))


@pytest.fixture(scope="module")
def kpis_of_scenarios(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """kpis.json of each scenario in `SCENARIOS`, run for `DAYS` days."""
    out = {}
    for name in SCENARIOS:
        folder = tmp_path_factory.mktemp(name) / "out"
        write_results(simulate(load_scenario(ROOT / "scenarios" / f"{name}.yaml", horizon_days=DAYS)), folder)
        out[name] = json.loads((folder / "kpis.json").read_text(encoding="utf-8"))
    return out


def test_the_runs_write_every_section(kpis_of_scenarios):
    """Between them the scenarios write every part of kpis.json the document has a section for."""
    tops = {top for kpis in kpis_of_scenarios.values() for top in kpis}
    assert tops == set(SECTION_OF)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_kpi_of_a_scenario_is_defined_in_the_docs(kpis_of_scenarios, name):
    """Each leaf key of the scenario's kpis.json is written in backticks in its section of docs/kpis.md."""
    assert undocumented(kpis_of_scenarios[name], DOC.read_text(encoding="utf-8")) == []


def test_an_undocumented_kpi_is_found():
    """A new key, a new member of a documented family, or a key in the wrong section is reported."""
    text = DOC.read_text(encoding="utf-8")
    kpis = {
        "currency": "EUR",
        "network": {"sessions_served": 1, "sessions_teleported": 0, "ports_per_cloud": 2.0},
        "sites": {"a": {"session_revenue": 1.0, "capacity_kw": 10.0}},
        "revenue": {"components": {"energy_charge": 1.0, "tip_charge": 0.5}, "grid_peak_kw": 3.0},
        "serviceability": {"fault_modes": {"any_name": {"failures": 1, "mood": 2}}},
        "ev_side": {"interop_by_pair": [{"visits": 1, "smiles": 2}], "energy_vs_need": {"known": {"sessions": 1}}},
    }
    assert undocumented(kpis, text) == [
        "ev_side.interop_by_pair[].smiles",
        "network.ports_per_cloud",
        "network.sessions_teleported",
        "revenue.components.tip_charge",
        "revenue.grid_peak_kw",
        "serviceability.fault_modes.any_name.mood",
    ]
