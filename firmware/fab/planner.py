# Trapezoidal motion profiles cut into step blocks of constant rate. The host never needs to
# know: a move is (distance, speed, acceleration) and the board plans it here.
#
# Accelerating, the cumulative step count is s(t) = a*t^2/2; each block covers one slice of that
# curve at the slice's mean rate, so the rate changes by a*slice per block. Slices are 20 ms, or
# shorter where that would change the rate by more than _MAX_JUMP steps/s at once (a motor
# follows a rate step only up to its pull-in rate). Cruising, blocks are up to _CRUISE_US long so
# that e-stop and limit checks stay within one block.
from micropython import const

_SEG_US = const(20000)
_MIN_SEG_US = const(2000)
_MAX_JUMP = const(1000)
_CRUISE_US = const(100000)


class Profile:
    """One move at a time; allocated once per axis and reused (no allocation per block)."""

    def __init__(self):
        self.count = 0
        self.interval = 0
        self._n = 0
        self._acc = 0
        self._dec_from = 0
        self._a = 1.0
        self._v = 1.0
        self._done = 0
        self._t = 0.0
        self._seg = 0.02

    def start(self, steps, v, a):
        """Plan `steps` (> 0) at up to v steps/s with a steps/s^2."""
        self._n = steps
        self._a = a
        self._seg = max(_MIN_SEG_US, min(_SEG_US, int(1e6 * _MAX_JUMP / a))) / 1e6
        acc = int(v * v / (2 * a))
        if 2 * acc > steps:
            acc = steps // 2
            v = (a * steps) ** 0.5  # the peak of a triangle profile
        self._v = v
        self._acc = acc
        self._dec_from = steps - acc
        self._done = 0
        self._t = 0.0

    def _ramp(self, s):
        # time at which the ramp has made s steps
        return (2.0 * s / self._a) ** 0.5

    def next(self):
        """Fills count and interval (us) of the next block; False when the move is complete."""
        done = self._done
        n = self._n
        if done >= n:
            return False
        if done < self._acc:
            t1 = self._t + self._seg
            s1 = min(self._acc, int(0.5 * self._a * t1 * t1 + 0.5))
            if s1 <= done:
                s1 = done + 1
            count = s1 - done
            dt = self._ramp(s1) - self._ramp(done)
            self._t = self._ramp(s1)
        elif done < self._dec_from:
            count = min(self._dec_from - done, max(1, int(self._v * _CRUISE_US / 1e6)))
            dt = count / self._v
        else:
            # The decel ramp mirrors the accel ramp: step k from the end sits at ramp(k).
            left = n - done
            t0 = self._ramp(left)
            t1 = max(0.0, t0 - self._seg)
            s1 = int(0.5 * self._a * t1 * t1 + 0.5)
            if s1 >= left:
                s1 = left - 1
            count = left - s1
            dt = t0 - self._ramp(s1)
        self.count = count
        self.interval = max(1, int(dt * 1e6 / count + 0.5))
        self._done = done + count
        return True
