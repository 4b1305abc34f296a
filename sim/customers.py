"""The people behind the arrivals: who each arrival is, how they pay, what they would pay, their plan.

With `drivers.population` set, arrivals are visits by a fixed population of repeat
customers, each with an `Account` (payment method, willingness to pay, membership,
loyalty). Who makes each visit is drawn ahead from its own stream per site, and every
per-visit random number likewise, so pricing never moves the arrivals and one run
differs from another only by what the tariff makes drivers do (common random numbers).
Without a population every arrival is a new driver.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sim.config import Scenario
from sim.config.revenue import EveryNth, MembershipPlan, PaymentMethod, Points
from sim.demand import SiteArrivals
from sim.recorder import Table
from sim.rng import stream
from sim.tariffs import cents, payment_fee_cents

__all__ = ["REVIEW_S", "Account", "Customers", "Visit"]

REVIEW_S = 30 * 86400.0  # a membership month: fees are invoiced, and plans reviewed, every 30 days


class Account:
    """A repeat customer: payment method, willingness to pay, plan, loyalty and recent sessions."""

    __slots__ = ("driver_id", "history", "method", "nth", "plan", "points", "review_t_s", "wtp_per_kwh")

    def __init__(self, driver_id: int, method: int, wtp_per_kwh: float) -> None:
        """A customer who has not charged yet and has no plan."""
        self.driver_id = driver_id
        self.method = method
        self.wtp_per_kwh = wtp_per_kwh
        self.plan = -1
        self.review_t_s = np.inf  # the first review comes 30 days after the first session
        self.history: deque[tuple[float, int, tuple[int, int, int, int]]] = deque()  # (settled t_s, site, cents)
        self.nth = 0
        self.points = 0.0


@dataclass(slots=True)
class Visit:
    """One arrival's customer and its pre-drawn uniforms."""

    driver_id: int
    account: Account | None
    method: int  # index into the scenario's payment methods, -1 without payments
    wtp_per_kwh: float
    u_payment: float
    u_site: float
    u_shift: float


