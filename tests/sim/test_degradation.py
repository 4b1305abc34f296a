"""The battery ageing model against its closed form (Schmalstieg et al. 2014, as EV2Gym and BLAST-Lite use it).

The expected numbers are computed here from the paper's formulas and parameters, written out again,
not taken from `sim.degradation`.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.degradation import AgeingModel, rainflow, session_fade, soc_time_integral
from sim.ev import PRESETS, ChargeProfile

DAY_S = 86400.0
CAP_KWH = 60.0


def alpha(soc: float, temperature_k: float) -> float:
    """Calendar coefficient of the paper: (7.543·V − 23.75)·10^6·exp(−6976/T), V = 3.3324 + 0.8263·SoC."""
    v = 3.3324 + 0.8263 * soc
    return (7.543 * v - 23.75) * 1e6 * math.exp(-6976.0 / temperature_k)


def beta(mean_soc: float, dod: float) -> float:
    """Cycle coefficient of the paper: 7.348e-3·(V̄ − 3.667)² + 7.6e-4 + 4.081e-3·DoD."""
    v = 3.3324 + 0.8263 * mean_soc
    return 7.348e-3 * (v - 3.667) ** 2 + 7.6e-4 + 4.081e-3 * dod


def q_age_ah(model: AgeingModel, capacity_kwh: float) -> float:
    """Charge through one 2.05 Ah cell behind the battery's age: twice the energy driven, over the capacity."""
    return 2 * model.battery_age_days * model.km_per_year / 365 * model.kwh_per_km / capacity_kwh * 2.05


def half_cycle(model: AgeingModel, s0: float, s1: float, capacity_kwh: float = CAP_KWH) -> float:
    """Marginal fade of one half cycle from s0 to s1: 0.5·Q_age^-0.5·β·|Δs|·2.05 Ah."""
    depth = abs(s1 - s0)
    return 0.5 / math.sqrt(q_age_ah(model, capacity_kwh)) * beta((s0 + s1) / 2, depth) * depth * 2.05


def one_session(segments, plug_t_s=0.0, end_t_s=DAY_S, soc_in=None, soc_out=None, model=None):
    """`session_fade` of one session made of `segments`, (t0, t1, s0, s1) tuples."""
    seg = np.array(segments, dtype=float).reshape(-1, 4)
    soc_in = seg[0, 2] if soc_in is None else soc_in
    soc_out = seg[-1, 3] if soc_out is None else soc_out
    sessions = {k: np.array([v]) for k, v in (("plug_t_s", plug_t_s), ("end_t_s", end_t_s), ("soc_in_frac", soc_in),
                                              ("soc_out_frac", soc_out), ("capacity_kwh", CAP_KWH))}  # fmt: skip
    segments = {"session": np.zeros(len(seg), dtype=np.int64), "t0_s": seg[:, 0], "t1_s": seg[:, 1],
                "soc0_frac": seg[:, 2], "soc1_frac": seg[:, 3]}  # fmt: skip
    return session_fade(model or AgeingModel(), sessions, segments)


def test_calendar_fade_at_constant_soc_is_the_derivative_of_the_power_law():
    """Plugged in 3 days at SoC 0.6 and 25 °C: 0.75·α·age^-0.25·t, the slope of α·t^0.75 at the battery's age."""
    model = AgeingModel(temperature_c=25.0, battery_age_days=730.0)
    fade = one_session([], end_t_s=3 * DAY_S, soc_in=0.6, soc_out=0.6, model=model)
    expected = 0.75 * alpha(0.6, 298.15) * 730.0**-0.25 * 3.0
    assert fade.calendar_frac[0] == pytest.approx(expected, rel=1e-12)
    aged = alpha(0.6, 298.15) * (733.0**0.75 - 730.0**0.75)  # the power law itself over the same 3 days
    assert fade.calendar_frac[0] == pytest.approx(aged, rel=1e-3)
    assert fade.cycle_charging_frac[0] == fade.cycle_v2g_frac[0] == 0.0  # no throughput, no cycle fade


def test_calendar_fade_rises_with_temperature_as_arrhenius():
    """From 25 to 35 °C the calendar fade grows by exp(6976·(1/298.15 − 1/308.15))."""
    cool = one_session([], soc_in=0.5, soc_out=0.5, model=AgeingModel(temperature_c=25.0)).calendar_frac[0]
    warm = one_session([], soc_in=0.5, soc_out=0.5, model=AgeingModel(temperature_c=35.0)).calendar_frac[0]
    assert warm / cool == pytest.approx(math.exp(6976.0 * (1 / 298.15 - 1 / 308.15)), rel=1e-12)


