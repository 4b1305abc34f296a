"""A DC cabinet whose connectors share its power (``shared: true``): split equally among the EVs drawing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.config import load_scenario
from sim.ev import PRESETS
from virtual_chargers.base import ChargerSpec, ConnectorSpec
from virtual_chargers.csms import Csms
from virtual_chargers.fleet import plan_scenario
from virtual_chargers.meter import EVSession
from virtual_chargers.testing import ChargerSet

ROOT = Path(__file__).resolve().parents[2]
EV = EVSession(PRESETS["ford_f150_lightning_er"], 0.1, 0.9)  # 155 kW peak, 131 kWh: draws all it may


def _power_w(mv: dict[str, Any]) -> float:
    return next(
        float(s["value"]) for s in mv["meterValue"][0]["sampledValue"] if s["measurand"] == "Power.Active.Import"
    )


def test_two_evs_share_the_cabinet_and_one_gets_it_all_when_the_other_leaves(arun: Any, tmp_path: Path) -> None:
    """150 kW cabinet: one EV draws more than half; two draw 75 kW each; when one leaves the other gets more again."""

    async def scenario() -> None:
        dc = ConnectorSpec(150.0, dc=True, voltage_v=400.0, phases=1)
        spec = ChargerSpec("CAB1", (dc, dc), shared_power_kw=150.0)
        async with Csms() as csms, ChargerSet(csms.url, speed=600.0, state_dir=tmp_path) as fleet:
            cp = await fleet.add_spec(spec, config={"MeterValueSampleInterval": "30"})
            await fleet.wait_booted(cp)
            rec = csms.records16

            def last_w(connector_id: int) -> float:
                return _power_w([p for _, p in rec.meter_values if p["connectorId"] == connector_id][-1])

            async def samples(connector_id: int, n: int) -> None:
                have = sum(1 for _, p in rec.meter_values if p["connectorId"] == connector_id)
                await rec.wait_for(
                    lambda: sum(1 for _, p in rec.meter_values if p["connectorId"] == connector_id) >= have + n, 10
                )

            await cp.plug_in(1, EV)
            await samples(1, 2)
            assert 75000.0 < last_w(1) <= 150000.0  # what the EV takes at its SoC, up to the cabinet's 150 kW
            await cp.plug_in(2, EV)
            await samples(1, 2)
            await samples(2, 1)
            assert last_w(1) == 75000.0
            assert last_w(2) == 75000.0
            await cp.unplug(1)
            await samples(2, 2)
            assert 75000.0 < last_w(2) <= 150000.0
            assert cp.connectors[1].meter.power_kw() == 0.0

    arun(scenario())


def test_scenario_shared_groups_become_shared_cabinets() -> None:
    """`shared: true` groups of a scenario plan chargers with shared_power_kw; the others have none."""
    scenario = load_scenario(ROOT / "scenarios" / "highway_corridor.yaml")
    plans = plan_scenario(scenario)
    groups = {
        (site.id, group.model): group for site in scenario.network.sites for group in site.chargers if group.shared
    }
    shared = [p.spec for p in plans if p.spec.shared_power_kw is not None]
    assert shared
    for spec in shared:
        assert len(spec.connectors) > 1
        assert any(
            spec.id.startswith(site) and spec.model == model and g.power_kw == spec.shared_power_kw
            for (site, model), g in groups.items()
        )
    assert any(p.spec.shared_power_kw is None for p in plans)
