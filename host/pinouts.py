"""The physical side of the shipped boards, for wiring pictures (`microfab wiring`): header
layouts, the documented wiring of each machine, and the parts each machine wires.

The board files (boards/*.json) say which GPIOs a chip has and what the firmware wires
to them; this says where each GPIO sits on the board's headers, as a maker counts the pins. Each
header is listed in physical order, from the end with the USB connector (Pico) or the antenna
(ESP32 DevKits) down; an entry is (pin number printed in the board's docs, name, GPIO or None).

Sources: Raspberry Pi Pico datasheet section 1 (pinout; the Pico W has the same header), the
ESP32-DevKitC V4 user guide (headers J2 and J3), the ESP32-S3-DevKitC-1 v1.1 user guide (J1, J3).
"""
from __future__ import annotations


def _pico_left():
    # Pins 1-20 down the left side, USB at the top: two GPIOs, GND, three GPIOs, GND, ...
    out, gp = [], 0
    for n in range(1, 21):
        if n in (3, 8, 13, 18):
            out.append((n, "GND", None))
        else:
            out.append((n, "GP%d" % gp, gp))
            gp += 1
    return out


_PICO_RIGHT = [  # pins 40 down to 21, USB at the top
    (40, "VBUS", None), (39, "VSYS", None), (38, "GND", None), (37, "3V3_EN", None),
    (36, "3V3(OUT)", None), (35, "ADC_VREF", None), (34, "GP28 ADC2", 28), (33, "AGND", None),
    (32, "GP27 ADC1", 27), (31, "GP26 ADC0", 26), (30, "RUN", None), (29, "GP22", 22),
    (28, "GND", None), (27, "GP21", 21), (26, "GP20", 20), (25, "GP19", 19), (24, "GP18", 18),
    (23, "GND", None), (22, "GP17", 17), (21, "GP16", 16),
]

_PICO = {
    "title": "Raspberry Pi Pico",
    "top": "USB",
    "prefix": "GP",
    "left": _pico_left(),
    "right": _PICO_RIGHT,
    # On the board, not on a header (datasheet 2.1): GP23 SMPS mode, GP24 VBUS sense, GP25 the
    # LED, GP29 (ADC3) VSYS/3 through the on-board divider.
    "onboard": {23: "SMPS power-save", 24: "VBUS sense", 25: "LED", 29: "ADC3: VSYS/3 divider"},
}

_PICO_W = dict(_PICO, title="Raspberry Pi Pico W",
               # GP23, GP24, GP25 and GP29 belong to the CYW43439 radio on a Pico W; its LED is
               # on the radio chip (WL_GPIO0), and VSYS/3 is read through the radio's pins.
               onboard={})

_ESP32_DEVKITC = {
    "title": "ESP32-DevKitC V4",
    "top": "antenna",
    "prefix": "GPIO",
    "left": [  # J2
        (1, "3V3", None), (2, "EN", None), (3, "VP GPIO36", 36), (4, "VN GPIO39", 39),
        (5, "GPIO34", 34), (6, "GPIO35", 35), (7, "GPIO32", 32), (8, "GPIO33", 33),
        (9, "GPIO25", 25), (10, "GPIO26", 26), (11, "GPIO27", 27), (12, "GPIO14", 14),
        (13, "GPIO12", 12), (14, "GND", None), (15, "GPIO13", 13), (16, "SD2 (flash)", None),
        (17, "SD3 (flash)", None), (18, "CMD (flash)", None), (19, "5V", None),
    ],
    "right": [  # J3
        (1, "GND", None), (2, "GPIO23", 23), (3, "GPIO22", 22), (4, "TX0 (USB)", None),
        (5, "RX0 (USB)", None), (6, "GPIO21", 21), (7, "GND", None), (8, "GPIO19", 19),
        (9, "GPIO18", 18), (10, "GPIO5", 5), (11, "GPIO17", 17), (12, "GPIO16", 16),
        (13, "GPIO4", 4), (14, "GPIO0", 0), (15, "GPIO2", 2), (16, "GPIO15", 15),
        (17, "SD1 (flash)", None), (18, "SD0 (flash)", None), (19, "CLK (flash)", None),
    ],
    "onboard": {},
}

