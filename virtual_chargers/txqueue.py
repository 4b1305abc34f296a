"""Transaction messages that must reach the CSMS: ordered, bounded and persisted before they are sent.

OCPP requires a charger to deliver transaction-related messages (1.6: StartTransaction, StopTransaction,
MeterValues of a transaction; 2.0.1: TransactionEvent) even across a lost connection, in the order they
happened. Every such message is written to a SQLite database (WAL journal, fsync on commit) *before* it is
sent and deleted only when the CSMS has answered, so neither a dropped connection, an emulator crash nor
a power loss loses one.

Writes are batched: the changes of ``commit_window_s`` (wall seconds) are committed together by a
writer thread, so the event loop never waits for the disk, and a message becomes visible to `peek`
(that is, sendable) only once the commit holding it is on disk. Reads come from an in-memory copy of the
queues, loaded at start.

One `TxStore` (one database file) serves all chargers of a process; each charger has its `TxQueue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["QueuedMessage", "TxQueue", "TxStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charger TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    tx_ref TEXT,
    t_s REAL NOT NULL,
    offline INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_charger ON queue (charger, seq);
CREATE TABLE IF NOT EXISTS tx_ids (
    charger TEXT NOT NULL,
    tx_ref TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    PRIMARY KEY (charger, tx_ref)
);
"""

_Op = tuple[str, tuple[Any, ...]]  # (SQL, parameters)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A transaction message waiting for the CSMS's answer.

    Attributes:
        seq: Position in the store (increasing in the order messages were queued).
        action: OCPP action.
        payload: Request payload (camelCase, as on the wire).
        tx_ref: The charger's own reference of the transaction (1.6 learns the CSMS's id later).
        t_s: Simulated time when it was queued.
        offline: Queued while the charger had no accepted connection.
        attempts: Deliveries the CSMS answered with a CallError so far.
    """

    seq: int
    action: str
    payload: dict[str, Any]
    tx_ref: str | None
    t_s: float
    offline: bool
    attempts: int


class TxStore:
    """The SQLite database of all queues of one process (``path`` None: in memory, not persisted).

    Args:
        path: Database file.
        commit_window_s: Wall seconds of changes committed together (0: each change at once, synchronously).
    """

    def __init__(self, path: Path | None = None, commit_window_s: float = 0.01) -> None:
        """Open or create the database."""
        if commit_window_s < 0:
            raise ValueError(f"commit_window_s(={commit_window_s}) must be >= 0")
        self.path = path
        self.commit_window_s = commit_window_s
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:", isolation_level=None, check_same_thread=False
        )
        # WAL + FULL: a commit is on disk (fsync) before it counts, so a message is never sent before it
        # would survive a crash or a power loss. Batching keeps that to one fsync per commit window.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT MAX(seq) FROM queue").fetchone()
        self._last_seq = int(row[0] or 0)
        self.durable_seq = self._last_seq  # every message up to this one is on disk
        self._ops: list[_Op] = []
        self._batch_max_seq = 0
        self._batch_queues: dict[TxQueue, None] = {}  # queues with a new message in the batch (ordered)
        self._lock = threading.Lock()  # the connection is used by the writer thread or by `close`
        self._writer: ThreadPoolExecutor | None = None
        self._in_flight: Future[None] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._queues: dict[str, TxQueue] = {}
        self.commits = 0

    def queue(self, charger: str, max_messages: int = 10_000) -> TxQueue:
        """The queue of ``charger`` (a key: chargers key it by their CSMS URL), with what an earlier run left."""
        q = TxQueue(self, charger, max_messages)
        self._queues[charger] = q
        return q

    def pending_count(self) -> int:
        """Messages waiting in all queues."""
        return sum(len(q) for q in self._queues.values())

    def _next_seq(self) -> int:
        self._last_seq += 1
        return self._last_seq

    def _write(self, sql: str, params: tuple[Any, ...], new_in: TxQueue | None = None, seq: int = 0) -> None:
        """Record a change (``new_in``: a new message ``seq`` of that queue); it is committed with the batch."""
        self._ops.append((sql, params))
        if new_in is not None:
            self._batch_queues[new_in] = None
            self._batch_max_seq = seq
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self.commit_window_s == 0:
            self._commit_now()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(self.commit_window_s, self._flush, loop)

    def _take_batch(self) -> tuple[list[_Op], int, list[TxQueue]]:
        ops, self._ops = self._ops, []
        max_seq, self._batch_max_seq = self._batch_max_seq, 0
        queues, self._batch_queues = list(self._batch_queues), {}
        return ops, max_seq, queues

    def _apply(self, ops: list[_Op]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for sql, params in ops:
                    self._db.execute(sql, params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _commit_now(self) -> None:
        """Wait for the batch in flight, then commit what is pending, in this thread."""
        if self._in_flight is not None:
            self._in_flight.result()
        ops, max_seq, queues = self._take_batch()
        if ops:
            self._apply(ops)
            self.commits += 1
        self._durable(max_seq, queues)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_handle = None
        if self._in_flight is not None and not self._in_flight.done():
            self._flush_handle = loop.call_later(self.commit_window_s, self._flush, loop)  # one commit at a time
            return
        ops, max_seq, queues = self._take_batch()
        if not ops:
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txqueue-writer")
        fut = self._in_flight = self._writer.submit(self._apply, ops)
        self.commits += 1

        def done(f: Future[None]) -> None:
            if f.exception() is not None:
                return  # nothing of the batch counts as queued; `close` raises the error
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._durable, max_seq, queues)

        fut.add_done_callback(done)

    def _durable(self, max_seq: int, queues: list[TxQueue]) -> None:
        self.durable_seq = max(self.durable_seq, max_seq)
        for q in queues:
            q.changed.set()

    def close(self) -> None:
        """Commit what is pending and close the database."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._commit_now()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        with self._lock:
            self._db.close()


