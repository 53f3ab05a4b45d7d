# End-of-line hall sensors of a Brother electronic knitting machine, read through the ADC.
#
# Each sensor sits at a known needle position at one end of the bed; the carriage carries a
# magnet whose pole tells its type (AYAB encoders.cpp): a knit carriage (K) drives the sensor
# output above its idle level, a lace carriage (L) below it, and a garter carriage (G) has two
# magnets of opposite poles a few needles apart. AYAB's thresholds are 200 and 600 counts of a
# 10-bit ADC at 5 V (0.98 V and 2.93 V); behind the 2:3 divider that brings the 5 V signal into a
# 3.3 V pin, they become the defaults hall_low = 0.65 V and hall_high = 1.95 V.
#
# Unlike AYAB, which re-zeroes at the first (or last) count in front of the sensor, the carriage
# position is taken from the CENTRE of the magnet's pass: the counts where the sensor first and
# last read active are symmetric about the sensor, whatever the magnet's strength or the
# thresholds, so the zero does not move with a weak magnet or a drifting supply.
#
# Everything here runs in the encoder's IRQ: no allocation, small ints only.
from micropython import const

K = const(1)
L = const(2)
G = const(3)
NAMES = (None, "K", "L", "G")


class EndLine:
    """One sensor: polarity now, and the magnet passes it has seen."""

    def __init__(self, adc, at, low_u16, high_u16):
        self.adc = adc
        self.at = at  # needle position of the sensor
        self.low = low_u16
        self.high = high_u16
        self.level = 0  # +1 north pole in front (K), -1 south pole (L), 0 nothing
        self._pol = 0  # polarity of the pass under way, 0 when none
        self._first = 0
        self._last = 0
        self._dir = 0
        # the last finished pass: twice its centre (in counts), its polarity and direction
        self.centre2 = 0
        self.pol = 0
        self.pdir = 0

    def read(self):
        v = self.adc.read_u16()
        if v >= self.high:
            return 1
        if v <= self.low:
            return -1
        return 0

    def update(self, e, d):
        """Called on every count with the edge position e and direction d; True when a magnet
        has just finished passing (its centre is then in centre2/2)."""
        lvl = self.read()
        self.level = lvl
        if lvl != 0 and lvl == self._pol and d == self._dir:
            self._last = e
            return False
        done = self._pol != 0 and d == self._dir  # the pass ended, or the pole changed
        if done:
            self.centre2 = self._first + self._last
            self.pol = self._pol
            self.pdir = self._dir
        # a pass that turned back in front of the sensor is dropped: its centre means nothing
        self._pol = lvl
        self._first = e
        self._last = e
        self._dir = d
        return done


class EndLines:
    """Both sensors with the encoder: the carriage's true position, type and belt phase."""

    def __init__(self, enc, left, right, belt_period=16, garter_span=16, only_k=False):
        self.enc = enc
        self.left = left
        self.right = right
        self.period = belt_period  # needles per belt-phase cycle (16 solenoids), 0 = no belt
        self.span2 = 2 * garter_span
        self.only_k = only_k  # KH-270: AYAB treats every carriage as K
        self.known = False  # position trusted (a magnet has passed a sensor since boot)
        self.carriage = 0  # K, L, G or 0 unknown
        self.shift = 0  # belt shift in needles: 0 (regular) or period // 2 (shifted)
        self.belt = 0  # 1 regular, 2 shifted, 0 unknown
        self.zeroes = 0
        self.error = 0  # last correction of a known position, in needles
        self.worst = 0  # largest such correction since boot
        self.fixes = 0  # corrections of 2 needles or more: counts were lost or gained
        self.changed = False  # type or belt changed: the machine reports it
        self.span = garter_span
        self._pend = False  # a lone magnet passed: a second one may yet make it a pair
        self._pend_e = 0
        self._rep_c = 0  # carriage and belt last reported
        self._rep_b = 0
        self._last_at = -32768  # needle of the sensor the previous magnet passed
        self._last_c2 = 0
        self._last_pol = 0
        self._last_dir = 0
        self._last_delta = 0
        self._was_known = False

    def update(self):
        """On every count; True when the position was just set from a sensor."""
        enc = self.enc
        e = enc.edge()
        d = enc.dir
        hit = False
        if self.left.update(e, d):
            hit = self._passed(self.left, e)
        if self.right.update(e, d):
            hit = self._passed(self.right, e) or hit
        if self._pend and abs(enc.edge() - self._pend_e) > self.span:
            self._settle()
        return hit

    def _settle(self):
        # Report the type and belt once no second magnet can come: a garter carriage's first
        # magnet alone looks like a K or an L.
        self._pend = False
        if self.carriage != self._rep_c or self.belt != self._rep_b:
            self._rep_c = self.carriage
            self._rep_b = self.belt
            self.changed = True

    def _passed(self, s, e):
        c2 = s.centre2
        kind = K if s.pol > 0 else L
        sep = abs(c2 - self._last_c2)
        garter = (self._last_at == s.at and s.pdir == self._last_dir and s.pol != self._last_pol
                  and 8 <= sep <= self.span2)
        if garter:
            # two magnets of opposite poles (a garter carriage, or the KH-270's pair): the
            # carriage's centre is between them; the first one zeroed as if it were alone
            kind = G
            delta = (2 * s.at - (c2 + self._last_c2) // 2) // 2
            total = self._last_delta + delta
            trusted = self._was_known
        else:
            delta = (2 * s.at - c2) // 2
            total = delta
            # a lone magnet of a two-magnet carriage is half a pair: its error is not yet known
            trusted = self.known and self.carriage != G and not self.only_k
        if self.only_k:
            kind = K
        enc = self.enc
        enc.pos += delta
        if trusted:
            self.error = total
            if abs(total) > abs(self.worst):
                self.worst = total
            if abs(total) >= 2:
                self.fixes += 1
        if not garter:
            self._was_known = self.known
        self.known = True
        self.zeroes += 1
        self._last_at = s.at
        self._last_c2 = c2 + 2 * delta
        self._last_delta = delta
        self._last_pol = s.pol
        self._last_dir = s.pdir
        belt = 0
        shift = 0
        if self.period:
            # C is a square wave fixed to the belt, half a period high; where it is at a known
            # position tells which of the two ways the belt is coupled to the carriage.
            half = self.period // 2
            high = ((e + delta) % self.period) < half
            shift = 0 if (enc.phase() == 1) == high else half
            belt = 1 if shift == 0 else 2
        self.carriage = kind
        self.shift = shift
        self.belt = belt
        if garter:
            self._settle()
        else:
            self._pend = True
            self._pend_e = e + delta
        return True
