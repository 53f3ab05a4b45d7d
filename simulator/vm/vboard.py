# One simulated board: its pins, its USB serial endpoint, the models wired to its pins, and what
# a reset does. Built from the same board file and machine config that the firmware reads, plus
# a model config (where the endstop really is, the true steps/mm, ...) the firmware never sees.
import vasyncio
import vclock
import vmachine
import vstepper


class Rng:
    # xorshift32: the same numbers in CPython and MicroPython for the same seed.
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def uniform(self, a, b):
        return a + (b - a) * (self.next() / 4294967296)


class Stdio:
    """The USB CDC endpoint: the host feeds bytes in, the firmware writes lines out."""

    def __init__(self):
        self.inb = bytearray()
        self.out = []
        self.ready = vasyncio.ThreadSafeFlag()

    def feed(self, data):
        self.inb.extend(data)
        self.ready.set()

    def any(self):
        return len(self.inb)

    def read(self, n=-1):
        if n < 0 or n >= len(self.inb):
            data = bytes(self.inb)
            self.inb = bytearray()
        else:
            data = bytes(self.inb[:n])
            self.inb = self.inb[n:]
        return data

    def write(self, s):
        self.out.append(s if isinstance(s, str) else s.decode())
        return len(s)

    def take(self):
        text = "".join(self.out)
        self.out = []
        return text


class Port:
    # A UART's far end: a model reads what the firmware wrote and answers.
    def __init__(self):
        self.rx = bytearray()
        self.tx = bytearray()

    def any(self):
        return len(self.rx)

    def read(self, n=-1):
        n = len(self.rx) if n < 0 else min(n, len(self.rx))
        data = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return data

    def readline(self):
        i = self.rx.find(b"\n")
        return self.read(len(self.rx) if i < 0 else i + 1)

    def write(self, buf):
        self.tx.extend(buf)
        return len(buf)


class Registers:
    """An I2C device as a register map: 8-bit register addresses, auto-incrementing reads, as
    most sensors (INA219, MCP23017, BME280) behave. Subclasses react in on_write()."""

    def __init__(self, regs=None):
        self.regs = dict(regs or {})
        self.ptr = 0

    def read(self, reg, n):
        if reg is None:
            reg = self.ptr
        out = bytes([self.regs.get(reg + i, 0) & 0xFF for i in range(n)])
        self.ptr = reg + n
        return out

    def write(self, reg, data):
        if reg is None:
            if not data:
                return
            reg, data = data[0], data[1:]
        self.ptr = reg
        for i in range(len(data)):
            self.regs[reg + i] = data[i]
            self.on_write(reg + i, data[i])

    def on_write(self, reg, value):
        pass


def role_pin(board_cfg, machine_cfg, role):
    return machine_cfg.get("pins", {}).get(role, board_cfg["pins"].get(role))


class Board:
    def __init__(self, board_cfg, machine_cfg, model=None, seed=0):
        self.cfg = board_cfg
        self.machine_cfg = machine_cfg
        self.model = model or {}
        self.rng = Rng(seed)
        self.uid = bytes([(seed >> (8 * i)) & 0xFF for i in range(4)]) + b"\xfa\xb0\x00\x01"
        self.cpu_hz = 125000000 if board_cfg["port"] == "rp2" else 240000000
        self.vref = 3.3
        self.pins = {}
        self.analogs = {}  # pin -> fn() returning volts at the pin
        self.i2c_devices = {}  # (bus, addr) -> device with read(reg, n), write(reg, data)
        self.spi_devices = []  # (cs pin, device with transfer(data))
        self.uarts = {}
        self.motors = {}  # step pin -> vstepper.Motor
        self.stdio = Stdio()
        self.reset_cause = vmachine.PWRON_RESET
        self.resets = 0
        vmachine.board = self
        vmachine.stdio = self.stdio
        vs = board_cfg["pins"].get("vsense")
        if vs is not None:
            # USB 5 V through the board's divider, with a little ripple
            ratio = board_cfg.get("vsense_ratio", 3.0)
            self.analogs[vs] = lambda: (5.0 + self.rng.uniform(-0.02, 0.02)) / ratio
        self.models = {}  # name -> model, for tests and fault injection
        wire = wiring(machine_cfg.get("machine"))
        if wire is not None:
            wire(self)

    def pin(self, num):
        s = self.pins.get(num)
        if s is None:
            s = self.pins[num] = vmachine.PinState(num)
        return s

    def role(self, name):
        num = role_pin(self.cfg, self.machine_cfg, name)
        return None if num is None else self.pin(num)

    def analog(self, num):
        fn = self.analogs.get(num)
        return fn() if fn else 0.0

    def uart(self, num):
        p = self.uarts.get(num)
        if p is None:
            p = self.uarts[num] = Port()
        return p

    def stepgen(self, step):
        m = self.motors.get(step)
        if m is None:
            m = self.motors[step] = vstepper.Motor(self.pin(step), self.pin(step), None)
        return vstepper.StepGen(m)

    def power_cycle(self, cause):
        """A reset: the firmware's world is gone, the physical world (positions, switches) stays."""
        for m in self.motors.values():
            m.stop()
        # The models' own events (wind, rotors, pulse sources) go on: only the firmware stops.
        vmachine.cancel_firmware_events()
        vasyncio.reset()
        for s in self.pins.values():
            s.power_off()
        self.stdio.ready = vasyncio.ThreadSafeFlag()
        self.stdio.inb = bytearray()
        self.reset_cause = cause
        for m in self.motors.values():
            m._sync_switches()

    def status(self):
        out = {"t": vclock.now / 1000000}
        for step in self.motors:
            out["motor%d" % step] = self.motors[step].status()
        return out


def wiring(machine):
    """The model wiring for a machine: simulator/vm/m_<machine>.py, function wire(board)."""
    if not machine:
        return None
    try:
        mod = __import__("m_" + machine)
    except ImportError as e:
        if ("m_" + machine) not in str(e):
            raise  # a broken model module, not a missing one
        return None
    return mod.wire
