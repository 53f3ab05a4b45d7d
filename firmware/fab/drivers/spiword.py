# The part the read-only SPI sensors share (MAX6675, MAX31855): one word shifted out per read
# with CS held low, into a buffer allocated once, and whether it repeats the previous word bit
# for bit (a stuck or stale converter reads the same word forever).


class SpiWord:
    def __init__(self, spi, cs, nbytes):
        self.spi = spi
        self.cs = cs  # an output pin, idle high (deselected)
        self.cs.value(1)
        self._buf = bytearray(nbytes)  # the word, read into this buffer every time
        self._prev = bytearray(nbytes)
        self.same = False  # the word equals the previous one, bit for bit
        self.fault = ""
        self.temp = 0.0

    def _word(self):
        b = self._buf
        self.cs.value(0)
        try:
            self.spi.readinto(b)
        finally:
            self.cs.value(1)
        same = True
        p = self._prev
        for i in range(len(b)):
            if b[i] != p[i]:
                same = False
            p[i] = b[i]
        self.same = same
        return b
