"""What the `microfab` commands do, as functions of parsed arguments (the table is in cli.py).
Each returns an exit code; errors a maker can fix are raised as UserError and printed by the CLI
as one line without a traceback."""
from __future__ import annotations

import json
import time

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from . import config as hostcfg
from . import ports
from .deploy import DeployError, deploy
from .device import Device, DeviceError

console = Console()
err = Console(stderr=True)


class UserError(Exception):
    pass


# Exceptions whose message is the whole story for the user.
USER_ERRORS = (UserError, DeviceError, DeployError, ports.PortError, hostcfg.ConfigError)


def open_device(target: str | None, baud: int = 115200) -> Device:
    found = ports.resolve(target)
    if found.kind == "rp2040-bootsel":
        raise UserError("%s is an RP2040 in BOOTSEL mode (a USB drive, no MicroPython running): "
                        "install MicroPython with `microfab flash`" % found.port)
    return Device(found.port, baud).connect()


def boards(args) -> int:
    found = ports.find_all()
    if args.name:
        target = ports.resolve(args.port)
        ports.bind_name(args.name, target)
        console.print("%s (USB serial %s) is now called [bold]%s[/bold]"
                      % (target.port, target.serial_number, args.name))
        return 0
    if args.probe:
        for f in found:
            if f.kind in ("rp2040-bootsel",):
                continue
            try:
                with Device(f.port).connect() as dev:
                    hello = dev.request("hello", timeout=2)
                    f.micropython, f.firmware = hello.get("micropython"), hello.get("firmware")
            except DeviceError:
                pass  # not running our firmware, or busy: leave the columns empty
    if args.json:
        print(json.dumps([f.row() for f in found], indent=1))
        return 0
    if not found:
        console.print("no boards found: plug one in (with a data cable), or start a simulated "
                      "one with `microfab sim --board pico --machine axis`")
        return 0
    t = Table("port", "name", "kind", "usb", "serial number", "MicroPython", "firmware",
              "description")
    for f in found:
        r = f.row()
        t.add_row(f.port, f.name or "", f.kind, r["usb"] or "", f.serial_number or "",
                  f.micropython or "", f.firmware or "", f.description)
    console.print(t)
    return 0


def do_flash(args) -> int:
    from .flash import FlashError, flash

    target = args.drive
    if target is None and args.port is not None:
        target = ports.resolve(args.port).port
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("flash", total=None)

        def progress(stage, done, total):
            if stage in ("write", "copy"):
                bar.update(task, description=stage, completed=done, total=total)
            else:
                bar.update(task, description=stage + ("" if done < total else " done"))

        try:
            r = flash(target, args.firmware, chip=args.chip, progress=progress, erase=args.erase,
                      enter_bootloader=args.bootloader, baud=args.baud)
        except FlashError as e:
            raise UserError(str(e)) from None
    console.print("%s written to %s (%s) at 0x%x: %d bytes in %.1f s"
                  % (r.firmware.name, r.target, r.chip, r.offset or 0, r.size, r.seconds))
    return 0


def pattern_show(args) -> int:
    from . import patterns

    opts = {k: v for k, v in (("needles", args.needles), ("offset", args.offset),
                              ("mode", args.mode)) if v is not None}
    try:
        mod = patterns._module(args.file)
        kind = "loom" if mod.__name__.endswith("weave") else "knitter"
        if args.machine and args.machine != kind:
            raise patterns.PatternError("%s is a %s pattern, not one for a %s"
                                        % (args.file, kind, args.machine))
        print(patterns.show(args.file, args.json, **opts))
    except patterns.PatternError as e:
        err.print(str(e), highlight=False, soft_wrap=True)
        return 2
    return 0


def calibrate(args) -> int:
    from . import calibrate as cal

    def ask(question: str) -> str:
        if "How far" in question and args.measured is not None:
            return str(args.measured)
        if args.yes and cal.is_prompt(question):
            return ""
        if not console.is_terminal:
            raise UserError("calibration needs an answer to: %s (give it with a flag: %s)"
                            % (question, cal.FLAGS[args.what]))
        return console.input("[bold]%s[/bold] " % question)

    with open_device(args.port, args.baud) as dev:
        try:
            cal.run(args.what, cal.DeviceTarget(dev), ask, console.print, write=not args.dry_run,
                    distance=args.distance, weight=args.weight, reference=args.reference,
                    seconds=args.seconds)
        except cal.CalibrationError as e:
            raise UserError(str(e)) from None
    return 0


