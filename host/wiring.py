"""Wiring pictures: `microfab wiring --board pico --machine loom` draws, as one self-contained SVG,
the board with its header pins in their physical order, the parts the machine uses (drivers,
sensors, chips), which pin goes to which part, the buses, and the power rails.

The pins come from the board file and the machine config through the firmware's own check
(microfab.config.check), the bus pins from the board file's `buses`, so the picture cannot
disagree with what the board runs. On top of that check, a pin given to two uses (a role on a bus
pin, a role on the supply-sense pin) is refused: the board would boot and then misbehave.

This module makes that checked plan and is the command; wiring_svg.py lays it out and draws it.
"""
from __future__ import annotations

import json
import sys

import microfab_boards

from . import config as hostcfg
from . import pinouts
from .pinouts import PARTS, generic
from .wiring_svg import draw

ConfigError = hostcfg.ConfigError


class Plan:
    """What is wired: pin uses by GPIO, the parts, and the rails they need."""

    def __init__(self, board: dict, machine: dict, pins: dict):
        self.board, self.cfg, self.roles = board, machine, pins
        self.name = board["name"]
        self.uses: dict = {}  # gpio -> (label, kind); kind: signal, SDA..RX, held
        self.parts: list = []
        self.buses: dict = {}
        self.schema: tuple = ()
        self.rail_notes: dict = {}
        self.summary = ""

    def label(self, gpio):
        return pinouts.pin_name(self.name, gpio)

    def pin(self, role, gpio, kind="signal"):
        if gpio in self.uses:
            raise ConfigError("wiring: pin %s is both %s and %s; one pin can do one job: give "
                              "one of them another pin" % (self.label(gpio), self.uses[gpio][0],
                                                           role))
        if pinouts.where(self.name, gpio) is None:
            raise ConfigError("wiring: %s is on %s, which the %s does not bring out"
                              % (role, self.label(gpio), pinouts.layout(self.name)["title"]))
        self.uses[gpio] = (role, kind)
        return gpio

    def bus(self, name, use, why):
        """The bus's pins from the board file: `use` wired to the part, the others held. Parts
        on one bus share its pins."""
        if name in self.buses:
            return self.buses[name]
        b = self.board["buses"].get(name)
        if not b:
            raise ConfigError("wiring: %s needs bus %s, which board %s does not have"
                              % (why, name, self.name))
        out = {}
        for key in ("sda", "scl", "sck", "mosi", "miso", "cs", "tx", "rx"):
            if key in b:
                if key in use:
                    out[key] = self.pin("%s %s" % (name, key.upper()), b[key], key.upper())
                else:
                    self.pin("%s %s (held by the bus)" % (name, key.upper()), b[key], "held")
        missing = [k for k in use if k not in out]
        if missing:
            raise ConfigError("wiring: %s needs %s of bus %s, which board %s does not give"
                              % (why, ", ".join(missing), name, self.name))
        self.buses[name] = out
        return out

    def part(self, title, sig=(), pwr=(), notes=()):
        self.parts.append({"title": title, "sig": list(sig), "pwr": list(pwr),
                           "notes": list(notes)})


def plan(board: dict, machine: dict, extensions=None) -> Plan:
    """The wiring of a machine config on a board, checked; ConfigError says what is wrong.
    extensions: as for microfab.config.check, for a machine from an extension."""
    cfg = hostcfg.check(board, machine, extensions=extensions)
    pinouts.layout(board["name"])  # a board without a drawn header is refused up front
    pl = Plan(cfg["board"], cfg["machine"], cfg["pins"])
    pl.schema = hostcfg._fw.RUNTIME + hostcfg._fw.machine_module(pl.cfg["machine"]).SCHEMA
    b = cfg["board"]
    vs = b["pins"].get("vsense")
    if vs is not None and vs in b["adc_pins"]:  # the runtime reads it on every machine
        where = pinouts.where(b["name"], vs)
        pl.pin("vsense", vs)
        if where and where[0] != "onboard":
            top = 3.3 * b["vsense_ratio"]
            pl.part("Supply sense divider", [("out", vs)], [("GND", "GND")],
                    ["ratio %g: the top to the supply to watch (up to %.1f V)"
                     % (b["vsense_ratio"], top)])
    PARTS.get(pl.cfg["machine"], generic)(pl)
    generic(pl)  # any role a builder left out still gets its pin and a box
    return pl


def render(board_name: str, machine_config: dict, extensions=None) -> str:
    """The wiring of `machine_config` on a shipped board (or a board file's path), as SVG text."""
    return draw(plan(hostcfg.board_data(board_name), machine_config, extensions))


def example(board_name: str, machine: str) -> dict:
    """The documented wiring of a machine on a board (pinouts.EXAMPLES), or, for a machine the
    docs do not cover there, its roles on the first free pins."""
    ex = pinouts.EXAMPLES.get(board_name, {}).get(machine)
    if ex is not None:
        return json.loads(json.dumps(ex))
    board = microfab_boards.load(board_name)
    mod = hostcfg._fw.machine_module(machine)
    taken = set(board["pins"].values())
    for bus in board["buses"].values():
        taken |= {v for k, v in bus.items() if k in ("sda", "scl", "sck", "mosi", "miso", "cs",
                                                       "tx", "rx")}
    free = [p for p in board["valid_pins"] if p not in taken
            and (pinouts.where(board_name, p) or ("onboard",))[0] != "onboard"]
    pins = {}
    for role in mod.PINS:
        if role not in board["pins"]:
            pins[role] = free.pop(0)
    return {"machine": machine, "pins": pins}


def command(args) -> int:
    """`microfab wiring --board B [--machine M] [--config FILE] [--ext DIR] [-o FILE.svg]`: exit 0,
    or 2 with one line when the config is refused."""
    try:
        if args.config:
            cfg = hostcfg.read_json(args.config, "machine config")
            if not isinstance(cfg, dict):
                raise ConfigError("machine config %s: expected one JSON object" % args.config)
            if args.machine and cfg.get("machine") != args.machine:
                raise ConfigError("machine config %s is for machine '%s', not '%s'"
                                  % (args.config, cfg.get("machine"), args.machine))
        elif args.machine:
            cfg = example(args.board, args.machine)
        else:
            raise ConfigError("wiring: give --machine NAME or --config FILE")
        svg = render(args.board, cfg, getattr(args, "ext", None))
    except (ConfigError, KeyError) as e:
        print("microfab: %s" % (e.args[0] if isinstance(e, KeyError) else e), file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w") as f:
            f.write(svg)
        print("wrote %s" % args.output)
    else:
        sys.stdout.write(svg)
    return 0
