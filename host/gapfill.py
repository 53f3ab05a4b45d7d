"""The collector asks boards for what it never got: a gap in a device's seqs that is still open
`wait_s` after the records around it arrived (the 8 a board has in flight may come out of order)
gets one signed `resend from=SEQ` (fab/uplink.py), when this computer holds the device's key
(`microfab provision` stored it). The board sends again from its journal, which keeps sent
records until it needs their room; the collector then stores them once, as any replay.

Runs in the collector's writer thread, on its database connection; publishes on its MQTT
client (paho's publish is thread-safe)."""
from __future__ import annotations

import json
import time

from .provision import KeyStore, ProvisionError
from .remote import signed


class GapFiller:
    def __init__(self, store, publish, keystore: KeyStore | None = None, wait_s: float = 30.0):
        # store(): the collector's store now (it opens a new one when PostgreSQL comes back)
        self.store, self.publish, self.wait_s = store, publish, wait_s
        self.keys = keystore or KeyStore()
        self.hi: dict = {}  # device -> the highest seq stored
        self.open: dict = {}  # (device, first missing) -> (last missing, when noticed)
        self.asked = 0  # resend requests sent
        self.error = ""  # why a gap could not be asked for (no key, a broken key store)
        self._ctr = 0
        self._checked = 0.0

    def saw(self, rows):
        """After a commit: the (device, seq, ...) rows it held."""
        now = time.monotonic()
        for row in sorted(rows, key=lambda r: (r[0], r[1])):
            device, seq = row[0], row[1]
            hi = self.hi.get(device)
            if hi is None:  # first seen since start: the database knows what came before
                hi = self.store().query("SELECT max(seq) FROM telemetry WHERE device = %s AND "
                                      "seq < %s", (device, seq))[0][0]
            if hi is not None and seq > hi + 1:
                self.open.setdefault((device, hi + 1), (seq - 1, now))
            if hi is None or seq > hi:
                self.hi[device] = seq

    def check(self):
        """Ask for the gaps that stayed open wait_s (at most once a second)."""
        now = time.monotonic()
        if now - self._checked < 1.0 or not self.open:
            return
        self._checked = now
        for (device, first), (last, seen) in list(self.open.items()):
            if now - seen < self.wait_s:
                continue
            del self.open[(device, first)]  # asked once: a board that lost them says so
            got = self.store().query("SELECT seq FROM telemetry WHERE device = %s AND seq >= %s "
                                   "AND seq <= %s ORDER BY seq", (device, first, last))
            have = {r[0] for r in got}
            missing = [s for s in range(first, last + 1) if s not in have]
            if missing:
                self._ask(device, missing[0])

    def _ask(self, device, first):
        try:
            key = self.keys.get(device)
        except ProvisionError as e:
            self.error = str(e)
            return
        if key is None:
            self.error = ("records %d and on of %s never arrived, and this computer has no key "
                          "to ask it for them (`microfab send resend from=%d --broker URL "
                          "--device %s` where it has)" % (first, device, first, device))
            return
        msg, self._ctr = signed(key, "resend", {"from": first}, self._ctr)
        self.publish("microfab/%s/cmd" % device, json.dumps(msg))
        self.asked += 1
