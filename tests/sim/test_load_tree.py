"""Local load management (``limits: enforce``): the constraint tree's proportional scaling, by hand and in runs."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config import Site, load_scenario
from sim.engine import simulate
from sim.gym import ChargingEnv
from sim.ids import ChargerId, EvseId, SiteId
from sim.load_tree import SiteTree
from sim.metrics import load_steps
from sim.network_plan import ChargerPlan, PortPlan, SitePlan, plan_network, plan_of
from sim.phase_metrics import phase_load_steps
from sim.results import write_results

ROOT = Path(__file__).resolve().parents[2]
GARAGE = ROOT / "scenarios" / "phase_limited_garage.yaml"

# A two-level network: a 30 kW connection with 63 A a phase (14.49 kW at 230 V); under it a panel of
# 16 A a phase (3.68 kW) for two single-phase 7.4 kW boxes (rotation: L1, L2), two three-phase 11 kW
# boxes without a panel, and one single-phase 7.4 kW box on L1.
TWO_LEVEL = {
    "name": "two_level",
    "seed": 1,
    "start": "2026-03-02T00:00:00+01:00",
    "timezone": "Europe/Berlin",
    "horizon_days": 1,
    "network": {
        "sites": [
            {
                "id": "a",
                "lat": 52.5,
                "lon": 13.4,
                "capacity_kw": 30,
                "phase_limit_a": 63,
                "limits": "enforce",
                "chargers": [
                    {"model": "box7", "count": 2, "power_kw": 7.4, "current": "ac", "phases": 1,
                     "panel_phase_limit_a": 16},
                    {"model": "box11", "count": 2, "power_kw": 11, "current": "ac"},
                    {"model": "box7", "count": 1, "power_kw": 7.4, "current": "ac", "phases": 1, "phase": "L1"},
                ],
            }
        ]
    },
    # A big battery that takes 22 kW on AC: every car draws what its port allows, and none is full by noon.
    "fleet": [{"model": {"name": "van", "capacity_kwh": 400, "ac_max_kw": 22,
                         "dc_curve": [[0, 50], [1, 50]]}, "share": 1}],
    "demand": [{"kind": "trace", "path": "trace.csv", "arrival_soc_frac": 0.1, "patience_min": 0}],
    "tariff": {"currency": "EUR", "price_per_kwh": 0.3},
    "manager": {"kind": "uncontrolled"},
}  # fmt: skip

# Five cars plug in one by one; the last leaves at 05:00, the others at 12:00. A driver who stays takes the
# least powerful free port: the first three the 7.4 kW boxes, the last two the 11 kW ones.
TRACE = """arrival,departure,energy_kwh,station
2026-03-02T00:00:00+01:00,2026-03-02T12:00:00+01:00,300,a
2026-03-02T00:00:10+01:00,2026-03-02T12:00:00+01:00,300,a
2026-03-02T00:00:20+01:00,2026-03-02T12:00:00+01:00,300,a
2026-03-02T00:00:30+01:00,2026-03-02T12:00:00+01:00,300,a
2026-03-02T00:00:40+01:00,2026-03-02T05:00:00+01:00,300,a
"""


def _two_level(tmp_path, limits="enforce"):
    data = dict(TWO_LEVEL)
    data["network"] = {"sites": [TWO_LEVEL["network"]["sites"][0] | {"limits": limits}]}
    (tmp_path / "trace.csv").write_text(TRACE)
    path = tmp_path / "two_level.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


def _caps_at(run, t_s):
    """Each port's cap (kW) on the interval open at `t_s` (0 for a port not charging then)."""
    iv = run.intervals
    caps = np.zeros(len(run.network.ports))
    on = (iv["t0_s"] <= t_s) & (iv["t1_s"] > t_s)
    for evse, pid in zip(iv["evse"][on].tolist(), iv["profile"][on].tolist(), strict=True):
        caps[evse] = run.profiles[pid].cap_kw
    return caps


