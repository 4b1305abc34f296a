"""Invariants every manager keeps, on networks and events Hypothesis makes up.

Run for every manager of the registries (`REGISTRY`, `OPERATORS`) and for dynamic pricing, so a new
manager is covered as soon as it is registered. What is checked of the power a manager allocates
depends on what the manager says it does (`CLAIMS`): a manager not listed there is held to the
strictest claim, every node of the constraint tree within its limit.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as count_case
from hypothesis import strategies as st

from sim.config import (
    EqualShareManager,
    OcppManager,
    PeakShavingManager,
    UncontrolledManager,
    V2gPeakShavingManager,
    V2gPriceArbitrageManager,
)
from sim.config.revenue import DemandPricing, EnergyPricePricing, OccupancyPricing, Tariff
from sim.config.serviceability import PreventiveOperator
from sim.ids import ChargerId, EvseId, SessionId, SiteId
from sim.managers import OPERATORS, REGISTRY, build_manager, build_operator
from sim.managers.base import (
    ChangeAvailability,
    ClearChargingProfile,
    DemandResponseEnded,
    DemandResponseNotified,
    DemandResponseStarted,
    DispatchTechnician,
    EvseStatus,
    EvseView,
    FaultReported,
    OptOutDemandResponse,
    PriceChanged,
    RejectSession,
    RepairCompleted,
    Reset,
    ScheduleMaintenance,
    SessionStarted,
    SessionStopped,
    SetChargingProfile,
    SetPowerLimit,
    SetTariff,
    SetTimer,
    SiteLimitChanged,
    SiteView,
    StatusChanged,
    Tick,
    Timer,
    V2gView,
)
from sim.managers.pricing import DynamicPricing
from sim.managers.testing import StaticNetwork, limits_after
from tests.conftest import examples

EXAMPLES = examples(200)  # per manager; about a second each (20 in the fast lane)
H = 3600.0
DRAWING = (EvseStatus.CHARGING, EvseStatus.SUSPENDED_EVSE)  # statuses in which an EV draws or is held back
TOL_KW = 1e-9

# What each manager says of the power it allocates, after an event it re-allocates on:
#   "nothing": it sends no command at all (uncontrolled: every EV at its maximum, limits ignored);
#   "none": it allocates no power (it does something else: operations, prices);
#   "site": the site's drawing connectors, each at most its limit, its rating and its EV's maximum, sum to at
#           most the site's limit;
#   "every_node": each drawing connector's limit is within its rating and its EV's maximum, and the limits sum
#           to at most the site's limit and, per charger, to at most the shared cabinet's rating;
#   "v2g": "every_node" for the charging limits, and a negative limit (discharge) only for a V2G EV with headroom
#           above its floor, at most its discharge power, never during a demand-response increase event, and
#           with the discharges together within the export limit plus what the charging draws.
CLAIMS: dict[type, str] = {
    UncontrolledManager: "nothing",
    EqualShareManager: "site",
    V2gPeakShavingManager: "v2g",
    V2gPriceArbitrageManager: "v2g",
}
# Settings a manager's config needs beyond its `kind`.
SETTINGS: dict[type, dict[str, object]] = {
    PeakShavingManager: {"target_kw": 40.0},
    PreventiveOperator: {"interval_days": 3.0},
    V2gPeakShavingManager: {"threshold_kw": 40.0},
    V2gPriceArbitrageManager: {"charge_below_per_kwh": 0.15, "discharge_above_per_kwh": 0.3},
}
# Managers that do not run in-process.
NOT_IN_PROCESS = {OcppManager: "the CSMS is the manager; tests/virtual_chargers drive it over the wire"}
REALLOCATING = (
    SessionStarted,
    StatusChanged,
    SessionStopped,
    SiteLimitChanged,
    DemandResponseStarted,
    DemandResponseEnded,
    FaultReported,
)


def _config(cls: type) -> object:
    kind = typing.get_args(cls.model_fields["kind"].annotation)[0]  # type: ignore[attr-defined]
    return cls.model_validate({"kind": kind, **SETTINGS.get(cls, {})})  # type: ignore[attr-defined]


def _pricing(cfg: object) -> Callable[[StaticNetwork], object]:
    """Dynamic pricing of every site of the network, each starting from its own price."""
    return lambda net: DynamicPricing(cfg, {sid: Tariff(price_per_kwh=0.1 * k) for k, sid in enumerate(net.site_ids())})  # type: ignore[arg-type]


def _managers() -> list:
    out = []
    for cls in REGISTRY:
        if cls not in NOT_IN_PROCESS:
            cfg = _config(cls)
            out.append(pytest.param(lambda net, cfg=cfg: build_manager(cfg, _price_at), CLAIMS.get(cls, "every_node"),
                                    id=cfg.kind))  # type: ignore[attr-defined]  # fmt: skip
    for cls in OPERATORS:
        cfg = _config(cls)
        out.append(pytest.param(lambda net, cfg=cfg: build_operator(cfg), "none", id=f"operator:{cfg.kind}"))  # type: ignore[attr-defined]
    band = {"floor_per_kwh": 0.2, "ceiling_per_kwh": 0.8}
    for cfg in (
        OccupancyPricing(kind="occupancy", **band),
        DemandPricing(kind="demand_based", **band),
        EnergyPricePricing(kind="follow_energy_price", markup=1.5, **band),
    ):
        out.append(pytest.param(_pricing(cfg), "none", id=f"pricing:{cfg.kind}"))
    return out


def _price_at(t_s: float) -> float:
    """A day-ahead curve with a cheap night and an expensive evening, hour by hour."""
    return (0.10, 0.12, 0.30, 0.45, 0.25, 0.20)[int(t_s // H) % 6]


def test_every_registered_manager_is_covered():
    """Each registered manager is built here, or says why it cannot run in-process."""
    for cls in (*REGISTRY, *OPERATORS):
        if cls not in NOT_IN_PROCESS:
            assert _config(cls) is not None


# ---------------------------------------------------------------- strategies

ratings_kw = st.sampled_from([3.7, 7.4, 11.0, 22.0, 50.0, 150.0, 350.0]) | st.floats(1.0, 400.0)
limit_kw = st.just(math.inf) | st.floats(0.0, 400.0)


@st.composite
def connector(draw, evse_id: str, charger_id: str, rating_kw: float, cabinet_kw: float, t_s: float, session: int):
    """One connector: empty, or with an EV in any status, with or without ISO 15118 data."""
    lim = draw(limit_kw)
    if not draw(st.booleans()):
        status = draw(st.sampled_from([EvseStatus.AVAILABLE, EvseStatus.FAULTED, EvseStatus.UNAVAILABLE]))
        return EvseView(EvseId(evse_id), ChargerId(charger_id), status, rating_kw, lim, 0.0, None, cabinet_kw)
    status = draw(st.sampled_from([*DRAWING, EvseStatus.SUSPENDED_EV, EvseStatus.PREPARING]))
    power = draw(st.floats(0.0, min(lim, rating_kw))) if status is EvseStatus.CHARGING else 0.0
    iso = draw(st.booleans())
    return EvseView(
        EvseId(evse_id),
        ChargerId(charger_id),
        status,
        rating_kw,
        lim,
        power,
        SessionId(session),
        cabinet_kw,
        plug_t_s=draw(st.floats(0.0, t_s)),
        energy_kwh=draw(st.floats(0.0, 120.0)),
        departure_t_s=draw(st.floats(max(t_s - 2 * H, 0.0), t_s + 48 * H)) if iso else None,
        energy_need_kwh=draw(st.floats(0.0, 120.0)) if iso else None,
        ev_max_kw=draw(st.floats(1.0, 350.0)) if iso else None,
    )


@st.composite
def site(draw, site_id: str, t_s: float, first_session: int) -> SiteView:
    """A site of 1-3 chargers of 1-4 connectors, some on a shared cabinet, under a grid limit, a DR cap and PV."""
    evses: list[EvseView] = []
    for c in range(1, draw(st.integers(1, 3)) + 1):
        n = draw(st.integers(1, 4))
        rating = draw(ratings_kw)
        cabinet = draw(st.just(math.inf) | st.floats(rating, rating * n))
        for k in range(1, n + 1):
            evses.append(draw(connector(f"{site_id}.{c:02d}.{k}", f"{site_id}.{c:02d}", rating, cabinet, t_s,
                                        first_session + len(evses))))  # fmt: skip
    capacity = draw(st.floats(0.0, 1500.0))
    dr_cap = draw(st.just(math.inf) | st.floats(0.0, capacity))
    pv = draw(st.just(0.0) | st.floats(0.0, 200.0))
    v2g = {e.evse_id: draw(v2g_view(e, t_s)) for e in evses if e.session_id is not None and draw(st.booleans())}
    return SiteView(
        SiteId(site_id),
        capacity,
        tuple(evses),
        limit_kw=min(capacity, dr_cap) + pv,
        dr_cap_kw=dr_cap,
        t_s=t_s,
        price_per_kwh=_price_at(t_s),
        waiting=draw(st.integers(0, 5)),
        pv_kw=pv,
        grid_limit_kw=capacity,
        v2g=v2g,
        export_limit_kw=draw(st.just(math.inf) | st.floats(0.0, 300.0)),
        dr_min_kw=draw(st.sampled_from([0.0, 0.0, 0.0, 25.0])),  # an increase event now and then
        export_price_per_kwh=draw(st.floats(0.0, 0.5)),
    )


@st.composite
def v2g_view(draw, e: EvseView, t_s: float) -> V2gView:
    """A V2G-capable EV on the connector: its limits, SoC, floor and guard (any order of the three)."""
    guard = draw(st.floats(0.0, 0.7))
    min_soc = draw(st.floats(0.0, 0.6))
    return V2gView(
        max_discharge_kw=draw(st.floats(0.5, min(e.max_power_kw, 200.0))),
        soc_frac=draw(st.floats(0.0, 1.0) | st.floats(0.6, 1.0)),
        capacity_kwh=draw(st.floats(20.0, 150.0)),
        min_soc_frac=min_soc,
        departure_soc_frac=draw(st.floats(0.0, 1.0)),
        departure_t_s=draw(st.floats(t_s, t_s + 48 * H)),
        floor_soc_frac=max(min_soc, guard),
        full_kw=draw(st.floats(0.0, 350.0)),
        guard_soc_frac=guard,
    )


@st.composite
def network(draw) -> StaticNetwork:
    t_s = draw(st.floats(0.0, 7 * 24 * H))
    a = draw(site("a", t_s, 1))
    sites = [a]
    if draw(st.booleans()):
        sites.append(draw(site("b", t_s, 1 + len(a.evses))))
    return StaticNetwork(sites, t_s=t_s, price_at=_price_at)


@st.composite
def event(draw, net: StaticNetwork):
    """Any event a manager may see, about a site and connector of `net`, at the network's time."""
    t = net.t_s
    s = net.site(draw(st.sampled_from(net.site_ids())))
    e = draw(st.sampled_from(s.evses))
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return SessionStarted(t, s.site_id, e.evse_id, e.session_id if e.session_id is not None else SessionId(0))
    if kind == 1:
        return StatusChanged(t, s.site_id, e.evse_id, e.status)
    if kind == 2:
        return SessionStopped(t, s.site_id, e.evse_id, SessionId(99), draw(st.floats(0.0, 100.0)))
    if kind == 3:
        return SiteLimitChanged(t, s.site_id, s.limit_kw)
    if kind == 4:
        return DemandResponseStarted(t, s.site_id, s.dr_cap_kw)
    if kind == 5:
        return DemandResponseEnded(t, s.site_id)
    if kind == 6:
        return FaultReported(t, s.site_id, e.charger_id, 1, "m", "InternalError", (e.evse_id,), draw(st.booleans()))
    if kind == 7:
        return RepairCompleted(t, s.site_id, e.charger_id, 1, "technician")
    if kind == 8:
        return PriceChanged(t, _price_at(t))
    if kind == 9:
        return DemandResponseNotified(t, s.site_id, t + H, t + 2 * H, 10.0, None, True, 1)
    if kind == 10:
        return Tick(t)
    if kind == 11:
        return Timer(t, "start")
    return Timer(t, "pricing")


