"""`microfab flash`: install MicroPython itself on a board.

Scripting API (the CLI is a thin layer over it):

    result = flash("/dev/ttyUSB0")          # ESP32 family: chip detected, image from the cache
    result = flash("/dev/ttyACM0", "ESP32_GENERIC_S3-v1.24.1.bin", chip="esp32s3")
    result = flash("/media/me/RPI-RP2", "RPI_PICO-v1.24.1.uf2")  # RP2040 in BOOTSEL
    result = flash(None)                    # the one RP2040 in BOOTSEL, image from the cache

- ESP32 family: through esptool's Python API (esptool >= 5): detect the chip, refuse an image
  built for another chip (ESP image header, byte 12) before writing anything, upload esptool's
  flasher stub, write MicroPython's single .bin where it belongs (`Chip.offset`: 0x1000 on the
  ESP32 and ESP32-S2, 0x0 on the S3/C3/C6), check the flash's MD5, reset the chip.
- RP2040: check the UF2 (family, block numbering) and copy it to the BOOTSEL drive; the board
  reboots by itself. A Pico running MicroPython is first asked to enter BOOTSEL
  (`enter_bootloader=True`: machine.bootloader() through mpremote), else the error explains how.
- No firmware given: the newest image for the chip in the cache, `~/.cache/microfab/firmware/`
  (XDG_CACHE_HOME honoured); images are matched by content (ESP chip id, UF2 family), not name.

`progress(stage, done, total)` is called along the way; stages are "connect", "stub", "erase",
"write" and "verify" (ESP), "bootloader" and "copy" (RP2040), "reset". For "write" and "copy",
done/total count bytes (compressed bytes for ESP writes); other stages report 0/1 then 1/1.
Every mistake the maker can fix raises `FlashError` with the fix in its message.
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from microfab import uf2

_log = logging.getLogger("microfab.flash")

ProgressFn = Callable[[str, int, int], None]

ESP_IMAGE_MAGIC = 0xE9  # esptool bin_image.py: first byte of every ESP app/bootloader image
ESP_CHIP_ID_OFFSET = 12  # 8-byte image header, then the extended header: chip id (u16) at 12
ROM_BAUD = 115200  # the ROM loaders auto-baud; esptool syncs at this rate


class FlashError(Exception):
    """Flashing cannot go on; the message says why and what to do. Print it, no traceback."""


@dataclass(frozen=True)
class Chip:
    """One chip microfab can install MicroPython on. Variants are data (cf. esptool targets/)."""

    key: str
    name: str  # as esptool's CHIP_NAME / the UF2 family name
    kind: str  # "esp" (esptool over serial) or "uf2" (copy to a BOOTSEL drive)
    suffix: str  # MicroPython's download format
    download: str  # board name(s) on https://micropython.org/download/
    image_chip_id: int | None = None  # ESP image header chip id
    offset: int | None = None  # where the MicroPython .bin goes (= the bootloader's offset)
    uf2_target: uf2.Uf2Target | None = None


# Offsets: MicroPython's ESP32 "firmware.bin" is bootloader + partition table + app merged, so it
# goes at the bootloader offset (esptool BOOTLOADER_FLASH_OFFSET; micropython.org install notes).
CHIPS = {
    "esp32": Chip("esp32", "ESP32", "esp", ".bin", "ESP32_GENERIC", 0, 0x1000),
    "esp32s2": Chip("esp32s2", "ESP32-S2", "esp", ".bin", "ESP32_GENERIC_S2", 2, 0x1000),
    "esp32s3": Chip("esp32s3", "ESP32-S3", "esp", ".bin", "ESP32_GENERIC_S3", 9, 0x0),
    "esp32c3": Chip("esp32c3", "ESP32-C3", "esp", ".bin", "ESP32_GENERIC_C3", 5, 0x0),
    "esp32c6": Chip("esp32c6", "ESP32-C6", "esp", ".bin", "ESP32_GENERIC_C6", 13, 0x0),
    "rp2040": Chip("rp2040", "RP2040", "uf2", ".uf2", "RPI_PICO (or RPI_PICO_W)",
                   uf2_target=uf2.RP2040),
}
_ALIASES = {"rp2": "rp2040", "pico": "rp2040", "picow": "rp2040"}
RPI_VID = 0x2E8A  # Raspberry Pi USB vendor id: an RP2040 running MicroPython (PID 0x0005)


def get_chip(name: str) -> Chip:
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in CHIPS:
        raise FlashError("unknown chip %r: microfab flashes %s" % (name, ", ".join(CHIPS)))
    return CHIPS[key]


def esp_chip_name(image_chip_id: int) -> str:
    """Any ESP chip's name from an image chip id (esptool knows more chips than we flash)."""
    for c in CHIPS.values():
        if c.image_chip_id == image_chip_id:
            return c.name
    try:
        from esptool.targets import ROM_LIST

        for cls in ROM_LIST:
            if cls.IMAGE_CHIP_ID == image_chip_id:
                return cls.CHIP_NAME
    except ImportError:
        pass
    return "an unknown chip (id %d)" % image_chip_id


