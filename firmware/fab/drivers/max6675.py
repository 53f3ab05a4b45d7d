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

from fab.drivers.spiword import SpiWord

_DUMMY = const(0x8000)
_OPEN = const(0x0004)
_ID = const(0x0002)
# Conversion time, datasheet Electrical Characteristics: 0.17 s typ, 0.22 s max. Pulling CS low
# stops a conversion in progress, so reading more often than this returns the last result forever.
CONVERSION_MS = const(220)


class MAX6675(SpiWord):
    def __init__(self, spi, cs):
        SpiWord.__init__(self, spi, cs, 2)
        self.internal = None  # the MAX6675 does not report its cold-junction temperature

    def read(self):
        """Thermocouple temperature in C, or None with `fault` ("open", "no_chip") saying why."""
        b = self._word()
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
