"""Smart-charging managers: priority orders that fill a site's limit, and price-aware charging.

Each manager is one `allocate(site)` function wrapped by `AllocatingManager`. They share
`fill`, which hands power out in a priority order while keeping every node of the site's
constraint tree — the site limit (grid connection, transformer, demand-response cap), each
phase of the supply where it has per-phase limits, each shared charger cabinet and each
connector — within its limit. Where an EV does not
say its departure and need (no ISO 15118), the manager estimates them from its settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from sim.ids import EvseId
from sim.managers.base import AllocatingManager, EvseStatus, EvseView, SiteView

__all__ = ["Estimates", "fill", "make_smart_manager"]

_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)
_HOUR_S = 3600.0
_STEPS_PER_KW = 10  # limits in 0.1 kW steps


class Estimates:
    """What a manager assumes for EVs that do not tell their departure and need."""

    def __init__(self, assumed_dwell_h: float, assumed_energy_kwh: float) -> None:
        """Assume a stay of `assumed_dwell_h` and a need of `assumed_energy_kwh`."""
        self.dwell_s = assumed_dwell_h * _HOUR_S
        self.energy_kwh = assumed_energy_kwh

    def departure_t_s(self, e: EvseView) -> float:
        """Known departure, or plug-in time plus the assumed stay."""
        if e.departure_t_s is not None:
            return e.departure_t_s
        return (e.plug_t_s or 0.0) + self.dwell_s

    def need_kwh(self, e: EvseView) -> float:
        """Known remaining need, or the assumed need less what was delivered."""
        if e.energy_need_kwh is not None:
            return e.energy_need_kwh
        return max(self.energy_kwh - e.energy_kwh, 0.0)

    @staticmethod
    def rate_kw(e: EvseView) -> float:
        """Most the EV can take now: what it says, else what it draws when not held back, else the connector."""
        if e.ev_max_kw is not None:
            return min(e.ev_max_kw, e.max_power_kw)
        if 0 < e.power_kw < 0.98 * e.limit_kw:
            return e.power_kw
        return e.max_power_kw


def fill(site: SiteView, order: Sequence[EvseView], want_kw: Mapping[EvseId, float], limit_kw: float) -> dict:
    """Give each connector in `order` what it wants, as far as the site, its phases and its cabinet allow.

    With per-phase limits (`SiteView.phase_limit_kw`, and a panel's in `SiteView.panels`) a
    single-phase connector gets at most what is left on its phase, any other three times what
    is left on its fullest phase, of the site's supply and of its panel.
    Limits are rounded down to 0.1 kW, the resolution chargers accept (OCPP limits come in
    tenths of an ampere or watt-level steps): it keeps every node within its limit and the
    number of distinct limits small.
    """
    left = limit_kw
    cabinet_left: dict[str, float] = {}
    out: dict[EvseId, float] = {}
    phased = site.phase_limit_kw < math.inf
    phase_left = [site.phase_limit_kw] * 3
    single = site.single_phase
    panels = site.panels
    panel_left: dict[int, list[float]] = {}
    for e in order:
        cab = cabinet_left.get(e.charger_id, e.charger_max_kw)
        cap = min(want_kw[e.evse_id], left, cab)
        p = single.get(e.evse_id)
        nodes = [phase_left] if phased else []  # the phase sets this connector draws on
        on_panel = panels.get(e.evse_id)
        if on_panel is not None:
            nodes.append(panel_left.setdefault(on_panel[0], [on_panel[1]] * 3))
        for node in nodes:
            cap = min(cap, node[p] if p is not None else 3 * min(node))
        kw = max(0.0, math.floor(cap * _STEPS_PER_KW) / _STEPS_PER_KW)
        out[e.evse_id] = kw
        left -= kw
        cabinet_left[e.charger_id] = cab - kw
        for node in nodes:
            if p is not None:
                node[p] -= kw
            else:
                for k in range(3):
                    node[k] -= kw / 3
    return out


def _active(site: SiteView) -> list[EvseView]:
    return [e for e in site.evses if e.status in _WANTS]


def _laxity_s(site: SiteView, est: Estimates, e: EvseView) -> float:
    """Time to departure less the time the need takes at full rate: the slack."""
    rate = Estimates.rate_kw(e)
    return est.departure_t_s(e) - site.t_s - (est.need_kwh(e) / rate * _HOUR_S if rate > 0 else math.inf)


def _price_responsive(site: SiteView, est: Estimates, price_at: Callable[[float], float]) -> dict:
    """Charge a session now only if this hour is among the cheapest hours that still meet its need."""
    active = sorted(_active(site), key=lambda e: (_laxity_s(site, est, e), e.evse_id))
    now = site.t_s
    want = {}
    for e in active:
        rate = Estimates.rate_kw(e)
        needed_s = est.need_kwh(e) / rate * _HOUR_S if rate > 0 else 0.0
        end = est.departure_t_s(e)
        slots: list[tuple[float, float, float]] = []
        t = now
        while t < end and len(slots) < 168:
            nxt = min(end, (math.floor(t / _HOUR_S) + 1) * _HOUR_S)
            slots.append((price_at(t), t, nxt - t))
            t = nxt
        chosen_now, covered = False, 0.0
        for _price, start, length in sorted(slots):
            if covered >= needed_s:
                break
            covered += length
            chosen_now = chosen_now or start == now
        want[e.evse_id] = rate if (chosen_now or end <= now) else 0.0
    return fill(site, active, want, site.limit_kw)


def make_smart_manager(kind: str, est: Estimates, price_at: Callable[[float], float], target_kw: float = math.inf):
    """The manager of one of the smart kinds, as an `AllocatingManager`."""
    if kind == "price_responsive":
        return AllocatingManager(lambda site: _price_responsive(site, est, price_at), on_price=True)
    keys: dict[str, Callable[[SiteView, EvseView], float]] = {
        "first_come_first_served": lambda site, e: e.plug_t_s or 0.0,
        "peak_shaving": lambda site, e: e.plug_t_s or 0.0,
        "earliest_deadline_first": lambda site, e: est.departure_t_s(e),
        "least_laxity_first": lambda site, e: _laxity_s(site, est, e),
    }
    key = keys[kind]

    def allocate(site: SiteView) -> Mapping[EvseId, float]:
        active = sorted(_active(site), key=lambda e: (key(site, e), e.evse_id))
        want = {e.evse_id: Estimates.rate_kw(e) for e in active}
        return fill(site, active, want, min(site.limit_kw, target_kw))

    return AllocatingManager(allocate)
