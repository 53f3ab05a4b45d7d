"""INA226 driver against the INA226 register model: calibration and LSBs after TI SBOS547 7.5,
averaging and conversion times in the config register, the ID check."""
import pytest

from test_ina219 import attach  # the same wiring; the world fixture is in conftest


def driver(world):
    return world.get("fab.drivers.ina226").INA226


def test_calibration_after_the_datasheet_equations(world):
    # 7.5: CAL = 0.00512 / (Current_LSB * R_shunt); 2 mohm, 16.384 A -> LSB 0.5 mA, CAL 5120.
    wire, model, i2c = attach(world, chip="Ina226", shunt=0.002)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.002, max_current=16.384)
    assert ina.cal == 5120 and model.r[0x05] == 5120
    assert ina.current_lsb == pytest.approx(0.5e-3)
    assert ina.power_lsb == pytest.approx(25 * 0.5e-3)


def test_averaging_and_conversion_times_in_the_config_register(world):
    wire, model, i2c = attach(world, chip="Ina226", shunt=0.01)
    INA226 = driver(world)
    ina = INA226(i2c, 0x40, 0.01, 8.0, avg=64, ct_us=588)
    cfg = model.r[0x00]
    assert (cfg >> 9) & 7 == 0b011  # 64 samples (7.6.1 table 6)
    assert (cfg >> 6) & 7 == (cfg >> 3) & 7 == 0b011  # 588 us both (table 7)
    assert cfg & 7 == 7 and cfg & 0x7000 == 0x4000
    assert ina.conversion_ms() == pytest.approx(2 * 0.588 * 64)
    with pytest.raises(ValueError, match="averaging of 10 samples is not available; expected one "
                                         "of 1, 4, 16, 64, 128, 256, 512, 1024"):
        INA226(i2c, 0x40, 0.01, 8.0, avg=10)
    with pytest.raises(ValueError, match="conversion time of 600 us is not available"):
        INA226(i2c, 0x40, 0.01, 8.0, ct_us=600)


def test_readings_are_the_truth_within_one_lsb(world):
    wire, model, i2c = attach(world, chip="Ina226", shunt=0.01, volts=13.8123, amps=6.54321)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.01, max_current=8.0, avg=16)
    bus, shunt, amps, watts = ina.read()
    assert bus == pytest.approx(13.8123, abs=0.00125)  # 1.25 mV LSB
    assert shunt == pytest.approx(0.0654321, abs=2.5e-6)  # 2.5 uV LSB
    assert amps == pytest.approx(6.54321, abs=ina.current_lsb * 2)
    assert watts == pytest.approx(13.8123 * 6.54321, abs=ina.power_lsb * 2)
    wire.amps = -0.25
    assert ina.current() == pytest.approx(-0.25, abs=ina.current_lsb * 2)


def test_the_fixed_shunt_range_refuses_too_much_current(world):
    wire, model, i2c = attach(world, chip="Ina226")
    with pytest.raises(ValueError, match=r"max_current 1.0 A through 0.1 ohm is 100.0 mV .* above "
                                         r"the chip's 82 mV"):
        driver(world)(i2c, 0x40, 0.1, 1.0)


def test_an_ina219_where_an_ina226_was_configured_is_named(world):
    wire, model, i2c = attach(world, chip="Ina219")
    with pytest.raises(ValueError, match="I2C device at 0x40 is not an INA226: manufacturer id"):
        driver(world)(i2c, 0x40, 0.01, 8.0)


def test_a_reset_chip_is_configured_again(world):
    wire, model, i2c = attach(world, chip="Ina226", shunt=0.01, volts=12.5, amps=3.0)
    ina = driver(world)(i2c, 0x40, shunt_ohm=0.01, max_current=8.0, avg=16)
    model.power_cycle()
    assert ina.current() == 0.0
    assert not ina.check() and ina.resets == 1
    assert ina.current() == pytest.approx(3.0, abs=ina.current_lsb)
    assert (model.r[0x00] >> 9) & 7 == 0b010  # averaging restored too
