# Fallback step-pulse backend for any port: a hardware Timer toggles the step pin. Soft-IRQ
# latency limits it to a few kHz with jitter, so boards with PIO or RMT do not use it.
import machine
from micropython import const

_SLOTS = const(4)


class StepGen:
    def __init__(self, step, index):
        self._pin = machine.Pin(step, machine.Pin.OUT, value=0)
        self._timer = machine.Timer(index)
        self._count = [0] * _SLOTS  # ring of pending blocks, allocated once
        self._gap = [0] * _SLOTS
        self._head = 0
        self._queued = 0
        self._left = 0  # pulses left in the running block
        self._steps = 0
        self._tick_cb = self._tick  # bound once: a bound method made in an IRQ would allocate

    def _start(self):
        self._left = self._count[self._head]
        freq = 1000000 // max(1, self._gap[self._head])
        self._timer.init(freq=max(1, freq), mode=machine.Timer.PERIODIC, callback=self._tick_cb)

    def _tick(self, t):
        self._pin.value(1)
        self._pin.value(0)
        self._steps += 1
        self._left -= 1
        if self._left <= 0:
            self._head = (self._head + 1) % _SLOTS
            self._queued -= 1
            if self._queued:
                self._start()
            else:
                self._timer.deinit()

    def push(self, count, interval_us):
        i = (self._head + self._queued) % _SLOTS
        self._count[i] = count
        self._gap[i] = interval_us
        self._queued += 1
        if self._queued == 1:
            self._start()

    def free(self):
        return _SLOTS - self._queued

    def idle(self):
        return self._queued == 0

    def count(self):
        return self._steps

    def zero(self):
        self._steps = 0

    def stop(self):
        self._timer.deinit()
        self._queued = 0
        self._left = 0
        self._pin.value(0)
