"""Real TCP for simulated boards, a Wi-Fi link that can fail, and the host's end for tests.

`Net` is the hook that a board's World hands to its `asyncio` (vm/vasyncio.py): the firmware's
`asyncio.open_connection()` gets a non-blocking real socket, and the scheduler asks the hook which
waiting tasks may run before it moves the virtual clock. The vm/ files stay free of `socket` and
`select`, so they still run in the MicroPython VM, where there is no hook and no network.

Virtual time and a real broker: the clock jumps from deadline to deadline, and a broker answers
in real time. After the board wrote something, the scheduler blocks in select() before it lets
virtual time jump: up to `budget_s` of real time until something comes back, then `tail_s` at a
time while more keeps coming (the answers to a burst of writes), and the clock runs free again
once a wait finds nothing. A loopback broker answers in a fraction of a millisecond, so a round
trip costs the board no virtual time; a write that gets no answer (a QoS 0 publish, a PUBACK)
costs one `budget_s`. Incoming traffic (commands) is picked up by select() with no timeout
between steps.

The link (vm/vnetwork.py drives it): down means new connections fail with EHOSTUNREACH and open
ones either go silent (packets lost in the air, the default: only timeouts tell) or are reset
(cut=True: the next read or write fails at once).
"""
from __future__ import annotations

import errno
import json
import os
import select
import socket
import struct
import time
from pathlib import Path

OPEN, DEAD, CLOSED = "open", "dead", "closed"


class _Sock:
    __slots__ = ("s", "state", "hole", "rbuf", "eof", "peer")

    def __init__(self, s, peer):
        self.s = s
        self.state = "connecting"
        self.hole = False  # the link went down under it: nothing gets through any more
        self.rbuf = b""
        self.eof = False
        self.peer = peer


def _quickack(s):
    # ACK at once, not up to 40 ms later: a broker with Nagle's algorithm on (Mosquitto's
    # default) holds its next small packet (a PUBACK) until our ACK comes, which is an age in
    # virtual time. Linux drops out of quick-ACK mode by itself, hence after every read.
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except (AttributeError, OSError):
        pass  # not Linux


def _oserror(code):
    return OSError(code, errno.errorcode.get(code, str(code)))


