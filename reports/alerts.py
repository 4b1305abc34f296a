"""What a planner must not miss in a run: grid overloads, lost drivers, ports below the uptime target.

Read from kpis.json alone, so the command line and the report say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_NAMED", "run_warnings"]

MAX_NAMED = 3
"""Sites named in a warning line; the others are counted."""


def _named(items: list[tuple[str, str]]) -> str:
    shown = ", ".join(text for _, text in items[:MAX_NAMED])
    more = len(items) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def run_warnings(kpis: Mapping[str, Any]) -> list[str]:
    """One line per kind of problem the run shows; none when it shows none."""
    out: list[str] = []
    grid_sites = kpis.get("grid", {}).get("sites", {})
    sites = kpis.get("sites", {})
    over = sorted(
        ((sid, k) for sid, k in grid_sites.items() if k.get("overload_minutes", 0) > 0),
        key=lambda x: (-x[1]["overload_minutes"], x[0]),
    )
    if over:
        parts = [(sid, f"{sid} {k['overload_minutes']:,.0f} min, worst +{k['overload_max_excess_kw']:,.1f} kW")
                 for sid, k in over]  # fmt: skip
        out.append(
            f"grid limit exceeded at {len(over)} site{'s' if len(over) > 1 else ''} "
            f"(15-minute import above the connection or transformer): {_named(parts)}"
        )
    lost = sorted(
        ((sid, k["sessions_balked"] + k["sessions_reneged"]) for sid, k in sites.items()
         if k["sessions_balked"] + k["sessions_reneged"] > 0),
        key=lambda x: (-x[1], x[0]),
    )  # fmt: skip
    if lost:
        parts = [(sid, f"{sid} {n:,}") for sid, n in lost]
        out.append(
            f"drivers lost (balked or reneged) at {len(lost)} site{'s' if len(lost) > 1 else ''}: {_named(parts)}"
        )
    svc = kpis.get("serviceability")
    if svc is not None:
        ports = kpis["network"]["ports"]
        below = round((1.0 - svc["ports_meeting_target_share"]) * ports)
        if below:
            out.append(
                f"{below:,} of {ports:,} port{'s' if ports > 1 else ''} below {svc['uptime_target_pct']:g} % uptime "
                f"(NEVI; lowest {svc['port_uptime_min_pct']:.2f} %)"
            )
    return out
