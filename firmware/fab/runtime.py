# Boot and supervision: read and check the config, build the machine, start the tasks, and keep
# them honest. A task that crashes is reported and the machine is put in a safe state; a board
# whose event loop hangs stops feeding the watchdog and is reset by it.
import io
import json
import sys
import time

import asyncio
from micropython import const

from fab import PROTOCOL, VERSION, hal
from fab.config import ConfigError, configure
from fab.link import Link
from fab.protocol import Table
from fab.tele import Tele

CONFIG_DIR = "config/"
_RESTART_MS = const(200)
# A machine may take over the USB link: one whose `usb_link` attribute is a coroutine function
# (console) speaks its own line protocol there instead of JSON lines (the loom's Séguin mode);
# events and telemetry then stay off the wire. Machines look for this flag before offering it.
MACHINE_LINK = True


def read_json(name, required=True):
    path = CONFIG_DIR + name
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        if required:
            raise ConfigError("%s is missing: deploy a config with `microfab deploy`" % path)
        return None
    except ValueError as e:
        raise ConfigError("%s is not valid JSON (%s): expected one JSON object" % (path, e))


def _trace(e):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()[-600:]


class Runtime:
    def __init__(self):
        self.con = hal.Console()
        self.table = Table()
        self.link = Link(self.con, self.table)
        self.board = None
        self.cfg = None
        self.machine = None
        self.state = "boot"
        self.error = ""
        self.faults = 0
        self.own_link = None  # the machine's usb_link, when the machine has the USB link
        self.tele = Tele(self)  # the records, and the journal when there is one
        self.net = None  # config/net.json, when there is one
        self.vsense = None
        self.wdt = None
        self.t0 = time.ticks_ms()
        self.beat = self.t0

    def emit(self, obj):
        ev = obj.get("event")
        if ev is not None and ev in self.tele.events:
            # A machine event worth keeping (a piece's label): a record, sent over MQTT too.
            rec = {}
            for k in obj:
                if k != "event":
                    rec[k] = obj[k]
            obj["seq"] = self.tele.record(ev, rec)
        if self.own_link is None:
            self.link.send(obj)

    def boot(self):
        t = self.table
        t.add("hello", self._hello)
        t.add("info", self._hello)
        t.add("status", self._status)
        t.add("stop", self._stop)
        t.add("reset", self._reset)
        t.add("config", self._config)
        try:
            board, mod, cfg, pins = configure(read_json("board.json"), read_json("machine.json"),
                                              read_json("calib.json", False))
            self.board, self.cfg = board, cfg
            self.machine = mod.Machine(cfg, pins, board)
            if hasattr(self.machine, "emit"):
                self.machine.emit = self.emit  # machine events go out through the link
            self.machine.commands(t)
            self.own_link = getattr(self.machine, "usb_link", None)
            vs = board["pins"].get("vsense")
            if vs is not None and vs in board["adc_pins"]:
                self.vsense = hal.adc(vs)
            self.state = "ready"
        except (OSError, ValueError) as e:
            # Stay on the link with the base commands, so that the host can read the error and
            # deploy a fixed config; nothing is driven.
            hal.safe_state()
            self.state = "config_error"
            self.error = str(e)
            self.emit({"event": "config_error", "error": self.error})
        ev = {"event": "boot", "firmware": VERSION, "protocol": PROTOCOL,
              "board": self.board and self.board["name"],
              "machine": self.cfg and self.cfg["machine"], "state": self.state,
              "reset_cause": hal.reset_cause()}
        try:
            self.net = read_json("net.json", False)
        except ConfigError as e:
            self.emit({"event": "net_error", "error": str(e)})
        # MQTT sends what the journal holds: a board with a network config always keeps one.
        if self.cfg and (self.cfg["journal"] or self.net is not None):
            from fab.checkpoint import restore

            restore(self.tele, ev, self.cfg["journal_kb"])
        if self.machine:
            self.tele.attach(self.machine)
        self.emit(ev)
        if self.cfg:
            self.emit({"event": "config", "machine": self.cfg})

    def uptime(self):
        return time.ticks_diff(time.ticks_ms(), self.t0) / 1000

    def _hello(self, args):
        v = sys.implementation.version
        return {"protocol": PROTOCOL, "firmware": VERSION,
                "board": self.board and self.board["name"],
                "chip": self.board and self.board["chip"],
                "machine": self.cfg and self.cfg["machine"], "state": self.state,
                "error": self.error, "micropython": "%d.%d.%d" % (v[0], v[1], v[2]),
                "mem_free": hal.mem_free(), "uid": hal.uid(), "reset_cause": hal.reset_cause(),
                "commands": self.table.describe()}

    def _status(self, args):
        out = {"state": self.state, "uptime_s": self.uptime(), "faults": self.faults,
               "busy": self.link.busy}
        if self.machine:
            out.update(self.machine.status())
        self.tele.status(out)
        if self.vsense:
            try:
                out["vsupply"] = self.supply()
            except OSError as e:
                out["vsupply"] = None  # status must answer even when a sensor does not
                out["sensor_error"] = "vsense: %s" % e
        return out

    def _stop(self, args):
        was = self.machine.stop() if self.machine else self.state
        hal.safe_state()
        return {"stopped": was}

    def _reset(self, args):
        asyncio.create_task(self._reset_soon())
        return {"reset": True}

    async def _reset_soon(self):
        await asyncio.sleep_ms(50)  # let the reply leave first
        hal.safe_state()
        j = self.tele.journal
        if j:
            try:
                j.save()  # the sent cursor: fewer records sent twice after the reset
            except OSError:
                pass  # the reset matters more
        hal.reset()

    def _config(self, args):
        return {"board": self.board, "machine": self.cfg}

    def supply(self):
        vs, board = self.vsense, self.board
        if vs is None or board is None:  # no sense pin wired, or no valid board config
            return None
        # 3.3 V reference over a divider of vsense_ratio (the Pico's VSYS/3 divider by default)
        return round(vs.read_u16() * 3.3 * board["vsense_ratio"] / 65535, 3)

    async def sampler(self):
        every = self.cfg["sample_ms"] if self.cfg else 1000
        report_ms = (self.cfg["report_s"] if self.cfg else 10) * 1000
        last = time.ticks_ms()
        while True:
            await asyncio.sleep_ms(every)
            self.beat = time.ticks_ms()
            if self.vsense:
                self.supply()
            if time.ticks_diff(self.beat, last) >= report_ms:
                last = self.beat
                self.tele.report(self._status(None))

    async def watchdog(self, timeout_ms):
        wdt = self.wdt = hal.watchdog(timeout_ms)
        while True:
            # Fed only while the sampler beats: a wedged loop or a dead sampler resets the board.
            if time.ticks_diff(time.ticks_ms(), self.beat) < timeout_ms // 2:
                wdt.feed()
            await asyncio.sleep_ms(timeout_ms // 4)

    async def guard(self, name, factory, restart):
        while True:
            try:
                await factory()
                return
            except Exception as e:
                self.faults += 1
                hal.safe_state()
                if self.machine:
                    self.machine.safe()
                self.state = "fault"
                self.emit({"event": "fault", "task": name,
                           "error": "%s: %s" % (type(e).__name__, e), "trace": _trace(e)})
            if not restart:
                return
            await asyncio.sleep_ms(_RESTART_MS)


async def _main(rt):
    rt.boot()
    own = rt.own_link
    if own is not None:
        asyncio.create_task(rt.guard("link", lambda: own(rt.con), True))
    else:
        asyncio.create_task(rt.guard("link", rt.link.run, True))
    asyncio.create_task(rt.guard("sampler", rt.sampler, False))
    if rt.cfg and rt.cfg["watchdog_ms"]:
        asyncio.create_task(rt.guard("watchdog", lambda: rt.watchdog(rt.cfg["watchdog_ms"]), False))
    if rt.machine:
        for name, factory in rt.machine.tasks():
            asyncio.create_task(rt.guard(name, factory, False))
    if rt.net is not None:
        from fab import uplink  # only a board with a network config pays for MQTT

        uplink.start(rt, rt.net)
    await asyncio.Event().wait()


def main():
    # Nothing may follow asyncio.run(): on a board it never returns, and the simulator returns
    # from it at the end of each slice of virtual time. Only an exception leaves it on a board
    # (Ctrl-C from the REPL, mpremote taking over): the machine must be left safe then. Not a
    # `finally`, which the simulator would run after its first slice.
    rt = Runtime()
    try:
        asyncio.run(_main(rt))
    except BaseException:
        hal.safe_state()
        if rt.wdt is not None:
            # RP2040 and ESP32 watchdogs cannot be stopped once started: keep feeding it from a
            # timer while a person or mpremote has the REPL, or it resets the board mid-deploy.
            hal.keep_fed(rt.wdt)
        raise