class TxQueue:
    """One charger's queue of transaction messages, oldest first.

    When ``max_messages`` are waiting, the oldest queued MeterValues make room (Start/Stop and
    TransactionEvent Started/Ended are never dropped); `dropped` counts those.
    """

    def __init__(self, store: TxStore, charger: str, max_messages: int) -> None:
        """Attach to ``charger``'s rows in ``store``."""
        if max_messages < 1:
            raise ValueError(f"max_messages(={max_messages}) must be >= 1")
        self._store = store
        self.charger = charger
        self.max_messages = max_messages
        self.dropped = 0
        self.changed = asyncio.Event()  # set whenever a message becomes sendable, for the sender to wake up
        with store._lock:
            rows = store._db.execute(
                "SELECT seq, action, payload, tx_ref, t_s, offline, attempts FROM queue WHERE charger = ? ORDER BY seq",
                (charger,),
            ).fetchall()
            tx_ids = store._db.execute("SELECT tx_ref, tx_id FROM tx_ids WHERE charger = ?", (charger,)).fetchall()
        self._items: deque[QueuedMessage] = deque(
            QueuedMessage(r[0], r[1], json.loads(r[2]), r[3], r[4], bool(r[5]), r[6]) for r in rows
        )
        self._tx_ids: dict[str, str] = dict(tx_ids)
        # messages up to this one were queued by an earlier run (found in the store when it was opened)
        self.earlier_run_max_seq = rows[-1][0] if rows else 0

    def __len__(self) -> int:
        """Messages waiting."""
        return len(self._items)

    def put(self, action: str, payload: dict[str, Any], t_s: float, tx_ref: str | None, offline: bool) -> int:
        """Persist a message at the end of the queue and return its ``seq`` (sendable once committed)."""
        if len(self) >= self.max_messages:
            self._drop_oldest_meter_values()
        seq = self._store._next_seq()
        self._items.append(QueuedMessage(seq, action, payload, tx_ref, t_s, offline, 0))
        self._store._write(
            "INSERT INTO queue (seq, charger, action, payload, tx_ref, t_s, offline) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, self.charger, action, json.dumps(payload, separators=(",", ":")), tx_ref, t_s, int(offline)),
            self,
            seq,
        )
        return seq

    def peek(self) -> QueuedMessage | None:
        """The oldest message once it is on disk, or None."""
        if self._items and self._items[0].seq <= self._store.durable_seq:
            return self._items[0]
        return None

    def all(self) -> list[QueuedMessage]:
        """Every waiting message, oldest first (committed or not)."""
        return list(self._items)

    def done(self, seq: int) -> None:
        """The CSMS answered message ``seq`` (or it was given up): remove it."""
        for i, m in enumerate(self._items):
            if m.seq == seq:
                del self._items[i]
                self._store._write("DELETE FROM queue WHERE seq = ?", (seq,))
                return

    def failed_attempt(self, seq: int) -> int:
        """The CSMS answered ``seq`` with a CallError; return the attempts so far."""
        for i, m in enumerate(self._items):
            if m.seq == seq:
                self._items[i] = replace(m, attempts=m.attempts + 1)
                self._store._write("UPDATE queue SET attempts = attempts + 1 WHERE seq = ?", (seq,))
                return m.attempts + 1
        return 0

    def set_tx_id(self, tx_ref: str, tx_id: str) -> None:
        """Remember the CSMS's id of the transaction the charger calls ``tx_ref``."""
        self._tx_ids[tx_ref] = tx_id
        self._store._write(
            "INSERT OR REPLACE INTO tx_ids (charger, tx_ref, tx_id) VALUES (?, ?, ?)", (self.charger, tx_ref, tx_id)
        )

    def tx_id(self, tx_ref: str) -> str | None:
        """The CSMS's id of transaction ``tx_ref``, once known."""
        return self._tx_ids.get(tx_ref)

    def forget_tx(self, tx_ref: str) -> None:
        """The transaction is over and every message of it delivered."""
        self._tx_ids.pop(tx_ref, None)
        self._store._write("DELETE FROM tx_ids WHERE charger = ? AND tx_ref = ?", (self.charger, tx_ref))

    def _drop_oldest_meter_values(self) -> None:
        for m in self._items:
            if m.action == "MeterValues" or (
                m.action == "TransactionEvent" and m.payload.get("eventType") == "Updated"
            ):
                self.done(m.seq)
                self.dropped += 1
                return
