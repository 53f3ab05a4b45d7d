"""Collector ingest rate: messages/s from Mosquitto on loopback into SQLite, against a naive
collector (paho's usual client, one INSERT + COMMIT per message, SQLite's defaults), same run.

    python bench/collector_ingest.py [--messages 100000] [--publishers 4]

1. backlog: the broker holds N QoS 1 telemetry messages for each collector's persistent
   session (published as boards would, by several paho processes, while the collectors were
   away, as after an outage). Each collector then connects and drains it: the rate measured is
   the collector's alone, not the publishers' (target >= 20,000 messages/s and >= 20x).
2. live: the collector is connected while the publishers send; this rate is capped by the
   publishers (paho publishes QoS 1 at a few thousand messages/s per process).
The database files live in a temp folder on the same disk as /tmp; the collector commits with
synchronous=FULL (an fsync per batch), the naive one with SQLite's default (an fsync per
message), and a third figure shows the naive one with WAL and synchronous=NORMAL (no fsync).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sqlite3
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab.broker import Mosquitto
from microfab.collector import Collector

DEVICES_PER_PUBLISHER = 50


def record(seq: int, kind: str) -> bytes:
    rec = {"seq": seq, "ts": time.time(), "kind": kind}
    if kind == "energy":
        rec.update(harvested_wh=round(seq * 0.0123, 3), used_wh=round(seq * 0.0101, 3),
                   battery_soc=81.5, power_w=12.25)
    else:
        rec.update(units=seq // 3, unit="picks")
    return json.dumps(rec).encode()


def publish(port: int, index: int, count: int, done):
    """One publisher process: `count` QoS 1 messages over DEVICES_PER_PUBLISHER devices."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub-%d" % index,
                    protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for i in range(count):
        if len(infos) >= 20000:  # paho's message ids run out at 65535 unacked
            for info in infos:
                info.wait_for_publish()
            infos = []
        device, seq = i % DEVICES_PER_PUBLISHER, i // DEVICES_PER_PUBLISHER
        kind = "energy" if seq % 2 else "production"
        infos.append(c.publish("microfab/bench-%d-%d/tele/%s" % (index, device, kind),
                               record(seq, kind), qos=1))
    for info in infos:
        info.wait_for_publish()
    c.disconnect()
    c.loop_stop()
    done.put(count)


def publish_all(port: int, total: int, publishers: int) -> float:
    done = mp.Queue()
    share = total // publishers
    procs = [mp.Process(target=publish, args=(port, i, share, done)) for i in range(publishers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    sent = sum(done.get() for _ in procs)
    for p in procs:
        p.join()
    return sent / (time.perf_counter() - t0)


class Naive:
    """What one writes first: paho's client, auto-ack, INSERT + COMMIT per message."""

    def __init__(self, port: int, path: str, pragmas=()):
        self.db = sqlite3.connect(path, check_same_thread=False)
        for p in pragmas:
            self.db.execute(p)
        self.db.execute("CREATE TABLE IF NOT EXISTS telemetry (device TEXT, seq INTEGER, ts REAL, "
                        "kind TEXT, record TEXT, UNIQUE (device, seq))")
        self.db.commit()
        self.stored = 0
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id="naive-" + os.path.basename(path))
        self.c.on_message = self.on_message
        self.port = port

    def on_message(self, client, userdata, msg):
        rec = json.loads(msg.payload)
        self.db.execute("INSERT INTO telemetry VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (msg.topic.split("/")[1], rec["seq"], rec["ts"], rec["kind"],
                         msg.payload.decode()))
        self.db.commit()
        self.stored += 1

    def connect(self, subscribe: bool):
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.c.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        if subscribe:
            self.c.subscribe("microfab/+/tele/#", qos=1)
        self.c.loop_start()
        time.sleep(0.3)

    def leave(self):
        self.c.disconnect()
        self.c.loop_stop()


def drain_collector(url: str, path: str, total: int) -> tuple[float, dict]:
    got = threading.Event()
    stored = [0]

    def on_stored(rows, t):
        stored[0] += len(rows)
        if stored[0] >= total:
            got.set()

    c = Collector(url, path, client_id="bench-collector", on_stored=on_stored)
    cpu0, t0 = cpu_s(), time.perf_counter()
    c.start()
    got.wait(600)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    c.stop()
    n = c.count()
    c.close()
    return stored[0] / wall, {"stored": n, "batches": c.stats["batches"],
                              "per_cpu_s": stored[0] / cpu, "cpu": cpu / wall}


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drain_naive(port: int, path: str, seconds: float, pragmas=()) -> float:
    n = Naive(port, path, pragmas)
    t0 = time.perf_counter()
    n.connect(subscribe=False)
    time.sleep(seconds)
    rate = n.stored / (time.perf_counter() - t0)
    n.leave()
    return rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--baseline-seconds", type=float, default=10.0)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="microfab-bench-")
    try:
        with Mosquitto(options={"max_queued_messages": 0}) as broker:
            # The sessions exist (subscribed) before the backlog is published.
            first = Collector(broker.url, os.path.join(tmp, "c.db"), client_id="bench-collector")
            first.start()
            time.sleep(0.3)
            first.stop()
            naive = [("naive (defaults)", os.path.join(tmp, "naive.db"), ()),
                     ("naive (WAL, sync NORMAL)", os.path.join(tmp, "naive-wal.db"),
                      ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"))]
            for _name, path, pragmas in naive:
                n = Naive(broker.port, path, pragmas)
                n.connect(subscribe=True)
                n.leave()
            fill = publish_all(broker.port, a.messages, a.publishers)
            print("backlog: %d QoS 1 messages from %d paho publishers at %.0f messages/s"
                  % (a.messages, a.publishers, fill))
            rate, info = drain_collector(broker.url, os.path.join(tmp, "c.db"), a.messages)
            print("collector (batched, WAL, sync FULL):  %8.0f messages/s  (%d stored in %d "
                  "commits; %.0f%% of a core busy, %.0f messages per CPU second)"
                  % (rate, info["stored"], info["batches"], 100 * info["cpu"], info["per_cpu_s"]))
            rates = {}
            for name, path, pragmas in naive:
                rates[name] = drain_naive(broker.port, path, a.baseline_seconds, pragmas)
                print("%-37s %8.0f messages/s  (%.0f s)" % (name + ":", rates[name],
                                                            a.baseline_seconds))
            base = rates["naive (defaults)"]
            print("ratio collector / naive: %.0fx (target >= 20x); / naive with WAL: %.1fx"
                  % (rate / base, rate / rates["naive (WAL, sync NORMAL)"]))
            live_n = min(a.messages, 40000)
            got = threading.Event()
            stored = [0]

            def on_stored(rows, t):
                stored[0] += len(rows)
                if stored[0] >= live_n:
                    got.set()

            # A group of its own: Mosquitto keeps queueing a share for the members that are
            # away (bench-collector's session), which would halve what this one gets.
            live = Collector(broker.url, os.path.join(tmp, "live.db"), client_id="bench-live",
                             group="bench-live", on_stored=on_stored).start()
            time.sleep(0.3)
            t0 = time.perf_counter()
            publish_all(broker.port, live_n, a.publishers)
            got.wait(300)
            wall = time.perf_counter() - t0
            live.stop()
            print("live: %d messages published and stored in %.1f s: %.0f messages/s (capped by "
                  "the publishers)" % (stored[0], wall, stored[0] / wall))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
