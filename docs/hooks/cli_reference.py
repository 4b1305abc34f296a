"""MkDocs hook: writes the command-line reference from the `chargetwin` argument parser at build time.

Each command's section is its `--help` text, so the page lists exactly the options the program takes.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["PAGE", "on_files", "render"]

PAGE = "reference/cli.md"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def render(parser: argparse.ArgumentParser) -> str:
    """The reference page (Markdown) of the command line `parser`, one section per command."""
    out = [
        "# Command-line reference",
        "",
        "Every `chargetwin` command with its options, as `chargetwin COMMAND --help` prints them (this page is",
        "generated from the program itself when the documentation is built). The [command line](../guide/cli.md)",
        "guide explains what the commands have in common; the [virtual chargers](../ocpp/virtual-chargers.md)",
        "and [conformance](../ocpp/conformance.md) pages explain the OCPP commands.",
        "",
        "## chargetwin",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    for name, sub in _subcommands(parser).items():
        out += [f"## chargetwin {name} {{#{name}}}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated command-line reference to the site."""
    from mkdocs.structure.files import File

    from sim.cli import _parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # the same wrapping on every machine
    try:
        content = render(_parser())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    files.append(File.generated(config, PAGE, content=content))
    return files
