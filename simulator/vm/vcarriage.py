# The bed and carriage of a Brother electronic knitting machine, pushed by a simulated knitter.
#
# The carriage moves in straight segments at a constant speed. Its encoder is modelled edge by
# edge, one vclock event per quarter needle: A is high over the first half of each needle pitch,
# B over the quarter either side of the needle, so A rises with B high moving right and falls with
# B high moving left. C, the belt phase, is a square wave fixed to the belt: high for 8 needles of
# every 16, shifted by 8 when the belt is coupled the other way. A pass of 250 needles is a
# thousand events, so a pattern of rows costs milliseconds.
#
# The end-of-line hall sensors are analog: their voltage is worked out from the carriage's
# position whenever the ADC is read (no events). Each magnet gives a triangular bump 4 needles
# wide either side of the sensor, up for a north pole (K carriage), down for a south pole (L).
#
# Needle selection: needle n is activated when the carriage's activation point, `lead` needles
# behind its centre, passes n + 1/2. At that instant the model records whether the solenoid
# that selects n, (n + belt) mod nsol on output out0 + that, is energised: that is the needle
# selected, whatever the firmware believes.
#
# The yarn (Yarn) runs through the tensioner on the mast to the carriage's feeder; its break
# switch is a normally closed contact to GND that opens, with contact bounce, when the yarn
# breaks or runs out. Tests break it now, or when the carriage's centre reaches a needle.
import math

import vclock

IDLE_V = 1.3  # sensor output at rest, behind the 2:3 divider (about 2 V at the 5 V sensor)
BUMP_V = 1.5  # swing of a magnet right in front of the sensor
BUMP_W = 4.0  # half-width of the bump, needles
# Contact bounce of the break switch, in us after it begins to open or close: the level flips at
# each of these, new, old, new..., and holds the new one after the last (the tension arm springs
# up when the yarn goes slack; a few ms, as for any snap-action switch).
_BOUNCE_US = (0, 400, 900, 1500, 2500)


class Pass:
    """One movement in one direction: the selection of every needle the carriage activated."""

    def __init__(self, dir, needles):
        self.dir = dir
        self.sel = bytearray(b"\x02" * needles)  # 2 = not passed, else 0/1

    def row(self):
        """'0'/'1' per needle, left to right ('-' where the activation point did not pass)."""
        return "".join(["01-"[v] for v in self.sel])

    def complete(self):
        """Every needle of the bed was passed."""
        for v in self.sel:
            if v == 2:
                return False
        return True


