"""A board over MQTT, for the operating commands (`microfab send|status|home|stop|jog --broker URL
--device ID`): each command is signed with the device key that `microfab provision` stored
(HMAC-SHA256 over the canonical text, fab/auth.py) and answered on microfab/<device>/reply.

The counter: the board runs a command only if its `ctr` is above the last one it accepted, and
stores it first. The host takes the time in milliseconds, which grows from run to run and from
computer to computer without any state here; a board that is ahead (a host clock set back)
refuses with its last counter in the words, and the command goes once more just above it."""
from __future__ import annotations

import json
import re
import threading
import time

from .collector import CollectorError, parse_broker
from .commands import UserError
from .provision import KeyStore, ProvisionError

_AHEAD = re.compile(r"replayed command: ctr \d+ is not above the last accepted (\d+)")


class RemoteError(UserError):  # the CLI prints it as one line
    pass


def signed(key: bytes, cmd: str, args: dict, last: int) -> tuple[dict, int]:
    """(the command message, its ctr): ctr is the time in ms, or last + 1 when that is later."""
    from . import config  # noqa: F401  puts the firmware's `fab` on sys.path
    from fab import auth

    ctr = max(int(time.time() * 1000), last + 1)
    return auth.request(key, cmd, args, ctr), ctr


class Remote:
    """Remote(broker_url, device).connect() ... request(cmd, args, timeout) ... close();
    with watch=True (no key needed) lines(timeout) gives the board's telemetry records."""

    def __init__(self, broker_url: str, device: str, keystore: KeyStore | None = None,
                 watch: bool = False):
        try:
            self.broker = parse_broker(broker_url)
        except CollectorError as e:
            raise RemoteError(str(e)) from None
        store = keystore or KeyStore()
        try:
            key = None if watch else store.get(device)
        except ProvisionError as e:  # a key store that cannot be read: says which and why
            raise RemoteError(str(e)) from None
        if key is None and not watch:
            raise RemoteError("no device key for %r in %s: give the board one with `microfab "
                              "provision --device-id %s ...` (over USB)"
                              % (device, store.path, device))
        self.device, self._key = device, key
        self.shown = "%s:%d" % (self.broker["host"], self.broker["port"])
        self.port = "%s on %s" % (device, self.shown)  # what the CLI calls the board
        self.watch = watch
        self._records: list = []
        self._replies: dict = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = None
        self._last = 0

    def __repr__(self):  # the key stays out of reprs and tracebacks
        return "Remote(%s on %s)" % (self.device, self.shown)

    def connect(self) -> "Remote":
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        b = self.broker
        if b["username"]:
            c.username_pw_set(b["username"], b["password"])
        if b["tls"]:
            c.tls_set()
        base = "microfab/%s/" % self.device
        topics = [(base + "tele/#", 1)] if self.watch else [(base + "reply", 1)]
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topics)
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        try:
            c.connect(b["host"], b["port"], keepalive=30)
        except OSError as e:
            raise RemoteError("cannot reach the broker at %s: %s" % (
                self.shown, e.strerror or e)) from None
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(10):
            self.close()
            raise RemoteError("the broker at %s did not take our subscription within 10 s"
                              % self.shown)
        return self

    def _on_message(self, client, userdata, m):
        try:
            msg = json.loads(m.payload)
            if self.watch:
                msg["tele"] = m.topic.rsplit("/", 1)[1]  # as the same record says over USB
            else:
                ctr = msg["ctr"]
        except (ValueError, TypeError, KeyError):
            return  # not a record nor a reply: the board's own words are JSON objects
        with self._cond:
            if self.watch:
                self._records.append(msg)
            else:
                self._replies[ctr] = msg
            self._cond.notify_all()

    def lines(self, timeout: float) -> list:
        """The records that came within `timeout` seconds (watch=True)."""
        with self._cond:
            if not self._records:
                self._cond.wait(timeout)
            out, self._records = self._records, []
        return out

    def request(self, cmd: str, args: dict | None = None, timeout: float = 60.0) -> dict:
        """The board's reply ({"ok": ..., ...}); RemoteError when none comes in time."""
        reply = self._ask(cmd, args, timeout)
        ahead = _AHEAD.match(reply.get("error") or "")
        if not reply.get("ok") and ahead:
            self._last = int(ahead.group(1))
            reply = self._ask(cmd, args, timeout)
        return reply

    def _ask(self, cmd, args, timeout):
        msg, ctr = signed(self._key, cmd, args or {}, self._last)
        self._last = ctr
        self.client.publish("microfab/%s/cmd" % self.device, json.dumps(msg), qos=1)
        deadline = time.monotonic() + timeout
        with self._cond:
            while ctr not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RemoteError(
                        "no reply from %s within %.0f s (is it online? `microfab collect` shows "
                        "its status; a command sent while it is away is not kept for it)"
                        % (self.device, timeout))
                self._cond.wait(left)
            return self._replies.pop(ctr)

    def close(self):
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
