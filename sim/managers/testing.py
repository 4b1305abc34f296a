"""Hand-made network views, to test a manager without running a simulation.

A manager reads only the views of `sim.managers.base`, so small networks written by hand
exercise it fully: build `SiteView`s (with `port` for their connectors), wrap them in a
`StaticNetwork`, call `handle`, and read the resulting limits with `limits_after`.

    site = SiteView(SiteId("a"), 50.0, (port("a.01.1", 22.0, session=1),), limit_kw=50.0)
    commands = manager.handle(SessionStarted(0.0, site.site_id, EvseId("a.01.1"), SessionId(1)),
                              StaticNetwork([site]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from sim.ids import ChargerId, EvseId, SessionId, SiteId
from sim.managers.base import Command, EvseStatus, EvseView, SetPowerLimit, SiteView

__all__ = ["StaticNetwork", "limits_after", "port"]


class StaticNetwork:
    """A `NetworkView` over fixed site snapshots and an energy price function."""

    def __init__(
        self, sites: Iterable[SiteView], t_s: float = 0.0, price_at: Callable[[float], float] = lambda t_s: 0.0
    ) -> None:
        """The network of `sites` (in this order) at time `t_s`, with the energy price `price_at(t_s)`."""
        self._sites = {s.site_id: s for s in sites}
        self._t_s = t_s
        self._price_at = price_at

    @property
    def t_s(self) -> float:
        """Time in seconds since the scenario start."""
        return self._t_s

    def site(self, site_id: SiteId) -> SiteView:
        """The snapshot of `site_id`."""
        return self._sites[site_id]

    def site_ids(self) -> tuple[SiteId, ...]:
        """Every site, in the order given."""
        return tuple(self._sites)

    def price_at(self, t_s: float) -> float:
        """The energy price at `t_s`."""
        return self._price_at(t_s)


def port(
    evse_id: str,
    max_power_kw: float,
    *,
    session: int | None = None,
    status: EvseStatus | None = None,
    charger_id: str | None = None,
    limit_kw: float = math.inf,
    power_kw: float = 0.0,
    charger_max_kw: float = math.inf,
    plug_t_s: float | None = None,
    energy_kwh: float = 0.0,
    departure_t_s: float | None = None,
    energy_need_kwh: float | None = None,
    ev_max_kw: float | None = None,
) -> EvseView:
    """One connector: charging when it has a `session`, available otherwise, unless `status` says.

    The charger is the id up to its last dot (``"a.01.2"`` is on ``"a.01"``) unless `charger_id` says.
    """
    if status is None:
        status = EvseStatus.CHARGING if session is not None else EvseStatus.AVAILABLE
    return EvseView(
        evse_id=EvseId(evse_id),
        charger_id=ChargerId(charger_id if charger_id is not None else evse_id.rsplit(".", 1)[0]),
        status=status,
        max_power_kw=max_power_kw,
        limit_kw=limit_kw,
        power_kw=power_kw,
        session_id=SessionId(session) if session is not None else None,
        charger_max_kw=charger_max_kw,
        plug_t_s=plug_t_s,
        energy_kwh=energy_kwh,
        departure_t_s=departure_t_s,
        energy_need_kwh=energy_need_kwh,
        ev_max_kw=ev_max_kw,
    )


def limits_after(site: SiteView, commands: Sequence[Command]) -> dict[EvseId, float]:
    """Each connector's power limit once `commands` are applied: the site's limits, overridden in order."""
    limits = {e.evse_id: e.limit_kw for e in site.evses}
    for c in commands:
        if isinstance(c, SetPowerLimit) and c.evse_id in limits:
            limits[c.evse_id] = c.power_kw
    return limits
