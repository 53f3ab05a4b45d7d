# A heated drum and the thermocouple converters that read it.
#
# Thermal model, three first-order nodes:
#   heater band (c_band J/K) <- heater power when on; -> drum through g W/K
#   drum (c_drum J/K)        <- band; -> ambient through h W/K (more when spinning: forced air),
#                               and the heat the melting plastic takes (sink, W)
#   sensor                   follows the drum wall with a lag of tau_s (thermocouple in a sheath)
# Advanced in steps of at most 0.25 s (RK4) by whoever owns the timeline (m_polyfloss.sync), so the
# cost is per quarter-second of virtual time, never per microsecond.
#
# The converters answer SPI transfers with their real words (see fab/drivers/max31855.py and
# max6675.py for the bit layouts), with seeded noise, their conversion times, and injected faults.
import vclock

_MAX_DT = 0.25


def gauss(rng):
    # Sum of three uniforms on [-1, 1]: variance 1, bell-shaped, the same in both Pythons.
    return rng.uniform(-1, 1) + rng.uniform(-1, 1) + rng.uniform(-1, 1)


class Drum:
    def __init__(self, watts=600.0, c_band=80.0, c_drum=600.0, g=10.0, h0=0.8, h_spin=0.6,
                 spin_ref=3000.0, t_amb=22.0, tau_s=3.0, start=None):
        self.watts, self.c_band, self.c_drum, self.g = watts, c_band, c_drum, g
        self.h0, self.h_spin, self.spin_ref = h0, h_spin, spin_ref
        self.t_amb, self.tau = t_amb, tau_s
        t0 = t_amb if start is None else start
        self.band = self.drum = self.sensor = t0
        self.energy_j = 0.0  # heat delivered by the band since power-on of the model
        self.peak = t0  # highest drum temperature seen

    def _deriv(self, x, p, h, sink):
        b, d, s = x
        q = self.g * (b - d)
        return ((p - q) / self.c_band, (q - h * (d - self.t_amb) - sink) / self.c_drum,
                (d - s) / self.tau)

    def step(self, dt, heating, rpm=0.0, sink=0.0):
        """Advance dt seconds with the heater on or off, the drum at rpm, `sink` W into plastic."""
        p = self.watts if heating else 0.0
        h = self.h0 + self.h_spin * min(2.0, rpm / self.spin_ref)
        if heating:
            self.energy_j += p * dt
        while dt > 0:
            s = dt if dt < _MAX_DT else _MAX_DT
            dt -= s
            x = (self.band, self.drum, self.sensor)
            k1 = self._deriv(x, p, h, sink)
            k2 = self._deriv([x[i] + s / 2 * k1[i] for i in range(3)], p, h, sink)
            k3 = self._deriv([x[i] + s / 2 * k2[i] for i in range(3)], p, h, sink)
            k4 = self._deriv([x[i] + s * k3[i] for i in range(3)], p, h, sink)
            self.band, self.drum, self.sensor = [
                x[i] + s / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) for i in range(3)]
            if self.drum > self.peak:
                self.peak = self.drum


class _Converter:
    """What both chips share: a conversion every conv_ms at most, seeded noise, faults."""
    CONV_US = 100000

    def __init__(self, read_c, rng, noise=0.3, t_cj=25.0):
        self.read_c = read_c  # fn() -> the thermocouple's temperature now (C)
        self.rng = rng
        self.noise = noise
        self.t_cj = t_cj  # the chip's own (cold-junction) temperature
        self.offset = 0.0  # C the reading is off: the thermocouple's tolerance, cold-junction error
        self.fault = ""  # "", "open", "short_gnd", "short_vcc"
        self.frozen = False  # stops converting: returns its last word forever (stale)
        self.unplugged = False  # nothing drives MISO: the bus reads all ones
        self.reads = 0
        self.word = None
        self._last = None

    def heal(self):
        self.fault = ""
        self.frozen = False
        self.unplugged = False

    def transfer(self, data):
        n = len(data)
        self.reads += 1
        if self.unplugged:
            return b"\xff" * n
        now = vclock.now
        # A read within the conversion time gets the previous result: pulling CS low stops the
        # conversion in progress (MAX6675 datasheet; same timing rule for the MAX31855 here).
        fresh = self._last is None or now - self._last >= self.CONV_US
        self._last = now
        if self.word is None or (fresh and not self.frozen):
            self.word = self._convert()
        w = self.word
        return bytes([(w >> (8 * (self.BYTES - 1 - i))) & 0xFF if i < self.BYTES else 0
                      for i in range(n)])


class Max31855(_Converter):
    CONV_US = 100000  # datasheet: 100 ms max
    BYTES = 4

    def _convert(self):
        cj = self.t_cj + self.noise / 6 * gauss(self.rng)  # the chip's own sensor: quieter
        c = int(round(cj / 0.0625)) & 0xFFF
        if self.fault:
            bit = {"open": 1, "short_gnd": 2, "short_vcc": 4}[self.fault]
            return (1 << 16) | (c << 4) | bit  # D16 fault, thermocouple bits 0
        t = self.read_c() + self.offset + self.noise * gauss(self.rng)
        v = max(-0x2000, min(int(round(t / 0.25)), 0x1FFF))  # 14-bit signed: -2048..2047.75 C
        return ((v & 0x3FFF) << 18) | (c << 4)


class Max6675(_Converter):
    CONV_US = 220000  # datasheet: 0.22 s max
    BYTES = 2

    def _convert(self):
        if self.fault == "open":
            return 0x7FF8 | 0x0004  # D2 set; the temperature bits are not meaningful then
        if self.fault:
            # A shorted thermocouple makes a new junction at the short: the chip reads about its
            # own temperature and cannot flag it.
            t = self.t_cj + self.noise * gauss(self.rng)
        else:
            t = self.read_c() + self.offset + self.noise * gauss(self.rng)
        v = max(0, min(int(round(t / 0.25)), 0xFFF))
        return v << 3