class Net:
    def __init__(self, budget_s: float = 0.25, tail_s: float = 0.003):
        self.budget_s = budget_s
        self.tail_s = tail_s
        self.heard = False  # something came back since the last write
        self.socks: list[_Sock] = []
        self.waiters: dict = {}  # (sock, mode) -> task; mode 0 read, 1 write
        self.link_up = True
        self.awaiting = False  # written, and no select() since came back empty

    # --- what vasyncio calls ---

    def connect(self, host, port, udp=False):
        if not self.link_up:
            raise _oserror(errno.EHOSTUNREACH)
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        addr = socket.getaddrinfo(host, port, 0, kind)[0]
        s = socket.socket(addr[0], kind)
        s.setblocking(False)
        if not udp:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex(addr[4])
        if rc not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            s.close()
            raise _oserror(rc)
        h = _Sock(s, addr[4])
        if udp:
            h.state = OPEN  # a datagram socket is "connected" at once: only its peer is set
        self.socks.append(h)
        self.awaiting, self.heard = True, False  # a SYN is out: loopback answers at once
        return h

    def connected(self, h) -> bool:
        if h.state == OPEN:
            return True
        self._usable(h)
        err = h.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise _oserror(err)
        try:
            h.s.getpeername()
        except OSError:
            return False  # still connecting
        h.state = OPEN
        return True

    def recv(self, h, n):
        """bytes, b"" at the end of the stream, None when nothing has arrived yet."""
        self._usable(h)
        if h.hole:
            return None
        if not h.rbuf and not h.eof:
            try:
                data = h.s.recv(65536)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                h.state = DEAD
                raise _oserror(e.errno or errno.ECONNRESET)
            if data:
                h.rbuf = data
                self.heard = True
                _quickack(h.s)
            else:
                h.eof = True
        if h.eof and not h.rbuf:
            return b""
        if n is None or n < 0:
            n = len(h.rbuf)
        out, h.rbuf = h.rbuf[:n], h.rbuf[n:]
        return out

    def send(self, h, data):
        """Bytes taken, or None when the socket buffer is full."""
        self._usable(h)
        if h.hole:
            return len(data)  # into the air
        self._early(h)
        try:
            n = h.s.send(data)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            h.state = DEAD
            raise _oserror(e.errno or errno.ECONNRESET)
        self.awaiting = True
        self.heard = False
        return n

    def _early(self, h):
        # What arrived before this write cannot be its answer: take it in now, so that only
        # what comes after the write counts as heard.
        if h.eof:
            return
        try:
            data = h.s.recv(65536)
        except OSError:
            return  # nothing there (EAGAIN), or an error that the next recv reports
        if data:
            h.rbuf += data
            _quickack(h.s)
        else:
            h.eof = True

    def close(self, h):
        if h.state != CLOSED:
            h.state = CLOSED
            h.s.close()
        for key in [k for k in self.waiters if k[0] is h]:
            del self.waiters[key]
        if h in self.socks:
            self.socks.remove(h)

    def peer(self, h):
        return h.peer

    def wait(self, h, mode, task):
        self.waiters[(h, mode)] = task

    def unwait(self, h, mode):
        self.waiters.pop((h, mode), None)

    def waiting(self) -> bool:
        return bool(self.waiters)

    def poll(self, block: bool) -> list:
        """The tasks whose socket is ready, removed from the waiters. block: the clock is about
        to move on; wait in real time first if an answer may be on its way (see above)."""
        ready, rl, wl = [], [], []
        for key in self.waiters:
            h, mode = key
            if h.state in (DEAD, CLOSED) or (mode == 0 and (h.rbuf or h.eof)):
                ready.append(key)  # the next call tells the task what happened
            elif h.hole:
                if mode == 1:
                    ready.append(key)
            elif mode == 0:
                rl.append(h.s)
            else:
                wl.append(h.s)
        timeout = 0
        if block and self.awaiting and not ready:
            timeout = self.tail_s if self.heard else self.budget_s
        if rl or wl:
            r, w, x = select.select(rl, wl, rl + wl, timeout)
            if r or w or x:
                for key in self.waiters:
                    if key[0].s in (r if key[1] == 0 else w) or key[0].s in x:
                        ready.append(key)
            elif timeout:
                self.awaiting = self.heard = False  # quiet: nothing more is coming
        elif timeout:
            self.awaiting = self.heard = False
        return [self.waiters.pop(key) for key in ready if key in self.waiters]

    def wanted(self):
        """(sockets to read, sockets to write, ready) for a host that runs many boards from
        one select() (bench/fleet.py): ready means a waiting task can go on without one."""
        rl, wl, ready = [], [], False
        for h, mode in self.waiters:  # as poll() sees them
            if h.state in (DEAD, CLOSED) or (mode == 0 and (h.rbuf or h.eof)):
                ready = True
            elif h.hole:
                ready = ready or mode == 1
            else:
                (rl if mode == 0 else wl).append(h.s)
        return rl, wl, ready

    # --- the link and the board's power ---

    def link(self, up: bool, cut: bool = False):
        self.link_up = up
        if up:
            return
        for h in list(self.socks):
            if cut:
                self._reset(h)
            else:
                h.hole = True

    def reset(self):
        """Power off: every connection dropped without a goodbye."""
        for h in list(self.socks):
            self._reset(h)
            self.close(h)
        self.waiters.clear()
        self.awaiting = False

    def _reset(self, h):
        if h.state in (DEAD, CLOSED):
            return
        try:  # SO_LINGER 0: close() sends a RST, as a peer that vanished and came back would
            h.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        h.s.close()
        h.state = DEAD

    def _usable(self, h):
        if h.state == DEAD:
            raise _oserror(errno.ECONNRESET)
        if h.state == CLOSED:
            raise _oserror(errno.EBADF)


# --- config/net.json for a simulated board (microfab sim --mqtt) ---


def check_mqtt_arg(board: str, url: str):
    """ValueError (one line, no password) for a --mqtt that the board would refuse at boot."""
    import microfab_boards

    if not microfab_boards.load(board).get("wifi"):
        raise ValueError("--mqtt: board %s has no Wi-Fi; use pico_w, esp32_devkitc or "
                         "esp32s3_devkitc" % board)
    from microfab import config  # noqa: F401  puts the firmware's `fab` on sys.path
    from fab import netcfg

    try:
        netcfg.parse_url(url)
    except netcfg.ConfigError as e:  # its text never holds the URL
        raise ValueError("--mqtt" + str(e).split("'mqtt'", 1)[-1]) from None


