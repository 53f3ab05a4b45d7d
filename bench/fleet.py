"""A fleet into one broker and one collector: 200 boards reporting at 1 Hz, end-to-end latency
from a board's publish to the record committed in SQLite (p50/p95/p99), and whether every
record arrived exactly once.

    python bench/fleet.py [--boards 200] [--seconds 60] [--processes 4]

The boards are lightweight publishers (paho, QoS 1, one MQTT connection and session each,
records in the firmware's format: {"seq", "ts", "kind", ...}; every fifth one `production`, the
rest `energy`), spread over a few processes with their send times staggered over the second,
not the firmware's MQTT client in simulated boards: 200 simulated boards in real time would
measure the simulator, not the collector. Board clocks and the collector's are the same clock
here, so `commit time - ts` is the latency.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microfab.broker import Mosquitto
from microfab.collector import Collector


def boards(port: int, names: list[str], seconds: float, start_at: float, out):
    """One process: len(names) boards, each publishing once a second from start_at."""
    # 50 paho threads in one process: a short GIL switch interval, so that a publish goes out
    # at once rather than after another thread's 5 ms turn (a real board has the CPU to itself).
    sys.setswitchinterval(0.0005)
    clients = []
    for name in names:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        clients.append(c)
    # Each board sends at its own phase in the second, as boards booted at different times do.
    phase = {n: i / len(names) for i, n in enumerate(names)}
    seq = {n: 0 for n in names}
    sent = 0
    tick = 0
    while True:
        base = start_at + tick
        if base - start_at >= seconds:
            break
        for c, name in zip(clients, names):
            due = base + phase[name]
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            seq[name] += 1
            s = seq[name]
            if s % 5 == 0:
                rec = {"seq": s, "ts": time.time(), "kind": "production", "units": s // 5,
                       "unit": "picks"}
            else:
                rec = {"seq": s, "ts": time.time(), "kind": "energy", "harvested_wh": s * 0.01,
                       "used_wh": s * 0.008, "battery_soc": 77.0, "power_w": 4.5}
            c.publish("microfab/%s/tele/%s" % (name, rec["kind"]), json.dumps(rec), qos=1)
            sent += 1
        tick += 1
    time.sleep(1.0)
    for c in clients:
        c.disconnect()
        c.loop_stop()
    out.put(sent)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--processes", type=int, default=4)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="microfab-fleet-")
    lat, recv_lat = [], []
    lock = threading.Lock()

    def on_stored(rows, t):
        with lock:
            for r in rows:
                lat.append(t - r[2])
                recv_lat.append(r[5] - r[2])

    try:
        with Mosquitto() as broker:
            c = Collector(broker.url, os.path.join(tmp, "fleet.db"), on_stored=on_stored).start()
            time.sleep(0.5)
            names = ["board%03d" % i for i in range(a.boards)]
            out = mp.Queue()
            start_at = time.time() + 2.0 + a.boards * 0.005  # everyone connected by then
            procs = [mp.Process(target=boards, args=(broker.port, names[i::a.processes],
                                                     a.seconds, start_at, out))
                     for i in range(a.processes)]
            for p in procs:
                p.start()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            sent = sum(out.get() for _ in procs)
            for p in procs:
                p.join()
            c.flush()
            time.sleep(0.5)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            c.stop()
            stored = c.count()
            c.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ms = [x * 1000 for x in lat]
    print("%d boards at 1 Hz for %.0f s (lightweight paho publishers, QoS 1, %d processes)"
          % (a.boards, a.seconds, a.processes))
    print("sent %d, stored %d (%s), %.0f records/s" % (
        sent, stored, "every one, once" if stored == sent else "MISSING %d" % (sent - stored),
        stored / a.seconds))
    print("publish -> committed: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (pct(ms, 50), pct(ms, 95), pct(ms, 99), max(ms)))
    rl = [x * 1000 for x in recv_lat]
    print("publish -> at the collector: p50 %.1f ms, p99 %.1f ms" % (pct(rl, 50), pct(rl, 99)))
    print("collector process CPU: %.0f%% of one core" % (100 * cpu / a.seconds))


if __name__ == "__main__":
    main()
