# The `machine` module of a simulated board. Same names and signatures as MicroPython's, wired
# to the board's models through vboard.Board. Interrupt handlers run at the exact virtual time of
# their edge, between two firmware instructions, as soft IRQs do on a board.
import vclock

board = None  # the vboard.Board this module belongs to
stdio = None  # the USB CDC endpoint (vboard.Stdio); sim-only, like StepGen

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


_owned = []  # timeline events the firmware started (Timers, the WDT): a reset cancels them


def _own(e):
    if len(_owned) > 64:
        _owned[:] = [x for x in _owned if x[4]]  # forget the ones that fired or were cancelled
    _owned.append(e)
    return e


def cancel_firmware_events():
    for e in _owned:
        vclock.cancel(e)
    _owned[:] = []


class ResetRequest(BaseException):
    # BaseException: a reset must unwind through the firmware's `except Exception` handlers.
    def __init__(self, cause):
        super().__init__(cause)  # MicroPython's BaseException has no __init__ attribute to call
        self.cause = cause


class PinState:
    """One physical pin: what the firmware drives, what the outside world drives, and its IRQ."""

    def __init__(self, num):
        self.num = num
        self.mode = Pin.IN
        self.pull = None
        self.out = 0
        self.ext = None  # level driven from outside (a switch, a sensor); None = floating
        self.irq = None
        self.trigger = 0
        self.obj = None
        self.duty = 0.0
        self.freq = 0
        self.watchers = []  # models told of output changes: fn(level)

    def read(self):
        if self.mode == Pin.OUT or self.mode == Pin.OPEN_DRAIN:
            return self.out
        if self.ext is not None:
            return self.ext
        return 1 if self.pull == Pin.PULL_UP else 0

    def _changed(self, before):
        after = self.read()
        if after == before:
            return
        for w in self.watchers:
            w(after)
        if self.irq is not None:
            if (after and self.trigger & Pin.IRQ_RISING) or (not after and self.trigger & Pin.IRQ_FALLING):
                self.irq(self.obj)

    def drive(self, v):
        before = self.read()
        self.out = v
        self._changed(before)

    def set_ext(self, v):
        before = self.read()
        self.ext = v
        self._changed(before)

    def power_off(self):
        # What a reset leaves: inputs without pulls, no handlers, no PWM.
        before = self.read()
        self.mode = Pin.IN
        self.pull = None
        self.irq = None
        self.duty = 0.0
        self._changed(before)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        self.id = id
        self._s = board.pin(id)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kw):
        s = self._s
        before = s.read()
        if value is not None:
            s.out = 1 if value else 0
        if mode != -1:
            s.mode = mode
        if pull != -1:
            s.pull = pull
        s._changed(before)

    def value(self, v=None):
        if v is None:
            return self._s.read()
        self._s.drive(1 if v else 0)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._s.drive(1)

    def off(self):
        self._s.drive(0)

    def toggle(self):
        self._s.drive(1 - self._s.out)

    def irq(self, handler=None, trigger=12, hard=False):
        self._s.irq = handler
        self._s.trigger = trigger
        self._s.obj = self
        return None

    def __repr__(self):
        return "Pin(%s)" % self.id


