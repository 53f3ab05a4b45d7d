"""The virtual `machine` module behaves like MicroPython's on a board."""
import pytest

import microfab_boards
from microfab_sim.world import World


@pytest.fixture
def hw(tmp_path):
    """(world, board, machine) with nothing but the virtual hardware."""
    w = World(tmp_path)
    w.modules["vclock"].reset()
    w.modules["vasyncio"].reset()
    board = w.modules["vboard"].Board(microfab_boards.load("pico"), {"machine": "none"}, seed=5)
    return w, board, w.modules["vmachine"]


def test_pin_levels_pulls_and_irq_edges(hw):
    w, board, machine = hw
    p = machine.Pin(7, machine.Pin.IN, machine.Pin.PULL_UP)
    assert p.value() == 1  # pulled up, nothing connected
    edges = []
    p.irq(lambda pin: edges.append(pin.value()), machine.Pin.IRQ_FALLING)
    board.pin(7).set_ext(0)
    board.pin(7).set_ext(1)
    assert edges == [0]  # falling only
    out = machine.Pin(8, machine.Pin.OUT, value=1)
    assert board.pin(8).read() == 1
    out.off()
    assert board.pin(8).read() == 0


def test_pwm_adc_and_unique_id(hw):
    w, board, machine = hw
    pwm = machine.PWM(machine.Pin(9), freq=1000, duty_u16=32768)
    assert board.pin(9).duty == pytest.approx(0.5, abs=1e-4) and pwm.freq() == 1000
    board.analogs[26] = lambda: 1.65
    assert machine.ADC(machine.Pin(26)).read_u16() == pytest.approx(32767, abs=2)
    assert len(machine.unique_id()) == 8


def test_i2c_device_models_at_addresses(hw):
    w, board, machine = hw
    dev = w.modules["vboard"].Registers({0x00: 0x39, 0x01: 0x9F})
    board.i2c_devices[(0, 0x40)] = dev
    i2c = machine.I2C(0, scl=machine.Pin(21), sda=machine.Pin(20))
    assert i2c.scan() == [0x40]
    assert i2c.readfrom_mem(0x40, 0x00, 2) == b"\x39\x9f"
    i2c.writeto_mem(0x40, 0x05, b"\x10\x00")
    assert dev.regs[0x05] == 0x10
    with pytest.raises(OSError) as e:
        i2c.readfrom_mem(0x41, 0, 1)
    assert e.value.args[0] == 19  # ENODEV, as a board reports a missing device


def test_spi_talks_to_the_device_whose_cs_is_low(hw):
    w, board, machine = hw

    class Thermo:
        def transfer(self, data):
            return b"\x12\x34"

    board.spi_devices.append((17, Thermo()))
    cs = machine.Pin(17, machine.Pin.OUT, value=1)
    spi = machine.SPI(0)
    assert spi.read(2) == b"\xff\xff"  # nothing selected: the bus floats high
    cs.off()
    assert spi.read(2) == b"\x12\x34"


def test_timer_fires_periodically_on_virtual_time(hw):
    w, board, machine = hw
    ticks = []
    clock = w.modules["vclock"]
    t = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=100,
                      callback=lambda tm: ticks.append(clock.now))
    clock.run_to(1_000_000)
    t.deinit()
    clock.run_to(2_000_000)
    assert ticks == [i * 100_000 for i in range(1, 11)]


def test_watchdog_resets_when_not_fed(hw):
    w, board, machine = hw
    clock = w.modules["vclock"]
    wdt = machine.WDT(timeout=1000)
    clock.run_to(900_000)
    wdt.feed()
    clock.run_to(1_800_000)  # fed in time: nothing happens
    with pytest.raises(machine.ResetRequest) as r:
        clock.run_to(3_000_000)
    assert r.value.cause == machine.WDT_RESET and clock.now == 1_900_000
