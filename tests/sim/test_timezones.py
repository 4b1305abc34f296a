"""Wall-clock rules in the scenario's IANA time zone, across both daylight saving changes of two zones.

Reference instants come from the laws, not from `zoneinfo`: the EU changes clocks on the last
Sunday of March and of October at 01:00 UTC; the US on the second Sunday of March at 02:00
local standard time and the first Sunday of November at 02:00 local daylight time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml

from sim.cli import main
from sim.config import ScenarioError, load_scenario
from sim.demand import fleet_models, generate
from sim.engine import simulate
from sim.grid import PriceSignal, dr_windows
from sim.managers.base import Tick
from sim.metrics import sessions_frame
from sim.tariffs import TariffSchedule
from sim.wallclock import WallClock
from tests.conftest import make_scenario, scenario_data

UTC = dt.UTC
H = 3600.0
DAY = 86400.0
AMS, NYC = "Europe/Amsterdam", "America/New_York"
STANDARD_H = {AMS: 1, NYC: -5}  # UTC offset in winter; summer is one hour more
SKIPPED_H = 2  # both zones go from 02:00 to 03:00 in spring
REPEATED_H = {AMS: 2, NYC: 1}  # in autumn Amsterdam goes from 03:00 back to 02:00, New York from 02:00 to 01:00


def _sunday(year: int, month: int, nth: int) -> dt.date:
    """The nth Sunday of a month (nth = -1: the last)."""
    first = dt.date(year, month, 1)
    days = (dt.date(year + month // 12, month % 12 + 1, 1) - first).days
    sundays = [first + dt.timedelta(days=d) for d in range(days) if (first + dt.timedelta(days=d)).weekday() == 6]
    return sundays[nth if nth < 0 else nth - 1]


def _changes_utc(zone: str, year: int) -> tuple[dt.datetime, dt.datetime]:
    """The instants (UTC) the clocks spring forward and fall back in `year`, by law."""
    if zone == AMS:
        spring, autumn = _sunday(year, 3, -1), _sunday(year, 10, -1)
        return (dt.datetime.combine(spring, dt.time(1), UTC), dt.datetime.combine(autumn, dt.time(1), UTC))
    spring, autumn = _sunday(year, 3, 2), _sunday(year, 11, 1)
    return (dt.datetime.combine(spring, dt.time(7), UTC), dt.datetime.combine(autumn, dt.time(6), UTC))


def _local(zone: str, day: dt.date, hour: int, summer: bool) -> dt.datetime:
    """A local wall-clock hour at the zone's winter or summer offset, as an aware datetime."""
    return dt.datetime.combine(day, dt.time(hour), dt.timezone(dt.timedelta(hours=STANDARD_H[zone] + summer)))


def _start(zone: str, day: dt.date, summer: bool = False) -> str:
    return _local(zone, day, 0, summer).isoformat()


def _seconds(a: dt.datetime, b: dt.datetime) -> float:
    return (a - b).total_seconds()


# ---------------------------------------------------------------- the scenario field


def test_unknown_zone_is_a_clear_error_naming_the_field_and_the_fix(tmp_path, capsys):
    """A misspelt zone fails validation with the file, the field, a suggestion and exit code 2."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_data(timezone="europe/amsterdam")), encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:")
    assert "timezone" in problem
    assert "did you mean Europe/Amsterdam?" in problem
    assert "leave timezone out" in problem
    assert main(["validate", str(path)]) == 2
    assert "timezone" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Europe", "../etc/passwd"])
def test_names_that_are_not_zones_are_refused(name):
    """Unknown names, directories and paths are refused as time zones."""
    with pytest.raises(ScenarioError, match="is not an IANA time zone name"):
        make_scenario(timezone=name)


def test_without_a_timezone_the_fixed_offset_of_start_holds_all_year():
    """No `timezone`: local time is the start's UTC offset for the whole run (no change is tabled)."""
    clock = WallClock.of(make_scenario(horizon_days=365))
    assert clock.fixed
    assert clock.change_t_s == ()
    assert clock.wall_s(200 * DAY) == 200 * DAY
    assert clock.t_s(200 * DAY) == 200 * DAY


