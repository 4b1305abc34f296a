"""Dotted YAML paths (``network.sites[0].capacity_kw``): parse them and set a value in parsed YAML."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """Split ``network.sites[0].capacity_kw`` into ``["network", "sites", 0, "capacity_kw"]``.

    Raises:
        ValueError: the path is not dotted keys with optional ``[i]`` list indices.
    """
    keys: list[str | int] = []
    for part in path.split("."):
        match = _PATH_PART.match(part)
        if match is None:
            raise ValueError(
                f"{path!r} is not a dotted YAML path; write keys joined by dots with [i] for list items, "
                "e.g. network.sites[0].capacity_kw"
            )
        keys.append(match.group(1))
        keys += [int(i) for i in _INDEX.findall(match.group(2))]
    return keys


def _path_text(keys: Sequence[str | int]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def set_path(data: Any, path: str, value: Any) -> None:
    """Set the value at dotted `path` in parsed YAML `data`, in place.

    Missing mapping keys are created (the scenario validation then judges them); list items
    must exist.

    Raises:
        ValueError: the path is malformed or walks into a missing list item or a scalar.
    """
    keys = parse_path(path)
    node = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = _path_text(keys[:depth]) or "the top level"
        if isinstance(key, int):
            if not isinstance(node, list):
                raise ValueError(f"{path}: {where} is not a list, so [{key}] does not exist")
            if key >= len(node):
                raise ValueError(f"{path}: {where} has {len(node)} item(s), so [{key}] does not exist")
        elif not isinstance(node, dict):
            raise ValueError(f"{path}: {where} is not a mapping, so it has no key {key!r}")
        elif not last and key not in node:
            if isinstance(keys[depth + 1], int):
                raise ValueError(f"{path}: the base scenario has no list {_path_text(keys[: depth + 1])}")
            node[key] = {}
        if last:
            node[key] = copy.deepcopy(value)
        else:
            node = node[key]
