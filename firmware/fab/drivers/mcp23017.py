# MCP23017 16-bit I2C port expander (Microchip DS20001952), in its power-on register layout
# (IOCON.BANK = 0: A and B registers interleave, so one 2-byte transfer covers both ports).
from micropython import const

_IODIRA = const(0x00)  # 1 = input
_GPPUA = const(0x0C)  # 1 = 100k pull-up
_GPIOA = const(0x12)
_OLATA = const(0x14)


class MCP23017:
    def __init__(self, i2c, addr=0x20, inputs=0x0000, pullups=0x0000):
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(2)  # reused for every transfer
        self.out = 0
        self._write16(_OLATA, 0)  # outputs low before they become outputs
        self._write16(_IODIRA, inputs)
        self._write16(_GPPUA, pullups)

    def _write16(self, reg, value):
        b = self._buf
        b[0] = value & 0xFF
        b[1] = (value >> 8) & 0xFF
        self.i2c.writeto_mem(self.addr, reg, b)

    def write(self, value):
        """All 16 outputs at once: bit n drives GPA0..GPA7 (n < 8), GPB0..GPB7 (n >= 8)."""
        self.out = value & 0xFFFF
        self._write16(_OLATA, self.out)

    def set(self, n, on):
        self.write(self.out | (1 << n) if on else self.out & ~(1 << n))

    def read(self):
        self.i2c.readfrom_mem_into(self.addr, _GPIOA, self._buf)
        return self._buf[0] | (self._buf[1] << 8)
