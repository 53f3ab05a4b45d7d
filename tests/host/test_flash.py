"""`microfab flash`: real esptool against the fake ROM bootloader on a pty; UF2 to a folder."""
import os
import random
import struct

import pytest

from microfab import flash as fl
from microfab import uf2
from microfab.flash import FlashError, flash
from microfab_sim.esp_rom import FakeEspRom

ESP32, ESP32S3, ESP32C3 = 0, 9, 5


def esp_image(chip_id: int, size: int = 192 * 1024, seed: int = 1) -> bytes:
    """A well-formed ESP image header (one DRAM segment) followed by merged-binary-like filler."""
    seg = bytes(random.Random(seed).randbytes(4096))
    hdr = bytes([0xE9, 1, 2, 0x20]) + struct.pack("<I", 0x40080400)  # magic, 1 seg, DIO, 4MB
    # extended header: wp pin, 3 drive bytes, chip id, min rev, min/max rev full, 4 reserved,
    # hash appended
    ext = bytes([0xEE, 0, 0, 0]) + struct.pack("<HBHH", chip_id, 0, 0, 0) + bytes(4) + b"\0"
    body = hdr + ext + struct.pack("<II", 0x3FFB0000, len(seg)) + seg
    csum = 0xEF
    for b in seg:
        csum ^= b
    body += b"\0" * (15 - len(body) % 16) + bytes([csum])
    filler = random.Random(seed + 1).randbytes(size // 4) + b"\xff" * size
    return (body + filler)[:size]


@pytest.fixture
def rom32():
    with FakeEspRom("esp32") as rom:
        yield rom


@pytest.fixture
def rom_s3():
    with FakeEspRom("esp32s3", flash_size=8 << 20) as rom:
        yield rom


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(uf2, "BOOTSEL_GLOBS", [str(tmp_path / "media" / "*")])
    return cache / "microfab" / "firmware"


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, stage, done, total):
        self.events.append((stage, done, total))

    def stages(self):
        return list(dict.fromkeys(s for s, _, _ in self.events))


# --- ESP32 family, through esptool ---------------------------------------------------------------

def test_esp32_image_lands_at_0x1000_and_verifies(rom32, tmp_path):
    img = esp_image(ESP32)
    fw = write(tmp_path / "ESP32_GENERIC-v1.24.1.bin", img)
    rec = Recorder()
    res = flash(rom32.port, fw, progress=rec)
    assert rom32.flash[0x1000:0x1000 + len(img)] == img
    assert rom32.flash[:0x1000] == b"\xff" * 0x1000  # nothing below the bootloader offset
    assert (res.chip, res.offset, res.size, res.method) == ("ESP32", 0x1000, len(img), "esptool")
    assert res.mac == "24:6f:28:12:34:56"
    # esptool's default path: stub uploaded, compressed writes, MD5 check
    assert rom32.stub and "FLASH_DEFL_DATA" in rom32.commands and "SPI_FLASH_MD5" in rom32.commands
    assert rec.stages() == ["connect", "stub", "write", "verify", "reset"]
    writes = [(d, t) for s, d, t in rec.events if s == "write" and t]
    assert writes[-1][0] == writes[-1][1] and len(writes) > 2


def test_esp32s3_image_lands_at_0x0(rom_s3, tmp_path):
    img = esp_image(ESP32S3)
    res = flash(rom_s3.port, write(tmp_path / "s3.bin", img))
    assert rom_s3.flash[:len(img)] == img
    assert (res.chip, res.offset) == ("ESP32-S3", 0)
    assert "GET_SECURITY_INFO" in rom_s3.commands  # how esptool 5 tells an S3


def test_without_stub_the_rom_writes_uncompressed(rom32, tmp_path):
    img = esp_image(ESP32, 64 * 1024)
    flash(rom32.port, write(tmp_path / "fw.bin", img), no_stub=True)
    assert rom32.flash[0x1000:0x1000 + len(img)] == img
    assert not rom32.stub and "FLASH_DATA" in rom32.commands
    assert "FLASH_DEFL_DATA" not in rom32.commands


def test_erase_first_clears_old_files(rom32, tmp_path):
    rom32.flash[0x200000:0x200010] = b"old filesystem!!"
    flash(rom32.port, write(tmp_path / "fw.bin", esp_image(ESP32)), erase=True)
    assert rom32.flash[0x200000:0x200010] == b"\xff" * 16
    assert "ERASE_FLASH" in rom32.commands


