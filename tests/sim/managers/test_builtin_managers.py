"""Each built-in manager against small hand-made networks: no simulation, expected values from definitions."""

import math

import pytest

from sim.config import (
    EarliestDeadlineFirstManager,
    EqualShareManager,
    FirstComeFirstServedManager,
    LeastLaxityFirstManager,
    PeakShavingManager,
    PriceResponsiveManager,
    UncontrolledManager,
    V2gPeakShavingManager,
    V2gPriceArbitrageManager,
)
from sim.config.revenue import OccupancyPricing, Tariff
from sim.ids import ChargerId, EvseId, SessionId, SiteId
from sim.managers import build_manager
from sim.managers.base import (
    CompositeManager,
    DemandResponseNotified,
    DispatchTechnician,
    EvseStatus,
    FaultReported,
    PriceChanged,
    RepairCompleted,
    Reset,
    ScheduleMaintenance,
    SessionStarted,
    SessionStopped,
    SetPowerLimit,
    SetTariff,
    SetTimer,
    SiteLimitChanged,
    SiteView,
    Tick,
    Timer,
    V2gView,
)
from sim.managers.equal_share import allocate_equal_share
from sim.managers.operators import Preventive, Reactive
from sim.managers.pricing import DynamicPricing
from sim.managers.testing import StaticNetwork, limits_after, port

H = 3600.0
A = SiteId("a")


def site(*evses, limit_kw=math.inf, t_s=0.0, capacity_kw=1000.0, **kw) -> SiteView:
    return SiteView(A, capacity_kw, tuple(evses), limit_kw=limit_kw, t_s=t_s, **kw)


def started(s: SiteView, evse_id: str = "a.01.1"):
    return SessionStarted(s.t_s, s.site_id, EvseId(evse_id), SessionId(1))


def run(manager, s: SiteView, event=None, **net):
    """The limits on each connector after `manager` answers `event` (a session start by default)."""
    commands = manager.handle(event or started(s), StaticNetwork([s], t_s=s.t_s, **net))
    return limits_after(s, commands), commands


def smart(kind, **settings):
    cls = {
        "first_come_first_served": FirstComeFirstServedManager,
        "earliest_deadline_first": EarliestDeadlineFirstManager,
        "least_laxity_first": LeastLaxityFirstManager,
        "price_responsive": PriceResponsiveManager,
        "peak_shaving": PeakShavingManager,
    }[kind]
    return cls(kind=kind, **settings)


# ---------------------------------------------------------------- uncontrolled


def test_uncontrolled_sends_nothing_whatever_the_limit():
    """Uncontrolled leaves every connector at its maximum: no command, even over the site's limit."""
    s = site(*(port(f"a.0{i}.1", 22.0, session=i) for i in range(1, 4)), limit_kw=10.0)
    m = build_manager(UncontrolledManager(kind="uncontrolled"))
    for event in (started(s), SessionStopped(0.0, A, EvseId("a.01.1"), SessionId(1), 5.0), SiteLimitChanged(0, A, 0)):
        assert m.handle(event, StaticNetwork([s])) == ()


# ---------------------------------------------------------------- equal share


def test_equal_share_splits_the_limit_among_sessions_drawing_power():
    """Each of n connectors charging or paused by a limit gets limit / n; a full EV and an empty port get none."""
    s = site(
        port("a.01.1", 22.0, session=1),
        port("a.01.2", 22.0, session=2, status=EvseStatus.SUSPENDED_EVSE, limit_kw=0.0),
        port("a.02.1", 22.0, session=3),
        port("a.02.2", 22.0, session=4, status=EvseStatus.SUSPENDED_EV),  # full: draws nothing
        port("a.03.1", 22.0),
        limit_kw=50.0,
    )
    limits, commands = run(build_manager(EqualShareManager(kind="equal_share")), s)
    share = 50.0 / 3
    assert limits == {"a.01.1": share, "a.01.2": share, "a.02.1": share, "a.02.2": math.inf, "a.03.1": math.inf}
    assert len(commands) == 3  # only the limits that changed


