"""A report as plain data, written out as Markdown or as self-contained HTML."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FigureRef", "Report", "Section", "Table", "to_html", "to_markdown"]

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;font-size:.85rem;margin-bottom:.5rem}"
    "th,td{border:1px solid #ccc;padding:.2rem .5rem}td.num{text-align:right}th{background:#f3f3f3}"
    ".warnings{border:2px solid #d9822b;background:#fff6ec;padding:.5rem 1rem;margin:1rem 0}"
    "img{max-width:100%}figure{margin:1.5rem 0}figcaption,p.note{color:#555;font-size:.9rem}"
)


@dataclass(frozen=True)
class Table:
    """A titled table of formatted strings; the first ``label_columns`` columns are text, the rest numbers."""

    title: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    label_columns: int = 1
    note: str = ""


@dataclass(frozen=True)
class FigureRef:
    """A figure's PNG bytes, the file name it is written to, and its one-line caption."""

    file_name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Section:
    """A titled part after the main figures, with its own tables and figures (e.g. serviceability)."""

    title: str
    tables: Sequence[Table]
    figures: Sequence[FigureRef]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, already formatted; ``sections`` follow the main figures."""

    title: str
    run_line: str
    tables: list[Table]
    figures: list[FigureRef]
    sections: Sequence[Section] = ()
    warnings: Sequence[str] = ()
    """Problems to read first (`reports.alerts`), shown in a box under the run line."""


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|")


def _md_table(table: Table, heading: str) -> list[str]:
    align = ["---"] * table.label_columns + ["---:"] * (len(table.headers) - table.label_columns)
    lines = [f"{heading} {table.title}", "", "| " + " | ".join(map(_md_cell, table.headers)) + " |"]
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    return lines + (["", table.note, ""] if table.note else [""])


def _md_figure(figure: FigureRef) -> list[str]:
    return [f"![{figure.file_name.removesuffix('.png')}]({figure.file_name})", "", f"*{figure.caption}*", ""]


def to_markdown(report: Report) -> str:
    """The report as Markdown, with figures linked as PNG files next to it."""
    lines = [f"# {report.title}", "", report.run_line, ""]
    if report.warnings:
        lines += ["> **Warnings**", ">", *(f"> - {w}" for w in report.warnings), ""]
    for table in report.tables:
        lines += _md_table(table, "##")
    lines += ["## Figures", ""]
    for figure in report.figures:
        lines += _md_figure(figure)
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for table in section.tables:
            lines += _md_table(table, "###")
        for figure in section.figures:
            lines += _md_figure(figure)
    return "\n".join(lines)


def _html_table(table: Table, level: int = 2) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c)}</td>" if i < table.label_columns else f'<td class="num">{html.escape(c)}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>\n"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>\n' if table.note else ""
    return f"<h{level}>{html.escape(table.title)}</h{level}>\n<table>\n<tr>{head}</tr>\n{body}</table>\n{note}"


def _html_figure(figure: FigureRef) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = html.escape(figure.caption)
    image = f'<img src="data:image/png;base64,{data}" alt="{caption}">'
    return f"<figure>{image}\n<figcaption>{caption}</figcaption></figure>\n"


def _html_section(section: Section) -> str:
    tables = "".join(_html_table(table, level=3) for table in section.tables)
    return f"<h2>{html.escape(section.title)}</h2>\n{tables}{''.join(map(_html_figure, section.figures))}"


def _html_warnings(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f'<div class="warnings"><strong>Warnings</strong>\n<ul>{items}</ul></div>\n'


def to_html(report: Report) -> str:
    """The report as one HTML file: inline CSS, figures embedded as base64 PNG, no external assets."""
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{html.escape(report.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        f"<h1>{html.escape(report.title)}</h1>\n<p>{html.escape(report.run_line)}</p>\n",
        _html_warnings(report.warnings),
        *map(_html_table, report.tables),
        "<h2>Figures</h2>\n",
        *map(_html_figure, report.figures),
        *map(_html_section, report.sections),
        "</body>\n</html>\n",
    ]
    return "".join(parts)