@dataclass
class FlashResult:
    chip: str  # "ESP32-S3", "RP2040"
    firmware: Path
    target: str  # serial port or BOOTSEL drive
    method: str  # "esptool" or "uf2"
    size: int  # bytes of firmware
    offset: int | None = None  # flash address (ESP) / lowest UF2 address
    seconds: float = 0.0
    mac: str | None = None
    log: list[str] = field(default_factory=list)  # esptool's own messages, for --verbose


# --- the firmware cache ------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "microfab" / "firmware"


def image_chip(path: Path) -> Chip | None:
    """Which of our chips an image file is for, judged by its content (None: not an image)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 * uf2.BLOCK_SIZE)
    except OSError:
        return None
    if len(head) > ESP_CHIP_ID_OFFSET + 1 and head[0] == ESP_IMAGE_MAGIC:
        cid = int.from_bytes(head[ESP_CHIP_ID_OFFSET:ESP_CHIP_ID_OFFSET + 2], "little")
        return next((c for c in CHIPS.values() if c.image_chip_id == cid), None)
    for off in range(0, len(head) - uf2.BLOCK_SIZE + 1, uf2.BLOCK_SIZE):
        blk = head[off:off + 32]
        if int.from_bytes(blk[0:4], "little") != uf2.MAGIC_START0:
            return None
        fam = int.from_bytes(blk[28:32], "little")
        if fam in uf2._IGNORED_FAMILIES:
            continue
        return next((c for c in CHIPS.values()
                     if c.uf2_target and c.uf2_target.family_id == fam), None)
    return None


def find_firmware(chip: Chip, folder: Path | None = None) -> Path:
    """The newest MicroPython image for `chip` in the cache; FlashError says what to do if none."""
    folder = folder or cache_dir()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".bin", ".uf2")
                   and p.is_file()) if folder.is_dir() else []
    mine = [p for p in files if image_chip(p) == chip]
    if mine:
        return max(mine, key=lambda p: (p.stat().st_mtime, p.name))
    others = sorted({c.name for c in map(image_chip, files) if c is not None})
    found = (" (it has %d image(s), for %s)" % (len(files), ", ".join(others) or "no known chip")
             if files else "")
    raise FlashError("no MicroPython image for the %s in %s%s: download the %s %s from "
                     "https://micropython.org/download/%s/ into that folder, or give the file "
                     "with --firmware" % (chip.name, folder, found, chip.download, chip.suffix,
                                          chip.download.split()[0]))


def _read_firmware(path: str | os.PathLike) -> bytes:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise FlashError("firmware file %s not found (download MicroPython from "
                         "https://micropython.org/download/, or leave --firmware out to use the "
                         "cache in %s)" % (p, cache_dir())) from None
    except IsADirectoryError:
        raise FlashError("%s is a folder: give the firmware file itself" % p) from None
    except OSError as e:
        raise FlashError("cannot read %s: %s" % (p, e.strerror or e)) from None
    if not data:
        raise FlashError("firmware file %s is empty (interrupted download?)" % p)
    return data


def check_esp_image(data: bytes, chip: Chip | None, name: str = "image") -> None:
    """Refuse what is not an ESP image for `chip` (None: for any ESP chip), before writing."""
    board = ("the %s takes MicroPython's .bin (%s)" % (chip.name, chip.download) if chip
             else "ESP32 boards take MicroPython's .bin for their chip")
    if data[:4] == uf2.MAGIC_START0.to_bytes(4, "little"):
        raise FlashError("%s is a UF2 file (for RP2040 boards, through BOOTSEL); %s"
                         % (name, board))
    if len(data) < 24 or data[0] != ESP_IMAGE_MAGIC:
        raise FlashError("%s is not an ESP firmware image (first byte 0x%02x, expected 0xe9); %s"
                         % (name, data[0], board))
    cid = int.from_bytes(data[ESP_CHIP_ID_OFFSET:ESP_CHIP_ID_OFFSET + 2], "little")
    if chip is not None and cid != chip.image_chip_id:
        raise FlashError("image is for %s, the board is an %s: download the %s build (%s)"
                         % (esp_chip_name(cid), chip.name, chip.name, chip.download))


# --- esptool -------------------------------------------------------------------------------------


def _esptool():
    """esptool's command module; FlashError if esptool is missing or older than 5."""
    try:
        import esptool
        import esp_pylib.logger  # noqa: F401 (esptool 5's logger, which _esptool_log replaces)
        from esptool import cmds
    except ImportError:
        raise FlashError("esptool >= 5 is needed to flash ESP32 boards: "
                         "pip install -U 'esptool>=5'") from None
    if int(esptool.__version__.split(".")[0]) < 5:
        raise FlashError("esptool %s is too old, microfab needs >= 5: pip install -U 'esptool>=5'"
                         % esptool.__version__)
    return cmds


