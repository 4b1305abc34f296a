"""Prices: what a session costs the driver, component by component.

A `TariffSchedule` turns a scenario `Tariff` into prices by simulated time: its
time-of-use periods repeat every week in local wall-clock time (`sim.wallclock`), so a
period boundary at 17:00 stays at 17:00 across daylight saving changes. `session_charges`
integrates a session against one or more schedules exactly: energy from the closed-form
charge intervals, minutes per power tier from the charge curve, idle minutes after the
battery is full. `settle` turns those charges into a charge detail record in whole cents:
member discount, minimum and maximum, loyalty, and the payment fee.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sim.config.revenue import DAYS, MemberDiscount, PaymentMethod, Tariff, TariffPeriod, clock_min
from sim.ev import ChargeProfile
from sim.wallclock import WallClock

__all__ = [
    "BusyClock",
    "Charges",
    "Interval",
    "Prices",
    "Record",
    "TariffSchedule",
    "cents",
    "payment_fee_cents",
    "plain_money",
    "session_charges",
    "settle",
]

_MIN_PER_WEEK = 7 * 1440
_S_PER_WEEK = 7 * 86400.0

Interval = tuple[float, float, float, ChargeProfile]  # (t0_s, t1_s, tau0_s, profile): one stretch on one profile


@dataclass(frozen=True, slots=True)
class Prices:
    """The prices in force at one instant."""

    per_kwh: float
    tier_from_kw: tuple[float, ...]  # ascending, the first 0
    tier_per_min: tuple[float, ...]
    session_fee: float
    idle_per_min: float
    v2g_per_kwh: float = 0.0  # paid to the driver per kWh discharged (V2G)

    def per_min_at(self, power_kw: float) -> float:
        """The time price while `power_kw` is delivered."""
        return self.tier_per_min[bisect_right(self.tier_from_kw, power_kw) - 1]


def _prices(tariff: Tariff, period: TariffPeriod | None) -> Prices:
    def pick(name: str) -> float:
        v = getattr(period, name, None) if period is not None else None
        return float(v if v is not None else getattr(tariff, name))

    tiers = period.time_tiers if period is not None and period.time_tiers is not None else tariff.time_tiers
    if period is not None and period.time_tiers is None and period.price_per_min is not None:
        tiers = None  # the period's flat time price replaces the tariff's tiers
    from_kw: tuple[float, ...]
    per_min: tuple[float, ...]
    if tiers is None:
        from_kw, per_min = (0.0,), (pick("price_per_min"),)
    else:
        from_kw, per_min = tuple(t.from_kw for t in tiers), tuple(t.price_per_min for t in tiers)
    return Prices(pick("price_per_kwh"), from_kw, per_min, pick("session_fee"), pick("idle_fee_per_min"),
                  pick("v2g_remuneration_per_kwh"))  # fmt: skip


class _Layout:
    """Which price set is in force in each minute of the week, and the minutes where that changes."""

    def __init__(self, periods: Sequence[TariffPeriod]) -> None:
        week = np.zeros(_MIN_PER_WEEK, dtype=np.int16)
        for i in reversed(range(len(periods))):  # the first listed period wins where periods overlap
            p = periods[i]
            a, b = clock_min(p.start), clock_min(p.end)
            length = b - a if b > a else b + 1440 - a
            for d in p.days:
                week[(DAYS.index(d) * 1440 + a + np.arange(length)) % _MIN_PER_WEEK] = i + 1
        self.week = week
        self.edges_min = np.flatnonzero(week != np.roll(week, 1)).tolist()


class TariffSchedule:
    """A tariff as prices over simulated time (its time-of-use periods repeat weekly)."""

    def __init__(
        self, tariff: Tariff, clock: WallClock | dt.datetime, layouts: dict[int, _Layout] | None = None
    ) -> None:
        """Compile `tariff` for a run on `clock` (a start datetime: its fixed UTC offset is the local time).

        `layouts` shares the weekly layout between tariffs that differ only in prices.
        """
        self.tariff = tariff
        self.prices = [_prices(tariff, None)] + [_prices(tariff, p) for p in tariff.periods]
        self.clock = clock if isinstance(clock, WallClock) else WallClock(clock, None, 0.0)
        start = self.clock.start
        self._m0 = start.weekday() * 1440 + start.hour * 60 + start.minute + start.second / 60
        self._layout: _Layout | None = None
        self.constant = not tariff.periods  # one price set at all times
        p = self.prices[0]
        # Energy, one time price and a session fee only: a session's record is a few products.
        self.plain = (self.constant and len(p.tier_per_min) == 1 and p.idle_per_min == 0 and tariff.fixed_at_start
                      and not tariff.idle_only_when_busy and tariff.min_charge == 0
                      and tariff.max_charge is None)  # fmt: skip
        if tariff.periods:
            key = id(tariff.periods)
            cache = layouts if layouts is not None else {}
            if key not in cache:
                cache[key] = _Layout(tariff.periods)
            self._layout = cache[key]

    def _period(self, wall_s: float) -> int:
        """Which price set is in force at local wall-clock `wall_s` (0: the tariff's own)."""
        assert self._layout is not None
        return int(self._layout.week[int(math.floor(self._m0 + wall_s / 60.0 + 1e-9)) % _MIN_PER_WEEK])

    def at(self, t_s: float) -> Prices:
        """The prices in force at `t_s`."""
        if self._layout is None:
            return self.prices[0]
        return self.prices[self._period(self.clock.wall_s(t_s))]

    def changes(self, a_s: float, b_s: float) -> list[float]:
        """Times strictly between `a_s` and `b_s` at which the prices change, in order.

        Within a stretch of one UTC offset the changes are the period edges; where the
        offset changes (daylight saving), the jump of the wall clock is a change if the
        prices either side of it differ.
        """
        if self._layout is None or b_s <= a_s:
            return []
        out = []
        previous_shift = 0.0
        for lo, hi, shift in self.clock.segments(a_s, b_s):
            if lo > a_s and self._period(lo + shift) != self._period_before(lo + previous_shift):
                out.append(lo)
            week0 = math.floor((self._m0 * 60.0 + lo + shift) / _S_PER_WEEK)
            for k in range(int(week0), int(math.floor((self._m0 * 60.0 + hi + shift) / _S_PER_WEEK)) + 1):
                for e in self._layout.edges_min:
                    t = (e - self._m0) * 60.0 + k * _S_PER_WEEK - shift
                    if lo < t < hi:
                        out.append(t)
            previous_shift = shift
        return out

    def _period_before(self, wall_s: float) -> int:
        """The price set in force just before local wall-clock `wall_s`."""
        assert self._layout is not None
        return int(self._layout.week[(math.ceil(self._m0 + wall_s / 60.0 - 1e-9) - 1) % _MIN_PER_WEEK])


class BusyClock:
    """When a site was busy (a driver waiting for a port), for idle fees charged only then."""

    __slots__ = ("_ends", "_since", "_starts")

    def __init__(self) -> None:
        """Not busy yet."""
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._since: float | None = None

    def update(self, busy: bool, t_s: float) -> None:
        """The site is (or is no longer) busy from `t_s`."""
        if busy and self._since is None:
            self._since = t_s
        elif not busy and self._since is not None:
            if t_s > self._since:
                self._starts.append(self._since)
                self._ends.append(t_s)
            self._since = None

    def seconds(self, a_s: float, b_s: float) -> float:
        """Busy seconds within [a_s, b_s] (up to now)."""
        total = 0.0
        for i in range(max(bisect_left(self._ends, a_s), 0), bisect_right(self._starts, b_s)):
            total += max(0.0, min(b_s, self._ends[i]) - max(a_s, self._starts[i]))
        if self._since is not None:
            total += max(0.0, b_s - max(a_s, self._since))
        return total


@dataclass(slots=True)
class Charges:
    """A session's list-price components, not rounded."""

    energy: float = 0.0
    time: float = 0.0
    session_fee: float = 0.0
    idle: float = 0.0
    idle_min: float = 0.0


def _energy_kwh(intervals: Sequence[Interval], a_s: float, b_s: float) -> float:
    total = 0.0
    for t0, t1, tau0, p in intervals:
        lo, hi = max(a_s, t0), min(b_s, t1)
        if hi > lo:
            total += (p.soc_at(tau0 + hi - t0) - p.soc_at(tau0 + lo - t0)) * p.capacity_kwh
    return total


def _time_charge(prices: Prices, intervals: Sequence[Interval], a_s: float, b_s: float) -> float:
    """Time price over [a_s, b_s]: each tier's price for the seconds the power was in that tier."""
    if len(prices.tier_from_kw) == 1:
        return prices.tier_per_min[0] * (b_s - a_s) / 60.0
    above = [0.0] * len(prices.tier_from_kw)  # seconds at or above each tier's threshold; tier 0 is all
    above[0] = b_s - a_s
    for t0, t1, tau0, p in intervals:
        lo, hi = max(a_s, t0), min(b_s, t1)
        if hi > lo:
            s0, s1 = p.soc_at(tau0 + lo - t0), p.soc_at(tau0 + hi - t0)
            for k in range(1, len(above)):
                above[k] += p.seconds_at_or_above(s0, s1, prices.tier_from_kw[k])
    above.append(0.0)
    return sum(prices.tier_per_min[k] * (above[k] - above[k + 1]) / 60.0 for k in range(len(prices.tier_per_min)))


def session_charges(
    schedules: Sequence[tuple[float, TariffSchedule]],
    plug_t_s: float,
    end_t_s: float,
    full_t_s: float,
    intervals: Sequence[Interval],
    energy_kwh: float,
    busy: BusyClock | None = None,
) -> Charges:
    """List-price charges of a session plugged in from `plug_t_s` to `end_t_s`.

    Args:
        schedules: ``(from_t_s, schedule)`` in force over the session, in time order; the
            first in force at the plug-in (one entry when the price is fixed at the start).
        plug_t_s: Plug-in time; the session fee is the one in force then.
        end_t_s: Unplug time (or the end of the run).
        full_t_s: When the battery reached its target (NaN if it did not): idle time starts
            after the tariff's grace period.
        intervals: The session's charging intervals.
        energy_kwh: Energy delivered (used whole when a single price applies throughout).
        busy: The site's busy clock when idle minutes count only while a driver waits.
    """
    first = schedules[0][1]
    tariff = first.tariff
    idle_from = _idle_from(tariff, full_t_s)
    if len(schedules) == 1 and first.constant:  # one price set throughout: no segments
        p = first.prices[0]
        out = Charges(p.per_kwh * energy_kwh, _time_charge(p, intervals, plug_t_s, end_t_s), p.session_fee)
        if idle_from < end_t_s:
            a = max(idle_from, plug_t_s)
            idle_s = busy.seconds(a, end_t_s) if busy is not None and tariff.idle_only_when_busy else end_t_s - a
            out.idle_min, out.idle = idle_s / 60.0, p.idle_per_min * idle_s / 60.0
        return out
    cuts = {plug_t_s, end_t_s}
    for i, (from_t, sched) in enumerate(schedules):
        a = max(from_t, plug_t_s)
        b = min(schedules[i + 1][0], end_t_s) if i + 1 < len(schedules) else end_t_s
        if a < b:
            cuts.add(a)
            cuts.update(sched.changes(a, b))
    if plug_t_s < idle_from < end_t_s:
        cuts.add(idle_from)
    points = sorted(cuts)
    out = Charges(session_fee=first.at(plug_t_s).session_fee)
    starts = [f for f, _ in schedules]
    single = len(points) == 2
    for a, b in zip(points, points[1:], strict=False):
        mid = 0.5 * (a + b)
        prices = schedules[max(bisect_right(starts, mid) - 1, 0)][1].at(mid)
        out.energy += prices.per_kwh * (energy_kwh if single else _energy_kwh(intervals, a, b))
        out.time += _time_charge(prices, intervals, a, b)
        if a >= idle_from:
            idle_s = busy.seconds(a, b) if busy is not None and tariff.idle_only_when_busy else b - a
            out.idle_min += idle_s / 60.0
            out.idle += prices.idle_per_min * idle_s / 60.0
    return out


def cents(amount: float) -> int:
    """`amount` in whole cents, half away from zero."""
    if amount >= 0:
        return int(amount * 100.0 + 0.5 + 1e-9)
    return -int(-amount * 100.0 + 0.5 + 1e-9)


@dataclass(slots=True)
class Record:
    """A settled session, in cents: the charge detail record's money fields."""

    energy: int
    time: int
    session_fee: int
    idle: int
    member_discount: int
    cap_adjustment: int
    loyalty_discount: int
    amount: int
    payment_fee: int

    @property
    def gross(self) -> int:
        """List price after the minimum and maximum, before discounts."""
        return self.energy + self.time + self.session_fee + self.idle + self.cap_adjustment


def _idle_from(tariff: Tariff, full_t_s: float) -> float:
    """When idle time starts: the tariff's grace period after the battery was full (never if it was not)."""
    return full_t_s + tariff.idle_grace_min * 60.0 if full_t_s == full_t_s else math.inf


def plain_money(
    sched: TariffSchedule,
    plug_t_s: float,
    end_t_s: float,
    full_t_s: float,
    energy_kwh: float,
    method: PaymentMethod | None,
) -> tuple[tuple[float, ...], float]:
    """A session's money under a plain tariff (`TariffSchedule.plain`) for a driver without plan or account.

    The sessions table's money columns in currency units, in its order (energy, time, session
    fee, idle, cap adjustment, member discount, loyalty discount, amount, payment fee),
    and the idle minutes: the same numbers as `settle(session_charges(...))`, without the segments.
    Once per session of most runs, so the arithmetic is written out (`cents` inlined: every
    amount here is >= 0).
    """
    prices = sched.prices[0]  # = sched.at(plug_t_s): a plain tariff is constant
    e = int(prices.per_kwh * energy_kwh * 100.0 + 0.5 + 1e-9)
    t = int(prices.tier_per_min[0] * (end_t_s - plug_t_s) / 60.0 * 100.0 + 0.5 + 1e-9)
    f = int(prices.session_fee * 100.0 + 0.5 + 1e-9)
    amount = e + t + f
    idle_from = full_t_s + sched.tariff.idle_grace_min * 60.0 if full_t_s == full_t_s else math.inf  # never full
    idle_min = (end_t_s - max(idle_from, plug_t_s)) / 60.0 if idle_from < end_t_s else 0.0
    fee = payment_fee_cents(method, amount) if method is not None else 0
    return (e / 100, t / 100, f / 100, 0.0, 0.0, 0.0, 0.0, amount / 100, fee / 100), idle_min


def payment_fee_cents(method: PaymentMethod | None, amount_cents: int) -> int:
    """The processing fee of one payment of `amount_cents` (nothing is paid, nothing is charged)."""
    if method is None or amount_cents <= 0:
        return 0
    return cents(amount_cents * method.fee_pct / 10000.0 + method.fee_fixed)


def settle(
    charges: Charges,
    tariff: Tariff,
    delivered: bool,
    discount: MemberDiscount | None,
    loyalty: Callable[[int], int] | None,
    method: PaymentMethod | None,
) -> Record:
    """Round the components to cents and apply member discount, minimum/maximum, loyalty and the payment fee.

    Args:
        charges: The session's list-price charges.
        tariff: The tariff they came from (its minimum and maximum charge).
        delivered: The session delivered energy (the minimum applies only then).
        discount: The driver's plan discount, if a member where the session took place.
        loyalty: Given the amount after discount and cap, the loyalty discount (cents).
        method: How the driver pays.
    """
    e, t, f, i = cents(charges.energy), cents(charges.time), cents(charges.session_fee), cents(charges.idle)
    member = 0
    if discount is not None:
        member = (cents(e * discount.energy_frac / 100.0) + cents(t * discount.time_frac / 100.0)
                  + cents(f * discount.session_fee_frac / 100.0) + cents(i * discount.idle_frac / 100.0))  # fmt: skip
    subtotal = e + t + f + i - member
    capped = max(subtotal, cents(tariff.min_charge)) if delivered else subtotal
    if tariff.max_charge is not None:
        capped = min(capped, cents(tariff.max_charge))
    loyal = min(loyalty(capped), capped) if loyalty is not None else 0
    amount = capped - loyal
    return Record(e, t, f, i, member, capped - subtotal, loyal, amount, payment_fee_cents(method, amount))
