"""Opening a charger's websocket: OCPP security profiles 1-3 and reconnect backoff with seeded jitter.

Profile 1 is HTTP Basic auth over ``ws://``; profile 2 adds TLS with the CSMS certificate checked
against a CA bundle; profile 3 is TLS with a client certificate (no password). Passwords come from an
environment variable or a file, never from the command line, and are never logged.
"""

from __future__ import annotations

import base64
import os
import random
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

__all__ = [
    "Backoff",
    "SecurityConfig",
    "SecurityError",
    "charger_url",
    "connect_charger",
    "load_password",
]


class SecurityError(ValueError):
    """A security setting the user must fix (missing password, unreadable certificate...)."""


@dataclass(frozen=True)
class SecurityConfig:
    """How chargers authenticate to the CSMS.

    Attributes:
        profile: OCPP security profile: 0 (none), 1 (basic auth), 2 (TLS + basic auth), 3 (TLS client cert).
        password_env: Environment variable holding the basic-auth password (profiles 1-2).
        password_file: File whose first line is the password (profiles 1-2).
        ca_file: CA bundle to check the CSMS certificate (profiles 2-3; the system store if None).
        cert_file: Client certificate chain, PEM (profile 3).
        key_file: Its private key, PEM (profile 3; may be inside cert_file).
    """

    profile: Literal[0, 1, 2, 3] = 0
    password_env: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        """Fail fast on a profile without what it needs."""
        if self.profile in (1, 2) and self.password_env is None and self.password_file is None:
            raise SecurityError(
                f"security profile {self.profile} needs a password: give --password-env VAR or --password-file FILE"
            )
        if self.profile == 3 and self.cert_file is None:
            raise SecurityError("security profile 3 needs a client certificate: give --cert FILE (and --key FILE)")


def load_password(cfg: SecurityConfig) -> str | None:
    """The basic-auth password of profiles 1-2 (None for 0 and 3); raise SecurityError if it is missing."""
    if cfg.profile not in (1, 2):
        return None
    if cfg.password_env is not None:
        value = os.environ.get(cfg.password_env)
        if not value:
            raise SecurityError(f"environment variable {cfg.password_env} is not set or empty; put the password in it")
        return value
    assert cfg.password_file is not None
    try:
        text = cfg.password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityError(f"password file {cfg.password_file}: cannot read it ({exc.strerror})") from None
    value = text.splitlines()[0].strip() if text.strip() else ""
    if not value:
        raise SecurityError(f"password file {cfg.password_file} is empty; put the password on its first line")
    return value


def client_ssl_context(cfg: SecurityConfig) -> ssl.SSLContext | None:
    """The TLS context of profiles 2-3 (None for 0-1); raise SecurityError on an unreadable file."""
    if cfg.profile < 2:
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security whitepaper: TLS 1.2 or later
        if cfg.profile == 3:
            assert cfg.cert_file is not None
            ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file) if cfg.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(f"TLS files: {exc}; check --ca, --cert and --key") from None
    return ctx


def charger_url(csms_url: str, charger_id: str) -> str:
    """The URL of ``charger_id``: ``{id}`` of a template replaced, else ``<csms_url>/<charger id>``.

    The id is percent-encoded where it lands (RFC 3986: what a path segment or a query value may not
    hold), so any id reaches the CSMS intact.
    """
    if "{id}" in csms_url:
        in_query = "?" in csms_url and csms_url.index("?") < csms_url.index("{id}")
        return csms_url.replace("{id}", quote(charger_id, safe=_QUERY_SAFE if in_query else _PATH_SAFE))
    return f"{csms_url.rstrip('/')}/{quote(charger_id, safe=_PATH_SAFE)}"


_PATH_SAFE = "-._~!$&'()*+,;=:@"  # RFC 3986 pchar besides letters, digits and percent-escapes
_QUERY_SAFE = "-._~!$'()*,:@/"  # the same, less the separators of query parameters (& = + ;)


class Backoff:
    """Exponential reconnect delays with random jitter from a seeded generator (simulated seconds).

    The n-th delay is ``min(max_s, base_s · factor**n)`` scaled by a uniform factor in
    ``[1 - jitter, 1]``, so a thousand chargers that lost the CSMS together do not return together.
    """

    def __init__(
        self, rng: random.Random, base_s: float = 1.0, max_s: float = 300.0, factor: float = 2.0, jitter: float = 0.5
    ) -> None:
        """Delays from ``base_s`` up to ``max_s``."""
        if not 0 < base_s <= max_s:
            raise ValueError(f"need 0 < base_s(={base_s}) <= max_s(={max_s})")
        if factor < 1:
            raise ValueError(f"factor(={factor}) must be >= 1")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter(={jitter}) must be in [0, 1]")
        self.rng = rng
        self.base_s, self.max_s, self.factor, self.jitter = base_s, max_s, factor, jitter
        self.attempt = 0

    def next_s(self) -> float:
        """The next delay; each call backs off further."""
        delay = min(self.max_s, self.base_s * self.factor**self.attempt)
        self.attempt += 1
        return delay * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Connected: start again from ``base_s`` next time."""
        self.attempt = 0


async def connect_charger(
    csms_url: str,
    charger_id: str,
    subprotocol: str,
    security: SecurityConfig,
    password: str | None,
    ssl_context: ssl.SSLContext | None,
    open_timeout_s: float = 10.0,
) -> ClientConnection:
    """Open the websocket of ``charger_id`` at its `charger_url` with ``subprotocol``.

    Raises:
        OSError, websockets.exceptions.InvalidHandshake, TimeoutError: When the CSMS cannot be reached,
            refuses the credentials or the subprotocol.
    """
    url = charger_url(csms_url, charger_id)
    if security.profile >= 2 and not url.startswith("wss://"):
        raise SecurityError(f"security profile {security.profile} needs a wss:// CSMS URL, got {csms_url}")
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{charger_id}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    ws = await connect(
        url,
        subprotocols=[Subprotocol(subprotocol)],
        additional_headers=headers,
        ssl=ssl_context,
        open_timeout=open_timeout_s,
        compression=None,
        proxy=None,
        ping_interval=None,
        max_queue=64,
    )
    if ws.subprotocol != subprotocol:
        await ws.close()
        raise ConnectionRefusedError(f"the CSMS did not accept subprotocol {subprotocol} (got {ws.subprotocol})")
    return ws
