# RP2040 step-pulse backend: a PIO state machine takes (count, delay) blocks from its FIFO and
# emits the pulses with 1 us resolution while the CPU does other work (RP2040 datasheet, ch. 3).
import rp2
from machine import Pin
from micropython import const

# The PIO assembler names (pull, mov, set, pins, ...) exist only inside @rp2.asm_pio at run time.
# mypy takes any `if TYPE_CHECKING:` block as run, so it learns them from the rp2 stubs; the board
# never runs it (tests/firmware/typecheck.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F403

_FREQ = const(1000000)  # one PIO cycle per microsecond
_OVERHEAD = const(6)  # cycles per pulse outside the delay loop, counted in the program below
_SLOTS = const(4)  # the 8-word TX FIFO holds 4 blocks of 2 words


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def _pulses():
    pull(block)  # noqa: F821 (PIO assembler names)
    mov(x, osr)  # noqa: F821  x = count - 1
    pull(block)  # noqa: F821  osr = delay cycles, reloaded for each pulse
    label("pulse")  # noqa: F821
    # 2 us high: A4988 needs 1 us, TMC2209 100 ns. The [1] delay suffix is PIO syntax that the
    # stubs cannot express: they type an instruction as a bare Callable.
    set(pins, 1)[1]  # type: ignore[index]  # noqa: F821
    set(pins, 0)  # noqa: F821
    mov(y, osr)  # noqa: F821
    label("wait")  # noqa: F821
    jmp(y_dec, "wait")  # noqa: F821
    jmp(x_dec, "pulse")  # noqa: F821
    irq(rel(0))  # noqa: F821  block done: _done() counts it


class StepGen:
    def __init__(self, step, index):
        self._pin = Pin(step, Pin.OUT, value=0)
        self._sm = rp2.StateMachine(index, _pulses, freq=_FREQ, set_base=self._pin)
        self._counts = [0] * _SLOTS  # ring of queued block sizes, allocated once
        self._head = 0
        self._queued = 0
        self._steps = 0
        self._sm.irq(self._done)
        self._sm.active(1)

    def _done(self, sm):
        if self._queued:
            self._steps += self._counts[self._head]
            self._head = (self._head + 1) % _SLOTS
            self._queued -= 1

    def push(self, count, interval_us):
        self._counts[(self._head + self._queued) % _SLOTS] = count
        self._queued += 1
        self._sm.put(count - 1)
        self._sm.put(max(0, interval_us - _OVERHEAD))

    def free(self):
        return _SLOTS - self._queued

    def idle(self):
        return self._queued == 0

    def count(self):
        # Whole blocks only: the PIO does not expose how far into a block it is.
        return self._steps

    def zero(self):
        self._steps = 0

    def stop(self):
        sm = self._sm
        sm.active(0)
        while sm.tx_fifo():
            sm.exec("pull()")
        sm.exec("set(pins, 0)")
        sm.restart()
        self._queued = 0
        sm.active(1)