# ---------------------------------------------------------------- checks


def _well_formed(command: object, net: StaticNetwork) -> None:
    evses = {e.evse_id for sid in net.site_ids() for e in net.site(sid).evses}
    v2g = {k for sid in net.site_ids() for k in net.site(sid).v2g}
    chargers = {e.charger_id for sid in net.site_ids() for e in net.site(sid).evses}
    for f in fields(command):  # type: ignore[arg-type]
        value = getattr(command, f.name)
        if isinstance(value, float):
            assert not math.isnan(value), command
    match command:
        case SetPowerLimit(evse_id, power_kw):
            assert evse_id in evses
            assert power_kw >= 0 or evse_id in v2g, "only a V2G EV is asked to discharge"
        case ChangeAvailability(evse_id=evse_id) | RejectSession(evse_id=evse_id):
            assert evse_id in evses
        case (
            SetChargingProfile(evse_id=evse_id, charger_id=charger_id)
            | ClearChargingProfile(evse_id=evse_id, charger_id=charger_id)
        ):
            assert evse_id in evses or charger_id in chargers
        case Reset(charger_id) | DispatchTechnician(charger_id=charger_id) | ScheduleMaintenance(charger_id=charger_id):
            assert charger_id in chargers
        case SetTariff(site_id=site_id) | OptOutDemandResponse(site_id=site_id):
            assert site_id in net.site_ids()
        case SetTimer(t_s=t_s):
            assert t_s >= net.t_s
        case _:
            raise AssertionError(f"not a command: {command!r}")


