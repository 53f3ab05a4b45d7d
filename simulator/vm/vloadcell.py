# An HX711 load-cell ADC on two pins, driven by the clock pin's edges (a PinState watcher): each
# PD_SCK rising edge shifts the next bit of the 24-bit result onto DOUT, MSB first; the 25th pulse
# pulls DOUT high until the next conversion is ready, and with the 26th and 27th picks the gain
# of that conversion (25: A/128, 26: B/32, 27: A/64). One clock event per read: the conversion
# that ends 1/sps later. PD_SCK high for more than 60 us powers the chip down; coming back, the
# first result takes the 400 ms settling time (datasheet, output settling time at 10 SPS).
import vclock

_GAIN = {25: 128, 26: 32, 27: 64}
_POWER_DOWN_US = 60
_SETTLE_US = 400000


class HX711:
    def __init__(self, clk, dout, grams, rng, zero=84000, counts_per_g=420.0, noise=20.0, sps=10):
        self.clk, self.dout = clk, dout
        self.grams = grams  # fn() -> what lies on the cell now (g)
        self.rng = rng
        self.zero, self.counts_per_g, self.noise = zero, counts_per_g, noise
        self.conv_us = 1000000 // sps
        self.gain = 128
        self.n = 0  # clock pulses into the current read
        self.word = 0
        self.reads = 0
        self.dead = False  # fault injection: DOUT never goes low (cable off, chip unpowered)
        self._t_rise = 0
        self._ev = None
        self._due = None
        clk.watchers.append(self._clk)
        dout.set_ext(1)
        self._schedule(_SETTLE_US)

    def value(self):
        """The result a conversion gives now, 24-bit two's complement."""
        g = self.grams()
        noise = self.rng.uniform(-1, 1) + self.rng.uniform(-1, 1) + self.rng.uniform(-1, 1)
        v = int((self.zero + self.counts_per_g * g + self.noise * noise) * self.gain / 128)
        return max(-0x800000, min(v, 0x7FFFFF))

    def _schedule(self, us):
        vclock.cancel(self._ev)
        self._due = vclock.now + us
        self._ev = vclock.at(self._due, self._ready)

    def _ready(self, _):
        self._ev = None
        self._due = None
        if not self.dead:
            self.n = 0
            self.dout.set_ext(0)

    def poll(self):
        """Catch up a conversion whose event a board reset dropped from the timeline."""
        if self._due is not None and self._due < vclock.now:
            self._ready(None)

    def _clk(self, level):
        now = vclock.now
        if not level:
            if now - self._t_rise > _POWER_DOWN_US:
                self.n = 0
                self.dout.set_ext(1)
                self._schedule(_SETTLE_US)
            return
        self._t_rise = now
        if self.n == 0:
            if self.dout.ext:  # nothing ready: the pulse shifts nothing out
                return
            self.word = self.value() & 0xFFFFFF
            self.reads += 1
        self.n += 1
        if self.n <= 24:
            self.dout.set_ext((self.word >> (24 - self.n)) & 1)
        elif self.n <= 27:
            self.gain = _GAIN[self.n]
            if self.n == 25:
                self.dout.set_ext(1)
                self._schedule(self.conv_us)

    def kill(self, dead=True):
        """Fault injection: the chip stops answering (dead=True) or comes back."""
        self.dead = dead
        if dead:
            self.dout.set_ext(1)
        elif self._due is None:
            self._schedule(self.conv_us)
