"""INA219 driver against the INA219 register model: the calibration register and LSBs come out
as the datasheet (TI SBOS448, 8.5.1) works them, and readings are the truth within one LSB."""
import pytest

class Wire:
    """What the monitor is wired into: a bus voltage and a current, set by the test."""

    def __init__(self, volts=0.0, amps=0.0):
        self.volts, self.amps = volts, amps

    def __call__(self):
        return self.volts, self.amps


def attach(world, chip="Ina219", shunt=0.1, addr=0x40, **truth):
    wire = Wire(**truth)
    model = getattr(world.get("vina"), chip)(shunt, wire)
    world.board.i2c_devices[(0, addr)] = model
    machine = world.modules["vmachine"]
    return wire, model, machine.I2C(0, scl=machine.Pin(21), sda=machine.Pin(20))


def driver(world):
    return world.get("fab.drivers.ina219").INA219


def test_calibration_follows_the_datasheet_equations(world):
    # SBOS448 8.5.1, with the example's 0.1 ohm shunt and 3.2 A range: Current_LSB = 3.2 A / 2^15
    # (equation 2), Cal = trunc(0.04096 / (Current_LSB * R_shunt)) (equation 1) = 4194.
    wire, model, i2c = attach(world)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.1, max_current=3.2)
    assert ina.cal == 4194 and model.r[0x05] == 4194
    assert ina.current_lsb == pytest.approx(3.2 / 32768, rel=1e-3)
    assert ina.power_lsb == pytest.approx(20 * ina.current_lsb)  # equation 3
    # 2^15 * 100 uA through 0.05 ohm: the example's round 100 uA LSB, Cal = 8192.
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.05, max_current=3.2768)
    assert ina.cal == 8192 and ina.current_lsb == pytest.approx(100e-6)


def test_config_picks_the_smallest_shunt_range_that_fits(world):
    wire, model, i2c = attach(world, shunt=0.01)
    INA219 = driver(world)
    for amps, pg in ((3.9, 0), (7.9, 1), (15.0, 2), (31.0, 3)):
        ina = INA219(i2c, 0x40, shunt_ohm=0.01, max_current=amps, avg=16)
        assert (model.r[0x00] >> 11) & 3 == pg, amps
        assert model.r[0x00] & 0x2000  # 32 V bus range
        assert (model.r[0x00] >> 3) & 0xF == 0b1100  # 16 samples averaged (table 5)
        assert model.r[0x00] & 7 == 7  # shunt and bus, continuous
        assert ina.conversion_ms() == pytest.approx(2 * 0.532 * 16)


def test_readings_are_the_truth_within_one_lsb(world):
    wire, model, i2c = attach(world, shunt=0.01, volts=13.207, amps=4.321)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.01, max_current=8.0)
    bus, shunt, amps, watts = ina.read()
    assert bus == pytest.approx(13.207, abs=0.004)  # 4 mV LSB
    assert shunt == pytest.approx(0.04321, abs=10e-6)  # 10 uV LSB
    assert amps == pytest.approx(4.321, abs=ina.current_lsb * 2)
    assert watts == pytest.approx(13.207 * 4.321, abs=ina.power_lsb * 2)
    assert ina.read() is ina.values  # the same array every time: nothing allocated per read
    wire.amps = -1.5  # current the other way: the sign is the current's, power stays positive
    assert ina.current() == pytest.approx(-1.5, abs=ina.current_lsb * 2)
    assert ina.shunt_voltage() == pytest.approx(-0.015, abs=10e-6)
    assert ina.power() == pytest.approx(13.207 * 1.5, abs=ina.power_lsb * 2)


def test_a_shunt_that_is_really_different_is_calibrated_out(world):
    # The shunt is 2 % above its marking: readings are 2 % high until shunt_ohm is calibrated.
    wire, model, i2c = attach(world, shunt=0.0102, volts=12.0, amps=5.0)
    INA219 = driver(world)
    assert INA219(i2c, 0x40, 0.01, 8.0).current() == pytest.approx(5.1, rel=1e-3)
    assert INA219(i2c, 0x40, 0.0102, 8.0).current() == pytest.approx(5.0, rel=1e-3)


def test_a_tiny_max_current_is_limited_by_the_register_not_refused(world):
    # 0.1 A through 0.01 ohm would need Cal = 134217, more than 16 bits: the LSB grows instead.
    wire, model, i2c = attach(world, shunt=0.01, volts=5.0, amps=0.05)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.01, max_current=0.1)
    assert ina.cal == 0xFFFE and ina.cal & 1 == 0  # bit 0 is void
    assert ina.current_lsb == pytest.approx(0.04096 / (0xFFFE * 0.01))
    assert ina.current() == pytest.approx(0.05, abs=ina.current_lsb)


def test_impossible_ranges_and_averaging_are_refused_with_reasons(world):
    wire, model, i2c = attach(world)
    INA219 = driver(world)
    with pytest.raises(ValueError, match=r"max_current 5.0 A through 0.1 ohm is 500.0 mV .* "
                                         r"above the chip's 320 mV"):
        INA219(i2c, 0x40, 0.1, 5.0)
    with pytest.raises(ValueError, match="averaging of 3 samples is not available; expected one "
                                         "of 1, 2, 4, 8, 16, 32, 64, 128"):
        INA219(i2c, 0x40, 0.1, 1.0, avg=3)


def test_overflow_flag_when_the_shunt_is_beyond_its_range(world):
    wire, model, i2c = attach(world, shunt=0.1, volts=12.0, amps=0.3)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.1, max_current=0.35)  # the 40 mV range
    assert ina.current() == pytest.approx(0.3, abs=ina.current_lsb)
    ina.bus_voltage()
    assert not ina.overflow
    wire.amps = 0.6  # 60 mV across the shunt
    ina.bus_voltage()
    assert ina.overflow  # OVF in the bus register (8.6.3.2)
    assert ina.shunt_voltage() == pytest.approx(0.04)  # clipped at full scale


def test_a_reset_chip_is_found_and_configured_again(world):
    wire, model, i2c = attach(world, shunt=0.01, volts=12.0, amps=2.0)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.01, max_current=8.0)
    assert ina.check() and ina.resets == 0
    model.power_cycle()  # a brown-out on the chip's supply: calibration 0
    assert ina.current() == 0.0  # what a driver that never checks would report for ever
    assert not ina.check() and ina.resets == 1
    assert ina.current() == pytest.approx(2.0, abs=ina.current_lsb)


def test_a_silent_chip_raises_oserror_and_a_wrong_one_is_named(world):
    wire, model, i2c = attach(world)
    INA219 = driver(world)
    ina = INA219(i2c, 0x40, 0.1, 1.0)
    model.answering = False
    with pytest.raises(OSError):
        ina.current()
    attach(world, chip="Ina226", addr=0x41)
    with pytest.raises(ValueError, match="I2C device at 0x41 is not an INA219: its config register"
                                         " reads 0x4127 after a reset, expected 0x399f"):
        INA219(i2c, 0x41, 0.1, 1.0)
