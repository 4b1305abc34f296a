"""Transaction messages that must reach the CSMS: ordered, bounded and persisted before they are sent.

OCPP requires a charger to deliver transaction-related messages (1.6: StartTransaction, StopTransaction,
MeterValues of a transaction; 2.0.1: TransactionEvent) even across a lost connection, in the order they
happened. Every such message is written to a SQLite database (WAL journal) *before* it is sent and deleted
only when the CSMS has answered, so neither a dropped connection nor an emulator restart loses one.

One `TxStore` (one database file) serves all chargers of a process; each charger has its `TxQueue`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
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
    """The SQLite database of all queues of one process (``path`` None: in memory, not persisted)."""

    def __init__(self, path: Path | None = None) -> None:
        """Open or create the database."""
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", isolation_level=None)
        # WAL + NORMAL: a commit survives a crash of this process (the emulator restart we promise);
        # only a power loss of the machine could take the last commits.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def queue(self, charger: str, max_messages: int = 10_000) -> TxQueue:
        """The queue of ``charger``, with whatever an earlier run left in it."""
        return TxQueue(self, charger, max_messages)

    def pending_count(self) -> int:
        """Messages waiting in all queues."""
        row = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
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
        self._db = store._db
        self.charger = charger
        self.max_messages = max_messages
        self.dropped = 0
        self.changed = asyncio.Event()  # set whenever a message is queued, for the sender to wake up
        row = self._db.execute("SELECT COUNT(*) FROM queue WHERE charger = ?", (charger,)).fetchone()
        self._n = int(row[0])
        self._tx_ids: dict[str, str] = dict(
            self._db.execute("SELECT tx_ref, tx_id FROM tx_ids WHERE charger = ?", (charger,)).fetchall()
        )

    def __len__(self) -> int:
        """Messages waiting."""
        return self._n

    def put(self, action: str, payload: dict[str, Any], t_s: float, tx_ref: str | None, offline: bool) -> int:
        """Persist a message at the end of the queue and return its ``seq``."""
        if len(self) >= self.max_messages:
            self._drop_oldest_meter_values()
        cur = self._db.execute(
            "INSERT INTO queue (charger, action, payload, tx_ref, t_s, offline) VALUES (?, ?, ?, ?, ?, ?)",
            (self.charger, action, json.dumps(payload, separators=(",", ":")), tx_ref, t_s, int(offline)),
        )
        self._n += 1
        self.changed.set()
        return int(cur.lastrowid or 0)

    def peek(self) -> QueuedMessage | None:
        """The oldest message, or None."""
        row = self._db.execute(
            "SELECT seq, action, payload, tx_ref, t_s, offline, attempts FROM queue WHERE charger = ? "
            "ORDER BY seq LIMIT 1",
            (self.charger,),
        ).fetchone()
        if row is None:
            return None
        return QueuedMessage(row[0], row[1], json.loads(row[2]), row[3], row[4], bool(row[5]), row[6])

    def all(self) -> list[QueuedMessage]:
        """Every waiting message, oldest first."""
        rows = self._db.execute(
            "SELECT seq, action, payload, tx_ref, t_s, offline, attempts FROM queue WHERE charger = ? ORDER BY seq",
            (self.charger,),
        ).fetchall()
        return [QueuedMessage(r[0], r[1], json.loads(r[2]), r[3], r[4], bool(r[5]), r[6]) for r in rows]

    def done(self, seq: int) -> None:
        """The CSMS answered message ``seq`` (or it was given up): remove it."""
        if self._db.execute("DELETE FROM queue WHERE seq = ?", (seq,)).rowcount:
            self._n -= 1

    def failed_attempt(self, seq: int) -> int:
        """The CSMS answered ``seq`` with a CallError; return the attempts so far."""
        self._db.execute("UPDATE queue SET attempts = attempts + 1 WHERE seq = ?", (seq,))
        row = self._db.execute("SELECT attempts FROM queue WHERE seq = ?", (seq,)).fetchone()
        return int(row[0]) if row else 0

    def set_tx_id(self, tx_ref: str, tx_id: str) -> None:
        """Remember the CSMS's id of the transaction the charger calls ``tx_ref``."""
        self._tx_ids[tx_ref] = tx_id
        self._db.execute(
            "INSERT OR REPLACE INTO tx_ids (charger, tx_ref, tx_id) VALUES (?, ?, ?)", (self.charger, tx_ref, tx_id)
        )

    def tx_id(self, tx_ref: str) -> str | None:
        """The CSMS's id of transaction ``tx_ref``, once known."""
        return self._tx_ids.get(tx_ref)

    def forget_tx(self, tx_ref: str) -> None:
        """The transaction is over and every message of it delivered."""
        self._tx_ids.pop(tx_ref, None)
        self._db.execute("DELETE FROM tx_ids WHERE charger = ? AND tx_ref = ?", (self.charger, tx_ref))

    def _drop_oldest_meter_values(self) -> None:
        row = self._db.execute(
            "SELECT seq FROM queue WHERE charger = ? AND (action = 'MeterValues' OR "
            "(action = 'TransactionEvent' AND payload LIKE '%\"eventType\":\"Updated\"%')) ORDER BY seq LIMIT 1",
            (self.charger,),
        ).fetchone()
        if row is not None:
            self.done(int(row[0]))
            self.dropped += 1
