# MAX6675 K-type thermocouple-to-digital converter (Maxim 19-2235), read-only SPI (mode 0, up to
# 4.3 MHz). Every read shifts out one 16-bit word (datasheet Figure 2 / Table 2, "SO Output"):
#   D15      dummy sign bit, always 0
#   D14..D3  temperature, 12 bits unsigned, 0.25 C per LSB (0 to 1023.75 C)
#   D2       thermocouple input: 1 when open
#   D1       device ID, always 0
#   D0       three-state
# The chip cannot tell a shorted thermocouple (it then reads its own temperature); only the
# machine's heating checks can.
from micropython import const

_DUMMY = const(0x8000)
_OPEN = const(0x0004)
_ID = const(0x0002)
# Conversion time, datasheet Electrical Characteristics: 0.17 s typ, 0.22 s max. Pulling CS low
# stops a conversion in progress, so reading more often than this returns the last result forever.
CONVERSION_MS = const(220)


class MAX6675:
    def __init__(self, spi, cs):
        self.spi = spi
        self.cs = cs  # an output pin, idle high (deselected)
        self.cs.value(1)
        self._buf = bytearray(2)
        self._prev = bytearray(2)
        self.fault = ""  # "", "open", "no_chip"
        self.same = False
        self.internal = None  # the MAX6675 does not report its cold-junction temperature
        self.temp = 0.0

    def read(self):
        """Thermocouple temperature in C, or None with `fault` saying why."""
        b = self._buf
        self.cs.value(0)
        try:
            self.spi.readinto(b)
        finally:
            self.cs.value(1)
        self.same = b[0] == self._prev[0] and b[1] == self._prev[1]
        self._prev[0] = b[0]
        self._prev[1] = b[1]
        w = (b[0] << 8) | b[1]
        # D15 and D1 read 0 on a live chip: set, or an all-zero word, means no chip drives MISO.
        if w & (_DUMMY | _ID) or w == 0:
            self.fault = "no_chip"
            return None
        if w & _OPEN:
            self.fault = "open"
            return None
        self.fault = ""
        self.temp = (w >> 3) * 0.25
        return self.temp
