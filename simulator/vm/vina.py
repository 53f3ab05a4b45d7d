# INA219 / INA226 current and power monitors as I2C register maps. They report the true bus
# voltage and current of whatever they are wired into (a function returning (volts, amps)),
# quantised by the chip's LSBs and worked through its calibration register exactly as the
# datasheets give it (SBOS448 8.5.1, SBOS547 7.5), so a driver's arithmetic is tested, not echoed.
#
# Registers are 16 bits, MSB first; the pointer register selects one, and reads do not
# auto-increment. Fault injection: `answering = False` (the chip NAKs: OSError EIO, as a loose
# wire or a dead chip does), `power_cycle()` (a brown-out: registers back to power-on values).
# `offset_v`: the chip's input offset voltage (V; INA219 up to 100 uV, INA226 10 uV), added to
# the shunt voltage it measures: what a zero calibration has to find.
from vboard import Registers


def _be(v):
    return bytes(((v >> 8) & 0xFF, v & 0xFF))  # 16 bits, MSB first


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


class Ina219(Registers):
    POR = {0x00: 0x399F}
    SHUNT_LSB = 10e-6
    CAL_MASK = 0xFFFE  # bit 0 void

    def __init__(self, shunt_ohm, truth):
        Registers.__init__(self)
        self.shunt_ohm = shunt_ohm  # the real shunt, which a config may get wrong
        self.truth = truth  # fn() -> (bus volts, amps through the shunt)
        self.offset_v = 0.0
        self.answering = True
        self.power_cycle()

    def power_cycle(self):
        self.r = dict(self.POR)
        self.ptr = 0
        self._v = self._a = None

    # --- the chip's arithmetic ---

    def shunt_fs(self):
        pg = (self.r[0x00] >> 11) & 3
        return (4000, 8000, 16000, 32000)[pg]  # +-40/80/160/320 mV in 10 uV LSBs (8.6.3.1)

    def shunt_code(self, amps):
        fs = self.shunt_fs()
        v = amps * self.shunt_ohm + self.offset_v
        return _clamp(int(round(v / self.SHUNT_LSB)), -fs, fs)

    def bus_code(self, volts):
        top = 8000 if self.r[0x00] & 0x2000 else 4000  # 32 V or 16 V range, 4 mV LSB
        return _clamp(int(round(volts / 0.004)), 0, min(top, 8191))

    def current_code(self, shunt):
        return _clamp(int(shunt * self.r.get(0x05, 0) / 4096), -32768, 32767)  # equation 4

    def power_code(self, cur, bus):
        return _clamp(abs(cur) * bus // 5000, 0, 0xFFFF)  # equation 5

    def bus_reg(self, bus, sh):
        big = abs(sh * self.r.get(0x05, 0)) // 4096 > 32767
        return (bus << 3) | 0x2 | (1 if big else 0)  # CNVR, OVF (8.6.3.2)

    def _results(self):
        # Worked out again only when the truth or the settings changed: a day of 1 Hz reads
        # of a bus that changes every few seconds stays cheap. Kept as the bytes a read returns.
        volts, amps = self.truth()
        if volts != self._v or amps != self._a:
            sh = self.shunt_code(amps)
            bus = self.bus_code(volts)
            cur = self.current_code(sh)
            self._res = {0x01: _be(sh), 0x02: _be(self.bus_reg(bus, sh)),
                         0x03: _be(self.power_code(cur, bus)), 0x04: _be(cur)}
            self._v = volts
            self._a = amps
        return self._res

    # --- the bus ---

    def read(self, reg, n):
        if not self.answering:
            raise OSError(5)  # EIO: no ACK
        if reg is None:
            reg = self.ptr
        self.ptr = reg
        out = self._results()[reg] if 0x01 <= reg <= 0x04 else _be(self.r.get(reg, 0))
        return out if n == 2 else (out * ((n + 1) // 2))[:n]

    def write(self, reg, data):
        if not self.answering:
            raise OSError(5)
        if reg is None:
            if not data:
                return
            reg, data = data[0], data[1:]
        self.ptr = reg
        if len(data) < 2:
            return
        self._v = None  # results follow the new config or calibration at once
        v = (data[0] << 8) | data[1]
        if reg == 0x00:
            if v & 0x8000:
                self.power_cycle()  # RST: every register to its power-on value
                self.ptr = reg
            else:
                self.r[0x00] = v
        elif reg == 0x05:
            self.r[0x05] = v & self.CAL_MASK


class Ina226(Ina219):
    POR = {0x00: 0x4127, 0xFE: 0x5449, 0xFF: 0x2260}
    SHUNT_LSB = 2.5e-6
    CAL_MASK = 0x7FFF  # bit 15 reserved

    def shunt_fs(self):
        return 32767  # +-81.92 mV

    def bus_code(self, volts):
        return _clamp(int(round(volts / 0.00125)), 0, 0x7FFF)  # 1.25 mV LSB, 40.96 V code range

    def current_code(self, shunt):
        return _clamp(int(shunt * self.r.get(0x05, 0) / 2048), -32768, 32767)  # 7.5 equation 3

    def power_code(self, cur, bus):
        return _clamp(abs(cur) * bus // 20000, 0, 0xFFFF)  # 7.5 equation 4

    def bus_reg(self, bus, sh):
        return bus  # no flags in the INA226's bus register

    def write(self, reg, data):
        Ina219.write(self, reg, data)
        self.r[0x00] |= 0x4000  # bits 14..12 read 100 whatever is written
