"""Tariff components, each against a session computed by hand."""

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config.revenue import EveryNth, MemberDiscount, PaymentMethod, Points, Tariff
from sim.ev import ChargeProfile
from sim.tariffs import BusyClock, Charges, TariffSchedule, cents, plain_money, session_charges, settle

MONDAY = dt.datetime(2026, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=1)))
H = 3600.0


def flat_10kw() -> ChargeProfile:
    """A 100 kWh battery charging at a constant 10 kW: 1 %/6 min, 10 kWh an hour."""
    return ChargeProfile(((0.0, 10.0), (1.0, 10.0)), 10.0, 100.0)


def bill(tariff: Tariff, plug: float, end: float, charge_to: float, full: float = math.nan, **kw) -> Charges:
    """Charges of a session on `flat_10kw` from SoC 0.2, charging from `plug` until `charge_to`."""
    p = flat_10kw()
    iv = [(plug, charge_to, p.time_at(0.2), p)]
    energy = (charge_to - plug) / H * 10.0
    return session_charges([(plug, TariffSchedule(tariff, MONDAY))], plug, end, full, iv, energy, **kw)


def test_energy_component():
    """10 kWh at 0.40/kWh is 4.00."""
    c = bill(Tariff(price_per_kwh=0.40), 0.0, 2 * H, 1 * H)
    assert c.energy == pytest.approx(4.00)
    assert (c.time, c.session_fee, c.idle) == (0.0, 0.0, 0.0)


def test_time_component_counts_every_plugged_minute():
    """Two hours plugged at 0.05/min is 6.00, charging or not."""
    c = bill(Tariff(price_per_min=0.05), 0.0, 2 * H, 1 * H)
    assert c.time == pytest.approx(6.00)


def test_time_tiers_follow_the_delivered_power():
    """On a curve falling from 100 kW to 20 kW, the minutes at ≥ 50 kW pay the upper tier.

    P(s) = 100 − 80·s with C = 100 kWh: from s0 = 0.1 the power reaches 50 kW at s = 0.625,
    after t = C/80 · ln(92/50) h; the rest of the 1.5 h plugged pays the lower tier.
    """
    p = ChargeProfile(((0.0, 100.0), (1.0, 20.0)), 100.0, 100.0)
    t_high_h = 100.0 / 80.0 * math.log(92.0 / 50.0)
    t_end = p.time_at(0.8) - p.time_at(0.1)
    assert p.seconds_at_or_above(0.1, 0.8, 50.0) == pytest.approx(t_high_h * H)
    tariff = Tariff(time_tiers=[{"from_kw": 0, "price_per_min": 0.10}, {"from_kw": 50, "price_per_min": 0.30}])
    iv = [(0.0, t_end, p.time_at(0.1), p)]
    c = session_charges([(0.0, TariffSchedule(tariff, MONDAY))], 0.0, 1.5 * H, t_end, iv, 70.0)
    expected = 0.30 * t_high_h * 60 + 0.10 * (1.5 - t_high_h) * 60
    assert c.time == pytest.approx(expected)


def test_session_fee_is_the_one_at_plug_in():
    """A session fee of 1.00 until 08:00 and 2.00 after: a 07:30 plug-in pays 1.00."""
    tariff = Tariff(session_fee=1.0, periods=[{"start": "08:00", "end": "20:00", "session_fee": 2.0}])
    assert bill(tariff, 7.5 * H, 9 * H, 8.5 * H).session_fee == 1.0
    assert bill(tariff, 8.5 * H, 9 * H, 8.75 * H).session_fee == 2.0


def test_idle_fee_after_the_grace_period():
    """Full at 1 h, grace 10 min, unplugged at 1.5 h: 20 idle minutes at 0.40 is 8.00."""
    tariff = Tariff(idle_fee_per_min=0.40, idle_grace_min=10)
    c = bill(tariff, 0.0, 1.5 * H, 1 * H, full=1 * H)
    assert c.idle_min == pytest.approx(20.0)
    assert c.idle == pytest.approx(8.00)
    assert bill(tariff, 0.0, 1.1 * H, 1 * H, full=1 * H).idle == 0.0  # left within the grace


def test_idle_fee_only_while_a_driver_waits():
    """With idle_only_when_busy, only the idle minutes with a queue count: 5 of the 20."""
    busy = BusyClock()
    busy.update(True, 1.2 * H)
    busy.update(False, 1.2 * H + 300)
    tariff = Tariff(idle_fee_per_min=0.40, idle_grace_min=10, idle_only_when_busy=True)
    c = bill(tariff, 0.0, 1.5 * H, 1 * H, full=1 * H, busy=busy)
    assert c.idle_min == pytest.approx(5.0)
    assert c.idle == pytest.approx(2.00)


def test_tou_boundary_crossed_mid_session():
    """0.30/kWh before 17:00 and 0.60 after: 10 kW from 16:30 to 17:30 pays 5·0.30 + 5·0.60 = 4.50."""
    tariff = Tariff(price_per_kwh=0.30, periods=[{"start": "17:00", "end": "21:00", "price_per_kwh": 0.60}])
    c = bill(tariff, 16.5 * H, 17.5 * H, 17.5 * H)
    assert c.energy == pytest.approx(4.50)


