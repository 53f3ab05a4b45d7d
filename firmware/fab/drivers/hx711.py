# HX711 24-bit load-cell ADC (Avia Semiconductor), bit-banged on two pins: PD_SCK (clock, out)
# and DOUT (data, in). Datasheet "Serial Interface":
# - DOUT high: no conversion ready. DOUT low: a result waits.
# - Each PD_SCK rising edge shifts out one bit, MSB first; DOUT is valid from the rising edge
#   until the next one, so it is read after the falling edge.
# - 24 data pulses, then 1 to 3 more select the input and gain of the NEXT conversion:
#   25 = channel A gain 128, 26 = channel B gain 32, 27 = channel A gain 64.
# - PD_SCK high for more than 60 us powers the chip down: the clock high time here is two pin
#   writes (a few us); the pin's low safe level keeps the chip running.
# - The result is 24-bit two's complement; 0x7FFFFF and 0x800000 are the saturated ends.
from micropython import const

_PULSES = {128: 25, 32: 26, 64: 27}
_MAX = const(0x7FFFFF)
_MIN = const(-0x800000)


class HX711:
    def __init__(self, clk, data, gain=128):
        self.clk = clk  # output pin, low
        self.data = data  # input pin
        self.clk.value(0)
        self._extra = _PULSES[gain] - 24
        self.offset = 0  # raw counts at zero load (tare)
        self.scale = 1.0  # raw counts per gram
        self.raw = 0
        self.saturated = False

    def ready(self):
        return self.data.value() == 0

    def read_raw(self):
        """The next 24-bit result, or None when no conversion is ready yet."""
        if self.data.value():
            return None
        clk, data = self.clk, self.data
        v = 0
        for _ in range(24):
            clk.value(1)
            clk.value(0)
            v = (v << 1) | data.value()
        for _ in range(self._extra):
            clk.value(1)
            clk.value(0)
        if v & 0x800000:
            v -= 0x1000000
        self.raw = v
        self.saturated = v >= _MAX or v <= _MIN
        return v

    def grams(self, raw):
        return (raw - self.offset) / self.scale
