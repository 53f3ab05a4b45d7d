# Wind at the rig: a seeded Weibull process, or a replay of measured (t, m/s) pairs, updated every
# dt_s of virtual time (one clock event per update, nothing per second in between).
#
# The Weibull process: two Gaussian AR(1) processes x, y (correlation time tau_s) make
# u = exp(-(x^2 + y^2) / 2), which is uniform on (0, 1) at every instant, and the inverse Weibull
# CDF turns it into a speed, v = c * (-ln u)^(1/k). So the speeds are Weibull(k, c) distributed and
# yet change smoothly from one update to the next, as the mean wind does. On top: turbulence
# (each update multiplied by 1 + turbulence * N(0,1)) and random gusts (gusts_per_h, up to
# gust_factor times the wind, 10 to 40 s long).
#
# Settings (model "wind": {...}): k, c, dt_s, tau_s, turbulence, gusts_per_h, gust_factor,
# replay [[t_s, m/s], ...] (linear in between, the last value held), record (keep (t_s, m/s)).
# Fault injection: gust(speed, seconds).
import math

import vclock


class Wind:
    def __init__(self, rng, cfg, on_change):
        self.rng = rng
        self.k = cfg.get("k", 2.0)
        self.c = cfg.get("c", 6.0)
        self.dt = int(cfg.get("dt_s", 10) * 1000000)
        self.tau = cfg.get("tau_s", 1800.0)
        self.ti = cfg.get("turbulence", 0.1)
        self.gust_rate = cfg.get("gusts_per_h", 1.0)
        self.gust_factor = cfg.get("gust_factor", 1.5)
        self.replay = cfg.get("replay")
        if self.replay is not None:
            self._check_replay()
        self.history = [] if cfg.get("record") else None
        self.on_change = on_change
        self.t0 = vclock.now
        self.x, self.y = self._normals()  # the stationary state: no warm-up needed
        self.speed = 0.0
        self.base = 0.0  # the wind without forced gusts
        self._gust = 0.0  # factor of the random gust under way, until _gust_end
        self._gust_end = 0
        self._forced = None  # [speed, until_us] of an injected gust
        self._tick(None)

    def _check_replay(self):
        last = None
        for i, p in enumerate(self.replay):
            if len(p) != 2 or p[1] < 0 or (last is not None and p[0] <= last):
                raise ValueError("wind replay point %d is %s: expected [t_s, m/s] with t rising "
                                 "and m/s >= 0" % (i, p))
            last = p[0]
        if not self.replay:
            raise ValueError("wind replay is empty: expected [[t_s, m/s], ...]")

    def _uniform(self):
        return (self.rng.next() + 1) / 4294967297.0  # in (0, 1): log() never sees 0

    def _normals(self):
        # Box-Muller: two independent N(0, 1) from two uniforms
        r = math.sqrt(-2.0 * math.log(self._uniform()))
        a = 2.0 * math.pi * self._uniform()
        return r * math.cos(a), r * math.sin(a)

    def weibull(self, u):
        """The inverse Weibull CDF, for u uniform on (0, 1]."""
        return self.c * (-math.log(u)) ** (1.0 / self.k)

    def _replayed(self, t_s):
        pts = self.replay
        if t_s <= pts[0][0]:
            return float(pts[0][1])
        for i in range(1, len(pts)):
            t1, v1 = pts[i]
            if t_s <= t1:
                t0, v0 = pts[i - 1]
                return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
        return float(pts[-1][1])

    def _next_base(self):
        if self.replay is not None:
            return self._replayed((vclock.now - self.t0) / 1000000)
        a = math.exp(-self.dt / 1000000 / self.tau)
        b = math.sqrt(1.0 - a * a)
        nx, ny = self._normals()
        self.x = a * self.x + b * nx
        self.y = a * self.y + b * ny
        v = self.weibull(math.exp(-(self.x * self.x + self.y * self.y) / 2))
        v *= 1.0 + self.ti * self._normals()[0]
        now = vclock.now
        if now >= self._gust_end:
            self._gust = 0.0
            if self._uniform() < self.gust_rate * self.dt / 3.6e9:
                self._gust = 1.0 + (self.gust_factor - 1.0) * self._uniform()
                self._gust_end = now + int((10 + 30 * self._uniform()) * 1000000)
        if self._gust:
            v *= self._gust
        return v if v > 0 else 0.0

    def _tick(self, _):
        self.base = self._next_base()
        vclock.at(vclock.now + self.dt, self._tick)
        self._update()

    def _update(self):
        f = self._forced
        if f is not None and vclock.now >= f[1]:
            f = self._forced = None
        v = self.base if f is None else f[0]
        if v != self.speed:
            self.speed = v
            if self.history is not None:
                self.history.append((vclock.now / 1000000, v))
            self.on_change(v)

    def gust(self, speed, seconds):
        """Fault injection: the wind is `speed` m/s for the next `seconds`, whatever it was."""
        self._forced = [float(speed), vclock.now + int(seconds * 1000000)]
        vclock.at(self._forced[1], self._end_gust)
        self._update()

    def _end_gust(self, _):
        self._update()
