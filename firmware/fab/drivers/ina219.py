# INA219 high-side current and power monitor on I2C (TI SBOS448). The chip measures the voltage
# across a shunt and the bus voltage; once its calibration register holds a value worked out from
# the shunt resistance and the largest expected current, it also reports current and power.
#
# Registers are 16 bits, MSB first, and the pointer does not auto-increment (SBOS448 8.5.6), so
# every value is one 2-byte read into the same buffer. Results land in `values`, an array made
# once: [bus V, shunt V, current A, power W].
from array import array

from micropython import const

_CONFIG = const(0x00)
_SHUNT = const(0x01)
_BUS = const(0x02)
_POWER = const(0x03)
_CURRENT = const(0x04)
_CAL = const(0x05)

_RST = const(0x8000)  # config bit 15: reset every register to its power-on value (8.6.2.1)
_MODE_CONT = const(0x7)  # MODE2:0 = 111, shunt and bus continuous (8.6.2.1 table 6)

# indices into `values`
BUS_V = const(0)
SHUNT_V = const(1)
CURRENT = const(2)
POWER = const(3)


def _signed(v):
    return v - 0x10000 if v & 0x8000 else v


class INA219:
    CHIP = "INA219"
    POR_CONFIG = 0x399F  # config after reset (8.6.2.1): 32 V range, /8 PGA, 12-bit, continuous
    CAL_SCALE = 0.04096  # 8.5.1 equation 1: Cal = trunc(0.04096 / (Current_LSB * R_shunt))
    CAL_MAX = 0xFFFE  # bit 0 of the calibration register is void, always 0 (8.6.3.6)
    POWER_LSB = 20  # 8.5.1 equation 3: Power_LSB = 20 * Current_LSB
    SHUNT_LSB = 10e-6  # V (8.6.3.1)
    BUS_LSB = 0.004  # V, in bits 15..3 of the bus register (8.6.3.2)
    PGA: tuple = (0.04, 0.08, 0.16, 0.32)  # shunt full scale, V, by PG1:0 (8.6.2.1 table 4)
    # samples averaged -> BADC/SADC code: 1xxx = 12 bit, averaging 2^xxx samples (table 5)
    AVG = (1, 2, 4, 8, 16, 32, 64, 128)

    def __init__(self, i2c, addr=0x40, shunt_ohm=0.1, max_current=3.2, avg=1, bus_v=32):
        if shunt_ohm <= 0 or max_current <= 0:
            raise ValueError("%s at 0x%02x: shunt_ohm and max_current must be above 0, got %s ohm"
                             " and %s A" % (self.CHIP, addr, shunt_ohm, max_current))
        if avg not in self.AVG:
            raise ValueError("%s at 0x%02x: averaging of %s samples is not available; expected one "
                             "of %s" % (self.CHIP, addr, avg,
                                        ", ".join([str(a) for a in self.AVG])))
        self.i2c = i2c
        self.addr = addr
        self.shunt_ohm = shunt_ohm
        self.max_current = max_current
        self.avg = avg
        self.bus_v = bus_v
        self._buf = bytearray(2)
        self.values = array("f", (0.0, 0.0, 0.0, 0.0))
        self.overflow = False
        self.resets = 0  # times the chip was found reset (calibration lost) and configured again
        self.config, self.cal, self.current_lsb = self.settings()
        self.power_lsb = self.POWER_LSB * self.current_lsb
        self.setup()

    # --- the datasheet's arithmetic, no I/O ---

    def shunt_range(self):
        """The shunt full scale (V) that covers max_current: the smallest PGA range that fits."""
        need = self.max_current * self.shunt_ohm
        for fs in self.PGA:
            if need <= fs * 1.000001:  # 3.2 A * 0.1 ohm is 0.32000000000000006 in floats
                return fs
        raise ValueError("%s at 0x%02x: max_current %s A through %s ohm is %.1f mV across the "
                         "shunt, above the chip's %d mV; use a smaller shunt"
                         % (self.CHIP, self.addr, self.max_current, self.shunt_ohm, need * 1000,
                            round(self.PGA[-1] * 1000)))

    def calibration(self):
        """(calibration register, current LSB in A) for the shunt and the largest current.

        Current_LSB = max_current / 2^15 (8.5.1 equation 2), but never finer than the register can
        express; the LSB is then recomputed from the truncated register, so that readings scale by
        exactly what the chip was told."""
        lsb = self.max_current / 32768
        floor = self.CAL_SCALE / (self.CAL_MAX * self.shunt_ohm)
        if lsb < floor:
            lsb = floor
        cal = int(self.CAL_SCALE / (lsb * self.shunt_ohm)) & self.CAL_MAX
        if cal < 1:
            raise ValueError("%s at 0x%02x: %s A through %s ohm needs a calibration value below 1;"
                             " expected a smaller max_current or shunt" % (self.CHIP, self.addr,
                                                                           self.max_current,
                                                                           self.shunt_ohm))
        return cal, self.CAL_SCALE / (cal * self.shunt_ohm)

    def settings(self):
        """(config word, calibration register, current LSB)."""
        pg = self.PGA.index(self.shunt_range())
        adc = 0x8 | self.AVG.index(self.avg)  # same averaging for bus and shunt
        brng = 1 if self.bus_v > 16 else 0  # BRNG: 0 = 16 V, 1 = 32 V full scale
        cal, lsb = self.calibration()
        return (brng << 13) | (pg << 11) | (adc << 7) | (adc << 3) | _MODE_CONT, cal, lsb

    # --- registers ---

    def _read(self, reg):
        b = self._buf
        self.i2c.readfrom_mem_into(self.addr, reg, b)
        return (b[0] << 8) | b[1]

    def _write(self, reg, value):
        b = self._buf
        b[0] = (value >> 8) & 0xFF
        b[1] = value & 0xFF
        self.i2c.writeto_mem(self.addr, reg, b)

    def identify(self):
        """After a reset the config register reads its power-on value: the one check this chip
        offers that a device at the address is an INA219 at all."""
        self._write(_CONFIG, _RST)
        got = self._read(_CONFIG)
        if got != self.POR_CONFIG:
            raise ValueError("I2C device at 0x%02x is not an %s: its config register reads 0x%04x "
                             "after a reset, expected 0x%04x; check the 'ina' setting"
                             % (self.addr, self.CHIP, got, self.POR_CONFIG))

    def setup(self):
        self.identify()
        self._write(_CONFIG, self.config)
        self._write(_CAL, self.cal)

    def check(self):
        """True if the chip still holds our calibration. A brown-out resets it to 0, and then
        current and power read 0 for ever; configure it again and say so (False)."""
        if self._read(_CAL) == self.cal and self._read(_CONFIG) & 0x7FFF == self.config:
            return True
        self.resets += 1
        self.setup()
        return False

    def bus_voltage(self):
        raw = self._read(_BUS)
        self.overflow = bool(raw & 1)  # OVF: current or power out of range (8.6.3.2)
        return (raw >> 3) * self.BUS_LSB

    def shunt_voltage(self):
        return _signed(self._read(_SHUNT)) * self.SHUNT_LSB

    def current(self):
        return _signed(self._read(_CURRENT)) * self.current_lsb

    def power(self):
        return self._read(_POWER) * self.power_lsb  # unsigned: the sign is the current's

    def read(self):
        """All four values into `values` (the same array every time) and return it."""
        v = self.values
        v[BUS_V] = self.bus_voltage()
        v[SHUNT_V] = self.shunt_voltage()
        v[CURRENT] = self.current()
        v[POWER] = self.power()
        return v

    def conversion_ms(self):
        """Time for one averaged result of both channels: 532 us per 12-bit sample (table 5)."""
        return 2 * 0.532 * self.avg

    def status(self):
        return {"chip": self.CHIP, "addr": self.addr, "cal": self.cal,
                "current_lsb": self.current_lsb, "config": self.config, "resets": self.resets}
