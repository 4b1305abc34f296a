"""MkDocs hook: writes the scenario reference page from the scenario's JSON Schema at build time.

The page is generated from `sim.config.scenario_schema()` (what `chargetwin schema` prints), so it
lists exactly the fields the loader accepts, with their types, defaults, units and descriptions.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

__all__ = ["PAGE", "on_files", "render", "unit_of"]

PAGE = "reference/scenario.md"

# A unit from a field's name (units live in names): the first pattern that matches wins.
_UNITS: list[tuple[str, str]] = [
    (r"_per_kw_month$", "currency/kW/month"),
    (r"^beta_price$", "utility per currency/kWh"),
    (r"^beta_wait_per_min$", "utility per min"),
    (r"^beta_detour_per_km$", "utility per km"),
    (r"(^|_)per_kwh(_by_hour)?$", "currency/kWh"),
    (r"^(price|idle_fee)_per_min$", "currency/min"),
    (r"_per_h$", "currency/h"),
    (r"_per_(site|charger)_per_year$", "per year"),
    (r"_per_month$", "per month"),
    (r"^per_hour$", "arrivals/h"),
    (r"_kwh$", "kWh"),
    (r"_kw$", "kW"),
    (r"_kmh$", "km/h"),
    (r"_km$", "km"),
    (r"_min$", "min"),
    (r"_s$", "s"),
    (r"_h$", "h"),
    (r"_days$", "days"),
    (r"_pct$", "%"),
    (r"(_frac|_efficiency)$", "fraction 0–1"),
    (r"(_prob|_success)$", "probability 0–1"),
    (r"_share$", "share 0–1"),
    (r"^(fee_fixed|session_fee|monthly_fee|part_cost|min_charge|max_charge|preauth_hold|redeem_value)$", "currency"),
    (r"^(lat|lon)$", "degrees"),
    (r"^dc_curve$", "(fraction 0–1, kW) points"),
    (r"^profile_by_hour$", "share of peak_kw per hour"),
]

_DISTRIBUTIONS = {"Constant", "Uniform", "Normal", "LogNormal", "Exponential", "Beta"}


def unit_of(field: str, inherited: str = "") -> str:
    """The unit of a scenario field, from its name; `inherited` for a unit-less name under a unit-suffixed key."""
    for pattern, unit in _UNITS:
        if re.search(pattern, field):
            return unit
    return inherited


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _refs(node: Any) -> list[str]:
    """Names of the definitions a schema node refers to, in order of appearance."""
    found: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node:
            found.append(_ref_name(node["$ref"]))
        for key, value in node.items():
            if key != "discriminator":
                found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found


def _type(node: dict[str, Any]) -> str:
    """A schema node as a short type, with definitions as links to their sections."""
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        return f"[{name}](#{name.lower()})"
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " | ".join(f"`{v}`" for v in node["enum"])
    variants = node.get("anyOf") or node.get("oneOf")
    if variants:
        refs = {_ref_name(v["$ref"]) for v in variants if "$ref" in v}
        if refs >= _DISTRIBUTIONS:
            return "number or [distribution](#distributions)"
        parts = [_type(v) for v in variants]
        if "discriminator" in node:
            return "one of " + ", ".join(parts) + f" (by `{node['discriminator']['propertyName']}`)"
        return " or ".join(parts)
    kind = node.get("type")
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type(v) for v in node["prefixItems"]) + "]"
        return "list of " + _type(node.get("items", {}))
    if kind == "object":
        if isinstance(node.get("additionalProperties"), dict):
            return "mapping of name → " + _type(node["additionalProperties"])
        return "mapping"
    if kind == "null":
        return "null"
    if kind == "string" and node.get("format") == "date-time":
        return "date-time"
    return {"number": "number", "integer": "integer", "string": "text", "boolean": "true/false"}.get(kind, "any")


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"), ("maximum", "≤")):
        if key in node:
            parts.append(f"{sign} {node[key]}")
    if node.get("minItems"):
        parts.append("not empty" if node["minItems"] == 1 else f"at least {node['minItems']} items")
    if "maxItems" in node:
        parts.append(f"at most {node['maxItems']} items")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    return ", ".join(parts)


def _default(name: str, node: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in node:
        return "–"
    value = node["default"]
    if value is None:
        return "none"
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and len(text) > 60:
        return "its fields' defaults"
    return f"`{text}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _usages(schema: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Definitions in breadth-first order from the top of the file, and the YAML paths where each is used."""
    defs = schema.get("$defs", {})
    order: list[str] = []
    paths: dict[str, list[str]] = {}
    queue: deque[tuple[str, dict[str, Any]]] = deque([("", schema)])
    while queue:
        prefix, model = queue.popleft()
        for field, node in model.get("properties", {}).items():
            path = f"{prefix}{field}"
            suffix = (
                "[]" if node.get("type") == "array" or "array" in [v.get("type") for v in node.get("anyOf", [])] else ""
            )
            if isinstance(node.get("additionalProperties"), dict):
                suffix = ".<name>"
            for name in dict.fromkeys(_refs(node)):
                if path + suffix not in paths.setdefault(name, []):
                    paths[name].append(path + suffix)
                if name not in order:
                    order.append(name)
                    queue.append((f"{path}{suffix}.", defs[name]))
    order += [name for name in defs if name not in order]
    return order, paths


