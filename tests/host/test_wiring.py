"""Wiring pictures: every shipped board with every machine draws as valid SVG, every role sits on
the pin the firmware's own check gives it, bus pins come from the board file, and a pin given
two jobs is refused with words that say which."""
import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import microfab_boards
import microfab_firmware
from microfab import config, pinouts, wiring

NS = "{http://www.w3.org/2000/svg}"
BOARDS = microfab_boards.names()
MACHINES = sorted(p.stem for p in (microfab_firmware.ROOT / "fab" / "machines").glob("*.py")
                  if p.stem != "__init__")
# The buses each machine takes, and the lines of each it wires to a part (the others are held
# by the bus and labelled so), as docs/machines/*.md describe them.
BUS_LINES = {"knitter": {"i2c0": ("sda", "scl")}, "windrig": {"i2c0": ("sda", "scl")},
             "polyfloss": {"spi0": ("sck", "miso", "cs")}}


def loom_buses(cfg):
    out = {}
    if cfg.get("solenoids") == "shiftreg":
        out["spi0"] = ("mosi", "sck", "cs")
    if cfg.get("solenoids") == "mcp23017":
        out["i2c0"] = ("sda", "scl")
    if cfg.get("seguin") == "uart":
        out["uart1"] = ("tx", "rx")
    return out


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    pins = {}
    for g in root.iter(NS + "g"):
        if g.get("class") == "pin" and g.get("data-gpio") is not None:
            role = [t.text for t in g.iter(NS + "text") if "role" in (t.get("class") or "")]
            pins[int(g.get("data-gpio"))] = (g.get("data-name"), role[0] if role else None)
    return root, pins


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("board", BOARDS)
def test_every_board_and_machine_draws_each_role_on_its_pin(board, machine):
    cfg = wiring.example(board, machine)
    svg = wiring.render(board, cfg)
    root, pins = parse(svg)
    assert root.get("data-board") == board and root.get("data-machine") == machine
    checked = config.check(microfab_boards.load(board), cfg)  # the firmware's own answer
    roles = dict(checked["pins"])
    from fab import config as fw

    for f in fw.machine_module(machine).SCHEMA:  # optional pins a config key gives
        if f[1] == "p" and checked["machine"][f[0]] is not None:
            roles[f[0]] = checked["machine"][f[0]]
    if machine == "loom" and checked["machine"]["solenoids"] == "gpio":
        roles.update({"shaft %d" % (i + 1): p
                      for i, p in enumerate(checked["machine"]["shaft_pins"])})
    bdata = microfab_boards.load(board)
    lay = pinouts.layout(board)
    for role, gpio in roles.items():
        if gpio in lay["onboard"]:
            assert "%s %s (%s)" % (pinouts.pin_name(board, gpio), lay["onboard"][gpio], role) in svg
            continue
        name, label = pins[gpio]
        assert label == role, (role, gpio, label)
        assert name.split()[0] in (pinouts.pin_name(board, gpio), "VP", "VN"), name
    buses = loom_buses(checked["machine"]) if machine == "loom" else BUS_LINES.get(machine, {})
    for bus, lines in buses.items():
        for key, gpio in bdata["buses"][bus].items():
            if key in ("id", "freq", "baudrate"):
                continue
            label = pins[gpio][1]
            if key in lines:
                assert label == "%s %s" % (bus, key.upper()), (bus, key, label)
            else:
                assert label == "%s %s (held by the bus)" % (bus, key.upper())
    # the supply-sense pin the runtime reads on every machine
    vs = bdata["pins"].get("vsense")
    if vs is not None and vs not in lay["onboard"]:
        assert pins[vs][1] == "vsense"
    # one job per pin: every used pin carries one label, and no label is on two pins
    labels = [label for _name, label in pins.values() if label]
    assert len(labels) == len(set(labels))
    assert set(roles) <= set(labels) | {r for r, g in roles.items() if g in lay["onboard"]}


