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
        cfg = config.check_files(args.board, args.machine, args.calib)
    except config.ConfigError as e:
        print("microfab: %s" % e, file=sys.stderr)
        return 2
    print(json.dumps(cfg, indent=1) if args.json else config.summary(cfg))
    return 0


def _sim(args) -> int:
    from microfab_sim import serial_port

    return serial_port.main(args.rest)


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
    c.set_defaults(fn=_check)

    s = sub.add_parser("sim", help="serve a simulated board on a serial port (pty)",
                       add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(fn=_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "fn", None):
        p.print_help()
        return 2
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