_ESP32S3_DEVKITC = {
    "title": "ESP32-S3-DevKitC-1",
    "top": "antenna",
    "prefix": "GPIO",
    "left": [  # J1
        (1, "3V3", None), (2, "3V3", None), (3, "RST", None), (4, "GPIO4", 4), (5, "GPIO5", 5),
        (6, "GPIO6", 6), (7, "GPIO7", 7), (8, "GPIO15", 15), (9, "GPIO16", 16),
        (10, "GPIO17", 17), (11, "GPIO18", 18), (12, "GPIO8", 8), (13, "GPIO3", 3),
        (14, "GPIO46", None), (15, "GPIO9", 9), (16, "GPIO10", 10), (17, "GPIO11", 11),
        (18, "GPIO12", 12), (19, "GPIO13", 13), (20, "GPIO14", 14), (21, "5V", None),
        (22, "GND", None),
    ],
    "right": [  # J3; GPIO35-37 carry the octal PSRAM of an N8R8 module, GPIO46 and 45 straps
        (1, "GND", None), (2, "TX (USB-UART)", None), (3, "RX (USB-UART)", None),
        (4, "GPIO1", 1), (5, "GPIO2", 2), (6, "GPIO42", 42), (7, "GPIO41", 41),
        (8, "GPIO40", 40), (9, "GPIO39", 39), (10, "GPIO38", 38), (11, "GPIO37 (PSRAM)", None),
        (12, "GPIO36 (PSRAM)", None), (13, "GPIO35 (PSRAM)", None), (14, "GPIO0", 0),
        (15, "GPIO45", None), (16, "GPIO48", 48), (17, "GPIO47", 47), (18, "GPIO21", 21),
        (19, "GPIO20", 20), (20, "GPIO19", 19), (21, "GND", None), (22, "GND", None),
    ],
    "onboard": {},
}

LAYOUTS = {
    "pico": _PICO,
    "pico_w": _PICO_W,
    "esp32_devkitc": _ESP32_DEVKITC,
    "esp32s3_devkitc": _ESP32S3_DEVKITC,
}


def layout(board_name: str) -> dict:
    try:
        return LAYOUTS[board_name]
    except KeyError:
        raise KeyError("no header layout for board '%s' in microfab/pinouts.py; known: %s"
                       % (board_name, ", ".join(sorted(LAYOUTS)))) from None


def pin_name(board_name: str, gpio: int) -> str:
    """A GPIO as the board's docs and ours print it: GP6 on a Pico, GPIO32 on an ESP32."""
    return "%s%d" % (layout(board_name)["prefix"], gpio)


def where(board_name: str, gpio: int):
    """(side, index, physical pin number) of a GPIO on the headers; side "onboard" for a GPIO
    wired on the board itself, None when the board does not bring it out."""
    lay = layout(board_name)
    for side in ("left", "right"):
        for i, (num, _name, gp) in enumerate(lay[side]):
            if gp == gpio:
                return side, i, num
    if gpio in lay["onboard"]:
        return "onboard", None, None
    return None


# The documented wiring of each machine on each board (the tables in docs/machines/*.md and
# docs/config.md): what `microfab wiring` draws when no --config is given, and what the docs'
# pictures show. Pins the board file already wires (the axis, the polyfloss feed stepper) are
# left out; the machine config's other keys choose the parts drawn.
_PICO_EXAMPLES = {
    "axis": {"machine": "axis"},
    "loom": {"machine": "loom", "shafts": 8, "solenoids": "gpio", "pins": {"pedal": 6},
             "shaft_pins": [10, 11, 12, 13, 14, 15, 22, 26]},
    "knitter": {"machine": "knitter", "model": "kh910", "yarn_break_pin": 13,
                "pins": {"enc_a": 10, "enc_b": 11, "enc_c": 12, "eol_left": 26, "eol_right": 27}},
    "polyfloss": {"machine": "polyfloss", "sensor": "max31855", "feed_driver": "tmc2209",
                  "pins": {"heater": 6, "contactor": 7, "drum": 10, "hall": 11, "lid": 12,
                           "hx_clk": 13, "hx_data": 14}},
    "windrig": {"machine": "windrig", "mode": "buffered",
                "pins": {"anemometer": 6, "rotor": 7, "row": 10, "brake": 11, "motor": 12}},
}

