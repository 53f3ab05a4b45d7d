"""`microfab collect`: telemetry from MQTT into SQLite (default) or PostgreSQL, exactly once.

Boards publish `microfab/<device>/tele/<kind>` at QoS 1, one JSON object with a `seq` that grows
per device; after a reconnect they may replay what they were not sure got through. The
collector keeps every (device, seq) once (UNIQUE, INSERT ... ON CONFLICT DO NOTHING) and acks a
message to the broker only after the transaction holding it is committed, so nothing the broker
accepted is lost if the collector, its computer or the broker stops: the broker keeps our
persistent session (fixed client id, clean_start False, a session expiry) and hands over again
whatever we had not acked (with a plain subscription: Mosquitto 2.0 does not restore shared ones
after a restart). Several collectors given a --group share a fleet with an MQTT 5 shared
subscription (`$share/<group>/...`); each message goes to one of them. Mosquitto 2.0 goes on
giving a share to a member that is away (kept for its session, delivered when it is back), so a
collector taken out of a group for good is run once more with --session-expiry 0: it takes what
waits for it, and its session ends when it stops.

Threads: paho's network thread (with fastmqtt.FastClient's faster read side) decodes and
queues; the writer thread takes batches (up to batch_size messages, batch_ms old at most, or
whatever came before the stream paused), writes them in one transaction, commits, then acks them
in the order they arrived (MQTT 5 4.6)."""
from __future__ import annotations

import hashlib
import json
import os
import queue
import socket
import sqlite3
import threading
import time
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .fastmqtt import FastClient
from .telemetry import (SANE_TS, TelemetryError, default_db_path, is_postgres, open_store,
                        redact)


class CollectorError(TelemetryError):
    """Bad broker URL or settings; the message says what was expected."""


def parse_broker(url: str) -> dict:
    """mqtt://[user[:password]@]host[:port] (mqtts:// for TLS) -> connection settings."""
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise CollectorError("broker must be a URL like mqtt://HOST:PORT or "
                             "mqtt://USER:PASSWORD@HOST:PORT (mqtts:// for TLS), got %r"
                             % redact(url))
    try:
        port = u.port or (8883 if u.scheme == "mqtts" else 1883)
    except ValueError:
        raise CollectorError("the broker port must be a number from 1 to 65535 in %r"
                             % redact(url)) from None
    return {"host": u.hostname, "port": port, "tls": u.scheme == "mqtts",
            "username": unquote(u.username) if u.username else None,
            "password": unquote(u.password) if u.password else None}


def _no_constant(name):
    raise ValueError("%s is not allowed in a record (JSON has no such number)" % name)


_decode = json.JSONDecoder(parse_constant=_no_constant).decode


_topics: dict = {}  # topic -> (device, kind): a fleet has a few topics per board


def parse(topic: str, payload: bytes, now: float):
    """One telemetry message -> ("row", (device, seq, ts, kind, record_text, now)) or
    ("reject", reason)."""
    where = _topics.get(topic)
    if where is None:
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != "microfab" or parts[2] != "tele" or not parts[1]:
            return "reject", "topic is not microfab/<device>/tele/<kind>"
        if len(_topics) > 100000:
            _topics.clear()
        where = _topics[topic] = (parts[1], "/".join(parts[3:]))
    device, kind = where
    try:
        text = payload.decode("utf-8")
        rec = _decode(text)
    except (UnicodeDecodeError, ValueError) as e:
        return "reject", "payload is not a JSON object: %s" % e
    if not isinstance(rec, dict):
        return "reject", "payload must be one JSON object, got %s" % type(rec).__name__
    seq = rec.get("seq")
    if type(seq) is not int or seq < 0:
        return "reject", "seq must be a whole number >= 0, got %r" % (seq,)
    ts = rec.get("ts", now)  # a record without a time is kept, at the time it arrived
    if type(ts) not in (int, float):
        return "reject", "ts must be epoch seconds (a number), got %r" % (ts,)
    k = rec.get("kind", kind)
    if k != kind:
        return "reject", "kind %r in the record but %r in the topic" % (k, kind)
    return "row", (device, seq, float(ts), kind, text, now)


