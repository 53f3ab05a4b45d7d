# MAX31855 cold-junction-compensated thermocouple-to-digital converter (Maxim 19-5793), read-only
# SPI (mode 0, up to 5 MHz). Every read shifts out one 32-bit word (datasheet Table 2, "Memory
# Map - Bit Weights and Functions"):
#   D31..D18  thermocouple temperature, 14-bit two's complement, 0.25 C per LSB
#   D17       reserved, always 0
#   D16       fault: 1 when any of SCV, SCG, OC is set
#   D15..D4   internal (cold-junction) temperature, 12-bit two's complement, 0.0625 C per LSB
#   D3        reserved, always 0
#   D2 SCV    thermocouple shorted to VCC
#   D1 SCG    thermocouple shorted to GND
#   D0 OC     thermocouple open (no connection)
# The word is handled as two 16-bit halves: a 32-bit int would be a heap-allocated big int on a
# 32-bit MicroPython port, where small ints stop at 2**30.
from micropython import const

from fab.drivers.spiword import SpiWord

_FAULT = const(0x0001)  # D16 in the high half
_RES_HI = const(0x0002)  # D17
_RES_LO = const(0x0008)  # D3
_SCV = const(0x0004)
_SCG = const(0x0002)
_OC = const(0x0001)
# Conversion time, datasheet Electrical Characteristics: 70 ms typ, 100 ms max. Reading faster
# returns the previous result again.
CONVERSION_MS = const(100)


class MAX31855(SpiWord):
    def __init__(self, spi, cs):
        SpiWord.__init__(self, spi, cs, 4)
        self.internal = 0.0

    def read(self):
        """Thermocouple temperature in C, or None with `fault` ("open", "short_gnd",
        "short_vcc", "no_chip") saying why."""
        b = self._word()
        hi = (b[0] << 8) | b[1]
        lo = (b[2] << 8) | b[3]
        # Reserved bits set, or nothing but zeros: no chip drives MISO (a floating line reads
        # all ones, a shorted one all zeros; a real 0.00 C with a 0.0000 C chip is not plausible).
        if hi & _RES_HI or lo & _RES_LO or (hi == 0 and lo == 0):
            self.fault = "no_chip"
            return None
        if hi & _FAULT:
            self.fault = "open" if lo & _OC else ("short_gnd" if lo & _SCG else
                                                  ("short_vcc" if lo & _SCV else "no_chip"))
            return None
        self.fault = ""
        t = hi >> 2
        if t & 0x2000:
            t -= 0x4000
        c = lo >> 4
        if c & 0x800:
            c -= 0x1000
        self.internal = c * 0.0625
        self.temp = t * 0.25
        return self.temp
