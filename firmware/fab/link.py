# The serial link: one JSON object per line each way. Requests carry an id; replies echo it with
# ok true/false. Lines without an id are events and telemetry from the board.
import json

import asyncio
from micropython import const

from fab.protocol import CommandError

MAX_LINE = const(1024)
_TOP = ("id", "cmd", "args")


class Link:
    def __init__(self, console, table):
        self._con = console
        self.table = table
        self._buf = bytearray(MAX_LINE)  # one line assembled here, allocated once
        self._mv = memoryview(self._buf)
        self._n = 0
        self._skip = False
        self.busy = ""  # the running task command, "" when none
        self.errors = 0

    def send(self, obj):
        self._con.write(json.dumps(obj) + "\n")

    def reply(self, rid, result=None):
        out = {"id": rid, "ok": True}
        if result:
            out.update(result)
        self.send(out)

    def fail(self, rid, error):
        self.errors += 1
        self.send({"id": rid, "ok": False, "error": error})

    async def run(self):
        reader = self._con.reader
        while True:
            data = await reader.read(256)
            if data:
                self.feed(data)

    def feed(self, data):
        i = 0
        n = len(data)
        while i < n:
            j = data.find(b"\n", i)
            end = n if j < 0 else j
            size = end - i
            if not self._skip:
                if self._n + size > MAX_LINE:
                    self._skip = True
                else:
                    self._mv[self._n:self._n + size] = data[i:end]
                    self._n += size
            if j < 0:
                return
            if self._skip:
                self.fail(None, "line too long: a command line holds at most %d bytes" % MAX_LINE)
                self._skip = False
            else:
                self.line(bytes(self._mv[:self._n]))
            self._n = 0
            i = j + 1

    def line(self, raw):
        try:
            text = raw.decode().strip()
        except UnicodeError:
            self.fail(None, "line is not UTF-8 text: expected one JSON object per line")
            return
        if not text:
            return
        try:
            msg = json.loads(text)
        except ValueError:
            self.fail(None, "not JSON: expected one object per line, like "
                            "{\"id\": 1, \"cmd\": \"hello\", \"args\": {}}")
            return
        if not isinstance(msg, dict):
            self.fail(None, "expected a JSON object with id, cmd and args")
            return
        rid = msg.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (int, str))):
            self.fail(None, "'id' must be a number or a string")
            return
        for key in msg:
            if key not in _TOP:
                self.fail(rid, "unknown field '%s'; a request has id, cmd and args" % key)
                return
        cmd = msg.get("cmd")
        if not isinstance(cmd, str):
            self.fail(rid, "missing 'cmd': expected the name of a command, one of: "
                           + ", ".join(sorted(self.table.cmds)))
            return
        try:
            fn, args, task = self.table.check(cmd, msg.get("args", {}))
        except CommandError as e:
            self.fail(rid, str(e))
            return
        if task:
            if self.busy:
                self.fail(rid, "busy: %s is running; wait for its reply or send stop" % self.busy)
                return
            self.busy = cmd
            asyncio.create_task(self._task(rid, fn, args))
            return
        try:
            self.reply(rid, fn(args))
        except ValueError as e:
            self.fail(rid, str(e))
        except Exception as e:  # a bug, not bad input: say so, keep serving
            self.fail(rid, "internal error in %s: %s: %s" % (cmd, type(e).__name__, e))

    async def _task(self, rid, fn, args):
        try:
            self.reply(rid, await fn(args))
        except ValueError as e:
            self.fail(rid, str(e))
        except Exception as e:
            self.fail(rid, "internal error: %s: %s" % (type(e).__name__, e))
        finally:
            self.busy = ""
