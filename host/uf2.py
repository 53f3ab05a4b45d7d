"""UF2 files and the RP2040's BOOTSEL drive.

A UF2 file (https://github.com/microsoft/uf2) is a sequence of 512-byte blocks, each carrying up to
476 bytes of payload for one target address. A board in its UF2 bootloader (the RP2040's BOOTSEL
mode) shows up as a small FAT drive; copying a UF2 file onto it writes the flash and the board
reboots by itself.

Scripting API: `read_uf2()` parses and checks the structure, `Uf2Image.check_target()` checks that
it fits a chip, `find_bootsel_drive()` finds the drive, `copy_uf2()` does all of it and copies.
`build_uf2()` makes valid files (tests, and turning a raw .bin into a .uf2).
Errors are `Uf2Error` with a message meant for the maker.
"""
from __future__ import annotations

import glob
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# UF2 spec, "File format": the block layout and its three magic numbers
BLOCK_SIZE = 512
MAX_PAYLOAD = 476
MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
_HEADER = struct.Struct("<8I")  # magic0 magic1 flags addr size block_no num_blocks family/file_size

# UF2 spec, "Flags"
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY_ID = 0x00002000
FLAG_MD5 = 0x00004000
FLAG_EXTENSION_TAGS = 0x00008000

RP2040_FAMILY = 0xE48BFF56

# uf2families.json in the UF2 repository (only the ones a microfab user is likely to meet)
FAMILIES = {
    0xE48BFF56: "RP2040",
    0xE48BFF57: "RP2XXX_ABSOLUTE",
    0xE48BFF58: "RP2XXX_DATA",
    0xE48BFF59: "RP2350",
    0xE48BFF5A: "RP2350 (RISC-V)",
    0xE48BFF5B: "RP2350 (non-secure)",
    0x1C5F21B0: "ESP32",
    0xBFDD4EEE: "ESP32-S2",
    0xC47E5767: "ESP32-S3",
    0xD42BA06C: "ESP32-C3",
    0x540DDF62: "ESP32-C6",
    0x68D26B4C: "SAMD21",
    0x55114460: "SAMD51",
    0xADA52840: "nRF52840",
    0x57755A57: "STM32F401",
}

# The RP2350's E10 erratum workaround puts one "absolute" block in front of the image; boards that
# do not know the family ignore such blocks, so they never decide what the file is for.
_IGNORED_FAMILIES = {0xE48BFF57}


def family_name(family_id: int) -> str:
    return FAMILIES.get(family_id, "unknown")


def describe_family(family_id: int) -> str:
    return "%s (0x%08x)" % (family_name(family_id), family_id)


class Uf2Error(Exception):
    """The UF2 file or the BOOTSEL drive is not right; the message says what and what to do."""


@dataclass(frozen=True)
class Uf2Target:
    """What a UF2 bootloader accepts: chip variants are data (cf. esptool's targets/)."""

    name: str
    family_id: int
    board_ids: tuple[str, ...]  # "Board-ID:" lines of INFO_UF2.TXT
    payload_size: int | None  # the boot ROM's required payload per block, None = any
    regions: tuple[tuple[int, int], ...]  # [start, end) address ranges the ROM will write


# RP2040 datasheet 2.8.4.2 (UF2 format details): 256-byte payloads, 256-byte aligned, to flash
# (XIP, 0x10000000, up to 16 MB) or to SRAM (0x20000000, 264 KB) for RAM-only images.
RP2040 = Uf2Target("RP2040", RP2040_FAMILY, ("RPI-RP2",), 256,
                   ((0x10000000, 0x11000000), (0x20000000, 0x20042000)))
RP2350 = Uf2Target("RP2350", 0xE48BFF59, ("RP2350",), 256,
                   ((0x10000000, 0x11000000), (0x20000000, 0x20082000)))
TARGETS = {"rp2040": RP2040, "rp2350": RP2350}


@dataclass
class Uf2Block:
    index: int  # position in the file (0-based)
    flags: int
    addr: int
    payload: bytes
    block_no: int
    num_blocks: int
    family_id: int | None