@contextmanager
def _esptool_log(progress: ProgressFn, lines: list[str]) -> Iterator[dict]:
    """Route esptool's console output into `lines` and its progress bars into `progress`."""
    _esptool()  # explains a missing or old esptool
    from esp_pylib.logger import EspLog, EspLogBase

    state = {"stage": "write"}

    class Log(EspLogBase):
        def print(self, *args, **kwargs):
            msg = " ".join(str(a) for a in args).strip()
            if msg:
                lines.append(msg)
                _log.debug("esptool: %s", msg)

        def err(self, *args, suggestion=None):
            self.print("error:", *args)

        def warn(self, *args, suggestion=None):
            self.print("warning:", *args)

        def note(self, *args):
            self.print("note:", *args)

        def hint(self, *args):
            self.print("hint:", *args)

        def debug(self, *args):
            self.print(*args)

        warning, error = warn, err

        def set_verbosity(self, mode):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            progress(state["stage"], cur_iter, total_iters)

    saved = EspLog.instance
    EspLog.instance = logger = Log()
    # esptool's reset code binds its "cannot set DTR/RTS" warning to the logger of import time
    try:
        from esptool.reset import ResetStrategy
        from esptool.util import PrintOnce

        saved_once = ResetStrategy.print_once
        ResetStrategy.print_once = PrintOnce(logger.warn)
    except (ImportError, AttributeError):
        ResetStrategy, saved_once = None, None
    try:
        yield state
    finally:
        EspLog.instance = saved
        if ResetStrategy is not None:
            ResetStrategy.print_once = saved_once


def _fatal(e: Exception, port: str, what: str) -> FlashError:
    msg = str(e).split("\nFor troubleshooting")[0].strip()
    if "Failed to connect" in msg or "No serial data received" in msg:
        return FlashError("no ESP bootloader answered on %s (%s). Put the board in download "
                          "mode: hold BOOT (IO0), press and release EN/RESET, release BOOT, and "
                          "try again. If the board is a Pico, use its BOOTSEL drive instead."
                          % (port, msg.splitlines()[0]))
    if "port is busy" in msg or "could not open" in msg.lower():
        why = next((ln.strip("()") for ln in msg.splitlines() if ln.startswith("(")), msg)
        return FlashError("cannot open %s (%s): is it the right port (`microfab ports`)? If "
                          "it is, close what else uses it (microfab monitor, mpremote, a "
                          "serial terminal)" % (port, why))
    return FlashError("%s failed on %s: %s" % (what, port, msg))


