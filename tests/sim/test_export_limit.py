"""Local load management with V2G (``limits: enforce``): the export limit, kept by scaling the discharges.

A node's export is what the connectors under it give back less what the charging ones draw; the
controller scales the discharges so that no node exports more than its limit (the connection its
`export_limit_kw`, a phase or a panel phase its limit), the charging counted at the least it can
draw until the next change. Expected numbers are worked out by hand or recomputed from the
recorded intervals and discharges rows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.config import Site, load_scenario
from sim.engine import RunTables, simulate
from sim.load_tree import SiteTree
from sim.managers.base import SessionStarted, SetPowerLimit, SetTimer, StatusChanged, Timer
from sim.metrics import load_15min
from sim.network_plan import plan_network
from sim.results import write_results
from tests.conftest import make_scenario

ROOT = Path(__file__).resolve().parents[2]
H = 3600.0
floor01 = lambda kw: math.floor(kw * 10) / 10  # noqa: E731 - caps in 0.1 kW, rounded down

# A van-sized battery that charges at 22 kW on AC and gives back 10 kW, on four bidirectional 11 kW boxes.
VAN = {"name": "van", "capacity_kwh": 100, "ac_max_kw": 22, "dc_curve": [[0, 50], [1, 50]]}
FOUR_BOXES = {
    "sites": [
        {
            "id": "a",
            "lat": 52.0,
            "lon": 4.0,
            "capacity_kw": 100,
            "limits": "enforce",
            "chargers": [{"model": "bi", "count": 4, "power_kw": 11, "current": "ac", "bidirectional": True}],
        }
    ]
}
# Three vans come at 0, 10 and 20 s to give energy back, a fourth at 30 s to charge; it leaves at 01:00.
TRACE = """arrival,departure,energy_kwh,station
2026-03-02T00:00:00+01:00,2026-03-02T12:00:00+01:00,40,a
2026-03-02T00:00:10+01:00,2026-03-02T12:00:00+01:00,40,a
2026-03-02T00:00:20+01:00,2026-03-02T12:00:00+01:00,40,a
2026-03-02T00:00:30+01:00,2026-03-02T01:00:00+01:00,40,a
"""


class _ByArrival:
    """Sets the n-th session's connector to the n-th limit of `limits_kw` (negative: discharge) as it starts."""

    def __init__(self, limits_kw: list[float]) -> None:
        self.limits_kw = limits_kw
        self.n = 0

    def handle(self, event, network):
        if isinstance(event, SessionStarted):
            self.n += 1
            return [SetPowerLimit(event.evse_id, self.limits_kw[self.n - 1])]
        return ()


def _four_vans(tmp_path, limits: str = "enforce", pv_kw: float | None = None):
    (tmp_path / "trace.csv").write_text(TRACE)
    data = {
        "name": "four_vans",
        "seed": 1,
        "start": "2026-03-02T00:00:00+01:00",
        "timezone": "Europe/Berlin",
        "horizon_days": 1,
        "network": {"sites": [FOUR_BOXES["sites"][0] | {"limits": limits}]},
        "fleet": [{"model": VAN, "share": 1, "iso15118_share": 1.0,
                   "v2g": {"max_discharge_kw": 10, "min_soc_frac": 0.1}}],
        "demand": [{"kind": "trace", "path": "trace.csv", "arrival_soc_frac": 0.5, "patience_min": 0}],
        "tariff": {"currency": "EUR", "price_per_kwh": 0.3},
        "manager": {"kind": "uncontrolled"},
        "grid": {"sites": {"a": {"export_limit_kw": 20}}},
    }  # fmt: skip
    if pv_kw is not None:
        data["grid"]["sites"]["a"]["pv"] = {"peak_kw": pv_kw, "profile_by_hour": [0.0] + [1.0] * 23}
    path = tmp_path / "four_vans.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


def _discharge_kw_at(run: RunTables, t_s: float) -> dict[int, float]:
    """Each port's discharge power (kW, > 0) on the stretch open at `t_s`."""
    d = run.discharges
    assert d is not None
    on = (d["t0_s"] <= t_s) & (d["t1_s"] > t_s)
    return {int(e): float(-p) for e, p in zip(d["evse"][on], d["power_kw"][on], strict=True)}