def test_image_for_another_chip_refused_before_writing(rom32, tmp_path):
    fw = write(tmp_path / "s3.bin", esp_image(ESP32S3))
    with pytest.raises(FlashError, match="image is for ESP32-S3, the board is an ESP32"):
        flash(rom32.port, fw)
    assert rom32.commands  # it did talk to the board, to learn what it is...
    assert not rom32.wrote() and rom32.flash == b"\xff" * len(rom32.flash)  # ...but wrote nothing


def test_image_for_another_esp_chip_named_from_esptool(rom_s3, tmp_path):
    with pytest.raises(FlashError, match="image is for ESP32-C3, the board is an ESP32-S3"):
        flash(rom_s3.port, write(tmp_path / "c3.bin", esp_image(ESP32C3)))
    assert not rom_s3.wrote()


def test_wrong_chip_option_refused_without_connecting(rom32, tmp_path):
    with pytest.raises(FlashError, match="image is for ESP32-S3, the board is an ESP32"):
        flash(rom32.port, write(tmp_path / "s3.bin", esp_image(ESP32S3)), chip="esp32")
    assert rom32.commands == []


def test_chip_option_contradicted_by_the_board(rom32, tmp_path):
    with pytest.raises(FlashError, match="the board on .* is an ESP32, not an ESP32-S3"):
        flash(rom32.port, write(tmp_path / "s3.bin", esp_image(ESP32S3)), chip="esp32-s3")
    assert not rom32.wrote()


def test_not_an_esp_image(rom32, tmp_path):
    with pytest.raises(FlashError, match="is a UF2 file"):
        flash(rom32.port, write(tmp_path / "pico.uf2", uf2.build_uf2(b"\0" * 512)))
    with pytest.raises(FlashError, match=r"not an ESP firmware image \(first byte 0x50"):
        flash(rom32.port, write(tmp_path / "x.bin", b"PK\x03\x04" + bytes(100)))
    assert rom32.commands == []


def test_missing_firmware_file(rom32, tmp_path):
    with pytest.raises(FlashError, match="firmware file .*nope.bin not found"):
        flash(rom32.port, tmp_path / "nope.bin")
    assert rom32.commands == []


def test_image_picked_from_the_cache_by_content(rom_s3, isolated):
    write(isolated / "a.bin", esp_image(ESP32, seed=5))
    s3 = write(isolated / "sub" / "firmware.bin", esp_image(ESP32S3, seed=6))
    res = flash(rom_s3.port)
    assert res.firmware == s3
    assert rom_s3.flash[:len(s3.read_bytes())] == s3.read_bytes()


def test_empty_cache_explains_where_to_put_an_image(rom_s3, isolated):
    write(isolated / "pico.uf2", uf2.build_uf2(b"\0" * 512))
    with pytest.raises(FlashError) as e:
        flash(rom_s3.port)
    msg = str(e.value)
    assert "no MicroPython image for the ESP32-S3 in %s" % isolated in msg
    assert "for RP2040" in msg
    assert "https://micropython.org/download/ESP32_GENERIC_S3/" in msg and "--firmware" in msg
    assert not rom_s3.wrote()


def test_esptool_logger_restored(rom32, tmp_path):
    from esp_pylib.logger import EspLog

    before = EspLog.instance
    flash(rom32.port, write(tmp_path / "fw.bin", esp_image(ESP32, 8192)))
    with pytest.raises(FlashError):
        flash(rom32.port, write(tmp_path / "s3.bin", esp_image(ESP32S3, 8192)))
    assert EspLog.instance is before


def test_port_that_does_not_exist():
    with pytest.raises(FlashError, match="/dev/ttyNOPE does not exist"):
        flash("/dev/ttyNOPE", chip="esp32")


def test_offsets_and_ids_agree_with_esptool():
    from esptool.targets import CHIP_DEFS

    for chip in fl.CHIPS.values():
        if chip.kind == "esp":
            cls = CHIP_DEFS[chip.key]
            assert (chip.name, chip.image_chip_id, chip.offset) == (
                cls.CHIP_NAME, cls.IMAGE_CHIP_ID, cls.BOOTLOADER_FLASH_OFFSET)


def test_connection_failure_is_explained():
    from esptool.util import FatalError

    e = fl._fatal(FatalError("Failed to connect to ESP32: No serial data received.\n"
                             "For troubleshooting steps visit: https://..."), "/dev/ttyUSB0", "x")
    assert "hold BOOT (IO0), press and release EN/RESET" in str(e) and "https" not in str(e)


# --- RP2040 ------------------------------------------------------------------------------------

def make_drive(path):
    path.mkdir(parents=True)
    (path / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\n"
                                       "Board-ID: RPI-RP2\n")
    return path