def flash_esp(port: str, firmware: str | os.PathLike | None = None, chip: str | None = None,
              progress: ProgressFn | None = None, *, erase: bool = False, baud: int = 460800,
              before: str = "default-reset", after: str = "hard-reset",
              no_stub: bool = False) -> FlashResult:
    """Write MicroPython's .bin to an ESP32-family board on serial `port` (see module doc).

    `erase=True` erases the whole flash first (also the board's files and journal).
    `before`/`after` are esptool's reset modes; the defaults work on USB-UART bridges, native
    USB and on ptys (esptool warns once that it cannot toggle DTR/RTS there, and goes on).
    """
    progress = progress or (lambda stage, done, total: None)
    cmds = _esptool()
    from esptool.util import FatalError

    want = get_chip(chip) if chip else None
    if want and want.kind != "esp":
        raise FlashError("%s is not an ESP chip; flash it through its BOOTSEL drive" % want.name)
    data: bytes | None = None
    fw_path = Path(firmware) if firmware is not None else None
    if fw_path is not None:  # check the file before touching the board
        data = _read_firmware(fw_path)
        check_esp_image(data, want, fw_path.name)
    lines: list[str] = []
    t0 = time.monotonic()
    with _esptool_log(progress, lines) as st:
        progress("connect", 0, 1)
        try:
            esp = cmds.detect_chip(port, ROM_BAUD, before)
        except FatalError as e:
            raise _fatal(e, port, "connecting") from None
        except OSError as e:
            raise FlashError("cannot open %s: %s (is the board plugged in? `microfab ports` "
                             "lists boards)" % (port, e.strerror or e)) from None
        try:
            found = next((c for c in CHIPS.values() if c.name == esp.CHIP_NAME), None)
            if found is None:
                raise FlashError("the board on %s is an %s, which microfab does not flash "
                                 "(supported: %s)" % (port, esp.CHIP_NAME,
                                                      ", ".join(c.name for c in CHIPS.values())))
            if want and want != found:
                raise FlashError("the board on %s is an %s, not an %s: leave --chip out or "
                                 "correct it" % (port, found.name, want.name))
            if fw_path is None or data is None:
                fw_path = find_firmware(found)
                data = _read_firmware(fw_path)
            check_esp_image(data, found, fw_path.name)
            try:
                mac = ":".join("%02x" % b for b in esp.read_mac())
            except Exception:  # informative only
                mac = None
            progress("connect", 1, 1)
            progress("stub", 0, 1)
            if not no_stub:
                esp = cmds.run_stub(esp)
            if baud and baud != ROM_BAUD:
                esp.change_baud(baud)
            cmds.attach_flash(esp)
            progress("stub", 1, 1)
            if erase:
                progress("erase", 0, 1)
                cmds.erase_flash(esp)
                progress("erase", 1, 1)
            st["stage"] = "write"  # esptool's progress bar now reports (compressed) bytes
            # writes, then checks the region's MD5 itself (raises FatalError on a mismatch)
            cmds.write_flash(esp, [(found.offset, data)])
            progress("verify", 0, 1)
            padded = data + b"\xff" * (-len(data) % 4)  # esptool pads to a 4-byte multiple
            if esp.flash_md5sum(found.offset, len(padded)) != hashlib.md5(padded).hexdigest():
                raise FlashError("the flash does not read back as written on %s: try again, "
                                 "with a shorter USB cable or a lower baud rate" % port)
            progress("verify", 1, 1)
            progress("reset", 0, 1)
            cmds.reset_chip(esp, after)
            progress("reset", 1, 1)
        except FatalError as e:
            raise _fatal(e, port, "flashing") from None
        finally:
            try:
                esp._port.close()
            except Exception:
                pass
    return FlashResult(found.name, fw_path, port, "esptool", len(data), found.offset,
                       time.monotonic() - t0, mac, lines)


# --- RP2040 ----------------------------------------------------------------------------------


def _usb_vid(port: str) -> int | None:
    try:
        from serial.tools import list_ports
    except ImportError:
        return None
    real = os.path.realpath(port)
    for p in list_ports.comports():
        if p.device in (port, real):
            return p.vid
    return None


def enter_bootsel(port: str, wait_s: float = 10.0,
                  progress: ProgressFn | None = None) -> uf2.BootselDrive:
    """Ask the Pico on `port` to reboot into BOOTSEL (machine.bootloader()), wait for its drive."""
    progress = progress or (lambda stage, done, total: None)
    before = {str(d.path) for d in uf2.find_bootsel_drives()}
    progress("bootloader", 0, 1)
    try:
        # the board drops off USB mid-command, so mpremote's exit status means nothing here
        subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", "--no-follow",
                        "import machine; machine.bootloader()"], capture_output=True, timeout=15)
    except (subprocess.TimeoutExpired, OSError) as e:
        _log.debug("mpremote: %s", e)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        new = [d for d in uf2.find_bootsel_drives() if str(d.path) not in before
               and d.board_id in uf2.RP2040.board_ids]
        if new:
            progress("bootloader", 1, 1)
            return new[0]
        time.sleep(0.25)
    raise FlashError("the board on %s did not show up as a BOOTSEL drive within %.0f s: if it "
                     "appeared but is not mounted, mount it (or open it in the file manager) and "
                     "run microfab flash again; otherwise %s" % (port, wait_s, uf2.BOOTSEL_HELP))