def _table(model: dict[str, Any], inherited: str) -> list[str]:
    required = set(model.get("required", []))
    lines = ["| field | type | default | unit | description |", "|---|---|---|---|---|"]
    for field, node in model.get("properties", {}).items():
        kind = _type(node)
        limits = _constraints(node)
        if limits:
            kind += f" ({limits})"
        description = node.get("description", "")
        lines.append(
            f"| `{field}` | {_cell(kind)} | {_cell(_default(field, node, field in required))} "
            f"| {unit_of(field, inherited) or '–'} | {_cell(description) or '–'} |"
        )
    return lines


def render(schema: dict[str, Any]) -> str:
    """The reference page (Markdown) of a scenario JSON Schema."""
    defs = schema.get("$defs", {})
    order, paths = _usages(schema)
    out = [
        "# Scenario reference",
        "",
        "Every key a scenario file may hold, generated from the scenario model when these pages are built",
        "(the same model `chargetwin schema` exports as JSON Schema, for editor completion), so it always",
        "matches what `chargetwin validate` accepts. Keys not listed here are errors. Units come from the",
        "key's name (`_kw`, `_kwh`, `_min`, `_s`, `_frac` …); *currency* is the tariff's `currency`.",
        "",
        "## Scenario {#scenario}",
        "",
        _cell(schema.get("description", "")),
        "",
        *_table(schema, ""),
        "",
        "## Distributions {#distributions}",
        "",
        "A field typed *distribution* takes a bare number (a constant) or one of "
        + ", ".join(f"[{name}](#{name.lower()})" for name in sorted(_DISTRIBUTIONS))
        + ", chosen by `dist`.",
        "",
        "## Sections",
        "",
    ]
    for name in order:
        model = defs[name]
        used = paths.get(name, [])
        inherited = ""
        if used:
            last = used[0].rstrip("[]").rsplit(".", 1)[-1]
            inherited = unit_of(last)
        out += [f"### {name} {{#{name.lower()}}}", ""]
        if used:
            shown = ", ".join(f"`{p}`" for p in used[:6]) + (f" and {len(used) - 6} more" if len(used) > 6 else "")
            out += [f"Used at {shown}.", ""]
        if model.get("description"):
            out += [model["description"].strip(), ""]
        if "properties" in model:
            out += [*_table(model, inherited), ""]
        else:
            out += [f"Type: {_type(model)}.", ""]
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated reference page to the site."""
    from mkdocs.structure.files import File

    from sim.config import scenario_schema

    files.append(File.generated(config, PAGE, content=render(scenario_schema())))
    return files
