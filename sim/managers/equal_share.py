"""The `equal_share` manager: a site's capacity split equally among the sessions drawing power."""

from collections.abc import Mapping

from sim.ids import EvseId
from sim.managers.base import AllocatingManager, EvseStatus, SiteView

__all__ = ["EqualShare", "allocate_equal_share"]

_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)


def allocate_equal_share(site: SiteView) -> Mapping[EvseId, float]:
    """Give each charging connector ``limit_kw / n`` (n = connectors charging or paused by a limit)."""
    charging = [e.evse_id for e in site.evses if e.status in _WANTS]
    if not charging:
        return {}
    share_kw = site.limit_kw / len(charging)
    return dict.fromkeys(charging, share_kw)


class EqualShare(AllocatingManager):
    """Equal sharing of the site limit, re-run on every arrival, departure and full battery."""

    def __init__(self) -> None:
        """Allocate with `allocate_equal_share`."""
        super().__init__(allocate_equal_share)