def test_three_discharges_under_a_20_kw_export_limit_and_one_charging_as_computed_by_hand(tmp_path):
    """3 × 10 kW asked, 20 kW allowed: 6.6 kW each; while a fourth charges at 7 kW, 9.0 kW each (export 20 kW).

    Alone, the first two give 10 kW each (20 kW, within the limit). The third makes 30 kW: each is scaled by
    20 / 30, 6.67 → 6.6 kW (rounded down to 0.1 kW), 19.8 kW exported. The fourth charges at 7 kW on a flat AC
    curve, the least it draws until it leaves: the site may export 20 kW net, so the discharges may reach
    20 + 7 = 27 kW, × 27 / 30: 9.0 kW each, 27 − 7 = 20 kW exported. When it leaves, 6.6 kW each again.
    """
    run = simulate(_four_vans(tmp_path), manager=_ByArrival([-10.0, -10.0, -10.0, 7.0]))
    assert _discharge_kw_at(run, 5.0) == {0: 10.0}
    assert _discharge_kw_at(run, 15.0) == {0: 10.0, 1: 10.0}
    third = floor01(10.0 * 20 / 30)
    assert third == 6.6
    assert _discharge_kw_at(run, 25.0) == {0: third, 1: third, 2: third}
    with_charging = floor01(10.0 * (20 + 7) / 30)
    assert with_charging == 9.0
    assert _discharge_kw_at(run, 1800.0) == {0: with_charging, 1: with_charging, 2: with_charging}
    assert 3 * with_charging - 7.0 == pytest.approx(20.0)
    assert _discharge_kw_at(run, 2 * H) == {0: third, 1: third, 2: third}
    iv = run.intervals  # the fourth charged at 7 kW the whole hour, untouched
    assert [run.profiles[p].cap_kw for p in iv["profile"][iv["evse"] == 3]] == [7.0]
    assert write_results(run, tmp_path / "out")["v2g"]["network"]["export_limit_minutes"] == 0.0


def test_measure_lets_the_export_through(tmp_path):
    """The same vans with ``limits: measure``: every one gives its 10 kW, and the KPI shows the excess."""
    run = simulate(_four_vans(tmp_path, limits="measure"), manager=_ByArrival([-10.0, -10.0, -10.0, 7.0]))
    assert _discharge_kw_at(run, 25.0) == {0: 10.0, 1: 10.0, 2: 10.0}
    assert _discharge_kw_at(run, 1800.0) == {0: 10.0, 1: 10.0, 2: 10.0}
    v2g = write_results(run, tmp_path / "out")["v2g"]["network"]
    assert v2g["export_limit_minutes"] > 0
    assert v2g["export_limit_max_excess_kw"] == pytest.approx(30.0 - 20.0)  # once the fourth has left


def test_pv_counts_against_the_export_limit(tmp_path):
    """With 5 kW of PV from 01:00, the three vans may export 15 kW between them: 5.0 kW each."""
    run = simulate(_four_vans(tmp_path, pv_kw=5.0), manager=_ByArrival([-10.0, -10.0, -10.0, 7.0]))
    assert _discharge_kw_at(run, 25.0) == {0: 6.6, 1: 6.6, 2: 6.6}  # no PV before 01:00 (local time)
    assert (
        _discharge_kw_at(run, 2 * H)
        == {k: floor01(10.0 * (20 - 5) / 30) for k in range(3)}
        == dict.fromkeys(range(3), 5.0)
    )


def test_export_factors_scale_the_phases_and_panels_by_hand():
    """SiteTree.export_factors on the two-level network: the connection, then L1, then the panel, as worked out.

    Ports: a.01 (L1, panel of 3.68 kW a phase), a.02 (L2, panel), a.03 and a.04 (three-phase), a.05 (L1); the
    supply carries 14.49 kW a phase. a.01, a.03 and a.05 discharge 7.4, 11 and 7.4 kW; a.04 charges at 6 kW
    (2 kW a phase). The connection may export 30 kW: 25.8 kW of discharge less 6 absorbed is within it.
    L1 exports 7.4 + 11/3 + 7.4 − 2 = 16.47 kW: × (14.49 + 2) / 18.47 for a.01, a.03 and a.05 (L2 and L3 carry
    11/3 − 2). The panel's L1 then carries a.01's 7.4 × 0.8929 = 6.61 kW: × 3.68 / 6.61, which leaves L1 below
    its limit (scaling only reduces).
    """
    from tests.sim.test_load_tree import TWO_LEVEL

    plan = plan_network([Site.model_validate(TWO_LEVEL["network"]["sites"][0])])
    tree = SiteTree.of(plan.sites[0], plan.ports)
    out = np.array([7.4, 0.0, 11.0, 0.0, 7.4])
    absorb = np.array([0.0, 0.0, 0.0, 6.0, 0.0])
    g = tree.export_factors(out, absorb, 30.0)
    f_l1 = (14.49 + 2.0) / (7.4 + 11 / 3 + 7.4)
    f_panel = 3.68 / (7.4 * f_l1)
    assert g[[0, 2, 4]] == pytest.approx([f_l1 * f_panel, f_l1, f_l1])
    alloc = out * g
    l23 = 11 * f_l1 / 3 - 2.0
    assert (alloc - absorb) @ tree.share == pytest.approx([3.68 + (11 / 3 + 7.4) * f_l1 - 2.0, l23, l23])
    assert ((alloc - absorb) @ tree.share)[0] < 14.49  # the panel's cut leaves L1 under its limit
    # The connection binds first: 25.8 kW of discharge with 6 absorbed and 10 allowed: × 16 / 25.8.
    assert tree.export_factors(out, absorb, 10.0)[2] == pytest.approx(16.0 / 25.8)
    # Nothing over a limit, or nothing discharging: nothing scaled.
    assert tree.export_factors(out * 0.1, absorb, 30.0).tolist() == [1.0] * 5
    assert tree.export_factors(np.zeros(5), absorb, 0.0).tolist() == [1.0] * 5