def _machine_config(spec: str) -> dict:
    if spec.endswith(".json") or "/" in spec:
        return hostcfg.read_json(spec, "machine config")
    return {"machine": spec}


def _net(args) -> dict | None:
    net = hostcfg.read_json(args.net, "network settings") if args.net else {}
    if args.wifi_ssid:
        net["wifi_ssid"] = args.wifi_ssid
    if args.wifi_password:
        net["wifi_password"] = args.wifi_password
    if args.mqtt:
        net["mqtt"] = args.mqtt
    return net or None


def do_deploy(args) -> int:
    board = hostcfg.board_data(args.board)
    machine = _machine_config(args.machine)
    calib = hostcfg.read_json(args.calib, "calibration") if args.calib else None
    net = _net(args)
    with open_device(args.port, args.baud) as dev, Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("deploying", total=None)

        def progress(done, total, path):
            # Secrets live in config/net.json: show its name, never its content.
            bar.update(task, completed=done, total=total, description=path)

        t0 = time.monotonic()
        report = deploy(dev, board, machine, calib, net, progress=progress, extensions=args.ext)
    hello = report.hello
    console.print("deployed to %s in %.1f s: %d sent, %d unchanged, %d removed (%d bytes on the "
                  "wire); firmware %s on MicroPython %s, machine %s: %s"
                  % (dev.port, time.monotonic() - t0, len(report.sent), report.unchanged,
                     len(report.removed), report.bytes_sent, hello.get("firmware"),
                     hello.get("micropython"), hello.get("machine"), hello.get("state")))
    return 0


def _parse_args(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep:
            raise UserError("argument '%s': expected NAME=VALUE, like to=120.5" % p)
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw  # a bare word is a string
    return out


def _reply(reply: dict) -> int:
    if reply.get("ok"):
        console.print_json(json.dumps(reply))
        return 0
    err.print("[red]the board refused it:[/red] %s" % reply.get("error"))
    return 1


def _board(args, watch: bool = False):
    """The board a command goes to: over USB, or over MQTT with --broker and --device (watch:
    its records only, which needs no key)."""
    broker, device = getattr(args, "broker", None), getattr(args, "device", None)
    if not broker and not device:
        dev = open_device(args.port, args.baud)
        if watch:
            try:  # our firmware on the line, before its records are awaited
                dev.request("hello", timeout=5)
            except BaseException:
                dev.close()
                raise
        return dev
    if not (broker and device):
        raise UserError("--broker and --device go together: the broker's URL and the board's "
                        "device id (as given to `microfab provision`)")
    if args.port:
        raise UserError("--port is for a board on USB; with --broker the board is reached "
                        "over MQTT")
    from .remote import Remote

    return Remote(broker, device, watch=watch).connect()


def send(args) -> int:
    with _board(args) as dev:
        return _reply(dev.request(args.cmd, _parse_args(args.args), timeout=args.timeout))


def simple(cmd: str, **fixed):
    def run(args) -> int:
        params = {k: getattr(args, k) for k in fixed if getattr(args, k, None) is not None}
        with _board(args) as dev:
            return _reply(dev.request(cmd, params, timeout=args.timeout))
    return run


def monitor(args) -> int:
    with _board(args, watch=True) as dev:
        latest: dict = {"status": {}}  # record kind -> its newest record; status first
        events: list[str] = []
        with Live(console=console, auto_refresh=False) as live:
            try:
                while True:
                    for item in dev.lines(0.5):
                        if "tele" in item:
                            latest[item["tele"]] = item
                        elif "event" in item:
                            events = (events + [json.dumps(item)])[-5:]
                    t = Table("field", "value", title="%s telemetry (Ctrl-C to stop)" % dev.port)
                    for kind, rec in latest.items():
                        for k, v in rec.items():
                            if k != "tele":  # totals next to the status: production.units
                                t.add_row(k if kind == "status" else kind + "." + k, str(v))
                    for e in events:
                        t.add_row("event", e)
                    live.update(t, refresh=True)
                    if args.seconds and time.monotonic() > args.t_end:
                        return 0
            except KeyboardInterrupt:
                return 0
