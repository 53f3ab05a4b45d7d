# Relay autotune (Astrom & Hagglund, 1984) for a fab.pid.PID: loaded only when a tune runs.
import math

# Tuning rules on the ultimate gain Ku and period Tu: (Kp/Ku, Ti/Tu, Td/Tu). "some overshoot" is
# the gentler Ziegler-Nichols variant most heater tuners use; the classic one overshoots ~25 %.
RULES = {
    "classic": (0.6, 0.5, 0.125),
    "some_overshoot": (0.33, 0.5, 0.33),
    "no_overshoot": (0.2, 0.5, 0.33),
}


class RelayTune:
    """Astrom-Hagglund relay autotune: switch the output between hi and lo whenever the
    measurement crosses sp -/+ hyst, let the loop settle into a limit cycle, and read the
    ultimate gain Ku and period Tu off its amplitude and period.

    Call update(pv, t_s) once per control period; it returns the output. When `done`, the
    proposed gains are in kp, ki, kd (from `rule`); `error` says why it gave up otherwise."""

    def __init__(self, sp, hyst=1.0, cycles=4, hi=1.0, lo=0.0, rule="some_overshoot",
                 max_cycles=12):
        self.sp, self.hyst, self.cycles = sp, hyst, cycles
        self.hi, self.lo = hi, lo
        self.rule = RULES[rule]
        self.max_cycles = max_cycles
        self.heating = True
        self.ext = 1e9  # the lowest pv of this heating half, then the highest of the cooling half
        self.lows = []  # type: list
        self.highs = []  # type: list
        self.ups = []  # type: list  # times the output switched to hi
        self.downs = []  # type: list  # ... and to lo
        self.done = False
        self.error = ""
        self.ku = self.tu = self.amplitude = self.bias = 0.0
        self.kp = self.ki = self.kd = 0.0

    def update(self, pv, t):
        if self.done or self.error:
            return self.lo
        if self.heating:
            # The minimum comes after the switch to hi: the heat takes time to reach the sensor.
            if pv < self.ext:
                self.ext = pv
            if pv > self.sp + self.hyst:
                self.heating = False
                self.lows.append(self.ext)
                self.downs.append(t)
                self.ext = -1e9
        else:
            if pv > self.ext:
                self.ext = pv
            if pv < self.sp - self.hyst:
                self.heating = True
                self.highs.append(self.ext)
                self.ups.append(t)
                self.ext = 1e9
                self._check()
        return self.hi if self.heating else self.lo

    def _check(self):
        # The first low (the cold start) and the first high (the heat-up overshoot) are not
        # part of the limit cycle: cycle k runs from ups[k] to ups[k+1], with lows[k+1], highs[k+1].
        n = len(self.ups) - 1
        if n < self.cycles:
            return
        k = self.cycles
        amps = [self.highs[-i] - self.lows[-i] for i in range(1, k + 1)]
        periods = [self.ups[-i] - self.ups[-i - 1] for i in range(1, k + 1)]
        a_max, a_min = max(amps), min(amps)
        p_max, p_min = max(periods), min(periods)
        if a_max - a_min > 0.2 * a_max or p_max - p_min > 0.2 * p_max:
            if n >= self.max_cycles:
                self.error = ("the oscillation did not settle in %d cycles (amplitude %.1f to "
                              "%.1f C, period %.0f to %.0f s)" % (n, a_min, a_max, p_min, p_max))
            return
        a = sum(amps) / k / 2
        if a <= self.hyst:
            self.error = "oscillation of %.2f C is within the hysteresis %.2f C" % (a, self.hyst)
            return
        self.amplitude = a
        self.tu = sum(periods) / k
        # The mean output over the cycles: what holding sp takes, a start for the integral.
        on = sum([self.downs[-i] - self.ups[-i - 1] for i in range(1, k + 1)])
        self.bias = self.lo + (self.hi - self.lo) * on / sum(periods)
        d = (self.hi - self.lo) / 2
        # Describing function of a relay with hysteresis: Ku = 4d / (pi * sqrt(a^2 - eps^2)).
        self.ku = 4 * d / (math.pi * math.sqrt(a * a - self.hyst * self.hyst))
        r = self.rule
        self.kp = r[0] * self.ku
        self.ki = self.kp / (r[1] * self.tu)
        self.kd = self.kp * r[2] * self.tu
        self.done = True
