"""What a conformance case is, what running it gives, and how a case says why it failed.

A `Case` is a coroutine function ``async def check(ctx: CaseContext) -> None`` plus its metadata: id,
OCPP version, functional block, title, the specification text it is written from, its kind (positive,
negative, chaos), what it checks in one sentence, and — for a case that needs the CSMS to act first
("send a RemoteStartTransaction now") — the request the CSMS must send. Such a case runs when a CSMS
API is configured and is reported ``manual`` with instructions otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtual_chargers.conformance.runner import CaseContext

__all__ = ["Case", "CaseFailed", "CaseResult", "Kind", "NotApplicable", "Outcome", "case"]


class Kind(enum.StrEnum):
    """What a case exercises."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    CHAOS = "chaos"


class Outcome(enum.StrEnum):
    """The verdict of one case."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    MANUAL = "manual"


class CaseFailed(AssertionError):  # noqa: N818 - a verdict, not an error
    """The CSMS did not do what the specification asks; the message says what it did instead."""


class NotApplicable(Exception):  # noqa: N818 - a verdict, not an error
    """The case does not apply to this CSMS or configuration; the message says why."""


Check = Callable[["CaseContext"], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """One conformance case.

    Attributes:
        id: Unique id, e.g. ``TC_16_CORE_001``; ``--select`` globs match it.
        ocpp: "1.6" or "2.0.1".
        block: Functional block or profile, e.g. ``Core``, ``E Transactions``.
        title: One line.
        spec: Where the expected behaviour is written (spec section / requirement ids).
        checks: What the case asserts about the CSMS, honestly, in one or two sentences.
        kind: Positive, negative or chaos.
        csms_action: For a CSMS-initiated case: the request the CSMS must send (``None`` otherwise).
        manual: Instructions for an operator when no CSMS API is configured.
        run: The check itself.
    """

    id: str
    ocpp: str
    block: str
    title: str
    spec: str
    checks: str
    kind: Kind
    run: Check
    csms_action: str | None = None
    manual: str = ""

    def __post_init__(self) -> None:
        """Fail fast on a case that could never be reported properly."""
        if self.ocpp not in ("1.6", "2.0.1"):
            raise ValueError(f"case {self.id}: ocpp(={self.ocpp!r}) must be 1.6 or 2.0.1")
        if self.csms_action is not None and not self.manual:
            raise ValueError(f"case {self.id}: a CSMS-initiated case needs manual instructions")


def case(
    id: str,  # noqa: A002 - the field's name in the report
    ocpp: str,
    block: str,
    title: str,
    *,
    spec: str,
    checks: str,
    kind: Kind = Kind.POSITIVE,
    csms_action: str | None = None,
    manual: str = "",
) -> Callable[[Check], Case]:
    """Decorator: turn ``async def check(ctx)`` into a `Case` with this metadata."""

    def wrap(fn: Check) -> Case:
        return Case(id, ocpp, block, title, spec, checks, kind, fn, csms_action, manual)

    return wrap


@dataclass
class CaseResult:
    """What running one case gave.

    Attributes:
        case: The case.
        outcome: pass, fail, not_applicable or manual.
        message: Why it failed / does not apply / what the operator must do.
        observed: What the CSMS did, in the words of the checks (kept for passes too).
        duration_s: Wall seconds the case ran.
        frames: The frames exchanged (kept for failures): dicts with ``t`` (s since the case began),
            ``charger``, ``dir`` ("tx": to the CSMS, "rx": from it) and ``frame`` (text).
    """

    case: Case
    outcome: Outcome
    message: str = ""
    observed: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    frames: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        c = self.case
        return {
            "id": c.id,
            "ocpp": c.ocpp,
            "block": c.block,
            "title": c.title,
            "kind": str(c.kind),
            "spec": c.spec,
            "checks": c.checks,
            "csms_initiated": c.csms_action,
            "outcome": str(self.outcome),
            "message": self.message,
            "observed": self.observed,
            "duration_s": round(self.duration_s, 3),
            "frames": self.frames,
        }