# ---------------------------------------------------------------- properties


class _RandomV2g:
    """Answers events with limits drawn from a list (negative ones ask for discharge), and re-draws on timers."""

    def __init__(self, limits: list[float], every_s: float) -> None:
        self.limits = limits
        self.every_s = every_s
        self.k = 0

    def _next(self) -> float:
        self.k += 1
        return self.limits[self.k % len(self.limits)]

    def handle(self, event, network):
        if isinstance(event, Timer):
            out: list = [SetTimer(event.t_s + self.every_s, "again")]
            for sid in network.site_ids():
                out += [SetPowerLimit(e.evse_id, self._next()) for e in network.site(sid).evses if e.session_id]
            return out
        if isinstance(event, SessionStarted | StatusChanged):
            return [SetPowerLimit(event.evse_id, self._next())]
        return ()


def _worst_export_kw(run: RunTables, share: np.ndarray | None = None, ports: np.ndarray | None = None) -> np.ndarray:
    """The most each node exported at any instant, recomputed from the intervals and discharges rows.

    Between two consecutive starts or ends of any row every discharge is constant and every charging
    interval's power moves along its curve, linear in SoC piece by piece: the least it drew there is at the
    SoC of either end or at a curve point in between. Per phase with `share` (n ports × 3), else for the site;
    `ports` marks the connectors under the node (all by default).
    """
    iv, d = run.intervals, run.discharges
    assert d is not None
    n = len(run.network.ports)
    share = np.ones((n, 1)) if share is None else share
    under = np.ones(n, dtype=bool) if ports is None else ports
    cuts = np.unique(np.concatenate([[0.0], iv["t0_s"], iv["t1_s"], d["t0_s"], d["t1_s"]]))
    worst = np.full(share.shape[1], -math.inf)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        mid = 0.5 * (a + b)
        net = np.zeros(share.shape[1])
        on = (d["t0_s"] <= mid) & (d["t1_s"] > mid)
        for e, p in zip(d["evse"][on], d["power_kw"][on], strict=True):
            if under[e]:
                net += -p * share[e]
        on = (iv["t0_s"] <= mid) & (iv["t1_s"] > mid)
        for e, pid, t0, tau0 in zip(iv["evse"][on], iv["profile"][on], iv["t0_s"][on], iv["tau0_s"][on], strict=True):
            if not under[e]:
                continue
            prof = run.profiles[pid]
            s0, s1 = prof.soc_at(tau0 + a - t0), prof.soc_at(tau0 + b - t0)
            socs = [s0, s1, *(x for x in prof.soc if s0 < x < s1)]
            net -= min(prof.power_at(s) for s in socs) * share[e]
        worst = np.maximum(worst, net)
    return worst


