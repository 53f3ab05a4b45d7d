"""The telemetry database: SQLite (one file, WAL) by default, PostgreSQL (psycopg 3) for a fleet
that outgrows one computer. Table `telemetry`: device, seq, ts, kind, record (the JSON object as
the board sent it), received; UNIQUE (device, seq), so a record replayed by a board, or handed
over twice by the broker, is stored once. Table `devices`: the retained info/status of each
board. Table `rejected`: messages that were not telemetry, kept with the reason.
The collector writes it (microfab.collector), the report reads it (microfab.report)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit


# A record stamped before this was made by a board whose clock was never set (an RP2040 starts
# at 2021-01-01, an ESP32 at 2000-01-01; see fab/clock.py).
SANE_TS = 1704067200  # 2024-01-01


class TelemetryError(Exception):
    """A database that cannot be used, or bad input; the message says what was expected."""


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "microfab" / "telemetry.db"


def is_postgres(db) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL as it may be shown: a password becomes ***."""
    u = urlsplit(str(url))
    if u.password is None:
        return str(url)
    host = u.netloc.rsplit("@", 1)[1]
    return u._replace(netloc="%s:***@%s" % (u.username, host)).geturl()


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry (
  device TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
  record TEXT NOT NULL, received REAL NOT NULL, UNIQUE (device, seq));
CREATE INDEX IF NOT EXISTS telemetry_ts ON telemetry (ts);
CREATE TABLE IF NOT EXISTS devices (
  device TEXT PRIMARY KEY, machine TEXT, info TEXT, status TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS rejected (
  received REAL NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL, reason TEXT NOT NULL);
"""
_PG_SCHEMA = """
SELECT pg_advisory_xact_lock(4242001);
CREATE TABLE IF NOT EXISTS telemetry (
  device TEXT NOT NULL, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
  record JSONB NOT NULL, received DOUBLE PRECISION NOT NULL, UNIQUE (device, seq));
CREATE INDEX IF NOT EXISTS telemetry_ts ON telemetry (ts);
CREATE TABLE IF NOT EXISTS devices (
  device TEXT PRIMARY KEY, machine TEXT, info TEXT, status TEXT, updated DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS rejected (
  received DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,
  reason TEXT NOT NULL);
"""
_UPSERT = ("INSERT INTO devices (device, %s, updated) VALUES (%s) ON CONFLICT (device) DO "
           "UPDATE SET %s, updated = excluded.updated")


class SqliteStore:
    """One SQLite file in WAL mode; a commit is durable (synchronous FULL) before any ack."""
    ph = "?"

    def __init__(self, path, create: bool = True):
        path = Path(path).expanduser()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise TelemetryError("no telemetry database at %s (microfab collect makes one)" % path)
        self.name = str(path)
        try:
            self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False,
                                      isolation_level=None)
            if create:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SQLITE_SCHEMA)
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            raise TelemetryError("%s is not a usable SQLite database: %s" % (path, e)) from None

    def write(self, rows, devices, rejects) -> int:
        """One transaction: rows [(device, seq, ts, kind, text, received)], devices
        [(device, column, value, now)], rejects [(received, topic, payload, reason)]. Returns
        how many rows were new."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany("INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (device, seq) DO NOTHING", rows)
            stored = cur.rowcount if rows else 0
            self._devices(cur, devices)
            if rejects:
                cur.executemany("INSERT INTO rejected VALUES (?, ?, ?, ?)", rejects)
            cur.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return stored

    def _devices(self, cur, devices):
        for device, col, value, now in devices:
            sets = ["%s = excluded.%s" % (c, c) for c in col]
            cur.execute(_UPSERT % (", ".join(col), ", ".join([self.ph] * (len(col) + 2)),
                                   ", ".join(sets)), (device, *value, now))

    def query(self, sql: str, args=()):
        return self.db.execute(sql.replace("%s", self.ph), args).fetchall()

    def close(self):
        self.db.close()


class PostgresStore(SqliteStore):
    """PostgreSQL through psycopg 3: one round trip per batch (unnest of arrays)."""
    ph = "%s"

    def __init__(self, url: str, create: bool = True):
        try:
            import psycopg
        except ImportError:
            raise TelemetryError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") \
                from None
        self.name = redact(url)
        try:
            self.db = psycopg.connect(url, connect_timeout=10)
            if create:
                with self.db.transaction():
                    self.db.execute(_PG_SCHEMA)
        except psycopg.Error as e:
            raise TelemetryError("cannot use PostgreSQL at %s: %s"
                                 % (self.name, str(e).strip().splitlines()[0])) from None

    def write(self, rows, devices, rejects) -> int:
        with self.db.transaction():
            cur = self.db.cursor()
            stored = 0
            if rows:
                cur.execute("INSERT INTO telemetry SELECT d, s, t, k, r::jsonb, rc FROM unnest("
                            "%s::text[], %s::bigint[], %s::float8[], %s::text[], %s::text[], "
                            "%s::float8[]) AS u(d, s, t, k, r, rc) "
                            "ON CONFLICT (device, seq) DO NOTHING", [list(c) for c in zip(*rows)])
                stored = cur.rowcount
            self._devices(cur, devices)
            if rejects:
                cur.executemany("INSERT INTO rejected VALUES (%s, %s, %s, %s)", rejects)
        return stored

    def query(self, sql: str, args=()):
        with self.db.transaction():
            return self.db.execute(sql, args).fetchall()


def open_store(db=None, create: bool = True):
    if db is not None and is_postgres(db):
        return PostgresStore(str(db), create)
    return SqliteStore(db or default_db_path(), create)
