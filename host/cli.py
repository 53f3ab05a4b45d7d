"""The `microfab` command line. Each command is a function in its own module; this file is the table."""
from __future__ import annotations

import argparse
import json
import sys

from microfab import __version__


def _demo(args) -> int:
    from microfab import demo

    return demo.run(board=args.board, cycles=args.cycles, seed=args.seed, speed=args.speed)


def _check(args) -> int:
    from microfab import config

    try:
        cfg = config.check_files(args.board, args.machine, args.calib, extensions=args.ext)
    except config.ConfigError as e:
        print("microfab: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(cfg, indent=1) if args.json else config.summary(cfg))
    return 0


def _module(name: str):
    import importlib

    return importlib.import_module("microfab." + name)


def _module_cli(name: str):
    return lambda args: _module(name).cli(args)


def _wiring(args) -> int:
    from microfab import wiring

    return wiring.command(args)


def _sim(args) -> int:
    return run_sim(args.rest)


def run_sim(argv: list[str]) -> int:
    import atexit

    if "--scenario" in argv:
        # A scripted run: machine, faults and expectations from a TOML file; exit 0 pass, 1 fail.
        from microfab_sim import scenario

        i = argv.index("--scenario")
        if i + 1 >= len(argv):
            print("microfab sim: --scenario needs a file", file=sys.stderr)
            return 2
        return scenario.main([argv[i + 1]] + argv[:i] + argv[i + 2:])

    from microfab import ports
    from microfab_sim import serial_port

    def register(info):
        # So that `microfab boards` lists it and names can be bound to it.
        path = ports.register_sim(info["port"], info["board"], info["machine"],
                                  info["serial_number"], info.get("link"))
        atexit.register(path.unlink, missing_ok=True)

    return serial_port.main(argv, on_ready=register, prog="microfab sim")


def _port_args(p: argparse.ArgumentParser, remote: bool = False):
    p.add_argument("--port", help="serial port or board name (default: the only board plugged in)")
    p.add_argument("--baud", type=int, default=115200, help="line rate (default: 115200)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the reply")
    if remote:
        p.add_argument("--broker", metavar="URL", help="reach the board over MQTT instead of "
                       "USB: mqtt://[USER:PASSWORD@]HOST[:PORT] (the password is never printed)")
        p.add_argument("--device", metavar="ID", help="with --broker: the board's device id; "
                       "commands are signed with the key `microfab provision` stored")


def _cmd(name: str, **kw):
    def run(args):
        from microfab import commands

        fn = getattr(commands, name)
        return (fn(**kw) if kw else fn)(args)
    return run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="microfab", description="Build, run and measure small "
                                "networked production machines, real or simulated.")
    p.add_argument("--version", action="version", version="microfab " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="run a simulated microfactory job with live figures "
                       "(no hardware needed)")
    d.add_argument("--board", default="pico", help="board file name (default: pico)")
    d.add_argument("--cycles", type=int, default=10, help="traverse cycles (default: 10)")
    d.add_argument("--seed", type=int, default=1, help="simulation seed (default: 1)")
    d.add_argument("--speed", type=float, default=25.0,
                   help="virtual seconds per wall second, 0 = as fast as possible (default: 25)")
    d.set_defaults(fn=_demo)

    c = sub.add_parser("check-config", help="validate a board file, machine config and "
                       "calibration with the firmware's own rules")
    c.add_argument("--board", required=True, help="board name (pico, ...) or path to a board file")
    c.add_argument("--machine", required=True, help="path to the machine config (JSON)")
    c.add_argument("--calib", help="path to a calibration file (JSON)")
    c.add_argument("--json", action="store_true", help="print the effective config as JSON")
    c.add_argument("--ext", action="append", default=[], metavar="DIR",
                   help="a machine extension folder (repeatable; MICROFAB_EXTENSIONS and "
                   "installed packages are looked at too), see docs/extending.md")
    c.set_defaults(fn=_check)

    b = sub.add_parser("boards", help="list boards on USB and simulated ones; name a board")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.add_argument("--probe", action="store_true", help="ask each board for its versions")
    b.add_argument("--name", help="bind this name to the board on --port (by USB serial number)")
    b.add_argument("--port", help="with --name: the board's port")
    b.set_defaults(fn=_cmd("boards"))

    fl = sub.add_parser("flash", help="install MicroPython on a board (esptool for ESP32, UF2 "
                        "for RP2040 in BOOTSEL)")
    fl.add_argument("--port", help="serial port or board name (ESP32, or an RP2040 to send into BOOTSEL)")
    fl.add_argument("--drive", help="the RP2040's BOOTSEL drive folder (default: found by itself)")
    fl.add_argument("--firmware", help="image file (.bin for ESP32, .uf2 for RP2040); default: "
                    "the newest matching one in ~/.cache/microfab/firmware")
    fl.add_argument("--chip", help="esp32, esp32-s3 or rp2040 (default: detected)")
    fl.add_argument("--erase", action="store_true", help="erase the whole flash first (wipes "
                    "the board's files and journal)")
    fl.add_argument("--bootloader", action="store_true", help="put a running RP2040 into "
                    "BOOTSEL first (machine.bootloader())")
    fl.add_argument("--baud", type=int, default=460800, help="ESP32 flashing rate (default: 460800)")
    fl.set_defaults(fn=_cmd("do_flash"))

    dp = sub.add_parser("deploy", help="put the firmware and its config on a board, sending "
                        "only what changed")
    _port_args(dp)
    dp.add_argument("--board", required=True, help="board file name (pico, esp32_devkitc, ...) or path")
    dp.add_argument("--machine", required=True, help="machine name (axis) or machine config file")
    dp.add_argument("--calib", help="calibration file (JSON)")
    dp.add_argument("--net", help="network settings file (JSON: wifi_ssid, wifi_password, mqtt)")
    dp.add_argument("--wifi-ssid", help="Wi-Fi network name")
    dp.add_argument("--wifi-password", help="Wi-Fi password (never printed)")
    dp.add_argument("--mqtt", help="broker URL, mqtt://user:password@host:port (never printed)")
    dp.add_argument("--ext", action="append", default=[], metavar="DIR",
                    help="a machine extension folder (repeatable), see docs/extending.md")
    dp.set_defaults(fn=_cmd("do_deploy"))

    sd = sub.add_parser("send", help="send one command to the firmware and print the reply")
    _port_args(sd, remote=True)
    sd.add_argument("cmd", help="command name (see `microfab send hello`)")
    sd.add_argument("args", nargs="*", help="arguments as NAME=VALUE (VALUE in JSON)")
    sd.set_defaults(fn=_cmd("send"))
    for name, helptext in (("home", "home the axis against its endstop"),
                           ("stop", "e-stop: pulses stop, drivers off"),
                           ("status", "the board's status")):
        c2 = sub.add_parser(name, help=helptext)
        _port_args(c2, remote=True)
        c2.set_defaults(fn=_cmd("simple", cmd=name))
    j = sub.add_parser("jog", help="move the axis by a distance (mm)")
    _port_args(j, remote=True)
    j.add_argument("by", type=float, help="distance in mm (negative: towards min)")
    j.add_argument("--speed", type=float, help="mm/s")
    j.set_defaults(fn=_cmd("simple", cmd="jog", by=None, speed=None))
    mo = sub.add_parser("monitor", help="live table of the board's telemetry until Ctrl-C")
    _port_args(mo, remote=True)
    mo.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    mo.set_defaults(fn=_cmd("monitor"))

    ca = sub.add_parser("calibrate", help="guided calibration: measure, propose, write to the board")
    _port_args(ca)
    ca.add_argument("what", choices=("steps", "endstop", "load-cell", "thermocouple",
                                     "current-zero", "anemometer"),
                    help="steps: steps per mm from a measured move; endstop: check the switch "
                    "and homing; load-cell: load_scale from a known weight (polyfloss); "
                    "thermocouple: tc_offset against a reference thermometer (polyfloss); "
                    "current-zero: the power monitors' zero with no current flowing (windrig); "
                    "anemometer: anemometer_factor against a reference anemometer (windrig)")
    ca.add_argument("--distance", type=float, default=100.0, help="steps: how far to move (mm)")
    ca.add_argument("--measured", type=float, help="steps: the measured distance, for scripts")
    ca.add_argument("--weight", type=float, help="load-cell: the known weight in grams, for "
                    "scripts")
    ca.add_argument("--reference", type=float, help="thermocouple: the reference thermometer's "
                    "reading (C); anemometer: the reference's mean wind over the window (m/s)")
    ca.add_argument("--seconds", type=float, help="thermocouple, current-zero, anemometer: how "
                    "long to measure (default 10, 10 and 60 s)")
    ca.add_argument("--yes", action="store_true", help="do not wait for Enter between steps")
    ca.add_argument("--dry-run", action="store_true", help="propose the value, do not write it")
    ca.set_defaults(fn=_cmd("calibrate"))

    wi = sub.add_parser("wiring", help="draw a machine's wiring on a board as an SVG picture")
    wi.add_argument("--board", required=True, help="pico, pico_w, esp32_devkitc, esp32s3_devkitc "
                    "(or a board file)")
    wi.add_argument("--machine", help="draw the documented wiring of this machine")
    wi.add_argument("--config", help="machine config JSON to draw instead")
    wi.add_argument("--ext", action="append", help="extension folder, for a machine from one")
    wi.add_argument("-o", "--output", help="write the SVG here (default: stdout)")
    wi.set_defaults(fn=_wiring)

    for name, modname, helptext in (
            ("collect", "collector", "store fleet telemetry from MQTT into SQLite or PostgreSQL"),
            ("report", "report", "production and energy per device and day: table, CSV, PNG, HTML"),
            ("provision", "provision", "Wi-Fi, broker, device id and key onto a board (never echoed)")):
        sp = sub.add_parser(name, help=helptext)
        _module(modname).add_arguments(sp)
        sp.set_defaults(fn=_module_cli(modname))

    pt = sub.add_parser("pattern", help="pattern files: what a loom or knitting machine would "
                        "be sent")
    psub = pt.add_subparsers(dest="pattern_command", metavar="ACTION", required=True)
    ps = psub.add_parser("show", help="print per pick the shafts raised (loom) or per row the "
                         "needles selected (knitter); exit 2 with one line on a bad file")
    ps.add_argument("file", help=".wif/.dtx/.wpo for a loom, an image for a knitting machine")
    ps.add_argument("--machine", choices=("loom", "knitter"), help="check the file is for this machine")
    ps.add_argument("--json", action="store_true", help='{"picks": [[1, 3], ...]} or {"rows": ["0110...", ...]}')
    ps.add_argument("--needles", type=int, help="knitter: needles on the bed (default 200)")
    ps.add_argument("--offset", type=int, help="knitter: first needle of the pattern (default: centred)")
    ps.add_argument("--mode", choices=("single", "dbj"), help="knitter: single bed or double-bed jacquard")
    ps.set_defaults(fn=_cmd("pattern_show"))

    s = sub.add_parser("sim", help="serve a simulated board on a serial port (pty)",
                       add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(fn=_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sim":
        # Its options belong to the simulator's own parser (see `microfab sim --help`).
        return run_sim(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "fn", None):
        p.print_help()
        return 2
    if getattr(args, "seconds", None):
        import time

        args.t_end = time.monotonic() + args.seconds
    from microfab import commands

    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130
    except commands.USER_ERRORS as e:
        print("microfab: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
