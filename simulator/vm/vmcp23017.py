# MCP23017 model: the register map a driver writes, with the output latch turned into pin levels
# that the models behind it (solenoids, shafts) watch, each change time-stamped.
import vclock
from vboard import Registers


class Mcp23017(Registers):
    def __init__(self):
        Registers.__init__(self, {0x00: 0xFF, 0x01: 0xFF})  # power-on: all inputs
        self.inputs = 0xFFFF  # level on input pins, as wired
        self.watchers = []  # fn(outputs16) on every change of the driven outputs
        self.history = []  # (t_us, outputs16)

    def outputs(self):
        latch = self.regs.get(0x14, 0) | (self.regs.get(0x15, 0) << 8)
        iodir = self.regs.get(0x00, 0xFF) | (self.regs.get(0x01, 0xFF) << 8)
        return latch & ~iodir & 0xFFFF

    def read(self, reg, n):
        if reg is None:
            reg = self.ptr
        if reg in (0x12, 0x13):
            iodir = self.regs.get(0x00, 0xFF) | (self.regs.get(0x01, 0xFF) << 8)
            level = (self.inputs & iodir) | (self.outputs() & ~iodir)
            self.regs[0x12] = level & 0xFF
            self.regs[0x13] = (level >> 8) & 0xFF
        return Registers.read(self, reg, n)

    def write(self, reg, data):
        before = self.outputs()
        Registers.write(self, reg, data)
        after = self.outputs()
        if after != before:
            self.history.append((vclock.now, after))
            for w in self.watchers:
                w(after)
