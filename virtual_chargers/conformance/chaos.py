"""Chaos: a fault proxy between virtual chargers and a CSMS, and the invariants that must survive it.

`FaultProxy` listens on 127.0.0.1 and opens, for every charger that connects, its own websocket to the
CSMS (same path, subprotocol and credentials); frames are relayed both ways through the faults of the
scenario: delay and jitter, loss, duplication, reordering within a window, truncation, abrupt
disconnects, and reconnect storms of N chargers at once (the chargers' clocks can be skewed too). The
proxy records what each side sent and what was actually delivered, so the invariants are judged from the
CSMS's side of the wire, for any CSMS:

- ``transactions_exactly_once``: every transaction a charger started reached the CSMS and got exactly one
  transactionId from it (a start delivered twice, by a retry or a duplicate, must not become two), and
  every transaction a charger stopped had its StopTransaction answered;
- ``meter_values_in_order``: per transaction, the MeterValues delivered to the CSMS never go back in time
  or in energy;
- ``no_charger_unknown``: after the faults stop, every charger is connected and booted again, its queue
  of transaction messages is empty and the CSMS got a status of each connector since that boot. The time
  until all hold is the recovery time. Statuses the CSMS holds that differ from the charger's (a lost
  StatusNotification, which OCPP 1.6 does not resend) are counted as stale, not as unknown.

Scenario files (YAML), checked with clear errors::

    name: loss-and-reorder
    chargers: 500
    speed: 10
    fault_s: 120                  # wall seconds of load under faults
    faults: {loss: 0.05, reorder_window: 4, delay_ms: 5, jitter_ms: 20}
    invariants: [transactions_exactly_once, meter_values_in_order, no_charger_unknown]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

__all__ = ["ChaosError", "ChaosScenario", "FaultProxy", "Faults", "load_chaos", "run_chaos"]

Invariant = Literal["transactions_exactly_once", "meter_values_in_order", "no_charger_unknown"]
INVARIANTS: tuple[Invariant, ...] = ("transactions_exactly_once", "meter_values_in_order", "no_charger_unknown")


class ChaosError(ValueError):
    """A chaos scenario the user must fix; one line per problem."""


class Storm(BaseModel):
    """``chargers`` connections cut at once, ``at_s`` wall seconds into the fault period."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at_s: float = Field(ge=0)
    chargers: int = Field(gt=0)


class Faults(BaseModel):
    """Faults on every frame both ways (probabilities per frame) and on every connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    delay_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    loss: float = Field(default=0.0, ge=0, le=1)
    duplicate: float = Field(default=0.0, ge=0, le=1)
    reorder_window: int = Field(default=1, ge=1, le=64)
    reorder_hold_ms: float = Field(default=20.0, ge=0)
    truncate: float = Field(default=0.0, ge=0, le=1)
    disconnects_per_charger_h: float = Field(default=0.0, ge=0)
    storms: tuple[Storm, ...] = ()
    clock_skew_s: float = Field(default=0.0, ge=0)


class ChaosScenario(BaseModel):
    """A chaos run: the fleet, the faults, and the invariants to check."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "chaos"
    ocpp: Literal["1.6"] = "1.6"
    chargers: int = Field(default=100, gt=0, le=10_000)
    speed: float = Field(default=10.0, gt=0)
    meter_interval_s: int = Field(default=60, gt=0)
    fault_s: float = Field(default=60.0, gt=0)
    ramp_s: float = Field(default=10.0, ge=0)
    session_s: float = Field(default=20.0, gt=0)
    recovery_timeout_s: float = Field(default=180.0, gt=0)
    response_timeout_s: float = Field(default=5.0, gt=0)
    seed: int = 0
    faults: Faults = Field(default_factory=Faults)
    invariants: tuple[Invariant, ...] = INVARIANTS


