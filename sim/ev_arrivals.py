"""The EV-side facts of every arrival, drawn up front: usable connectors, data feeds, certificates, handshakes.

Each source of randomness has its own stream per demand entry (``ev_side:adapters:<tag>``,
``ev_side:telematics:<tag>``, ``ev_side:auth:<tag>``, ``ev_side:interop:<tag>``), so
switching one feature on changes neither the arrivals nor the other features' draws. This
module is imported by `sim.demand` and stays light: numpy and the connector tables only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from sim.compat import accepts_mask, bit, entry_family, entry_inlets, fleet_families
from sim.rng import stream

if TYPE_CHECKING:
    from sim.config import FleetEntry, Scenario

__all__ = ["NO_EV", "EvArrivals", "EvState", "NoEv", "draw"]


class EvState:
    """One arrival's EV-side facts and what happened to them: usable ports, attempts, authorisation."""

    __slots__ = (
        "accepts", "auth_method", "auth_s", "certificate_ok", "compat_miss", "exhausted", "fail_cause", "fallback",
        "family", "inlets", "interop_u", "last_cause", "next_u", "origin_site", "plug_and_charge", "ports_failed",
        "redirect_s", "report_phase_s", "soc_error_frac", "telematics", "tried", "visits",
    )  # fmt: skip

    def __init__(
        self,
        inlets: int,
        accepts: int,
        family: int,
        telematics: bool,
        soc_error_frac: float,
        report_phase_s: float,
        plug_and_charge: bool,
        certificate_ok: bool,
        fallback: bool,
        interop_u: list[float],
    ) -> None:
        """The drawn facts of one arrival; nothing has happened yet."""
        self.inlets = inlets  # connectors the EV takes without an adapter (mask)
        self.accepts = accepts  # ... and with the adapters its driver carries
        self.family = family
        self.telematics = telematics
        self.soc_error_frac = soc_error_frac
        self.report_phase_s = report_phase_s
        self.plug_and_charge = plug_and_charge
        self.certificate_ok = certificate_ok
        self.fallback = fallback  # can pay another way than Plug & Charge
        self.interop_u = interop_u
        self.next_u = 0
        self.tried: list[int] = []  # ports this driver will not try again
        self.ports_failed = 0
        self.exhausted = False  # gave up: leaves instead of trying another port
        self.visits = 0
        self.compat_miss = False
        self.origin_site = -1  # the site the driver left for this one, if redirected
        self.redirect_s = 0.0
        self.auth_method = 0
        self.auth_s = 0.0
        self.fail_cause = 0  # `sim.ev_side.CAUSES` code of the last failed attempt
        self.last_cause = 0


class NoEv:
    """The EV of a run without an ``ev_side`` section: nothing to authorise, so power flows at plug-in.

    One shared instance, `NO_EV`, holds no state: setting an attribute on it is an error.
    """

    __slots__ = ()
    auth_method = 0  # `sim.ev_side.AUTH_METHODS`: "none", not modelled
    auth_s = 0.0


NO_EV = NoEv()
"""Every session's `Session.ev` without an ``ev_side`` section."""


@dataclass(frozen=True)
class EvArrivals:
    """The EV-side draws of a site's arrivals, in arrival order, as columns."""

    inlets: np.ndarray
    accepts: np.ndarray
    family: np.ndarray
    telematics: np.ndarray
    soc_error_frac: np.ndarray
    report_phase_s: np.ndarray
    plug_and_charge: np.ndarray
    certificate_ok: np.ndarray
    fallback: np.ndarray
    interop_u: np.ndarray  # (arrivals, handshakes a driver can make at most); 0 columns without interop failures

    def __len__(self) -> int:
        """Number of arrivals."""
        return len(self.inlets)

    def take(self, rows: np.ndarray) -> EvArrivals:
        """The arrivals at `rows` (an index array or a mask), in that order."""
        return EvArrivals(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def concat(parts: Sequence[EvArrivals]) -> EvArrivals:
        """The arrivals of `parts`, one after another."""
        return EvArrivals(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(EvArrivals)})

    def states(self, lo: int, hi: int) -> list[EvState]:
        """`EvState`s of the arrivals ``lo:hi``."""
        cols = [getattr(self, f.name)[lo:hi].tolist() for f in fields(self)]
        return [EvState(*row) for row in zip(*cols, strict=True)]


def draw(
    scenario: Scenario, entries: list[FleetEntry], tag: str, index: dict[str, int], model: np.ndarray, iso: np.ndarray
) -> EvArrivals | None:
    """Draw the EV-side facts of arrivals of vehicle `model` (codes in `index`) from the fleet `entries`."""
    cfg = scenario.ev_side
    if cfg is None:
        return None
    n, n_models = len(model), len(index)
    families = fleet_families(scenario)
    width = max((len(e.adapters) for e in entries), default=0)
    inlets = np.zeros(n_models, dtype=np.int64)
    family = np.zeros(n_models, dtype=np.int64)
    telematics_share = np.zeros(n_models)
    pnc_given_iso = np.zeros(n_models)
    adapter_bit = np.zeros((n_models, width), dtype=np.int64)
    adapter_share = np.zeros((n_models, width))
    for e in entries:  # as for iso15118_share: a model listed twice takes its last entry
        m = index[e.ev_model().name]
        own = entry_inlets(e, cfg.market)
        assert own is not None  # the scenario check refuses a preset without inlets in the market
        inlets[m] = accepts_mask(own)
        family[m] = families.index(entry_family(e))
        telematics_share[m] = e.telematics_share
        pnc_given_iso[m] = e.plug_and_charge_share / e.iso15118_share if e.iso15118_share > 0 else 0.0
        for j, a in enumerate(e.adapters):
            adapter_bit[m, j], adapter_share[m, j] = bit(a.connector), a.share
    u = stream(scenario.seed, f"ev_side:adapters:{tag}").random((n, width))
    carried = np.where(u < adapter_share[model], adapter_bit[model], 0)
    accepts = inlets[model] | np.bitwise_or.reduce(carried, axis=1, initial=0)

    tel = cfg.telematics
    rng = stream(scenario.seed, f"ev_side:telematics:{tag}")
    u_tel, u_wrong, u_phase = rng.random((3, n))
    reports = u_tel < telematics_share[model]
    wrong = reports & (u_wrong < tel.wrong_share)
    soc_error = np.where(wrong, tel.soc_error_frac.draw(rng, n), 0.0)

    auth = cfg.authorization
    u_pnc, u_cert, u_fallback = stream(scenario.seed, f"ev_side:auth:{tag}").random((3, n))
    if auth is None:
        pnc, cert_ok, fallback = np.zeros(n, dtype=bool), np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    else:
        pnc = iso & (u_pnc < pnc_given_iso[model])
        cert_ok = u_cert >= auth.plug_and_charge.certificate_failure_prob
        fallback = ~pnc | (u_fallback < auth.plug_and_charge.fallback_share)

    interop = cfg.interop
    handshakes = (1 + interop.retries) * interop.ports_tried if interop.active else 0
    return EvArrivals(
        inlets[model],
        accepts,
        family[model],
        reports,
        soc_error,
        u_phase * tel.report_interval_s,
        pnc,
        cert_ok,
        fallback,
        stream(scenario.seed, f"ev_side:interop:{tag}").random((n, handshakes)),
    )