def _ev_max_kw(e: EvseView) -> float:
    return min(e.max_power_kw, e.ev_max_kw if e.ev_max_kw is not None else math.inf)


def _check_power(claim: str, s: SiteView, commands: list) -> None:
    limits = limits_after(s, commands)
    sent = {c.evse_id: c.power_kw for c in commands if isinstance(c, SetPowerLimit)}
    drawing = [e for e in s.evses if e.session_id is not None and e.status in DRAWING]
    # A connector without a drawing EV is given no share: if a limit goes to it, it is none (0) or lifted (inf),
    # or, from a V2G manager, a discharge of a V2G EV.
    for e in s.evses:
        if e not in drawing and e.evse_id in sent:
            assert sent[e.evse_id] in (0.0, math.inf) or (claim == "v2g" and e.evse_id in s.v2g), e
    if claim == "v2g":
        _check_v2g(s, drawing, limits)
        return
    if claim == "site":
        power = {e.evse_id: min(limits[e.evse_id], _ev_max_kw(e)) for e in drawing}
        assert sum(power.values()) <= s.limit_kw * (1 + TOL_KW) + TOL_KW
    elif claim == "every_node":
        for e in drawing:
            assert 0.0 <= limits[e.evse_id] <= _ev_max_kw(e), e
        assert sum(limits[e.evse_id] for e in drawing) <= s.limit_kw + TOL_KW
        for charger in {e.charger_id for e in drawing}:
            on_it = [e for e in drawing if e.charger_id == charger]
            assert sum(limits[e.evse_id] for e in on_it) <= on_it[0].charger_max_kw + TOL_KW, charger


