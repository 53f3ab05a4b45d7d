# Commands over MQTT: checked before anything runs (size, JSON, shape, the HMAC with the device
# key, a counter above the last accepted one, stored first), then run through the serial
# protocol's command table with its words and its busy lock. Every refusal gets a reply that says
# why, and is logged as an event (at most one a second, the rest counted). See docs/telemetry.md.
import json
import time

import asyncio
from micropython import const

from fab import auth
from fab.protocol import CommandError

_MAX_CMD = const(1024)  # bytes: the serial line limit holds for MQTT too (below mqtt_wire.MAX_PACKET)
_LOG_MS = const(1000)  # at most one cmd_refused event per second; the rest are counted
CTR_FILE = "net_ctr.json"  # outside config/: a deploy must not roll the counter back
_FIELDS = ("cmd", "args", "ctr", "mac")
_SHAPE = ("expected {\"cmd\": \"status\", \"args\": {}, \"ctr\": <a number above the last "
          "accepted>, \"mac\": \"<HMAC-SHA256, 64 hex digits>\"}")


class Commands:
    """handle(payload) -> the reply (a dict), or None when a long command replies later through
    reply(out), a coroutine function."""

    def __init__(self, rt, key_hex, reply):
        self.rt = rt
        self.reply = reply
        self.signer = auth.Signer(auth.parse_key(key_hex)) if key_hex else None
        self.ctr = auth.Counter(CTR_FILE)
        self.accepted = self.refused = 0
        self._quiet = 0  # refusals not logged since the last event
        self._logged = None

    def handle(self, payload):
        """The reply to one command message (a dict), or None when a long command runs and
        replies when done. Nothing runs unless the MAC is right and ctr is new."""
        if payload is None or len(payload) > _MAX_CMD:
            return self._refuse(None, "command too long: at most %d bytes" % _MAX_CMD)
        try:
            msg = json.loads(bytes(payload).decode())
        except (UnicodeError, ValueError):
            return self._refuse(None, "not JSON: " + _SHAPE)
        if not isinstance(msg, dict):
            return self._refuse(None, "expected a JSON object: " + _SHAPE)
        ctr = msg.get("ctr")
        if isinstance(ctr, bool) or not isinstance(ctr, int) or ctr < 1:
            return self._refuse(None, "'ctr' must be a whole number from 1 up, above the last "
                                      "accepted one (%d)" % self.ctr.last)
        for key in msg:
            if key not in _FIELDS:
                return self._refuse(ctr, "unknown field '%s'; a command has cmd, args, ctr and "
                                         "mac" % key)
        cmd, args, mac = msg.get("cmd"), msg.get("args", {}), msg.get("mac")
        if not isinstance(cmd, str):
            return self._refuse(ctr, "missing 'cmd': expected the name of a command")
        if not isinstance(mac, str) or len(mac) != auth.MAC_HEX:
            return self._refuse(ctr, "'mac' must be %d hex digits: HMAC-SHA256 of the command "
                                     "with the device key" % auth.MAC_HEX)
        if self.signer is None:
            return self._refuse(ctr, "commands over MQTT are off: this board has no device key "
                                     "('key' in config/net.json); provision it")
        try:
            text = auth.canonical(cmd, args, ctr)
        except ValueError as e:
            return self._refuse(ctr, "cannot check the signature: %s" % e)
        if not self.signer.check(mac, text):
            return self._refuse(ctr, "bad mac: not signed with this board's key")
        if ctr <= self.ctr.last:
            return self._refuse(ctr, "replayed command: ctr %d is not above the last accepted "
                                     "%d" % (ctr, self.ctr.last))
        try:
            self.ctr.accept(ctr)  # stored before anything runs
        except OSError as e:
            return self._refuse(ctr, "could not store the command counter (%s): not run" % e)
        self.accepted += 1
        self.rt.emit({"event": "mqtt_cmd", "cmd": cmd, "ctr": ctr})
        return self._run(ctr, cmd, args)

    def _run(self, ctr, cmd, args):
        # As fab.link runs a serial request: the same table, the same words, the same lock.
        link = self.rt.link
        try:
            fn, args, task = self.rt.table.check(cmd, args)
        except CommandError as e:
            return {"ctr": ctr, "ok": False, "error": str(e)}
        if task:
            if link.busy:
                return {"ctr": ctr, "ok": False, "error": "busy: %s is running; wait for its "
                        "reply or send stop" % link.busy}
            link.busy = cmd
            asyncio.create_task(self._task(ctr, cmd, fn, args))
            return None
        try:
            return _ok(ctr, fn(args))
        except ValueError as e:
            return {"ctr": ctr, "ok": False, "error": str(e)}
        except Exception as e:
            return {"ctr": ctr, "ok": False, "error": "internal error in %s: %s: %s"
                    % (cmd, type(e).__name__, e)}

    async def _task(self, ctr, cmd, fn, args):
        try:
            out = _ok(ctr, await fn(args))
        except ValueError as e:
            out = {"ctr": ctr, "ok": False, "error": str(e)}
        except Exception as e:
            out = {"ctr": ctr, "ok": False, "error": "internal error in %s: %s: %s"
                   % (cmd, type(e).__name__, e)}
        finally:
            self.rt.link.busy = ""
        await self.reply(out)

    def _refuse(self, ctr, why):
        # Logged as an event, at most one a second: a flood of garbage must not flood the log.
        self.refused += 1
        now = time.ticks_ms()
        if self._logged is None or time.ticks_diff(now, self._logged) >= _LOG_MS:
            self.rt.emit({"event": "cmd_refused", "via": "mqtt", "ctr": ctr, "error": why,
                          "unlogged": self._quiet})
            self._logged = now
            self._quiet = 0
        else:
            self._quiet += 1
        return {"ctr": ctr, "ok": False, "error": why}


def _ok(ctr, result):
    out = {"ctr": ctr, "ok": True}
    if result:
        out.update(result)
    return out