def test_calendar_fade_follows_the_soc_while_charging():
    """Charging from 0.2 to 0.8 linearly over hour 1 of a 4-hour stay: α integrated over the SoC path."""
    fade = one_session([(0.0, 3600.0, 0.2, 0.8)], end_t_s=4 * 3600.0)
    # α is linear in SoC: the ramp counts at its mean SoC 0.5, the three hours after at 0.8.
    integral_days = (alpha(0.5, 298.15) * 3600.0 + alpha(0.8, 298.15) * 3 * 3600.0) / DAY_S
    assert fade.calendar_frac[0] == pytest.approx(0.75 * 730.0**-0.25 * integral_days, rel=1e-12)


def test_a_charge_is_one_half_cycle_whatever_the_intervals():
    """Charging 0.2 → 0.8 in one interval or in three (limits changed, a pause between) ages the same."""
    one = one_session([(0.0, 3600.0, 0.2, 0.8)])
    three = one_session([(0.0, 600.0, 0.2, 0.3), (600.0, 1800.0, 0.3, 0.5), (2400.0, 3600.0, 0.5, 0.8)])
    expected = half_cycle(AgeingModel(), 0.2, 0.8)
    assert one.cycle_charging_frac[0] == pytest.approx(expected, rel=1e-12)
    assert three.cycle_charging_frac[0] == pytest.approx(expected, rel=1e-12)
    assert one.cycle_v2g_frac[0] == three.cycle_v2g_frac[0] == 0.0
    assert three.charged_frac[0] == pytest.approx(0.6)
    assert three.discharged_frac[0] == 0.0


def test_a_full_cycle_is_two_half_cycles_of_its_depth():
    """Charge 0.2 → 0.8 and give it all back: Q = 2·0.6·2.05 Ah at β(V(0.5), 0.6); charging's share is nil."""
    fade = one_session([(0.0, 3600.0, 0.2, 0.8), (3600.0, 7200.0, 0.8, 0.2)])
    full = 0.5 / math.sqrt(q_age_ah(AgeingModel(), CAP_KWH)) * beta(0.5, 0.6) * 2 * 0.6 * 2.05
    total = fade.cycle_charging_frac[0] + fade.cycle_v2g_frac[0]
    assert total == pytest.approx(full, rel=1e-12)
    assert fade.cycle_charging_frac[0] == 0.0  # the EV leaves as it came: all of it is V2G's


def test_v2g_inside_a_charge_owns_its_inner_cycle():
    """0.3 → 0.8, V2G down to 0.6, back to 0.8: charging owns the half cycle 0.3 → 0.8, V2G the cycle 0.8-0.6-0.8."""
    model = AgeingModel()
    fade = one_session([(0, 3600, 0.3, 0.8), (3600, 5400, 0.8, 0.6), (5400, 7200, 0.6, 0.8)], end_t_s=8000.0)
    assert fade.cycle_charging_frac[0] == pytest.approx(half_cycle(model, 0.3, 0.8), rel=1e-12)
    inner = 0.5 / math.sqrt(q_age_ah(model, CAP_KWH)) * beta(0.7, 0.2) * 2 * 0.2 * 2.05
    assert fade.cycle_v2g_frac[0] == pytest.approx(inner, rel=1e-12)
    assert fade.discharged_frac[0] == pytest.approx(0.2)
    assert fade.charged_frac[0] == pytest.approx(0.7)


def test_rainflow_of_a_textbook_sequence():
    """ASTM E1049 example shape: a small inner cycle is taken out, the big swing stays a half cycle."""
    cycles = rainflow([0.2, 0.5, 0.49, 0.8])
    assert [(round(d, 12), round(m, 12), c) for d, m, c in cycles] == [(0.01, 0.495, 1.0), (0.6, 0.5, 0.5)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
@example([1.0, 0.0, 3.5e-299, 1.0e-239, 1.0])  # rises too small for a product of differences to show
def test_rainflow_keeps_the_total_travel(points):
    """Σ 2·count·depth over the cycles equals the sequence's total SoC travel."""
    travel = sum(abs(b - a) for a, b in zip(points, points[1:], strict=False))
    assert sum(2 * c * d for d, _, c in rainflow(points)) == pytest.approx(travel, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 0.9), st.floats(0.001, 0.5), st.floats(0.001, 0.5))