class PWM:
    def __init__(self, dest, freq=0, duty_u16=None, duty_ns=None, **kw):
        self._s = dest._s if isinstance(dest, Pin) else board.pin(dest)
        self._s.mode = Pin.ALT
        if freq:
            self._s.freq = freq
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._s.freq
        self._s.freq = f

    def duty_u16(self, d=None):
        if d is None:
            return int(self._s.duty * 65535 + 0.5)
        self._s.duty = max(0, min(65535, d)) / 65535
        for w in self._s.watchers:
            w(self._s.duty)

    def duty_ns(self, ns=None):
        period = 1000000000 // max(1, self._s.freq)
        if ns is None:
            return int(self._s.duty * period)
        self.duty_u16(int(ns * 65535 // period))

    def deinit(self):
        self.duty_u16(0)


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, src, atten=None):
        self._num = src.id if isinstance(src, Pin) else src

    def read_u16(self):
        v = board.analog(self._num)
        return max(0, min(65535, int(v / board.vref * 65535)))

    def read_uv(self):
        return int(board.analog(self._num) * 1000000)

    def atten(self, a):
        pass


def _dev(bus, addr):
    d = board.i2c_devices.get((bus, addr))
    if d is None:
        raise OSError(19)  # ENODEV, what a board says when nothing ACKs the address
    return d


class I2C:
    def __init__(self, id=0, scl=None, sda=None, freq=400000, **kw):
        self.bus = id

    def scan(self):
        return sorted([a for (b, a) in board.i2c_devices if b == self.bus])

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        return bytes(_dev(self.bus, addr).read(reg, n))

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        data = _dev(self.bus, addr).read(reg, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        _dev(self.bus, addr).write(reg, bytes(buf))

    def readfrom(self, addr, n, stop=True):
        return bytes(_dev(self.bus, addr).read(None, n))

    def readfrom_into(self, addr, buf, stop=True):
        data = _dev(self.bus, addr).read(None, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto(self, addr, buf, stop=True):
        _dev(self.bus, addr).write(None, bytes(buf))
        return len(buf)


SoftI2C = I2C


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id=0, baudrate=1000000, **kw):
        self.bus = id

    def _selected(self):
        for cs, dev in board.spi_devices:
            if board.pin(cs).read() == 0:
                return dev
        return None

    def write_readinto(self, out, into):
        dev = self._selected()
        data = dev.transfer(bytes(out)) if dev else b"\xff" * len(out)
        for i in range(len(into)):
            into[i] = data[i]

    def readinto(self, buf, write=0):
        self.write_readinto(bytes([write]) * len(buf), buf)

    def read(self, n, write=0):
        buf = bytearray(n)
        self.readinto(buf, write)
        return bytes(buf)

    def write(self, buf):
        dev = self._selected()
        if dev:
            dev.transfer(bytes(buf))


SoftSPI = SPI


class UART:
    def __init__(self, id, baudrate=9600, **kw):
        self.port = board.uart(id)

    def any(self):
        return self.port.any()

    def read(self, n=-1):
        return self.port.read(n) if self.port.any() else None

    def readline(self):
        return self.port.readline()

    def write(self, buf):
        return self.port.write(buf)


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, mode=1, period=-1, freq=-1, callback=None, **kw):
        self._ev = None
        if callback is not None:
            self.init(mode=mode, period=period, freq=freq, callback=callback)

    def init(self, mode=1, period=-1, freq=-1, callback=None, **kw):
        self.deinit()
        self._us = int(1000000 / freq) if freq > 0 else int(period * 1000)
        self._mode = mode
        self._cb = callback
        self._ev = _own(vclock.at(vclock.now + max(1, self._us), self._fire))

    def _fire(self, _):
        self._ev = None
        if self._mode == Timer.PERIODIC:
            self._ev = _own(vclock.at(vclock.now + max(1, self._us), self._fire))
        if self._cb is not None:
            self._cb(self)

    def deinit(self):
        vclock.cancel(self._ev)
        self._ev = None


class WDT:
    def __init__(self, id=0, timeout=5000):
        self._ms = timeout
        self._ev = None
        self.feed()

    def feed(self):
        vclock.cancel(self._ev)
        self._ev = _own(vclock.at(vclock.now + self._ms * 1000, _watchdog_bites))


def _watchdog_bites(_):
    board.resets += 1
    raise ResetRequest(WDT_RESET)


def StepGen(step, index):
    # Sim-only: the step-pulse generator, modelled per block by the motor on that pin.
    return board.stepgen(step)


class RTC:
    """The clock time.time() counts from: set by fab.clock after an SNTP answer."""

    def datetime(self, dt=None):
        if dt is None:
            t = vclock.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # (year, month, day, weekday, hours, minutes, seconds, subseconds)
        unix = vclock.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        vclock.epoch = unix - vclock.now // 1000000


def unique_id():
    return board.uid


def reset():
    raise ResetRequest(HARD_RESET)


def soft_reset():
    raise ResetRequest(SOFT_RESET)


def reset_cause():
    return board.reset_cause


def freq(f=None):
    return board.cpu_hz


def idle():
    pass


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def lightsleep(ms=0):
    vclock.sleep_ms(ms)


def deepsleep(ms=0):
    raise ResetRequest(DEEPSLEEP_RESET)
