"""A durable first-in first-out queue of MQTT messages in one SQLite file, for `store`.

Each message is a row (seq, topic, payload), committed to disk before anyone may publish it, and
deleted only once the broker acknowledged it; so a restart, a crash or a power cut loses nothing
that was committed, and the sequence numbers go on where they stopped (AUTOINCREMENT never reuses
one, even after its row was deleted). `max_rows` bounds the file: the oldest rows make room.

The file is opened in WAL mode with synchronous=FULL (a commit is on disk when append() returns)
and locking_mode=EXCLUSIVE: one process owns it while it runs, so two workers can never publish
the same rows; the kernel drops the lock when the process ends, however it ends.
"""

import os
import sqlite3
from collections.abc import Callable

# PRAGMA application_id of a file this module made ("SFob"), so that another program's SQLite file
# is recognised and left alone rather than taken over.
APPLICATION_ID = 0x53466F62
SCHEMA_VERSION = 1
_SCHEMA = ("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
           "payload TEXT NOT NULL)")
BUSY_TIMEOUT = 1.0  # seconds to wait for another process's lock before saying the file is in use


class OutboxError(ValueError):
    """The file cannot be used as an outbox, or a write failed (disk full, I/O error); the text
    completes "<path>: ..."."""


class Outbox:
    """The open queue. Not thread-safe: one thread (the worker's main thread) uses it."""

    def __init__(self, db: sqlite3.Connection, path: str, max_rows: int) -> None:
        self._db = db
        self.path = path
        self.max_rows = max_rows
        self.rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self.last_seq = seq[0] if seq else 0

    def append(self, topic: str, make_payload: Callable[[int], str]) -> tuple[int, list[int]]:
        """Commit make_payload(seq) as the next message; return (seq, the seqs of the oldest rows
        dropped to stay within max_rows)."""
        seq = self.last_seq + 1
        payload = make_payload(seq)
        try:
            with self._db:  # one transaction: the new row and the room it needs, or neither
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO outbox (seq, topic, payload) VALUES (?, ?, ?)", (seq, topic, payload))
                dropped = []
                excess = self.rows + 1 - self.max_rows
                if excess > 0:
                    dropped = [row[0] for row in self._db.execute(
                        "SELECT seq FROM outbox ORDER BY seq LIMIT ?", (excess,))]
                    self._db.execute("DELETE FROM outbox WHERE seq <= ?", (dropped[-1],))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store message {seq}: {_reason(exc)}") from None
        self.last_seq = seq
        self.rows += 1 - len(dropped)
        return seq, dropped

    def after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to `limit` messages (seq, topic, payload) with a seq above `seq`, oldest first."""
        try:
            return self._db.execute("SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (seq, limit)).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read messages: {_reason(exc)}") from None

    def delete_through(self, seq: int) -> None:
        """Forget every message up to and including `seq` (the broker has them)."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,)).rowcount
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot delete acknowledged messages: {_reason(exc)}") from None
        self.rows -= deleted

    def close(self) -> None:
        self._db.close()


def open_outbox(path: str, max_rows: int) -> Outbox:
    """Open or create the outbox file at `path`; OutboxError (one line) when it cannot be used.

    Nothing is written to a file that is not an outbox already (another program's database, any
    other file), and no file is created in a folder that does not exist.
    """
    if not path:
        raise OutboxError("must not be empty")
    if os.path.isdir(path):
        raise OutboxError("is a folder; give the path of a file in it")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise OutboxError(f"folder {folder} does not exist")
    exists = os.path.exists(path)
    if exists and not os.path.isfile(path):
        raise OutboxError("is not a regular file")
    if exists and not os.access(path, os.R_OK | os.W_OK):
        raise OutboxError("is not readable and writable")
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes its -wal file beside the database.
        raise OutboxError(f"folder {folder} is not writable")
    try:
        # isolation_level=None: no implicit transactions; each write says BEGIN itself, inside
        # `with db:` (which commits, or rolls back on an exception).
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise OutboxError(_reason(exc)) from None
    try:
        _prepare(db)
        return Outbox(db, path, max_rows)
    except (sqlite3.Error, OutboxError) as exc:
        db.close()
        if not exists and os.path.isfile(path) and os.path.getsize(path) == 0:
            os.remove(path)  # the empty file connect() created just now: leave nothing half-made
        raise exc if isinstance(exc, OutboxError) else OutboxError(_reason(exc)) from None


def _prepare(db: sqlite3.Connection) -> None:
    """Check that `db` is an outbox (or empty), take the lock, and create the table if needed."""
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    # The first read: a file that is not SQLite fails here ("file is not a database") and a file
    # another process owns fails with "database is locked", both before anything is written.
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id != APPLICATION_ID:
        if app_id != 0 or tables:
            raise OutboxError("is an SQLite database of another program (not made by store); "
                              "give a new file or one store made")
    elif version != SCHEMA_VERSION or "outbox" not in tables:
        raise OutboxError(f"is a store database of another version ({version}, expected {SCHEMA_VERSION})")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise OutboxError(f"SQLite cannot use a write-ahead log there (journal mode {mode})")
    db.execute("PRAGMA synchronous = FULL")  # WAL's NORMAL may lose the last commits at a power cut
    if app_id == 0:
        with db:
            db.execute("BEGIN EXCLUSIVE")
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    else:
        # An exclusive lock is taken by the first write; take it now, so that a second process on
        # the same file is refused at start rather than at its first reading.
        with db:
            db.execute("BEGIN EXCLUSIVE")


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc) or type(exc).__name__
    if "database is locked" in text:
        return "is in use by another process (SQLite: database is locked)"
    if "file is not a database" in text:
        return "is not an SQLite database (SQLite: file is not a database)"
    return f"SQLite: {text}"