def load_chaos(path: Path) -> ChaosScenario:
    """Read and check a chaos scenario; `ChaosError` names the file, field and fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChaosError(f"{path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ChaosError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ChaosError(f"{path}: expected a mapping of scenario fields (name, chargers, faults, invariants…)")
    try:
        return ChaosScenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            hint = "unknown key; check the spelling" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"{path}: {where}: {hint}")
        raise ChaosError("\n".join(lines)) from None


@dataclass
class _Side:
    """Frames of one charger as the proxy saw them: sent by each side, and delivered to each side."""

    from_charger: list[str] = field(default_factory=list)  # raw, before faults
    to_csms: list[str] = field(default_factory=list)  # raw, delivered
    from_csms: list[str] = field(default_factory=list)
    to_charger: list[str] = field(default_factory=list)


class FaultProxy:
    """The fault layer: a websocket relay on 127.0.0.1 that misbehaves as the `Faults` say."""

    def __init__(self, upstream: str, faults: Faults, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        self.enabled = True
        self.rng = random.Random(seed)
        self.sides: dict[str, _Side] = defaultdict(_Side)
        self.live: dict[str, tuple[ServerConnection, ClientConnection]] = {}
        self.counts: dict[str, int] = dict.fromkeys(
            ("lost", "duplicated", "truncated", "reordered_batches", "disconnects", "upstream_refused"), 0
        )
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Where chargers connect."""
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        """Listen on a free port."""
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
            compression=None,
            ping_interval=None,
            max_size=None,
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self

    async def stop(self) -> None:
        """Close every relayed connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def storm(self, n: int) -> int:
        """Cut ``n`` live connections at once (abruptly, no close frame); returns how many were cut."""
        ids = sorted(self.live)
        self.rng.shuffle(ids)
        for cid in ids[:n]:
            self._abort(cid)
        return min(n, len(ids))

    def _abort(self, charger: str) -> None:
        pair = self.live.pop(charger, None)
        if pair is None:
            return
        self.counts["disconnects"] += 1
        for ws in pair:
            with contextlib.suppress(Exception):
                ws.transport.abort()

    async def _serve(self, client: ServerConnection) -> None:
        path = client.request.path if client.request is not None else "/"
        charger = path.rstrip("/").rsplit("/", 1)[-1]
        headers = {}
        if client.request is not None and "Authorization" in client.request.headers:
            headers["Authorization"] = client.request.headers["Authorization"]
        try:
            upstream = await connect(
                self.upstream + path,
                subprotocols=[client.subprotocol] if client.subprotocol else None,
                additional_headers=headers,
                compression=None,
                ping_interval=None,
                open_timeout=10,
                max_size=None,
                proxy=None,
            )
        except Exception:
            self.counts["upstream_refused"] += 1
            await client.close(1011, "the CSMS refused the connection")
            return
        self.live[charger] = (client, upstream)
        side = self.sides[charger]
        tasks = [
            asyncio.ensure_future(self._pump(client, upstream, side.from_charger, side.to_csms)),
            asyncio.ensure_future(self._pump(upstream, client, side.from_csms, side.to_charger)),
        ]
        if self.faults.disconnects_per_charger_h > 0:
            tasks.append(asyncio.ensure_future(self._random_cut(charger)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.live.get(charger) == (client, upstream):
                del self.live[charger]
            for ws in (client, upstream):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2.0)

    async def _random_cut(self, charger: str) -> None:
        rate_per_s = self.faults.disconnects_per_charger_h / 3600.0
        while True:
            await asyncio.sleep(self.rng.expovariate(rate_per_s))
            if self.enabled:
                self._abort(charger)
                return

    async def _pump(self, src: Any, dst: Any, sent: list[str], delivered: list[str]) -> None:
        f = self.faults
        queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send_loop(queue, dst, delivered))
        try:
            async for raw in src:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                sent.append(text)
                copies = [text]
                if self.enabled:
                    r = self.rng.random
                    if f.loss and r() < f.loss:
                        self.counts["lost"] += 1
                        continue
                    if f.truncate and r() < f.truncate:
                        self.counts["truncated"] += 1
                        copies = [text[: len(text) // 2]]
                    if f.duplicate and r() < f.duplicate:
                        self.counts["duplicated"] += 1
                        copies.append(copies[0])
                for c in copies:
                    delay = 0.0
                    if self.enabled and (f.delay_ms or f.jitter_ms):
                        delay = (f.delay_ms + self.rng.random() * f.jitter_ms) / 1000.0
                    queue.put_nowait((time.monotonic() + delay, c))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), 2.0)  # what is still in flight, unless the other side is gone
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender

    async def _send_loop(self, queue: asyncio.Queue[tuple[float, str]], dst: Any, delivered: list[str]) -> None:
        f = self.faults
        while True:
            batch = [await queue.get()]
            if self.enabled and f.reorder_window > 1:
                deadline = time.monotonic() + f.reorder_hold_ms / 1000.0
                while len(batch) < f.reorder_window:
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), max(0.0, deadline - time.monotonic())))
                    except TimeoutError:
                        break
                if len(batch) > 1:
                    self.rng.shuffle(batch)
                    self.counts["reordered_batches"] += 1
            try:
                for due, text in batch:
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await dst.send(text)
                    delivered.append(text)
            finally:
                for _ in batch:
                    queue.task_done()


# invariants -----------------------------------------------------------------------------------------


def _frames(texts: list[str]) -> list[list[Any]]:
    out = []
    for t in texts:
        try:
            msg = json.loads(t)
        except ValueError:
            continue
        if isinstance(msg, list) and len(msg) >= 3:
            out.append(msg)
    return out


def _tx_key(charger: str, p: dict[str, Any]) -> tuple[str, Any, Any, Any]:
    return (charger, p.get("connectorId"), p.get("timestamp"), p.get("meterStart"))


def check_transactions(sides: dict[str, _Side]) -> tuple[bool, dict[str, Any]]:
    """Every started transaction reached the CSMS with exactly one transactionId; every stop was answered."""
    started: set[tuple[Any, ...]] = set()
    ids: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    stops_sent: set[tuple[str, Any]] = set()
    stops_answered: set[tuple[str, Any]] = set()
    for charger, side in sides.items():
        for m in _frames(side.from_charger):
            if m[0] == 2 and len(m) == 4 and m[2] == "StartTransaction":
                started.add(_tx_key(charger, m[3]))
            if m[0] == 2 and len(m) == 4 and m[2] == "StopTransaction":
                stops_sent.add((charger, m[3].get("transactionId")))
        requests = {m[1]: m for m in _frames(side.to_csms) if m[0] == 2 and len(m) == 4}
        for m in _frames(side.from_csms):
            req = requests.get(m[1]) if m[0] == 3 else None
            if req is None or not isinstance(m[2], dict):
                continue
            if req[2] == "StartTransaction":
                ids[_tx_key(charger, req[3])].add(m[2].get("transactionId"))
            elif req[2] == "StopTransaction":
                stops_answered.add((charger, req[3].get("transactionId")))
    missing = [k for k in started if not ids.get(k)]
    doubled = {str(k): sorted(v) for k, v in ids.items() if len(v) > 1}
    stops_missing = sorted(str(s) for s in stops_sent - stops_answered)
    ok = not missing and not doubled and not stops_missing
    return ok, {
        "started": len(started),
        "reached_csms": len(started) - len(missing),
        "never_reached": [str(k) for k in missing[:20]],
        "several_transaction_ids": dict(list(doubled.items())[:20]),
        "several_transaction_ids_count": len(doubled),
        "stops_sent": len(stops_sent),
        "stops_unanswered": stops_missing[:20],
    }


def _register_wh(payload: dict[str, Any]) -> float | None:
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register":
                with contextlib.suppress(TypeError, ValueError):
                    return float(sv["value"])
    return None


def check_meter_order(sides: dict[str, _Side]) -> tuple[bool, dict[str, Any]]:
    """Per transaction, MeterValues delivered to the CSMS never go back in timestamp or energy."""
    breaks = []
    checked = 0
    for charger, side in sides.items():
        seen: set[str] = set()
        last: dict[Any, tuple[str, float]] = {}
        for m in _frames(side.to_csms):
            if not (m[0] == 2 and len(m) == 4 and m[2] == "MeterValues" and isinstance(m[3], dict)):
                continue
            if m[1] in seen or "transactionId" not in m[3]:
                continue  # a duplicate of a frame already counted; or outside a transaction
            seen.add(m[1])
            checked += 1
            ts = str(m[3]["meterValue"][0]["timestamp"]) if m[3].get("meterValue") else ""
            wh = _register_wh(m[3]) or 0.0
            tx = m[3]["transactionId"]
            prev = last.get(tx)
            if prev is not None and (ts < prev[0] or wh < prev[1]):
                breaks.append(f"{charger} tx {tx}: {ts} {wh} Wh after {prev[0]} {prev[1]} Wh")
            last[tx] = (max(ts, prev[0]) if prev else ts, max(wh, prev[1]) if prev else wh)
    return not breaks, {"meter_values_checked": checked, "out_of_order": breaks[:20], "out_of_order_count": len(breaks)}


def unknown_chargers(sides: dict[str, _Side], chargers: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(unknown, stale): chargers whose state the CSMS does not know, and those it knows a stale status of.

    Unknown: offline, with transaction messages still queued, or a connector without any status told
    since the last BootNotification. Stale: the last status told differs from the connector's (OCPP 1.6
    does not resend a StatusNotification that got no answer; only a new change or a TriggerMessage heals it).
    """
    unknown, stale = [], []
    for cid, cp in chargers.items():
        if not cp.online.is_set():
            unknown.append(f"{cid}: offline")
            continue
        if len(cp.queue):
            unknown.append(f"{cid}: {len(cp.queue)} messages queued")
            continue
        delivered = _frames(sides[cid].to_csms)
        last_boot = max((i for i, m in enumerate(delivered) if m[0] == 2 and m[2] == "BootNotification"), default=-1)
        told: dict[Any, str] = {}
        for m in delivered[last_boot + 1 :]:
            if m[0] == 2 and len(m) == 4 and m[2] == "StatusNotification" and isinstance(m[3], dict):
                told[m[3].get("connectorId")] = str(m[3].get("status"))
        never = [str(c.id) for c in cp.connectors.values() if c.id not in told]
        if never:
            unknown.append(f"{cid}: no status since boot for connector {', '.join(never)}")
            continue
        wrong = [
            f"{c.id}: CSMS {told[c.id]}, charger {c.status}" for c in cp.connectors.values() if told[c.id] != c.status
        ]
        if wrong:
            stale.append(f"{cid}: {'; '.join(wrong)}")
    return unknown, stale


