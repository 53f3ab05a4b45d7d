# PID control, for heaters (drum temperature -> SSR duty) and motors (drum speed -> PWM duty).
# Plain arithmetic, no allocation per update. Its relay autotune is fab.autotune.
#
# Units: the output is a fraction (0..1 duty); kp is output per unit of error, ki output per unit
# of error and second, kd output per unit of error per second (per degree C for a heater).


class PID:
    """Derivative on measurement, conditional integration, output clamped to [lo, hi].

    Derivative on the measurement, not the error, so that a setpoint step does not kick the
    output; it is smoothed over `d_smooth_s` seconds because a thermocouple read at 0.25 C steps
    every half second would otherwise hand kd a square wave (Klipper smooths the same way).
    With `i_range`, the integral only moves while the error is within it: on a long heat-up the
    derivative pulls the output off its limit well before the setpoint, and integrating there
    winds up an overshoot (Marlin's PID_FUNCTIONAL_RANGE does the same)."""

    def __init__(self, kp, ki, kd, lo=0.0, hi=1.0, d_smooth_s=2.0, i_range=0.0):
        self.kp, self.ki, self.kd = kp, ki, kd
        self.lo, self.hi = lo, hi
        self.d_smooth = d_smooth_s
        self.i_range = i_range
        self.reset()

    def reset(self, bias=0.0):
        """Forget the history; the integral starts at `bias` (a feed-forward guess) clamped."""
        self.i = min(self.hi, max(self.lo, bias))
        self.prev = None
        self.deriv = 0.0
        self.out = 0.0
        self.p = 0.0
        self.d = 0.0

    def set_gains(self, kp, ki, kd):
        self.kp, self.ki, self.kd = kp, ki, kd

    def update(self, sp, pv, dt):
        """One step of dt seconds towards setpoint sp from measurement pv; returns the output."""
        err = sp - pv
        if self.prev is None or dt <= 0:
            slope = 0.0
        else:
            slope = (pv - self.prev) / dt
        self.prev = pv
        # First-order smoothing of the slope: weight dt/smooth on the new value, at most 1.
        w = dt / self.d_smooth if self.d_smooth > dt else 1.0
        self.deriv += w * (slope - self.deriv)
        self.p = self.kp * err
        self.d = -self.kd * self.deriv
        i = self.i + self.ki * err * dt
        raw = self.p + i + self.d
        # Anti-windup by conditional integration: keep the new integral only if the output is
        # not saturated, or if the error pulls it back from the limit it sits on (Astrom &
        # Hagglund, "Advanced PID Control", 3.5). The integral alone also stays within limits.
        inside = not self.i_range or abs(err) <= self.i_range
        back = (raw >= self.hi and err < 0) or (raw <= self.lo and err > 0)
        if inside and (self.lo < raw < self.hi or back):
            self.i = min(self.hi, max(self.lo, i))
        out = self.p + self.i + self.d
        self.out = min(self.hi, max(self.lo, out))
        return self.out
