# Pulse counter on one pin: hall sensors on rotors and drums, reed-switch anemometers. The IRQ
# only counts; rates are worked out in task context, so the handler never allocates.
import time


class Pulses:
    def __init__(self, pin, per_rev=1):
        self.count = 0
        self.per_rev = per_rev
        self._last_n = 0
        self._last_t = time.ticks_ms()
        pin.irq(handler=self._edge, trigger=pin.IRQ_FALLING)

    def _edge(self, pin):
        self.count += 1

    def rate(self):
        """Pulses per second since the previous call."""
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self._last_t)
        n = self.count
        if dt <= 0:
            return 0.0
        r = (n - self._last_n) * 1000 / dt
        self._last_n = n
        self._last_t = now
        return r

    def rpm(self):
        return self.rate() * 60 / self.per_rev