def test_equal_share_sends_only_changed_limits_and_lifts_a_departed_port():
    """Two sessions already at 25 kW of 50 get nothing new; when one leaves the other gets 50 and the port is freed."""
    both = site(port("a.01.1", 22.0, session=1, limit_kw=25.0), port("a.01.2", 22.0, session=2, limit_kw=25.0),
                limit_kw=50.0)  # fmt: skip
    m = build_manager(EqualShareManager(kind="equal_share"))
    assert run(m, both)[1] == []
    one = site(port("a.01.1", 22.0, session=1, limit_kw=25.0), port("a.01.2", 22.0, limit_kw=25.0), limit_kw=50.0)
    limits, _ = run(m, one, SessionStopped(0.0, A, EvseId("a.01.2"), SessionId(2), 10.0))
    assert limits == {"a.01.1": 50.0, "a.01.2": math.inf}


def test_equal_share_under_a_zero_demand_response_cap_stops_every_session():
    """A cap of 0 kW shares out as 0 kW each."""
    s = site(port("a.01.1", 22.0, session=1), port("a.01.2", 22.0, session=2), limit_kw=0.0, dr_cap_kw=0.0)
    assert set(allocate_equal_share(s).values()) == {0.0}


def test_allocating_managers_reallocate_only_on_the_events_they_document():
    """Timers, ticks, repairs and DR notices change nothing; a price change only for price-aware managers."""
    s = site(port("a.01.1", 22.0, session=1), port("a.01.2", 22.0, session=2), limit_kw=20.0)
    quiet = (
        Tick(0.0),
        Timer(0.0, "start"),
        RepairCompleted(0.0, A, ChargerId("a.01"), 1, "reset"),
        DemandResponseNotified(0.0, A, H, 2 * H, 5.0, None, True),
    )
    eq = build_manager(EqualShareManager(kind="equal_share"))
    for event in quiet:
        assert eq.handle(event, StaticNetwork([s])) == ()
    assert eq.handle(PriceChanged(0.0, 0.5), StaticNetwork([s])) == ()
    assert run(eq, s, SiteLimitChanged(0.0, A, 20.0))[0] == {"a.01.1": 10.0, "a.01.2": 10.0}
    pr = build_manager(smart("price_responsive"))
    assert pr.handle(PriceChanged(0.0, 0.5), StaticNetwork([s]))  # re-allocates every site


# ---------------------------------------------------------------- priority orders


def test_first_come_first_served_fills_in_plug_in_order():
    """30 kW over three 22 kW sessions: the earliest plug-in gets 22, the next the 8 left, the last 0."""
    s = site(port("a.01.1", 22.0, session=1, plug_t_s=100.0), port("a.02.1", 22.0, session=2, plug_t_s=50.0),
             port("a.03.1", 22.0, session=3, plug_t_s=200.0), limit_kw=30.0, t_s=300.0)  # fmt: skip
    limits, _ = run(build_manager(smart("first_come_first_served")), s)
    assert limits == {"a.02.1": 22.0, "a.01.1": 8.0, "a.03.1": 0.0}


def _edf_llf_site() -> SiteView:
    """Two ISO 15118 EVs where the earliest deadline is not the least slack.

    x leaves in 3 h needing 44 kWh at 22 kW (2 h): slack 1 h. y leaves in 2 h needing 11 kWh at 22 kW
    (0.5 h): slack 1.5 h.
    """
    return site(
        port("a.01.1", 22.0, session=1, departure_t_s=3 * H, energy_need_kwh=44.0, ev_max_kw=22.0),
        port("a.02.1", 22.0, session=2, departure_t_s=2 * H, energy_need_kwh=11.0, ev_max_kw=22.0),
        limit_kw=30.0,
    )


def test_earliest_deadline_first_serves_the_first_to_leave():
    """EDF: y (leaves at 2 h) gets 22 kW, x the remaining 8."""
    limits, _ = run(build_manager(smart("earliest_deadline_first")), _edf_llf_site())
    assert limits == {"a.02.1": 22.0, "a.01.1": 8.0}


def test_least_laxity_first_serves_the_least_slack():
    """LLF: x (slack 1 h) gets 22 kW before y (slack 1.5 h)."""
    limits, _ = run(build_manager(smart("least_laxity_first")), _edf_llf_site())
    assert limits == {"a.01.1": 22.0, "a.02.1": 8.0}


def test_least_laxity_first_puts_an_ev_at_its_deadline_first():
    """An EV at its departure time with energy still to go has negative slack: it is served before any other."""
    s = site(
        port("a.01.1", 22.0, session=1, departure_t_s=10 * H, energy_need_kwh=1.0, ev_max_kw=22.0),
        port("a.02.1", 22.0, session=2, departure_t_s=5 * H, energy_need_kwh=2.0, ev_max_kw=22.0),
        limit_kw=22.0,
        t_s=5 * H,
    )
    limits, _ = run(build_manager(smart("least_laxity_first")), s)
    assert limits == {"a.02.1": 22.0, "a.01.1": 0.0}


