# A bank of solenoids, one per bit of a mask, on GPIO pins, a 74HC595 chain (fab.drivers.shiftreg)
# or MCP23017 expanders (fab.drivers.mcp23017), with the two limits that keep a coil alive:
#
# - hold: the longest a coil may stay energised without a break. A pull solenoid dissipates
#   V^2/R all the time it is on; a loom left with its shed open over lunch must not cook its
#   coils, so past hold_ms the whole bank is released and the owner is told.
# - duty: the share of time a coil may be energised, over a sliding window. Solenoid datasheets
#   rate the coil per duty cycle (a "25 % duty" coil overheats held at 100 %). A lift that would
#   energise a coil already at or above the limit is refused; the owner decides what to do.
#
# On-time is accounted in whole milliseconds from time.ticks_ms() by tick() and at every change;
# the window is two buckets (the previous window weighted by how much of it still overlaps, plus
# the current one), which needs no per-event memory.
import time
from array import array


class PinOutputs:
    """One GPIO per solenoid (through a MOSFET or a ULN2803 channel): bit n drives pins[n]."""

    def __init__(self, pins):
        self.pins = pins

    def write(self, mask):
        for i in range(len(self.pins)):
            self.pins[i].value((mask >> i) & 1)

    def safe(self):
        self.write(0)


class McpOutputs:
    """One or two MCP23017, 16 outputs each: bits 0-15 on the first, 16-31 on the second."""

    def __init__(self, chips):
        self.chips = chips

    def write(self, mask):
        for i in range(len(self.chips)):
            self.chips[i].write((mask >> (16 * i)) & 0xFFFF)

    def safe(self):
        self.write(0)


class Bank:
    def __init__(self, out, n, hold_ms=0, duty_pct=100, window_ms=60000, unit="solenoid"):
        self.out = out  # anything with write(mask) and safe()
        self.n = n
        self.hold_ms = hold_ms  # 0: no limit
        self.duty_pct = duty_pct  # 100: no limit
        self.window_ms = window_ms
        self.unit = unit  # the maker's word for one output, for messages ("shaft")
        self.mask = 0
        self._on = array("i", bytes(4 * n))  # ticks_ms when each coil was last energised
        self._cur = array("i", bytes(4 * n))  # ms energised in the current window
        self._prev = array("i", bytes(4 * n))  # ms energised in the previous window
        self._t = time.ticks_ms()  # on-time is accounted up to here
        self._w0 = self._t  # the current window started here
        self.switches = 0
        self.refused = 0
        self.hold_timeouts = 0
        out.write(0)

    def _account(self, now):
        dt = time.ticks_diff(now, self._t)
        if dt > 0 and self.mask:
            m = self.mask
            i = 0
            while m:
                if m & 1:
                    self._cur[i] += dt
                m >>= 1
                i += 1
        self._t = now
        e = time.ticks_diff(now, self._w0)
        if e >= self.window_ms:
            keep = e < 2 * self.window_ms  # a window with no accounting in it was all off
            for i in range(self.n):
                self._prev[i] = self._cur[i] if keep else 0
                self._cur[i] = 0
            self._w0 = now

    def duty(self, i, now=None):
        """Percent of the last window that coil i (0-based) was energised."""
        if now is None:
            now = time.ticks_ms()
            self._account(now)
        w = self.window_ms
        left = w - time.ticks_diff(now, self._w0)
        if left < 0:
            left = 0
        return (self._prev[i] * left // w + self._cur[i]) * 100 // w

    def set(self, mask):
        """Energise exactly the coils in mask; ValueError (and no change) if a coil is over its
        duty limit."""
        if mask < 0 or mask >> self.n:
            raise ValueError("mask 0x%x has bits above %s %d, the last this bank drives"
                             % (mask, self.unit, self.n))
        now = time.ticks_ms()
        self._account(now)
        if self.duty_pct < 100:
            m = mask
            i = 0
            while m:
                if m & 1:
                    d = self.duty(i, now)
                    if d >= self.duty_pct:
                        self.refused += 1
                        raise ValueError(
                            "%s %d was energised %d%% of the last %d s, at or above duty_max_pct "
                            "%d: let its coil cool" % (self.unit, i + 1, d, self.window_ms // 1000,
                                                       self.duty_pct))
                m >>= 1
                i += 1
        new = mask & ~self.mask
        i = 0
        while new:
            if new & 1:
                self._on[i] = now
            new >>= 1
            i += 1
        self.out.write(mask)
        self.mask = mask
        self.switches += 1

    def release(self):
        """Every coil off."""
        self._account(time.ticks_ms())
        self.out.write(0)
        self.mask = 0

    def safe(self):
        """Every coil off by the quickest path the outputs have (the /OE pin of a 74HC595)."""
        self._account(time.ticks_ms())
        self.mask = 0
        self.out.safe()

    def tick(self):
        """Account on-time and apply the hold limit: returns the 1-based number of a coil that
        was held too long (the whole bank is then released), else 0."""
        now = time.ticks_ms()
        self._account(now)
        if not self.hold_ms or not self.mask:
            return 0
        m = self.mask
        i = 0
        while m:
            if m & 1 and time.ticks_diff(now, self._on[i]) >= self.hold_ms:
                self.hold_timeouts += 1
                self.release()
                return i + 1
            m >>= 1
            i += 1
        return 0

    def status(self):
        now = time.ticks_ms()
        self._account(now)
        hot = 0
        for i in range(self.n):
            d = self.duty(i, now)
            if d > hot:
                hot = d
        return {"energised": self.mask, "duty_pct": hot, "refused": self.refused,
                "hold_timeouts": self.hold_timeouts, "switches": self.switches}