# ---------------------------------------------------------------- the offset table


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_offset_changes_are_where_the_law_puts_them(zone):
    """A year's table holds exactly the two changes, at their legal instants, +1 h then −1 h."""
    start = _start(zone, dt.date(2026, 1, 5))
    clock = WallClock.of(make_scenario(start=start, timezone=zone, horizon_days=365))
    spring, autumn = _changes_utc(zone, 2026)
    t0 = dt.datetime.fromisoformat(start)
    assert clock.change_t_s == (_seconds(spring, t0), _seconds(autumn, t0))
    assert clock.shift_s == (0.0, H, 0.0)


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_wall_clock_skips_the_spring_hour_and_repeats_the_autumn_hour(zone):
    """02:30 does not exist in spring (maps to the jump); in autumn it exists twice (maps to the first)."""
    start = _start(zone, dt.date(2026, 1, 5))
    t0 = dt.datetime.fromisoformat(start)
    clock = WallClock.of(make_scenario(start=start, timezone=zone, horizon_days=365))
    spring, autumn = (_seconds(c, t0) for c in _changes_utc(zone, 2026))
    wall_at_spring = clock.wall_s(spring - 1) + 1  # 02:00 on the old clock
    assert clock.wall_s(spring) == wall_at_spring + H  # 03:00: the hour is skipped
    assert clock.t_s(wall_at_spring + 0.5 * H) == spring
    wall_at_autumn = clock.wall_s(autumn)  # 02:00 again
    assert clock.wall_s(autumn - 1) + 1 == wall_at_autumn + H
    assert clock.t_s(wall_at_autumn + 0.5 * H) == autumn - 0.5 * H  # the first 02:30
    assert clock.t_s(wall_at_autumn + 1.5 * H) == autumn + 1.5 * H  # 03:30, once only


# ---------------------------------------------------------------- arrivals