def test_estimates_stand_in_for_evs_that_do_not_say():
    """An EV without ISO 15118 is assumed to leave `assumed_dwell_h` after plugging in.

    Plugged at 0 with 4 h assumed, it leaves before the EV that says 5 h: EDF serves it first.
    With 6 h assumed it leaves after, and comes second.
    """
    s = site(
        port("a.01.1", 22.0, session=1, plug_t_s=0.0),
        port("a.02.1", 22.0, session=2, plug_t_s=0.0, departure_t_s=5 * H, energy_need_kwh=10.0, ev_max_kw=22.0),
        limit_kw=22.0,
    )
    four, _ = run(build_manager(smart("earliest_deadline_first", assumed_dwell_h=4.0)), s)
    six, _ = run(build_manager(smart("earliest_deadline_first", assumed_dwell_h=6.0)), s)
    assert four == {"a.01.1": 22.0, "a.02.1": 0.0}
    assert six == {"a.01.1": 0.0, "a.02.1": 22.0}


def test_assumed_need_less_delivered_energy_drives_laxity():
    """Without ISO 15118 the need is `assumed_energy_kwh` less what was delivered.

    Both leave at 4 h (assumed) on 22 kW: the one with 20 of 25 kWh delivered has the more slack.
    """
    s = site(port("a.01.1", 22.0, session=1, plug_t_s=0.0, energy_kwh=20.0),
             port("a.02.1", 22.0, session=2, plug_t_s=0.0, energy_kwh=0.0), limit_kw=22.0)  # fmt: skip
    limits, _ = run(build_manager(smart("least_laxity_first", assumed_energy_kwh=25.0)), s)
    assert limits == {"a.02.1": 22.0, "a.01.1": 0.0}


def test_an_ev_drawing_below_its_limit_gets_only_what_it_draws():
    """An EV drawing 7 kW under a 22 kW limit (no ISO 15118) is taken at its word; the rest goes on."""
    s = site(port("a.01.1", 22.0, session=1, plug_t_s=0.0, limit_kw=22.0, power_kw=7.0),
             port("a.02.1", 22.0, session=2, plug_t_s=1.0), limit_kw=30.0)  # fmt: skip
    limits, _ = run(build_manager(smart("first_come_first_served")), s)
    assert limits == {"a.01.1": 7.0, "a.02.1": 22.0}


@pytest.mark.xfail(
    strict=True,
    reason="known: without ISO 15118 an EV capped at exactly what it draws looks held back, so the next "
    "re-allocation hands it the connector's maximum again, and the one after takes it back (7, 22, 7, 22 kW ...)",
)
def test_an_allocation_that_took_effect_is_kept():
    """Re-allocating a site whose EVs draw what they were given changes no limit.

    An EV without ISO 15118 draws 7 kW of a 22 kW connector; FCFS over 30 kW gives it 7 and the next EV 22.
    Once those limits are in force (and the EV still draws 7 kW), a new arrival behind them must not move them.
    """
    m = build_manager(smart("first_come_first_served"))

    def at(limits):
        return site(
            port("a.01.1", 22.0, session=1, plug_t_s=0.0, power_kw=7.0, limit_kw=limits["a.01.1"]),
            port("a.02.1", 22.0, session=2, plug_t_s=1.0, power_kw=min(22.0, limits["a.02.1"]),
                 limit_kw=limits["a.02.1"]),
            port("a.03.1", 22.0, session=3, plug_t_s=2.0, limit_kw=limits["a.03.1"]),
            limit_kw=30.0,
        )  # fmt: skip

    first, _ = run(m, at(dict.fromkeys(("a.01.1", "a.02.1", "a.03.1"), math.inf)))
    assert first == {"a.01.1": 7.0, "a.02.1": 22.0, "a.03.1": 1.0}
    again, _ = run(m, at(first), started(at(first), "a.03.1"))
    assert again == first


def test_an_ev_gets_at_most_its_own_maximum():
    """ISO 15118's EV maximum caps the allocation below the connector's rating."""
    s = site(port("a.01.1", 150.0, session=1, plug_t_s=0.0, ev_max_kw=50.0),
             port("a.02.1", 150.0, session=2, plug_t_s=1.0), limit_kw=120.0)  # fmt: skip
    limits, _ = run(build_manager(smart("first_come_first_served")), s)
    assert limits == {"a.01.1": 50.0, "a.02.1": 70.0}


