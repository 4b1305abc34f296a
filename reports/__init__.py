"""Turn one run's results folder into a Markdown and a self-contained HTML report.

Reads the result tables the simulator wrote and nothing else; it never imports ``sim``.
"""

from reports.report import render

__all__ = ["render"]