def _enforced_v2g_scenario(data) -> tuple[Any, float]:
    """One-way and bidirectional AC and DC ports, V2G and one-way EVs, an export limit; phases maybe."""
    export_kw = data.draw(st.floats(0.0, 40.0))
    site: dict[str, Any] = {
        "id": "a",
        "lat": 0.0,
        "lon": 0.0,
        "capacity_kw": data.draw(st.floats(30.0, 300.0)),
        "limits": "enforce",
        "chargers": [
            {"model": "ac_bi", "count": data.draw(st.integers(1, 4)),
             "power_kw": data.draw(st.sampled_from([7.4, 11.0, 22.0])), "current": "ac", "bidirectional": True},
            {"model": "ac_bi_1ph", "count": data.draw(st.integers(0, 2)) or 1, "power_kw": 7.4, "current": "ac",
             "phases": 1, "bidirectional": True},
            {"model": "dc_bi", "count": 1, "power_kw": 50.0, "current": "dc", "bidirectional": True,
             "max_discharge_kw": data.draw(st.floats(5.0, 50.0))},
            {"model": "ac_uni", "count": data.draw(st.integers(1, 2)), "power_kw": 11.0, "current": "ac"},
        ],
    }  # fmt: skip
    if data.draw(st.booleans()):
        site["phase_limit_a"] = data.draw(st.floats(16.0, 100.0))
    if data.draw(st.booleans()):  # the single-phase boxes on a panel
        site["chargers"][1]["panel_phase_limit_a"] = data.draw(st.floats(8.0, 40.0))
    fleet = [
        {"preset": "nissan_leaf_40", "share": 1, "iso15118_share": 1.0,
         "v2g": {"max_discharge_kw": data.draw(st.floats(1.0, 60.0)), "min_soc_frac": data.draw(st.floats(0.05, 0.5))}},
        {"preset": "hyundai_ioniq_5_lr", "share": 1, "iso15118_share": 1.0, "v2g": {"max_discharge_kw": 11.0}},
        {"preset": "vw_id4_pro", "share": 1, "iso15118_share": 0.5},  # no V2G
    ]  # fmt: skip
    sc = make_scenario(
        network={"sites": [site]},
        fleet=fleet,
        demand=[{"kind": "synthetic", "site": "a",
                 "rate": {"kind": "constant", "per_hour": data.draw(st.floats(1.0, 6.0))},
                 "dwell_min": {"dist": "uniform", "low": 60, "high": 720},
                 "arrival_soc_frac": {"dist": "uniform", "low": 0.2, "high": 0.95},
                 "target_soc_frac": data.draw(st.floats(0.5, 1.0)), "max_queue": 1}],
        grid={"sites": {"a": {"export_limit_kw": export_kw}}},
        horizon_days=1.0,
        seed=data.draw(st.integers(0, 2**31 - 1)),
    )  # fmt: skip
    return sc, export_kw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_enforce_keeps_the_net_export_within_the_limit_at_every_instant(data):
    """Any mix of charge and discharge commands under ``enforce``: no node ever exports more than its limit.

    The connection's export (discharges less charging) stays within `export_limit_kw`, and with a phase limit
    every phase's within it, at every instant, recomputed from the recorded rows; energy is conserved.
    """
    sc, export_kw = _enforced_v2g_scenario(data)
    ask = data.draw(st.sampled_from([-100.0, -20.0, -7.0, -3.0]))  # at least one command asks for discharge
    commands = [ask, *data.draw(st.lists(st.sampled_from([-100.0, -20.0, -7.0, -3.0, 0.0, 2.0, 7.0, 11.0, math.inf]),
                                         max_size=7))]  # fmt: skip
    run = simulate(sc, manager=_RandomV2g(commands, data.draw(st.floats(300.0, 7200.0))))
    d = run.discharges
    assert d is not None
    event("discharged" if len(d["t0_s"]) else "no discharge")
    site = run.network.sites[0]
    export = _worst_export_kw(run)[0]
    event("export limit binds" if export > export_kw - 0.5 else "export limit slack")
    assert export <= min(export_kw, site.grid_limit_kw) + 1e-6
    if site.phase_limit_kw < math.inf:
        share = np.array([p.phase_share for p in run.network.ports])
        assert (_worst_export_kw(run, share) <= site.phase_limit_kw + 1e-6).all()
    panel = np.array([p.panel is not None for p in run.network.ports])
    if panel.any():
        limit_kw = run.network.ports[int(np.flatnonzero(panel)[0])].panel_phase_limit_kw
        share = np.array([p.phase_share for p in run.network.ports])
        assert (_worst_export_kw(run, share, panel) <= limit_kw + 1e-6).all()
    # Energy charged − energy discharged = ΔSoC × capacity, per session and for the site.
    s = run.sessions
    capacity = np.array([m.capacity_kwh for m in run.models])[s["model"]]
    out = np.array(
        [float((-d["power_kw"] * (d["t1_s"] - d["t0_s"]))[d["session_id"] == i].sum()) / H for i in s["session_id"]]
    )
    net = (s["soc_out_frac"] - s["soc_in_frac"]) * capacity
    np.testing.assert_allclose(s["energy_delivered_kwh"] - out, net, atol=1e-6)
    assert load_15min(run)["energy_kwh"].sum() == pytest.approx(net.sum(), abs=1e-6)


def test_a_manager_that_keeps_the_export_limit_is_never_scaled():
    """v2g_garage under ``enforce``: v2g_price_arbitrage keeps the 80 kW itself, so every row is as with ``measure``."""
    scenario = load_scenario(ROOT / "scenarios" / "v2g_garage.yaml", horizon_days=3)
    data = scenario.model_dump(mode="json")
    data["network"]["sites"][0]["limits"] = "enforce"
    enforced = simulate(type(scenario).model_validate(data))
    measured = simulate(scenario)
    assert enforced.discharges is not None
    assert len(enforced.discharges["t0_s"]) > 20
    for table in ("sessions", "intervals", "discharges", "events"):
        x, y = getattr(enforced, table), getattr(measured, table)
        for column in x:
            np.testing.assert_array_equal(x[column], y[column])
