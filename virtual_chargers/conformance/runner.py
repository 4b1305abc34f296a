"""Running conformance cases against a CSMS: one `CaseContext` per case, a timeout per case, verdicts.

Each case gets fresh probes (test chargers) with ids of its own, so cases do not share state in the
CSMS; every probe of a case is closed when it ends, whatever the verdict.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType

from virtual_chargers.clock import ocpp_time
from virtual_chargers.conformance.api import ApiError, CsmsApi
from virtual_chargers.conformance.model import Case, CaseFailed, CaseResult, NotApplicable, Outcome
from virtual_chargers.conformance.probe import ConnectError, Incoming, Probe, Reply
from virtual_chargers.connection import SecurityConfig
from virtual_chargers.framelog import FrameLog
from virtual_chargers.wire import validate

__all__ = ["CaseContext", "SuiteConfig", "run_case", "run_cases", "select_cases"]


@dataclass
class SuiteConfig:
    """What the cases need to know about the CSMS under test.

    Attributes:
        url: The CSMS websocket URL (chargers add ``/<charger id>``).
        ocpp: "1.6" or "2.0.1".
        api: How to make the CSMS send requests (None: CSMS-initiated cases are manual).
        security: Security profile and credentials of the test chargers.
        password: Basic-auth password (profiles 1-2).
        ssl_context: TLS context (profiles 2-3).
        valid_id_tag: An id tag the CSMS accepts.
        invalid_id_tag: An id tag the CSMS answers Invalid (None: those cases are not applicable).
        charger_id: Use this charger id in every case (None: ``<charger_prefix><case id>``).
        charger_prefix: Prefix of generated charger ids.
        timeout_s: Wall seconds to wait for one answer of the CSMS.
        case_timeout_s: Wall seconds a whole case may take.
    """

    url: str
    ocpp: str
    api: CsmsApi | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    valid_id_tag: str = "CONFTAG01"
    invalid_id_tag: str | None = None
    charger_id: str | None = None
    charger_prefix: str = "CT-"
    timeout_s: float = 5.0
    case_timeout_s: float = 30.0


def _now() -> str:
    return ocpp_time(datetime.now(UTC))


class CaseContext:
    """What a case works with: probes, the CSMS API, and the helpers that turn answers into verdicts."""

    def __init__(self, case: Case, cfg: SuiteConfig, log: FrameLog) -> None:
        self.case, self.cfg, self.log = case, cfg, log
        self.ocpp = cfg.ocpp
        self.frames: list[dict[str, Any]] = []
        self.observed: list[str] = []
        self.t0 = time.monotonic()
        self._probes: list[Probe] = []

    # charger ids, time ---------------------------------------------------------------------------

    def charger_id(self, suffix: str = "") -> str:
        """The charger id of this case (``suffix`` tells a second charger of the case apart)."""
        base = self.cfg.charger_id or f"{self.cfg.charger_prefix}{self.case.id}"
        return base + suffix

    @staticmethod
    def now() -> str:
        """The current UTC time, OCPP format."""
        return _now()

    # probes --------------------------------------------------------------------------------------

    def new_probe(self, charger_id: str | None = None, *, password: str | None = None) -> Probe:
        """A probe not yet connected (``password`` overrides the configured one)."""
        probe = Probe(
            self.cfg.url,
            charger_id or self.charger_id(),
            self.ocpp,
            log=self.log,
            frames=self.frames,
            t0=self.t0,
            security=self.cfg.security,
            password=password if password is not None else self.cfg.password,
            ssl_context=self.cfg.ssl_context,
            timeout_s=self.cfg.timeout_s,
        )
        self._probes.append(probe)
        return probe

    async def probe(self, charger_id: str | None = None) -> Probe:
        """A connected probe; a refused handshake fails the case."""
        p = self.new_probe(charger_id)
        try:
            return await p.connect()
        except ConnectError as exc:
            raise CaseFailed(f"the CSMS refused the connection of {p.charger_id}: {exc}") from None

    def boot_payload(self, reason: str = "PowerUp") -> dict[str, Any]:
        """A valid BootNotification request of this version."""
        if self.ocpp == "1.6":
            return {"chargePointVendor": "chargetwin", "chargePointModel": "conformance", "firmwareVersion": "1.0"}
        return {
            "reason": reason,
            "chargingStation": {"vendorName": "chargetwin", "model": "conformance", "firmwareVersion": "1.0"},
        }

    def status_payload(
        self, status: str = "Available", connector_id: int = 1, error: str = "NoError"
    ) -> dict[str, Any]:
        """A valid StatusNotification request (1.6 status / 2.0.1 connectorStatus)."""
        if self.ocpp == "1.6":
            return {"connectorId": connector_id, "errorCode": error, "status": status, "timestamp": _now()}
        return {"timestamp": _now(), "connectorStatus": status, "evseId": connector_id, "connectorId": 1}

    async def boot(self, probe: Probe) -> dict[str, Any]:
        """BootNotification that must be Accepted; returns the answer."""
        payload = await self.result(probe, "BootNotification", self.boot_payload())
        if payload.get("status") != "Accepted":
            raise CaseFailed(
                f"BootNotification of {probe.charger_id} answered {payload.get('status')}, not Accepted; "
                "register the test chargers in the CSMS (or give --charger-id of one that is)"
            )
        return payload

    async def booted_probe(self, charger_id: str | None = None, *, status: bool = True) -> Probe:
        """A connected probe whose boot was Accepted (and whose connector reported Available)."""
        p = await self.probe(charger_id)
        await self.boot(p)
        if status:
            await self.result(p, "StatusNotification", self.status_payload())
        return p

    async def close(self) -> None:
        """Close every probe of the case."""
        for p in self._probes:
            await p.close()

    # verdict helpers -----------------------------------------------------------------------------

    def observe(self, text: str) -> None:
        """Note what the CSMS did (kept in the report, pass or fail)."""
        self.observed.append(text)

    @staticmethod
    def check(condition: bool, message: str) -> None:
        """Fail the case with ``message`` unless ``condition``."""
        if not condition:
            raise CaseFailed(message)

    async def result(
        self, probe: Probe, action: str, payload: dict[str, Any], *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Send a valid request; the CSMS must answer with a CallResult valid against the schema."""
        reply = await probe.call(action, payload, timeout_s=timeout_s)
        return self.valid_result(action, reply)

    def valid_result(self, action: str, reply: Reply) -> dict[str, Any]:
        """The payload of ``reply`` if it is a schema-valid CallResult of ``action``; fail the case otherwise."""
        if reply.kind != "result":
            raise CaseFailed(f"{action}: expected a CallResult, got {reply}")
        if not isinstance(reply.payload, dict):
            raise CaseFailed(f"{action}: the CallResult payload is not an object: {reply.payload!r}")
        try:
            validate(self.ocpp, MessageType.CallResult, action, reply.payload)
        except OCPPError as exc:
            raise CaseFailed(f"{action}: the CallResult breaks its schema ({exc.code}: {exc.details})") from None
        return reply.payload

    async def still_serves(self, probe: Probe) -> bool:
        """Whether the connection is open and the CSMS still answers a Heartbeat."""
        if not probe.is_open:
            return False
        reply = await probe.call("Heartbeat", {})
        return reply.kind == "result"

    # CSMS-initiated ------------------------------------------------------------------------------

    async def csms_sends(
        self, probe: Probe, action: str, payload: dict[str, Any], *, timeout_s: float | None = None
    ) -> Incoming:
        """Ask the CSMS (through its API) to send ``action``; return the request once it arrives.

        The request must arrive within the timeout and be valid against its schema.
        """
        if self.cfg.api is None:
            raise NotApplicable("needs a CSMS API")
        queue = probe.expect(action)
        try:
            await self.cfg.api.send(probe.charger_id, action, payload)
        except ApiError as exc:
            raise CaseFailed(f"the CSMS API did not take the order to send {action}: {exc}") from None
        try:
            request = await asyncio.wait_for(queue.get(), timeout_s or self.cfg.timeout_s)
        except TimeoutError:
            raise CaseFailed(f"the CSMS did not send {action} within {timeout_s or self.cfg.timeout_s} s") from None
        if request.schema_error:
            raise CaseFailed(f"the CSMS's {action} request breaks its schema: {request.schema_error}")
        return request


