"""The thermocouple converters: the MAX31855 and MAX6675 drivers decode the words of their
datasheets (fed raw through the virtual SPI bus) and read the simulator's chip models, faults,
conversion times and all."""
import pytest


CS = 17  # the Pico's spi0 chip select


class Word:
    """A device answering every transfer with one fixed word, most significant byte first."""

    def __init__(self, word, size):
        self.word, self.size = word, size

    def transfer(self, data):
        return self.word.to_bytes(self.size, "big")[:len(data)]


def chip(world, name, dev):
    world.board.spi_devices.append((CS, dev))
    machine = world.modules["vmachine"]
    mod = world.get("fab.drivers." + name)
    cls = mod.MAX31855 if name == "max31855" else mod.MAX6675
    return cls(machine.SPI(0), machine.Pin(CS, machine.Pin.OUT, value=1))


# MAX31855 datasheet Table 1 (thermocouple, D31..D18) and Table 2 (internal, D15..D4) examples.
@pytest.mark.parametrize("word, temp, internal", [
    (0x64007F00, 1600.0, 127.0),  # 0110 0100 0000 00 | 0111 1111 0000
    (0xF060C900, -250.0, -55.0),  # 1111 0000 0110 00 | 1100 1001 0000
    (0x064C1900, 100.75, 25.0),
    (0xFFFCFFF0, -0.25, -0.0625),
])
def test_max31855_decodes_signed_thermocouple_and_internal_temperatures(world, word, temp,
                                                                        internal):
    tc = chip(world, "max31855", Word(word, 4))
    assert tc.read() == temp and tc.internal == internal and tc.fault == ""


@pytest.mark.parametrize("low_bits, fault", [(1, "open"), (2, "short_gnd"), (4, "short_vcc")])
def test_max31855_fault_bits(world, low_bits, fault):
    tc = chip(world, "max31855", Word(0x00010000 | 0x1900 | low_bits, 4))  # D16 + OC/SCG/SCV
    assert tc.read() is None and tc.fault == fault


@pytest.mark.parametrize("word", [0xFFFFFFFF, 0x00000000, 0x06420008, 0x06460000])
def test_max31855_no_chip_on_the_bus(world, word):
    # All ones (MISO floating), all zeros (MISO shorted), a reserved bit (D3 or D17) set.
    tc = chip(world, "max31855", Word(word, 4))
    assert tc.read() is None and tc.fault == "no_chip"


def test_max31855_model_reads_back_through_the_driver(world):
    clock = world.modules["vclock"]
    vth = world.get("vthermal")
    # The drum warms 10 C/s; no noise: the reading is the temperature to the 0.25 C step.
    dev = vth.Max31855(lambda: 200.0 + 10 * clock.now / 1e6, world.board.rng, noise=0.0, t_cj=24.0)
    tc = chip(world, "max31855", dev)
    assert tc.read() == 200.0 and tc.internal == 24.0 and not tc.same
    clock.run_to(50_000)  # within the 100 ms conversion: the previous result again
    assert tc.read() == 200.0 and tc.same
    clock.run_to(200_000)
    assert tc.read() == 202.0 and not tc.same
    dev.fault = "short_vcc"
    clock.run_to(400_000)
    assert tc.read() is None and tc.fault == "short_vcc"
    dev.heal()
    clock.run_to(600_000)
    assert tc.read() == 206.0
    dev.frozen = True  # stops converting: the same word forever
    clock.run_to(5_000_000)
    assert tc.read() == 206.0 and tc.same
    dev.unplugged = True
    clock.run_to(5_200_000)
    assert tc.read() is None and tc.fault == "no_chip"


def test_max31855_negative_temperatures_from_the_model(world):
    vth = world.get("vthermal")
    tc = chip(world, "max31855", vth.Max31855(lambda: -41.3, world.board.rng, noise=0.0))
    assert tc.read() == -41.25


# MAX6675: D14..D3 = temperature, 0.25 C per LSB; D2 = open input; D15 and D1 read 0.
@pytest.mark.parametrize("word, temp", [(0x7FF8, 1023.75), (0x0C88, 100.25), (0x0008, 0.25),
                                        (0x0C89, 100.25)])  # D0 is three-state: ignored
def test_max6675_decodes_its_word(world, word, temp):
    tc = chip(world, "max6675", Word(word, 2))
    assert tc.read() == temp and tc.fault == ""


@pytest.mark.parametrize("word, fault", [(0x0C8C, "open"), (0xFFFF, "no_chip"), (0x8C88, "no_chip"),
                                         (0x0C8A, "no_chip"), (0x0000, "no_chip")])
def test_max6675_open_input_and_no_chip(world, word, fault):
    tc = chip(world, "max6675", Word(word, 2))
    assert tc.read() is None and tc.fault == fault


def test_max6675_model_conversion_time_and_faults(world):
    clock = world.modules["vclock"]
    vth = world.get("vthermal")
    dev = vth.Max6675(lambda: 230.0 + clock.now / 1e6, world.board.rng, noise=0.0, t_cj=25.0)
    tc = chip(world, "max6675", dev)
    assert tc.read() == 230.0
    clock.run_to(200_000)  # a read within 0.22 s stops the conversion: the old result
    assert tc.read() == 230.0 and tc.same
    clock.run_to(500_000)
    assert tc.read() == 230.5
    dev.fault = "short_gnd"  # the MAX6675 cannot flag a short: it reads its own temperature
    clock.run_to(800_000)
    assert tc.read() == 25.0 and tc.fault == ""
    dev.fault = "open"
    clock.run_to(1_100_000)
    assert tc.read() is None and tc.fault == "open"
