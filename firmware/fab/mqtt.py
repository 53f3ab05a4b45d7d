# A small MQTT 3.1.1 client on asyncio streams: CONNECT with a last will, keepalive pings,
# SUBSCRIBE, PUBLISH at QoS 0 and 1 with PUBACK tracking. After Peter Hinch's mqtt_as, in two
# halves: Conn is the protocol on one good connection; Client keeps a connection, and its run()
# is the one place that reconnects (with exponential backoff and jitter). Every network wait has
# a timeout, and nothing here blocks the event loop, so control tasks keep their period whatever
# the Wi-Fi or the broker do. Packet layouts: MQTT 3.1.1 (OASIS, 2014) section 3.
import os
import struct
import time

import asyncio
from micropython import const

from fab import wifi

_IO_MS = const(5000)  # connect, CONNACK, SUBACK, a write draining, a PINGRESP
_ACK_MS = const(10000)  # a PUBACK later than this: the connection is taken for dead
_WIFI_MS = const(20000)  # association + DHCP; mqtt_as allows about the same
_TICK_MS = const(250)  # how often the keeper looks at the connection
_MIN_BACKOFF_MS = const(1000)
_MAX_BACKOFF_MS = const(60000)
_STABLE_MS = const(60000)  # a connection that lasted this long resets the backoff
MAX_PACKET = const(1200)  # an incoming packet above this is skipped unread; a 1 KB command fits
_CONNACK = {1: "the broker refused protocol 3.1.1", 2: "the broker refused the client id",
            3: "the broker is unavailable",
            4: "the broker refused the user name or password (not shown)",
            5: "the broker says this client is not authorized"}


class MQTTError(Exception):
    pass


