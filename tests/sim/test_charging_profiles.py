import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.charging_profiles import (
    ChargingProfile,
    ChargingProfilePurpose,
    ProfileSet,
    SchedulePeriod,
    composite_schedule,
    limit_at,
    next_change_t_s,
)
from sim.engine import simulate
from sim.ids import ChargerId
from sim.managers.base import SetChargingProfile
from tests.conftest import make_scenario

CP_MAX = ChargingProfilePurpose.CHARGE_POINT_MAX
TX_DEFAULT = ChargingProfilePurpose.TX_DEFAULT
TX = ChargingProfilePurpose.TX
DAY_S = 86400.0


def profile(
    profile_id: int,
    purpose: ChargingProfilePurpose,
    stack_level: int,
    *periods: tuple[float, float],
    start_t_s: float | None = 0.0,
    **kwargs: float,
) -> ChargingProfile:
    """A profile from ``(start_offset_s, limit_kw)`` pairs, absolute from t = 0 unless told."""
    return ChargingProfile(
        profile_id, purpose, stack_level, tuple(SchedulePeriod(o, kw) for o, kw in periods), start_t_s, **kwargs
    )


def test_higher_stack_level_wins():
    """Of two TxDefault profiles in force, the higher stack level sets the limit, even when it is higher."""
    low = profile(1, TX_DEFAULT, 0, (0, 10.0))
    high = profile(2, TX_DEFAULT, 3, (0, 16.0))
    assert limit_at([low, high], 100.0, None) == 16.0
    assert limit_at([high, low], 100.0, None) == 16.0


def test_ended_or_unstarted_higher_level_falls_back_to_lower():
    """Before a higher-level profile starts and after its duration, the lower stack level applies."""
    low = profile(1, TX_DEFAULT, 0, (0, 10.0))
    high = profile(2, TX_DEFAULT, 1, (0, 5.0), start_t_s=1000.0, duration_s=3600.0)
    profiles = [low, high]
    assert limit_at(profiles, 999.0, None) == 10.0
    assert limit_at(profiles, 1000.0, None) == 5.0
    assert limit_at(profiles, 4599.0, None) == 5.0
    assert limit_at(profiles, 4600.0, None) == 10.0


def test_tx_profile_overrides_tx_default_only_during_transaction():
    """A TxProfile replaces the TxDefault limit (up or down, at any stack level) only while a transaction runs."""
    default = profile(1, TX_DEFAULT, 5, (0, 11.0))
    tx = profile(2, TX, 0, (0, 22.0))
    assert limit_at([default, tx], 50.0, None) == 11.0
    assert limit_at([default, tx], 50.0, 0.0) == 22.0
    ended_tx = profile(3, TX, 0, (0, 22.0), duration_s=10.0)
    assert limit_at([default, ended_tx], 50.0, 0.0) == 11.0


def test_charge_point_max_caps_tx_and_tx_default():
    """The composite is the lower of the ChargePointMax limit and the Tx-or-TxDefault limit."""
    cap = profile(1, CP_MAX, 0, (0, 7.0), (600, 30.0))
    default = profile(2, TX_DEFAULT, 0, (0, 11.0))
    tx = profile(3, TX, 0, (0, 22.0))
    assert limit_at([cap, default], 0.0, None) == 7.0
    assert limit_at([cap, default, tx], 0.0, 0.0) == 7.0
    assert limit_at([cap, default], 600.0, None) == 11.0
    assert limit_at([cap, default, tx], 600.0, 0.0) == 22.0
    assert limit_at([cap], 600.0, None) == 30.0
    assert limit_at([], 600.0, None) == math.inf


def test_relative_profile_counts_from_transaction_start():
    """A relative profile's offsets run from the transaction start, and it does not apply without one."""
    rel = profile(1, TX_DEFAULT, 0, (0, 3.0), (1800, 11.0), start_t_s=None)
    assert limit_at([rel], 999.0, 1000.0) == math.inf
    assert limit_at([rel], 1000.0, 1000.0) == 3.0
    assert limit_at([rel], 2799.0, 1000.0) == 3.0
    assert limit_at([rel], 2800.0, 1000.0) == 11.0
    assert limit_at([rel], 2800.0, None) == math.inf


