"""Reference V2G managers: peak shaving and price arbitrage with bidirectional charging.

Both re-plan a site on every session event, demand-response signal and price change, and every
`interval_s` (a charge curve moves the load between events). Both keep the departure-SoC
guarantees: an EV is *urgent* when its slack — time to departure less the time its need (for a
V2G EV: its guarantee) takes at full power — is under two intervals, and an urgent EV charges
first, at its full power, whatever the threshold or the price, and never discharges, even when it
is full at its target (urgency is judged from its SoC and guard, not from what it does now). Power
is handed out with `sim.managers.smart.fill`, so every node of the site's constraint tree stays
within its limit;
discharging is commanded only for V2G EVs with headroom above their floor (`SiteView.v2g`) and
never while a demand-response increase event asks the site to draw (`SiteView.dr_min_kw`).

* `v2g_peak_shaving`: charging that is not urgent fits under `threshold_kw`; when the urgent load
  alone is above it, V2G EVs that are not urgent discharge to bring the site's import back to the
  threshold (never into export). Below the threshold the V2G EVs recharge.
* `v2g_price_arbitrage`: V2G EVs that are not urgent charge while the energy price is at or below
  `charge_below_per_kwh`, idle in between, and discharge while the energy price or the feed-in
  price is at or above `discharge_above_per_kwh`, within the site's export limit. EVs without V2G
  charge as least-laxity-first does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from sim.ids import EvseId
from sim.managers.base import (
    Command,
    DemandResponseNotified,
    Event,
    EvseStatus,
    EvseView,
    NetworkView,
    PriceChanged,
    RepairCompleted,
    SetPowerLimit,
    SetTimer,
    SiteView,
    Tick,
    Timer,
    V2gView,
)
from sim.managers.smart import Estimates, fill

__all__ = ["V2gManager", "allocate_peak_shaving", "allocate_price_arbitrage"]

_WANTS = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)
_HOUR_S = 3600.0
_TIMER = "v2g"
_MIN_DISCHARGE_KW = 1.0  # less is not worth a command
_MIN_HEADROOM_KWH = 0.01
_STEPS_PER_KW = 10  # limits in 0.1 kW steps, as `fill` gives them

Allocate = Callable[[SiteView], Mapping[EvseId, float]]


class V2gManager:
    """Runs `allocate` for a site on its events and for every site every `interval_s`; sends the limits that changed."""

    def __init__(self, allocate: Allocate, interval_s: float) -> None:
        """Re-plan with `allocate(site) -> {evse_id: power_kw}` (negative: discharge; left out: unlimited)."""
        self._allocate = allocate
        self._interval_s = interval_s

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Re-plan the event's site, or every site on a price change and on its timer."""
        if isinstance(event, Timer):
            if event.name not in ("start", _TIMER):
                return ()
            out: list[Command] = [SetTimer(event.t_s + self._interval_s, _TIMER)]
            return out + [c for sid in network.site_ids() for c in self._commands(network.site(sid))]
        if isinstance(event, PriceChanged):
            return [c for sid in network.site_ids() for c in self._commands(network.site(sid))]
        if isinstance(event, Tick | RepairCompleted | DemandResponseNotified):
            return ()
        return self._commands(network.site(event.site_id))

    def _commands(self, site: SiteView) -> list[Command]:
        limits = self._allocate(site)
        out: list[Command] = []
        for e in site.evses:
            kw = limits.get(e.evse_id, math.inf)
            if kw != e.limit_kw:
                out.append(SetPowerLimit(e.evse_id, kw))
        return out


def _v2g_slack_s(v: V2gView) -> float:
    """A V2G EV's slack: how long its SoC above its departure guard lasts at full power."""
    guard_kwh = max(v.soc_frac - v.guard_soc_frac, 0.0) * v.capacity_kwh
    return guard_kwh / v.full_kw * _HOUR_S if v.full_kw > 0 else math.inf


def _slack_s(site: SiteView, est: Estimates, e: EvseView) -> float:
    """Time to departure less the time the EV's need takes at full power; for a V2G EV, its need is its guarantee."""
    v = site.v2g.get(e.evse_id)
    if v is not None:
        return _v2g_slack_s(v)
    rate = Estimates.rate_kw(e)
    need_s = est.need_kwh(e) / rate * _HOUR_S if rate > 0 else math.inf
    return est.departure_t_s(e) - site.t_s - need_s


def _wants(site: SiteView, urgent: list[EvseView], rest: list[EvseView]) -> dict[EvseId, float]:
    """What each EV asks for: its rate now; an urgent V2G EV the port's rating, so it follows its full curve.

    A limit at its power now would hold a V2G EV back where its curve rises, and its guard assumes the full curve.
    """
    want = {e.evse_id: Estimates.rate_kw(e) for e in rest}
    for e in urgent:
        want[e.evse_id] = e.max_power_kw if e.evse_id in site.v2g else Estimates.rate_kw(e)
    return want


