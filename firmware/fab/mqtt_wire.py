# The MQTT 3.1.1 wire (OASIS, 2014, section 3): packets, and the protocol on one good
# connection (Conn). fab.mqtt's Client keeps a connection and reconnects; this is what it says.
import struct
import time

import asyncio
from micropython import const

IO_MS = const(5000)  # connect, CONNACK, SUBACK, a write draining, a PINGRESP
MAX_PACKET = const(1200)  # an incoming packet above this is skipped unread; a 1 KB command fits


class MQTTError(Exception):
    pass


def text(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(head, body):
    # Fixed header: type/flags, then the remaining length in 7-bit groups (3.1.1 section 2.2.3).
    n = len(body)
    out = bytearray([head])
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            break
    return bytes(out) + body


def connect_packet(client_id, keepalive_s, user=None, password=None, will=None):
    """CONNECT with clean session: a board that was away gets no stale commands queued for it."""
    flags = 0x02
    body = text(client_id)
    if will:
        topic, msg, retain = will
        flags |= 0x04 | 0x08 | (0x20 if retain else 0)  # will at QoS 1
        body += text(topic) + text(msg)
    if user is not None:
        flags |= 0x80
        body += text(user)
        if password is not None:
            flags |= 0x40
            body += text(password)
    return packet(0x10, b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", keepalive_s)
                   + body)


def publish_packet(topic, payload, qos=0, retain=False, dup=False, pid=0):
    head = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = text(topic) + (struct.pack("!H", pid) if qos else b"")
    return packet(head, body + (payload.encode() if isinstance(payload, str) else payload))


class Conn:
    """The protocol on one good connection. Writes are whole packets under a lock, each drained
    within IO_MS; reads are packet by packet. Any failure marks the connection dead."""

    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.lock = asyncio.Lock()
        self.last_rx = self.last_tx = time.ticks_ms()
        self.ping_at = None  # ticks of the PINGREQ not answered yet
        self.error = None  # why it died

    async def send(self, pkt):
        try:
            async with self.lock:
                self.w.write(pkt)
                await asyncio.wait_for_ms(self.w.drain(), IO_MS)
        except asyncio.TimeoutError:
            e = MQTTError("a write did not drain within %d ms" % IO_MS)
            self.fail(e)
            raise e
        except Exception as e:
            self.fail(e)
            raise
        self.last_tx = time.ticks_ms()

    async def packet(self):
        """(first byte, body, skipped): a PUBLISH above MAX_PACKET is read past in 256-byte
        pieces and comes back with its topic and packet id only, skipped=True."""
        r = self.r
        b0 = (await r.readexactly(1))[0]
        n = shift = 0
        while True:
            b = (await r.readexactly(1))[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length from the broker")
        self.last_rx = time.ticks_ms()
        if n <= MAX_PACKET:
            return b0, (await r.readexactly(n)) if n else b"", False
        if b0 & 0xF0 != 0x30:
            raise MQTTError("a %d-byte packet of type %d from the broker" % (n, b0 >> 4))
        head = await r.readexactly(2)
        keep = 2 + (head[0] << 8 | head[1]) + (2 if b0 & 0x06 else 0)
        if keep > MAX_PACKET:
            raise MQTTError("a topic of more than %d bytes from the broker" % MAX_PACKET)
        body = head + await r.readexactly(keep - 2)
        left = n - keep
        while left:
            left -= len(await r.readexactly(min(left, 256)))
            self.last_rx = time.ticks_ms()
        return b0, body, True

    async def expect(self, kind, what):
        try:
            got: tuple = await asyncio.wait_for_ms(self.packet(), IO_MS)
        except asyncio.TimeoutError:
            raise MQTTError("no %s from the broker within %d ms" % (what, IO_MS))
        if got[0] >> 4 != kind:
            raise MQTTError("expected %s from the broker, got packet type %d" % (what, got[0] >> 4))
        return got[1]

    def fail(self, e):
        if self.error is None:
            self.error = e

    def close(self, bye=b""):
        # bye: written without waiting (the broker reads it if the line still works), e.g. the
        # last will published by hand and a DISCONNECT, so that a broker that only now gets to
        # this connection does not fire the will after the board is back on a new one.
        try:
            if bye:
                self.w.write(bye)
            self.w.close()
        except Exception:
            pass