def _text(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def _packet(head, body):
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
    body = _text(client_id)
    if will:
        topic, msg, retain = will
        flags |= 0x04 | 0x08 | (0x20 if retain else 0)  # will at QoS 1
        body += _text(topic) + _text(msg)
    if user is not None:
        flags |= 0x80
        body += _text(user)
        if password is not None:
            flags |= 0x40
            body += _text(password)
    return _packet(0x10, b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", keepalive_s)
                   + body)


def publish_packet(topic, payload, qos=0, retain=False, dup=False, pid=0):
    head = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = _text(topic) + (struct.pack("!H", pid) if qos else b"")
    return _packet(head, body + (payload.encode() if isinstance(payload, str) else payload))


class Conn:
    """The protocol on one good connection. Writes are whole packets under a lock, each drained
    within _IO_MS; reads are packet by packet. Any failure marks the connection dead."""

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
                await asyncio.wait_for_ms(self.w.drain(), _IO_MS)
        except asyncio.TimeoutError:
            e = MQTTError("a write did not drain within %d ms" % _IO_MS)
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
            got: tuple = await asyncio.wait_for_ms(self.packet(), _IO_MS)
        except asyncio.TimeoutError:
            raise MQTTError("no %s from the broker within %d ms" % (what, _IO_MS))
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


class Client:
    """Keeps one connection to the broker: Wi-Fi, TCP, CONNECT, subscriptions, pings. Hooks:
    on_up() (a coroutine, after every connect), on_message(topic, payload) (a coroutine;
    payload None for one above MAX_PACKET), on_ack(pid), on_down()."""

    def __init__(self, host, port, client_id, user=None, password=None, keepalive_s=30,
                 ssid=None, wifi_password=None):
        self.host, self.port = host, port
        self.client_id = client_id
        self._login = (user, password)
        self._wifi = (ssid, wifi_password)
        self.keep_ms = keepalive_s * 1000
        self.will = None  # (topic, payload, retain)
        self.subs = []  # (topic, qos), subscribed again on every connect
        self.on_up = self.on_message = self.on_ack = self.on_down = None
        self.conn = None
        self.inflight = {}  # pid -> ticks_ms sent: QoS 1 publishes waiting for their PUBACK
        self._pid = 0
        self._ip = ""  # the broker's address, looked up once
        self.attempts = self.connects = self.drops = self.wifi_joins = 0
        self.error = ""  # the last reason the connection failed or dropped (never a secret)

    def up(self):
        return self.conn is not None

    def next_pid(self):
        """A packet id not in flight (a caller may book it before publish(), see uplink)."""
        while True:
            self._pid = self._pid % 65535 + 1  # 1..65535: 0 is not a packet id
            if self._pid not in self.inflight:
                return self._pid

    async def publish(self, topic, payload, qos=0, retain=False, dup=False, pid=0):
        """The packet id (0 at QoS 0) once written; MQTTError/OSError when there is no
        connection or the write failed (the keeper then reconnects)."""
        c = self.conn
        if c is None:
            raise MQTTError("not connected")
        if qos:
            pid = pid or self.next_pid()
            self.inflight[pid] = time.ticks_ms()
        else:
            pid = 0
        await c.send(publish_packet(topic, payload, qos, retain, dup, pid))
        return pid

    # --- keeping the connection ---

    async def run(self):
        backoff = _MIN_BACKOFF_MS
        while True:
            t0 = time.ticks_ms()
            try:
                await self._join()
                if not self._ip:
                    self._ip = wifi.resolve(self.host, self.port)  # blocks, once: see wifi.resolve
                c = await self._open()
            except Exception as e:  # OSError, MQTTError, TimeoutError, EOFError
                self._note(e)
                await asyncio.sleep_ms(self._jitter(backoff))
                backoff = min(backoff * 2, _MAX_BACKOFF_MS)
                continue
            self.connects += 1
            try:
                await self._serve(c)
            except Exception as e:
                self._note(e)
            finally:
                self.conn = None
                self.inflight = {}
                c.close(self._bye())
                self.drops += 1
                if self.on_down:
                    self.on_down()
            if not wifi.wifi_up() or time.ticks_diff(time.ticks_ms(), t0) >= _STABLE_MS:
                # The radio lost the access point (not the broker's doing), or the connection
                # had held: come back soon. A broker that drops us at once gets the backoff.
                backoff = _MIN_BACKOFF_MS
            await asyncio.sleep_ms(self._jitter(backoff))
            backoff = min(backoff * 2, _MAX_BACKOFF_MS)

    def _jitter(self, ms):
        # Between half and all of the backoff, so that a fleet that lost its broker together
        # does not come back in one wave.
        r = os.urandom(2)
        return ms // 2 + (r[0] << 8 | r[1]) * (ms // 2) // 65535

    def _note(self, e):
        self.error = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__

    async def _join(self):
        if wifi.wifi_up():
            return
        # Not joined (or the link was lost): ask again; a Pico W does not rejoin by itself.
        ssid, pw = self._wifi
        wifi.wifi_connect(ssid, pw)
        t0 = time.ticks_ms()
        while not wifi.wifi_up():
            waited = time.ticks_diff(time.ticks_ms(), t0)
            # A second's grace: right after connect() some ports still show the last failure.
            if waited > _WIFI_MS or (waited > 1000 and wifi.wifi_failed()):
                raise OSError("no Wi-Fi from '%s' (%s)" % (ssid, wifi.wifi_status()))
            await asyncio.sleep_ms(_TICK_MS)
        self.wifi_joins += 1

    async def _open(self):
        self.attempts += 1
        try:
            rw: tuple = await asyncio.wait_for_ms(asyncio.open_connection(self._ip, self.port),
                                                  _IO_MS)
        except asyncio.TimeoutError:
            raise MQTTError("no TCP connection to the broker within %d ms" % _IO_MS)
        c = Conn(rw[0], rw[1])
        try:
            user, pw = self._login
            await c.send(connect_packet(self.client_id, self.keep_ms // 1000, user, pw,
                                        self.will))
            body = await c.expect(2, "CONNACK")
            if len(body) != 2 or body[1]:
                code = body[1] if len(body) == 2 else -1
                raise MQTTError(_CONNACK.get(code, "CONNACK refused, code %d" % code))
            for topic, qos in self.subs:
                pid = self.next_pid()
                await c.send(_packet(0x82, struct.pack("!H", pid) + _text(topic) + bytes([qos])))
                body = await c.expect(9, "SUBACK")
                if len(body) < 3 or body[2] == 0x80:
                    raise MQTTError("the broker refused the subscription to %s" % topic)
        except BaseException:
            c.close(self._bye())
            raise
        return c

    def _bye(self):
        out = b"\xe0\x00"  # DISCONNECT: the broker drops the will
        if self.will:
            topic, msg, retain = self.will
            out = publish_packet(topic, msg, 0, retain) + out
        return out

    async def _serve(self, c):
        # The reader runs as its own task; this loop is the keeper: Wi-Fi, pings, PUBACK ages.
        reader = asyncio.create_task(self._read(c))
        self.conn = c
        try:
            if self.on_up:
                await self.on_up()
            while c.error is None:
                await asyncio.sleep_ms(_TICK_MS)
                if not wifi.wifi_up():
                    c.fail(OSError("Wi-Fi lost"))
                    break
                now = time.ticks_ms()
                if c.ping_at is not None and time.ticks_diff(now, c.ping_at) > _IO_MS:
                    c.fail(MQTTError("no PINGRESP within %d ms" % _IO_MS))
                for pid in self.inflight:
                    if time.ticks_diff(now, self.inflight[pid]) > _ACK_MS:
                        c.fail(MQTTError("no PUBACK within %d ms" % _ACK_MS))
                        break
                if c.ping_at is None and time.ticks_diff(now, c.last_tx) >= self.keep_ms // 2:
                    c.ping_at = now
                    await c.send(b"\xc0\x00")  # PINGREQ
            raise c.error or MQTTError("the connection was lost")
        finally:
            reader.cancel()

    async def _read(self, c):
        try:
            while True:
                b0, body, skipped = await c.packet()
                kind = b0 >> 4
                if kind == 3:
                    await self._incoming(c, b0, body, skipped)
                elif kind == 4 and len(body) == 2:  # PUBACK
                    pid = body[0] << 8 | body[1]
                    if self.inflight.pop(pid, None) is not None and self.on_ack:
                        self.on_ack(pid)
                elif kind == 13:  # PINGRESP
                    c.ping_at = None
                else:
                    raise MQTTError("unexpected packet type %d from the broker" % kind)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # EOFError when the broker went away, OSError, MQTTError
            c.fail(e if str(e) else MQTTError("the broker closed the connection"))

    async def _incoming(self, c, b0, body, skipped):
        tl = body[0] << 8 | body[1]
        i = 2 + tl
        qos = (b0 >> 1) & 3
        pid = 0
        if qos:
            pid = body[i] << 8 | body[i + 1]
            i += 2
            await c.send(b"\x40\x02" + struct.pack("!H", pid))  # PUBACK, before the work
        try:
            topic = body[2:2 + tl].decode()
        except UnicodeError:
            return
        if self.on_message:
            await self.on_message(topic, None if skipped else body[i:])
