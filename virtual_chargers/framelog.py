"""Evidence for QA: every OCPP frame as a JSONL line, and a `Summary` of the run.

A line is ``{"t": simulated time, "wall": unix time, "charger": id, "dir": "tx"|"rx", "msg": frame}``
(``"raw"`` instead of ``"msg"`` for a frame that is not JSON). Secrets never reach the file: values of
the security keys (``AuthorizationKey``, ``BasicAuthPassword``) are masked, and so is any registered
secret wherever it appears.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from virtual_chargers.clock import SimClock, ocpp_time

__all__ = ["SECRET_KEYS", "FrameLog", "Summary", "Violation"]

SECRET_KEYS = frozenset({"AuthorizationKey", "BasicAuthPassword"})
_MASK = "***"
_MAX_VIOLATIONS_KEPT = 200  # the count goes on; only the first ones are kept with their details
CLOCK_OFFSET_WARN_S = 60.0  # a CSMS clock further off the simulated calendar than this is a QA warning


@dataclass(frozen=True, slots=True)
class Violation:
    """A frame from the CSMS that broke the protocol, and what the charger answered."""

    t: str
    charger: str
    kind: str
    detail: str


@dataclass
class Summary:
    """Counts and latencies of a run, mergeable across processes.

    ``sent``/``received`` count frames by action (a response under its request's action); call errors
    are counted by error code; ``rtt_s`` holds round-trip times of our requests by action (wall
    seconds) and ``backend_lag_sim_s`` the same round trips in simulated seconds (request sent → answer).
    ``unanswerable`` counts malformed frames from the CSMS that OCPP-J gives no CallError to answer with
    (each is a violation too, as is each malformed frame answered with a CallError).
    """

    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    call_errors_sent: Counter[str] = field(default_factory=Counter)
    call_errors_received: Counter[str] = field(default_factory=Counter)
    violation_count: int = 0
    violations: list[Violation] = field(default_factory=list)
    unanswerable: int = 0
    rtt_s: dict[str, list[float]] = field(default_factory=dict)
    backend_lag_sim_s: dict[str, list[float]] = field(default_factory=dict)
    timeouts: Counter[str] = field(default_factory=Counter)
    late_answers: Counter[str] = field(default_factory=Counter)  # answers that came after their timeout
    transactions_started: int = 0
    transactions_ended: int = 0
    transactions_confirmed: int = 0
    queued_delivered: int = 0
    queued_from_earlier_run: int = 0  # of those, queued by an earlier run of the same chargers for this CSMS
    queued_dropped: int = 0
    connects: int = 0
    disconnects: int = 0
    boots_accepted: int = 0
    last_connect_error: str | None = None  # why the last failed connection attempt failed, if one did
    # charger → how far the CSMS's clock (BootNotification currentTime) is ahead of the simulated calendar
    clock_offsets_s: dict[str, float] = field(default_factory=dict)
    warning_count: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        """Record something the QA engineer should look at (the first ones are kept with their text)."""
        self.warning_count += 1
        if len(self.warnings) < _MAX_VIOLATIONS_KEPT:
            self.warnings.append(text)

    def clock_offset(self) -> dict[str, float]:
        """Smallest, median and largest CSMS clock offset in seconds, over how many chargers (empty: none)."""
        if not self.clock_offsets_s:
            return {}
        q = np.percentile(np.asarray(list(self.clock_offsets_s.values())), [0, 50, 100])
        return {
            "min_s": float(q[0]),
            "median_s": float(q[1]),
            "max_s": float(q[2]),
            "chargers": len(self.clock_offsets_s),
        }

    def all_warnings(self) -> list[str]:
        """The recorded warnings, and one for a CSMS clock off the simulated calendar by more than a minute."""
        out = list(self.warnings)
        offset = self.clock_offset()
        if offset and max(abs(offset["min_s"]), abs(offset["max_s"])) > CLOCK_OFFSET_WARN_S:
            out.insert(
                0,
                f"the CSMS's clock (BootNotification currentTime) is {offset['median_s']:+.0f} s off the simulated "
                "calendar (median over the chargers); the chargers keep the simulated calendar, so times the CSMS "
                "computes from its own clock (a profile's startSchedule, validFrom/validTo, a reservation's expiry) "
                "are off by as much",
            )
        return out

    def merge(self, other: Summary) -> None:
        """Add another summary (say, of another process) into this one."""
        for mine, theirs in (
            (self.sent, other.sent),
            (self.received, other.received),
            (self.call_errors_sent, other.call_errors_sent),
            (self.call_errors_received, other.call_errors_received),
            (self.timeouts, other.timeouts),
            (self.late_answers, other.late_answers),
        ):
            mine.update(theirs)
        self.violation_count += other.violation_count
        self.violations.extend(other.violations[: max(0, _MAX_VIOLATIONS_KEPT - len(self.violations))])
        self.clock_offsets_s.update(other.clock_offsets_s)
        self.warning_count += other.warning_count
        self.warnings.extend(other.warnings[: max(0, _MAX_VIOLATIONS_KEPT - len(self.warnings))])
        for action, values in other.rtt_s.items():
            self.rtt_s.setdefault(action, []).extend(values)
        for action, values in other.backend_lag_sim_s.items():
            self.backend_lag_sim_s.setdefault(action, []).extend(values)
        for name in (
            "transactions_started",
            "transactions_ended",
            "transactions_confirmed",
            "queued_delivered",
            "queued_from_earlier_run",
            "queued_dropped",
            "unanswerable",
            "connects",
            "disconnects",
            "boots_accepted",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_connect_error = other.last_connect_error or self.last_connect_error

    def rtt_percentiles_ms(self, action: str | None = None) -> dict[str, float]:
        """p50/p95/p99/max round trip in ms, for one action or all together (empty without samples)."""
        values = self.rtt_s.get(action, []) if action else [v for vs in self.rtt_s.values() for v in vs]
        if not values:
            return {}
        q = np.percentile(np.asarray(values) * 1000.0, [50, 95, 99, 100])
        return {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2]), "max": float(q[3])}

    def backend_lag_percentiles_s(self, action: str) -> dict[str, float]:
        """p50/p99/max of one action's round trips in simulated seconds (empty without samples)."""
        values = self.backend_lag_sim_s.get(action)
        if not values:
            return {}
        q = np.percentile(np.asarray(values), [50, 99, 100])
        return {"n": len(values), "p50": float(q[0]), "p99": float(q[1]), "max": float(q[2])}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with percentiles instead of raw samples."""
        return {
            "sent": dict(sorted(self.sent.items())),
            "received": dict(sorted(self.received.items())),
            "call_errors_sent": dict(self.call_errors_sent),
            "call_errors_received": dict(self.call_errors_received),
            "csms_violations": self.violation_count,
            "unanswerable_frames": self.unanswerable,
            "violations": [_violation_dict(v) for v in self.violations],
            "rtt_ms": {a: self.rtt_percentiles_ms(a) for a in sorted(self.rtt_s)},
            "rtt_ms_all": self.rtt_percentiles_ms(),
            "backend_lag_sim_s": {a: self.backend_lag_percentiles_s(a) for a in sorted(self.backend_lag_sim_s)},
            "timeouts": dict(self.timeouts),
            "late_answers": dict(self.late_answers),
            "transactions": {
                "started": self.transactions_started,
                "ended": self.transactions_ended,
                "confirmed": self.transactions_confirmed,
            },
            "queued_delivered_after_reconnect": self.queued_delivered,
            "queued_delivered_from_earlier_run": self.queued_from_earlier_run,
            "queued_dropped": self.queued_dropped,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "boots_accepted": self.boots_accepted,
            "csms_clock_offset": self.clock_offset(),
            "warnings": self.all_warnings(),
            "last_connect_error": self.last_connect_error,
        }

    def to_wire(self) -> dict[str, Any]:
        """Everything, raw samples included, to send a process's summary to the parent."""
        d = self.to_dict()
        d["rtt_s"] = self.rtt_s
        d["backend_lag_sim_s"] = self.backend_lag_sim_s
        d["violations"] = [_violation_dict(v) for v in self.violations]
        d["clock_offsets_s"] = self.clock_offsets_s
        d["warnings"] = self.warnings
        d["warning_count"] = self.warning_count
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Summary:
        """Rebuild a summary from `to_wire`."""
        tx = d["transactions"]
        return cls(
            sent=Counter(d["sent"]),
            received=Counter(d["received"]),
            call_errors_sent=Counter(d["call_errors_sent"]),
            call_errors_received=Counter(d["call_errors_received"]),
            violation_count=d["csms_violations"],
            violations=[Violation(**v) for v in d["violations"]],
            unanswerable=d["unanswerable_frames"],
            rtt_s={a: list(v) for a, v in d["rtt_s"].items()},
            backend_lag_sim_s={a: list(v) for a, v in d.get("backend_lag_sim_s", {}).items()},
            timeouts=Counter(d["timeouts"]),
            late_answers=Counter(d.get("late_answers", {})),
            transactions_started=tx["started"],
            transactions_ended=tx["ended"],
            transactions_confirmed=tx["confirmed"],
            queued_delivered=d["queued_delivered_after_reconnect"],
            queued_from_earlier_run=d["queued_delivered_from_earlier_run"],
            queued_dropped=d["queued_dropped"],
            connects=d["connects"],
            disconnects=d["disconnects"],
            boots_accepted=d["boots_accepted"],
            clock_offsets_s=dict(d.get("clock_offsets_s", {})),
            warning_count=d.get("warning_count", 0),
            warnings=list(d.get("warnings", [])),
            last_connect_error=d.get("last_connect_error"),
        )


def _violation_dict(v: Violation) -> dict[str, str]:
    return {"t": v.t, "charger": v.charger, "kind": v.kind, "detail": v.detail}


def _mask_payload(action: str | None, payload: Any) -> Any:
    """Mask secret values inside a ChangeConfiguration / SetVariables / GetConfiguration payload."""
    if not isinstance(payload, dict):
        return payload
    masked = False
    key = payload.get("key")
    if isinstance(key, str) and key in SECRET_KEYS and "value" in payload:  # GetConfiguration's key is a list
        payload = {**payload, "value": _MASK}
        masked = True
    for list_key, name_path in (("setVariableData", ("variable", "name")), ("configurationKey", ("key",))):
        items = payload.get(list_key)
        if isinstance(items, list):
            new_items = []
            for item in items:
                name: Any = item
                for k in name_path:
                    name = name.get(k) if isinstance(name, dict) else None
                if name in SECRET_KEYS and isinstance(item, dict):
                    item = {k: (_MASK if k in ("attributeValue", "value") else v) for k, v in item.items()}
                    masked = True
                new_items.append(item)
            if masked:
                payload = {**payload, list_key: new_items}
    return payload


class FrameLog:
    """Records frames to an optional JSONL file and keeps the run's `Summary`.

    Args:
        clock: Gives the simulated time of each line.
        path: JSONL file to write (None: count only).
        secrets: Strings that must never appear in the file (passwords).
    """

    def __init__(self, clock: SimClock, path: Path | None = None, secrets: Iterable[str] = ()) -> None:
        """Open ``path`` for writing (truncating it) if given."""
        self.clock = clock
        self.path = path
        self.summary = Summary()
        self._secrets = [s for s in secrets if s]
        self._file: IO[str] | None = path.open("w", encoding="utf-8", buffering=1 << 16) if path else None
        self._pending: dict[tuple[str, str], str] = {}  # (charger, unique id) → action of a request in flight
        self.on_backend_lag: Callable[[str, float], None] | None = None  # (action, simulated s) of every answer

    def add_secret(self, secret: str) -> None:
        """Never write ``secret`` to the file."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def frame(self, charger: str, direction: str, raw: str, parsed: list[Any] | None = None) -> list[Any] | None:
        """Record one frame sent (``"tx"``) or received (``"rx"``); return it parsed (None if not JSON).

        ``parsed``: the frame as a list when the caller built it (it is then not parsed again).
        """
        msg: Any = parsed
        if msg is None:
            try:
                msg = json.loads(raw)
            except ValueError:
                msg = None
        counts = self.summary.sent if direction == "tx" else self.summary.received
        action = None
        if isinstance(msg, list) and len(msg) >= 3:
            kind, uid = msg[0], str(msg[1])
            if kind == 2 and len(msg) >= 4:
                action = str(msg[2])
                self._pending[(charger, uid)] = action
                if len(self._pending) > 100_000:  # requests never answered must not grow without bound
                    self._pending.pop(next(iter(self._pending)))
            else:
                action = self._pending.pop((charger, uid), "?")
                if kind == 4:
                    code = str(msg[2])
                    errors = self.summary.call_errors_sent if direction == "tx" else self.summary.call_errors_received
                    errors[code] += 1
                    action = f"{action}:CallError"
            counts[action] += 1
        else:
            counts["<malformed>"] += 1
        if self._file is not None:
            self._write(charger, direction, raw, msg, action)
        return msg if isinstance(msg, list) else None

    def _write(self, charger: str, direction: str, raw: str, msg: Any, action: str | None) -> None:
        if isinstance(msg, list) and len(msg) >= 3:
            payload_index = 3 if msg[0] == 2 else 2
            if len(msg) > payload_index:
                masked = _mask_payload(action, msg[payload_index])
                if masked is not msg[payload_index]:
                    msg = [*msg[:payload_index], masked, *msg[payload_index + 1 :]]
                    raw = json.dumps(msg, separators=(",", ":"))
            body = f'"msg":{raw}'
        else:
            body = f'"raw":{json.dumps(raw)}'
        line = (
            f'{{"t":"{ocpp_time(self.clock.now())}","wall":{time.time():.3f},'
            f'"charger":{json.dumps(charger)},"dir":"{direction}",{body}}}\n'
        )
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, _MASK)
        assert self._file is not None
        self._file.write(line)

    def rtt(self, action: str, rtt_s: float, sim_s: float | None = None) -> None:
        """A request of ours got its answer after ``rtt_s`` wall seconds (``sim_s`` simulated seconds)."""
        self.summary.rtt_s.setdefault(action, []).append(rtt_s)
        if sim_s is not None:
            self.summary.backend_lag_sim_s.setdefault(action, []).append(sim_s)
            if self.on_backend_lag is not None:
                self.on_backend_lag(action, sim_s)

    def timeout(self, action: str) -> None:
        """A request of ours got no answer in time."""
        self.summary.timeouts[action] += 1

    def late_answer(self, action: str) -> None:
        """An answer came after its request had timed out (counted there): counted once more, here, not as a fault."""
        self.summary.late_answers[action] += 1

    def violation(self, charger: str, kind: str, detail: str) -> None:
        """The CSMS broke the protocol (malformed or unexpected frame)."""
        self.summary.violation_count += 1
        if len(self.summary.violations) < _MAX_VIOLATIONS_KEPT:
            for secret in self._secrets:
                detail = detail.replace(secret, _MASK)
            self.summary.violations.append(Violation(ocpp_time(self.clock.now()), charger, kind, detail[:500]))

    def unanswerable(self, charger: str, cause: str, raw: str) -> None:
        """A malformed frame from the CSMS that no CallError can answer: a violation, counted apart too."""
        self.summary.unanswerable += 1
        self.violation(charger, "unanswerable", f"{cause}: {raw[:300]}")

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
