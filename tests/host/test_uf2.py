"""UF2 files and the BOOTSEL drive: real files made by build_uf2, a temporary folder as drive."""
import errno
import os
import struct

import pytest

from microfab import uf2
from microfab.uf2 import Uf2Error, build_uf2, copy_uf2, find_bootsel_drive, read_uf2

RP2350 = 0xE48BFF59
ESP32S3 = 0xC47E5767
INFO_RP2040 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
INFO_RP2350 = "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n"


def payload(n=230 * 256, seed=7):
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


def make_drive(path, info=INFO_RP2040):
    path.mkdir(parents=True)
    (path / "INFO_UF2.TXT").write_text(info)
    (path / "INDEX.HTM").write_text("<html>redirect</html>")
    return path


@pytest.fixture
def drive(tmp_path):
    return make_drive(tmp_path / "RPI-RP2")


@pytest.fixture(autouse=True)
def no_system_drives(monkeypatch, tmp_path):
    # never look at the real /media: only at this test's own "mount points"
    monkeypatch.setattr(uf2, "BOOTSEL_GLOBS", [str(tmp_path / "media" / "*")])


def blocks_of(data):
    return [bytearray(data[i:i + 512]) for i in range(0, len(data), 512)]


# --- reading -----------------------------------------------------------------------------------

def test_valid_file_round_trips():
    data = payload()
    img = read_uf2(build_uf2(data))
    assert len(img.blocks) == 230
    assert img.family_id == uf2.RP2040_FAMILY
    assert b"".join(b.payload for b in img.blocks) == data
    assert img.blocks[5].addr == 0x10000000 + 5 * 256
    img.check_target(uf2.RP2040)


def test_last_block_padded_to_a_full_payload():
    img = read_uf2(build_uf2(b"\x01" * 300))
    assert [len(b.payload) for b in img.blocks] == [256, 256]
    assert img.blocks[1].payload[44:] == b"\xff" * 212
    img.check_target()


def test_bad_magic_is_not_a_uf2_file():
    esp_bin = bytes([0xE9, 3, 2, 0x20]) + bytes(1020)
    with pytest.raises(Uf2Error, match=r"not a UF2 file \(block 0 has magic 0x200203e9 .*"
                                       r"looks like an ESP32 \.bin"):
        read_uf2(esp_bin)
    with pytest.raises(Uf2Error, match="not a UF2 file"):
        read_uf2(b"hello world, this is text" * 40)


def test_bad_magic_in_a_later_block():
    bl = blocks_of(build_uf2(payload(20 * 256)))
    bl[17][508:512] = b"\0\0\0\0"
    with pytest.raises(Uf2Error, match="block 17 .* bad magic"):
        read_uf2(b"".join(bl))


def test_truncated_mid_block():
    data = build_uf2(payload())
    with pytest.raises(Uf2Error, match=r"not a whole number of 512-byte blocks .*truncated"):
        read_uf2(data[:-100])


def test_truncated_at_a_block_boundary_names_the_missing_block():
    data = build_uf2(payload())
    with pytest.raises(Uf2Error, match="block 229 of 230 missing"):
        read_uf2(data[:-512])


def test_missing_block_in_the_middle():
    bl = blocks_of(build_uf2(payload()))
    del bl[17]
    with pytest.raises(Uf2Error, match="corrupt UF2.*block 17 of 230 missing"):
        read_uf2(b"".join(bl))


def test_duplicate_block():
    bl = blocks_of(build_uf2(payload(10 * 256)))
    bl[4] = bl[3]
    with pytest.raises(Uf2Error, match="block 3 of 10 appears twice"):
        read_uf2(b"".join(bl))


def test_inconsistent_block_count():
    bl = blocks_of(build_uf2(payload(10 * 256)))
    struct.pack_into("<I", bl[6], 24, 11)
    with pytest.raises(Uf2Error, match="block 6 says the file has 11 blocks"):
        read_uf2(b"".join(bl))


def test_payload_too_big():
    bl = blocks_of(build_uf2(payload(4 * 256)))
    struct.pack_into("<I", bl[2], 16, 477)
    with pytest.raises(Uf2Error, match="carries 477 bytes"):
        read_uf2(b"".join(bl))


def test_family_id_required():
    bl = blocks_of(build_uf2(payload(4 * 256)))
    struct.pack_into("<I", bl[0], 8, 0)  # flags: no family id
    with pytest.raises(Uf2Error, match="no family ID"):
        read_uf2(b"".join(bl))


def test_wrong_family_named():
    img = read_uf2(build_uf2(payload(), family_id=RP2350))
    with pytest.raises(Uf2Error, match=r"UF2 is for family RP2350 \(0xe48bff59\), this board is "
                                       r"an RP2040 \(0xe48bff56\)"):
        img.check_target(uf2.RP2040)
    img = read_uf2(build_uf2(payload(), base_addr=0, family_id=ESP32S3))
    with pytest.raises(Uf2Error, match=r"family ESP32-S3 \(0xc47e5767\)"):
        img.check_target()


