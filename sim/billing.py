"""Billing at run time: each site's tariff as it changes, how a driver pays, and each session's row.

`sim.tariffs` prices a session; this module keeps what pricing needs while the run goes —
the tariff in force at every site and the ones it replaced (a session not fixed at its
start is billed under each in turn), when each site was busy (idle fees are charged only
then) — and writes one row of the sessions table as a session ends, its money settled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.ev_side import PLUG_AND_CHARGE
from sim.ids import SiteId
from sim.recorder import Table
from sim.sessions import Outcome, Session, State
from sim.tariffs import BusyClock, Record, TariffSchedule, plain_money, session_charges, settle

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.config.revenue import PaymentMethod, Tariff
    from sim.customers import Customers
    from sim.managers.base import SetTariff
    from sim.wallclock import WallClock

__all__ = ["SESSION_FLOATS", "SESSION_INTS", "Billing"]

SESSION_FLOATS = (  # the sessions table's float columns, as recorded and as written
    "arrival_t_s",
    "plug_t_s",
    "charge_start_t_s",
    "charge_end_t_s",
    "departure_t_s",
    "wait_s",
    "energy_requested_kwh",
    "energy_delivered_kwh",
    "soc_in_frac",
    "soc_out_frac",
    "price_per_kwh",
    "energy_charge",
    "time_charge",
    "session_fee_charge",
    "idle_charge",
    "cap_adjustment",
    "member_discount",
    "loyalty_discount",
    "amount_charged",
    "payment_fee",
    "preauth_hold",
    "idle_min",
    "detour_km",
    "shift_s",
)
SESSION_INTS = ("session_id", "site", "evse", "model", "outcome", "cause", "failed_attempts", "driver_id",
                "payment_method", "plan")  # fmt: skip
_NO_MONEY = (0.0,) * 9
_INF = math.inf
_QUEUED = State.QUEUED


class Billing:
    """The tariffs of every site over the run, and the sessions table with each session's money."""

    def __init__(self, scenario: Scenario, clock: WallClock, customers: Customers) -> None:
        """Every site starts on its own tariff, or the network's."""
        self.currency = scenario.tariff.currency
        self.horizon_s = scenario.horizon_s
        self.clock = clock
        self.customers = customers
        self.site_tariffs: dict[SiteId, Tariff] = {
            SiteId(c.id): c.tariff or scenario.tariff for c in scenario.network.sites
        }
        self.site_index = {site_id: k for k, site_id in enumerate(self.site_tariffs)}
        self._layouts: dict = {}  # time-of-use layouts shared by tariffs that differ only in prices
        self.tariffs = [TariffSchedule(t, clock, self._layouts) for t in self.site_tariffs.values()]
        self._history = [[(0.0, t)] for t in self.tariffs]  # for sessions not fixed at the start
        self.tariff_changes = Table(floats=("t_s", "price_per_kwh"), ints=("site",))
        self.busy = [BusyClock() for _ in self.tariffs]
        self.pnc: tuple[PaymentMethod, int] | None = None  # Plug & Charge's method and code, with an ev_side section
        self.sessions = Table(floats=SESSION_FLOATS, ints=SESSION_INTS, int_bits=32)  # millions of rows a year

    def set_tariff(self, c: SetTariff, t_s: float) -> None:
        """A manager's new tariff for a site, from now on."""
        if c.tariff.currency != self.currency:
            raise ValueError(f"SetTariff in {c.tariff.currency}, but the network bills in {self.currency}")
        k = self.site_index[c.site_id]
        self.tariffs[k] = TariffSchedule(c.tariff, self.clock, self._layouts)
        self._history[k].append((t_s, self.tariffs[k]))
        self.tariff_changes.add_floats((t_s, c.tariff.price_per_kwh))
        self.tariff_changes.add_ints((k,))

    def payment(self, s: Session) -> tuple[PaymentMethod | None, int]:
        """How `s` pays, and that method's code: the driver's method, or Plug & Charge if its certificate started it."""
        if s.ev.auth_method == PLUG_AND_CHARGE:
            assert self.pnc is not None
            return self.pnc
        visit = s.visit
        assert visit is not None
        code = visit.method  # `Customers.method`, inlined: twice per session
        return (self.customers.methods[code] if code >= 0 else None), code

    def _settle(
        self, s: Session, sched: TariffSchedule, end_t_s: float, energy_kwh: float, method: PaymentMethod | None
    ) -> tuple[Record, float]:
        """Settle a session plugged in under `sched`, which delivered `energy_kwh`: its record and idle minutes.

        Any tariff, plan and account (`record` settles a plain tariff without plan or account itself).
        """
        evse = s.evse
        visit = s.visit
        assert evse is not None
        assert visit is not None
        schedules = [(s.plug_t_s, sched)]
        if not sched.tariff.fixed_at_start:
            history = self._history[evse.site.index]
            first = max(i for i, (t, _) in enumerate(history) if t <= s.plug_t_s)
            schedules += [h for h in history[first + 1 :] if h[0] < end_t_s]
        charges = session_charges(schedules, s.plug_t_s, end_t_s, s.full_t_s, s.intervals, energy_kwh,
                                  self.busy[evse.site.index])  # fmt: skip
        acct, plan = visit.account, s.plan
        loyalty = None
        if acct is not None and plan is not None and plan.loyalty is not None:
            loyalty = lambda amount: self.customers.loyalty(acct, plan, amount)  # noqa: E731
        rec = settle(charges, sched.tariff, energy_kwh > 0, plan.discount if plan else None, loyalty, method)
        if acct is not None:
            self.customers.record(acct, end_t_s, evse.site.index, (rec.energy, rec.time, rec.session_fee, rec.idle))
        return rec, charges.idle_min

    def record(self, s: Session, outcome: Outcome, departure_t_s: float, now_s: float) -> None:
        """The sessions-table row of `s`, ending now (`departure_t_s` NaN: still there at the horizon).

        Once per session: a plain tariff without plan or account (most sessions of most runs) is
        settled by `tariffs.plain_money`, without the segments.
        """
        evse = s.evse
        visit = s.visit
        assert visit is not None
        energy_kwh = s.energy_kwh
        arrival_t_s, plug_t_s = s.arrival_t_s, s.plug_t_s
        method: PaymentMethod | None
        if s.ev.auth_method == PLUG_AND_CHARGE:  # `payment`, inlined
            assert self.pnc is not None
            method, method_code = self.pnc
        else:
            method_code = visit.method
            method = self.customers.methods[method_code] if method_code >= 0 else None
        sched = s.schedule
        money: tuple[float, ...]
        if evse is None or sched is None:  # never plugged in: nothing to pay
            money, idle_min = _NO_MONEY, 0.0
            price = sched.at(plug_t_s).per_kwh if sched is not None else math.nan
        else:
            end_t_s = departure_t_s if departure_t_s == departure_t_s else self.horizon_s
            if sched.plain and s.plan is None and visit.account is None:
                price = sched.prices[0].per_kwh
                money, idle_min = plain_money(sched, plug_t_s, end_t_s, s.full_t_s, energy_kwh, method)
            else:
                price = sched.at(plug_t_s).per_kwh
                rec, idle_min = self._settle(s, sched, end_t_s, energy_kwh, method)
                money = (rec.energy / 100, rec.time / 100, rec.session_fee / 100, rec.idle / 100,
                         rec.cap_adjustment / 100, rec.member_discount / 100, rec.loyalty_discount / 100,
                         rec.amount / 100, rec.payment_fee / 100)  # fmt: skip
        if evse is not None:
            wait_s = plug_t_s - arrival_t_s
        elif s.state is _QUEUED:  # still waiting at the horizon: the wait so far
            wait_s = now_s - arrival_t_s
        else:  # reneged after waiting; balked or priced out at once (no departure time: no wait)
            wait_s = departure_t_s - arrival_t_s
        self.sessions.add(
            (
                arrival_t_s,
                plug_t_s,
                s.charge_start_t_s,
                s.charge_end_t_s,
                departure_t_s,
                wait_s if wait_s == wait_s else 0.0,
                s.requested_kwh,
                energy_kwh,
                s.soc_in_frac,
                s.soc_frac,
                price,
                *money,
                method.preauth_hold if method is not None and evse is not None else 0.0,
                idle_min,
                s.detour_km,
                s.shift_s,
            ),
            (
                s.session_id,
                s.site.index,
                evse.index if evse is not None else -1,
                s.model_index,
                outcome,
                s.cause,
                s.failed_attempts,
                visit.driver_id,
                method_code,
                self.customers.plans.index(s.plan) if s.plan is not None else -1,
            ),
        )