def _rate_mass(zone: str, weekly: np.ndarray, t0: dt.datetime, a_s: float, b_s: float) -> float:
    """Expected arrivals in [a_s, b_s): the rate of each real minute's local hour of the week, integrated."""
    tz = ZoneInfo(zone)
    total = 0.0
    for m in range(int(a_s // 60), int(b_s // 60)):
        local = (t0 + dt.timedelta(minutes=m)).astimezone(tz)
        total += weekly[local.weekday() * 24 + local.hour] / 60.0
    return total


@pytest.mark.parametrize("zone", [AMS, NYC])
@pytest.mark.parametrize("change", [0, 1], ids=["spring", "autumn"])
def test_arrivals_are_the_rate_integrated_over_real_seconds(zone, change):
    """Arrivals on the change day match the integral of the local-hour rate over real time.

    The rate is high only in the early hours of Sunday (01:00-04:00 local), distinct per hour:
    the skipped hour brings none, the repeated one twice its mass.
    """
    weekly = np.full(168, 1.0)
    weekly[6 * 24 + 1 : 6 * 24 + 4] = [2000.0, 4000.0, 3000.0]
    horizon_days = 14
    day = _changes_utc(zone, 2026)[change]
    first_day = day.date() - dt.timedelta(days=day.weekday() + 7)  # a Monday
    start = _start(zone, first_day, summer=bool(change))
    s = make_scenario(
        start=start,
        timezone=zone,
        horizon_days=horizon_days,
        demand=[
            {"kind": "synthetic", "site": "a", "dwell_min": 30, "rate": {"kind": "weekly", "per_hour": weekly.tolist()}}
        ],
    )
    t = generate(s, fleet_models(s))["a"].t_s
    t0 = dt.datetime.fromisoformat(start)
    change_t = _seconds(day, t0)
    windows = [(change_t - 3 * H, change_t + 3 * H), (change_t - 3 * H - 7 * DAY, change_t + 3 * H - 7 * DAY)]
    counts = []
    for a, b in windows:  # the change night and the same night a week earlier
        expected = _rate_mass(zone, weekly, t0, a, b)
        observed = int(((t >= a) & (t < b)).sum())
        assert abs(observed - expected) < 5 * np.sqrt(expected), (observed, expected)
        counts.append(expected)
    hour = REPEATED_H[zone] if change else SKIPPED_H
    rate = weekly[6 * 24 + hour]
    extra = counts[0] - counts[1]  # one hour of that rate more in autumn, less in spring
    assert extra == pytest.approx(rate if change else -rate, abs=2.0)  # ± an off-peak hour at the window end
    night = t[(t >= windows[0][0]) & (t < windows[0][1])]
    local_h = [(t0 + dt.timedelta(seconds=x)).astimezone(ZoneInfo(zone)).hour for x in night]
    if change == 0:
        assert local_h.count(hour) == 0
    else:  # two real hours at that rate
        assert abs(local_h.count(hour) - 2 * rate) < 5 * np.sqrt(2 * rate)


# ---------------------------------------------------------------- time of use, energy prices, DR windows


def _tou_tariff() -> dict:
    return {"price_per_kwh": 0.3, "periods": [{"start": "17:00", "end": "21:00", "price_per_kwh": 0.6}]}


@pytest.mark.parametrize("zone", [AMS, NYC])
@pytest.mark.parametrize("change", [0, 1], ids=["spring", "autumn"])
def test_tou_boundary_stays_at_17_local_on_both_sides_of_a_change(zone, change):
    """The peak period starts at 17:00 and ends at 21:00 local the day before and the day of a change."""
    day = _changes_utc(zone, 2026)[change]
    first_day = day.date() - dt.timedelta(days=3)
    start = _start(zone, first_day, summer=bool(change))
    s = make_scenario(start=start, timezone=zone, horizon_days=6, tariff=_tou_tariff())
    sched = TariffSchedule(s.tariff, WallClock.of(s))
    t0 = dt.datetime.fromisoformat(start)
    expected = []
    for d, summer in ((day.date() - dt.timedelta(days=1), bool(change)), (day.date(), not change)):
        for hour in (17, 21):
            expected.append(_seconds(_local(zone, d, hour, summer), t0))
    a, b = expected[0] - H, expected[-1] + H
    assert sched.changes(a, b) == expected
    for t_on in expected[0::2]:
        assert sched.at(t_on - 1).per_kwh == 0.3
        assert sched.at(t_on).per_kwh == 0.6


def _sunday_period(from_h: int) -> dict:
    """A tariff cheaper on Sundays from from_h:30 for an hour and a half."""
    return {"price_per_kwh": 0.3, "periods": [{"days": ["sun"], "start": f"{from_h:02d}:30",
                                               "end": f"{from_h + 2:02d}:00", "price_per_kwh": 0.1}]}  # fmt: skip


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_tou_period_edge_inside_the_changed_hour(zone):
    """A period opening at half past the changed hour opens at the jump in spring; in autumn it closes and reopens.

    In autumn it opens at the first half past, closes when the clock goes back, and opens again
    at the second half past.
    """
    spring, autumn = _changes_utc(zone, 2026)
    start = _start(zone, dt.date(2026, 1, 5))
    t0 = dt.datetime.fromisoformat(start)
    sp, au = _seconds(spring, t0), _seconds(autumn, t0)
    s = make_scenario(start=start, timezone=zone, horizon_days=330, tariff=_sunday_period(SKIPPED_H))
    sched = TariffSchedule(s.tariff, WallClock.of(s))
    assert sched.changes(sp - 3 * H, sp + 3 * H) == [sp, sp + H]  # on at 03:00 (the jump), off at 04:00
    s = make_scenario(start=start, timezone=zone, horizon_days=330, tariff=_sunday_period(REPEATED_H[zone]))
    sched = TariffSchedule(s.tariff, WallClock.of(s))
    assert sched.changes(au - 3 * H, au + 3 * H) == [au - 0.5 * H, au, au + 0.5 * H, au + 2 * H]
    assert sched.at(au - 1).per_kwh == 0.1
    assert sched.at(au).per_kwh == 0.3


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_energy_price_by_local_hour_across_a_change(zone):
    """A time-of-use energy price high from 17:00 to 18:00 local is high exactly then, before and after."""
    by_hour = [0.1] * 24
    by_hour[17] = 0.5
    spring, _ = _changes_utc(zone, 2026)
    first_day = spring.date() - dt.timedelta(days=2)
    start = _start(zone, first_day)
    s = make_scenario(start=start, timezone=zone, horizon_days=4,
                      grid={"energy_price": {"kind": "tou", "per_kwh_by_hour": by_hour}})  # fmt: skip
    prices = PriceSignal(s.grid.energy_price, s)
    t0 = dt.datetime.fromisoformat(start)
    highs = [(t, p) for t, p in prices.changes() if p == 0.5]
    days = [(spring.date() + dt.timedelta(days=d), d >= 0) for d in (-2, -1, 0, 1)]
    expected = [_seconds(_local(zone, d, 17, summer), t0) for d, summer in days]
    assert [t for t, _ in highs] == expected
    assert all(prices.at(t + H) == 0.1 for t in expected)


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_random_dr_events_start_within_the_local_window(zone):
    """Random demand-response events drawn over a year start between 17:00 and 18:00 local every day."""
    start = _start(zone, dt.date(2026, 1, 5))
    grid = {"demand_response": {"random": {"per_site_per_month": 30, "window_h": [17, 18]}}}
    s = make_scenario(start=start, timezone=zone, horizon_days=365, grid=grid)
    windows = dr_windows(s, [100.0])
    t0 = dt.datetime.fromisoformat(start)
    hours = {(t0 + dt.timedelta(seconds=w.start_t_s)).astimezone(ZoneInfo(zone)).hour for w in windows}
    assert len(windows) > 300
    assert hours == {17}
    spring, autumn = (_seconds(c, t0) for c in _changes_utc(zone, 2026))
    assert any(w.start_t_s < spring for w in windows)
    assert any(spring < w.start_t_s < autumn for w in windows)


# ---------------------------------------------------------------- crews and midnight ticks


def _crew_scenario(zone: str, start: str, shift: dict, days: float):
    mode = {"error_code": "InternalError", "ttf": {"dist": "exponential", "mtbf_days": 0.5}, "detected": True,
            "scope": "charger", "diagnosis_min": 0, "repair_min": 10}  # fmt: skip
    service = {
        "fault_modes": {"m": mode},
        "hardware": {"post": ["m"]},
        "crews": [{"id": "c", "technicians": 20, "depot": {"lat": 52.0, "lon": 4.0}, "shift": shift}],
        "remote_reset_min": 0.0,
    }
    network = {"sites": [{"id": "a", "lat": 52.0, "lon": 4.0, "capacity_kw": 1000,
                          "chargers": [{"model": "post", "count": 10, "power_kw": 11, "current": "ac"}]}]}  # fmt: skip
    return make_scenario(
        start=start,
        timezone=zone,
        horizon_days=days,
        network=network,
        demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 0}, "dwell_min": 60}],
        serviceability=service,
    )


