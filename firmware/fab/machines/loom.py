# The dobby loom: 4 to 32 shafts, each lifted by a solenoid. The weaver presses the pedal for every
# pick and the loom opens the next shed of the lift plan (one shaft bitmask per pick) that the host
# sent, weaving or unweaving. Or, with "seguin" set, the loom speaks the Séguin dobby protocol
# (fab.seguin) and a weaving server chooses the shafts.
# Metadata first and hal-free, so that the host can validate a config with this very module.
from fab.config import ConfigError, kind_of

NAME = "loom"
PINS = ("pedal",)
CALIBRATE = ()
SCHEMA: tuple = (
    ("shafts", "i", 8, 4, 32),
    ("solenoids", "c", "gpio", ("gpio", "shiftreg", "mcp23017"), None),
    ("shaft_pins", "l", [], 0, 32),  # solenoids "gpio": one pin per shaft, shaft 1 first
    ("sr_oe_pin", "p", None, 0, 63),  # solenoids "shiftreg": the 74HC595 /OE pin, if wired
    ("mcp_addr", "i", 32, 32, 39),  # solenoids "mcp23017": the first chip (0x20-0x27)
    ("pedal_active", "i", 0, 0, 1, "level"),
    ("debounce_ms", "i", 20, 2, 500, "ms"),
    ("settle_ms", "i", 80, 0, 2000, "ms"),
    ("picks_per_cm", "f", 10.0, 0.5, 200.0, "picks/cm"),
    ("max_picks", "i", 1000, 16, 20000, "picks"),  # 4 bytes each, allocated at boot
    ("hold_max_s", "i", 120, 0, 3600, "s"),
    ("duty_max_pct", "i", 100, 10, 100, "%"),
    ("duty_window_s", "i", 60, 5, 3600, "s"),
    ("seguin", "c", "off", ("off", "uart", "usb"), None),
    ("seguin_dialect", "c", "seguin", ("seguin", "example"), None),
    ("seguin_baud", "i", 9600, 1200, 921600, "baud"),  # the Séguin loom's FTDI port runs at 9600
)


def check(cfg, board, pins):
    """What the schema cannot say: the pins and buses the chosen solenoid driver needs, on pins
    the board has, shared with nothing else. Hal-free, so that the host can run it too."""
    used = {}
    for role in pins:
        used[pins[role]] = "pins '%s'" % role

    def take(pin, what):
        if isinstance(pin, bool) or not isinstance(pin, int):
            raise ConfigError("machine config: %s is a %s, expected a pin number"
                              % (what, kind_of(pin)))
        if pin not in board["valid_pins"]:
            raise ConfigError("machine config: %s is on pin %d, which %s does not have"
                              % (what, pin, board["chip"]))
        if pin in used:
            raise ConfigError("machine config: %s and %s are both on pin %d"
                              % (used[pin], what, pin))
        used[pin] = what

    def bus(name, why):
        b = board["buses"].get(name)
        if not b:
            raise ConfigError("machine config: %s needs bus %s, which board %s does not have"
                              % (why, name, board["name"]))
        for k in ("sda", "scl", "sck", "mosi", "miso", "cs", "tx", "rx"):
            if k in b:
                take(b[k], "%s %s" % (name, k))
        return b

    n, kind = cfg["shafts"], cfg["solenoids"]
    if kind == "gpio":
        if len(cfg["shaft_pins"]) != n:
            raise ConfigError("machine config: 'shaft_pins' lists %d pins, expected one per shaft "
                              "(shafts %d, solenoids 'gpio')" % (len(cfg["shaft_pins"]), n))
        for i in range(n):
            take(cfg["shaft_pins"][i], "'shaft_pins' shaft %d" % (i + 1))
    elif cfg["shaft_pins"]:
        raise ConfigError("machine config: 'shaft_pins' is for solenoids 'gpio'; solenoids '%s' "
                          "drive the shafts over a bus" % kind)
    if kind == "shiftreg":
        if "cs" not in bus("spi0", "solenoids 'shiftreg'"):
            raise ConfigError("machine config: solenoids 'shiftreg' latch the 74HC595 chain with "
                              "the 'cs' pin of bus spi0, which board %s does not give"
                              % board["name"])
    if kind == "mcp23017":
        bus("i2c0", "solenoids 'mcp23017'")
        if n > 16 and cfg["mcp_addr"] == 39:
            raise ConfigError("machine config: %d shafts need two MCP23017 at 'mcp_addr' and the "
                              "next address, expected 'mcp_addr' from 32 to 38" % n)
    if cfg["sr_oe_pin"] is not None:
        if kind != "shiftreg":
            raise ConfigError("machine config: 'sr_oe_pin' is for solenoids 'shiftreg'")
        take(cfg["sr_oe_pin"], "'sr_oe_pin'")
    if cfg["seguin"] == "uart":
        bus("uart1", "seguin 'uart'")