@dataclass
class Uf2Image:
    """A parsed, structurally valid UF2 file."""

    blocks: list[Uf2Block]
    source: str = "<bytes>"
    families: dict[int, int] = field(default_factory=dict)  # family id -> block count

    @property
    def family_id(self) -> int:
        """The family the file is for (the one with most blocks, absolute blocks aside)."""
        fams = {f: n for f, n in self.families.items() if f not in _IGNORED_FAMILIES} \
            or self.families
        return max(fams, key=lambda f: fams[f])

    @property
    def payload_bytes(self) -> int:
        return sum(len(b.payload) for b in self.blocks if not b.flags & FLAG_NOT_MAIN_FLASH)

    def flash_blocks(self) -> list[Uf2Block]:
        return [b for b in self.blocks if not b.flags & FLAG_NOT_MAIN_FLASH]

    def check_target(self, target: Uf2Target = RP2040) -> None:
        """Raise Uf2Error unless every block is one the target's boot ROM will take."""
        fams = set(self.families) - _IGNORED_FAMILIES
        if target.family_id not in fams:
            other = self.family_id
            raise Uf2Error("UF2 is for family %s, this board is an %s (0x%08x): download the %s "
                           "build of MicroPython (https://micropython.org/download/)"
                           % (describe_family(other), target.name, target.family_id, target.name))
        for b in self.flash_blocks():
            if b.family_id != target.family_id:
                continue  # the boot ROM skips blocks of other families
            if target.payload_size is not None and (len(b.payload) != target.payload_size
                                                    or b.addr % target.payload_size):
                raise Uf2Error("UF2 block %d carries %d bytes at 0x%08x; the %s boot ROM only "
                               "takes %d-byte blocks at %d-byte aligned addresses (was the file "
                               "made for another board?)" % (b.index, len(b.payload), b.addr,
                                                             target.name, target.payload_size,
                                                             target.payload_size))
            end = b.addr + len(b.payload)
            if not any(lo <= b.addr and end <= hi for lo, hi in target.regions):
                raise Uf2Error("UF2 block %d writes to 0x%08x-0x%08x, outside the %s's flash "
                               "and RAM" % (b.index, b.addr, end, target.name))


def _load(src: bytes | bytearray | str | os.PathLike) -> tuple[bytes, str]:
    if isinstance(src, (bytes, bytearray)):
        return bytes(src), "<bytes>"
    path = Path(src)
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise Uf2Error("%s: no such file" % path) from None
    except IsADirectoryError:
        raise Uf2Error("%s is a folder, not a UF2 file" % path) from None
    except OSError as e:
        raise Uf2Error("cannot read %s: %s" % (path, e.strerror or e)) from None


