"""A timeline of faults to inject into virtual chargers, from a YAML file checked with pydantic.

```yaml
faults:
  - {at_s: 600, kind: drop_connection, chargers: ["CP00*"]}
  - {at_s: 900, kind: csms_unreachable, duration_s: 300}
  - {at_s: 1200, kind: reboot, chargers: [CP0003]}
  - {at_s: 1500, kind: connector_fault, connector: 1, error_code: GroundFailure, duration_s: 600}
  - {at_s: 1800, kind: meter_stuck, duration_s: 600}
  - {at_s: 2400, kind: meter_jump, jump_wh: 50000}
  - {at_s: 3000, kind: slow_responses, delay_s: 20, duration_s: 300}
  - {at_s: 3600, kind: missing_responses, duration_s: 300}
  - {at_s: 4200, kind: clock_drift, error_s: -3600, drift_ppm: 50}
```

``at_s`` is simulated seconds after the start; ``chargers`` holds ids or shell-style patterns
(default: every charger). Error codes are OCPP 1.6 ChargePointErrorCode names; 2.0.1 chargers map
them to their own connector status and report the code as the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.config import ScenarioError

__all__ = ["ERROR_CODES_16", "Fault", "FaultTimeline", "load_faults"]

ERROR_CODES_16 = (
    "ConnectorLockFailure",
    "EVCommunicationError",
    "GroundFailure",
    "HighTemperature",
    "InternalError",
    "LocalListConflict",
    "NoError",
    "OtherError",
    "OverCurrentFailure",
    "OverVoltage",
    "PowerMeterFailure",
    "PowerSwitchFailure",
    "ReaderFailure",
    "ResetFailure",
    "UnderVoltage",
    "WeakSignal",
)


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: float = Field(ge=0, description="simulated seconds after the start")
    chargers: list[str] = Field(default=["*"], min_length=1, description="charger ids or patterns like CP00*")

    def applies_to(self, charger_id: str) -> bool:
        """Whether this fault hits ``charger_id``."""
        return any(fnmatchcase(charger_id, pattern) for pattern in self.chargers)


class DropConnection(_Fault):
    """The websocket closes; the charger reconnects with backoff."""

    kind: Literal["drop_connection"]


class CsmsUnreachable(_Fault):
    """The CSMS cannot be reached for ``duration_s``: the connection drops and reconnects fail."""

    kind: Literal["csms_unreachable"]
    duration_s: float = Field(gt=0)


class Reboot(_Fault):
    """The charger restarts (a power cycle): running transactions end with reason PowerLoss."""

    kind: Literal["reboot"]


class ConnectorFault(_Fault):
    """A connector goes Faulted with ``error_code`` (charging stops) for ``duration_s`` (None: for good)."""

    kind: Literal["connector_fault"]
    connector: int = Field(default=1, ge=1)
    error_code: Literal[ERROR_CODES_16] = "OtherError"  # type: ignore[valid-type]
    duration_s: float | None = Field(default=None, gt=0)


class MeterStuck(_Fault):
    """The energy register stops counting (power reads 0) for ``duration_s``."""

    kind: Literal["meter_stuck"]
    duration_s: float | None = Field(default=None, gt=0)


class MeterJump(_Fault):
    """The energy register jumps by ``jump_wh`` (negative: backwards)."""

    kind: Literal["meter_jump"]
    jump_wh: float


class SlowResponses(_Fault):
    """The charger answers the CSMS's requests ``delay_s`` simulated seconds late for ``duration_s``."""

    kind: Literal["slow_responses"]
    delay_s: float = Field(gt=0)
    duration_s: float = Field(gt=0)


class MissingResponses(_Fault):
    """The charger does not answer the CSMS's requests for ``duration_s``."""

    kind: Literal["missing_responses"]
    duration_s: float = Field(gt=0)


class ClockDrift(_Fault):
    """The charger's real-time clock is set ``error_s`` off and drifts ``drift_ppm`` from now on."""

    kind: Literal["clock_drift"]
    error_s: float = 0.0
    drift_ppm: float = 0.0


Fault = Annotated[
    DropConnection
    | CsmsUnreachable
    | Reboot
    | ConnectorFault
    | MeterStuck
    | MeterJump
    | SlowResponses
    | MissingResponses
    | ClockDrift,
    Field(discriminator="kind"),
]


class FaultTimeline(BaseModel):
    """The faults of a run, applied in time order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[Fault] = Field(default_factory=list)

    def ordered(self) -> list[Fault]:
        """Faults sorted by time (stable for equal times)."""
        return sorted(self.faults, key=lambda f: f.at_s)

    def for_charger(self, charger_id: str) -> list[Fault]:
        """The faults that hit ``charger_id``, in time order."""
        return [f for f in self.ordered() if f.applies_to(charger_id)]

    def unmatched(self, charger_ids: Sequence[str]) -> list[str]:
        """One line per pattern (``faults[i].chargers``) that matches none of ``charger_ids``."""
        example = f" (ids look like {charger_ids[0]})" if charger_ids else " (there are no chargers)"
        return [
            f"faults[{i}].chargers: {pattern!r} matches no charger{example}; fix the id or the pattern"
            for i, fault in enumerate(self.faults)
            for pattern in fault.chargers
            if not any(fnmatchcase(c, pattern) for c in charger_ids)
        ]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {
            "drop_connection",
            "csms_unreachable",
            "reboot",
            "connector_fault",
            "meter_stuck",
            "meter_jump",
            "slow_responses",
            "missing_responses",
            "clock_drift",
        }:
            continue  # the discriminator's branch name is noise in a path
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_faults(data: object, source: str) -> FaultTimeline:
    """Validate already-loaded YAML; raise ScenarioError with one line per problem."""
    if data is None:
        return FaultTimeline()
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: a fault file must be a mapping with a `faults:` list"])
    try:
        return FaultTimeline.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ScenarioError(problems) from None


def load_faults(path: str | Path) -> FaultTimeline:
    """Read and validate a fault file; raise ScenarioError naming the file, the entry and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the fault file ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScenarioError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    return parse_faults(data, str(path))