def test_parts_and_wires_follow_the_config_not_the_docs():
    cfg = wiring.example("pico", "polyfloss")
    cfg["pins"]["heater"] = 8
    cfg["feed_driver"] = "a4988"
    cfg["sensor"] = "max6675"
    root, pins = parse(wiring.render("pico", cfg))
    assert pins[8][1] == "heater" and pins[6][1] is None
    titles = [g.get("data-title") for g in root.iter(NS + "g") if g.get("class") == "part"]
    assert "Feed driver: A4988" in titles and "MAX6675 thermocouple converter" in titles
    text = " ".join(t.text or "" for t in root.iter(NS + "text"))
    assert "VDD" in text and "VMOT" in text and "3V3" in text and "GND" in text  # power rails


def test_a_machine_without_a_drawing_of_its_own_gets_a_box_per_role(monkeypatch):
    monkeypatch.delitem(pinouts.PARTS, "windrig")
    cfg = wiring.example("pico", "windrig")
    root, pins = parse(wiring.render("pico", cfg))
    for role, gpio in cfg["pins"].items():
        assert pins[gpio][1] == role
    titles = {g.get("data-title") for g in root.iter(NS + "g") if g.get("class") == "part"}
    assert set(cfg["pins"]) <= titles


@pytest.mark.parametrize("machine, pins, words", [
    # a role on a bus pin: the firmware's check lets it through, the wiring refuses it
    ("knitter", {"enc_a": 20, "enc_b": 11, "enc_c": 12, "eol_left": 26, "eol_right": 27},
     ("GP20", "i2c0 SDA", "enc_a")),
    ("polyfloss", {"heater": 18, "contactor": 7, "drum": 10, "hall": 11, "lid": 12, "hx_clk": 13,
                   "hx_data": 14}, ("GP18", "spi0 SCK", "heater")),
    # two roles on one pin: refused by the firmware's own check, in its words
    ("windrig", {"anemometer": 6, "rotor": 6, "row": 10, "brake": 11, "motor": 12},
     ("'anemometer' and 'rotor' are both on pin 6",)),
])
def test_a_pin_given_two_jobs_is_refused(machine, pins, words):
    with pytest.raises(config.ConfigError) as e:
        wiring.render("pico", {"machine": machine, "pins": pins})
    for w in words:
        assert w in str(e.value), str(e.value)


def test_a_role_on_the_supply_sense_pin_is_refused():
    cfg = {"machine": "windrig",
           "pins": {"anemometer": 35, "rotor": 4, "row": 15, "brake": 14, "motor": 13}}
    config.check(microfab_boards.load("esp32_devkitc"), cfg)  # the firmware's check says yes
    with pytest.raises(config.ConfigError, match="GPIO35 is both vsense and anemometer"):
        wiring.render("esp32_devkitc", cfg)


def test_loom_shaft_on_the_pedal_pin_is_refused_by_the_looms_own_check():
    cfg = {"machine": "loom", "shafts": 4, "pins": {"pedal": 6}, "shaft_pins": [10, 11, 6, 13]}
    with pytest.raises(config.ConfigError, match="'pedal' and 'shaft_pins' shaft 3 are both on pin 6"):
        wiring.render("pico", cfg)


@pytest.mark.parametrize("board, counts", [("pico", (20, 20)), ("pico_w", (20, 20)),
                                           ("esp32_devkitc", (19, 19)),
                                           ("esp32s3_devkitc", (22, 22))])
def test_header_layouts_hold_every_pin_the_chip_brings_out(board, counts):
    lay = pinouts.layout(board)
    assert (len(lay["left"]), len(lay["right"])) == counts
    gpios = [gp for side in ("left", "right") for _n, _name, gp in lay[side] if gp is not None]
    assert len(gpios) == len(set(gpios))
    for gp in microfab_boards.load(board)["valid_pins"]:
        assert pinouts.where(board, gp) is not None, (board, gp)
    numbers = sorted(n for side in ("left", "right") for n, _name, _gp in lay[side])
    expect = list(range(1, 41)) if board.startswith("pico") else sorted(
        list(range(1, counts[0] + 1)) * 2)
    assert numbers == expect