def test_tou_period_past_midnight_and_by_weekday():
    """A 22:00–06:00 period on Fridays covers Saturday 02:00 but not Sunday 02:00 (the run starts Monday)."""
    sched = TariffSchedule(Tariff(price_per_kwh=0.5, periods=[{"days": ["fri"], "start": "22:00", "end": "06:00",
                                                               "price_per_kwh": 0.2}]), MONDAY)  # fmt: skip
    saturday_2h = (5 * 24 + 2) * H
    assert sched.at(saturday_2h).per_kwh == 0.2
    assert sched.at(saturday_2h + 24 * H).per_kwh == 0.5
    assert sched.at(saturday_2h + 7 * 24 * H).per_kwh == 0.2  # a week later
    assert sched.changes(0, 7 * 24 * H) == [(4 * 24 + 22) * H, (5 * 24 + 6) * H]


def test_min_and_max_charge():
    """1 kWh at 0.40 is raised to a 2.00 minimum; 10 kWh at 0.40 capped at 3.00."""
    small = settle(Charges(energy=0.40), Tariff(min_charge=2.0), True, None, None, None)
    assert (small.amount, small.cap_adjustment) == (200, 160)
    big = settle(Charges(energy=4.00), Tariff(max_charge=3.0), True, None, None, None)
    assert (big.amount, big.cap_adjustment) == (300, -100)
    nothing = settle(Charges(), Tariff(min_charge=2.0), False, None, None, None)
    assert nothing.amount == 0  # no energy, no minimum


def test_member_discount_loyalty_and_payment_fee():
    """Energy 10.00 at 25 % off and the session fee waived; every 2nd session half off; fee 1.5 % + 0.10."""
    charges = Charges(energy=10.0, session_fee=1.0)
    discount = MemberDiscount(energy_frac=0.25, session_fee_frac=1.0)
    method = PaymentMethod(method="app", share=1, fee_pct=1.5, fee_fixed=0.10)
    rule = EveryNth(kind="every_nth", n=2, discount_frac=0.5)
    count = iter(range(1, 10))
    loyalty = lambda amount: cents(amount * rule.discount_frac / 100) if next(count) % rule.n == 0 else 0  # noqa: E731
    first = settle(charges, Tariff(), True, discount, loyalty, method)
    assert (first.member_discount, first.amount, first.payment_fee) == (350, 750, cents(7.50 * 0.015 + 0.10))
    second = settle(charges, Tariff(), True, discount, loyalty, method)
    assert (second.loyalty_discount, second.amount) == (375, 375)
    assert second.gross - second.member_discount - second.loyalty_discount == second.amount
    assert Points(kind="points", points_per_unit=1, redeem_points=100, redeem_value=5).redeem_value == 5


def test_cents_round_half_away_from_zero():
    """Money rounds to the cent, halves away from zero."""
    assert [cents(x) for x in (0.005, 0.015, 1.004, -0.005, 2.675)] == [1, 2, 100, -1, 268]


def test_seconds_at_or_above_zero_is_the_charging_time():
    """Every second of charging is at or above 0 kW."""
    p = ChargeProfile(((0.0, 50.0), (0.5, 120.0), (0.8, 60.0), (1.0, 10.0)), 100.0, 77.0)
    assert p.seconds_at_or_above(0.1, 0.95, 0.0) == pytest.approx(p.time_at(0.95) - p.time_at(0.1))
    assert p.seconds_at_or_above(0.1, 0.95, 101.0) == 0.0  # capped at 100 kW


@settings(max_examples=200, deadline=None)
@given(
    per_kwh=st.floats(0, 2),
    per_min=st.floats(0, 1),
    fee=st.floats(0, 3),
    grace_min=st.floats(0, 60),
    plugged_h=st.floats(0.01, 10),
    charging_frac=st.floats(0.01, 1),
    full=st.booleans(),
)
def test_plain_money_is_the_general_settlement(per_kwh, per_min, fee, grace_min, plugged_h, charging_frac, full):
    """The shortcut for plain tariffs gives the money and idle minutes the segment-by-segment settlement gives."""
    tariff = Tariff(price_per_kwh=per_kwh, price_per_min=per_min, session_fee=fee, idle_grace_min=grace_min)
    sched = TariffSchedule(tariff, MONDAY)
    assert sched.plain
    end = plugged_h * H
    charge_to = end * charging_frac
    full_t_s = charge_to if full else math.nan  # full when it stopped charging, or never
    charges = bill(tariff, 0.0, end, charge_to, full_t_s)
    energy = charge_to / H * 10.0
    method = PaymentMethod(method="app", share=1, fee_pct=1.4, fee_fixed=0.05)
    general = settle(charges, tariff, energy > 0, None, None, method)
    money, idle_min = plain_money(sched, 0.0, end, full_t_s, energy, method)
    in_cents = (general.energy, general.time, general.session_fee, general.idle, general.cap_adjustment,
                general.member_discount, general.loyalty_discount, general.amount, general.payment_fee)  # fmt: skip
    assert money == tuple(c / 100 for c in in_cents)
    assert idle_min == charges.idle_min
    if full and end - charge_to > grace_min * 60.0:  # idle time is counted, though a plain tariff charges none
        assert idle_min == pytest.approx((end - charge_to) / 60.0 - grace_min)