def _check_v2g(s: SiteView, drawing: list[EvseView], limits: dict[EvseId, float]) -> None:
    """Charging within every node; discharge only from V2G EVs with headroom, within their power and the export."""
    charging = [e for e in drawing if limits[e.evse_id] >= 0]
    for e in charging:  # a V2G EV may get the port's rating, to follow its full curve back to its guarantee
        assert limits[e.evse_id] <= (e.max_power_kw if e.evse_id in s.v2g else _ev_max_kw(e)), e
    assert sum(limits[e.evse_id] for e in charging) <= s.limit_kw + TOL_KW
    for charger in {e.charger_id for e in charging}:
        on_it = [e for e in charging if e.charger_id == charger]
        assert sum(limits[e.evse_id] for e in on_it) <= on_it[0].charger_max_kw + TOL_KW, charger
    out_kw = 0.0
    for e in s.evses:
        if limits[e.evse_id] < 0:
            v = s.v2g[e.evse_id]
            assert v.headroom_kwh > 0, "no discharge at or below the floor"
            assert -limits[e.evse_id] <= v.max_discharge_kw + TOL_KW
            out_kw -= limits[e.evse_id]
    count_case("V2G EVs discharge" if out_kw > 0 else "no discharge")
    if out_kw > 0:
        assert s.dr_min_kw == 0, "no discharge while the site is asked to draw"
        drawn = sum(min(limits[e.evse_id], _ev_max_kw(e)) for e in charging)
        assert out_kw <= max(s.export_limit_kw + drawn - s.pv_kw, 0.0) + TOL_KW or out_kw <= drawn + TOL_KW


@pytest.mark.parametrize(("make", "claim"), _managers())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_manager_invariants(make, claim, data):
    """Commands are well-formed, power stays within every limit the manager claims, and the same input repeats."""
    net = data.draw(network())
    events = data.draw(st.lists(event(net), min_size=1, max_size=4))
    first, second = make(net), make(net)
    for ev in events:
        commands = list(first.handle(ev, net))
        assert commands == list(second.handle(ev, net)), "same events, same network: same commands"
        for c in commands:
            _well_formed(c, net)
        if claim == "nothing":
            assert commands == []
        elif claim != "none" and isinstance(ev, REALLOCATING):
            _check_power(claim, net.site(ev.site_id), commands)
