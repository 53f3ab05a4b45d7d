# A chain of 74HC595 shift registers behind an SPI bus: bytes shift in on SCK, the RCLK (latch)
# rising edge copies them to the outputs, /OE high turns every output off. The chip nearest the
# MCU holds the last byte shifted. Watchers get the output word on every change.
import vclock


class Chain:
    def __init__(self, chips, latch_pin, oe_pin=None):
        self.chips = chips
        self.bits = 8 * chips
        self.shift = 0
        self.storage = 0  # the datasheet gives it no reset state; 0 here
        self.enabled = oe_pin is None
        self.watchers = []  # fn(outputs) on every change of the outputs
        self.history = []  # (t_us, outputs)
        self._out = 0
        self.latches = 0
        latch_pin.watchers.append(self._latch)
        if oe_pin is not None:
            oe_pin.set_ext(1)  # the pull-up resistor on /OE: off until the MCU drives it low
            oe_pin.watchers.append(self._oe)
            self.enabled = oe_pin.read() == 0

    def transfer(self, data):
        out = bytearray(len(data))
        mask = (1 << self.bits) - 1
        for i in range(len(data)):
            out[i] = (self.shift >> (self.bits - 8)) & 0xFF  # what leaves QH' of the last chip
            self.shift = ((self.shift << 8) | data[i]) & mask
        return bytes(out)

    def _latch(self, level):
        if level:
            self.latches += 1
            self.storage = self.shift
            self._update()

    def _oe(self, level):
        self.enabled = level == 0
        self._update()

    def outputs(self):
        return self.storage if self.enabled else 0

    def _update(self):
        o = self.outputs()
        if o != self._out:
            self._out = o
            self.history.append((vclock.now, o))
            for w in self.watchers:
                w(o)
