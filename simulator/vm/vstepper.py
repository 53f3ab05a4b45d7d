# A stepper motor behind a step/dir driver, moving a carriage between two frame stops, with
# endstop switches on the way. Position comes from step blocks analytically (pulse j of a block
# lands at t0 + j*interval), so hours of 10 kHz stepping cost one event per block, not per pulse.
#
# Steps are lost, as on a real motor, when the driver is disabled, when a block's rate is above
# what the motor can pull (max_rate), when the rate jumps by more than pull_in between blocks
# (too much acceleration), and when the carriage is against a frame stop.
import vclock

_SLOTS = 4  # blocks the step generator queues, as the RP2040 PIO FIFO does


class Motor:
    def __init__(self, step, dir, enable, pos=0, lo=-(1 << 40), hi=1 << 40, max_rate=40000,
                 pull_in=4000, en_active=0, invert=False):
        self.step, self.dir, self.enable = step, dir, enable  # PinStates
        self.pos = pos  # true position in steps
        self.lo, self.hi = lo, hi
        self.max_rate, self.pull_in = max_rate, pull_in
        self.en_active, self.invert = en_active, invert
        self.lost = 0
        self.pulses = 0  # every pulse ever emitted
        self.stalls = 0
        self.blocks = []
        self.cur = None  # [count, interval, t0, sign, moves, p0]
        self.rate = 0  # the motor's step rate now, 0 at rest or stalled
        self.switches = []  # [PinState, at, side, active]
        self._evs = []
        self.emitted = 0  # pulses since the generator's zero()

    def add_switch(self, pin, at, side, active=0):
        """A switch on `pin` pressed when pos <= at (side -1) or pos >= at (side +1)."""
        self.switches.append([pin, at, side, active])
        self._sync_switches()

    def _sync_switches(self):
        p = self.position()
        for sw in self.switches:
            pressed = (p <= sw[1]) if sw[2] < 0 else (p >= sw[1])
            sw[0].set_ext(sw[3] if pressed else 1 - sw[3])

    def _done_at(self, t):
        c = self.cur
        if c is None or t < c[2]:
            return 0
        return min(c[0], (t - c[2]) // c[1] + 1)

    def position(self):
        c = self.cur
        if c is None or not c[4]:
            return self.pos
        p = c[5] + c[3] * self._done_at(vclock.now)
        return self.lo if p < self.lo else (self.hi if p > self.hi else p)

    def push(self, count, interval):
        self.blocks.append((count, max(1, interval)))
        if self.cur is None:
            self._start(vclock.now, False)

    def _start(self, t, chained):
        count, interval = self.blocks.pop(0)
        rate = 1000000 // interval
        sign = 1 if self.dir.read() else -1
        if self.invert:
            sign = -sign
        enabled = self.enable is None or self.enable.read() == self.en_active
        prev = self.rate if chained else 0
        moves = enabled and rate <= self.max_rate and abs(rate - prev) <= self.pull_in
        if enabled and not moves:
            self.stalls += 1
        self.rate = rate if moves else 0
        self.cur = [count, interval, t, sign, moves, self.pos]
        self._evs = [vclock.at(t + count * interval, self._end)]
        if moves:
            for sw in self.switches:
                k = self._crossing(sw, sign, count)
                if k:
                    self._evs.append(vclock.at(t + (k - 1) * interval, self._switch))

    def _crossing(self, sw, sign, count):
        # Which pulse (1-based) of the block flips this switch, 0 if none does.
        at, side, p0 = sw[1], sw[2], self.pos
        if side < 0:
            k = (p0 - at) if sign < 0 else (at - p0 + 1)
        else:
            k = (at - p0) if sign > 0 else (p0 - at + 1)
        return k if 1 <= k <= count else 0

    def _switch(self, _):
        self._sync_switches()

    def _settle(self, done):
        c = self.cur
        if c[4]:
            want = c[5] + c[3] * done
            got = self.lo if want < self.lo else (self.hi if want > self.hi else want)
            self.lost += abs(want - got)
            self.pos = got
        else:
            self.lost += done
        self.pulses += done
        self.emitted += done
        self.cur = None

    def _end(self, _):
        self._settle(self.cur[0])
        if self.blocks:
            self._start(vclock.now, True)
        else:
            self.rate = 0
        self._sync_switches()

    def stop(self):
        for e in self._evs:
            vclock.cancel(e)
        self._evs = []
        if self.cur is not None:
            self._settle(self._done_at(vclock.now))
        self.blocks = []
        self.rate = 0
        self._sync_switches()

    def status(self):
        return {"pos": self.position(), "lost": self.lost, "pulses": self.pulses,
                "stalls": self.stalls, "rate": self.rate}


class StepGen:
    """The firmware's view: the same interface as fab.hal_pio.StepGen."""

    def __init__(self, motor):
        self.m = motor

    def push(self, count, interval_us):
        self.m.push(count, interval_us)

    def free(self):
        return _SLOTS - len(self.m.blocks)

    def idle(self):
        return self.m.cur is None and not self.m.blocks

    def count(self):
        m = self.m
        return m.emitted + (m._done_at(vclock.now) if m.cur is not None else 0)

    def zero(self):
        m = self.m
        m.emitted = -(m._done_at(vclock.now) if m.cur is not None else 0)

    def stop(self):
        self.m.stop()
