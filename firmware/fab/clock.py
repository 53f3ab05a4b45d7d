# The board's clock, set over the network (SNTP, RFC 4330), so that records carry the time they
# were made. An RP2040 starts at 2021-01-01 after every power-up and an ESP32 at 2000-01-01:
# without this a wind rig that lost power at night stamps the morning's records years back.
#
# One query per sync over a connected, non-blocking UDP socket under asyncio (wifi.udp): a server
# that does not answer costs a timeout, never a stalled control loop. The name lookup is lwIP's
# blocking getaddrinfo, as for the broker: once per boot (the address is kept).
import struct
import time

import asyncio
from micropython import const

from fab import wifi

SANE = const(1704067200)  # 2024-01-01: a clock before this was never set
_NTP_DELTA = const(2208988800)  # 1900-01-01 to 1970-01-01 in seconds
_TIMEOUT_MS = const(3000)
_RETRY_S = const(600)
_EVERY_S = const(86400)  # crystals drift seconds a day: once a day keeps records honest


async def query(addr):
    """The server's time (Unix seconds, float) from one SNTP exchange; OSError when it does not
    answer in time, ValueError when the answer is not a usable time."""
    s = await wifi.udp(addr[0], addr[1])
    try:
        q = bytearray(48)
        q[0] = 0x23  # LI 0, version 4, mode 3 (client)
        s.write(q)
        await s.drain()
        try:
            r = await asyncio.wait_for_ms(s.read(48), _TIMEOUT_MS)
        except asyncio.TimeoutError:
            raise OSError("no answer from the time server within %d s" % (_TIMEOUT_MS // 1000))
    finally:
        s.close()
    if len(r) < 48 or (r[0] & 7) != 4 or not 0 < r[1] < 16:
        raise ValueError("the time server's answer is not a server reply (mode %d, stratum %d)"
                         % (r[0] & 7 if r else -1, r[1] if len(r) > 1 else -1))
    sec, frac = struct.unpack_from(">II", r, 40)  # transmit timestamp
    return sec - _NTP_DELTA + frac / 4294967296


class Clock:
    """Keeps the board's clock set while the network is up; `fix` is how far the first sync of
    this boot moved it (what records stamped before it were off by)."""

    def __init__(self, server, first_seq):
        self.server = server  # (host, port): netcfg's ntp_server
        self.addr = None
        self.synced = 0  # syncs so far
        self.fix = 0  # seconds the first sync moved the clock
        self.first_seq = first_seq  # this boot's first record: older ones had another clock
        self.error = ""

    async def run(self, ready):
        """Sync once `ready()` (the network is up), then daily; retry every 10 min on failure."""
        while True:
            if ready():
                try:
                    if self.addr is None:
                        self.addr = (wifi.resolve(self.server[0], self.server[1]), self.server[1])
                    t = await query(self.addr)
                    was = time.time()
                    wifi.set_time(t)
                    if not self.synced:
                        self.fix = time.time() - was
                    self.synced += 1
                    self.error = ""
                    await asyncio.sleep(_EVERY_S)
                    continue
                except (OSError, ValueError) as e:
                    self.error = "ntp: %s" % e
            await asyncio.sleep(_RETRY_S if self.error else 1)

    def settled(self):
        """Whether records may go out: the clock is set, or cannot be (the server failed: they
        go with the board's own time rather than never), or never needed it."""
        return self.synced or self.error or time.time() >= SANE

    def stamp(self, seq, ts):
        """A record's time as sent: one of this boot stamped before the first sync gets the fix
        (one of an earlier boot keeps its time: nobody knows that clock's error)."""
        if ts < SANE and self.synced and seq >= self.first_seq:
            return ts + self.fix
        return ts

    def status(self):
        return {"clock_synced": self.synced, "clock_fix_s": self.fix, "clock_error": self.error,
                "time": time.time()}
