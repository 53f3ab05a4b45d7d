# A bank of up to 16 solenoids driven through one 16-bit port (an MCP23017 and a ULN2803-class
# sink driver), with a heat limit: needle-selection solenoids are rated for short pulses and
# overheat when held (the KH-9xx's are wound for a few hundred ms at a time).
#
# The limit is a leaky bucket per solenoid, in units of ms x 100: while on it fills at 100 per
# ms, it always drains at max_duty per ms, and at
#     limit = max_on_ms * (100 - max_duty)
# the solenoid is forced off and blocked until the bucket has drained to half. So a solenoid
# held on from cold is released after exactly max_on_ms, and over a long run none is on more
# than max_duty percent of the time.
#
# write() runs in the encoder's IRQ and does not allocate; cool() runs in task context.
import time


class SolenoidBank:
    def __init__(self, port, count=16, max_on_ms=1000, max_duty=50):
        self.port = port  # write(word16): bit n drives solenoid output n
        self.count = count
        self.limit = max_on_ms * (100 - max_duty)
        self.duty = max_duty
        self.word = 0  # what is driven now
        self.want = 0  # what was asked for: driven again once the blocked ones have cooled
        self._busy = False
        self.blocked = 0  # solenoids held off by the heat limit
        self.overheats = 0  # solenoids forced off since boot
        self.errors = 0  # failed writes (the port's OSError)
        self._since = [0] * 16  # ticks_ms when each one last turned on (or was last charged)
        self._heat = [0] * 16
        self._t = time.ticks_ms()
        port.write(0)

    def write(self, word):
        """Drive these solenoids (less the blocked ones); the others off. From the IRQ or a task:
        a task's write that an IRQ interrupts leaves the IRQ's word to be applied by the task."""
        self.want = word
        if not self._busy:
            self._apply(word)

    def _write_task(self):
        # Task context: the encoder IRQ may run between any two lines; see write().
        while True:
            self._busy = True
            w = self.want
            self._apply(w)
            self._busy = False
            if self.want == w:
                return

    def _apply(self, word):
        word &= ~self.blocked
        ch = word ^ self.word
        if not ch:
            return
        now = time.ticks_ms()
        heat = self._heat
        since = self._since
        i = 0
        while ch:
            if ch & 1:
                if word & (1 << i):
                    since[i] = now
                else:
                    heat[i] += time.ticks_diff(now, since[i]) * 100
            ch >>= 1
            i += 1
        self.word = word
        try:
            self.port.write(word)
        except OSError:
            self.errors += 1

    def release(self):
        self.want = 0
        self._write_task()

    def cool(self):
        """Account heat up to now; force off and block what is too hot. Returns the mask of
        solenoids newly blocked (0 when none)."""
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self._t)
        self._t = now
        leak = dt * self.duty
        heat = self._heat
        since = self._since
        hot = 0
        cold = 0
        was = self.blocked
        for i in range(self.count):
            bit = 1 << i
            if self.word & bit:
                heat[i] += time.ticks_diff(now, since[i]) * 100
                since[i] = now
            h = heat[i] - leak
            if h < 0:
                h = 0
            elif h > 2 * self.limit:
                h = 2 * self.limit  # a stalled task must not leave a bucket that never drains
            heat[i] = h
            if h >= self.limit and not self.blocked & bit:
                hot |= bit
            elif h <= self.limit // 2 and self.blocked & bit:
                cold |= bit
        if hot:
            self.blocked |= hot
            n = hot
            while n:
                self.overheats += n & 1
                n >>= 1
        self.blocked &= ~cold
        if hot or cold:
            self._write_task()  # masks the hot ones off, gives the cooled ones back
        return self.blocked & ~was

    def heat(self, i):
        """Solenoid i's bucket, in percent of the limit."""
        return self._heat[i] * 100 // self.limit if self.limit else 0
