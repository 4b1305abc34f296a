"""EV arrival processes: time-varying Poisson by local hour of the week, and trace replay.

All random numbers of a run's demand are drawn up front, in numpy batches, from streams
named after the site and the source (``arrivals:<site>:<i>``, ``energy:…``, ``dwell:…``,
``fleet:…``, ``patience:…``), so the simulation loop only reads arrays and a change to one
site's demand leaves every other site's arrivals as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim import ev_arrivals
from sim.csvfiles import read_trace
from sim.rng import stream
from sim.units import S_PER_H, S_PER_MIN
from sim.wallclock import WallClock

if TYPE_CHECKING:
    from sim.config import FleetEntry, Scenario, SyntheticDemand, TraceDemand
    from sim.ev import EVModel

__all__ = ["SiteArrivals", "fleet_models", "generate"]


@dataclass(frozen=True)
class SiteArrivals:
    """Every arrival at one site, in time order, as columns.

    ``model`` indexes the run's vehicle model list; ``dwell_s`` is the planned plugged-in
    time; ``patience_s`` the longest wait in the queue.
    """

    t_s: np.ndarray
    model: np.ndarray
    soc_in_frac: np.ndarray
    target_soc_frac: np.ndarray
    dwell_s: np.ndarray
    patience_s: np.ndarray
    leave_when_charged: np.ndarray
    max_queue: np.ndarray
    iso15118: np.ndarray  # the EV tells its departure and need (ISO 15118)
    ev: ev_arrivals.EvArrivals | None = None  # connectors, vehicle data, attempts (with an ev_side section)

    def __len__(self) -> int:
        """Number of arrivals."""
        return len(self.t_s)


def fleet_models(scenario: Scenario) -> list[EVModel]:
    """Every vehicle model the scenario can draw, in a fixed order (scenario fleet first)."""
    models: dict[str, EVModel] = {}
    for entries in [scenario.fleet, *(d.fleet for d in scenario.demand if d.fleet)]:
        for e in entries:
            m = e.ev_model()
            if models.setdefault(m.name, m) != m:
                raise ValueError(f"two different vehicle models are both named {m.name!r}")
    return list(models.values())


def _draw_models(rng: np.random.Generator, entries: list[FleetEntry], index: dict[str, int], n: int) -> np.ndarray:
    share = np.array([e.share for e in entries], dtype=float)
    codes = np.array([index[e.ev_model().name] for e in entries], dtype=np.int32)
    return codes[rng.choice(len(entries), size=n, p=share / share.sum())]


def _draw_iso15118(
    rng: np.random.Generator, entries: list[FleetEntry], index: dict[str, int], model: np.ndarray
) -> np.ndarray:
    """Which arrivals' EVs speak ISO 15118, by their fleet entry's share (own stream: nothing else moves)."""
    share = np.zeros(len(index))
    for e in entries:
        share[index[e.ev_model().name]] = e.iso15118_share
    return rng.random(len(model)) < share[model]


def _poisson_times(
    rng: np.random.Generator, weekly_per_hour: np.ndarray, clock: WallClock, horizon_s: float
) -> np.ndarray:
    """Arrival times (s since start) of a Poisson process with a rate per local hour of the week.

    Each local hour's rate applies to the real seconds the wall clock shows that hour: the
    hour skipped in spring gets no arrivals, the hour shown twice in autumn gets its rate twice.
    """
    lo, hi, shift = clock.pieces(S_PER_H, 0.0, horizon_s)
    rate = weekly_per_hour[(lo // S_PER_H).astype(np.int64) % 168]
    counts = rng.poisson(rate * (hi - lo) / S_PER_H)
    t = np.repeat(lo, counts) + rng.random(int(counts.sum())) * np.repeat(hi - lo, counts)
    return np.sort(t - (clock.week0_s + np.repeat(shift, counts)))


def _synthetic(
    scenario: Scenario, d: SyntheticDemand, tag: str, index: dict[str, int], models: list[EVModel], clock: WallClock
) -> SiteArrivals:
    t = _poisson_times(stream(scenario.seed, f"arrivals:{tag}"), d.rate.weekly_per_hour(), clock, scenario.horizon_s)
    n = len(t)
    model = _draw_models(stream(scenario.seed, f"fleet:{tag}"), d.fleet or scenario.fleet, index, n)
    energy_rng = stream(scenario.seed, f"energy:{tag}")
    soc_in = d.arrival_soc_frac.draw(energy_rng, n)
    if d.energy_need_kwh is not None:
        capacity = np.array([m.capacity_kwh for m in models])[model]
        target = np.minimum(1.0, soc_in + d.energy_need_kwh.draw(energy_rng, n) / capacity)
    else:
        target = np.maximum(soc_in, d.target.draw(energy_rng, n))
    dwell_rng = stream(scenario.seed, f"dwell:{tag}")
    dwell = d.dwell_min.draw(dwell_rng, n) * S_PER_MIN
    patience = d.patience_min.draw(stream(scenario.seed, f"patience:{tag}"), n) * S_PER_MIN
    iso = _draw_iso15118(stream(scenario.seed, f"ev_info:{tag}"), d.fleet or scenario.fleet, index, model)
    return SiteArrivals(
        t,
        model,
        soc_in,
        target,
        dwell,
        patience,
        np.full(n, d.leave_when_charged),
        np.full(n, d.max_queue, dtype=np.int32),
        iso,
        ev_arrivals.draw(scenario, d.fleet or scenario.fleet, tag, index, model, iso),
    )


def _trace(
    scenario: Scenario, d: TraceDemand, tag: str, index: dict[str, int], models: list[EVModel]
) -> dict[str, SiteArrivals]:
    df = read_trace(d.path)
    t = (df["arrival"] - pd.Timestamp(scenario.start)).dt.total_seconds().to_numpy()
    keep = (t >= 0) & (t < scenario.horizon_s)
    df, t = df[keep], t[keep]
    sites = np.full(len(df), d.site) if d.site is not None else df["station"].to_numpy()
    n = len(df)
    model = _draw_models(stream(scenario.seed, f"fleet:{tag}"), d.fleet or scenario.fleet, index, n)
    soc_in = d.arrival_soc_frac.draw(stream(scenario.seed, f"energy:{tag}"), n)
    capacity = np.array([m.capacity_kwh for m in models])[model]
    target = np.minimum(1.0, soc_in + df["energy_kwh"].to_numpy() / capacity)
    dwell = (df["departure"] - df["arrival"]).dt.total_seconds().to_numpy()
    patience = d.patience_min.draw(stream(scenario.seed, f"patience:{tag}"), n) * S_PER_MIN
    iso = _draw_iso15118(stream(scenario.seed, f"ev_info:{tag}"), d.fleet or scenario.fleet, index, model)
    ev = ev_arrivals.draw(scenario, d.fleet or scenario.fleet, tag, index, model, iso)
    out = {}
    for site in dict.fromkeys(sites):
        m = sites == site
        order = np.argsort(t[m], kind="stable")
        out[str(site)] = SiteArrivals(
            t[m][order],
            model[m][order],
            soc_in[m][order],
            target[m][order],
            dwell[m][order],
            patience[m][order],
            np.zeros(int(m.sum()), dtype=bool),
            np.full(int(m.sum()), d.max_queue, dtype=np.int32),
            iso[m][order],
            ev.take(np.flatnonzero(m)[order]) if ev is not None else None,
        )
    return out


def _merge(parts: list[SiteArrivals]) -> SiteArrivals:
    if len(parts) == 1:
        return parts[0]
    cols = {f: np.concatenate([getattr(p, f) for p in parts]) for f in SiteArrivals.__dataclass_fields__ if f != "ev"}
    order = np.argsort(cols["t_s"], kind="stable")
    evs = [p.ev for p in parts if p.ev is not None]
    ev = ev_arrivals.EvArrivals.concat(evs).take(order) if evs else None
    return SiteArrivals(**{f: c[order] for f, c in cols.items()}, ev=ev)


def generate(scenario: Scenario, models: list[EVModel]) -> dict[str, SiteArrivals]:
    """Draw every arrival of the run, per site id (sites without demand get none)."""
    index = {m.name: i for i, m in enumerate(models)}
    parts: dict[str, list[SiteArrivals]] = {s.id: [] for s in scenario.network.sites}
    clock = WallClock.of(scenario)
    for i, d in enumerate(scenario.demand):
        if d.kind == "synthetic":
            parts[d.site].append(_synthetic(scenario, d, f"{d.site}:{i}", index, models, clock))
        else:
            for site, arr in _trace(scenario, d, f"trace:{i}", index, models).items():
                parts[site].append(arr)
    f = np.zeros(0)
    empty = SiteArrivals(
        f,
        np.zeros(0, dtype=np.int32),
        f,
        f,
        f,
        f,
        np.zeros(0, dtype=bool),
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=bool),
    )
    return {site: _merge(p) if p else empty for site, p in parts.items()}
