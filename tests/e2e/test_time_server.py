"""The board's clock set over the network (fab/clock.py): a board that powers up with its clock at
2021-01-01 (an RP2040 after every power-up) and no Wi-Fi for ten minutes still delivers every
record with the time it was made, once a time server answers; a server that never answers costs
a clear error and nothing else."""
import json
import socket
import struct
import threading
import time

from microfab_sim.board import SimBoard
from microfab_sim.net import Watcher, until, write_net

RP2040_POWER_ON = 1609459200  # 2021-01-01T00:00:00Z
NOW = 1780000000  # the time server's time at its start (2026-05-28)
SANE = 1704067200


class TimeServer:
    """A minimal SNTP server on loopback: NOW plus the real seconds since it started."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.t0 = time.monotonic()
        self.answers = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                q, peer = self.s.recvfrom(512)
            except socket.timeout:
                continue
            if len(q) < 48 or q[0] & 7 != 3:
                continue
            t = NOW + time.monotonic() - self.t0 + 2208988800
            r = bytearray(48)
            r[0], r[1] = 0x24, 2  # version 4, mode 4 (server), stratum 2
            struct.pack_into(">II", r, 40, int(t), int((t % 1) * 2 ** 32))
            self.s.sendto(r, peer)
            self.answers += 1

    def close(self):
        self.stop = True
        self.thread.join()
        self.s.close()


def clock_board(url, ntp):
    b = SimBoard("pico_w", {"machine": "axis", "report_s": 10}, boot=False, seed=1)
    b.world.modules["vclock"].epoch = RP2040_POWER_ON
    write_net(b.root, url, "c1", extra={"ntp": ntp})
    return b


def test_records_made_before_the_clock_was_set_arrive_with_the_time_they_were_made(mosquitto):
    srv = TimeServer()
    w = Watcher(mosquitto.port, ("microfab/c1/tele/#",), client_id="clock-watcher")
    b = clock_board(mosquitto.url, "127.0.0.1:%d" % srv.port)
    try:
        ap = b.world.modules["vnetwork"].ap
        ap.drop()  # no Wi-Fi at power-up
        b._boot()
        b.advance(600)
        assert b.send("status")["journal"]["newest"] >= 60  # made, stamped 2021, kept
        assert b.send("net")["clock_synced"] == 0
        ap.restore()
        until(b, lambda: b.send("net")["clock_synced"] == 1, virtual_s=60)
        n = b.send("net")
        assert abs(n["time"] - (NOW + time.monotonic() - srv.t0)) < 5  # the server's time
        assert n["clock_fix_s"] > NOW - RP2040_POWER_ON - 3600 and n["clock_error"] == ""
        newest = b.send("status")["journal"]["newest"]
        until(b, lambda: len(w.take("microfab/c1/tele/")) >= newest, virtual_s=120)
        recs = sorted((json.loads(m[1]) for m in w.take("microfab/c1/tele/")),
                      key=lambda r: r["seq"])
        ts = [r["ts"] for r in recs]
        assert all(t > SANE for t in ts), ts[:3]  # none from 2021
        assert ts == sorted(ts)  # in the order they were made
        # The first record was made ten minutes and more before the sync, and says so.
        assert NOW - 660 < ts[0] < NOW - 590 and ts[-1] - ts[0] >= 600
    finally:
        w.close()
        b.world.modules["vasyncio"]._io.reset()
        b.close()
        srv.close()


def test_a_time_server_that_never_answers_is_an_error_and_nothing_more(mosquitto):
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))  # takes the datagrams, answers nothing
    b = clock_board(mosquitto.url, "127.0.0.1:%d" % quiet.getsockname()[1])
    try:
        b._boot()
        until(b, lambda: b.send("net")["clock_error"] != "", virtual_s=30)
        n = b.send("net")
        assert n["clock_error"] == "ntp: no answer from the time server within 3 s"
        assert n["clock_synced"] == 0 and n["connected"]
        until(b, lambda: b.send("net")["acked"] >= 3)  # records flow, stamped by the board
        assert b.send("status")["state"] == "ready"
    finally:
        b.world.modules["vasyncio"]._io.reset()
        b.close()
        quiet.close()
