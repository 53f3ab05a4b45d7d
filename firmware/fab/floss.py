# What goes into the polyfloss spinner and what comes out: the feed stepper that pushes plastic
# into the drum, and the bowl on a load cell that weighs the floss.
_RING = 4  # load-cell readings averaged: about 4 s
_EMPTIED_G = 5.0  # a drop this large below the peak is the bowl being emptied, not noise


class Feed:
    """A stepper (fab.drivers.stepdir) pushing plastic at a steady rate in g/min."""

    def __init__(self, drv, steps_per_g, period_ms):
        self.drv = drv
        self.spg = steps_per_g
        self.period = period_ms
        self.rate = 0.0
        self.note = ""
        self._blk = (0, 0)
        self._pushed = 0

    def start(self, rate):
        sps = rate * self.spg / 60
        n = int(sps * self.period / 1000 + 0.5)
        # One block per control period, or one step per block when slower than that.
        if n >= 1:
            self._blk = (n, self.period * 1000 // n)
        else:
            self._blk = (1, int(1000000 / sps))
        if self.rate <= 0 or self.note:
            self.drv.set_dir(1)
            self.drv.enable(True)
            self._pushed = self.drv.gen.count()
        self.rate = rate
        self.note = ""
        self.tick(True)

    def stop(self):
        self._halt()
        self.rate = 0.0
        self.note = ""

    def _halt(self):
        if self.rate > 0 and not self.note:
            self.drv.stop()
            self.drv.enable(False)

    def tick(self, ok, why=""):
        """Keep the feed going while `ok`; otherwise hold it (saying `why`) until ok again."""
        if self.rate <= 0:
            return
        if not ok:
            if not self.note:
                self._halt()
                self.note = why
            return
        if self.note:
            self.note = ""
            self.drv.enable(True)
            self._pushed = self.drv.gen.count()
        gen = self.drv.gen
        count, interval = self._blk
        # Keep about two blocks queued, so the feed runs on smoothly between ticks.
        while self._pushed - gen.count() < 2 * count and gen.free():
            gen.push(count, interval)
            self._pushed += count

    def fed_g(self):
        return self.drv.position() / self.spg


class Scale:
    """The bowl on the load cell: net grams (a short average), and production counted as the
    rise of that weight. A running peak, not a sum of every rise, so that noise is not counted;
    a reading far below the peak is the bowl being emptied: the average restarts from it."""

    def __init__(self, hx):
        self.hx = hx
        self._ring = [0] * _RING
        self.n = 0
        self.grams = None
        self.produced = 0.0
        self.misses = 0
        self._peak = None

    def tare(self):
        if self.n < _RING:
            raise ValueError("the load cell has %d readings so far and tare needs %d: wait a "
                             "moment (or check the HX711 wiring if this persists)"
                             % (self.n, _RING))
        self.hx.offset = sum(self._ring) // _RING
        self._peak = 0.0
        self.grams = 0.0
        return self.hx.offset

    def tick(self):
        raw = self.hx.read_raw()
        if raw is None:
            self.misses += 1
            return
        self.misses = 0
        ring = self._ring
        if self._peak is not None and self.hx.grams(raw) < self._peak - _EMPTIED_G:
            for i in range(_RING):
                ring[i] = raw
            self._peak = None
        ring[self.n % _RING] = raw
        self.n += 1
        if self.n < _RING:
            return
        g = self.hx.grams(sum(ring) / _RING)
        self.grams = g
        if self._peak is None:
            self._peak = g
        elif g > self._peak:
            self.produced += g - self._peak
            self._peak = g