def test_a_shared_cabinet_is_kept_within_its_rating():
    """Two 22 kW ports on a 30 kW cabinet get 22 + 8; a port on another charger still gets 22."""
    s = site(
        port("a.01.1", 22.0, session=1, plug_t_s=0.0, charger_max_kw=30.0),
        port("a.01.2", 22.0, session=2, plug_t_s=1.0, charger_max_kw=30.0),
        port("a.02.1", 22.0, session=3, plug_t_s=2.0),
        limit_kw=100.0,
    )
    limits, _ = run(build_manager(smart("first_come_first_served")), s)
    assert limits == {"a.01.1": 22.0, "a.01.2": 8.0, "a.02.1": 22.0}


def test_limits_are_rounded_down_to_a_tenth_of_a_kilowatt():
    """10.07 kW left is handed out as 10.0 kW: never above the limit, in the steps chargers accept."""
    s = site(port("a.01.1", 22.0, session=1, plug_t_s=0.0), port("a.02.1", 22.0, session=2, plug_t_s=1.0),
             limit_kw=32.07)  # fmt: skip
    limits, _ = run(build_manager(smart("first_come_first_served")), s)
    assert limits == {"a.01.1": 22.0, "a.02.1": 10.0}


def test_peak_shaving_keeps_the_site_under_its_target():
    """A 30 kW target under a 100 kW limit: 22 + 8 kW in plug-in order."""
    s = site(port("a.01.1", 22.0, session=1, plug_t_s=0.0), port("a.02.1", 22.0, session=2, plug_t_s=1.0),
             limit_kw=100.0)  # fmt: skip
    limits, _ = run(build_manager(smart("peak_shaving", target_kw=30.0)), s)
    assert limits == {"a.01.1": 22.0, "a.02.1": 8.0}
    capped = site(*s.evses, limit_kw=10.0)  # a limit below the target wins
    assert sum(run(build_manager(smart("peak_shaving", target_kw=30.0)), capped)[0].values()) == 10.0


# ---------------------------------------------------------------- price response