def select_cases(cases: Iterable[Case], ocpp: str, patterns: Sequence[str] = ()) -> list[Case]:
    """The cases of ``ocpp`` whose id matches any glob of ``patterns`` (all when none), sorted by id."""
    chosen = [c for c in cases if c.ocpp == ocpp]
    if patterns:
        chosen = [c for c in chosen if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    return sorted(chosen, key=lambda c: c.id)


def _manual_message(case: Case, ctx: CaseContext) -> str:
    return case.manual.format(charger=ctx.charger_id()) + (
        " Give the suite a CSMS API (--csms-api) to run it automatically."
    )


async def run_case(case: Case, cfg: SuiteConfig, log: FrameLog) -> CaseResult:
    """Run one case with its timeout; never raises for what the CSMS did."""
    ctx = CaseContext(case, cfg, log)
    if case.csms_action is not None and cfg.api is None:
        return CaseResult(case, Outcome.MANUAL, _manual_message(case, ctx))
    outcome, message = Outcome.PASS, ""
    try:
        await asyncio.wait_for(case.run(ctx), cfg.case_timeout_s)
    except CaseFailed as exc:
        outcome, message = Outcome.FAIL, str(exc)
    except NotApplicable as exc:
        outcome, message = Outcome.NOT_APPLICABLE, str(exc)
    except TimeoutError:
        outcome, message = Outcome.FAIL, f"the case did not finish within {cfg.case_timeout_s} s"
    except (OSError, ConnectError) as exc:
        outcome, message = Outcome.FAIL, f"connection problem: {type(exc).__name__}: {exc}"
    finally:
        await ctx.close()
    duration = time.monotonic() - ctx.t0
    frames = ctx.frames if outcome is Outcome.FAIL else []
    return CaseResult(case, outcome, message, ctx.observed, duration, frames)


async def run_cases(cases: Sequence[Case], cfg: SuiteConfig, log: FrameLog, progress: Any = None) -> list[CaseResult]:
    """Run ``cases`` one after the other; ``progress(result)`` is called after each."""
    results = []
    for case in cases:
        result = await run_case(case, cfg, log)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