class Customers:
    """Every arrival's customer, the population's accounts, and the membership invoices."""

    def __init__(self, scenario: Scenario, arrivals: dict[str, SiteArrivals], site_index: dict[str, int]) -> None:
        """Draw the population and, per site, who each arrival is and its uniforms."""
        self.scenario = scenario
        self._site_ids = [s.id for s in scenario.network.sites]
        self.plans = scenario.memberships
        self.methods: list[PaymentMethod] = list(scenario.payments.methods) if scenario.payments else []
        cfg = scenario.drivers
        rng = stream(scenario.seed, "customers")
        response = cfg.price_response
        self.accounts: list[Account] = []
        weights = None
        if cfg.population is not None:
            n = cfg.population
            weights = rng.lognormal(0.0, cfg.frequency_sigma, n)
            weights /= weights.sum()
            methods = self._methods(rng, n)
            wtp = response.willingness_to_pay_per_kwh.draw(rng, n) if response else np.full(n, np.inf)
            self.accounts = [Account(i, int(m), float(w)) for i, (m, w) in enumerate(zip(methods, wtp, strict=True))]
        # Nothing per visit matters without a population, payments, site choice or price response:
        # every arrival is then the same anonymous customer, and nothing is drawn or kept per visit.
        self._anonymous: Visit | None = None
        if cfg.population is None and not self.methods and response is None and cfg.site_choice is None:
            self._anonymous = Visit(-1, None, -1, np.inf, 1.0, 0.0, 1.0)
        # Per site, one array per attribute (numpy, not Python lists: a year of arrivals is millions).
        self._visits: dict[int, tuple[np.ndarray, ...]] = {}
        for site_id, arr in arrivals.items():
            if self._anonymous is not None:
                break
            r = stream(scenario.seed, f"customers:{site_id}")
            n = len(arr)
            ids = r.choice(len(weights), size=n, p=weights) if weights is not None else np.full(n, -1)
            methods = self._methods(r, n)
            wtp = response.willingness_to_pay_per_kwh.draw(r, n) if response else np.full(n, np.inf)
            u = r.random((n, 3))
            self._visits[site_index[site_id]] = (ids, methods, wtp, u[:, 0].copy(), u[:, 1].copy(), u[:, 2].copy())
        self.invoices = Table(floats=("t_s", "amount", "payment_fee", "savings"), ints=("driver_id", "plan", "action"))

    def _methods(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if not self.methods:
            return np.full(n, -1)
        share = np.array([m.share for m in self.methods])
        return rng.choice(len(share), size=n, p=share / share.sum())

    def visit(self, site: int, k: int) -> Visit:
        """The customer of the `k`-th arrival at site number `site`."""
        if self._anonymous is not None:
            return self._anonymous
        ids, methods, wtp, u_payment, u_site, u_shift = self._visits[site]
        driver_id = int(ids[k])
        u = (float(u_payment[k]), float(u_site[k]), float(u_shift[k]))
        acct = self.accounts[driver_id] if driver_id >= 0 else None
        if acct is not None:
            return Visit(driver_id, acct, acct.method, acct.wtp_per_kwh, *u)
        return Visit(-1, None, int(methods[k]), float(wtp[k]), *u)

    def method(self, visit: Visit) -> PaymentMethod | None:
        """The visit's payment method, None without payments."""
        return self.methods[visit.method] if visit.method >= 0 else None

    # ------------------------------------------------------------ memberships

    def plan_at(self, acct: Account | None, site_id: str) -> MembershipPlan | None:
        """The plan that prices `acct`'s session at `site_id`, if any."""
        if acct is None or acct.plan < 0:
            return None
        plan = self.plans[acct.plan]
        return plan if plan.sites is None or site_id in plan.sites else None

    def savings_cents(self, plan: MembershipPlan, acct: Account, before_t_s: float = np.inf) -> int:
        """What `plan`'s discounts would have saved on `acct`'s kept sessions settled before `before_t_s`."""
        d = plan.discount
        fracs = (d.energy_frac, d.time_frac, d.session_fee_frac, d.idle_frac)
        site_ids = self._site_ids
        total = 0
        for t_s, site, comps in acct.history:
            if t_s < before_t_s and (plan.sites is None or site_ids[site] in plan.sites):
                total += sum(cents(c * f / 100.0) for c, f in zip(comps, fracs, strict=True))
        return total

    def review(self, acct: Account, t_s: float) -> None:
        """Hold every monthly review of `acct` due by `t_s`: join, renew, switch or leave a plan."""
        while acct.review_t_s <= t_s:
            at = acct.review_t_s
            while acct.history and acct.history[0][0] < at - REVIEW_S:
                acct.history.popleft()
            best, best_net, best_savings = -1, 0, 0
            for i, plan in enumerate(self.plans):
                savings = self.savings_cents(plan, acct, at)
                net = savings - cents(plan.monthly_fee)
                if net > best_net:  # strictly pays off
                    best, best_net, best_savings = i, net, savings
            if best >= 0:
                action = 0 if best != acct.plan else 1  # join (or switch) / renew
                if best != acct.plan:
                    acct.nth, acct.points = 0, 0.0
                acct.plan = best
                fee = cents(self.plans[best].monthly_fee)
                method = self.methods[acct.method] if acct.method >= 0 else None
                paid_fee = payment_fee_cents(method, fee)
                self.invoices.add_floats((at, fee / 100.0, paid_fee / 100.0, best_savings / 100.0))
                self.invoices.add_ints((acct.driver_id, best, action))
            elif acct.plan >= 0:
                self.invoices.add_floats((at, 0.0, 0.0, 0.0))
                self.invoices.add_ints((acct.driver_id, acct.plan, 2))  # leave
                acct.plan = -1
            acct.review_t_s = at + REVIEW_S

    def record(self, acct: Account, t_s: float, site: int, comps: tuple[int, int, int, int]) -> None:
        """Keep the list-price components (cents) of a session settled at `t_s`, for the reviews.

        Sessions count by when they were settled (the end of the session), so the sessions
        of a review's month are all known when it is held, and the history stays in time order.
        """
        if acct.review_t_s == np.inf:
            acct.review_t_s = t_s + REVIEW_S
        acct.history.append((t_s, site, comps))

    def loyalty(self, acct: Account, plan: MembershipPlan, amount_cents: int) -> int:
        """The loyalty discount (cents) on a member's session of `amount_cents`, updating the account."""
        rule = plan.loyalty
        if isinstance(rule, EveryNth):
            acct.nth += 1
            return cents(amount_cents * rule.discount_frac / 100.0) if acct.nth % rule.n == 0 else 0
        if isinstance(rule, Points):
            off = 0
            if acct.points >= rule.redeem_points:
                off = min(cents(rule.redeem_value), amount_cents)
                acct.points -= rule.redeem_points
            acct.points += (amount_cents - off) / 100.0 * rule.points_per_unit
            return off
        return 0

    def finish(self, t_s: float) -> None:
        """Hold the reviews that fall within the run."""
        for acct in self.accounts:
            self.review(acct, t_s)
