"""The `ocpp` manager: a real CSMS in the manager slot, reached through virtual OCPP chargers.

The run is then paced against the wall clock at `speed`; every simulated charger becomes a
virtual charger of `virtual_chargers/` connected to `csms`, and what the CSMS sends flows back
into the simulation as commands (see `virtual_chargers.bridge`).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.config.base import StrictModel

__all__ = ["OcppManager", "OcppSecurity", "csms_url_problem"]


class OcppSecurity(StrictModel):
    """How the virtual chargers authenticate to the CSMS (OCPP security profiles 0-3).

    Passwords come from an environment variable or a file, never from the scenario.
    Relative paths are relative to the scenario file.
    """

    profile: Literal[0, 1, 2, 3] = Field(
        default=0,
        description="OCPP security profile: 0 none, 1 basic auth, 2 TLS + basic auth, 3 TLS client certificate",
    )
    password_env: str | None = Field(default=None, description="environment variable holding the basic-auth password")
    password_file: Path | None = Field(default=None, description="file whose first line is the password")
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the CSMS certificate")
    cert_file: Path | None = Field(default=None, description="client certificate, PEM (profile 3)")
    key_file: Path | None = Field(default=None, description="client private key, PEM (profile 3)")

    @field_validator("password_file", "ca_file", "cert_file", "key_file")
    @classmethod
    def _relative_to_scenario(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None or path.is_absolute():
            return path
        return Path((info.context or {}).get("base_dir", ".")) / path

    @model_validator(mode="after")
    def _complete(self) -> OcppSecurity:
        if self.profile in (1, 2) and self.password_env is None and self.password_file is None:
            raise ValueError(f"security profile {self.profile} needs password_env or password_file")
        if self.profile == 3 and self.cert_file is None:
            raise ValueError("security profile 3 needs cert_file (and key_file unless the key is in it)")
        return self


def csms_url_problem(csms_url: str) -> str | None:
    """Why ``csms_url`` cannot be a CSMS URL or URL template (None: it can).

    A URL either is the base each charger adds ``/<charger id>`` to (``ws://host:9000/ocpp``), or a
    template with ``{id}`` where the charger id goes (``ws://host/ws/ocpp/{id}/``, ``ws://host/ocpp?cp={id}``).
    """
    if not csms_url.startswith(("ws://", "wss://")):
        return "must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:9000"
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(csms_url) if name is not None]
    except ValueError as exc:
        return f"is not a valid URL template ({exc}); write {{id}} where the charger id goes"
    bad = [name for name in fields if name != "id"]
    if bad:
        return f"has the placeholder {{{bad[0]}}}; the only one is {{id}}, where the charger id goes"
    return None


class OcppManager(StrictModel):
    """A CSMS manages the network: the simulated chargers speak OCPP to it, paced at `speed`."""

    kind: Literal["ocpp"] = Field(description="selects a CSMS as the manager")
    csms: str = Field(
        pattern=r"^wss?://",
        description="CSMS websocket URL: chargers connect to <csms>/<charger id>, or where {id} stands in a "
        "template such as ws://host/ws/ocpp/{id}/ or ws://host/ocpp?cp={id}",
    )
    ocpp: Literal["1.6", "2.0.1"] = Field(default="1.6", description="OCPP version the chargers speak")
    speed: float = Field(default=60.0, gt=0, description="simulated seconds per wall-clock second")
    security: OcppSecurity = Field(default=OcppSecurity(), description="how the chargers authenticate to the CSMS")
    response_timeout_s: float = Field(default=30.0, gt=0, description="wall seconds to wait for a CSMS answer")
    meter_interval_s: float = Field(default=60.0, ge=0, description="simulated seconds between MeterValues")
    warn_lag_s: float = Field(default=1.0, gt=0, description="warn when the simulation is this far (wall s) behind")
    warn_backend_lag_s: float = Field(
        default=60.0, gt=0, description="warn when a CSMS answer takes this many simulated seconds (request → answer)"
    )
    slow_down: bool = Field(
        default=False, description="halve the speed (not below min_speed) while CSMS answers take longer than that"
    )
    min_speed: float = Field(default=1.0, gt=0, description="the lowest speed slow_down goes to")
    boot_timeout_s: float = Field(
        default=30.0, gt=0, description="wall seconds the chargers get to boot; the simulated clock waits for them"
    )
    config: dict[str, str] = Field(
        default={}, description="configuration keys (1.6) or Component.Variable (2.0.1) of every charger"
    )

    @field_validator("csms")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = csms_url_problem(value)
        if problem is not None:
            raise ValueError(f"{value} {problem}")
        return value
