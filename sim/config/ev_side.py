"""The `ev_side` section: connector standards, vehicle data, interoperability and Plug & Charge.

Without an `ev_side` section every EV can use every port, every handshake succeeds, no
vehicle reports through telematics and sessions start at once, as before the section
existed. With it, charger groups have a connector standard (by default the market's for
their current, see `sim.compat`), fleet entries have inlets, adapters and data shares,
and the run records every plug-in attempt.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sim.compat import (
    DC_INLETS,
    MARKET_DEFAULTS,
    Connector,
    Market,
    entry_inlets,
    fleet_entries,
    fleet_families,
)
from sim.config.base import Distribution, Normal, StrictModel, within

__all__ = [
    "Adapter",
    "Authorization",
    "EvSide",
    "Interop",
    "InteropFailure",
    "PlugAndCharge",
    "Redirect",
    "StartTimes",
    "Telematics",
    "check_ev_side",
]


class Adapter(StrictModel):
    """An adapter some drivers of a model carry: the EV can then use connectors of another standard."""

    connector: Connector = Field(description="the charger connector the adapter takes")
    share: float = Field(ge=0, le=1, description="share of these drivers who carry one")


class Telematics(StrictModel):
    """The OEM telematics feed: vehicle data the network manager gets late, at intervals, sometimes wrong."""

    latency_s: float = Field(default=60.0, ge=0, description="delay from the vehicle to the network manager")
    report_interval_s: float = Field(default=300.0, ge=0, description="time between reports; 0: continuous")
    wrong_share: float = Field(default=0.0, ge=0, le=1, description="share of sessions whose reported SoC is off")
    soc_error_frac: Distribution = Field(
        default=Normal(dist="normal", mean=0.0, std=0.1, low=-0.5, high=0.5),
        description="added to the reported SoC of those sessions (drawn once per session)",
    )

    @model_validator(mode="after")
    def _check(self) -> Telematics:
        within("soc_error_frac", self.soc_error_frac, -1.0, 1.0)
        return self


class InteropFailure(StrictModel):
    """The handshake failure probability of one EV family on one charger model."""

    family: str = Field(min_length=1, description="EV family")
    charger_model: str = Field(min_length=1, description="charger model")
    failure_prob: float = Field(ge=0, lt=1, description="probability a handshake of this pair fails")


class Interop(StrictModel):
    """EV–charger handshake failures: each attempt fails independently with its pair's probability."""

    failure_prob: float = Field(default=0.0, ge=0, lt=1, description="for every pair not listed in `pairs`")
    pairs: list[InteropFailure] = Field(default_factory=list, description="EV family × charger model matrix")
    retries: int = Field(default=1, ge=0, le=10, description="attempts on the same port after a failed one")
    ports_tried: int = Field(default=2, ge=1, le=10, description="ports a driver tries before leaving")

    @model_validator(mode="after")
    def _unique(self) -> Interop:
        seen: set[tuple[str, str]] = set()
        for i, p in enumerate(self.pairs):
            if (p.family, p.charger_model) in seen:
                raise ValueError(f"pairs[{i}]: {p.family} × {p.charger_model} is given twice; keep one")
            seen.add((p.family, p.charger_model))
        return self

    @property
    def active(self) -> bool:
        """Whether any handshake can fail."""
        return self.failure_prob > 0 or any(p.failure_prob > 0 for p in self.pairs)


class StartTimes(StrictModel):
    """From plug-in to power, by the way a driver pays (the `payments` methods): authorisation and start."""

    app: float = Field(default=60.0, ge=0, description="drivers paying by app")
    rfid: float = Field(default=20.0, ge=0, description="drivers paying by RFID card")
    contactless: float = Field(default=45.0, ge=0, description="drivers paying by contactless card")
    qr: float = Field(default=50.0, ge=0, description="drivers paying by QR code")
    unknown: float = Field(default=20.0, ge=0, description="drivers without a payment method (no payments section)")


class PlugAndCharge(StrictModel):
    """ISO 15118 Plug & Charge: the EV's contract certificate authorises the session and pays for it."""

    start_s: float = Field(default=5.0, ge=0, description="from plug-in to power")
    certificate_failure_prob: float = Field(default=0.0, ge=0, le=1, description="a session's certificate is refused")
    fallback_share: float = Field(
        default=1.0, ge=0, le=1, description="share of Plug & Charge drivers who can also pay another way"
    )
    charger_models: list[str] | None = Field(default=None, description="charger models that accept it; none: all")
    fee_pct: float = Field(default=0.0, ge=0, le=100, description="the contract provider's fee, percent of the amount")
    fee_fixed: float = Field(default=0.0, ge=0, description="... and per session")