def test_headers_are_in_physical_order():
    root = ET.fromstring(wiring.render("pico", wiring.example("pico", "axis")))
    by_number = {int(g.get("data-number")): g.get("data-name") for g in root.iter(NS + "g")
                 if g.get("class") == "pin"}
    assert (by_number[1], by_number[3], by_number[9], by_number[20]) == ("GP0", "GND", "GP6", "GP15")
    assert (by_number[21], by_number[36], by_number[40]) == ("GP16", "3V3(OUT)", "VBUS")
    assert pinouts.where("esp32_devkitc", 23) == ("right", 1, 2)  # J3 pin 2
    assert pinouts.where("esp32s3_devkitc", 48) == ("right", 15, 16)  # J3 pin 16
    assert pinouts.where("pico", 29) == ("onboard", None, None)


def test_the_picture_is_self_contained_and_the_same_every_time():
    a = wiring.render("esp32s3_devkitc", wiring.example("esp32s3_devkitc", "loom"))
    assert a == wiring.render("esp32s3_devkitc", wiring.example("esp32s3_devkitc", "loom"))
    root = ET.fromstring(a)
    for el in root.iter():
        assert el.tag.replace(NS, "") not in ("image", "script", "foreignObject", "use")
        for k, v in el.attrib.items():
            assert "href" not in k and "url(" not in v, (el.tag, k, v)


def test_a_board_without_a_drawn_header_is_refused(tmp_path):
    board = microfab_boards.load("pico")
    board["name"] = "my_board"
    with pytest.raises(KeyError, match="no header layout for board 'my_board'"):
        wiring.plan(board, {"machine": "axis"})


def run(tmp_path, capsys, **kw):
    args = argparse.Namespace(board="pico", machine=None, config=None, output=None)
    for k, v in kw.items():
        setattr(args, k, v)
    code = wiring.command(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_writes_the_file_and_refuses_bad_configs_in_one_line(tmp_path, capsys):
    out = tmp_path / "loom.svg"
    code, stdout, _ = run(tmp_path, capsys, machine="loom", output=str(out))
    assert code == 0 and "wrote" in stdout
    assert ET.parse(out).getroot().get("data-machine") == "loom"
    cfg = tmp_path / "m.json"
    cfg.write_text('{"machine": "knitter", "pins": {"enc_a": 21, "enc_b": 11, "enc_c": 12, '
                   '"eol_left": 26, "eol_right": 27}}')
    code, stdout, err = run(tmp_path, capsys, config=str(cfg))
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "pin GP21 is both enc_a and i2c0 SCL" in err
    code, _, err = run(tmp_path, capsys, machine="loom", config=str(cfg))
    assert code == 2 and "is for machine 'knitter', not 'loom'" in err
    code, _, err = run(tmp_path, capsys, machine="axis", board="no_such_board")
    assert code == 2 and "unknown board 'no_such_board'" in err
    code, stdout, _ = run(tmp_path, capsys, machine="windrig")
    assert code == 0 and stdout.startswith("<svg")


def test_docs_examples_match_the_machine_pages():
    """The pictures in the docs use the pins the machine pages' wiring tables give."""
    root = Path(__file__).resolve().parents[2] / "docs" / "machines"
    for board, machines in pinouts.EXAMPLES.items():
        for machine, cfg in machines.items():
            page = root / (machine + ".md")
            if not page.exists():
                continue
            text = page.read_text()
            wiring_section = text[text.index("## Wiring"):]
            for role, gpio in cfg.get("pins", {}).items():
                assert pinouts.pin_name(board, gpio) in wiring_section, (board, machine, role)
            for gpio in cfg.get("shaft_pins", []):
                assert pinouts.pin_name(board, gpio) in wiring_section, (board, machine, gpio)