def test_rp2350_absolute_block_does_not_decide_the_family():
    # the E10 erratum workaround: one 0xe48bff57 block in front of an RP2350 image
    data = build_uf2(b"\xef" * 256, 0x10FFFF00, 0xE48BFF57) + build_uf2(payload(8 * 256),
                                                                       family_id=RP2350)
    img = read_uf2(data)
    assert img.family_id == RP2350
    with pytest.raises(Uf2Error, match="family RP2350"):
        img.check_target(uf2.RP2040)


def test_rp2040_rom_needs_256_byte_blocks_in_flash_or_ram():
    with pytest.raises(Uf2Error, match="only takes 256-byte blocks"):
        read_uf2(build_uf2(payload(4 * 476), payload_size=476)).check_target()
    with pytest.raises(Uf2Error, match="outside the RP2040's flash and RAM"):
        read_uf2(build_uf2(payload(4 * 256), base_addr=0x08000000)).check_target()
    read_uf2(build_uf2(payload(4 * 256), base_addr=0x20000000)).check_target()  # RAM image


def test_file_errors(tmp_path):
    with pytest.raises(Uf2Error, match="no such file"):
        read_uf2(tmp_path / "nope.uf2")
    (tmp_path / "empty.uf2").write_bytes(b"")
    with pytest.raises(Uf2Error, match="is empty"):
        read_uf2(tmp_path / "empty.uf2")


# --- the drive ---------------------------------------------------------------------------------

def test_probe_drive(drive, tmp_path):
    d = uf2.probe_drive(drive)
    assert d.board_id == "RPI-RP2" and d.target is uf2.RP2040
    assert uf2.probe_drive(tmp_path) is None  # no INFO_UF2.TXT
    assert find_bootsel_drive(drive).path == drive


def test_folder_without_info_file_is_not_a_drive(tmp_path):
    with pytest.raises(Uf2Error, match="not a BOOTSEL drive.*hold the BOOTSEL button"):
        find_bootsel_drive(tmp_path)


def test_rp2350_drive_refused(tmp_path):
    d = make_drive(tmp_path / "RP2350", INFO_RP2350)
    with pytest.raises(Uf2Error, match="drive of an RP2350, not an RP2040"):
        find_bootsel_drive(d)


def test_scan_finds_the_one_drive(tmp_path):
    make_drive(tmp_path / "media" / "RPI-RP2")
    (tmp_path / "media" / "USBSTICK").mkdir()
    assert find_bootsel_drive().path == tmp_path / "media" / "RPI-RP2"


def test_scan_finds_none(tmp_path):
    with pytest.raises(Uf2Error, match=r"no RP2040 in BOOTSEL mode found \(looked in .*media"):
        find_bootsel_drive()


def test_scan_finds_two(tmp_path):
    make_drive(tmp_path / "media" / "RPI-RP2")
    make_drive(tmp_path / "media" / "RPI-RP21")
    with pytest.raises(Uf2Error, match="2 RP2040 boards are in BOOTSEL mode"):
        find_bootsel_drive()


def test_scan_finds_only_an_rp2350(tmp_path):
    make_drive(tmp_path / "media" / "RP2350", INFO_RP2350)
    with pytest.raises(Uf2Error, match="RP2350, not an RP2040"):
        find_bootsel_drive()


# --- copying -----------------------------------------------------------------------------------

def test_copy_lands_on_the_drive(drive, tmp_path):
    src = tmp_path / "RPI_PICO-v1.24.1.uf2"
    src.write_bytes(build_uf2(payload()))
    seen = []
    img = copy_uf2(src, drive, lambda done, total: seen.append((done, total)),
                   chunk_size=16384)
    assert (drive / src.name).read_bytes() == src.read_bytes()
    assert seen[0] == (0, 230 * 512) and seen[-1] == (230 * 512, 230 * 512) and len(seen) > 3
    assert img.payload_bytes == 230 * 256


@pytest.mark.parametrize("bad", ["truncated", "family", "magic"])
def test_nothing_written_for_a_bad_file(drive, tmp_path, bad):
    data = {"truncated": build_uf2(payload())[:-512],
            "family": build_uf2(payload(), family_id=RP2350),
            "magic": b"\xe9" + bytes(2047)}[bad]
    src = tmp_path / "fw.uf2"
    src.write_bytes(data)
    with pytest.raises(Uf2Error):
        copy_uf2(src, drive)
    assert sorted(p.name for p in drive.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT"]


def test_drive_vanishing_after_the_last_byte_is_success(drive, tmp_path, monkeypatch):
    # the ROM reboots as soon as it has the last block; the kernel then fails the sync
    def gone(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", gone)
    copy_uf2(build_uf2(payload(8 * 256)), drive)
    assert (drive / "firmware.uf2").stat().st_size == 8 * 512


def test_read_only_drive_explained(drive, monkeypatch):
    def ro(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "open", ro)
    with pytest.raises(Uf2Error, match="cannot write to the BOOTSEL drive .*Read-only"):
        copy_uf2(build_uf2(payload(8 * 256)), drive)