# the run ----------------------------------------------------------------------------------------------


async def run_chaos(scenario: ChaosScenario, csms_url: str, state_dir: Path, progress: Any = None) -> dict[str, Any]:
    """Run the scenario against the CSMS at ``csms_url``; returns the report (invariants, recovery, counts)."""
    from virtual_chargers.faults import ClockDrift
    from virtual_chargers.testing import ChargerSet

    say = progress or (lambda _msg: None)
    f = scenario.faults
    rng = random.Random(scenario.seed)
    proxy = await FaultProxy(csms_url, f, scenario.seed).start()
    proxy.enabled = False  # boot the fleet first, then the faults start
    t_start = time.monotonic()
    try:
        async with ChargerSet(
            proxy.url,
            speed=scenario.speed,
            state_dir=state_dir,
            seed=scenario.seed,
            response_timeout_s=scenario.response_timeout_s,
            backoff_base_s=2.0 * scenario.speed,
            backoff_max_s=20.0 * scenario.speed,
        ) as fleet:
            config = {
                "MeterValueSampleInterval": str(scenario.meter_interval_s),
                "TransactionMessageRetryInterval": "10",
            }
            chargers = [await fleet.add(f"CHAOS{i:05d}", config=config, start=False) for i in range(scenario.chargers)]
            for cp in chargers:
                fleet.start(cp)
                await asyncio.sleep(0)
            await fleet.wait_all_booted(max(60.0, scenario.chargers / 20.0))
            t_booted = time.monotonic()
            say(
                f"{scenario.chargers} chargers booted in {t_booted - t_start:.1f} s; faults on for {scenario.fault_s} s"
            )
            if f.clock_skew_s:
                for cp in chargers:
                    await cp.apply_fault(
                        ClockDrift(at_s=0, kind="clock_drift", error_s=rng.uniform(-1, 1) * f.clock_skew_s)
                    )
            proxy.enabled = True
            sessions = [
                asyncio.ensure_future(_session(cp, rng.uniform(0, scenario.ramp_s), scenario.session_s, f"T{i:05d}"))
                for i, cp in enumerate(chargers)
            ]
            storms = [asyncio.ensure_future(_storm(proxy, s, say)) for s in f.storms]
            await asyncio.sleep(scenario.fault_s)
            proxy.enabled = False
            t_off = time.monotonic()
            for t in storms:
                t.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)
            say("faults off; waiting for recovery")
            by_id = {cp.spec.id: cp for cp in chargers}
            recovery_s: float | None = None
            left: list[str] = []
            stale: list[str] = []
            while time.monotonic() - t_off < scenario.recovery_timeout_s:
                left, stale = unknown_chargers(proxy.sides, by_id)
                if not left:
                    recovery_s = time.monotonic() - t_off
                    break
                await asyncio.sleep(0.5)
            summary = fleet.log.summary.to_dict()
    finally:
        await proxy.stop()
    results: dict[str, Any] = {}
    if "transactions_exactly_once" in scenario.invariants:
        ok, detail = check_transactions(proxy.sides)
        results["transactions_exactly_once"] = {"held": ok, **detail}
    if "meter_values_in_order" in scenario.invariants:
        ok, detail = check_meter_order(proxy.sides)
        results["meter_values_in_order"] = {"held": ok, **detail}
    if "no_charger_unknown" in scenario.invariants:
        results["no_charger_unknown"] = {
            "held": recovery_s is not None,
            "recovery_s": None if recovery_s is None else round(recovery_s, 2),
            "unknown_after_timeout": left[:20],
            "unknown_count": len(left) if recovery_s is None else 0,
            "stale_status_count": len(stale),
            "stale_status": stale[:20],
        }
    return {
        "kind": "chargetwin-chaos",
        "scenario": scenario.model_dump(mode="json"),
        "csms": csms_url,
        "held": all(r["held"] for r in results.values()),
        "invariants": results,
        "faults_applied": dict(proxy.counts),
        "boot_s": round(t_booted - t_start, 2),
        "wall_s": round(time.monotonic() - t_start, 2),
        "chargers_summary": {
            k: summary[k] for k in ("transactions", "timeouts", "connects", "disconnects", "csms_violations")
        },
    }


async def _session(cp: Any, start_s: float, session_s: float, tag: str) -> None:
    await asyncio.sleep(start_s)
    with contextlib.suppress(Exception):
        await cp.plug_in(1, id_tag=tag)
    await asyncio.sleep(session_s)
    with contextlib.suppress(Exception):
        await cp.unplug(1)


async def _storm(proxy: FaultProxy, storm: Storm, say: Any) -> None:
    await asyncio.sleep(storm.at_s)
    say(f"reconnect storm: {proxy.storm(storm.chargers)} connections cut at once")