def net_board(url: str, device_id: str = "b1", key: bytes | None = None, board="pico_w",
              machine="axis", net: dict | None = None, io: Net | None = None, **kw):
    """A SimBoard powered on with config/net.json on its flash, as after `microfab deploy
    --net`: broker `url`, `device_id`, the command `key` (bytes) and any other `net` settings.
    io: a Net of the caller's in place of the default one, set before the board boots."""
    from .board import SimBoard

    b = SimBoard(board, machine, boot=False, **kw)
    if io is not None:
        b.world.modules["vasyncio"]._io = io
    write_net(b.root, url, device_id, key=key.hex() if key else None, extra=net)
    b._boot()
    return b


def write_net(root, mqtt: str, device_id: str | None = None, ssid: str = "microfab-sim",
              key: str | None = None, extra: dict | None = None):
    """Write or update the board's config/net.json; a key already there is kept."""
    path = Path(root) / "config" / "net.json"
    net = {}
    if path.exists():
        try:
            net = json.loads(path.read_text())
        except ValueError:
            net = {}
    net.update({"wifi_ssid": net.get("wifi_ssid", ssid), "mqtt": mqtt})
    # A simulated board's clock is virtual and deterministic (2026-01-01 at power-on): no time
    # server unless one is asked for (tests run their own on loopback).
    net.setdefault("ntp", "")
    if device_id:
        net["device_id"] = device_id
    if key:
        net["key"] = key
    net.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(net, indent=1))
    return path


# --- the host's side, for tests and demos: everything a board publishes, and signed commands ---


class Watcher:
    """A paho client on the broker that keeps every message under microfab/# and
    homeassistant/#, and sends commands signed as the host does (fab.auth.request).

        w = Watcher(broker.port)
        w.json("microfab/b1/tele/status")     # payloads of a topic, decoded, in arrival order
        w.command("b1", key, "status", ctr=1)
    """

    def __init__(self, port: int, topics=("microfab/#", "homeassistant/#"), client_id=None):
        import threading

        import paho.mqtt.client as mqtt

        self.messages: list = []  # (topic, payload bytes, retain, qos)
        self.counts: dict = {}  # topic -> messages so far
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.topics = topics
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or "watcher-%d" % os.getpid(),
                             reconnect_on_failure=True)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.connected.set()  # SUBACK: nothing is missed now
        self.c.on_disconnect = lambda *a: self.connected.clear()
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.05, 0.2)
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("the watcher could not connect to the broker on port %d" % port)

    def _on_connect(self, client, userdata, flags, reason, props):
        if not reason.is_failure:
            result, mid = client.subscribe([(t, 1) for t in self.topics])
            self._suback = mid

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.retain), m.qos))
            self.counts[m.topic] = self.counts.get(m.topic, 0) + 1

    def count(self, topic: str) -> int:
        return self.counts.get(topic, 0)

    def wait_connected(self, timeout: float = 10.0):
        if not self.connected.wait(timeout):
            raise RuntimeError("the watcher did not reconnect within %s s" % timeout)

    def take(self, prefix: str = "") -> list:
        with self.lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def json(self, topic: str) -> list:
        out = []
        for t, payload, retain, qos in self.take(topic):
            if t == topic and payload:
                out.append(json.loads(payload))
        return out

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False):
        return self.c.publish(topic, payload, qos, retain)

    def command(self, device: str, key: bytes, cmd: str, args=None, ctr: int = 1, **extra):
        from microfab import config  # noqa: F401  puts the firmware's `fab` on sys.path
        from fab import auth

        msg = auth.request(key, cmd, args, ctr)
        msg.update(extra)
        return self.publish("microfab/%s/cmd" % device, json.dumps(msg))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def until(board, cond, virtual_s: float = 60.0, step: float = 0.05, real_s: float = 30.0):
    """Advance the board by `step` until cond() holds; AssertionError after virtual_s virtual or
    real_s real seconds. A broker answers in real time, so both clocks are watched."""
    end_v = board.now + virtual_s
    end_r = time.monotonic() + real_s
    while not cond():
        if board.now >= end_v or time.monotonic() >= end_r:
            raise AssertionError("not met within %.1f virtual / %.1f real seconds"
                                 % (board.now - end_v + virtual_s,
                                    time.monotonic() - end_r + real_s))
        board.advance(step)
        time.sleep(0)  # let paho's thread take what arrived
    return True
