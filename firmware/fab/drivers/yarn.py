# The yarn-break switch of a knitting machine: a normally closed contact on the yarn tensioner (or
# a break / run-out detector) that opens when the yarn breaks or runs out. Wired between the pin
# and GND, read with the pin's pull-up: closed (yarn there) reads 0, open reads 1, so a broken
# wire or a missing switch reads as a broken yarn, the safe way round.
#
# Debounced by time: the contact counts as open once it has stayed open for `debounce_ms` (the
# tension arm chatters as the yarn jerks, and a contact bounces for a few ms). The pin's IRQ
# stamps every change; a small task wakes on an opening and acts debounce_ms later, and the
# encoder IRQ (the selector, at every needle) asks too, so a busy event loop cannot delay the
# break by more than one needle.
#
# The hal-free check() runs on the host as well, before a deploy.
import time

# ESP32 datasheet, pin description: GPIO34-39 are input-only, without internal pull-ups, so the
# open contact would float.
_NO_PULL = {"esp32": (34, 35, 36, 37, 38, 39)}
# GPIO0 low at reset starts the ROM bootloader instead of MicroPython (the strapping-pin tables
# of the ESP32 and ESP32-S3 datasheets), and a closed switch holds it low.
_BOOT = {"esp32": 0, "esp32s3": 0}


def check(cfg, board, pins):
    """'yarn_break_pin': a pin the board has, with a pull-up, that nothing else uses."""
    pin = cfg["yarn_break_pin"]
    if pin is None:
        return
    from fab.config import ConfigError

    used = {}
    for role in board["pins"]:
        used[board["pins"][role]] = "the board's '%s'" % role
    bus = board["buses"].get("i2c0") or {}
    for k in ("sda", "scl"):
        if k in bus:
            used[bus[k]] = "i2c0 %s (the solenoid board)" % k
    for role in pins:
        used[pins[role]] = "pins '%s'" % role
    nopull = _NO_PULL.get(board["chip"], ())
    if pin not in board["valid_pins"]:
        what = "which %s does not have" % board["chip"]
    elif pin in used:
        what = "which %s already uses" % used[pin]
    elif pin in nopull:
        what = "an input-only pin of the %s without the pull-up the switch needs" % board["chip"]
    elif pin == _BOOT.get(board["chip"]):
        what = "the boot strapping pin: a closed switch would start the %s's ROM bootloader at " \
               "reset" % board["chip"]
    else:
        return
    free = [str(p) for p in board["valid_pins"]
            if p not in used and p not in nopull and p != _BOOT.get(board["chip"])]
    raise ConfigError("machine config: 'yarn_break_pin' is on pin %d, %s; expected a free pin of "
                      "%s: %s" % (pin, what, board["name"], ", ".join(free)))


class YarnSwitch:
    def __init__(self, pin, num, debounce_ms, flag, sel):
        self.pin = pin  # an input with its pull-up
        self.num = num
        self.debounce = debounce_ms
        self.flag = flag  # ThreadSafeFlag: the watch task waits on it
        self.sel = sel  # the needle selection, halted when the yarn breaks
        self.open = pin.value()
        self.t = time.ticks_ms()  # when the level last changed
        self.breaks = 0  # since boot
        self.told = 0  # breaks reported
        self.row = 0  # row and needle of the last break
        self.at = None
        sel.yarn = self
        pin.irq(handler=self._edge, trigger=pin.IRQ_RISING | pin.IRQ_FALLING)

    # --- IRQ context: small ints, no allocation ---

    def _edge(self, pin):
        v = pin.value()
        if v == self.open:
            return
        self.open = v
        self.t = time.ticks_ms()
        if v:
            self.flag.set()

    def broken(self):
        """Open for debounce_ms or longer."""
        return self.open and time.ticks_diff(time.ticks_ms(), self.t) >= self.debounce

    def halt(self):
        """The yarn broke (IRQ or task context): every solenoid off at once, the selector's
        crossing under way dropped (its row is not counted and is knitted again), nothing
        selected until resume()."""
        sel = self.sel
        if not sel.active or sel.paused:
            return
        sel.paused = True
        sel.cdir = 0
        sel.bank.write(0)
        self.row = sel.head
        self.at = sel.enc.edge() if sel.ends.known else None
        self.breaks += 1
        sel.wake.set()

    # --- task context ---

    def mended(self):
        return not self.open and time.ticks_diff(time.ticks_ms(), self.t) >= self.debounce

    async def watch(self):
        import asyncio

        while True:
            await self.flag.wait()
            while self.open:
                left = self.debounce - time.ticks_diff(time.ticks_ms(), self.t)
                if left <= 0:
                    self.halt()
                    break
                await asyncio.sleep_ms(left)

    def ready(self):
        """Refuse a job while the switch is open."""
        if self.open:
            raise ValueError("the yarn switch on pin %d is open: the yarn is broken or out; "
                             "thread it through the tensioner (the switch closes) first" % self.num)

    def resume(self, args):
        sel = self.sel
        if not sel.paused:
            raise ValueError("nothing to resume: %s" % (
                "the job is knitting" if sel.active else "no knitting job, send knit_start"))
        if not self.mended():
            raise ValueError("the yarn switch on pin %d is still open: thread the yarn through "
                             "the tensioner (the switch closes), then send resume" % self.num)
        sel.paused = False  # its crossing was dropped: the next whole crossing knits the row
        return {"row": sel.head % sel.nrows, "repeat": sel.head // sel.nrows}

    def events(self, emit):
        sel = self.sel
        if self.breaks != self.told:
            self.told = self.breaks
            emit({"event": "yarn_break", "row": self.row % sel.nrows, "needle": self.at})

    def report(self, out):
        out["yarn"] = "broken" if self.open else "ok"
        out["yarn_breaks"] = self.breaks