def _hand_computed_caps():
    """The five caps, level by level, as docs/guide/grid.md (Local load management) works them out."""
    f1 = 30 / 44.2  # the connection: 7.4 × 3 + 11 × 2 = 44.2 kW wanted
    l1 = (7.4 + 7.4 + 22 / 3) * f1  # on L1: a.01 and a.05, and a third of each three-phase box
    f2 = 14.49 / l1  # L1 is over its 14.49 kW; L2 (7.4 f1 + 22/3 f1 = 10.0 kW) and L3 are not
    p1, p2 = 7.4 * f1 * f2, 7.4 * f1  # then the panel: each of its phases carries one 7.4 kW box
    assert min(p1, p2) > 3.68  # both over the panel's 3.68 kW: each is cut to exactly 3.68
    floor = lambda kw: math.floor(kw * 10) / 10  # noqa: E731 - caps in 0.1 kW, rounded down
    return [floor(3.68), floor(3.68), floor(11 * f1 * f2), floor(11 * f1 * f2), floor(7.4 * f1 * f2)]


def test_tree_factors_by_hand():
    """SiteTree scales the connection, then the supply's phases, then each panel's phases, as computed by hand."""
    plan = plan_network([Site.model_validate(TWO_LEVEL["network"]["sites"][0])])
    tree = SiteTree.of(plan.sites[0], plan.ports)
    demand = np.array([7.4, 7.4, 11.0, 11.0, 7.4])
    alloc = demand * tree.factors(demand, 30.0)
    caps = np.floor(alloc * 10) / 10
    assert caps.tolist() == [3.6, 3.6, 7.2, 7.2, 4.8]
    assert caps.tolist() == _hand_computed_caps()
    assert alloc[:2] == pytest.approx([3.68, 3.68])  # the panel's phases carry exactly their limit
    assert alloc.sum() <= 30.0
    assert tree.phase_load_kw(alloc).max() <= 14.49 + 1e-9
    # Nothing over a limit: nothing scaled.
    assert tree.factors(np.array([1.0, 1.0, 1.0, 1.0, 1.0]), 30.0).tolist() == [1.0] * 5


def test_enforce_caps_an_uncontrolled_site_as_computed_by_hand(tmp_path):
    """Five cars on the two-level network: the controller gives 3.6, 3.6, 7.2, 7.2, 4.8 kW, and more once one leaves.

    When the car on one 11 kW box has left (05:00): 7.4 × 3 + 11 = 33.2 kW wanted on the 30 kW connection,
    × 30/33.2; L1 then carries (7.4 + 7.4 + 11/3) × 30/33.2 = 16.69 kW, × 14.49/16.69 for the ports on it:
    the other 11 kW box 11 × 0.9036 × 0.8684 = 8.63 → 8.6 kW, the box on L1 7.4 × 0.7847 = 5.81 → 5.8 kW;
    the panel still cuts its boxes to 3.68 → 3.6 kW.
    """
    run = simulate(_two_level(tmp_path))
    assert _caps_at(run, 3600.0).tolist() == _hand_computed_caps() == [3.6, 3.6, 7.2, 7.2, 4.8]
    f1 = 30 / 33.2
    f2 = 14.49 / ((7.4 + 7.4 + 11 / 3) * f1)
    later = _caps_at(run, 6 * 3600.0).tolist()
    left = 2 if later[2] == 0 else 3  # which 11 kW box the last car took was the driver's pick
    stays = 5 - left
    assert later[left] == 0.0
    assert later[stays] == math.floor(110 * f1 * f2) / 10 == 8.6
    assert [later[0], later[1], later[4]] == [3.6, 3.6, math.floor(74 * f1 * f2) / 10] == [3.6, 3.6, 5.8]
    site = run.sites[0]
    power = phase_load_steps(run, site)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert power.max() <= site.phase_limit_kw + 1e-9
    assert load_steps(run)["power_kw"].max() <= 30.0 + 1e-9
    panel = phase_load_steps(run, site, panel=0)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert panel.max() <= 3.68 + 1e-9


def test_measure_is_the_default_and_lets_the_excess_through(tmp_path):
    """With ``limits: measure`` the same cars draw their ports' full power, and the phase KPI shows the excess."""
    scenario = _two_level(tmp_path, limits="measure")
    data = yaml.safe_load((tmp_path / "two_level.yaml").read_text())
    del data["network"]["sites"][0]["limits"]
    (tmp_path / "default.yaml").write_text(yaml.safe_dump(data))
    default = load_scenario(tmp_path / "default.yaml")
    assert default.network.sites[0].limits == "measure"
    run = simulate(scenario)
    assert _caps_at(run, 3600.0).tolist() == [7.4, 7.4, 11.0, 11.0, 7.4]
    kpis = write_results(run, tmp_path / "out")["grid"]["sites"]["a"]
    # L1: 7.4 + 7.4 + 22/3 = 22.13 kW against 14.49.
    assert kpis["phase_max_excess_kw"] == pytest.approx(7.4 + 7.4 + 22 / 3 - 14.49)
    assert not plan_of(default).sites[0].enforce


