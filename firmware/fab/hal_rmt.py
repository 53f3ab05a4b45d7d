# ESP32 step-pulse backend on the RMT peripheral (ESP32 TRM, ch. "Remote Control Peripheral"):
# one block is one pulse pattern repeated by the hardware loop counter, 1 us per tick.
import esp32
from machine import Pin
from micropython import const

_DIV = const(80)  # 80 MHz APB / 80 = 1 us ticks
_HIGH_US = const(2)
_MAX_LOOP = const(1023)  # the loop counter is 10 bits wide
_SLOTS = const(4)


class StepGen:
    def __init__(self, step, index):
        self._rmt = esp32.RMT(index, pin=Pin(step, Pin.OUT, value=0), clock_div=_DIV, idle_level=False)
        self._count = [0] * _SLOTS  # ring of pending blocks, allocated once
        self._gap = [0] * _SLOTS
        self._head = 0
        self._queued = 0
        self._running = 0  # steps of the block on the wire, 0 when none
        self._steps = 0

    def _pump(self):
        # The RMT has no completion interrupt in MicroPython, so the motion loop's polling of
        # free()/idle() is what moves the queue on.
        if self._running and self._rmt.wait_done():
            self._steps += self._running
            self._running = 0
        if not self._running and self._queued:
            n = min(self._count[self._head], _MAX_LOOP)
            self._count[self._head] -= n
            gap = self._gap[self._head]
            if not self._count[self._head]:
                self._head = (self._head + 1) % _SLOTS
                self._queued -= 1
            self._rmt.loop_count(n)
            self._rmt.write_pulses((_HIGH_US, max(1, gap - _HIGH_US)), 1)
            self._running = n

    def push(self, count, interval_us):
        i = (self._head + self._queued) % _SLOTS
        self._count[i] = count
        self._gap[i] = interval_us
        self._queued += 1
        self._pump()

    def free(self):
        self._pump()
        return _SLOTS - self._queued

    def idle(self):
        self._pump()
        return not self._running and not self._queued

    def count(self):
        return self._steps

    def zero(self):
        self._steps = 0

    def stop(self):
        self._rmt.loop_count(0)
        self._rmt.deinit()
        self._queued = 0
        self._running = 0
