"""MkDocs hook: writes the module map (every module of the packages with the first line of its docstring).

The modules are read with `ast`, not imported, so the page needs nothing but the source tree.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "PAGE", "on_files", "render"]

PAGE = "reference/modules.md"
PACKAGES = ("sim", "virtual_chargers", "reports")


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split()).replace("|", "\\|")


def render(root: Path) -> str:
    """The module map (Markdown) of the packages under `root`."""
    out = [
        "# Module map",
        "",
        "Every module of the three packages with what it owns, from the first paragraph of its docstring",
        "(generated when the documentation is built). [Architecture](../architecture.md) explains how they fit.",
        "",
    ]
    for package in PACKAGES:
        out += [f"## `{package}/`", "", "| module | what it owns |", "|---|---|"]
        for path in sorted((root / package).rglob("*.py")):
            if any(part.startswith((".", "__pycache__")) for part in path.parts):
                continue
            out.append(f"| `{path.relative_to(root).as_posix()}` | {_summary(path) or '–'} |")
        out.append("")
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated module map to the site."""
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).resolve().parent
    files.append(File.generated(config, PAGE, content=render(root)))
    return files