def test_uf2_copied_to_the_given_drive(tmp_path):
    drive = make_drive(tmp_path / "RPI-RP2")
    data = uf2.build_uf2(bytes(range(256)) * 40)
    fw = write(tmp_path / "RPI_PICO-v1.24.1.uf2", data)
    rec = Recorder()
    res = flash(drive, fw, progress=rec)
    assert (drive / fw.name).read_bytes() == data
    assert (res.chip, res.method, res.offset, res.target) == ("RP2040", "uf2", 0x10000000,
                                                               str(drive))
    assert rec.events[-1] == ("copy", len(data), len(data))


def test_bootsel_drive_and_image_found_by_themselves(tmp_path, isolated):
    drive = make_drive(tmp_path / "media" / "RPI-RP2")
    fw = write(isolated / "RPI_PICO_W-v1.24.1.uf2", uf2.build_uf2(b"\1" * 1024))
    write(isolated / "ESP32_GENERIC.bin", esp_image(ESP32, 4096))
    res = flash(None)
    assert res.firmware == fw and (drive / fw.name).exists()


def test_wrong_family_uf2_refused(tmp_path):
    drive = make_drive(tmp_path / "RPI-RP2")
    fw = write(tmp_path / "pico2.uf2", uf2.build_uf2(b"\1" * 1024, family_id=0xE48BFF59))
    with pytest.raises(FlashError, match=r"UF2 is for family RP2350 \(0xe48bff59\), this board "
                                         r"is an RP2040 \(0xe48bff56\)"):
        flash(drive, fw)
    assert [p.name for p in drive.iterdir()] == ["INFO_UF2.TXT"]


def test_corrupt_uf2_refused(tmp_path):
    drive = make_drive(tmp_path / "RPI-RP2")
    fw = write(tmp_path / "pico.uf2", uf2.build_uf2(b"\1" * 256 * 30)[:-512 * 3])
    with pytest.raises(FlashError, match="corrupt UF2 pico.uf2: block 27 of 30 missing"):
        flash(drive, fw)


def test_no_bootsel_drive_and_no_port(isolated):
    write(isolated / "pico.uf2", uf2.build_uf2(b"\1" * 1024))
    with pytest.raises(FlashError, match="no RP2040 in BOOTSEL mode found.*hold the BOOTSEL"):
        flash(None)


def test_empty_cache_for_the_pico(tmp_path):
    make_drive(tmp_path / "media" / "RPI-RP2")
    with pytest.raises(FlashError, match="no MicroPython image for the RP2040 in .*RPI_PICO"):
        flash(None)


def test_pico_running_micropython_is_told_about_bootsel(tmp_path):
    master, slave = os.openpty()  # stands for /dev/ttyACM0 of a Pico running MicroPython
    try:
        with pytest.raises(FlashError, match="RP2040 running MicroPython.*hold the BOOTSEL "
                                             "button.*--bootloader"):
            flash(os.ttyname(slave), write(tmp_path / "p.uf2", uf2.build_uf2(b"\1" * 512)),
                  chip="rp2040")
    finally:
        os.close(master)
        os.close(slave)


def test_pico_put_in_bootsel_through_mpremote(tmp_path, monkeypatch):
    ran = []

    def fake_run(cmd, **kw):  # the board reboots into BOOTSEL and its drive gets mounted
        ran.append(cmd)
        make_drive(tmp_path / "media" / "RPI-RP2")

    monkeypatch.setattr(fl.subprocess, "run", fake_run)
    master, slave = os.openpty()
    try:
        fw = write(tmp_path / "p.uf2", uf2.build_uf2(b"\1" * 512))
        rec = Recorder()
        res = flash(os.ttyname(slave), fw, chip="rp2040", enter_bootloader=True, progress=rec)
    finally:
        os.close(master)
        os.close(slave)
    assert "mpremote" in ran[0] and "import machine; machine.bootloader()" in ran[0]
    assert res.target == str(tmp_path / "media" / "RPI-RP2")
    assert (tmp_path / "media" / "RPI-RP2" / "p.uf2").read_bytes() == fw.read_bytes()
    assert rec.stages() == ["bootloader", "copy"]


def test_busy_port_explained():
    import serial

    master, slave = os.openpty()
    held = serial.Serial(os.ttyname(slave), exclusive=True)  # e.g. a monitor left running
    try:
        with pytest.raises(FlashError, match="cannot open .*lock.*close what else uses it"):
            flash(os.ttyname(slave), chip="esp32")
    finally:
        held.close()
        os.close(master)
        os.close(slave)