# --- the collector ---

class Collector:
    """Collector(broker_url, db).start() ... stop(). db: a file path (SQLite), a
    postgresql:// URL, or None for the default file. on_stored(rows, commit_time) is called
    after each commit (benchmarks measure latency with it)."""

    def __init__(self, broker_url: str, db=None, group: str | None = None,
                 client_id: str | None = None, batch_size: int = 2000, batch_ms: float = 100,
                 session_expiry_s: int = 7 * 24 * 3600, on_stored=None,
                 fill_gaps_s: float | None = 30.0, keystore=None):
        self.broker = parse_broker(broker_url)
        self.broker_shown = "%s:%d" % (self.broker["host"], self.broker["port"])
        self.db = str(db) if db is not None else str(default_db_path())
        # A group splits the fleet between its collectors (an MQTT 5 shared subscription). Only
        # when asked: Mosquitto 2.0 does not restore a session's shared subscriptions after a
        # restart, so records boards publish before the collectors subscribe again are lost to
        # them, while a plain subscription of a persistent session is kept and queued for.
        if group is not None and (any(c in group for c in "/+#") or not group):
            raise CollectorError("group must be a name without / + #, got %r" % group)
        self.group, self.share = group, group is not None
        where = redact(self.db) if is_postgres(self.db) else os.path.abspath(self.db)
        self.client_id = client_id or "microfab-collector-%s-%s" % (
            socket.gethostname(), hashlib.sha1(((group or "") + where).encode()).hexdigest()[:8])
        self.batch_size, self.batch_s = batch_size, batch_ms / 1000
        self.session_expiry_s, self.on_stored = session_expiry_s, on_stored
        self.store = open_store(self.db)  # made here, so a bad database fails at once
        self._reader = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._gen = 0  # connection generation: acks only go back on the connection they came on
        self._ack_lock = threading.Lock()
        self._done = threading.Condition()
        self._received = self._processed = 0
        self._stopping = self._give_up = False
        self.stats = {"received": 0, "stored": 0, "duplicates": 0, "rejected": 0, "batches": 0,
                      "connected": False, "connects": 0, "error": None, "resend_asked": 0,
                      "gap_error": "", "conflict": ""}
        self.client = self._make_client()
        # Gaps in a device's seqs still open after fill_gaps_s: asked for again (gapfill.py).
        self.gaps = None
        if fill_gaps_s is not None:
            from .gapfill import GapFiller

            self.gaps = GapFiller(lambda: self.store,
                                  lambda t, p: self.client.publish(t, p, qos=1), keystore,
                                  fill_gaps_s)
        self._writer = threading.Thread(target=self._write_loop, name="collector-writer",
                                        daemon=True)

    def topic(self) -> str:
        t = "microfab/+/tele/#"
        return "$share/%s/%s" % (self.group, t) if self.share else t

    def _make_client(self):
        c = FastClient(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                       protocol=mqtt.MQTTv5, manual_ack=True)
        if self.broker["username"]:
            c.username_pw_set(self.broker["username"], self.broker["password"])
        if self.broker["tls"]:
            c.tls_set()
        c.reconnect_delay_set(0.2, 30)
        c.on_connect, c.on_disconnect = self._on_connect, self._on_disconnect
        c.on_pre_connect = self._new_connection
        c.on_message = self._on_message
        c.on_publish_fast = self._on_publish
        return c

    def start(self) -> "Collector":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        # Let the broker send many unacked messages: we ack a whole batch after its commit.
        props.ReceiveMaximum = 65535
        self.client.connect_async(self.broker["host"], self.broker["port"], keepalive=30,
                                  clean_start=False, properties=props)
        self._writer.start()
        self.client.loop_start()
        return self

    # paho's network thread

    def _new_connection(self, client, userdata):
        with self._ack_lock:
            self._gen += 1

    def _on_connect(self, client, userdata, flags, reason, props):
        if reason.is_failure:
            self.stats["error"] = "broker refused the connection: %s" % reason
            return
        self.stats.update(connected=True, error=None)
        self.stats["connects"] += 1
        client.subscribe([(self.topic(), 1), ("microfab/+/info", 1), ("microfab/+/status", 1)])

    def _on_disconnect(self, client, userdata, flags, reason, props):
        self._new_connection(client, userdata)
        self.stats["connected"] = False

    def _on_publish(self, topic: bytes, payload: bytes, mid: int, qos: int):
        if self._stopping:
            return  # not acked: the broker hands it over again next time
        self._received += 1
        self._q.put((self._gen, mid, qos, topic, payload, time.time()))

    def _on_message(self, client, userdata, msg):  # QoS 2 or anything the fast path leaves
        self._on_publish(msg.topic.encode(), msg.payload, msg.mid, msg.qos)

    # the writer thread

    def _take(self) -> list:
        try:
            batch = [self._q.get(timeout=0.1)]
        except queue.Empty:
            return []
        end = time.monotonic() + self.batch_s
        get = self._q.get_nowait
        while len(batch) < self.batch_size:
            try:
                batch.append(get())
                continue
            except queue.Empty:
                pass
            left = end - time.monotonic()
            if left <= 0:
                break
            try:  # the stream paused (or the broker waits for our acks): commit what we have
                batch.append(self._q.get(timeout=min(left, 0.002)))
            except queue.Empty:
                break
        return batch

    def _write_loop(self):
        while True:
            batch = self._take()
            if self.gaps is not None:
                self.gaps.check()
            if not batch:
                if self._stopping and self._q.empty():
                    return
                continue
            rows, devices, rejects = [], [], []
            for _gen, _mid, _qos, topic, payload, now in batch:
                topic = topic.decode("utf-8", "replace")
                # microfab/<device>/status (or info): the board itself; its records come on
                # microfab/<device>/tele/<kind>, tele/status among them.
                if topic.count("/") == 2 and topic.endswith(("/info", "/status")):
                    devices.append(self._device_row(topic, payload, now))
                    continue
                what, item = parse(topic, payload, now)
                if what == "row":
                    rows.append(item)
                else:
                    text = payload.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
                    rejects.append((now, topic, text[:10000], item))
            stored = self._commit(rows, devices, rejects)
            if stored is None:
                return  # stop() gave up waiting for the database: nothing of it is acked
            if stored < len(rows):
                self._conflicts(rows)
            with self._ack_lock:
                gen = self._gen
                self.client.ack_many([m[1] for m in batch if m[2] and m[0] == gen])
            s = self.stats
            s["stored"] += stored
            s["duplicates"] += len(rows) - stored
            s["rejected"] += len(rejects)
            s["batches"] += 1
            s["received"] = self._received
            if self.on_stored:
                self.on_stored(rows, time.time())
            if self.gaps is not None and rows:
                self.gaps.saw(rows)
                s["resend_asked"], s["gap_error"] = self.gaps.asked, self.gaps.error
            with self._done:
                self._processed += len(batch)
                self._done.notify_all()

    def _conflicts(self, rows):
        """Rows that were already held: a replay is the same record; one made at another time
        means the board counts its seqs anew (an erased flash). Those go to `rejected` with the
        reason, so that they are kept and said, not silently dropped as duplicates."""
        out, span = [], {}
        for r in rows:  # one query per device, not per row: a resend repeats thousands
            lo, hi = span.get(r[0], (r[1], r[1]))
            span[r[0]] = (min(lo, r[1]), max(hi, r[1]))
        held = {}
        for device, (lo, hi) in span.items():
            for seq, ts in self.store.query("SELECT seq, ts FROM telemetry WHERE device = %s AND "
                                            "seq >= %s AND seq <= %s", (device, lo, hi)):
                held[(device, seq)] = ts
        for device, seq, ts, kind, text, now in rows:
            was = held.get((device, seq))
            # A record sent again after the board's clock was set carries the corrected time.
            if was is not None and was != ts and min(was, ts) >= SANE_TS:
                out.append((now, "microfab/%s/tele/%s" % (device, kind), text,
                            "%s sent seq %d again, made at another time (%s, held: %s): it counts "
                            "its seqs anew (an erased flash?); give it a new device id with "
                            "`microfab provision`, or delete its old rows" % (
                                device, seq, ts, was)))
        if out:
            self._commit([], [], out)
            self.stats["rejected"] += len(out)
            self.stats["conflict"] = out[-1][3]

    def _commit(self, rows, devices, rejects) -> int | None:
        delay = 0.2
        while not self._give_up:
            try:
                stored = self.store.write(rows, devices, rejects)
                if delay > 0.2:
                    self.stats["error"] = None
                return stored
            except (sqlite3.Error, TelemetryError, OSError) as e:
                error = e
            except Exception as e:  # psycopg's errors; the server may come back
                if type(e).__module__.split(".")[0] != "psycopg":
                    raise
                error = e
            # Nothing is acked until this works; keep the batch and try again.
            self.stats["error"] = "cannot write to %s: %s (retrying)" % (
                self.store.name, str(error).strip().splitlines()[0] if str(error) else error)
            time.sleep(delay)
            delay = min(delay * 2, 10)
            if is_postgres(self.db):
                try:
                    self.store.close()
                    self.store = open_store(self.db)
                except TelemetryError:
                    continue
        return None

    @staticmethod
    def _device_row(topic: str, payload: bytes, now: float):
        """The retained info or status of a board -> a row of `devices`; the machine kind is
        taken from either (the status says it after each connect, the last will does not)."""
        device, what = topic.split("/")[1], topic.rsplit("/", 1)[1]
        text = payload.decode("utf-8", "backslashreplace").replace("\x00", "")
        try:
            machine = json.loads(text).get("machine")
        except (ValueError, AttributeError):
            machine = None
        cols, vals = (what,), (text,)
        if isinstance(machine, str) and machine:
            cols, vals = cols + ("machine",), vals + (machine,)
        return device, cols, vals, now

    # control and queries

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything received so far is committed (and acked)."""
        target = self._received
        with self._done:
            return self._done.wait_for(lambda: self._processed >= target, timeout)

    def stop(self, timeout: float = 30.0):
        """Commit and ack what has arrived, then leave; the broker keeps our session."""
        self._stopping = True
        if self._writer.is_alive():
            self._writer.join(timeout)
            self._give_up = True
        self.client.disconnect()
        self.client.loop_stop()
        self.stats["connected"] = False
        if not self._writer.is_alive():  # else it is stuck in the database: leave it be
            self.store.close()

    def _reads(self):
        if self._reader is None:
            self._reader = open_store(self.db, create=False)
        return self._reader

    def count(self, device: str | None = None) -> int:
        if device is None:
            return self._reads().query("SELECT count(*) FROM telemetry")[0][0]
        return self._reads().query("SELECT count(*) FROM telemetry WHERE device = %s",
                                   (device,))[0][0]

    def records(self, device: str) -> list:
        """[(seq, ts, kind, record dict)] of one device in seq order."""
        rows = self._reads().query("SELECT seq, ts, kind, record FROM telemetry WHERE device = %s "
                                   "ORDER BY seq", (device,))
        return [(s, t, k, r if isinstance(r, dict) else json.loads(r)) for s, t, k, r in rows]

    def close(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.close()


# --- the command ---

def cli(args) -> int:
    """`microfab collect`: args.broker, db, group, client_id, seconds (0: until
    Ctrl-C), batch_size, batch_ms. Prints a live line of figures; Ctrl-C commits, acks, leaves."""
    from rich.console import Console
    from rich.live import Live

    out = Console(highlight=False, soft_wrap=True, markup=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
    try:
        c = Collector(args.broker, args.db, group=args.group,
                      client_id=args.client_id, batch_size=getattr(args, "batch_size", 2000),
                      batch_ms=getattr(args, "batch_ms", 100),
                      session_expiry_s=getattr(args, "session_expiry", 7 * 24 * 3600),
                      fill_gaps_s=getattr(args, "fill_gaps", 30.0) or None)
    except CollectorError as e:
        err.print("microfab: %s" % e)
        return 1
    out.print("collecting %s from %s into %s (client id %s); Ctrl-C stops"
              % (c.topic(), c.broker_shown, c.store.name, c.client_id))
    c.start()
    t0 = last_t = time.monotonic()
    last_n, line = 0, ""
    try:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            while not args.seconds or time.monotonic() - t0 < args.seconds:
                time.sleep(1)
                s, now = c.stats, time.monotonic()
                rate = (s["received"] - last_n) / (now - last_t)
                last_n, last_t = s["received"], now
                line = ("%8.0f msg/s  stored %d  duplicates ignored %d  rejected %d  %s"
                        % (rate, s["stored"], s["duplicates"], s["rejected"],
                           s["error"] or ("connected" if s["connected"] else "connecting...")))
                if out.is_terminal:
                    live.update(line, refresh=True)
                elif int(now - t0) % 10 == 0:
                    print(line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
        c.close()
    s = c.stats
    out.print("stopped: %d messages, %d stored, %d duplicates ignored, %d rejected (see table "
              "'rejected')" % (s["received"], s["stored"], s["duplicates"], s["rejected"]),
              highlight=False)
    if s["resend_asked"]:
        out.print("asked boards %d times to send again records that never arrived"
                  % s["resend_asked"])
    for problem in (s["gap_error"], s["conflict"]):
        if problem:
            err.print("microfab: %s" % problem)
    return 0


def add_arguments(p):
    p.add_argument("--broker", required=True, help="mqtt://[USER:PASSWORD@]HOST[:PORT] "
                   "(mqtts:// for TLS); the password is never printed")
    p.add_argument("--db", help="SQLite file or postgresql://... URL (default: "
                   "$XDG_DATA_HOME/microfab/telemetry.db, ~/.local/share/microfab/telemetry.db)")
    p.add_argument("--group", help="split the fleet between the collectors given the same group "
                   "(an MQTT 5 shared subscription; default: none, this collector takes every "
                   "record). Mosquitto 2.0 forgets shared subscriptions when it restarts: "
                   "records published before the collectors are back are lost to them")
    p.add_argument("--client-id", help="MQTT client id; keep it fixed so that the broker keeps "
                   "what arrives while this collector is away (default: from host, group, db)")
    p.add_argument("--session-expiry", type=int, default=7 * 24 * 3600, metavar="SECONDS",
                   help="how long the broker keeps messages for this collector while it is "
                   "away (default: a week; 0 to retire it: it ends its session when it stops)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    p.add_argument("--fill-gaps", type=float, default=30.0, metavar="SECONDS",
                   help="ask a board to send again the records that have not arrived this long "
                   "after those around them, when this computer holds its key (from `microfab "
                   "provision`); 0: never (default: 30)")
    p.add_argument("--batch-size", type=int, default=2000, help="commit every N messages")
    p.add_argument("--batch-ms", type=float, default=100, help="... or every T ms")


DESCRIPTION = ("Collect the fleet's telemetry from an MQTT broker into SQLite or "
               "PostgreSQL, each record once.")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="microfab collect", description=DESCRIPTION)
    add_arguments(p)
    return cli(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
