"""Dynamic pricing: a manager that sets each site's price per kWh at an interval with `SetTariff`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sim.config.revenue import DemandPricing, EnergyPricePricing, OccupancyPricing, Tariff
from sim.ids import SiteId
from sim.managers.base import Command, Event, NetworkView, SetTariff, SetTimer, SiteView, Timer

__all__ = ["DynamicPricing", "priced"]

_NAME = "pricing"


def priced(tariff: Tariff) -> Tariff:
    """`tariff` as dynamic pricing runs it: the policy sets the price per kWh at all times.

    Time-of-use periods keep their other components but lose their own price per kWh,
    which would otherwise hide the policy's price.
    """
    if not any(p.price_per_kwh is not None for p in tariff.periods):
        return tariff
    periods = [p.model_copy(update={"price_per_kwh": None}) for p in tariff.periods]
    return tariff.model_copy(update={"periods": periods})


def _utilization(cfg: OccupancyPricing | DemandPricing, site: SiteView) -> float:
    in_use = sum(e.session_id is not None for e in site.evses)
    if isinstance(cfg, DemandPricing):
        in_use += site.waiting
    return in_use / len(site.evses) if site.evses else 0.0


class DynamicPricing:
    """Occupancy-, demand- or energy-price-based price per kWh between a floor and a ceiling.

    Every `interval_min` (from the start) it computes each site's price, rounded to the
    cent, and sends `SetTariff` where it changed; the other tariff components stay.
    """

    def __init__(
        self, cfg: OccupancyPricing | DemandPricing | EnergyPricePricing, tariffs: Mapping[SiteId, Tariff]
    ) -> None:
        """Price the sites of `tariffs` (those named in `cfg.sites`, or all), starting from those tariffs."""
        self.cfg = cfg
        self._tariffs = {k: priced(v) for k, v in tariffs.items() if cfg.sites is None or k in cfg.sites}

    def price_per_kwh(self, site: SiteView, energy_price_per_kwh: float) -> float:
        """The price the policy sets for `site` now."""
        c = self.cfg
        if isinstance(c, EnergyPricePricing):
            raw = energy_price_per_kwh * c.markup + c.adder_per_kwh
        else:
            x = (_utilization(c, site) - c.low_frac) / (c.high_frac - c.low_frac)
            raw = c.floor_per_kwh + (c.ceiling_per_kwh - c.floor_per_kwh) * min(max(x, 0.0), 1.0)
        return round(min(max(raw, c.floor_per_kwh), c.ceiling_per_kwh), 2)

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """At the start (every site) and on each of its timers (where the price changed), reprice."""
        if not (isinstance(event, Timer) and event.name in ("start", _NAME)):
            return ()
        commands: list[Command] = []
        energy_price = network.price_at(event.t_s)
        for site_id, tariff in self._tariffs.items():
            price = self.price_per_kwh(network.site(site_id), energy_price)
            if price != tariff.price_per_kwh or event.name == "start":
                tariff = self._tariffs[site_id] = tariff.model_copy(update={"price_per_kwh": price})
                commands.append(SetTariff(site_id, tariff))
        commands.append(SetTimer(event.t_s + self.cfg.interval_min * 60.0, _NAME))
        return commands