def _split(site: SiteView, est: Estimates, interval_s: float) -> tuple[list[EvseView], list[EvseView]]:
    """The EVs that want power, urgent first then the rest, each in order of slack."""
    active = sorted(
        (e for e in site.evses if e.session_id is not None and e.status in _WANTS),
        key=lambda e: (_slack_s(site, est, e), e.evse_id),
    )
    urgent = [e for e in active if _slack_s(site, est, e) < 2 * interval_s]
    return urgent, [e for e in active if e not in urgent]


def _discharge(
    site: SiteView, alloc: dict[EvseId, float], skip: set[EvseId], budget_kw: float, interval_s: float
) -> dict[EvseId, float]:
    """Discharge V2G EVs not in `skip` and not urgent, most headroom first, for at most `budget_kw` together.

    Urgent is judged from the EV's SoC and guard alone, as `_split` does for the EVs that want power:
    an urgent EV at its target (SuspendedEV) is not discharged either. Otherwise it would be
    discharged while full and charged back, as urgent, at the next re-plan, in turn.
    """
    if site.dr_min_kw > 0:
        return alloc
    candidates = sorted(
        (v.headroom_kwh, k)
        for k, v in site.v2g.items()
        if k not in skip
        and alloc.get(k, 0.0) <= 0
        and v.headroom_kwh > _MIN_HEADROOM_KWH
        and _v2g_slack_s(v) >= 2 * interval_s
    )
    for _, k in reversed(candidates):
        kw = math.floor(min(site.v2g[k].max_discharge_kw, budget_kw) * _STEPS_PER_KW) / _STEPS_PER_KW
        if kw < _MIN_DISCHARGE_KW:
            break
        alloc[k] = -kw
        budget_kw -= kw
    return alloc


def _drawn_kw(site: SiteView, alloc: Mapping[EvseId, float]) -> float:
    """What the allocated charging draws at most: each limit, or the EV's own rate if lower."""
    return sum(min(alloc.get(e.evse_id, 0.0), Estimates.rate_kw(e)) for e in site.evses if alloc.get(e.evse_id, 0) > 0)


def _idle_v2g(site: SiteView, alloc: dict[EvseId, float]) -> dict[EvseId, float]:
    """V2G EVs given nothing are held at 0 (not left unlimited)."""
    for k in site.v2g:
        alloc.setdefault(k, 0.0)
    return alloc


def allocate_peak_shaving(site: SiteView, est: Estimates, threshold_kw: float, interval_s: float) -> dict:
    """Urgent EVs at full power; the rest under `threshold_kw`; V2G EVs discharge what the urgent load puts above it.

    Which EVs discharge depends on the urgent load and their headroom only, not on whether they
    charge or discharge now, so a re-plan at the same instant decides the same.
    """
    urgent, rest = _split(site, est, interval_s)
    want = _wants(site, urgent, rest)
    first = fill(site, urgent, want, site.limit_kw)  # the urgent EVs come first in the fill below too
    urgent_kw = sum(first.values())
    alloc: dict[EvseId, float] = {}
    over_kw = _drawn_kw(site, first) - site.pv_kw - threshold_kw  # import above the threshold: the urgent load's
    if over_kw > 0:
        alloc = _discharge(site, alloc, set(first), over_kw, interval_s)
    order = urgent + [e for e in rest if e.evse_id not in alloc]
    alloc.update(fill(site, order, want, min(site.limit_kw, max(threshold_kw, urgent_kw))))
    return _idle_v2g(site, alloc)


def allocate_price_arbitrage(
    site: SiteView, est: Estimates, charge_below: float, discharge_above: float, interval_s: float
) -> dict:
    """Urgent EVs and EVs without V2G charge; V2G EVs charge when cheap and give back when dear."""
    urgent, rest = _split(site, est, interval_s)
    cheap = site.price_per_kwh <= charge_below
    rest = [e for e in rest if cheap or e.evse_id not in site.v2g]
    order = urgent + rest
    want = _wants(site, urgent, rest)
    alloc = fill(site, order, want, site.limit_kw)
    if max(site.price_per_kwh, site.export_price_per_kwh) >= discharge_above:
        budget_kw = site.export_limit_kw + _drawn_kw(site, alloc) - site.pv_kw
        alloc = _discharge(site, alloc, {e.evse_id for e in urgent}, budget_kw, interval_s)
    return _idle_v2g(site, alloc)
