"""The HX711 driver bit-bangs the simulator's HX711 model, which answers the clock pin's edges:
24 bits MSB first in two's complement, the gain pulses, DOUT readiness and power-down."""
import pytest


CLK, DOUT = 13, 14


def cell(world, grams=0.0, zero=84000, counts_per_g=420.0, gain=128):
    """(model, driver, load): the model with no noise, a driver on its pins, a settable load."""
    load = {"g": grams}
    model = world.get("vloadcell").HX711(world.board.pin(CLK), world.board.pin(DOUT),
                                         lambda: load["g"], world.board.rng, zero=zero,
                                         counts_per_g=counts_per_g, noise=0.0)
    machine = world.modules["vmachine"]
    drv = world.get("fab.drivers.hx711").HX711(machine.Pin(CLK, machine.Pin.OUT, value=0),
                                                machine.Pin(DOUT, machine.Pin.IN), gain)
    return model, drv, load


def run_ms(world, ms):
    clock = world.modules["vclock"]
    clock.run_to(clock.now + ms * 1000)


def test_first_result_after_settling_then_ten_per_second(world):
    model, drv, load = cell(world, grams=100.0)
    assert not drv.ready() and drv.read_raw() is None  # 400 ms settling after power-up
    run_ms(world, 400)
    assert drv.ready()
    assert drv.read_raw() == 84000 + 42000
    assert not drv.ready() and world.board.pin(DOUT).read() == 1  # the 25th pulse raised DOUT
    run_ms(world, 99)
    assert drv.read_raw() is None
    run_ms(world, 1)
    load["g"] = 250.0
    assert drv.read_raw() == 84000 + 105000
    assert model.reads == 2 and model.gain == 128


@pytest.mark.parametrize("zero, grams, raw", [
    (-500000, 0.0, -500000),  # two's complement below zero
    (-1, 0.0, -1),
    (0x7FFFFF - 420, 10.0, 0x7FFFFF),  # clipped at the top: saturated
])
def test_signed_24_bit_results(world, zero, grams, raw):
    model, drv, load = cell(world, grams=grams, zero=zero)
    run_ms(world, 400)
    assert drv.read_raw() == raw
    assert drv.saturated == (raw == 0x7FFFFF)


def test_gain_pulses_select_the_next_conversion(world):
    model, drv, load = cell(world, grams=100.0, gain=64)  # 27 pulses: channel A, gain 64
    run_ms(world, 400)
    assert drv.read_raw() == 126000  # this conversion ran at the power-on gain, 128
    assert model.gain == 64
    run_ms(world, 100)
    assert drv.read_raw() == 63000


def test_clock_held_high_powers_the_chip_down(world):
    model, drv, load = cell(world, grams=50.0)
    run_ms(world, 400)
    clk = world.board.pin(CLK)
    clk.drive(1)
    world.modules["vclock"].run_to(world.modules["vclock"].now + 80)  # > 60 us high
    clk.drive(0)
    assert not drv.ready()  # reset: settling again
    run_ms(world, 399)
    assert not drv.ready()
    run_ms(world, 1)
    assert drv.read_raw() == 84000 + 21000


def test_tare_and_scale_give_grams(world):
    model, drv, load = cell(world, grams=250.0)  # the empty bowl
    run_ms(world, 400)
    drv.offset = drv.read_raw()
    drv.scale = 420.0
    load["g"] = 262.5
    run_ms(world, 100)
    assert drv.grams(drv.read_raw()) == pytest.approx(12.5)


def test_a_dead_chip_never_gets_ready(world):
    model, drv, load = cell(world, grams=1.0)
    model.kill()
    run_ms(world, 2000)
    assert drv.read_raw() is None
    model.kill(False)
    run_ms(world, 100)
    assert drv.read_raw() == 84420
