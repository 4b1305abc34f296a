"""Per-phase AC limits: phase wiring and rotation, allocation within each phase, and the phase KPIs recomputed."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config import ScenarioError, load_scenario
from sim.engine import simulate
from sim.ids import EvseId, SessionId, SiteId
from sim.managers.base import SessionStarted, SiteView
from sim.managers.smart import Estimates, fill, make_smart_manager
from sim.managers.testing import StaticNetwork, limits_after, port
from sim.network_plan import plan_network
from sim.phase_metrics import phase_energy_kwh, phase_load_steps
from sim.results import write_results

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "phase_limited_garage.yaml"


def _site(evses, phase_limit_a, single_phase, voltage_v=230.0, limit_kw=math.inf, panels=None):
    return SiteView(
        SiteId("a"),
        limit_kw,
        tuple(evses),
        limit_kw=limit_kw,
        phase_limit_kw=phase_limit_a * voltage_v / 1000.0,
        single_phase={EvseId(k): v for k, v in single_phase.items()},
        panels={EvseId(k): (n, a * voltage_v / 1000.0) for k, (n, a) in (panels or {}).items()},
    )


def _fcfs_limits(site):
    manager = make_smart_manager("first_come_first_served", Estimates(4.0, 25.0), lambda t_s: 0.0)
    first = site.evses[0]
    event = SessionStarted(0.0, site.site_id, first.evse_id, SessionId(0))
    return limits_after(site, manager.handle(event, StaticNetwork([site])))


def test_hand_computed_three_phase_case():
    """32 A per phase at 230 V (7.36 kW a phase): a single-phase car on L1 leaves a three-phase car almost nothing.

    First come first served: a.01.1 (7.4 kW on L1) gets floor(7.36, 0.1 kW) = 7.3 kW, leaving 0.06 kW on L1;
    the three-phase a.02.1 may then take 3 × 0.06 = 0.18 → 0.1 kW; a.03.1 (L2) and a.04.1 (L3) get 7.3 kW each,
    their phases having 7.36 − 0.1/3 = 7.327 kW left. Site total 22.0 kW.
    """
    evses = [
        port("a.01.1", 7.4, session=1, plug_t_s=0.0),
        port("a.02.1", 11.0, session=2, plug_t_s=1.0),
        port("a.03.1", 7.4, session=3, plug_t_s=2.0),
        port("a.04.1", 7.4, session=4, plug_t_s=3.0),
    ]
    site = _site(evses, 32.0, {"a.01.1": 0, "a.03.1": 1, "a.04.1": 2})
    limits = _fcfs_limits(site)
    assert limits == {"a.01.1": 7.3, "a.02.1": 0.1, "a.03.1": 7.3, "a.04.1": 7.3}
    load = site.phase_load_kw(limits)
    assert load == pytest.approx((7.3 + 0.1 / 3, 7.3 + 0.1 / 3, 7.3 + 0.1 / 3))


def test_hand_computed_three_phase_first():
    """The three-phase car first: 11 kW is 3.667 kW a phase, each single-phase car gets floor(7.36 − 3.667) = 3.6 kW."""
    evses = [
        port("a.02.1", 11.0, session=2, plug_t_s=0.0),
        port("a.01.1", 7.4, session=1, plug_t_s=1.0),
        port("a.03.1", 7.4, session=3, plug_t_s=2.0),
        port("a.04.1", 7.4, session=4, plug_t_s=3.0),
    ]
    site = _site(evses, 32.0, {"a.01.1": 0, "a.03.1": 1, "a.04.1": 2})
    assert _fcfs_limits(site) == {"a.02.1": 11.0, "a.01.1": 3.6, "a.03.1": 3.6, "a.04.1": 3.6}


def test_hand_computed_two_level_case():
    """Supply 40 A a phase (9.2 kW), a panel of 16 A a phase (3.68 kW) under it for a.01.1 and a.02.1.

    a.01.1 (L1, 7.4 kW) is held by its panel: floor(3.68) = 3.6 kW, 0.08 kW left on the panel's L1. The
    three-phase a.02.1 on the same panel: 3 × 0.08 = 0.24 → 0.2 kW. a.03.1 (three-phase, no panel) takes its
    11 kW: the supply's L1 keeps 9.2 − 3.6 − 0.2/3 − 11/3 = 1.87 kW. a.04.1 (L2, no panel): the supply's L2 has
    9.2 − 0.2/3 − 11/3 = 5.47 kW left → 5.4 kW.
    """
    evses = [
        port("a.01.1", 7.4, session=1, plug_t_s=0.0),
        port("a.02.1", 11.0, session=2, plug_t_s=1.0),
        port("a.03.1", 11.0, session=3, plug_t_s=2.0),
        port("a.04.1", 7.4, session=4, plug_t_s=3.0),
    ]
    site = _site(evses, 40.0, {"a.01.1": 0, "a.04.1": 1}, panels={"a.01.1": (0, 16.0), "a.02.1": (0, 16.0)})
    assert _fcfs_limits(site) == {"a.01.1": 3.6, "a.02.1": 0.2, "a.03.1": 11.0, "a.04.1": 5.4}


def test_equal_share_scales_down_an_overloaded_phase():
    """Four sessions share 40 kW: 10 kW each would put 3 × 10 + 10/3 = 33.3 kW on L1, limited to 7.36 kW (32 A).

    Every connector on L1 (the three single-phase ones and the three-phase one) is scaled by 7.36 / 33.3 = 0.2208:
    2.208 kW each, and L1 then carries exactly 7.36 kW.
    """
    from sim.managers.equal_share import allocate_equal_share

    evses = [port(f"a.0{i}.1", 11.0, session=i) for i in range(1, 5)]
    site = _site(evses, 32.0, {"a.01.1": 0, "a.02.1": 0, "a.03.1": 0}, limit_kw=40.0)
    out = allocate_equal_share(site)
    assert out == pytest.approx(dict.fromkeys(out, 10 * 7.36 / (100 / 3)))
    assert site.phase_load_kw(out)[0] == pytest.approx(7.36)


@settings(max_examples=200, deadline=None)
@given(
    ports=st.lists(
        st.tuples(
            st.sampled_from([None, 0, 1, 2]), st.floats(1.0, 50.0), st.floats(0.0, 60.0), st.sampled_from([None, 0, 1])
        ),
        min_size=1,
        max_size=12,
    ),
    phase_limit_a=st.floats(1.0, 200.0),
    panel_limit_a=st.tuples(st.floats(1.0, 100.0), st.floats(1.0, 100.0)),
    voltage_v=st.sampled_from([120.0, 230.0, 240.0]),
    site_limit_kw=st.floats(0.0, 300.0),
)
def test_fill_never_exceeds_a_phase(ports, phase_limit_a, panel_limit_a, voltage_v, site_limit_kw):
    """Whatever the wiring, panels and wants, fill and equal_share keep every phase of supply and panels in limit."""
    evses = [port(f"a.{i:02d}.1", row[1], session=i, plug_t_s=float(i)) for i, row in enumerate(ports)]
    single = {f"a.{i:02d}.1": row[0] for i, row in enumerate(ports) if row[0] is not None}
    panels = {f"a.{i:02d}.1": (row[3], panel_limit_a[row[3]]) for i, row in enumerate(ports) if row[3] is not None}
    site = _site(evses, phase_limit_a, single, voltage_v, site_limit_kw, panels)
    want = {e.evse_id: row[2] for e, row in zip(evses, ports, strict=True)}
    out = fill(site, evses, want, site_limit_kw)
    assert all(0.0 <= out[e.evse_id] <= want[e.evse_id] for e in evses)
    assert sum(out.values()) <= site_limit_kw + 1e-9
    assert max(site.phase_load_kw(out)) <= site.phase_limit_kw + 1e-9
    from sim.managers.equal_share import allocate_equal_share

    for allocation in (out, allocate_equal_share(site)):
        assert max(site.phase_load_kw(allocation)) <= site.phase_limit_kw + 1e-9
        for n in (0, 1):
            on_panel = {k: v for k, v in allocation.items() if site.panels.get(k, (None,))[0] == n}
            assert max(site.phase_load_kw(on_panel)) <= panel_limit_a[n] * voltage_v / 1000.0 + 1e-9


def test_phase_rotation_and_explicit_phases():
    """Single-phase chargers without a phase go L1, L2, L3 in turn; a named phase is kept; DC is balanced."""
    scenario = load_scenario(SCENARIO)
    plan = plan_network(scenario.network.sites)
    phases = {p.evse_id: p.phase for p in plan.ports}
    assert [phases[EvseId(f"garage.{n:02d}.1")] for n in range(1, 7)] == [0, 1, 2, 0, 1, 2]
    assert all(p.phase is None and p.phases == 3 for p in plan.ports if p.charger.model == "wallbox_3ph_11")
    panel = [(p.panel, p.panel_phase_limit_kw) for p in plan.ports if p.charger.model == "wallbox_3ph_11"]
    assert panel == [(1, pytest.approx(16 * 230 / 1000))] * 4
    assert phases[EvseId("garage.11.1")] == 2  # named L3
    site = plan.sites[0]
    assert site.phase_limit_kw == pytest.approx(63 * 230 / 1000)
    assert site.voltage_v == 230.0


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"current": "dc", "phases": 1}, "phases: 1 is for AC chargers"),
        ({"current": "ac", "phase": "L2"}, "phase: L2 is for single-phase chargers"),
        ({"current": "dc", "panel_phase_limit_a": 32}, "panel_phase_limit_a is for AC"),
    ],
)
def test_phase_settings_that_cannot_be_wired_are_refused(tmp_path, group, message):
    """A single-phase DC charger, or a phase for a three-phase charger, is an error naming the fix."""
    text = SCENARIO.read_text().replace(
        "        - {model: wallbox_3ph_11, count: 4, connectors: 1, power_kw: 11, current: ac,\n"
        "           panel_phase_limit_a: 16}   # a sub-panel with 16 A per phase: 11 kW for four 11 kW boxes",
        "        - {model: x, count: 1, power_kw: 11, " + ", ".join(f"{k}: {v}" for k, v in group.items()) + "}",
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_a_run_keeps_every_phase_within_its_limit_and_the_kpis_recompute(tmp_path):
    """least_laxity_first on the garage: no phase ever above 63 A, and the phase KPIs follow their definitions."""
    run = simulate(load_scenario(SCENARIO, horizon_days=2))
    site = run.sites[0]
    steps = phase_load_steps(run, site)
    power = steps[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert power.max() > 0.9 * site.phase_limit_kw  # the phase limit binds
    assert power.max() <= site.phase_limit_kw + 1e-6
    # The phases add up to the site's load, at every change.
    total = power.sum(axis=1)
    from sim.metrics import load_steps

    site_steps = load_steps(run)
    np.testing.assert_allclose(np.interp(site_steps["t_s"], steps["t_s"], total), site_steps["power_kw"], atol=1e-6)
    # Energy per phase: each session's energy split by its connector's phase share.
    energy = phase_energy_kwh(run, site)
    assert energy.sum() == pytest.approx(float(np.nansum(run.sessions["energy_delivered_kwh"])), rel=1e-9)
    kpis = write_results(run, tmp_path / "out")["grid"]["sites"][site.site_id]
    mean = energy.mean()
    assert kpis["phase_unbalance_pct"] == pytest.approx((energy.max() - mean) / mean * 100)
    assert kpis["phase_energy_kwh"] == pytest.approx(list(energy))
    assert kpis["phase_peak_kw"] == pytest.approx(list(power.max(axis=0)))
    assert kpis["phase_max_excess_kw"] == 0.0
    assert kpis["phase_limit_kw"] == pytest.approx(site.phase_limit_kw)
    # The three-phase boxes' panel: 16 A a phase, never exceeded either.
    panel = phase_load_steps(run, site, panel=1)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert 0.9 * 3.68 < panel.max() <= 3.68 + 1e-6


def test_uncontrolled_overloads_a_phase_and_the_kpi_shows_it(tmp_path):
    """Without a manager the single-phase cars overload their phases: phase_max_excess_kw is the worst excess."""
    run = simulate(load_scenario(SCENARIO, horizon_days=2).model_copy(update={"manager": _uncontrolled()}))
    site = run.sites[0]
    power = phase_load_steps(run, site)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    kpis = write_results(run, tmp_path / "out")["grid"]["sites"][site.site_id]
    assert kpis["phase_max_excess_kw"] == pytest.approx(power.max() - site.phase_limit_kw)
    assert kpis["phase_max_excess_kw"] > 0


def _uncontrolled():
    from sim.config import UncontrolledManager

    return UncontrolledManager(kind="uncontrolled")


def test_ocpp_profiles_in_amps_convert_with_the_phases_wired():
    """A 16 A profile is 16 × 230 V × 1 = 3.68 kW on a single-phase wall box, × 3 = 11.04 kW on a three-phase one."""
    from virtual_chargers.fleet import plan_scenario
    from virtual_chargers.v16.profiles import from_ocpp

    connectors = {p.spec.id: p.spec.connectors[0] for p in plan_scenario(load_scenario(SCENARIO))}
    profile = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 16}],
        },
    }
    for charger_id, kw in (("garage.01", 3.68), ("garage.11", 3.68), ("garage.07", 11.04)):
        c = connectors[charger_id]
        converted = from_ocpp(profile, lambda t: 0.0, c.voltage_v, c.phases, received_t_s=0.0)
        assert converted.periods[0].limit_kw == pytest.approx(kw)