def read_uf2(src: bytes | bytearray | str | os.PathLike, name: str | None = None) -> Uf2Image:
    """Parse a UF2 file (path or bytes) and check its structure; raise Uf2Error if it is not one.

    Checks: whole 512-byte blocks, the three magic numbers of every block, payload size <= 476,
    a family ID on every block (flag 0x2000), and block numbers: for each family, blocks
    0..numBlocks-1 each present exactly once with the same numBlocks. `name` names bytes
    in messages.
    """
    data, loaded_as = _load(src)
    name = name or loaded_as
    if not data:
        raise Uf2Error("%s is empty, not a UF2 file" % ("the data" if name == "<bytes>" else name))
    # "corrupt UF2 fw.uf2: ..." for a file, "corrupt UF2: ..." for bytes
    label = "" if name == "<bytes>" else " " + name
    if len(data) >= 8:
        m0, m1 = struct.unpack_from("<II", data, 0)
        if (m0, m1) != (MAGIC_START0, MAGIC_START1):
            hint = ""
            if data[:1] == b"\xe9":
                hint = " - it looks like an ESP32 .bin image, which goes to an ESP32 board"
            elif data[:4] == b"\x7fELF":
                hint = " - it is an ELF file; use the .uf2 from the build or from micropython.org"
            raise Uf2Error("%snot a UF2 file (block 0 has magic 0x%08x 0x%08x, expected "
                           "0x%08x 0x%08x)%s" % (label.strip() + ": " if label else "", m0, m1,
                                                 MAGIC_START0, MAGIC_START1, hint))
    if len(data) % BLOCK_SIZE:
        raise Uf2Error("corrupt UF2%s: %d bytes is not a whole number of %d-byte blocks (the "
                       "last block is cut short: truncated download or copy?)"
                       % (label, len(data), BLOCK_SIZE))
    blocks = []
    for i in range(len(data) // BLOCK_SIZE):
        off = i * BLOCK_SIZE
        m0, m1, flags, addr, size, block_no, num_blocks, fam = _HEADER.unpack_from(data, off)
        (m_end,) = struct.unpack_from("<I", data, off + BLOCK_SIZE - 4)
        if (m0, m1, m_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise Uf2Error("corrupt UF2%s: block %d (at byte %d) has bad magic numbers"
                           % (label, i, off))
        if size > MAX_PAYLOAD:
            raise Uf2Error("corrupt UF2%s: block %d says it carries %d bytes (at most %d fit)"
                           % (label, i, size, MAX_PAYLOAD))
        if not flags & FLAG_FAMILY_ID:
            raise Uf2Error("UF2%s has no family ID (block %d lacks flag 0x2000), so it cannot "
                           "tell which chip it is for: use a UF2 made for the RP2040"
                           % (label, i))
        blocks.append(Uf2Block(i, flags, addr, data[off + 32:off + 32 + size], block_no,
                               num_blocks, fam))
    img = Uf2Image(blocks, name)
    # block numbering is per family: a file may hold one image for each of several chips
    by_family: dict[int, list[Uf2Block]] = {}
    for b in blocks:
        by_family.setdefault(b.family_id, []).append(b)  # type: ignore[arg-type]
    for fam, fblocks in by_family.items():
        img.families[fam] = len(fblocks)
        total = fblocks[0].num_blocks
        seen: dict[int, Uf2Block] = {}
        for b in fblocks:
            if b.num_blocks != total:
                raise Uf2Error("corrupt UF2%s: block %d says the file has %d blocks, block %d "
                               "says %d" % (label, b.index, b.num_blocks, fblocks[0].index, total))
            if b.block_no >= total:
                raise Uf2Error("corrupt UF2%s: block number %d of %d is out of range"
                               % (label, b.block_no, total))
            if b.block_no in seen:
                raise Uf2Error("corrupt UF2%s: block %d of %d appears twice"
                               % (label, b.block_no, total))
            seen[b.block_no] = b
        if len(seen) != total:
            missing = min(set(range(total)) - set(seen))
            raise Uf2Error("corrupt UF2%s: block %d of %d missing (%d of %d present: truncated "
                           "download?)" % (label, missing, total, len(seen), total))
    return img


def build_uf2(data: bytes, base_addr: int = 0x10000000, family_id: int = RP2040_FAMILY,
              payload_size: int = 256) -> bytes:
    """Make a valid UF2 file holding `data` at `base_addr` (for tests, and .bin -> .uf2)."""
    if not 0 < payload_size <= MAX_PAYLOAD:
        raise ValueError("payload_size must be 1..%d" % MAX_PAYLOAD)
    chunks = [data[i:i + payload_size] for i in range(0, len(data), payload_size)] or [b""]
    out = bytearray()
    for n, chunk in enumerate(chunks):
        # the RP2040 ROM wants every block full; pad the last one with erased-flash bytes
        chunk = chunk.ljust(payload_size, b"\xff")
        hdr = _HEADER.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID,
                           base_addr + n * payload_size, len(chunk), n, len(chunks), family_id)
        out += hdr + chunk.ljust(MAX_PAYLOAD, b"\x00") + struct.pack("<I", MAGIC_END)
    return bytes(out)


# --- the BOOTSEL drive ------------------------------------------------------------------------

# Where desktops mount removable drives (udisks: /media/$USER, /run/media/$USER; by hand: /mnt).
# A module variable so tests (and unusual systems) can point it elsewhere.
BOOTSEL_GLOBS = ["/media/*/*", "/media/*", "/run/media/*/*", "/mnt/*"]


@dataclass
class BootselDrive:
    path: Path
    board_id: str  # "RPI-RP2" for an RP2040, "RP2350" for an RP2350
    model: str
    info: dict

    @property
    def target(self) -> Uf2Target | None:
        return next((t for t in TARGETS.values() if self.board_id in t.board_ids), None)


def _info_file(folder: Path) -> Path | None:
    # FAT is case-insensitive but a copy made by hand (tests, or a mounted image) may not be
    try:
        for p in folder.iterdir():
            if p.name.upper() == "INFO_UF2.TXT":
                return p
    except OSError:
        return None
    return None


def probe_drive(folder: str | os.PathLike) -> BootselDrive | None:
    """The UF2 bootloader behind a mounted folder, or None if it is not one."""
    folder = Path(folder)
    info_path = _info_file(folder) if folder.is_dir() else None
    if info_path is None:
        return None
    try:
        text = info_path.read_text(errors="replace")
    except OSError:
        return None
    info = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    return BootselDrive(folder, info.get("Board-ID", ""), info.get("Model", ""), info)


def find_bootsel_drives(extra: list | tuple = ()) -> list[BootselDrive]:
    """Every mounted UF2 bootloader drive (any chip), explicit folders first."""
    found, seen = [], set()
    candidates = [Path(p) for p in extra]
    for pattern in BOOTSEL_GLOBS:
        candidates += [Path(p) for p in sorted(glob.glob(pattern))]
    for c in candidates:
        key = os.path.realpath(c)
        if key in seen:
            continue
        seen.add(key)
        d = probe_drive(c)
        if d is not None:
            found.append(d)
    return found


BOOTSEL_HELP = ("put the board in BOOTSEL mode: unplug it, hold the BOOTSEL button while plugging "
                "it back in, then release (or run machine.bootloader() on it); a drive named "
                "RPI-RP2 appears")


def find_bootsel_drive(folder: str | os.PathLike | None = None,
                       target: Uf2Target = RP2040) -> BootselDrive:
    """The one mounted BOOTSEL drive of `target` (or check the given folder); Uf2Error if none."""
    if folder is not None:
        d = probe_drive(folder)
        if d is None:
            raise Uf2Error("%s is not a BOOTSEL drive (no INFO_UF2.TXT in it): %s"
                           % (folder, BOOTSEL_HELP))
        _check_drive_target(d, target)
        return d
    drives = find_bootsel_drives()
    mine = [d for d in drives if d.board_id in target.board_ids]
    if len(mine) == 1:
        return mine[0]
    if len(mine) > 1:
        raise Uf2Error("%d %s boards are in BOOTSEL mode (%s): say which drive to flash"
                       % (len(mine), target.name, ", ".join(str(d.path) for d in mine)))
    if drives:
        _check_drive_target(drives[0], target)
    raise Uf2Error("no %s in BOOTSEL mode found (looked in %s): %s; if it is plugged in but "
                   "not mounted, mount it or pass its folder"
                   % (target.name, ", ".join(BOOTSEL_GLOBS), BOOTSEL_HELP))


def _check_drive_target(d: BootselDrive, target: Uf2Target) -> None:
    if d.board_id not in target.board_ids:
        other = d.target.name if d.target else "board %r" % (d.board_id or "?")
        raise Uf2Error("%s is the BOOTSEL drive of an %s, not an %s (INFO_UF2.TXT says "
                       "Board-ID: %s)" % (d.path, other, target.name, d.board_id or "nothing"))


def copy_uf2(src: bytes | str | os.PathLike, drive: BootselDrive | str | os.PathLike,
             progress: Callable[[int, int], None] | None = None,
             target: Uf2Target = RP2040, chunk_size: int = 64 * 1024) -> Uf2Image:
    """Check `src` and copy it onto the BOOTSEL `drive`; the board then reboots by itself.

    The whole file is read and checked before a byte is written, so a corrupt or wrong-family
    file never half-programs the board. `progress(done, total)` is called as bytes are written.
    """
    data, name = _load(src)
    img = read_uf2(data, name)
    img.check_target(target)
    d = drive if isinstance(drive, BootselDrive) else find_bootsel_drive(drive, target)
    _check_drive_target(d, target)
    dest = d.path / (Path(name).name if name != "<bytes>" else "firmware.uf2")
    total, done = len(data), 0
    if progress:
        progress(0, total)
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise Uf2Error("cannot write to the BOOTSEL drive %s: %s (is it mounted read-only, or "
                       "did the board leave BOOTSEL?)" % (d.path, e.strerror or e)) from None
    try:
        while done < total:
            try:
                done += os.write(fd, data[done:done + chunk_size])
            except OSError as e:
                raise Uf2Error("the BOOTSEL drive went away after %d of %d bytes (%s): unplug, "
                               "re-enter BOOTSEL and try again" % (done, total, e.strerror or e)
                               ) from None
            if progress:
                progress(done, total)
        try:
            os.fsync(fd)
        except OSError:
            # the ROM reboots the board as soon as it has the last block, and the drive vanishes
            # under the kernel: an error now, after every byte was handed over, is success
            pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return img
