"""A fake ESP32 / ESP32-S3 ROM serial bootloader on a pseudo-terminal, for unmodified esptool.

It speaks the SLIP command protocol of the ROM loader and of esptool's flasher stub
(https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html)
well enough for esptool to detect the chip, upload and "run" its stub, attach the SPI flash,
read its ID and size, erase, write (plain and deflate-compressed), compute MD5s and reset.
Flash is a bytearray (`rom.flash`) so tests can look at exactly what landed where.

    with FakeEspRom("esp32s3") as rom:
        esptool.cmds.detect_chip(rom.port) ...
        assert rom.flash[0:4] == image[0:4]

What is modelled, and how:
- Chips are data (`CHIPS`): magic register value, chip id, SPI and eFuse register addresses.
- Registers are a dict (unread ones are 0: no security features, revision 0). Writing the SPI
  peripheral's USR bit runs the "user command" on the fake flash chip: RDID (0x9F) answers a
  Winbond ID whose capacity byte matches the flash size, RDSFDP (0x5A) answers an SFDP table.
- The ESP32 ROM does not know GET_SECURITY_INFO and answers "invalid message"; the ESP32-S3 ROM
  answers it with chip id 9, which is how esptool 5 tells the S3 apart.
- MEM_BEGIN/MEM_DATA/MEM_END store the stub in "RAM"; MEM_END with an entry point answers, then
  says "OHAI" like the real stub, and from then on the fake behaves as the stub (2 status bytes
  instead of 4, binary MD5, ERASE_FLASH/ERASE_REGION, stub flavour of FLASH_DEFL_BEGIN). So
  esptool's default path (with stub, compressed writes) is exercised, and `--no-stub` works too.
- Writes AND into the flash like NOR flash does, so a missing erase shows up as wrong bytes.
- DTR/RTS: a pty has no modem lines; esptool 5 catches the ENOTTY from TIOCMSET, warns once and
  carries on, so its default reset modes work unchanged. The fake ignores resets (it is always
  in download mode).
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import os
import select
import struct
import threading
import time
import tty
import zlib
from dataclasses import dataclass

# --- chips as data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EspChip:
    key: str
    name: str
    magic_value: int  # at CHIP_DETECT_MAGIC_REG_ADDR (0x40001000)
    chip_id: int | None  # GET_SECURITY_INFO chip id; None = ROM lacks the command
    spi_base: int
    spi_usr: int
    spi_usr1: int
    spi_usr2: int
    spi_w0: int
    mac_regs: tuple[int, int]  # (reg with the low 4 MAC bytes, reg with the high 2 in bits 0-15)
    rom_status_len: int = 4  # ROM loaders send 4 status bytes (2 used + 2 reserved), stub 2
    flash_begin_words: int = 4  # ESP32 ROM: 4 words; later ROMs add an "encrypted" word
    regs: tuple[tuple[int, int], ...] = ()  # other registers esptool reads, (address, value)


CHIPS = {
    # esptool targets/esp32.py; ESP32 TRM ch. 7 (SPI) and 20 (eFuse)
    # UART_CLKDIV = 40 MHz APB / 115200 baud: esptool estimates the crystal from it
    "esp32": EspChip("esp32", "ESP32", 0x00F01D83, None, 0x3FF42000, 0x1C, 0x20, 0x24, 0x80,
                     (0x3FF5A004, 0x3FF5A008), 4, 4, ((0x3FF40014, 347),)),
    # esptool targets/esp32s3.py; ESP32-S3 TRM ch. 30 (SPI) and 5 (eFuse)
    "esp32s3": EspChip("esp32s3", "ESP32-S3", 0x00000009, 9, 0x60002000, 0x18, 0x1C, 0x20, 0x58,
                       (0x60007044, 0x60007048), 4, 5, ((0x60000014, 347),)),
}

CHIP_DETECT_MAGIC_REG_ADDR = 0x40001000
SECTOR = 0x1000  # SPI flash erase unit

# command opcodes (esptool loader.ESP_CMDS)
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END = 0x10, 0x11, 0x12
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14
ERASE_FLASH, ERASE_REGION = 0xD0, 0xD1
NAMES = {op: name for name, op in (
    ("FLASH_BEGIN", FLASH_BEGIN), ("FLASH_DATA", FLASH_DATA), ("FLASH_END", FLASH_END),
    ("MEM_BEGIN", MEM_BEGIN), ("MEM_END", MEM_END), ("MEM_DATA", MEM_DATA), ("SYNC", SYNC),
    ("WRITE_REG", WRITE_REG), ("READ_REG", READ_REG), ("SPI_SET_PARAMS", SPI_SET_PARAMS),
    ("SPI_ATTACH", SPI_ATTACH), ("CHANGE_BAUDRATE", CHANGE_BAUDRATE),
    ("FLASH_DEFL_BEGIN", FLASH_DEFL_BEGIN), ("FLASH_DEFL_DATA", FLASH_DEFL_DATA),
    ("FLASH_DEFL_END", FLASH_DEFL_END), ("SPI_FLASH_MD5", SPI_FLASH_MD5),
    ("GET_SECURITY_INFO", GET_SECURITY_INFO), ("ERASE_FLASH", ERASE_FLASH),
    ("ERASE_REGION", ERASE_REGION))}

# ROM error codes (serial protocol doc, "Status bytes")
ERR_INVALID_MSG, ERR_FAILED, ERR_BAD_CRC, ERR_FLASH_WRITE, ERR_NOT_ENOUGH_DATA = 5, 6, 7, 8, 9
ERR_TOO_MUCH_DATA = 0x0A

CHECKSUM_SEED = 0xEF
SPI_CMD_USR = 1 << 18
WINBOND = 0xEF


class _Fail(Exception):
    def __init__(self, code: int):
        self.code = code


def slip_encode(pkt: bytes) -> bytes:
    return b"\xc0" + pkt.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class FakeEspRom:
    """An ESP32-family chip held in download mode, behind a pty. `port` is the device to open."""

    def __init__(self, chip: str = "esp32", flash_size: int = 4 * 1024 * 1024,
                 mac: bytes = b"\x24\x6f\x28\x12\x34\x56", trace: bool = False):
        if chip not in CHIPS:
            raise ValueError("chip must be one of %s" % ", ".join(CHIPS))
        if flash_size & (flash_size - 1) or not 1 << 20 <= flash_size <= 1 << 24:
            raise ValueError("flash_size must be a power of two from 1 to 16 MB")
        self.chip = CHIPS[chip]
        self.flash = bytearray(b"\xff" * flash_size)
        self.flash_id = (flash_size.bit_length() - 1) << 16 | 0x40 << 8 | WINBOND  # W25Qxx
        self.mac = bytes(mac)
        self.regs: dict[int, int] = dict(self.chip.regs)
        self.regs[CHIP_DETECT_MAGIC_REG_ADDR] = self.chip.magic_value
        lo, hi = self.chip.mac_regs
        self.regs[lo] = int.from_bytes(self.mac[2:6], "big")
        self.regs[hi] = int.from_bytes(self.mac[0:2], "big")
        self.ram: dict[int, bytearray] = {}
        self.stub = False  # True once the "stub" has been started
        self.commands: list[str] = []  # names of the commands received, in order
        self.trace = trace
        self._write_state: dict | None = None
        self._mem_state: dict | None = None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes in, bytes out
        self.port = os.ttyname(self._slave)
        os.set_blocking(self._master, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "FakeEspRom":
        self._thread = threading.Thread(target=self._run, name="fake-esp-rom", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "FakeEspRom":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wrote(self) -> bool:
        """True if any command that changes the flash was received."""
        return any(c in ("FLASH_BEGIN", "FLASH_DEFL_BEGIN", "ERASE_FLASH", "ERASE_REGION")
                   for c in self.commands)

    # --- I/O ----------------------------------------------------------------------------------

    def _run(self) -> None:
        buf, in_pkt, esc = bytearray(), False, False
        while not self._stop.is_set():
            r, _, _ = select.select([self._master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                return  # EIO: the pty is gone
            for b in data:
                if b == 0xC0:
                    if in_pkt and buf:
                        self._handle(bytes(buf))
                    buf, in_pkt, esc = bytearray(), True, False
                elif not in_pkt:
                    continue  # noise between packets (the ROM ignores it too)
                elif esc:
                    buf.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
                    esc = False
                elif b == 0xDB:
                    esc = True
                else:
                    buf.append(b)

    def _send(self, pkt: bytes) -> None:
        data = slip_encode(pkt)
        deadline = time.monotonic() + 2.0
        while data and time.monotonic() < deadline and not self._stop.is_set():
            try:
                n = os.write(self._master, data)
                data = data[n:]
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
            except OSError:
                return

    def _reply(self, op: int, value: int = 0, data: bytes = b"", status: int = 0,
               error: int = 0) -> None:
        status_len = 2 if self.stub else self.chip.rom_status_len
        st = bytes([status, error]) + bytes(status_len - 2)
        body = data + st
        self._send(struct.pack("<BBHI", 1, op, len(body), value) + body)

    # --- commands -----------------------------------------------------------------------------

    def _handle(self, pkt: bytes) -> None:
        if len(pkt) < 8 or pkt[0] != 0:
            return
        _, op, size, chk = struct.unpack_from("<BBHI", pkt)
        data = pkt[8:8 + size]
        name = NAMES.get(op, "0x%02x" % op)
        self.commands.append(name)
        if self.trace:
            print("fake-esp-rom: %s %d bytes" % (name, len(data)))
        handler = getattr(self, "_cmd_" + name.lower(), None)
        if handler is None or (op in (ERASE_FLASH, ERASE_REGION) and not self.stub) \
                or (op == GET_SECURITY_INFO and self.chip.chip_id is None):
            # what the ROM does with a command it does not know: an error reply whose
            # opcode does not echo the request, status "invalid message" (esptool turns this
            # into UnsupportedCommandError)
            self._send(struct.pack("<BBHI", 1, 0, 4, 0) + bytes([1, ERR_INVALID_MSG, 0, 0]))
            return
        try:
            value, out = handler(data, chk) or (0, b"")
        except _Fail as f:
            self._reply(op, status=1, error=f.code)
            return
        except (struct.error, zlib.error, IndexError, ValueError):
            self._reply(op, status=1, error=ERR_INVALID_MSG)
            return
        self._reply(op, value, out)
        if op == MEM_END and self._mem_state and self._mem_state.get("entry"):
            # the uploaded stub now "runs" and greets the host like the real one
            self.stub = True
            self._send(b"OHAI")

    def _cmd_sync(self, data, chk):
        if data != b"\x07\x07\x12\x20" + b"\x55" * 32:
            raise _Fail(ERR_INVALID_MSG)
        value = 0 if self.stub else 0x20120707  # the stub answers 0, ROMs something else
        for _ in range(7):  # the ROM answers a SYNC eight times
            self._reply(SYNC, value)
        return value, b""

    def _cmd_read_reg(self, data, chk):
        (addr,) = struct.unpack("<I", data[:4])
        return self.regs.get(addr, 0), b""

    def _cmd_write_reg(self, data, chk):
        for off in range(0, len(data) - 15, 16):
            addr, value, mask, _delay_us = struct.unpack_from("<IIII", data, off)
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask | value & mask) & 0xFFFFFFFF
            if addr == self.chip.spi_base and value & mask & SPI_CMD_USR:
                self._spi_user_command()
        return 0, b""

    def _spi_user_command(self) -> None:
        """Run the SPI 'user' command set up in the registers on the fake flash chip."""
        base, c = self.chip.spi_base, self.chip
        cmd = self.regs.get(base + c.spi_usr2, 0) & 0xFF
        result = 0
        if cmd == 0x9F:  # RDID: manufacturer, memory type, capacity
            result = self.flash_id
        elif cmd == 0x5A:  # RDSFDP, 24-bit address sent MSB-first (left-aligned in ADDR)
            addr = self.regs.get(base + 0x04, 0) >> 8
            table = b"SFDP\x06\x01\x00\xff" + bytes(8) + bytes([WINBOND]) + bytes(15)
            result = int.from_bytes((table[addr:addr + 4]).ljust(4, b"\xff"), "little")
        # RDSR, reset-enable, reset, ...: nothing to report
        self.regs[base + c.spi_w0] = result
        self.regs[base] = self.regs.get(base, 0) & ~SPI_CMD_USR  # done at once

    def _cmd_get_security_info(self, data, chk):
        # flags, flash_crypt_cnt, 7 key purposes, chip id, API version: all security off
        return 0, struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip.chip_id, 0)

    def _cmd_spi_attach(self, data, chk):
        return 0, b""

    def _cmd_spi_set_params(self, data, chk):
        _fl_id, total, _block, _sector, _page, _mask = struct.unpack("<6I", data[:24])
        if total > len(self.flash):
            raise _Fail(ERR_FAILED)
        return 0, b""

    def _cmd_change_baudrate(self, data, chk):
        return 0, b""  # a pty has no baud rate

    # RAM download: the stub
    def _cmd_mem_begin(self, data, chk):
        size, blocks, blocksize, offset = struct.unpack("<IIII", data[:16])
        self._mem_state = {"offset": offset, "size": size, "buf": bytearray(), "seq": 0}
        return 0, b""

    def _cmd_mem_data(self, data, chk):
        st = self._mem_state
        size, seq = struct.unpack_from("<II", data)
        payload = data[16:16 + size]
        if st is None or seq != st["seq"] or len(payload) != size:
            raise _Fail(ERR_INVALID_MSG)
        if _checksum(payload) != chk & 0xFF:
            raise _Fail(ERR_BAD_CRC)
        st["buf"] += payload
        st["seq"] += 1
        if len(st["buf"]) >= st["size"]:
            self.ram[st["offset"]] = st["buf"]
        return 0, b""

    def _cmd_mem_end(self, data, chk):
        no_entry, entry = struct.unpack("<II", data[:8])
        if self._mem_state is None:
            self._mem_state = {}
        self._mem_state["entry"] = 0 if no_entry else entry
        return 0, b""

    # flash writes
    def _erase(self, offset: int, size: int) -> None:
        start = offset - offset % SECTOR
        end = min(-(-(offset + size) // SECTOR) * SECTOR, len(self.flash))
        if start >= len(self.flash):
            raise _Fail(ERR_FAILED)
        self.flash[start:end] = b"\xff" * (end - start)

    def _program(self, addr: int, data: bytes) -> None:
        end = addr + len(data)
        if end > len(self.flash):
            raise _Fail(ERR_FLASH_WRITE)
        old = int.from_bytes(self.flash[addr:end], "little")
        self.flash[addr:end] = (old & int.from_bytes(data, "little")).to_bytes(len(data),
                                                                                "little")

    def _begin(self, data: bytes, compressed: bool) -> None:
        words = 5 if self.stub else self.chip.flash_begin_words
        if len(data) < 4 * words:
            raise _Fail(ERR_NOT_ENOUGH_DATA)
        size, blocks, blocksize, offset = struct.unpack_from("<IIII", data)
        if words == 5 and struct.unpack_from("<I", data, 16)[0]:
            raise _Fail(ERR_FAILED)  # encrypted writes: not modelled
        self._erase(offset, size) if size else None
        self._write_state = {"offset": offset, "addr": offset, "seq": 0, "blocks": blocks,
                             "blocksize": blocksize, "inflate": zlib.decompressobj()
                             if compressed else None}

    def _data(self, data: bytes, chk: int, compressed: bool) -> None:
        st = self._write_state
        size, seq = struct.unpack_from("<II", data)
        payload = data[16:16 + size]
        if st is None or (st["inflate"] is not None) != compressed:
            raise _Fail(ERR_INVALID_MSG)
        if len(payload) != size:
            raise _Fail(ERR_NOT_ENOUGH_DATA)
        if seq != st["seq"]:
            raise _Fail(ERR_INVALID_MSG)
        if _checksum(payload) != chk & 0xFF:
            raise _Fail(ERR_BAD_CRC)
        if compressed:
            payload = st["inflate"].decompress(payload)
        self._program(st["addr"], payload)
        st["addr"] += len(payload)
        st["seq"] += 1

    def _cmd_flash_begin(self, data, chk):
        self._begin(data, False)

    def _cmd_flash_defl_begin(self, data, chk):
        self._begin(data, True)

    def _cmd_flash_data(self, data, chk):
        self._data(data, chk, False)

    def _cmd_flash_defl_data(self, data, chk):
        self._data(data, chk, True)

    def _cmd_flash_end(self, data, chk):
        self._write_state = None

    def _cmd_flash_defl_end(self, data, chk):
        self._write_state = None

    def _cmd_spi_flash_md5(self, data, chk):
        addr, size = struct.unpack_from("<II", data)
        if addr + size > len(self.flash):
            raise _Fail(ERR_FAILED)
        digest = hashlib.md5(self.flash[addr:addr + size])
        # ROM: 32 hex characters; stub: the 16 raw bytes
        return 0, digest.digest() if self.stub else digest.hexdigest().encode()

    def _cmd_erase_flash(self, data, chk):
        self.flash[:] = b"\xff" * len(self.flash)

    def _cmd_erase_region(self, data, chk):
        offset, size = struct.unpack("<II", data[:8])
        if offset % SECTOR or size % SECTOR:
            raise _Fail(ERR_FAILED)
        self._erase(offset, size)


def _checksum(data: bytes) -> int:
    state = CHECKSUM_SEED
    for b in data:
        state ^= b
    return state


def main(argv: list[str] | None = None) -> int:
    """Serve a fake ESP ROM on a pty until Ctrl-C (try `microfab flash <pty>` against it)."""
    p = argparse.ArgumentParser(prog="python -m microfab_sim.esp_rom", description=main.__doc__)
    p.add_argument("--chip", choices=sorted(CHIPS), default="esp32")
    p.add_argument("--flash-mb", type=int, default=4)
    p.add_argument("--trace", action="store_true", help="print every command received")
    a = p.parse_args(argv)
    with FakeEspRom(a.chip, a.flash_mb << 20, trace=a.trace) as rom:
        print("fake %s ROM bootloader on %s (Ctrl-C to stop)" % (rom.chip.name, rom.port),
              flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