@pytest.mark.parametrize("zone", [AMS, NYC])
@pytest.mark.parametrize("change", [0, 1], ids=["spring", "autumn"])
def test_crew_shift_starts_at_08_local_on_both_sides(zone, change):
    """Faults reported overnight are reached at 08:00 local (depot on site), before and after the change."""
    day = _changes_utc(zone, 2026)[change].date()
    first_day = day - dt.timedelta(days=3)
    start = _start(zone, first_day, summer=bool(change))
    shift = {"start_h": 8, "end_h": 17, "days": [0, 1, 2, 3, 4, 5, 6]}
    run = simulate(_crew_scenario(zone, start, shift, 6))
    v = run.service.visits
    t0 = dt.datetime.fromisoformat(start)
    tz = ZoneInfo(zone)
    arrive = [(t0 + dt.timedelta(seconds=x)).astimezone(tz) for x in v["arrive_t_s"]]
    assert all(8 <= a.hour < 17 for a in arrive)
    for d in range(-2, 3):
        date = day + dt.timedelta(days=d)
        summer = d < 0 if change else d >= 0  # 08:00 on the change day is after the change
        eight = _seconds(_local(zone, date, 8, summer), t0)
        first_of_day = [x for x, c in zip(v["arrive_t_s"], v["created_t_s"], strict=True) if c < eight <= x + 1e-9
                        and x < eight + 12 * H]  # fmt: skip
        assert first_of_day, date  # overnight faults waited for this morning
        assert all(x == eight for x in first_of_day), date