def flash_rp2040(drive: str | os.PathLike | uf2.BootselDrive | None,
                 firmware: str | os.PathLike | None = None,
                 progress: ProgressFn | None = None) -> FlashResult:
    """Copy a checked UF2 to an RP2040's BOOTSEL drive (found if `drive` is None)."""
    progress = progress or (lambda stage, done, total: None)
    fw_path = Path(firmware) if firmware is not None else find_firmware(CHIPS["rp2040"])
    data = _read_firmware(fw_path)
    try:
        img = uf2.read_uf2(data, fw_path.name)
        img.check_target(uf2.RP2040)  # checked before a drive is even looked for
        d = drive if isinstance(drive, uf2.BootselDrive) else uf2.find_bootsel_drive(drive)
        t0 = time.monotonic()
        uf2.copy_uf2(fw_path, d, lambda done, total: progress("copy", done, total))
    except uf2.Uf2Error as e:
        raise FlashError(str(e)) from None
    low = min((b.addr for b in img.flash_blocks()), default=None)
    return FlashResult("RP2040", fw_path, str(d.path), "uf2", len(data), low,
                       time.monotonic() - t0)


# --- the command ---------------------------------------------------------------------------------


def flash(port_or_drive: str | os.PathLike | None, firmware_path: str | os.PathLike | None = None,
          chip: str | None = None, progress: ProgressFn | None = None, *, erase: bool = False,
          enter_bootloader: bool = False, baud: int = 460800, before: str = "default-reset",
          after: str = "hard-reset", no_stub: bool = False,
          bootsel_wait_s: float = 10.0) -> FlashResult:
    """Install MicroPython on the board at `port_or_drive` (see the module doc).

    `port_or_drive`: a serial port (ESP32 family, or a Pico running MicroPython), a BOOTSEL
    drive folder, or None for the one RP2040 in BOOTSEL. `firmware_path`: None = the cache.
    `chip`: "esp32", "esp32s3", "rp2040"... to insist on one (default: detect).
    `enter_bootloader`: a Pico running MicroPython is put in BOOTSEL via mpremote.
    Raises FlashError (only) for everything the maker can fix.
    """
    want = get_chip(chip) if chip else None
    if port_or_drive is None:
        if want and want.kind == "esp":
            raise FlashError("which port is the %s on? Give it with --port (`microfab ports` "
                             "lists boards)" % want.name)
        rp = [d for d in uf2.find_bootsel_drives() if d.board_id in uf2.RP2040.board_ids]
        if not rp:
            raise FlashError("no board given and no RP2040 in BOOTSEL mode found: give an ESP32 "
                             "board's serial port with --port, or %s" % uf2.BOOTSEL_HELP)
        if len(rp) > 1:
            raise FlashError("%d RP2040 boards are in BOOTSEL mode (%s): say which drive to flash"
                             % (len(rp), ", ".join(str(d.path) for d in rp)))
        return flash_rp2040(rp[0], firmware_path, progress)
    target = os.fspath(port_or_drive)
    if os.path.isdir(target):
        if want and want.kind != "uf2":
            raise FlashError("%s is a folder (a BOOTSEL drive?), but the %s is flashed over its "
                             "serial port" % (target, want.name))
        return flash_rp2040(target, firmware_path, progress)
    if target.startswith("/dev/") and not os.path.exists(target):
        raise FlashError("%s does not exist: is the board plugged in? (`microfab ports` lists "
                         "boards)" % target)
    if (want and want.kind == "uf2") or _usb_vid(target) == RPI_VID:
        if firmware_path is not None:  # say what is wrong with the file before anything else
            try:
                uf2.read_uf2(firmware_path).check_target(uf2.RP2040)
            except uf2.Uf2Error as e:
                raise FlashError(str(e)) from None
        if not enter_bootloader:
            raise FlashError("%s is an RP2040 running MicroPython; it takes new firmware in "
                             "BOOTSEL mode: hold the BOOTSEL button while plugging it in (a "
                             "drive named RPI-RP2 appears) and run this again, or add "
                             "--bootloader to let microfab run machine.bootloader() on it"
                             % target)
        drive = enter_bootsel(target, bootsel_wait_s, progress)
        return flash_rp2040(drive, firmware_path, progress)
    return flash_esp(target, firmware_path, chip, progress, erase=erase, baud=baud,
                     before=before, after=after, no_stub=no_stub)
