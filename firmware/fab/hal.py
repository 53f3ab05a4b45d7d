# The hardware abstraction layer: the only firmware code that imports `machine` (with wifi.py,
# its network side, and, in the backend files hal_pio/hal_rmt/hal_timer, `rp2` and `esp32`).
# Everything above it runs unchanged on a board, in the CPython simulator and in the MicroPython
# VM, because the simulator swaps only the `machine` module, the clock and the filesystem root
# underneath this file.
import gc
import sys

import asyncio
import machine

# The simulator's `machine` carries a step-pulse generator modelled per block (not per pulse) and
# the USB CDC endpoint; a real board has neither attribute.
SIM = hasattr(machine, "StepGen")

_outs: list = []  # (pin, safe level): driven back by safe_state()
_pwms: list = []
_gens: list = []


def out(num, safe=0):
    """An output pin that safe_state() returns to `safe` (the level that de-energises it)."""
    p = machine.Pin(num, machine.Pin.OUT, value=safe)
    _outs.append((p, safe))
    return p


def inp(num, pull_up=False):
    if pull_up:
        return machine.Pin(num, machine.Pin.IN, machine.Pin.PULL_UP)
    return machine.Pin(num, machine.Pin.IN)


def on_change(pin, handler):
    """Call handler(pin) on both edges; the handler must not allocate (it may run in an IRQ)."""
    pin.irq(handler=handler, trigger=machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)


def pwm(num, freq):
    p = machine.PWM(machine.Pin(num), freq=freq, duty_u16=0)
    _pwms.append(p)
    return p


def adc(num):
    return machine.ADC(machine.Pin(num))


def i2c(bus):
    return machine.I2C(bus.get("id", 0), scl=machine.Pin(bus["scl"]), sda=machine.Pin(bus["sda"]),
                       freq=bus.get("freq", 400000))


def spi(bus):
    return machine.SPI(bus.get("id", 0), baudrate=bus.get("baudrate", 1000000),
                       sck=machine.Pin(bus["sck"]), mosi=machine.Pin(bus["mosi"]),
                       miso=machine.Pin(bus["miso"]))


def uart(bus):
    return machine.UART(bus.get("id", 1), baudrate=bus.get("baudrate", 115200),
                        tx=machine.Pin(bus["tx"]), rx=machine.Pin(bus["rx"]))


def stepgen(backend, step, index):
    """A step-pulse generator on pin `step`: RP2040 PIO, ESP32 RMT or a Timer fallback.

    All backends take blocks of (count, interval_us) and share one interface:
    push(count, interval_us), free(), idle(), count(), zero(), stop()."""
    if SIM:
        g = machine.StepGen(step, index)  # type: ignore[attr-defined]  # simulator's machine only
    elif backend == "pio":
        from fab import hal_pio
        g = hal_pio.StepGen(step, index)
    elif backend == "rmt":
        from fab import hal_rmt
        g = hal_rmt.StepGen(step, index)
    else:
        from fab import hal_timer
        g = hal_timer.StepGen(step, index)
    _gens.append(g)
    return g


def safe_state():
    """Pulses stopped, heaters and motors de-energised. Safe to call from any task, any time."""
    for g in _gens:
        g.stop()
    for p in _pwms:
        p.duty_u16(0)
    for pin, level in _outs:
        pin.value(level)


class Console:
    """The USB serial link: an asyncio reader, and a writer of whole lines."""

    def __init__(self):
        if SIM:
            self._out = machine.stdio  # type: ignore[attr-defined]  # simulator's machine only
            stream = machine.stdio  # type: ignore[attr-defined]
        else:
            self._out = sys.stdout
            stream = sys.stdin.buffer
        self.reader = asyncio.StreamReader(stream)

    def write(self, text):
        self._out.write(text)


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


_keeper = None


def keep_fed(wdt, period_ms=1000):
    """Feed `wdt` from a hardware timer until the next reset (for time spent at the REPL)."""
    global _keeper
    _keeper = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=period_ms,
                            callback=lambda t: wdt.feed())


def timer(period_ms, callback):
    return machine.Timer(-1, mode=machine.Timer.PERIODIC, period=period_ms, callback=callback)


def uid():
    return "".join(["%02x" % b for b in machine.unique_id()])


def reset():
    machine.reset()


def reset_cause():
    # Not every port defines every cause (rp2 has no HARD_RESET), hence getattr.
    cause = machine.reset_cause()
    for name, text in (("PWRON_RESET", "power-on"), ("WDT_RESET", "watchdog"),
                       ("HARD_RESET", "hard"), ("SOFT_RESET", "soft")):
        if getattr(machine, name, None) == cause:
            return text
    return "other"


def mem_free():
    gc.collect()
    return gc.mem_free()
