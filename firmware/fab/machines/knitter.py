# Brother electronic knitting machines (KH-910, KH-930 and kin, KH-270) driven the way the AYAB
# interface board drives them: the knitter pushes the carriage by hand, the board reads where it
# is from the carriage encoder and the end-of-line hall sensors, and sets the needle-selection
# solenoids from rows of the pattern that the host streams ahead.
#
# Geometry (after AYAB's encoders.h and opKnit.cpp): the carriage position is counted in needles
# at its centre, needle 0 the leftmost. The carriage selects needles at an activation point that
# trails its centre by `lead` needles (16 for the K carriage of a KH-9xx, 4 for its L carriage,
# 9 for the KH-270) and what it selects is knitted on the next pass. Needle n is selected by
# solenoid (n + belt shift) mod 16 (mod 12, on outputs 3..14, on the KH-270). A solenoid is set
# `advance` needles before its needle's activation (AYAB's TIMING_ADVANCE) and released `hold`
# needles after it, so it is on for a few needles only and free again before its next needle.
#
# Metadata first and hal-free, so that the host can validate a config with this very module.
NAME = "knitter"
PINS = ("enc_a", "enc_b", "enc_c", "eol_left", "eol_right")
SCHEMA = (
    ("model", "c", "kh910", ("kh910", "kh930", "kh270"), None),
    ("mcp_addr", "i", 32, 32, 39),  # MCP23017 A2..A0 jumpers: 0x20..0x27
    ("advance", "i", 4, 1, 8, "needles"),
    ("hold", "i", 2, 0, 6, "needles"),
    ("max_on_ms", "i", 1000, 50, 10000, "ms"),
    ("max_duty", "i", 50, 5, 95, "%"),
    ("hall_low", "f", 0.65, 0.0, 3.3, "V"),
    ("hall_high", "f", 1.95, 0.0, 3.3, "V"),
    ("yarn_break_pin", "p", None, 0, 63),  # the yarn-break switch (NC contact to GND), if wired
    ("yarn_debounce_ms", "i", 5, 1, 100, "ms"),
)
CALIBRATE = ("hall_low", "hall_high")
# needles, solenoids, first solenoid output, left and right sensor needle, lead of K and L
MODELS = {
    "kh910": (200, 16, 0, 0, 199, 16, 4),
    "kh930": (200, 16, 0, 0, 199, 16, 4),
    "kh270": (112, 12, 3, -9, 120, 9, 0),
}
_TICK_MS = 20  # heat accounting and events while knitting (ms)
_BELT = (None, "regular", "shifted")


def check(cfg, board, pins):  # what the schema cannot say: the optional yarn-break pin
    if cfg["yarn_break_pin"] is not None:  # only then: a knitter without it keeps the RAM
        from fab.drivers import yarn

        yarn.check(cfg, board, pins)


def _emit_line(obj):
    import json

    print(json.dumps(obj))


