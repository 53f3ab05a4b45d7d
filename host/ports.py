"""Finding boards: USB serial ports by VID/PID, RP2040s in BOOTSEL, running simulated boards, and
names bound to USB serial numbers (ports move, names don't)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# (vid, pid or None for any): what the USB id says about the board behind it
USB_IDS = {
    (0x2E8A, 0x0005): ("rp2040", "Raspberry Pi RP2040 running MicroPython"),
    (0x2E8A, 0x0003): ("rp2040-bootsel", "RP2040 in BOOTSEL mode (a USB drive)"),
    (0x303A, None): ("esp32-usb", "Espressif native USB (ESP32-S2/S3/C3)"),
    (0x10C4, 0xEA60): ("esp32", "Silicon Labs CP210x USB-UART (ESP32 DevKitC)"),
    (0x1A86, 0x7523): ("esp32", "WCH CH340 USB-UART"),
    (0x1A86, 0x55D4): ("esp32", "WCH CH9102 USB-UART"),
    (0x0403, 0x6001): ("serial", "FTDI FT232R USB-UART"),
    (0x0403, 0x6015): ("serial", "FTDI FT231X USB-UART"),
}


class PortError(Exception):
    """A board could not be found or named; the message says what to do."""


@dataclass
class Found:
    port: str
    kind: str  # rp2040, esp32, esp32-usb, rp2040-bootsel, serial, sim
    description: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    name: str | None = None  # the maker's name for it, if bound
    micropython: str | None = None
    firmware: str | None = None
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        d = asdict(self)
        d["usb"] = "%04X:%04X" % (self.vid, self.pid) if self.vid is not None else None
        return d


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "microfab"


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))
    return Path(base) / "microfab"


def classify(vid: int | None, pid: int | None) -> tuple[str, str] | None:
    if vid is None:
        return None
    return USB_IDS.get((vid, pid)) or USB_IDS.get((vid, None))


def usb_ports(comports=None) -> list[Found]:
    """Serial ports whose USB id is a board we know; `comports` is pyserial's list function."""
    if comports is None:
        from serial.tools.list_ports import comports
    out = []
    for p in comports():
        known = classify(p.vid, p.pid)
        if known is None:
            continue
        out.append(Found(port=p.device, kind=known[0], description=known[1], vid=p.vid,
                         pid=p.pid, serial_number=p.serial_number))
    return out


# --- simulated boards register themselves while they serve a port ---

def _sims_dir() -> Path:
    return runtime_dir() / "sims"


def register_sim(port: str, board: str, machine: str, serial_number: str, link: str | None = None) -> Path:
    d = _sims_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / ("%d.json" % os.getpid())
    path.write_text(json.dumps({"port": port, "link": link, "board": board, "machine": machine,
                                "serial_number": serial_number, "pid": os.getpid()}))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sim_ports() -> list[Found]:
    out = []
    d = _sims_dir()
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(info.get("pid", -1)) or not os.path.exists(info["port"]):
            f.unlink(missing_ok=True)  # a sim that died without cleaning up
            continue
        out.append(Found(port=info.get("link") or info["port"], kind="sim",
                         description="simulated %s (%s)" % (info["board"], info["machine"]),
                         serial_number=info["serial_number"],
                         extra={"board": info["board"], "machine": info["machine"]}))
    return out


# --- names ---

def _names_file() -> Path:
    return config_dir() / "boards.json"


def names() -> dict:
    try:
        return json.loads(_names_file().read_text())
    except (OSError, ValueError):
        return {}


def bind_name(name: str, found: Found) -> None:
    if not found.serial_number:
        raise PortError("%s reports no USB serial number, so a name cannot follow it; "
                        "use the port path instead" % found.port)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise PortError("board name '%s': use letters, digits, - and _ only" % name)
    table = names()
    table[name] = {"serial_number": found.serial_number, "kind": found.kind}
    _names_file().parent.mkdir(parents=True, exist_ok=True)
    _names_file().write_text(json.dumps(table, indent=1))


def find_all(comports=None) -> list[Found]:
    found = usb_ports(comports) + sim_ports()
    by_serial = {v["serial_number"]: k for k, v in names().items()}
    for f in found:
        f.name = by_serial.get(f.serial_number)
    return found


def resolve(target: str | None, comports=None) -> Found:
    """A port path, a bound name, or (None) the only board plugged in."""
    found = find_all(comports)
    if target is None:
        serial = [f for f in found if f.kind != "rp2040-bootsel"]
        if len(serial) == 1:
            return serial[0]
        if not serial:
            raise PortError("no board found: plug one in (check the cable carries data), or "
                            "start a simulated one with `microfab sim`")
        raise PortError("%d boards found (%s): say which with --port PORT or --board NAME"
                        % (len(serial), ", ".join(f.name or f.port for f in serial)))
    for f in found:
        if target in (f.name, f.port):
            return f
    if target in names():
        sn = names()[target]["serial_number"]
        raise PortError("board '%s' (USB serial %s) is not plugged in; plugged in: %s"
                        % (target, sn, ", ".join(f.name or f.port for f in found) or "nothing"))
    if os.path.exists(target):
        return Found(port=target, kind="serial", description="serial port")
    raise PortError("'%s' is neither a serial port nor a board name; known names: %s"
                    % (target, ", ".join(sorted(names())) or "none yet (microfab boards --name)"))