EXAMPLES = {
    "pico": _PICO_EXAMPLES,
    "pico_w": _PICO_EXAMPLES,
    "esp32_devkitc": {
        "axis": {"machine": "axis"},
        # Few free pins on this module: the shift-register chain (docs/machines/loom.md).
        "loom": {"machine": "loom", "shafts": 16, "solenoids": "shiftreg", "sr_oe_pin": 4,
                 "pins": {"pedal": 32}},
        "knitter": {"machine": "knitter", "model": "kh910", "yarn_break_pin": 32,
                    "pins": {"enc_a": 13, "enc_b": 14, "enc_c": 4, "eol_left": 34,
                             "eol_right": 36}},
        "polyfloss": {"machine": "polyfloss", "sensor": "max31855", "feed_driver": "tmc2209",
                      "pins": {"heater": 32, "contactor": 4, "drum": 13, "hall": 2, "lid": 15,
                               "hx_clk": 14, "hx_data": 36}},
        "windrig": {"machine": "windrig", "mode": "buffered",
                    "pins": {"anemometer": 32, "rotor": 4, "row": 15, "brake": 14, "motor": 13}},
    },
    "esp32s3_devkitc": {
        "axis": {"machine": "axis"},
        "loom": {"machine": "loom", "shafts": 24, "solenoids": "mcp23017", "seguin": "uart",
                 "pins": {"pedal": 14}},
        "knitter": {"machine": "knitter", "model": "kh910", "yarn_break_pin": 21,
                    "pins": {"enc_a": 14, "enc_b": 15, "enc_c": 16, "eol_left": 2,
                             "eol_right": 3}},
        "polyfloss": {"machine": "polyfloss", "sensor": "max31855", "feed_driver": "tmc2209",
                      "pins": {"heater": 14, "contactor": 15, "drum": 16, "hall": 21, "lid": 38,
                               "hx_clk": 39, "hx_data": 40}},
        "windrig": {"machine": "windrig", "mode": "buffered",
                    "pins": {"anemometer": 14, "rotor": 15, "row": 16, "brake": 21,
                             "motor": 38}},
    },
}


# --- the parts each machine wires (from its module's PINS and SCHEMA, and docs/machines/*.md) ---

_DRV = {"a4988": ("A4988", "VDD", "EN (low = on)", "MS1 MS2 MS3", {1: "L L L", 2: "H L L",
                                                                   4: "L H L", 8: "H H L",
                                                                   16: "H H H"}),
        "drv8825": ("DRV8825", None, "/ENBL (low = on)", "M0 M1 M2",
                    {1: "L L L", 2: "H L L", 4: "L H L", 8: "H H L", 16: "L L H", 32: "H L H"}),
        "tmc2209": ("TMC2209", "VIO", "EN (low = on)", "MS1 MS2",
                    {8: "L L", 16: "H H", 32: "H L", 64: "L H"})}


def _stepper(pl, what, driver, microsteps=None):
    name, vlogic, en, ms, table = _DRV[driver]
    r = pl.roles
    notes = ["motor coils to 1A 1B / 2A 2B"]
    if microsteps is not None:
        notes.append("%s = %s for %d microsteps" % (ms, table[microsteps], microsteps)
                     if microsteps in table else
                     "microsteps %d: not settable by pins on a %s" % (microsteps, name))
    if driver == "drv8825":
        notes.append("/RESET and /SLEEP to 3V3")
    pwr = ([(vlogic, "3V3")] if vlogic else []) + [("GND", "GND"), ("VMOT", "VMOT")]
    pl.part("%s driver: %s" % (what, name), [("STEP", pl.pin("step", r["step"])),
                                             ("DIR", pl.pin("dir", r["dir"])),
                                             (en, pl.pin("enable", r["enable"]))], pwr, notes)


def _supply(pl, title, plus="VMOT", note=None):
    pl.part(title, (), [("+", "VMOT"), ("-", "GND")],
            ["its - joins the board's GND"] + ([note] if note else []))
    pl.rail_notes["VMOT"] = plus


