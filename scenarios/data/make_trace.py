"""Generate `sessions_trace.csv`: 14 days of plausible recorded sessions at two Ghent sites.

The trace stands in for a charge-point operator's session export (arrival, departure,
energy_kwh, station) for `scenarios/trace_replay.yaml`. Three kinds of driver, with
shapes from published public-charging data (ElaadNL, the Flemish open charging data):
weekday commuters at the railway stations' car parks, daytime visitors, and residents
who plug in after work and leave next morning. Each candidate session is kept only if
one of its station's ports is free at its arrival, as in a real export, which holds only
the sessions that happened. The energy is what the car could take in its dwell at the
port's power (cars limited to 11 kW on AC), capped by its need.

Run from anywhere: ``python scenarios/data/make_trace.py``; it rewrites the CSV next to
this file. Same seed, same file: no network, numpy only.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

SEED = 20260302
START = dt.datetime(2026, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # Monday, CET
DAYS = 14
OUT = Path(__file__).with_name("sessions_trace.csv")

# station: (ports, port power kW, mean sessions per weekday and per weekend day by kind)
STATIONS = {
    "gent_sint_pieters": {
        "ports": 12,
        "power_kw": 22.0,
        "weekday": {"commuter": 9.0, "visitor": 6.0, "resident": 1.0},
        "weekend": {"commuter": 1.0, "visitor": 6.0, "resident": 1.0},
    },
    "gent_dampoort": {
        "ports": 8,
        "power_kw": 11.0,
        "weekday": {"commuter": 2.5, "visitor": 3.5, "resident": 4.0},
        "weekend": {"commuter": 0.5, "visitor": 4.0, "resident": 4.0},
    },
}
CAR_AC_KW = 11.0  # most cars' on-board charger
CHARGE_EFFICIENCY = 0.92  # energy metered at the port per kWh of nominal power time


def _draw(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrival hour of day and dwell in hours for `n` sessions of one kind."""
    if kind == "commuter":  # the 7:00-9:00 trains; a working day plus the ride
        return rng.normal(7.8, 0.7, n), rng.lognormal(np.log(9.5), 0.15, n)
    if kind == "visitor":  # shops, appointments, visits; a couple of hours
        return rng.uniform(9.0, 20.0, n), rng.lognormal(np.log(2.0), 0.6, n)
    # resident: after work, until the next morning
    return rng.normal(18.5, 1.3, n), rng.normal(13.0, 1.5, n)


def sessions(rng: np.random.Generator) -> list[tuple[dt.datetime, dt.datetime, float, str]]:
    """Every kept session, in arrival order."""
    rows = []
    for station, spec in STATIONS.items():
        cand = []
        for day in range(DAYS):
            weekend = (START + dt.timedelta(days=day)).weekday() >= 5
            for kind, mean in spec["weekend" if weekend else "weekday"].items():
                n = rng.poisson(mean)
                hour, dwell_h = _draw(kind, rng, n)
                need_kwh = rng.lognormal(np.log(14.0 if kind == "resident" else 11.0), 0.5, n)
                for h, d, e in zip(hour, dwell_h, need_kwh, strict=True):
                    arrival = START + dt.timedelta(days=day, hours=float(np.clip(h, 0.0, 23.99)))
                    dwell_min = max(10, round(float(d) * 60))
                    cand.append((arrival.replace(second=0, microsecond=0), dwell_min, float(e)))
        cand.sort()
        busy_until: list[dt.datetime] = []  # departure of the car at each occupied port
        power_kw = min(spec["power_kw"], CAR_AC_KW)
        for arrival, dwell_min, need in cand:
            busy_until = [t for t in busy_until if t > arrival]
            if len(busy_until) >= spec["ports"]:
                continue  # every port taken: this car never charged here, so no record
            departure = arrival + dt.timedelta(minutes=dwell_min)
            busy_until.append(departure)
            energy = min(need, power_kw * CHARGE_EFFICIENCY * dwell_min / 60)
            rows.append((arrival, departure, round(energy, 3), station))
    rows.sort()
    return rows


def main() -> None:
    """Write the CSV and say how many sessions it holds."""
    rows = sessions(np.random.default_rng(SEED))
    with OUT.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["arrival", "departure", "energy_kwh", "station"])
        for arrival, departure, energy, station in rows:
            w.writerow([arrival.isoformat(), departure.isoformat(), f"{energy:.3f}", station])
    print(f"{OUT.name}: {len(rows)} sessions, {rows[0][0]:%Y-%m-%d} to {max(r[1] for r in rows):%Y-%m-%d %H:%M}")  # noqa: T201


if __name__ == "__main__":
    main()