def test_daily_recurring_profile_repeats():
    """A daily cap of 22 kW with 11 kW from 07:00 to 22:00 repeats every day from its start and not before."""
    cap = profile(1, CP_MAX, 0, (0, 22.0), (7 * 3600, 11.0), (22 * 3600, 22.0), start_t_s=DAY_S, recurring_s=DAY_S)
    assert limit_at([cap], DAY_S - 1, None) == math.inf
    assert limit_at([cap], 2 * DAY_S + 7 * 3600 - 1, None) == 22.0
    assert limit_at([cap], 2 * DAY_S + 7 * 3600, None) == 11.0
    assert limit_at([cap], 5 * DAY_S + 22 * 3600 - 1, None) == 11.0
    assert limit_at([cap], 5 * DAY_S + 22 * 3600, None) == 22.0
    boost = profile(2, TX_DEFAULT, 0, (0, 5.0), start_t_s=0.0, recurring_s=DAY_S, duration_s=3600.0)
    assert limit_at([boost], 3 * DAY_S + 3599, None) == 5.0
    assert limit_at([boost], 3 * DAY_S + 3600, None) == math.inf


def test_valid_from_and_valid_to_bound_the_profile():
    """A profile applies from valid_from_t_s inclusive to valid_to_t_s exclusive."""
    p = profile(1, TX_DEFAULT, 0, (0, 5.0), valid_from_t_s=1000.0, valid_to_t_s=2000.0)
    assert [limit_at([p], t, None) for t in (999.0, 1000.0, 1999.0, 2000.0)] == [math.inf, 5.0, 5.0, math.inf]


def test_install_replaces_same_purpose_and_stack_level_or_same_id():
    """Installing over the same purpose and stack level, or the same id, replaces the earlier profile."""
    ps = ProfileSet()
    first = profile(1, TX_DEFAULT, 0, (0, 10.0))
    ps.install(first)
    second = profile(2, TX_DEFAULT, 0, (0, 6.0))
    ps.install(second)
    assert ps.profiles == (second,)
    other_level = profile(3, TX_DEFAULT, 1, (0, 8.0))
    ps.install(other_level)
    assert ps.profiles == (second, other_level)
    same_id = profile(3, CP_MAX, 0, (0, 4.0))
    ps.install(same_id)
    assert ps.profiles == (second, same_id)
    assert limit_at(ps.profiles, 0.0, None) == 4.0


def test_clear_by_id_purpose_and_stack_level():
    """clear() removes by id alone, else by every criterion given, else everything, and counts the removed."""
    ps = ProfileSet()
    for p in (
        profile(1, CP_MAX, 0, (0, 50.0)),
        profile(2, TX_DEFAULT, 0, (0, 11.0)),
        profile(3, TX_DEFAULT, 1, (0, 7.0)),
    ):
        ps.install(p)
    assert ps.clear(profile_id=99) == 0
    assert ps.clear(profile_id=3, purpose=CP_MAX) == 1
    assert [p.profile_id for p in ps.profiles] == [1, 2]
    assert ps.clear(purpose=TX_DEFAULT, stack_level=1) == 0
    assert ps.clear(purpose=TX_DEFAULT) == 1
    assert [p.profile_id for p in ps.profiles] == [1]
    assert ps.clear() == 1
    assert ps.profiles == ()


def test_tx_profile_needs_a_transaction_and_ends_with_it():
    """A TxProfile is rejected outside a transaction and deleted when the transaction stops."""
    ps = ProfileSet()
    tx = profile(7, TX, 0, (0, 3.0))
    with pytest.raises(ValueError, match="TxProfile 7"):
        ps.install(tx)
    ps.start_transaction(100.0)
    ps.install(tx)
    assert limit_at(ps.profiles, 200.0, ps.tx_start_t_s) == 3.0
    ps.stop_transaction()
    assert ps.profiles == ()


def _example() -> list[ChargingProfile]:
    """10 kW default; from t = 1000 a stack level 1 profile at 10 kW, 4 kW from t = 1500, ending at t = 2500."""
    return [
        profile(1, TX_DEFAULT, 0, (0, 10.0)),
        profile(2, TX_DEFAULT, 1, (0, 10.0), (500, 4.0), start_t_s=1000.0, duration_s=1500.0),
    ]


def test_composite_schedule_merges_equal_steps_and_agrees_with_limit_at():
    """The level-1 profile starting at the same 10 kW adds no step; each step matches limit_at at start and middle."""
    steps = composite_schedule(_example(), 0.0, 5000.0, None)
    assert steps == [(0.0, 10.0), (1500.0, 4.0), (2500.0, 10.0)]
    ends = [t for t, _ in steps[1:]] + [5000.0]
    for (start_t_s, limit_kw), end_t_s in zip(steps, ends, strict=True):
        assert limit_at(_example(), start_t_s, None) == limit_kw
        assert limit_at(_example(), (start_t_s + end_t_s) / 2, None) == limit_kw


def test_composite_schedule_starts_at_t0_and_needs_an_interval():
    """A window starting mid-step begins with that step; an empty or unbounded window is an error."""
    assert composite_schedule(_example(), 2000.0, 2600.0, None) == [(2000.0, 4.0), (2500.0, 10.0)]
    with pytest.raises(ValueError, match="100"):
        composite_schedule(_example(), 100.0, 100.0, None)