def _uln(pl, n, coils):
    pl.part("ULN2803 x%d: %s" % ((n + 7) // 8, coils), (), [("GND", "GND"), ("COM", "VMOT")],
            ["each coil from the supply + to an OUT pin", "COM carries the flyback diodes"])


def _axis(pl):
    c, r = pl.cfg, pl.roles
    pl.summary = "driver %s, %d microsteps, endstop pressed = %d" % (
        c["driver"], c["microsteps"], c["endstop_active"])
    _stepper(pl, "Axis", c["driver"], c["microsteps"])
    low = c["endstop_active"] == 0
    pl.part("Endstop switch", [("NO" if low else "OUT", pl.pin("endstop", r["endstop"]))],
            [("COM", "GND")] if low else [("VCC", "3V3"), ("GND", "GND")],
            ["to GND, the internal pull-up" if low else "reads 1 when pressed"])
    _supply(pl, "Motor supply 12-24 V")


def _mcp(pl, addr, why, outs):
    b = pl.bus("i2c0", ("sda", "scl"), why)
    pl.part("MCP23017 at 0x%02x" % addr, [("SDA", b["sda"]), ("SCL", b["scl"])],
            [("VDD", "3V3"), ("VSS", "GND")],
            ["A2 A1 A0 = %s, /RESET to 3V3" % " ".join("HL"[not (addr - 32) >> k & 1]
                                                         for k in (2, 1, 0)), outs])


def _loom(pl):
    c, r = pl.cfg, pl.roles
    n, kind = c["shafts"], c["solenoids"]
    pl.summary = "%d shafts, solenoids %s, Séguin %s" % (n, kind, c["seguin"])
    low = c["pedal_active"] == 0
    pl.part("Pedal switch", [("NO", pl.pin("pedal", r["pedal"]))],
            [("COM", "GND")] if low else [("COM", "3V3"), ("10 k", "GND")],
            ["pressed = %d" % c["pedal_active"]])
    if kind == "gpio":
        for k in range(0, n, 8):
            pl.part("ULN2803: shafts %d-%d" % (k + 1, min(n, k + 8)),
                    [("IN%d" % (i - k + 1), pl.pin("shaft %d" % (i + 1), c["shaft_pins"][i]))
                     for i in range(k, min(n, k + 8))], [("GND", "GND"), ("COM", "VMOT")],
                    ["OUTn to the coil of its shaft", "coils from the supply +"])
    elif kind == "shiftreg":
        b = pl.bus("spi0", ("mosi", "sck", "cs"), "solenoids 'shiftreg'")
        sig = [("SER", b["mosi"]), ("SRCLK", b["sck"]), ("RCLK", b["cs"])]
        if c["sr_oe_pin"] is not None:
            sig.append(("/OE, 10 k to 3V3", pl.pin("sr_oe_pin", c["sr_oe_pin"])))
        pl.part("74HC595 x%d, chained" % ((n + 7) // 8), sig, [("VCC", "3V3"), ("GND", "GND")],
                ["QH' to SER of the next chip", "Q0-Q7 to ULN2803 inputs, shaft 1 first"])
        _uln(pl, n, "%d shafts" % n)
    else:
        for k in range(0, n, 16):
            _mcp(pl, c["mcp_addr"] + k // 16, "solenoids 'mcp23017'",
                 "GPA0-GPB7 to ULN2803: shafts %d-%d" % (k + 1, min(n, k + 16)))
        _uln(pl, n, "%d shafts" % n)
    if c["seguin"] == "uart":
        b = pl.bus("uart1", ("tx", "rx"), "seguin 'uart'")
        pl.part("USB-serial adapter, 3.3 V", [("RXD", b["tx"]), ("TXD", b["rx"])],
                [("GND", "GND")], ["to the weaving server: Séguin at %d baud" % c["seguin_baud"]])
    _supply(pl, "Coil supply (solenoid voltage)")


def _knitter(pl):
    c, r = pl.cfg, pl.roles
    pl.summary = "model %s, MCP23017 at 0x%02x" % (c["model"], c["mcp_addr"])
    p = lambda role: pl.pin(role, r[role])  # noqa: E731
    pl.part("Carriage encoder (%s)" % c["model"].upper(),
            [("A", p("enc_a")), ("B", p("enc_b")), ("C", p("enc_c"))], [("GND", "GND")],
            ["5 V signals: 10 k in series, 20 k to GND"])
    pl.part("End-of-line hall sensors", [("left", p("eol_left")), ("right", p("eol_right"))],
            [("GND", "GND")], ["analog, through the same dividers",
                               "hall_low %g V, hall_high %g V" % (c["hall_low"], c["hall_high"])])
    yp = c.get("yarn_break_pin")
    if yp is not None:
        pl.part("Yarn-break switch (NC)", [("NC", pl.pin("yarn_break_pin", yp))], [("COM", "GND")],
                ["closed while the yarn holds the arm"])
    sol = "outputs 3-14: 12 solenoids" if c["model"] == "kh270" else "16 needle solenoids"
    _mcp(pl, c["mcp_addr"], "the knitter's MCP23017", "to ULN2803 x2: " + sol)
    _uln(pl, 16, sol)
    _supply(pl, "Solenoid supply (the machine's own)")


def _polyfloss(pl):
    c, r = pl.cfg, pl.roles
    pl.summary = "%s, drum %s, feed %s" % (c["sensor"], c["drum_drive"], c["feed_driver"])
    p = lambda role: pl.pin(role, r[role])  # noqa: E731
    pl.part("SSR for the heater band", [("DC +", p("heater"))], [("DC -", "GND")],
            ["%g W band on the mains side:" % c["heater_watts"], "fused, earthed, qualified wiring"])
    pl.part("Contactor coil driver", [("IN", p("contactor"))], [("GND", "GND")],
            ["relay module, or transistor + flyback", "lid switch in series with the coil"])
    pl.part("Drum " + ("motor driver" if c["drum_drive"] == "dc" else "ESC"),
            [("PWM" if c["drum_drive"] == "dc" else "signal", p("drum"))],
            [("GND", "GND"), ("V+", "VMOT")], ["%g W" % c["drum_watts"]])
    pl.part("Drum hall sensor (A3144)", [("OUT", p("hall"))], [("VCC", "3V3"), ("GND", "GND")],
            ["%d magnet(s) per turn" % c["hall_per_rev"]])
    pl.part("Lid switch", [("NO", p("lid"))], [("COM", "GND")],
            ["a shut lid reads %d" % c["lid_closed_level"]])
    pl.part("HX711 + load cell", [("SCK", p("hx_clk")), ("DT", p("hx_data"))],
            [("VCC", "3V3"), ("GND", "GND")], ["load cell to E+ E- A+ A-"])
    b = pl.bus("spi0", ("sck", "miso", "cs"), "the thermocouple converter")
    pl.part("%s thermocouple converter" % c["sensor"].upper(),
            [("SCK", b["sck"]), ("SO", b["miso"]), ("CS", b["cs"])],
            [("VCC", "3V3"), ("GND", "GND")], ["type K thermocouple to T+ T-"])
    if c["feed_driver"] == "none":
        pl.part("Feed stepper: not fitted", [("STEP", p("step")), ("DIR", p("dir")),
                                             ("EN", p("enable"))], (), ["feed_driver none"])
    else:
        _stepper(pl, "Feed", c["feed_driver"])
    _supply(pl, "DC supply 12-24 V (drum, feed)")


def _windrig(pl):
    c, r = pl.cfg, pl.roles
    pl.summary = "mode %s, monitors %s at 0x%02x and 0x%02x" % (
        c["mode"], c["ina"], c["gen_addr"], c["load_addr"])
    p = lambda role: pl.pin(role, r[role])  # noqa: E731
    pl.part("Anemometer (reed switch)", [("contact", p("anemometer"))], [("contact", "GND")],
            ["%g m/s per Hz" % c["anemometer_factor"]])
    pl.part("Rotor hall sensor", [("OUT", p("rotor"))], [("VCC", "3V3"), ("GND", "GND")],
            ["%d pulse(s) per turn" % c["rotor_pulses"]])
    pl.part("Row hall sensor (cam)", [("OUT", p("row"))], [("VCC", "3V3"), ("GND", "GND")],
            ["%d pulse(s) per row" % c["row_pulses"]])
    pl.part("Brake relay / actuator driver", [("IN", p("brake"))], [("GND", "GND")],
            ["brakes at level %d" % c["brake_active"]])
    if c["mode"] == "buffered":
        pl.part("Knitting motor driver", [("PWM", p("motor"))], [("GND", "GND"), ("V+", "VMOT")],
                ["%g W at full duty, %d Hz" % (c["motor_w"], c["motor_hz"])])
    else:
        pl.part("Motor output: unused (direct)", [("PWM", p("motor"))], (), ["wired, not driven"])
    b = pl.bus("i2c0", ("sda", "scl"), "the power monitors")
    for side, addr in (("generator", c["gen_addr"]), ("load", c["load_addr"])):
        pl.part("%s at 0x%02x: %s" % (c["ina"].upper(), addr, side),
                [("SDA", b["sda"]), ("SCL", b["scl"])], [("VCC", "3V3"), ("GND", "GND")],
                ["shunt %g ohm on the %s side" % (c["shunt_ohm"], side)])
    _supply(pl, "Battery bus 12 V, %g Ah" % c["battery_ah"], "battery +",
            "a 5 V buck converter from it feeds the board")


def generic(pl):
    """A machine this module does not know: one box per role, on its pin; and any pin key of a
    schema (kind "p") that a builder above does not draw yet."""
    for role, gp in pl.roles.items():
        if gp not in pl.uses:
            pl.part(role, [("signal", pl.pin(role, gp))], [("GND", "GND")])
    for f in pl.schema:
        gp = pl.cfg.get(f[0]) if f[1] == "p" else None
        if gp is not None and pl.uses.get(gp, ("",))[0] != f[0]:
            pl.part(f[0], [("signal", pl.pin(f[0], gp))], [("GND", "GND")])


PARTS = {"axis": _axis, "loom": _loom, "knitter": _knitter, "polyfloss": _polyfloss,
         "windrig": _windrig}
