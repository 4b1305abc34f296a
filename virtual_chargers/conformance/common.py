"""Building blocks shared by the case modules: CSMS-initiated cases from a table, time checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from virtual_chargers.conformance.model import Case, CaseFailed, Kind
from virtual_chargers.conformance.probe import Incoming, Probe
from virtual_chargers.conformance.runner import CaseContext

__all__ = ["csms_initiated", "parse_time", "time_close"]

Prepare = Callable[[CaseContext, Probe], Awaitable[dict[str, Any]]]
FollowUp = Callable[[CaseContext, Probe, Incoming, dict[str, Any]], Awaitable[Probe | None]]


def parse_time(text: Any, what: str) -> datetime:
    """An OCPP date-time as an aware datetime; fail the case if it is not one."""
    if not isinstance(text, str):
        raise CaseFailed(f"{what} is not a date-time string: {text!r}")
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CaseFailed(f"{what} {text!r} is not an RFC 3339 date-time") from None
    if t.tzinfo is None:
        raise CaseFailed(f"{what} {text!r} has no time zone (OCPP requires UTC or an offset)")
    return t


def time_close(text: Any, what: str, tolerance_s: float = 300.0) -> float:
    """Seconds between the CSMS's time ``text`` and ours; fail the case beyond ``tolerance_s``."""
    skew = abs((parse_time(text, what) - datetime.now(UTC)).total_seconds())
    if skew > tolerance_s:
        raise CaseFailed(f"{what} {text} is {skew:.0f} s away from the current time")
    return skew


def csms_initiated(
    id: str,  # noqa: A002 - the case id
    ocpp: str,
    block: str,
    title: str,
    *,
    spec: str,
    action: str,
    request: dict[str, Any] | Prepare,
    answer: dict[str, Any],
    checks: str = "",
    follow_up: FollowUp | None = None,
    manual: str = "",
) -> Case:
    """A case where the CSMS sends ``action`` to a booted test charger, which answers ``answer``.

    ``request`` is the order given to the CSMS API (a payload, or a coroutine preparing it: starting a
    transaction first, say). The case checks that the request arrives in time and is schema-valid, that
    the CSMS takes the charger's answer without closing the connection, and runs ``follow_up`` (the
    messages a charger sends next, e.g. StartTransaction after a RemoteStart) whose answers must be valid;
    it returns the probe to go on with when it had to reconnect.
    """
    default_checks = (
        f"The CSMS sends a schema-valid {action} within the timeout, takes the charger's answer "
        f"({', '.join(f'{k}={v}' for k, v in answer.items()) or 'empty'}) and still answers a Heartbeat afterwards."
    )

    async def run(ctx: CaseContext) -> None:
        probe = await ctx.booted_probe()
        payload = await request(ctx, probe) if callable(request) else dict(request)
        incoming = await ctx.csms_sends(probe, action, payload)
        ctx.observe(f"CSMS sent {action} {incoming.payload}")
        await probe.answer(incoming, answer)
        if follow_up is not None:
            probe = await follow_up(ctx, probe, incoming, payload) or probe  # a reboot continues on a new probe
        ctx.check(await ctx.still_serves(probe), f"after the {action} answer the CSMS no longer answers a Heartbeat")

    return Case(
        id,
        ocpp,
        block,
        title,
        spec,
        checks or default_checks + (" " + follow_up.__doc__ if follow_up is not None and follow_up.__doc__ else ""),
        Kind.POSITIVE,
        run,
        csms_action=action,
        manual=manual
        or (
            f"Connect a charger with id {{charger}} (e.g. `chargetwin chargers --count 1`), have the CSMS send "
            f"{action} to it, and check in the frame log that the request is valid and the CSMS takes the answer."
        ),
    )