def test_next_change_returns_next_breakpoint():
    """Breakpoints are the profile's start, its period change and its end; after the last there is none."""
    profiles = _example()
    assert next_change_t_s(profiles, 0.0, None) == 1000.0
    assert next_change_t_s(profiles, 1000.0, None) == 1500.0
    assert next_change_t_s(profiles, 1700.0, None) == 2500.0
    assert next_change_t_s(profiles, 2500.0, None) == math.inf
    daily = [profile(3, CP_MAX, 0, (0, 5.0), (3600, 9.0), start_t_s=0.0, recurring_s=DAY_S)]
    assert next_change_t_s(daily, DAY_S + 4000.0, None) == 2 * DAY_S


def test_recurring_profile_without_start_repeats_from_the_transaction_start():
    """A daily profile with no start_t_s counts from the transaction start and restarts every 86400 s after it."""
    daily = profile(4, TX_DEFAULT, 0, (0, 3.0), (3600, 7.0), start_t_s=None, recurring_s=DAY_S)
    tx_start_t_s = 5000.0
    assert limit_at([daily], 4999.0, tx_start_t_s) == math.inf  # before the transaction: not in force
    assert limit_at([daily], tx_start_t_s, tx_start_t_s) == 3.0
    assert limit_at([daily], tx_start_t_s + 3600.0, tx_start_t_s) == 7.0
    assert limit_at([daily], tx_start_t_s + DAY_S + 10.0, tx_start_t_s) == 3.0
    assert limit_at([daily], tx_start_t_s + DAY_S + 3600.0, tx_start_t_s) == 7.0
    assert limit_at([daily], tx_start_t_s, None) == math.inf  # no transaction, no start
    assert next_change_t_s([daily], tx_start_t_s + 4000.0, tx_start_t_s) == tx_start_t_s + DAY_S


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"periods": (SchedulePeriod(5.0, 1.0),)}, "5.0"),
        ({"periods": (SchedulePeriod(0.0, 1.0), SchedulePeriod(100.0, 2.0), SchedulePeriod(100.0, 3.0))}, "100.0"),
        ({"periods": ()}, "at least one period"),
        ({"stack_level": -2}, "-2"),
        ({"duration_s": 0.0}, "duration_s\\(=0.0\\)"),
        ({"valid_from_t_s": 2000.0, "valid_to_t_s": 1000.0}, "2000.0"),
        ({"recurring_s": 3600.0, "periods": (SchedulePeriod(0.0, 1.0), SchedulePeriod(3600.0, 2.0))}, "3600.0"),
        ({"purpose": CP_MAX, "start_t_s": None}, "ChargePointMaxProfile"),
    ],
)
def test_bad_profile_raises_with_the_value(kwargs, message):
    """Each rule a charge point would reject raises ValueError naming the bad value."""
    fields = {"profile_id": 1, "purpose": TX_DEFAULT, "stack_level": 0, "periods": (SchedulePeriod(0.0, 1.0),)}
    with pytest.raises(ValueError, match=message):
        ChargingProfile(**(fields | kwargs))


@pytest.mark.parametrize(("offset_s", "limit_kw", "message"), [(-1.0, 1.0, "-1.0"), (0.0, float("-inf"), "-inf")])
def test_bad_period_raises_with_the_value(offset_s, limit_kw, message):
    """A negative offset or a limit that is not finite raises ValueError naming it (a negative limit discharges)."""
    with pytest.raises(ValueError, match=message):
        SchedulePeriod(offset_s, limit_kw)


whole_s = st.integers(0, 20_000).map(float)


@st.composite
def profiles_st(draw: st.DrawFn) -> ChargingProfile:
    """A random valid profile on whole seconds, sometimes relative, recurring, bounded in time or validity."""
    purpose = draw(st.sampled_from(ChargingProfilePurpose))
    recurring_s = draw(st.sampled_from([None, None, 3600.0, 7200.0]))
    offsets = sorted(draw(st.sets(st.integers(1, 3599), max_size=3)))
    periods = tuple(SchedulePeriod(float(o), float(draw(st.integers(0, 50)))) for o in [0, *offsets])
    relative = purpose is not CP_MAX and recurring_s is None and draw(st.booleans())
    valid_from_t_s = draw(st.one_of(st.just(-math.inf), whole_s))
    valid_to_t_s = math.inf
    if math.isfinite(valid_from_t_s) and draw(st.booleans()):
        valid_to_t_s = valid_from_t_s + draw(st.integers(1, 20_000))
    return ChargingProfile(
        profile_id=draw(st.integers(0, 5)),
        purpose=purpose,
        stack_level=draw(st.integers(0, 2)),
        periods=periods,
        start_t_s=None if relative else draw(whole_s),
        duration_s=draw(st.one_of(st.none(), st.integers(1, 10_000).map(float))),
        valid_from_t_s=valid_from_t_s,
        valid_to_t_s=valid_to_t_s,
        recurring_s=recurring_s,
    )


