# INA226 current and power monitor on I2C (TI SBOS547): the INA219's register map with finer
# LSBs, a fixed +-81.92 mV shunt range, a 36 V bus, averaging up to 1024 samples and ID
# registers. The arithmetic lives in the INA219 class; this one is its numbers (after esptool's
# data-only chip variants).
from micropython import const

from fab.drivers.ina219 import INA219

_CONFIG = const(0x00)
_BUS = const(0x02)
_RST = const(0x8000)  # config bit 15 (7.6.1)
_MFG_ID = const(0xFE)
_DIE_ID = const(0xFF)
_TI = const(0x5449)  # "TI" (7.6.8)
_DIE = const(0x226)  # die ID bits 15..4; bits 3..0 are the revision (7.6.9)
_RESERVED = const(0x4000)  # config bits 14..12 read 100 (7.6.1); written back as they read


class INA226(INA219):
    CHIP = "INA226"
    CAL_SCALE = 0.00512  # 7.5 equation 1: CAL = 0.00512 / (Current_LSB * R_shunt)
    CAL_MAX = 0x7FFF  # bit 15 of the calibration register is reserved (7.6.5)
    POWER_LSB = 25  # 7.5: Power_LSB = 25 * Current_LSB
    SHUNT_LSB = 2.5e-6  # V (7.6.2)
    BUS_LSB = 0.00125  # V, bits 14..0 (7.6.3)
    PGA = (0.08192,)  # one shunt range: 2.5 uV * 32768
    AVG = (1, 4, 16, 64, 128, 256, 512, 1024)  # AVG2:0 (7.6.1 table 6)
    # conversion times in us for VBUSCT and VSHCT (7.6.1 table 7)
    CT = (140, 204, 332, 588, 1100, 2116, 4156, 8244)

    def __init__(self, i2c, addr=0x40, shunt_ohm=0.1, max_current=0.8, avg=1, ct_us=1100):
        if ct_us not in self.CT:
            raise ValueError("INA226 at 0x%02x: a conversion time of %s us is not available; "
                             "expected one of %s" % (addr, ct_us,
                                                     ", ".join([str(c) for c in self.CT])))
        self.ct_us = ct_us
        INA219.__init__(self, i2c, addr, shunt_ohm, max_current, avg, 36)

    def settings(self):
        self.shunt_range()  # only to refuse a current the fixed range cannot hold
        ct = self.CT.index(self.ct_us)
        cal, lsb = self.calibration()
        return (_RESERVED | (self.AVG.index(self.avg) << 9) | (ct << 6) | (ct << 3) | 0x7,
                cal, lsb)

    def identify(self):
        self._write(_CONFIG, _RST)
        mfg = self._read(_MFG_ID)
        die = self._read(_DIE_ID)
        if mfg != _TI or die >> 4 != _DIE:
            raise ValueError("I2C device at 0x%02x is not an INA226: manufacturer id 0x%04x, "
                             "die id 0x%04x, expected 0x%04x and 0x%03xN; check the 'ina' setting"
                             % (self.addr, mfg, die, _TI, _DIE))

    def bus_voltage(self):
        return self._read(_BUS) * self.BUS_LSB  # no flags in this one's bus register

    def conversion_ms(self):
        """Time for one averaged result of both channels: (bus CT + shunt CT) * samples."""
        return 2 * self.ct_us * self.avg / 1000
