import math

from hypothesis import given
from hypothesis import strategies as st

from sim.ev import PRESETS, ChargeProfile, ProfileCache


def test_flat_curve_charges_at_constant_power():
    """At a flat 10 kW a 50 kWh battery gains 20 % SoC in exactly one hour."""
    p = ChargeProfile(((0.0, 10.0), (1.0, 10.0)), 50.0, 50.0)
    assert math.isclose(p.time_at(0.6) - p.time_at(0.4), 3600.0)
    assert math.isclose(p.soc_at(p.time_at(0.4) + 1800.0), 0.5)


def test_linear_taper_matches_closed_form():
    """On P(s) = 100 − 80·s the time from s0 to s1 is C/b·ln(P(s1)/P(s0)) hours."""
    p = ChargeProfile(((0.0, 100.0), (1.0, 20.0)), 500.0, 60.0)
    expected_h = 60.0 / -80.0 * math.log((100 - 80 * 0.9) / (100 - 80 * 0.2))
    assert math.isclose(p.time_at(0.9) - p.time_at(0.2), expected_h * 3600.0, rel_tol=1e-12)


def test_cap_clips_the_curve():
    """Under a 50 kW cap no point of the profile exceeds 50 kW, and the taper below it is kept."""
    p = ChargeProfile(((0.0, 100.0), (0.5, 100.0), (1.0, 10.0)), 50.0, 60.0)
    assert max(p.power_at(s / 100) for s in range(101)) <= 50.0
    assert math.isclose(p.power_at(0.95), 19.0)


def test_ac_profile_is_limited_by_the_onboard_charger():
    """A car with a 6.6 kW on-board charger draws 6.6 kW on a 22 kW post."""
    leaf = PRESETS["nissan_leaf_40"]
    p = ProfileCache().get(leaf, False, 22.0)
    assert p.cap_kw == leaf.ac_max_kw
    assert math.isclose(p.power_at(0.5), 6.6)


@given(st.sampled_from(sorted(PRESETS)), st.floats(5.0, 400.0), st.floats(0.0, 1.0))
def test_soc_at_inverts_time_at(name, cap_kw, soc):
    """soc_at(time_at(s)) == s on every preset curve under any cap."""
    p = ProfileCache().get(PRESETS[name], True, cap_kw)
    assert math.isclose(p.soc_at(p.time_at(soc)), soc, abs_tol=1e-9)


@given(st.sampled_from(sorted(PRESETS)), st.floats(5.0, 400.0))
def test_energy_over_time_never_exceeds_cap(name, cap_kw):
    """Energy gained in any hour is at most cap × 1 h: the cap is a power limit."""
    m = PRESETS[name]
    p = ProfileCache().get(m, True, cap_kw)
    for k in range(10):
        tau = k * 600.0
        gained_kwh = (p.soc_at(tau + 3600.0) - p.soc_at(tau)) * m.capacity_kwh
        assert gained_kwh <= cap_kw * 1.0 + 1e-9


def test_flat_kw_only_for_one_flat_piece():
    """An AC profile is one flat piece at its cap (`linear`); a DC curve is not."""
    model = PRESETS["vw_id4_pro"]
    cache = ProfileCache()
    ac = cache.get(model, False, 7.4)
    assert ac.flat_kw == 7.4
    assert ac.linear
    assert ac.soc_at(3600.0) == 7.4 / model.capacity_kwh  # SoC grows by flat_kw × time / capacity
    dc = cache.get(model, True, 1000.0)
    assert dc.flat_kw is None
    assert not dc.linear


@given(st.floats(1e-3, 400.0), st.floats(1.0, 200.0))
def test_flat_profile_built_directly_is_the_clipped_curve(cap_kw, capacity_kwh):
    """`ChargeProfile.flat` holds the very numbers the general clipping gives a flat AC curve."""
    general = ChargeProfile(((0.0, cap_kw), (1.0, cap_kw)), cap_kw, capacity_kwh)
    direct = ChargeProfile.flat(cap_kw, capacity_kwh)
    for name in ChargeProfile.__slots__:
        assert getattr(direct, name) == getattr(general, name), name


@given(
    st.sampled_from([(False, 7.4), (False, 3.7), (True, 50.0), (True, 1000.0)]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 5e5),
)
def test_session_intervals_follow_the_profile(port, soc_in, target, dt_s):
    """`Session.open` and `close` (inlined on `linear` AC profiles) give exactly `time_at` and `soc_at`."""
    from sim.sessions import Session

    dc, cap_kw = port
    model = PRESETS["renault_zoe_ze50"]
    profile = ProfileCache().get(model, dc, cap_kw)
    s = Session(0, None, None, model, 0, 0.0, soc_in, target, 1e6)  # type: ignore[arg-type]
    full_in_s = s.open(profile, 100.0)
    assert s.tau0_s == profile.time_at(soc_in)
    assert full_in_s == profile.time_at(target) - profile.time_at(soc_in)
    assert s.close(100.0 + dt_s) == (100.0, s.intervals[0][2], profile.pid)
    assert s.soc_frac == min(profile.soc_at(profile.time_at(soc_in) + (100.0 + dt_s) - 100.0), target)
