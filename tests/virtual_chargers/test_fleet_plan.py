"""Planning a fleet run from a scenario: drivers who find every connector taken queue as in the simulation."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sim.config import load_scenario
from sim.demand import fleet_models, generate
from virtual_chargers.fleet import plan_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_full_sites_queue_drivers_within_patience_and_max_queue() -> None:
    """Queued drivers plug in when a connector frees, never past their patience nor beyond max_queue waiting."""
    scenario = load_scenario(ROOT / "scenarios" / "small_city.yaml")
    plans = plan_scenario(scenario)
    arrivals = generate(scenario, fleet_models(scenario))
    by_port: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    waits: dict[str, list[tuple[float, float]]] = defaultdict(list)  # site → (arrival, plug-in) of queued drivers
    for plan in plans:
        site = plan.spec.id.rsplit(".", 1)[0]  # charger ids are the simulation's: <site>.<nn>
        patience = dict(zip(arrivals[site].t_s.tolist(), arrivals[site].patience_s.tolist(), strict=True))
        max_queue = int(arrivals[site].max_queue[0])
        for s in plan.sessions:
            by_port[(plan.spec.id, s.connector_id)].append((s.t_s, s.t_s + s.dwell_s))
            arrival_t_s = s.t_s - s.wait_s
            assert min(abs(arrival_t_s - t) for t in patience) < 1e-6  # a drawn arrival
            if s.wait_s > 0:
                assert s.wait_s <= patience[min(patience, key=lambda t: abs(t - arrival_t_s))] + 1e-6
                waits[site].append((arrival_t_s, s.t_s))
        for arrival_t_s, _ in waits[site]:
            waiting = sum(1 for a, p in waits[site] if a <= arrival_t_s < p)
            assert waiting <= max_queue + 1  # the ones already waiting, plus this driver
    for sessions in by_port.values():
        sessions.sort()
        for (_, end), (start, _) in zip(sessions, sessions[1:], strict=False):
            assert start >= end  # one EV at a time on a connector
    assert sum(len(w) for w in waits.values()) >= 1  # small_city's science park fills up and queues
