"""What every front door of the command line shares: usage errors, a progress bar, the title of a run.

`sim.cli` (the `chargetwin` command) and the subcommands it takes from `virtual_chargers` (``chargers``,
``csms``, ``conformance``, paced runs) all use these, so they live below both and no command module
imports another to get them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from sim.config import Scenario

__all__ = ["UsageError", "lazy_progress", "run_title"]


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def lazy_progress(
    console: Console, label: str, after_s: float = 1.0
) -> tuple[Callable[[float], None], Callable[[], None]]:
    """A progress callback that shows a bar only once the work has taken `after_s`."""
    started = time.perf_counter()
    state: dict[str, Any] = {}

    def update(fraction: float) -> None:
        if "bar" not in state:
            if time.perf_counter() - started < after_s:
                return
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            bar.start()
            state["bar"], state["task"] = bar, bar.add_task(label, total=1.0)
        state["bar"].update(state["task"], completed=fraction)

    def stop() -> None:
        if "bar" in state:
            state["bar"].stop()

    return update, stop


def _seconds(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:,.1f} s"


def run_title(scenario: Scenario, wall_s: float, simulating_s: float | None = None, paced: str = "") -> str:
    """The title of a run's summary: simulated time and the wall time it took (simulating, then writing)."""
    days = scenario.horizon_days
    took = f"{_seconds(wall_s)} wall time" + (
        f" ({_seconds(simulating_s)} simulating)" if simulating_s is not None else ""
    )
    return (
        f"{scenario.name}: {days:g} simulated day{'s' if days != 1 else ''}{paced} in {took}, "
        f"seed {scenario.seed}, {scenario.manager.kind}"
    )