@pytest.mark.parametrize("zone", [AMS, NYC])
@pytest.mark.parametrize(("change", "night_h"), [(0, 5.0), (1, 7.0)], ids=["spring", "autumn"])
def test_a_night_shift_is_an_hour_shorter_or_longer_on_the_change_night(zone, change, night_h):
    """A 00:00-06:00 shift every day for a week is 7 × 6 h of real time, ± the changed hour."""
    day = _changes_utc(zone, 2026)[change].date()
    first_day = day - dt.timedelta(days=3)
    start = _start(zone, first_day, summer=bool(change))
    run = simulate(_crew_scenario(zone, start, {"start_h": 0, "end_h": 6, "days": list(range(7))}, 6.9))
    shift_s = run.service.technicians[0][5]
    assert shift_s == pytest.approx((6 * 6.0 + night_h) * H)


@pytest.mark.parametrize("zone", [AMS, NYC])
def test_ticks_fire_at_every_local_midnight(zone):
    """Managers get a `Tick` at each local midnight: 24 h apart, 23 h across spring, 25 h across autumn."""
    ticks: list[float] = []

    class Recorder:
        def handle(self, event, network):  # noqa: ANN001, ANN201 - the NetworkManager protocol
            if isinstance(event, Tick):
                ticks.append(event.t_s)
            return []

    start = _start(zone, dt.date(2026, 1, 5))
    s = make_scenario(start=start, timezone=zone, horizon_days=364.5,
                      demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant", "per_hour": 0},
                               "dwell_min": 60}])  # fmt: skip
    simulate(s, manager=Recorder())
    t0 = dt.datetime.fromisoformat(start)
    tz = ZoneInfo(zone)
    assert len(ticks) == 365
    assert all((t0 + dt.timedelta(seconds=t)).astimezone(tz).time() == dt.time(0) for t in ticks)
    gaps = np.diff(ticks) / H
    assert sorted(set(gaps.tolist())) == [23.0, 24.0, 25.0]
    assert (gaps == 23.0).sum() == 1
    assert (gaps == 25.0).sum() == 1


# ---------------------------------------------------------------- result tables


def test_session_times_are_in_the_scenario_zone():
    """sessions.parquet's calendar times carry the IANA zone, so a summer arrival shows summer time."""
    s = make_scenario(start=_start(AMS, dt.date(2026, 3, 27)), timezone=AMS, horizon_days=4)
    frame = sessions_frame(simulate(s))
    times = frame["arrival_time"]
    assert str(times.dt.tz) == AMS
    offsets = {t.utcoffset() for t in times}
    assert offsets == {dt.timedelta(hours=1), dt.timedelta(hours=2)}