def test_enforced_garage_keeps_every_node_within_its_limit_at_every_instant(tmp_path):
    """Uncontrolled charging on the phase-limited garage, enforced: no phase, panel or connection over its limit."""
    scenario = load_scenario(GARAGE, horizon_days=3, seed=4)
    data = scenario.model_dump(mode="json")
    data["manager"] = {"kind": "uncontrolled"}
    site_cfg = data["network"]["sites"][0]
    site_cfg["capacity_kw"] = 25.0  # the connection binds too, now and then
    measured = simulate(type(scenario).model_validate(data))
    site_cfg["limits"] = "enforce"
    run = simulate(type(scenario).model_validate(data))
    site = run.sites[0]
    assert site.enforce
    phases = phase_load_steps(run, site)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert phases.max() <= site.phase_limit_kw + 1e-9
    panel = phase_load_steps(run, site, panel=1)[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert panel.max() <= 16 * 230 / 1000 + 1e-9
    assert load_steps(run)["power_kw"].max() <= 25.0 + 1e-9
    # Without the controller the same drivers overload every level; with it they still charge.
    before = phase_load_steps(measured, measured.sites[0])[["l1_kw", "l2_kw", "l3_kw"]].to_numpy()
    assert before.max() > site.phase_limit_kw
    assert load_steps(measured)["power_kw"].max() > 25.0
    assert np.nansum(run.sessions["energy_delivered_kwh"]) > 0.5 * np.nansum(measured.sessions["energy_delivered_kwh"])


def test_enforced_dc_cabinets_hold_the_connection_along_their_charge_curves():
    """Shared DC cabinets with falling charge curves: the site's load stays within the connection between events too."""
    scenario = load_scenario(ROOT / "scenarios" / "highway_corridor.yaml", horizon_days=2, seed=3)
    data = scenario.model_dump(mode="json")
    data["manager"] = {"kind": "uncontrolled"}
    for site in data["network"]["sites"]:
        site["limits"] = "enforce"
        site["capacity_kw"] = 0.25 * sum(g["power_kw"] * g["count"] * g["connectors"] for g in site["chargers"])
    run = simulate(type(scenario).model_validate(data))
    steps = load_steps(run)
    use = []
    for site in run.sites:
        power_kw = steps.loc[steps["site_id"] == site.site_id, "power_kw"]
        assert power_kw.max() <= site.grid_limit_kw + 1e-9
        use.append(power_kw.max() / site.grid_limit_kw)
    assert max(use) > 0.8  # the connection did bind


def test_gym_clip_respects_phases_and_panels_by_hand():
    """clip_to_site_limit on the garage at full power: 3.6 kW on L1/L2 boxes, 2.9 on L3, 2.7 on the panel's boxes.

    63 A is 14.49 kW a phase. Wanted: six 7.4 kW boxes (L1, L2, L3, L1, L2, L3), four 11 kW three-phase boxes on
    a 16 A panel and one 7.4 kW box on L3: 95.8 kW, within the 100 kW connection. L1 and L2 carry
    2 × 7.4 + 44/3 = 29.47 kW (× 0.4917), L3 3 × 7.4 + 44/3 = 36.87 kW (× 0.3930, also for the three-phase
    boxes): 3.64 → 3.6, 2.91 → 2.9 and 4.32 kW. The panel then carries 4 × 4.32 / 3 = 5.76 kW a phase against
    3.68: each three-phase box 4.32 × 3.68 / 5.76 = 2.76 → 2.7 kW.
    """
    env = ChargingEnv(GARAGE, horizon_days=1, clip_to_site_limit=True)
    env.reset(seed=1)
    env._wanting[:] = True  # every port has a car that wants power
    env._site_limit_kw[0] = 100.0
    kw = env._limits_kw(np.ones(len(env.port_ids), np.float32))
    f12, f3 = 14.49 / (2 * 7.4 + 44 / 3), 14.49 / (3 * 7.4 + 44 / 3)
    three = 11 * f3 * 3.68 / (4 * 11 * f3 / 3)
    floor = lambda x: math.floor(x * 10) / 10  # noqa: E731
    expected = [floor(7.4 * f) for f in (f12, f12, f3, f12, f12, f3)] + [floor(three)] * 4 + [floor(7.4 * f3)]
    assert kw.tolist() == expected == [3.6, 3.6, 2.9, 3.6, 3.6, 2.9, 2.7, 2.7, 2.7, 2.7, 2.9]


def test_gym_clip_keeps_phases_and_panels_within_limits_after_each_action():
    """With the safety layer, full-power actions leave no phase of the supply or of the panel over its limit."""
    env = ChargingEnv(GARAGE, horizon_days=2, clip_to_site_limit=True)
    plan = plan_of(env.scenario)
    share = np.array([p.phase_share for p in plan.ports])
    on_panel = np.array([p.panel == 1 for p in plan.ports])
    worst = {"phase": 0.0, "panel": 0.0}
    after_action = env._overload_now

    def check():  # right after the action: each port's power now, read from the manager's view
        site = env.simulation.view.site(env.site_ids[0])
        power = np.array([e.power_kw for e in site.evses])
        worst["phase"] = max(worst["phase"], float((power @ share).max()))
        worst["panel"] = max(worst["panel"], float(((power * on_panel) @ share).max()))
        return after_action()

    env._overload_now = check
    env.reset(seed=2)
    done = False
    while not done:
        _, _, done, _, _ = env.step(np.ones(len(env.port_ids), np.float32))
    assert 0.8 * 14.49 < worst["phase"] <= 14.49 + 1e-9
    assert 0.8 * 3.68 < worst["panel"] <= 3.68 + 1e-9


def test_enforced_garage_scenario_keeps_its_phases(tmp_path):
    """scenarios/enforced_garage.yaml: uncontrolled charging, enforced limits, no phase excess in kpis.json."""
    run = simulate(load_scenario(ROOT / "scenarios" / "enforced_garage.yaml", horizon_days=2))
    kpis = write_results(run, tmp_path / "out")["grid"]["sites"]["garage"]
    assert kpis["phase_max_excess_kw"] == 0.0
    assert 0.9 * 14.49 < max(kpis["phase_peak_kw"]) <= 14.49


@settings(max_examples=200, deadline=None)
@given(
    ports=st.lists(
        st.tuples(st.sampled_from([None, 0, 1, 2]), st.sampled_from([None, 0, 1]), st.floats(0.0, 60.0)),
        min_size=1,
        max_size=12,
    ),
    site_limit_kw=st.floats(0.0, 300.0),
    phase_limit_kw=st.one_of(st.just(math.inf), st.floats(0.0, 100.0)),
    panel_limit_kw=st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 50.0)),
)
def test_tree_keeps_every_node_within_its_limit(ports, site_limit_kw, phase_limit_kw, panel_limit_kw):
    """Whatever the wiring, panels, limits and wants: factors in [0, 1], and every node within its limit after."""
    site = SitePlan(0, SiteId("a"), site_limit_kw, site_limit_kw, phase_limit_kw)
    charger = ChargerPlan(0, ChargerId("a.01"), site, "box", 60.0, False)
    plans = [
        PortPlan(i, EvseId(f"a.01.{i}"), site, charger, 60.0, False, 1 if phase is not None else 3, phase, panel,
                 panel_limit_kw[panel] if panel is not None else math.inf)
        for i, (phase, panel, _) in enumerate(ports)
    ]  # fmt: skip
    tree = SiteTree.of(site, plans)
    demand = np.array([want for _, _, want in ports])
    f = tree.factors(demand, site_limit_kw)
    assert ((f >= 0) & (f <= 1)).all()
    alloc = demand * f
    assert alloc.sum() <= site_limit_kw * (1 + 1e-9) + 1e-9
    assert (tree.phase_load_kw(alloc) <= phase_limit_kw * (1 + 1e-9) + 1e-9).all()
    for n in (0, 1):
        mine = np.array([panel == n for _, panel, _ in ports])
        assert (tree.phase_load_kw(alloc * mine) <= panel_limit_kw[n] * (1 + 1e-9) + 1e-9).all()
