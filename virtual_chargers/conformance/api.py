"""How a conformance case asks the CSMS under test to send a request ("send a RemoteStart now").

Cases written from CSMS-initiated use cases need the CSMS to act. A `CsmsApi` is the hook: ``send``
asks the CSMS to send ``action`` with ``payload`` to charger ``charger_id``, and returns once the CSMS has
taken the order (the request itself arrives on the charger's websocket). Without one, such cases are
reported ``manual`` with instructions.

- `HttpApi` (``--csms-api URL``): ``POST URL`` with ``{"chargerId": …, "action": …, "payload": …}``
  (OCPP camelCase payload); any 2xx answer means the CSMS will send it. A CSMS project writes this small
  adapter over its own API once.
- `ReferenceApi`: the reference CSMS (``chargetwin csms``) in the same process.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any, Protocol

__all__ = ["ApiError", "CsmsApi", "HttpApi", "ReferenceApi"]


class ApiError(Exception):
    """The CSMS API did not take the order; the message says what it answered."""


class CsmsApi(Protocol):
    """Asks the CSMS under test to send a request to a charger."""

    async def send(self, charger_id: str, action: str, payload: dict[str, Any]) -> None:
        """Have the CSMS send ``action`` (``payload`` in OCPP camelCase) to ``charger_id``."""
        ...


class HttpApi:
    """A CSMS API over HTTP: ``POST url`` with a JSON body; 2xx is success.

    Args:
        url: The endpoint, e.g. ``http://127.0.0.1:8080/conformance/send``.
        timeout_s: Wall seconds to wait for the HTTP answer.
    """

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"CSMS API URL {url!r} must start with http:// or https://")
        self.url, self.timeout_s = url, timeout_s

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - the user's URL
                resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"CSMS API answered HTTP {exc.code}: {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"CSMS API {self.url} unreachable: {exc}") from None

    async def send(self, charger_id: str, action: str, payload: dict[str, Any]) -> None:
        """POST the order; raise `ApiError` unless the answer is 2xx."""
        body = json.dumps({"chargerId": charger_id, "action": action, "payload": payload}).encode()
        await asyncio.to_thread(self._post, body)


class ReferenceApi:
    """The reference CSMS's own handlers, in this process: sends the frame as the CSMS would.

    Args:
        csms: A started `virtual_chargers.csms.Csms`.
        timeout_s: Wall seconds to wait for the charger to be connected.
    """

    def __init__(self, csms: Any, timeout_s: float = 10.0) -> None:
        self.csms, self.timeout_s = csms, timeout_s
        self._n = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    async def send(self, charger_id: str, action: str, payload: dict[str, Any]) -> None:
        """Send the request from the charger's handler; its answer is awaited in the background."""
        try:
            handler = await self.csms.wait_connected(charger_id, self.timeout_s)
        except TimeoutError:
            raise ApiError(f"charger {charger_id} is not connected to the reference CSMS") from None
        self._n += 1
        uid = f"api-{self._n}"
        frame = json.dumps([2, uid, action, payload], separators=(",", ":"))
        task = asyncio.ensure_future(handler.send_raw(frame, reply_id=uid, timeout_s=self.timeout_s))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a charger that never answers is the case's to report, not ours
