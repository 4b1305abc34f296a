"""The `equal_share` manager: a site's capacity split equally among the sessions drawing power."""

import math
from collections.abc import Mapping

from sim.ids import EvseId
from sim.managers.base import AllocatingManager, EvseStatus, SiteView

__all__ = ["EqualShare", "allocate_equal_share"]

_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)


def allocate_equal_share(site: SiteView) -> Mapping[EvseId, float]:
    """Give each charging connector ``limit_kw / n`` (n = connectors charging or paused by a limit).

    Where the site has per-phase limits (of its supply or of a panel), a phase that the equal
    shares would overload scales down every connector drawing on it, by its limit over that load;
    a connector on several such phases takes the smallest factor, so every phase is within its limit.
    """
    charging = [e.evse_id for e in site.evses if e.status in _WANTS]
    if not charging:
        return {}
    share_kw = site.limit_kw / len(charging)
    shares = dict.fromkeys(charging, share_kw)
    if site.phase_limit_kw == math.inf and not site.panels:
        return shares
    # Each node: (supply or panel, phase) → its limit and its load under equal shares.
    nodes: dict[tuple[int, int], list[float]] = {}
    on: dict[EvseId, list[tuple[int, int]]] = {}
    for evse_id in charging:
        p = site.single_phase.get(evse_id)
        phases = (p,) if p is not None else (0, 1, 2)
        per_phase_kw = share_kw if p is not None else share_kw / 3
        levels = [(-1, site.phase_limit_kw)]
        panel = site.panels.get(evse_id)
        if panel is not None:
            levels.append(panel)
        on[evse_id] = []
        for level, limit_kw in levels:
            for k in phases:
                node = nodes.setdefault((level, k), [limit_kw, 0.0])
                node[1] += per_phase_kw
                on[evse_id].append((level, k))
    factor = {key: min(1.0, limit_kw / load_kw) if load_kw > 0 else 1.0 for key, (limit_kw, load_kw) in nodes.items()}
    return {evse_id: share_kw * min(factor[key] for key in on[evse_id]) for evse_id in charging}


class EqualShare(AllocatingManager):
    """Equal sharing of the site limit, re-run on every arrival, departure and full battery."""

    def __init__(self) -> None:
        """Allocate with `allocate_equal_share`."""
        super().__init__(allocate_equal_share)