class Authorization(StrictModel):
    """Session start: how long each way of paying takes, and Plug & Charge as a way of paying."""

    start_s: StartTimes = Field(default=StartTimes(), description="time from plug-in to power, by payment method")
    plug_and_charge: PlugAndCharge = Field(
        default=PlugAndCharge(), description="Plug & Charge (ISO 15118 contract certificates)"
    )


class Redirect(StrictModel):
    """A driver who finds no port for their EV drives to the nearest site that has one, within a radius."""

    radius_km: float = Field(gt=0, description="farthest site a driver drives on to")
    speed_kmh: float = Field(default=40.0, gt=0, description="average driving speed to that site")
    detour_factor: float = Field(default=1.3, ge=1, description="road distance over straight-line distance")


class EvSide(StrictModel):
    """EV-side integration: market, CSMS protocol, telematics, interoperability, authorisation, redirects."""

    market: Market = Field(description="sets default connectors and the presets' inlets")
    csms_protocol: Literal["ocpp1.6", "ocpp2.0.1"] = Field(
        default="ocpp2.0.1",
        description="ocpp2.0.1: ISO 15118 needs reach the manager (NotifyEVChargingNeeds); ocpp1.6: only the charger",
    )
    telematics: Telematics = Field(
        default=Telematics(), description="vehicle data reported through the carmakers' feeds"
    )
    interop: Interop = Field(default=Interop(), description="handshake failures between EV families and charger models")
    authorization: Authorization | None = Field(default=None, description="none: sessions start at plug-in")
    redirect: Redirect | None = Field(default=None, description="none: a driver with no usable port leaves")


# ---------------------------------------------------------------- resolution and cross-checks


def check_ev_side(scenario: Any) -> None:
    """Raise ValueError on EV-side settings that do not fit the rest of the scenario."""
    ev = scenario.ev_side
    fleets = fleet_entries(scenario)
    groups = [
        (f"network.sites[{i}].chargers[{j}]", g)
        for i, site in enumerate(scenario.network.sites)
        for j, g in enumerate(site.chargers)
    ]
    if ev is None:
        used = [f"{where}.connector" for where, g in groups if g.connector is not None]
        for where, e in fleets:
            used += [f"{where}.{k}" for k in ("inlets", "family") if getattr(e, k) is not None]
            used += [f"{where}.adapters" for _ in e.adapters[:1]]
            used += [f"{where}.{k}" for k in ("telematics_share", "plug_and_charge_share") if getattr(e, k) > 0]
        if used:
            raise ValueError(
                f"{', '.join(used[:3])}{' …' if len(used) > 3 else ''} only apply with an ev_side section; "
                "add one, e.g. `ev_side: {market: eu}`"
            )
        return
    for where, e in fleets:
        inlets = entry_inlets(e, ev.market)
        if inlets is None:
            raise ValueError(
                f"{where}: preset {e.preset} is not sold in market {ev.market}; give its inlets, "
                f"e.g. `inlets: [{MARKET_DEFAULTS[ev.market]['dc']}]`"
            )
        for a in e.adapters:
            if a.connector in {"ccs1", "ccs2", "chademo"} and not DC_INLETS & set(inlets):
                raise ValueError(
                    f"{where}.adapters: a {a.connector} adapter needs a DC inlet, and inlets {', '.join(inlets)} "
                    "take AC only"
                )
        if e.plug_and_charge_share > 0 and ev.authorization is None:
            raise ValueError(f"{where}.plug_and_charge_share needs ev_side.authorization (e.g. `authorization: {{}}`)")
    families = set(fleet_families(scenario))
    models = {g.model for _, g in groups}
    for i, p in enumerate(ev.interop.pairs):
        if p.family not in families:
            raise ValueError(
                f"ev_side.interop.pairs[{i}].family {p.family!r} is no fleet model's family; "
                f"families: {', '.join(sorted(families))}"
            )
        if p.charger_model not in models:
            raise ValueError(
                f"ev_side.interop.pairs[{i}].charger_model {p.charger_model!r} is not a charger model of the "
                f"network; models: {', '.join(sorted(models))}"
            )
    pnc = ev.authorization.plug_and_charge.charger_models if ev.authorization is not None else None
    unknown = sorted(set(pnc or ()) - models)
    if unknown:
        raise ValueError(
            f"ev_side.authorization.plug_and_charge.charger_models names {', '.join(unknown)}, not charger models "
            f"of the network; models: {', '.join(sorted(models))}"
        )
