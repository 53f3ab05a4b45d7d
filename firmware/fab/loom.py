# The weaving side of the dobby loom: the lift plan (one shaft bitmask per pick, sent in chunks by
# the host), where the weaver is in it, the pedal, and the shed. fab.machines.loom builds it from
# the config; the solenoids are a fab.drivers.solenoids.Bank.
#
# A press of the pedal opens the next shed: pick + 1 weaving, pick - 1 unweaving, wrapping round
# the pattern (a wrap counts a repeat). `goto` chooses the pick the next press opens, so that a
# weaver resumes anywhere after a reset. A shed dropped by the loom itself (a coil held too long,
# a coil too hot, `stop`) is opened again by the next press instead of the next pick: a skipped
# pick spoils the cloth, an extra press costs nothing.
import time

import asyncio
from micropython import const

_POLL_MS = const(20)  # the hold limit, shed settling and the Séguin UART are served this often
CHUNK = const(64)  # masks per `picks` command at most: a command line holds 1024 bytes


class Loom:
    def __init__(self, cfg, bank, pedal, dobby=None, uart=None):
        self.cfg = cfg
        self.bank = bank
        self.pedal = pedal  # input pin, read once its level has held still
        self.dobby = dobby  # a fab.seguin.Dobby when a weaving server picks the shafts
        self.uart = uart  # where the dobby talks, unless it has the USB link (self.con)
        self.con = None
        # One 32-bit mask per pick, little-endian, allocated once (a bytearray: no temporary copy
        # at boot, as array("I", bytes(n)) would make); none when a weaving server has the pattern.
        self.plan = bytearray(0 if dobby else 4 * cfg["max_picks"])
        self.size = len(self.plan) // 4
        self.name = ""
        self.shafts = 0  # shafts the pattern uses
        self.picks = 0  # picks in the pattern
        self.loaded = 0  # picks received so far, counted from pick 0
        self.pick = -1  # the pick whose shed is open (or was last), -1 for none yet
        self.jump = -1  # the pick the next press opens after a goto, -1 for none
        self.forward = True
        self.woven = 0  # picks in the cloth: +1 per shed opened weaving, -1 unweaving
        self.repeats = 0
        self.made = 0  # production since boot: the most picks the cloth has grown by
        self._net = 0  # picks woven minus picks unwoven since boot
        self.presses = 0
        self.shed = "closed"  # closed, moving, open
        self.reopen = False
        self.note = ""  # why the last press opened nothing, for status
        self.want = 0  # the mask of the last lift asked for
        self.active = cfg["pedal_active"]
        self._settle_at = 0
        self._flag = asyncio.ThreadSafeFlag()
        self._edge_t = 0

    # --- the plan ---

    def pattern(self, name, shafts, picks):
        n = self.bank.n
        if self.dobby:
            raise ValueError("this loom takes its picks from a Séguin weaving server (config "
                             "'seguin' is '%s'); set it to 'off' to load a plan"
                             % self.cfg["seguin"])
        if shafts > n:
            raise ValueError("pattern '%s' needs %d shafts, but this loom has %d (config "
                             "'shafts'); nothing was changed" % (name, shafts, n))
        if shafts < 1 or picks < 1 or picks > self.size:
            raise ValueError("pattern '%s': expected shafts 1 to %d and picks 1 to %d (config "
                             "'max_picks'), got %d and %d" % (name, n, self.size, shafts, picks))
        self.close("")
        self.reopen = False
        self.name, self.shafts, self.picks, self.loaded = name, shafts, picks, 0
        self.pick, self.jump, self.woven, self.repeats = -1, -1, 0, 0

    def load(self, start, masks):
        if not self.picks:
            raise ValueError("no pattern: send `pattern` (name, shafts, picks) first")
        if not masks or len(masks) > CHUNK:
            raise ValueError("picks takes 1 to %d masks at a time, got %d" % (CHUNK, len(masks)))
        if start < 0 or start > self.loaded or start + len(masks) > self.picks:
            raise ValueError("picks %d to %d do not fit: pattern '%s' has %d picks, %d loaded; "
                             "expected start 0 to %d" % (start, start + len(masks) - 1, self.name,
                                                         self.picks, self.loaded, self.loaded))
        top = 1 << self.shafts
        for i in range(len(masks)):  # every mask checked before one is stored
            m = masks[i]
            if isinstance(m, bool) or not isinstance(m, int) or m < 0 or m >= top:
                raise ValueError("pick %d: mask %s is not a whole number from 0 to %d (pattern "
                                 "'%s' has %d shafts)" % (start + i, m, top - 1, self.name,
                                                          self.shafts))
        b = self.plan
        for i in range(len(masks)):
            m, j = masks[i], 4 * (start + i)
            b[j], b[j + 1], b[j + 2], b[j + 3] = m & 255, (m >> 8) & 255, (m >> 16) & 255, m >> 24
        self.loaded = max(self.loaded, start + len(masks))

    def goto(self, pick, repeat=None, woven=None):
        if not self.picks:
            raise ValueError("no pattern: send `pattern` (name, shafts, picks) first")
        if not 0 <= pick < self.picks:
            raise ValueError("goto pick %d: expected 0 to %d (pattern '%s' has %d picks)"
                             % (pick, self.picks - 1, self.name, self.picks))
        for k, v in (("repeat", repeat), ("woven", woven)):
            if v is not None and v < 0:
                raise ValueError("goto: '%s' must be 0 or more, got %d" % (k, v))
        self.jump = pick
        self.reopen = False
        if repeat is not None:
            self.repeats = repeat
        if woven is not None:
            self.woven = woven

    def set_direction(self, forward):
        self.forward = forward
        if self.dobby:
            self.dobby.set_direction(forward)
            self.flush()

    def next_pick(self):
        if self.jump >= 0:
            return self.jump
        if self.pick < 0 or not self.picks:
            return 0
        return (self.pick + (1 if self.forward else -1)) % self.picks

    # --- weaving ---

    def press(self):
        """What a press of the pedal does."""
        self.presses += 1
        if self.reopen and not self.bank.mask:
            self.lift(self.want)  # the shed the loom dropped, again
            return
        if self.dobby:
            self.dobby.want_pick()  # the weaving server answers with the shafts
            self.flush()
            return
        if not self.picks or self.loaded < self.picks:
            self.note = "no pattern loaded (%d of %d picks): the pedal does nothing" % (
                self.loaded, self.picks)
            return
        p = self.next_pick()
        if self.jump < 0 and self.pick >= 0:
            if self.forward and p == 0:
                self.repeats += 1
            elif not self.forward and p == self.picks - 1 and self.repeats:
                self.repeats -= 1
        self.woven = self.woven + 1 if self.forward else max(0, self.woven - 1)
        self._count()
        self.pick, self.jump = p, -1
        # The weaver is at pick p now, even if a hot coil keeps its shed shut: the next press
        # then opens p (reopen), not p + 1.
        b, j = self.plan, 4 * p
        self.lift(b[j] | b[j + 1] << 8 | b[j + 2] << 16 | b[j + 3] << 24)

    def _count(self):
        # Unweaving takes picks out of the cloth; weaving them again must not count them twice.
        if self.forward:
            self._net += 1
            if self._net > self.made:
                self.made = self._net
        else:
            self._net -= 1

    def lift(self, mask):
        self.want = mask
        try:
            self.bank.set(mask)
        except ValueError as e:  # a coil too hot: nothing lifts until it has cooled
            self.close(str(e))
            self.reopen = True
            return False
        self.reopen = False
        self.note = ""
        self.shed = "moving"
        self._settle_at = time.ticks_add(time.ticks_ms(), self.cfg["settle_ms"])
        if self.dobby:
            self.dobby.set_error(False)
            self.dobby.moved()
            self.flush()
        return True

    def close(self, why):
        self.bank.release()
        self.shed = "closed"
        self.note = why
        if why and self.dobby:
            self.dobby.set_error(True)
            self.flush()

    def drop(self):
        """Every shaft down at once (stop, fault); the next press opens this shed again."""
        if self.bank.mask:
            self.reopen = True
        self.shed = "closed"
        self.bank.safe()

    # --- the pedal: an IRQ notes the time of each edge, a task reads the level once it held ---

    def edge(self, pin):
        # IRQ handler: no allocation (ticks_ms is a small int, set() allocates nothing).
        self._edge_t = time.ticks_ms()
        self._flag.set()

    async def pedal_task(self):
        db = self.cfg["debounce_ms"]
        down = False
        while True:
            await self._flag.wait()
            # A pedal switch bounces for some ms on make and on break: read the level only once
            # no edge has come for debounce_ms.
            while True:
                await asyncio.sleep_ms(db)
                if time.ticks_diff(time.ticks_ms(), self._edge_t) >= db:
                    break
            now = self.pedal.value() == self.active
            if now and not down:
                self.press()
            down = now

    async def tick_task(self):
        while True:
            await asyncio.sleep_ms(_POLL_MS)
            held = self.bank.tick()
            if held:
                self.reopen = True
                self.close("shaft %d was held up for hold_max_s %d s, so the shed was dropped: "
                           "press the pedal to open it again" % (held, self.cfg["hold_max_s"]))
            if self.shed == "moving" and time.ticks_diff(time.ticks_ms(), self._settle_at) >= 0:
                self.shed = "open"
                if self.dobby:
                    self.dobby.settled(self.bank.mask)
                    self.flush()
            u = self.uart
            if u is not None and u.any():
                self.serve(u.read())

    # --- the Séguin protocol ---

    def serve(self, data):
        """Bytes from the weaving server."""
        for a in self.dobby.feed(data):
            if a[0] == "lift":
                self._count()
                self.lift(a[1])
            else:
                self.forward = a[1]
        self.flush()

    def flush(self):
        text = self.dobby.take()
        if not text:
            return
        if self.con is not None:
            self.con.write(text)
        elif self.uart is not None:
            self.uart.write(text.encode())

    async def usb_task(self, con):
        self.con = con
        self.dobby.hello()
        self.flush()
        while True:
            data = await con.reader.read(64)
            if data:
                self.serve(data)

    def status(self):
        s = self.bank.status()
        s.update({"pattern": self.name, "shafts": self.shafts, "picks": self.picks,
                  "loaded": self.loaded, "pick": self.pick, "next_pick": self.next_pick(),
                  "direction": "weave" if self.forward else "unweave", "shed": self.shed,
                  "woven": self.woven, "made": self.made,
                  "length_cm": round(self.woven / self.cfg["picks_per_cm"], 2),
                  "repeats": self.repeats, "presses": self.presses, "note": self.note})
        if self.dobby:
            s["seguin_errors"] = self.dobby.errors
            s["seguin_error"] = self.dobby.last_error
        return s