class Machine:
    PRODUCTION = ("made", "picks")  # the status field that counts what it made, its unit
    def __init__(self, cfg, pins, board):
        from fab import hal
        from fab.drivers.solenoids import Bank
        from fab.loom import Loom

        check(cfg, board, pins)
        self.cfg = cfg
        n = cfg["shafts"]
        bank = Bank(_outputs(cfg, board, hal), n, cfg["hold_max_s"] * 1000, cfg["duty_max_pct"],
                    cfg["duty_window_s"] * 1000, "shaft")
        pedal = hal.inp(pins["pedal"], pull_up=cfg["pedal_active"] == 0)
        dobby = uart = None
        mode = cfg["seguin"]
        if mode == "usb":
            from fab import runtime

            if not getattr(runtime, "MACHINE_LINK", False):
                raise ConfigError("machine config: seguin 'usb' needs a firmware whose runtime "
                                  "hands the USB link to the machine; use 'uart'")
        if mode != "off":
            from fab import seguin  # only then: a loom without it keeps the RAM

            dobby = seguin.Dobby(n, seguin.DIALECTS.index(cfg["seguin_dialect"]))
        if mode == "uart":
            uart = hal.uart(dict(board["buses"]["uart1"], baudrate=cfg["seguin_baud"]))
        self.loom = Loom(cfg, bank, pedal, dobby, uart)
        hal.on_change(pedal, self.loom.edge)
        if dobby is not None and uart is not None:
            dobby.hello()  # a loom announces itself when its line comes up
            self.loom.flush()
        # The runtime runs this in place of its JSON link when a machine sets it (seguin "usb").
        self.usb_link = self.loom.usb_task if mode == "usb" else None

    def commands(self, table):
        table.add("pattern", self._pattern,
                  (("name", "s", 1), ("shafts", "i", 1), ("picks", "i", 1)))
        table.add("picks", self._picks, (("start", "i", 1), ("masks", "l", 1)))
        table.add("goto", self._goto, (("pick", "i", 1), ("repeat", "i", 0), ("woven", "i", 0)))
        table.add("direction", self._direction, (("dir", "s", 1),))
        table.add("pedal", self._pedal)
        table.add("rest", self._rest)

    def _pattern(self, args):
        self.loom.pattern(args["name"], args["shafts"], args["picks"])
        return {"pattern": args["name"], "shafts": args["shafts"], "picks": args["picks"]}

    def _picks(self, args):
        self.loom.load(args["start"], args["masks"])
        return {"loaded": self.loom.loaded, "picks": self.loom.picks}

    def _goto(self, args):
        self.loom.goto(args["pick"], args["repeat"], args["woven"])
        return {"next_pick": self.loom.next_pick()}

    def _direction(self, args):
        d = args["dir"]
        if d not in ("weave", "unweave"):
            raise ValueError("dir must be 'weave' or 'unweave', got '%s'" % d)
        self.loom.set_direction(d == "weave")
        return {"direction": d, "next_pick": self.loom.next_pick()}

    def _pedal(self, args):
        """What a press of the pedal does, from the host (a `next pick` button)."""
        self.loom.press()
        return {"pick": self.loom.pick, "shed": self.loom.shed, "note": self.loom.note}

    def _rest(self, args):
        """Every shaft down (the weaver's break); the next press opens the next pick."""
        self.loom.close("")
        return {"shed": self.loom.shed}

    def tasks(self):
        return (("pedal", self.loom.pedal_task), ("loom", self.loom.tick_task))

    def status(self):
        s = self.loom.status()
        s["seguin"] = self.cfg["seguin"]
        return s

    def stop(self):
        was = self.loom.shed
        self.loom.drop()
        return was

    def safe(self):
        try:
            self.loom.drop()
        except OSError:
            pass  # an I2C expander that does not answer: nothing more can be done from here


def _outputs(cfg, board, hal):
    """The solenoid driver chosen by the config, its pins de-energised first."""
    n, kind = cfg["shafts"], cfg["solenoids"]
    if kind == "gpio":
        from fab.drivers.solenoids import PinOutputs

        return PinOutputs([hal.out(p, 0) for p in cfg["shaft_pins"]])
    if kind == "shiftreg":
        from fab.drivers.shiftreg import ShiftReg

        b = board["buses"]["spi0"]
        oe = cfg["sr_oe_pin"]
        # /OE safe level is high: hal.safe_state() turns every solenoid off with one pin write.
        return ShiftReg(hal.spi(b), hal.out(b["cs"], 0), (n + 7) // 8,
                        None if oe is None else hal.out(oe, 1))
    from fab.drivers.mcp23017 import MCP23017
    from fab.drivers.solenoids import McpOutputs

    bus = hal.i2c(board["buses"]["i2c0"])
    chips = [MCP23017(bus, cfg["mcp_addr"])]
    if n > 16:
        chips.append(MCP23017(bus, cfg["mcp_addr"] + 1))
    return McpOutputs(chips)