class Carriage:
    def __init__(self, geo, chip, a, b, c, kind="K", belt=0, start=None, stuck=None,
                 magnet=1.0, rng=None):
        self.geo = geo
        self.needles = geo["needles"]
        self.nsol = geo["solenoids"]
        self.out0 = geo["out0"]
        self.pitch = geo["pitch_mm"]
        self.chip = chip  # the MCP23017 model the solenoids hang on
        self.a, self.b, self.c = a, b, c  # PinStates, or None when not wired
        self.kind = kind
        self.lead = geo["lead"].get(kind)  # None: this carriage selects nothing
        self.magnets = geo["magnets"][kind]  # (offset from centre, pole)
        self.belt = belt  # 0 or 8
        self.stuck = stuck or {}  # solenoid -> level it is stuck at
        self.strength = magnet
        self.rng = rng
        lead = max([v for v in geo["lead"].values() if v is not None])
        self.park_left = min(geo["left"], 0) - lead - 12
        self.park_right = max(geo["right"], self.needles - 1) + lead + 12
        self.x = float(self.park_left if start is None else start)
        self.t = vclock.now
        self.v = 0.0  # needles per microsecond, signed
        self.r = math.floor(self.x * 4)  # quarter-needle region the carriage is in
        self.target = self.x
        self.plan = []  # (target, speed in needles/us, direction)
        self.dir = 0  # of the last movement
        self.passes = []
        self.edges = 0
        self._ev = None
        self.yarn = None  # the Yarn, once wired
        self._levels()

    # --- the knitter's hands ---

    def move_to(self, needle, speed_mm_s=300.0):
        """Push the carriage until its centre is over `needle` (any float, beyond the bed too)."""
        if speed_mm_s <= 0:
            raise ValueError("speed_mm_s must be above 0")
        last = self.plan[-1][0] if self.plan else (self.target if self.v else self.x)
        d = 1 if needle > last else (-1 if needle < last else 0)
        self.plan.append((float(needle), speed_mm_s / self.pitch / 1000000.0, d))
        if self.v == 0.0 and self._ev is None:
            self._next()
        return self.eta()

    def push(self, rows=1, speed_mm_s=300.0):
        """Push the carriage across the bed `rows` times and returns the virtual seconds until it
        is at rest. A carriage past one end sensor goes to past the other; one stopped between
        them goes on the way it was going (the knitter finishes the row)."""
        if self.plan:
            end, d = self.plan[-1][0], self.plan[-1][2]
        else:
            end, d = (self.target, self.dir) if self.v else (self.x, self.dir)
        for _ in range(rows):
            if d and self.geo["left"] < end < self.geo["right"]:
                end = self.park_right if d > 0 else self.park_left
            else:
                end = self.park_right if end < (self.park_left + self.park_right) / 2 \
                    else self.park_left
            d = 0
            self.move_to(end, speed_mm_s)
        return self.eta()

    def slip(self, needles):
        """Move the carriage `needles` (a whole number) without a single encoder edge, as when
        counts are lost: the firmware's position is then off until a sensor puts it right."""
        if self.moving():
            raise ValueError("slip() is for a carriage at rest")
        self.x = self.position() + needles
        self.t = vclock.now
        self.r += 4 * needles  # A and B repeat every needle: their levels stay as they are

    def eta(self):
        """Virtual seconds until every planned move is done."""
        x = self.position()
        t = 0.0
        if self.v:
            t += abs(self.target - x) / abs(self.v)
            x = self.target
        for target, speed, _ in self.plan:
            t += abs(target - x) / speed
            x = target
        return t / 1000000.0

    def position(self):
        if self.v == 0.0:
            return self.x
        x = self.x + self.v * (vclock.now - self.t)
        return min(x, self.target) if self.v > 0 else max(x, self.target)

    def moving(self):
        return self.v != 0.0 or bool(self.plan)

    # --- what the sensors see ---

    def hall(self, at):
        x = self.position()
        v = IDLE_V
        for off, pole in self.magnets:
            d = abs(x + off - at)
            if d < BUMP_W:
                v += pole * BUMP_V * self.strength * (1.0 - d / BUMP_W)
        if self.rng is not None:
            v += self.rng.uniform(-0.01, 0.01)
        return 0.0 if v < 0.0 else (3.3 if v > 3.3 else v)

    def hall_left(self):
        return self.hall(self.geo["left"])

    def hall_right(self):
        return self.hall(self.geo["right"])

    def energised(self, s):
        if s in self.stuck:
            return self.stuck[s]
        return (self.chip.outputs() >> (s + self.out0)) & 1

    def solenoid_of(self, n):
        return (n + self.belt) % self.nsol

    # --- motion, one quarter needle at a time ---

    def _next(self):
        self._ev = None
        if not self.plan:
            self.v = 0.0
            return
        target, speed, _ = self.plan.pop(0)
        x = self.position()
        self.x, self.t = x, vclock.now
        if target == x:
            self._next()
            return
        d = 1 if target > x else -1
        self.v = d * speed
        self.dir = d
        self.target = target
        if not self.passes or self.passes[-1].dir != d:
            self.passes.append(Pass(d, self.needles))
        self._schedule()

    def _schedule(self):
        q = self.r + 1 if self.v > 0 else self.r  # the next quarter boundary ahead
        xq = q / 4.0
        if (self.v > 0 and xq > self.target) or (self.v < 0 and xq < self.target):
            dt = (self.target - self.x) / self.v
            self._ev = vclock.at(self.t + int(dt + 0.5), self._arrive)
        else:
            dt = (xq - self.x) / self.v
            self._ev = vclock.at(self.t + int(dt + 0.5), self._cross, q)

    def _arrive(self, _):
        self.x, self.t = self.target, vclock.now
        self.v = 0.0
        self._next()

    def _cross(self, q):
        d = 1 if self.v > 0 else -1
        self.x, self.t = q / 4.0, vclock.now
        if q % 4 == 2 and self.lead is not None and self.passes:
            m = q // 4
            n = m - self.lead if d > 0 else m + 1 + self.lead
            if 0 <= n < self.needles:
                self.passes[-1].sel[n] = self.energised(self.solenoid_of(n))
        self.r = q if d > 0 else q - 1
        self.edges += 1
        self._levels()
        y = self.yarn
        if y is not None and y.due is not None and q % 4 == 0:
            y.reached(q // 4, len(self.passes) - 1)  # the centre is over needle q // 4
        self._schedule()

    def _levels(self):
        r = self.r % 4
        if self.c is not None:
            m = (self.r + 2) // 4  # the needle nearest the carriage's centre
            self.c.set_ext(1 if (m + self.belt) % 16 < 8 else 0)
        if self.b is not None:
            self.b.set_ext(1 if r == 3 or r == 0 else 0)
        if self.a is not None:
            self.a.set_ext(1 if r < 2 else 0)  # last: its IRQ sees B and C already settled

    def status(self):
        return {"x": self.position(), "moving": self.moving(), "passes": len(self.passes),
                "edges": self.edges, "kind": self.kind}


class Yarn:
    """The yarn and its break switch on pin `pin` (a PinState, or None when none is wired).

    break_yarn() / mend_yarn() now; break_at(needle, row) when the carriage's centre reaches
    `needle` during pass `row` (its index in Carriage.passes; None: the next time it gets there).
    The switch is closed (pin held low) while the yarn is whole, open (floating: the firmware's
    pull-up reads 1) once it is broken."""

    def __init__(self, pin, bounce=True):
        self.pin = pin
        self.bounce = bounce
        self.broken = False
        self.breaks = 0
        self.broke_us = None  # virtual time of the last break
        self.broke_x = None  # carriage position then
        self.due = None  # (needle, row) of a break to come
        self.car = None
        if pin is not None:
            pin.set_ext(0)

    def break_yarn(self):
        if self.broken:
            return
        self.broken = True
        self.breaks += 1
        self.broke_us = vclock.now
        self.broke_x = self.car.position() if self.car is not None else None
        self.due = None
        self._flip(None)

    def mend_yarn(self):
        if self.broken:
            self.broken = False
            self._flip(0)

    def break_at(self, needle, row=None):
        self.due = (int(needle), row)

    def reached(self, needle, row):
        want, r = self.due
        if needle == want and (r is None or r == row):
            self.break_yarn()

    def _flip(self, level):
        if self.pin is None:
            return
        t = vclock.now
        other = 0 if level is None else None
        for i in range(len(_BOUNCE_US) if self.bounce else 1):
            vclock.at(t + _BOUNCE_US[i], self.pin.set_ext, level if i % 2 == 0 else other)

    def status(self):
        return {"broken": self.broken, "breaks": self.breaks}