@given(
    st.lists(profiles_st(), max_size=6),
    st.one_of(st.none(), whole_s),
    st.lists(st.floats(0.0, 30_000.0, allow_nan=False), min_size=1, max_size=20),
)
def test_limit_at_matches_composite_schedule_and_respects_cap(profiles, tx_start_t_s, times_s):
    """limit_at(t) is the composite step containing t, and no step exceeds the ChargePointMax limit in force."""
    t1_s = 30_001.0
    steps = composite_schedule(profiles, 0.0, t1_s, tx_start_t_s)
    starts = [t for t, _ in steps]
    assert starts == sorted(set(starts))
    assert all(a[1] != b[1] for a, b in zip(steps, steps[1:], strict=False))
    caps = [p for p in profiles if p.purpose is CP_MAX]
    for t_s in times_s + starts:
        step_kw = next(kw for start_t_s, kw in reversed(steps) if start_t_s <= t_s)
        assert limit_at(profiles, t_s, tx_start_t_s) == step_kw
        assert step_kw <= limit_at(caps, t_s, tx_start_t_s)


class _ChargerMax:
    """Installs a ChargePointMax profile on every charger at the first event: ``max_kw[charger id]``."""

    def __init__(self, max_kw: dict[str, float]) -> None:
        self.max_kw = max_kw
        self.sent = False

    def handle(self, event, network):
        if self.sent:
            return ()
        self.sent = True
        return [
            SetChargingProfile(profile(10, CP_MAX, 0, (0, kw)), charger_id=ChargerId(cid))
            for cid, kw in self.max_kw.items()
        ]


def _charger_power_kw(run, t_s: np.ndarray) -> dict[str, np.ndarray]:
    """Each charger's power at the instants ``t_s``, recomputed from the recorded charging intervals."""
    iv = run.intervals
    out = {e.charger.charger_id: np.zeros(len(t_s)) for e in run.evses}
    for k in range(len(iv["t0_s"])):
        t0, t1 = iv["t0_s"][k], iv["t1_s"][k]
        inside = (t_s >= t0) & (t_s < t1)
        if inside.any():
            prof = run.profiles[iv["profile"][k]]
            soc = prof.soc_at_array(iv["tau0_s"][k] + t_s[inside] - t0)
            out[run.evses[iv["evse"][k]].charger.charger_id][inside] += prof.power_at_array(soc)
    return out


def test_charge_point_max_is_shared_by_the_connectors_of_the_charger():
    """A 3.7 kW ChargePointMax on a two-connector 11 kW charger: both sessions together draw at most 3.7 kW.

    Also on a shared 150 kW DC cabinet capped at 50 kW. Checked from the recorded intervals at every interval
    boundary and every minute, over instants when both connectors of a charger draw power.
    """
    caps = {"a.01": 3.7, "a.02": 3.7, "a.03": 50.0}
    s = make_scenario(horizon_days=2, demand=[{"kind": "synthetic", "site": "a", "rate": {"kind": "constant",
                      "per_hour": 4.0}, "dwell_min": {"dist": "lognormal", "median": 240, "sigma": 0.3}}])  # fmt: skip
    run = simulate(s, manager=_ChargerMax(caps))
    iv = run.intervals
    grid = np.arange(0.0, s.horizon_s, 60.0)
    t_s = np.unique(np.concatenate([grid, iv["t0_s"], np.nextafter(iv["t1_s"], -np.inf)]))
    power = _charger_power_kw(run, t_s)
    for cid, cap_kw in caps.items():
        assert power[cid].max() <= cap_kw * (1 + 1e-9), cid
    # both connectors drawing at once happened, each then at half the charger's limit
    both = np.zeros(len(t_s), dtype=bool)
    for cid in ("a.01", "a.02"):
        ks = [k for k in range(len(iv["t0_s"])) if run.evses[iv["evse"][k]].charger.charger_id == cid]
        per_evse: dict[int, np.ndarray] = {}
        for k in ks:
            inside = (t_s >= iv["t0_s"][k]) & (t_s < iv["t1_s"][k])
            per_evse[iv["evse"][k]] = per_evse.get(iv["evse"][k], np.zeros(len(t_s), dtype=bool)) | inside
        if len(per_evse) == 2:
            a, b = per_evse.values()
            both |= a & b
            assert np.allclose(power[cid][a & b], caps[cid])
    assert both.sum() > 60