def hourly(*prices_per_kwh):
    return lambda t_s: prices_per_kwh[int(t_s // H) % len(prices_per_kwh)]


def _one_ev(need_kwh: float, departure_t_s: float = 4 * H, t_s: float = 0.0) -> SiteView:
    return site(port("a.01.1", 22.0, session=1, departure_t_s=departure_t_s, energy_need_kwh=need_kwh, ev_max_kw=22.0),
                t_s=t_s)  # fmt: skip


def test_price_responsive_waits_for_the_cheapest_hour():
    """22 kWh at 22 kW needs 1 h; hour 2 is the cheapest before departure, so it does not charge now."""
    m = build_manager(smart("price_responsive"), hourly(0.3, 0.3, 0.1, 0.3))
    prices = hourly(0.3, 0.3, 0.1, 0.3)
    assert run(m, _one_ev(22.0), price_at=prices)[0] == {"a.01.1": 0.0}
    # at 2 h it is the cheapest hour left
    assert run(m, _one_ev(22.0, t_s=2 * H), price_at=prices)[0] == {"a.01.1": 22.0}


def test_price_responsive_charges_now_when_the_need_takes_this_hour_too():
    """44 kWh at 22 kW needs 2 h: the cheap hour 2 and, of the equal others, the first — now."""
    prices = hourly(0.3, 0.3, 0.1, 0.3)
    m = build_manager(smart("price_responsive"))
    assert run(m, _one_ev(44.0), price_at=prices)[0] == {"a.01.1": 22.0}


def test_price_responsive_charges_an_ev_past_its_departure_and_not_a_satisfied_one():
    """Past its departure an EV charges at its rate; an EV with nothing left to take gets 0."""
    prices = hourly(0.3, 0.1)
    m = build_manager(smart("price_responsive"))
    assert run(m, _one_ev(5.0, departure_t_s=H, t_s=H), price_at=prices)[0] == {"a.01.1": 22.0}
    assert run(m, _one_ev(0.0), price_at=prices)[0] == {"a.01.1": 0.0}


def test_price_changes_reallocate_every_site():
    """On a price change a price-aware manager answers for every site, not only one."""
    a = site(port("a.01.1", 22.0, session=1, departure_t_s=4 * H, energy_need_kwh=88.0, ev_max_kw=22.0))
    b = SiteView(SiteId("b"), 100.0, (port("b.01.1", 22.0, session=2, departure_t_s=4 * H, energy_need_kwh=88.0,
                                            ev_max_kw=22.0),))  # fmt: skip
    m = build_manager(smart("price_responsive"))
    commands = m.handle(PriceChanged(0.0, 0.2), StaticNetwork([a, b], price_at=hourly(0.2)))
    assert commands == [SetPowerLimit(EvseId("a.01.1"), 22.0), SetPowerLimit(EvseId("b.01.1"), 22.0)]


# ---------------------------------------------------------------- operators


def _fault(after_reset: bool) -> FaultReported:
    return FaultReported(10.0, A, ChargerId("a.01"), 7, "comms", "InternalError", (EvseId("a.01.1"),), after_reset)


def test_reactive_resets_first_then_sends_a_technician():
    """A new fault gets a remote reset; a fault still there after the reset gets a technician."""
    net = StaticNetwork([site(port("a.01.1", 22.0))])
    assert Reactive().handle(_fault(False), net) == (Reset(ChargerId("a.01")),)
    assert Reactive().handle(_fault(True), net) == (DispatchTechnician(ChargerId("a.01"), 7),)
    assert Reactive().handle(Tick(0.0), net) == ()


def test_preventive_visits_every_charger_each_interval_spread_over_the_first():
    """Three chargers, 30-day interval: first visits at days 10, 20, 30, then every 30 days, each once."""
    day = 86400.0
    net = StaticNetwork([site(port("a.01.1", 22.0), port("a.01.2", 22.0), port("a.02.1", 22.0), port("a.03.1", 22.0))])
    m = Preventive(30 * day)
    visits = [c for d in range(75) for c in m.handle(Tick(d * day), net)]
    assert all(isinstance(v, ScheduleMaintenance) for v in visits)
    got = sorted((v.t_s / day, v.charger_id) for v in visits)  # type: ignore[union-attr]
    want = sorted([(10.0, "a.01"), (40.0, "a.01"), (70.0, "a.01"), (20.0, "a.02"), (50.0, "a.02"), (30.0, "a.03"),
                   (60.0, "a.03")])  # fmt: skip
    assert got == want
    assert Preventive(30 * day).handle(_fault(False), net) == (Reset(ChargerId("a.01")),)  # reactive too


def test_composite_sends_every_managers_commands_in_order():
    """Power allocation and operations share the slot: both answer, allocation first."""
    s = site(port("a.01.1", 22.0, session=1), limit_kw=5.0)
    m = CompositeManager([build_manager(EqualShareManager(kind="equal_share")), Reactive()])
    net = StaticNetwork([s])
    assert m.handle(started(s), net) == [SetPowerLimit(EvseId("a.01.1"), 5.0)]
    fault = FaultReported(0.0, A, ChargerId("a.01"), 1, "m", "E", (EvseId("a.01.1"),))
    assert m.handle(fault, net) == [SetPowerLimit(EvseId("a.01.1"), 5.0), Reset(ChargerId("a.01"))]


# ---------------------------------------------------------------- dynamic pricing


def test_dynamic_pricing_sets_every_price_at_start_and_then_only_changes():
    """At the start every site gets its price and a timer; later timers send only prices that changed.

    Occupancy 0.3-0.7 between 20 % and 100 %: 2 of 4 ports in use → 0.3 + 0.4 × (0.5 − 0.2) / 0.8 = 0.45;
    all 4 → the ceiling, 0.7.
    """
    cfg = OccupancyPricing(kind="occupancy", floor_per_kwh=0.3, ceiling_per_kwh=0.7, low_frac=0.2, high_frac=1.0,
                           interval_min=15.0)  # fmt: skip

    def occupied(n):
        return site(*(port(f"a.0{i}.1", 22.0, session=i if i <= n else None) for i in range(1, 5)))

    m = DynamicPricing(cfg, {A: Tariff(price_per_kwh=0.5, session_fee=1.0)})
    start = m.handle(Timer(0.0, "start"), StaticNetwork([occupied(2)]))
    assert len(start) == 2
    tariff, timer = start
    assert isinstance(tariff, SetTariff)
    assert tariff.site_id == A
    assert tariff.tariff.price_per_kwh == 0.45
    assert tariff.tariff.session_fee == 1.0  # the other components stay
    assert timer == SetTimer(900.0, "pricing")
    assert m.handle(Timer(900.0, "pricing"), StaticNetwork([occupied(2)])) == [SetTimer(1800.0, "pricing")]
    busy = m.handle(Timer(1800.0, "pricing"), StaticNetwork([occupied(4)]))
    assert busy[0].tariff.price_per_kwh == 0.7  # type: ignore[union-attr]
    assert busy[1] == SetTimer(2700.0, "pricing")
    assert m.handle(Timer(1800.0, "someone else's"), StaticNetwork([occupied(4)])) == ()


# ---------------------------------------------------------------- V2G


def _v2g(soc: float, guard: float = 0.0, max_discharge_kw: float = 10.0, full_kw: float = 11.0) -> V2gView:
    """A 50 kWh V2G EV with a 0.2 minimum SoC, leaving in 8 h."""
    return V2gView(max_discharge_kw, soc, 50.0, 0.2, 0.8, 8 * H, max(0.2, guard), full_kw, guard)


def test_v2g_peak_shaving_discharges_what_urgent_charging_puts_over_the_threshold():
    """An urgent EV needs 22 kW now under a 15 kW threshold: the V2G EV gives back the 7 kW over it."""
    urgent = port("a.01.1", 22.0, session=1, departure_t_s=H, energy_need_kwh=22.0, ev_max_kw=22.0)
    v2g_ev = port("a.02.1", 11.0, session=2, status=EvseStatus.SUSPENDED_EV)
    s = site(urgent, v2g_ev, limit_kw=100.0, v2g={EvseId("a.02.1"): _v2g(0.9)})
    cfg = V2gPeakShavingManager(kind="v2g_peak_shaving", threshold_kw=15.0)
    limits, _ = run(build_manager(cfg), s)
    assert limits == {"a.01.1": 22.0, "a.02.1": -7.0}


def test_v2g_peak_shaving_recharges_under_the_threshold_and_never_below_the_floor():
    """No urgent load: the V2G EV charges within the threshold; at its floor it is never asked to discharge."""
    ev = port("a.01.1", 11.0, session=1, departure_t_s=8 * H, energy_need_kwh=10.0, ev_max_kw=11.0)
    cfg = V2gPeakShavingManager(kind="v2g_peak_shaving", threshold_kw=8.0)
    limits, _ = run(build_manager(cfg), site(ev, limit_kw=100.0, v2g={EvseId("a.01.1"): _v2g(0.5)}))
    assert limits == {"a.01.1": 8.0}
    at_floor = site(ev, limit_kw=100.0, v2g={EvseId("a.01.1"): _v2g(0.2)})  # headroom 0
    assert run(build_manager(cfg), at_floor)[0]["a.01.1"] >= 0


def test_v2g_price_arbitrage_charges_when_cheap_idles_between_and_gives_back_when_dear():
    """Price 0.10: charge at 11 kW; 0.20: hold at 0; 0.40: discharge at the EV's 10 kW."""
    ev = port("a.01.1", 11.0, session=1, departure_t_s=8 * H, energy_need_kwh=10.0, ev_max_kw=11.0)
    cfg = V2gPriceArbitrageManager(kind="v2g_price_arbitrage", charge_below_per_kwh=0.15, discharge_above_per_kwh=0.3)
    got = {}
    for price in (0.10, 0.20, 0.40):
        s = site(ev, limit_kw=100.0, price_per_kwh=price, v2g={EvseId("a.01.1"): _v2g(0.6)})
        got[price] = run(build_manager(cfg), s)[0]["a.01.1"]
    assert got == {0.10: 11.0, 0.20: 0.0, 0.40: -10.0}


def test_v2g_price_arbitrage_keeps_the_guarantee_and_the_export_limit():
    """An EV near its guard charges at full power even when dear; discharge stays within a 4 kW export limit."""
    ev = port("a.01.1", 11.0, session=1, departure_t_s=8 * H, energy_need_kwh=10.0, ev_max_kw=11.0)
    cfg = V2gPriceArbitrageManager(kind="v2g_price_arbitrage", charge_below_per_kwh=0.15, discharge_above_per_kwh=0.3)
    near = site(ev, limit_kw=100.0, price_per_kwh=0.4, v2g={EvseId("a.01.1"): _v2g(0.5, guard=0.49)})
    assert run(build_manager(cfg), near)[0]["a.01.1"] == 11.0  # 0.5 kWh over the guard: minutes of slack
    capped = site(ev, limit_kw=100.0, price_per_kwh=0.4, export_limit_kw=4.0, v2g={EvseId("a.01.1"): _v2g(0.6)})
    assert run(build_manager(cfg), capped)[0]["a.01.1"] == -4.0