def test_cycle_fade_grows_with_throughput_and_depth(soc_in, rise, more):
    """Charging further from the same plug-in SoC ages the battery more; no charging, no cycle fade."""
    model = AgeingModel()
    lo = min(soc_in + rise, 1.0)
    hi = min(lo + more, 1.0)
    short = one_session([(0.0, 600.0, soc_in, lo)]).cycle_charging_frac[0]
    long = one_session([(0.0, 600.0, soc_in, hi)]).cycle_charging_frac[0]
    assert long >= short > 0.0 or lo == soc_in
    assert one_session([(0.0, 600.0, soc_in, soc_in)]).cycle_charging_frac[0] == 0.0
    assert short == pytest.approx(half_cycle(model, soc_in, lo), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.05, 1.0), min_size=2, max_size=12))
def test_attribution_adds_up_and_v2g_is_never_negative(path):
    """Any charge/discharge path: charging + V2G is the rainflow total, V2G ≥ 0, and V2G is 0 without discharges."""
    model = AgeingModel()
    segments = [(600.0 * i, 600.0 * (i + 1), a, b) for i, (a, b) in enumerate(zip(path, path[1:], strict=False))]
    fade = one_session(segments, end_t_s=600.0 * len(path))
    total = sum(0.5 / math.sqrt(q_age_ah(model, CAP_KWH)) * beta(m, d) * 2 * c * d * 2.05 for d, m, c in rainflow(path))
    assert fade.cycle_charging_frac[0] + fade.cycle_v2g_frac[0] == pytest.approx(total, rel=1e-9, abs=1e-15)
    assert fade.cycle_v2g_frac[0] >= 0.0
    if all(b >= a for a, b in zip(path, path[1:], strict=False)):
        assert fade.cycle_v2g_frac[0] == 0.0


def test_sessions_are_independent_and_in_any_order():
    """Two sessions given together, segments shuffled, age as each alone (marginal fade adds up)."""
    a = one_session([(0.0, 600.0, 0.1, 0.4), (600.0, 900.0, 0.4, 0.5)], end_t_s=1000.0)
    b = one_session([(50.0, 700.0, 0.5, 0.9)], plug_t_s=50.0, end_t_s=2000.0)
    sessions = {"plug_t_s": np.array([0.0, 50.0]), "end_t_s": np.array([1000.0, 2000.0]),
                "soc_in_frac": np.array([0.1, 0.5]), "soc_out_frac": np.array([0.5, 0.9]),
                "capacity_kwh": np.array([CAP_KWH, CAP_KWH])}  # fmt: skip
    segments = {"session": np.array([1, 0, 0]), "t0_s": np.array([50.0, 600.0, 0.0]),
                "t1_s": np.array([700.0, 900.0, 600.0]), "soc0_frac": np.array([0.5, 0.4, 0.1]),
                "soc1_frac": np.array([0.9, 0.5, 0.4])}  # fmt: skip
    both = session_fade(AgeingModel(), sessions, segments)
    for i, alone in enumerate((a, b)):
        assert both.calendar_frac[i] == pytest.approx(alone.calendar_frac[0], rel=1e-12)
        assert both.cycle_charging_frac[i] == pytest.approx(alone.cycle_charging_frac[0], rel=1e-12)


@pytest.mark.parametrize(("preset", "cap_kw"), [("tesla_model_3_lr", 150.0), ("nissan_leaf_40", 50.0)])
def test_soc_time_integral_matches_quadrature(preset, cap_kw):
    """∫ SoC dτ in closed form on a DC curve equals a fine numerical quadrature, past the curve's end too."""
    m = PRESETS[preset]
    profile = ChargeProfile(m.dc_curve, cap_kw, m.capacity_kwh)
    for tau in (250.0, 0.5 * profile.tau_s[-1], profile.tau_s[-1] + 120.0):
        x = np.linspace(0.0, tau, 400_001)
        y = profile.soc_at_array(x)
        quad = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
        assert soc_time_integral(profile, np.array([tau]))[0] == pytest.approx(quad, rel=1e-8)
