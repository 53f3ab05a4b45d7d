# A chain of 74HC595 8-bit shift registers (TI SCLS041 "SNx4HC595") on an SPI bus: MOSI -> SER,
# SCK -> SRCLK, one GPIO -> RCLK (the latch), optionally one GPIO -> /OE. QH' of each chip feeds
# SER of the next, so the first byte shifted ends up in the last chip.
#
# At power-on the storage register holds whatever it holds (the datasheet gives no reset state for
# it; /SRCLR clears only the shift register): with /OE pulled up by a resistor and wired to a pin,
# the outputs stay off until write(0) has run, and safe() releases them all in one pin write,
# whatever the SPI bus is doing.


class ShiftReg:
    def __init__(self, spi, latch, nbytes, oe=None):
        self.spi = spi
        self.latch = latch  # an output pin, idle low
        self.oe = oe  # an output pin, active low, or None when /OE is tied to GND
        self._buf = bytearray(nbytes)  # reused for every write
        self.value = 0
        self.write(0)  # enables the outputs only now that the register holds zeros

    def write(self, value):
        """All outputs at once: bit n drives output Q(n % 8) of chip n // 8 (chip 0 nearest the
        MCU)."""
        b = self._buf
        n = len(b)
        for i in range(n):
            b[i] = (value >> (8 * (n - 1 - i))) & 0xFF  # the far chip's byte goes first
        self.latch.value(0)
        self.spi.write(b)
        # The RCLK rising edge copies the shift register into the storage register (datasheet,
        # Function Table): every output changes at the same instant.
        self.latch.value(1)
        self.latch.value(0)
        self.value = value
        if self.oe is not None:
            self.oe.value(0)  # enabled again after safe() or hal.safe_state() disabled them

    def safe(self):
        """Outputs off at once: /OE high puts them in high impedance (pull-downs hold the loads
        off), then the register is cleared over the bus."""
        if self.oe is not None:
            self.oe.value(1)
        self.write(0)