class Machine:
    PRODUCTION = ("rows_total", "rows")  # the status field that counts what it made, its unit
    def __init__(self, cfg, pins, board):
        import asyncio

        from fab import hal
        from fab.config import ConfigError
        from fab.drivers.encoder import Encoder
        from fab.drivers.endline import EndLine, EndLines
        from fab.drivers import selector
        from fab.drivers.mcp23017 import MCP23017
        from fab.drivers.solenoid_bank import SolenoidBank

        self.model = cfg["model"]
        m = MODELS[self.model]
        self.needles, self.nsol, self.out0 = m[0], m[1], m[2]
        self._leads = (0, m[5], m[6], 0)  # by carriage: none, K, L, G (a garter carriage
        # does not select needles from a pattern)
        self.adv = cfg["advance"]
        self.hold = cfg["hold"]
        if self.adv + self.hold > self.nsol - 2:
            raise ConfigError("machine config: advance + hold is %d needles; with %d solenoids "
                              "it must be at most %d" % (self.adv + self.hold, self.nsol,
                                                         self.nsol - 2))
        if cfg["hall_low"] >= cfg["hall_high"]:
            raise ConfigError("machine config: 'hall_low' (%s V) must be below 'hall_high' (%s V)"
                              % (cfg["hall_low"], cfg["hall_high"]))
        for role in ("eol_left", "eol_right"):
            if pins[role] not in board["adc_pins"]:
                raise ConfigError("machine config pins: '%s' is on pin %d, which is not an ADC "
                                  "pin of %s; expected one of %s" % (
                                      role, pins[role], board["name"],
                                      ", ".join([str(p) for p in board["adc_pins"]])))
        bus = board["buses"].get("i2c0")
        if bus is None:
            raise ConfigError("board file: the knitter's solenoids hang on an MCP23017 on i2c0, "
                              "and board %s has no i2c0 bus" % board["name"])
        try:
            port = MCP23017(hal.i2c(bus), cfg["mcp_addr"])
        except OSError:
            raise ConfigError("no MCP23017 answers at 0x%02x on i2c0 (SDA pin %d, SCL pin %d): "
                              "check the solenoid board's wiring, power and address jumpers "
                              "(mcp_addr)" % (cfg["mcp_addr"], bus["sda"], bus["scl"]))
        self.bank = SolenoidBank(port, 16, cfg["max_on_ms"], cfg["max_duty"])
        self.enc = Encoder(hal.inp(pins["enc_a"]), hal.inp(pins["enc_b"]),
                           hal.inp(pins["enc_c"]))
        lo = int(cfg["hall_low"] * 65535 / 3.3)
        hi = int(cfg["hall_high"] * 65535 / 3.3)
        self.ends = EndLines(self.enc, EndLine(_adc(hal, pins["eol_left"]), m[3], lo, hi),
                             EndLine(_adc(hal, pins["eol_right"]), m[4], lo, hi),
                             belt_period=16 if self.nsol == 16 else 0,
                             only_k=self.model == "kh270")
        self._wake = asyncio.ThreadSafeFlag()
        self.S = selector  # its constants: SLOTS, and the kinds of event
        self.sel = selector.Selector(self.enc, self.ends, self.bank, self.needles, self.nsol,
                                     self.out0, self._leads, self.adv, self.hold, self._wake)
        self.emit = _emit_line  # the runtime may hand its own (see docs/machines/knitter.md)
        self.asked = 0  # rows asked of the host in this job
        self._fixes = 0
        self._errors = 0
        self._hot = 0  # solenoids reported too hot since the carriage last moved
        self._moved = 0
        self.enc.hook = self.sel.count  # bound once: the IRQ must not allocate
        self.yarn = None
        yp = cfg["yarn_break_pin"]
        if yp is not None:
            from fab.drivers.yarn import YarnSwitch

            self.yarn = YarnSwitch(hal.inp(yp, pull_up=True), yp, cfg["yarn_debounce_ms"],
                                   asyncio.ThreadSafeFlag(), self.sel)

    # --- task context ---

    def commands(self, table):
        table.add("knit_start", self._start, (("first", "i", 1), ("last", "i", 1),
                                              ("rows", "i", 1), ("repeats", "i", 0)))
        table.add("row", self._row, (("index", "i", 1), ("bits", "s", 1)))
        table.add("solenoids", self._test, (("mask", "i", 1),))
        if self.yarn:
            table.add("resume", self.yarn.resume)

    def tasks(self):
        yarn = (("yarn", self.yarn.watch),) if self.yarn else ()
        return (("knitter", self._run),) + yarn

    def _start(self, args):
        sel = self.sel
        if sel.active:
            raise ValueError("a knitting job is running (row %d of %s); send stop first"
                             % (sel.head, sel.total or "endless"))
        first, last, rows = args["first"], args["last"], args["rows"]
        rep = 1 if args["repeats"] is None else args["repeats"]
        n = self.needles
        if not 0 <= first <= last < n:
            raise ValueError("needles of a %s are 0 to %d from the left; first and last must "
                             "be 0 <= first <= last <= %d, got first=%d last=%d"
                             % (self.model.upper(), n - 1, n - 1, first, last))
        if not 1 <= rows <= 100000:
            raise ValueError("rows must be from 1 to 100000, got %d" % rows)
        if not 0 <= rep <= 10000:
            raise ValueError("repeats must be from 0 (until stop) to 10000, got %d" % rep)
        if self.ends.carriage and not self._leads[self.ends.carriage]:
            raise ValueError("a %s carriage is on the bed; it cannot knit a pattern: use the K "
                             "carriage" % _name(self.ends.carriage))
        if self.yarn:
            self.yarn.ready()
        self.bank.write(0)  # whatever a solenoid test left on
        self.asked = 0
        sel.start(first, last, rows, rows * rep)
        self._wake.set()
        return {"needles": n, "first": first, "last": last, "rows": rows, "repeats": rep,
                "position_known": self.ends.known, "carriage": _name(self.ends.carriage)}

    def _row(self, args):
        sel = self.sel
        if not sel.active:
            raise ValueError("no knitting job: send knit_start first")
        if sel.room() <= 0:
            if sel.total and sel.loaded >= sel.total:
                raise ValueError("all %d rows of the job are already here" % sel.total)
            raise ValueError("row buffer full: %d rows are waiting for the carriage; send the "
                             "next row after need_row" % self.S.SLOTS)
        want = sel.loaded % sel.nrows
        if args["index"] != want:
            raise ValueError("row %d arrived, expected row %d: rows go in order, one per "
                             "need_row" % (args["index"], want))
        sel.load(self._decode(args["bits"]))
        return {"row": want, "buffered": sel.loaded - sel.head}

    def _decode(self, bits):
        import binascii

        nb = (self.needles + 7) // 8
        b64 = 4 * ((nb + 2) // 3)
        data = None
        try:
            if len(bits) == 2 * nb:
                data = binascii.unhexlify(bits)
            elif len(bits) == b64:
                data = binascii.a2b_base64(bits)
        except ValueError:
            data = None
        if data is None or len(data) != nb:
            raise ValueError("bits must be %d hex digits or %d base64 characters for the %d "
                             "needles of a %s (needle n is bit n%%8 of byte n//8), got %d "
                             "characters" % (2 * nb, b64, self.needles, self.model.upper(),
                                             len(bits)))
        return data

    def _test(self, args):
        if self.sel.active:
            raise ValueError("a knitting job is running; send stop first")
        if not 0 <= args["mask"] <= 0xFFFF:
            raise ValueError("mask must be from 0 to 65535 (bit n = solenoid output n), got %d"
                             % args["mask"])
        self.bank.write(args["mask"])
        self._wake.set()  # the task keeps the heat account while any is on
        return {"solenoids": self.bank.word, "blocked": self.bank.blocked}

    async def _run(self):
        import asyncio

        sel = self.sel
        while True:
            if sel.active or self.bank.word:
                await asyncio.sleep_ms(_TICK_MS)
            else:
                await self._wake.wait()
            hot = self.bank.cool()
            if self.enc.counts != self._moved:
                self._moved = self.enc.counts
                self._hot = 0  # the carriage moved on: a new overheat is news again
            hot &= ~self._hot
            if hot:
                self._hot |= hot
                self.emit({"event": "overheat", "solenoids": hot,
                           "max_on_ms": self.bank.limit // (100 - self.bank.duty),
                           "max_duty": self.bank.duty})
            self._events()
            while sel.active and self.asked < sel.head + self.S.SLOTS and (
                    not sel.total or self.asked < sel.total):
                self.emit({"event": "need_row", "row": self.asked % sel.nrows,
                           "repeat": self.asked // sel.nrows})
                self.asked += 1

    def _events(self):
        ends, sel, S = self.ends, self.sel, self.S
        if ends.changed:
            ends.changed = False
            self.emit({"event": "carriage", "type": _name(ends.carriage),
                       "belt": _BELT[ends.belt], "position": self.enc.edge()})
        if ends.fixes != self._fixes:
            self._fixes = ends.fixes
            self.emit({"event": "position_corrected", "needles": ends.error})
        if self.bank.errors != self._errors:
            self._errors = self.bank.errors
            if sel.active:
                self.stop()
                self.emit({"event": "knit_stopped", "error": "the solenoid driver (MCP23017) "
                           "stopped answering on i2c0; check its wiring and power"})
        while True:
            ev = sel.pop()
            if ev is None:
                break
            kind, a, b = ev
            row, rep = a % sel.nrows, a // sel.nrows
            if kind == S.DONE:
                self.emit({"event": "row_done", "row": row, "repeat": rep, "rows": a + 1})
            elif kind == S.SHORT:
                self.emit({"event": "row_incomplete", "row": row, "needles": b,
                           "of": sel.last - sel.first + 1})
            elif kind == S.NOROW:
                self.emit({"event": "no_row", "row": row})
            elif kind == S.END:
                self.emit({"event": "knit_done", "rows": a + 1,
                           "stitches": (a + 1) * (sel.last - sel.first + 1),
                           "repeats": (a + 1) // sel.nrows})
        if self.yarn:  # after the queue: the rows done before the break come first
            self.yarn.events(self.emit)

    def status(self):
        ends, sel = self.ends, self.sel
        known = ends.known
        width = sel.last - sel.first + 1
        out = {"knit": ("yarn_break" if sel.paused else "knitting") if sel.active else "idle",
               "model": self.model, "needles": self.needles, "carriage": _name(ends.carriage),
               "belt": _BELT[ends.belt], "position": self.enc.edge() if known else None,
               "direction": (None, "right", "left")[self.enc.dir] if known else None,
               "row": sel.head % sel.nrows if sel.active else None,
               "rows_knitted": sel.head, "stitches": sel.head * width,
               "repeats": sel.head // sel.nrows, "rows_total": sel.total_rows,
               "stitches_total": sel.total_stitches, "buffered": sel.loaded - sel.head,
               "solenoids": self.bank.word, "blocked": self.bank.blocked,
               "overheats": self.bank.overheats, "position_error": ends.worst,
               "sensor_passes": ends.zeroes, "i2c_errors": self.bank.errors}
        if self.yarn:
            self.yarn.report(out)
        return out

    def stop(self):
        was = "knitting" if self.sel.active else "idle"
        self.sel.stop()
        return was

    def safe(self):
        self.sel.stop()


def _adc(hal, pin):
    a = hal.adc(pin)
    if hasattr(a, "ATTN_11DB"):
        a.atten(a.ATTN_11DB)  # ESP32: about 0-3.1 V full scale instead of 0-1 V
    return a


def _name(carriage):
    return (None, "K", "L", "G")[carriage]
