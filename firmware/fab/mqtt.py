# A small MQTT 3.1.1 client on asyncio streams: CONNECT with a last will, keepalive pings,
# SUBSCRIBE, PUBLISH at QoS 0 and 1 with PUBACK tracking. After Peter Hinch's mqtt_as, in two
# halves: fab.mqtt_wire's Conn is the protocol on one good connection; Client (here) keeps a
# connection, and its run() is the one place that reconnects (with exponential backoff and
# jitter). Every network wait has a timeout, and nothing here blocks the event loop, so control
# tasks keep their period whatever the Wi-Fi or the broker do.
import os
import struct
import time

import asyncio
from micropython import const

from fab import wifi
from fab.mqtt_wire import IO_MS, Conn, MQTTError, connect_packet, packet, publish_packet, text

_ACK_MS = const(10000)  # a PUBACK later than this: the connection is taken for dead
_WIFI_MS = const(20000)  # association + DHCP; mqtt_as allows about the same
_TICK_MS = const(250)  # how often the keeper looks at the connection
_MIN_BACKOFF_MS = const(1000)
_MAX_BACKOFF_MS = const(60000)
_STABLE_MS = const(60000)  # a connection that lasted this long resets the backoff
_CONNACK = {1: "the broker refused protocol 3.1.1", 2: "the broker refused the client id",
            3: "the broker is unavailable",
            4: "the broker refused the user name or password (not shown)",
            5: "the broker says this client is not authorized"}


class Client:
    """Keeps one connection to the broker: Wi-Fi, TCP, CONNECT, subscriptions, pings. Hooks:
    on_up() (a coroutine, after every connect), on_message(topic, payload) (a coroutine;
    payload None for one above mqtt_wire.MAX_PACKET), on_ack(pid), on_down()."""

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
                                                  IO_MS)
        except asyncio.TimeoutError:
            raise MQTTError("no TCP connection to the broker within %d ms" % IO_MS)
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
                await c.send(packet(0x82, struct.pack("!H", pid) + text(topic) + bytes([qos])))
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
                if c.ping_at is not None and time.ticks_diff(now, c.ping_at) > IO_MS:
                    c.fail(MQTTError("no PINGRESP within %d ms" % IO_MS))
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
