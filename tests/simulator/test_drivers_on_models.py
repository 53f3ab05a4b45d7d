"""Shared drivers against their models in a board's world: MCP23017 and the pulse counter."""
import pytest

def test_mcp23017_outputs_reach_the_model_in_one_transfer(world):
    chip = world.get("vmcp23017").Mcp23017()
    world.board.i2c_devices[(0, 0x20)] = chip
    machine = world.modules["vmachine"]
    drv = world.get("fab.drivers.mcp23017").MCP23017(machine.I2C(0), 0x20, inputs=0x8000)
    drv.write(0b1010_0000_0000_0101)
    assert chip.outputs() == 0b0010_0000_0000_0101  # bit 15 is an input, so not driven
    assert len(chip.history) == 1  # both ports changed together
    chip.inputs = 0x0000
    assert drv.read() & 0x8000 == 0
    drv.set(0, False)
    assert chip.outputs() & 1 == 0


def test_pulse_counter_reads_a_rotor_speed(world):
    machine = world.modules["vmachine"]
    src = world.get("vpulse").PulseSource(world.board.pin(15))
    pulses = world.get("fab.drivers.pulses").Pulses(machine.Pin(15, machine.Pin.IN), per_rev=2)
    src.set_hz(40.0)  # 2 magnets at 1200 rpm
    world.modules["vclock"].run_to(10_000_000)
    assert pulses.count == src.count == pytest.approx(400, abs=1)
    assert pulses.rpm() == pytest.approx(1200, rel=0.01)
