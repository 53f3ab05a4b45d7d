"""The journal (fab/journal.py) on a simulated board's flash: records come back in order with
their seq, acks move the sent cursor (saved every few acks, never behind what a reboot can
trust), segments rotate within the configured capacity, the oldest sent records go first and
unsent ones only when the journal is full (counted), and a power cut at any byte of a write
costs only the record being written: the next boot drops the torn tail and goes on with the
sequence. Then the journal in the runtime: telemetry seq, the boot counter, and the real
MicroPython VM with its heap."""
import json
import shutil
import struct
import zlib

import pytest

import microfab_firmware
from microfab_sim.world import World

HDR = 14  # docs/journal.md: magic, kind length, version, payload length, seq, ts
KB = 1024


@pytest.fixture
def world(tmp_path):
    """A board's world whose flash holds the journal's modules (and the fab package) only."""
    (tmp_path / "fab").mkdir()
    for name in ("__init__.py", "journal.py", "journal_boot.py"):
        shutil.copyfile(microfab_firmware.ROOT / "fab" / name, tmp_path / "fab" / name)
    w = World(tmp_path)
    w.modules["vclock"].reset()
    return w


def boot(world, **kw):
    """The journal as a board finds it at boot: every firmware module forgotten, the flash kept."""
    world.drop_firmware()
    kw.setdefault("segment_bytes", 512)
    kw.setdefault("segments", 4)
    return world.get("fab.journal").Journal(**kw)


def size_of(kind, rec):
    return HDR + len(kind) + len(json.dumps(rec)) + 4


def files(world):
    return sorted(p.name for p in (world.root / "journal").iterdir())


def flash_bytes(world):
    return sum(p.stat().st_size for p in (world.root / "journal").glob("*.seg"))


def test_records_come_back_in_order_with_seq_time_and_kind(world):
    j = boot(world)
    assert j.append("status", {"rpm": 120, "state": "ready"}) == 1
    world.modules["vclock"].run_to(5_000_000)  # five seconds later
    assert j.append("energy", {"wh": 12.5}) == 2
    t0 = world.modules["vclock"].EPOCH
    assert list(j.pending()) == [(1, t0, "status", {"rpm": 120, "state": "ready"}),
                                 (2, t0 + 5, "energy", {"wh": 12.5})]
    st = j.status()
    assert st["records"] == 2 and st["oldest"] == 1 and st["newest"] == 2 and st["unsent"] == 2
    assert st["bytes"] == flash_bytes(world) == (size_of("status", {"rpm": 120, "state": "ready"})
                                                 + size_of("energy", {"wh": 12.5}))
    # and after a reboot, the same from the flash
    j = boot(world)
    assert [r[0] for r in j.pending()] == [1, 2] and j.next_seq == 3


def test_the_format_on_flash_is_the_documented_one(world):
    j = boot(world)
    j.append("status", {"a": 1})
    raw = (world.root / "journal" / "1.seg").read_bytes()
    magic, klen, ver, plen, seq, ts = struct.unpack_from("<HBBHII", raw)
    assert raw[:2] == b"FJ" and ver == 1 and seq == 1 and ts == world.modules["vclock"].EPOCH
    assert raw[HDR:HDR + klen] == b"status"
    assert json.loads(raw[HDR + klen:HDR + klen + plen]) == {"a": 1}
    body = HDR + klen + plen
    assert struct.unpack_from("<I", raw, body)[0] == zlib.crc32(raw[:body]) and len(raw) == body + 4


def test_pending_pages_with_after_seq_and_limit_and_ack_moves_the_cursor(world):
    j = boot(world)
    for i in range(10):
        j.append("status", {"i": i})
    assert [r[0] for r in j.pending(limit=3)] == [1, 2, 3]
    assert [r[0] for r in j.pending(after_seq=3, limit=3)] == [4, 5, 6]  # in flight, not acked
    j.ack(6)
    assert j.cursor == 6 and [r[0] for r in j.pending()] == [7, 8, 9, 10]
    assert [r[0] for r in j.pending(after_seq=2)] == [7, 8, 9, 10]  # never before the cursor
    j.ack(4)  # a late duplicate ack moves nothing back
    assert j.cursor == 6 and j.status()["unsent"] == 4
    j.ack(99)  # nothing past what was written
    assert j.cursor == 10 and list(j.pending()) == [] and j.status()["unsent"] == 0


def test_pending_sees_records_appended_and_segments_dropped_while_it_runs(world):
    j = boot(world, segment_bytes=256, segments=2)
    for i in range(3):
        j.append("status", {"i": i})
    got = []
    for seq, ts, kind, rec in j.pending():
        got.append(rec["i"])
        if len(got) == 1:
            for i in range(3, 6):
                j.append("status", {"i": i})  # the MQTT task is slower than the sampler
    assert got == [0, 1, 2, 3, 4, 5]


def test_the_cursor_is_saved_every_few_acks_and_a_reboot_resends_only_those(world):
    j = boot(world, ack_every=4)
    for i in range(12):
        j.append("status", {"i": i})
    for seq in (1, 2, 3):
        j.ack(seq)
    assert "cursor" not in files(world)  # three acks: no flash write yet
    j.ack(4)
    assert "cursor" in files(world)
    j.ack(5)
    j.ack(6)
    j = boot(world)  # power lost: acks 5 and 6 were not saved
    assert j.cursor == 4 and [r[0] for r in j.pending(limit=2)] == [5, 6]  # sent again, deduped
    assert j.status()["unsent"] == 8  # nothing unsent was lost


def test_the_cursor_is_saved_after_ack_ms_even_with_few_acks(world):
    j = boot(world, ack_every=100, ack_ms=60000)
    for i in range(3):
        j.append("status", {"i": i})
    j.ack(1)
    world.modules["vclock"].run_to(61_000_000)
    j.ack(2)  # a minute after the last save
    assert boot(world).cursor == 2


def test_save_writes_the_cursor_now(world):
    j = boot(world, ack_every=100)
    for i in range(3):
        j.append("status", {"i": i})
    j.ack(3)
    j.save()
    assert boot(world).cursor == 3


def test_segments_rotate_and_the_sent_records_go_first(world):
    j = boot(world, segment_bytes=256, segments=3)
    rec = {"n": "x" * 40}
    per = 256 // size_of("status", rec)
    for i in range(per * 3):
        j.append("status", rec)
        j.ack(j.next_seq - 1)  # everything sent as soon as written
    assert files(world) == ["1.seg", "2.seg", "3.seg", "cursor"]
    j.append("status", rec)  # the journal is full: the oldest (sent) segment goes
    assert files(world) == ["2.seg", "3.seg", "4.seg", "cursor"]
    st = j.status()
    assert st["dropped"] == 0 and st["oldest"] == per + 1 and st["newest"] == per * 3 + 1
    assert st["segments"] == 3 and st["capacity"] == 768 and flash_bytes(world) <= 768


def test_a_full_journal_of_unsent_records_lets_the_oldest_go_and_counts_them(world):
    j = boot(world, segment_bytes=256, segments=3)
    rec = {"n": "x" * 40}
    per = 256 // size_of("status", rec)
    total = per * 3 + 5
    for i in range(total):
        j.append("status", rec)
    st = j.status()
    # two rotations past full: two segments' worth of the oldest unsent records are gone
    assert st["dropped"] == 2 * per and st["oldest"] == 2 * per + 1 and st["newest"] == total
    assert st["unsent"] == st["records"] == total - 2 * per
    assert [r[0] for r in j.pending(limit=1)] == [2 * per + 1]
    assert flash_bytes(world) <= 3 * 256
    # the count survives a reboot, and the sequence goes on
    j = boot(world, segment_bytes=256, segments=3)
    assert j.status()["dropped"] == 2 * per and j.append("status", rec) == total + 1


def test_a_smaller_journal_after_a_config_change_keeps_its_newest_records(world):
    j = boot(world, segment_bytes=256, segments=6)
    for i in range(30):
        j.append("status", {"i": i, "pad": "x" * 30})
    j = boot(world, segment_bytes=256, segments=2)
    for i in range(30, 36):  # at the next segment switch, the journal shrinks to 2 segments
        j.append("status", {"i": i, "pad": "x" * 30})
    assert len(list((world.root / "journal").glob("*.seg"))) == 2
    st = j.status()
    assert st["newest"] == 36 and st["dropped"] == 36 - st["records"] and flash_bytes(world) <= 512


def test_last_finds_the_newest_record_of_a_kind_across_segments_and_reboots(world):
    j = boot(world, segment_bytes=256, segments=4)
    j.append("totals", {"wh": 1.5, "rows": 3})
    for i in range(8):
        j.append("status", {"i": i, "pad": "x" * 20})
    j.append("totals", {"wh": 2.25, "rows": 7})
    for i in range(3):
        j.append("status", {"i": i})
    assert j.last("totals") == {"wh": 2.25, "rows": 7}
    j = boot(world, segment_bytes=256, segments=4)
    assert j.last("totals") == {"wh": 2.25, "rows": 7} and j.last("status") == {"i": 2}
    assert j.last("energy") is None


def test_bad_records_are_refused_with_what_was_expected(world):
    j = boot(world, segment_bytes=256)
    with pytest.raises(ValueError, match="does not fit a segment of 256 bytes"):
        j.append("status", {"pad": "x" * 300})
    with pytest.raises(ValueError, match="expected 1 to 32"):
        j.append("", {})
    with pytest.raises(ValueError, match="segment_bytes is 100, expected 256 to 65536"):
        boot(world, segment_bytes=100)
    assert j.append("status", {"ok": True}) == 1  # nothing was lost to the refusals


# --- power cuts: a torn tail of every kind ---

REC = {"state": "ready", "rpm": 1234, "wh": 56.78, "i": 9}  # i: one digit, the same size
SIZE = size_of("status", REC)
BODY = SIZE - 4
CUT_AT = [pytest.param(0, id="nothing-written"), pytest.param(1, id="header-1-byte"),
          pytest.param(7, id="header-half"), pytest.param(HDR - 1, id="header-all-but-1"),
          pytest.param(HDR, id="header-whole"), pytest.param(HDR + 3, id="in-the-kind"),
          pytest.param(HDR + 12, id="in-the-payload"),
          pytest.param(BODY - 1, id="payload-all-but-1"),
          pytest.param(BODY, id="crc-none"), pytest.param(BODY + 2, id="crc-half"),
          pytest.param(SIZE - 1, id="crc-all-but-1")]


def cut(world, n, fn):
    vm = world.modules["vmachine"]
    world.cut_power_after(n)
    with pytest.raises(vm.ResetRequest) as e:
        fn()
    assert e.value.args[0] == vm.PWRON_RESET


@pytest.mark.parametrize("n", CUT_AT)
def test_a_torn_record_is_dropped_at_boot_and_the_sequence_goes_on(world, n):
    j = boot(world)
    for i in range(3):
        j.append("status", dict(REC, i=i))
    before = (world.root / "journal" / "1.seg").read_bytes()
    cut(world, n, lambda: j.append("status", REC))
    after = (world.root / "journal" / "1.seg").read_bytes()
    assert after[:len(before)] == before and len(after) == len(before) + n  # n bytes reached it
    j = boot(world)
    st = j.status()
    assert st["torn"] == (1 if n else 0) and st["newest"] == 3 and st["records"] == 3
    assert (world.root / "journal" / "1.seg").read_bytes() == before  # the tail is cut off
    assert [r[3]["i"] for r in j.pending()] == [0, 1, 2]
    # the torn record's seq was never handed out (append did not return): the next takes it
    assert j.append("status", dict(REC, i=3)) == 4
    assert [r[0] for r in boot(world).pending()] == [1, 2, 3, 4]


def test_a_record_written_whole_but_not_returned_is_kept(world):
    j = boot(world)
    j.append("status", dict(REC, i=0))
    cut(world, SIZE, lambda: j.append("status", dict(REC, i=1)))  # the cut came during the sync
    j = boot(world)
    assert j.status()["torn"] == 0 and [r[3]["i"] for r in j.pending()] == [0, 1]
    assert j.append("status", REC) == 3  # seq 2 is on flash: never reused


def test_a_torn_first_record_of_a_new_segment(world):
    j = boot(world, segment_bytes=256, segments=4)
    per = 256 // SIZE
    for i in range(per):
        j.append("status", REC)
    cut(world, 10, lambda: j.append("status", REC))  # segment 2 was created empty first
    j = boot(world, segment_bytes=256, segments=4)
    assert j.status()["torn"] == 1 and j.status()["newest"] == per
    assert j.append("status", REC) == per + 1
    assert files(world) == ["1.seg", "2.seg"]


@pytest.mark.parametrize("n", [0, 5, 19, 20])
def test_a_cut_while_the_cursor_is_saved_leaves_a_cursor_never_ahead(world, n):
    j = boot(world, ack_every=2)
    for i in range(8):
        j.append("status", {"i": i})
    j.ack(1)
    j.ack(2)  # the second ack: saved, cursor 2
    j.ack(5)
    cut(world, n, lambda: j.ack(6))  # the next save of the cursor (20 bytes) is cut
    j = boot(world)
    assert j.cursor in (2, 6)  # the old one (resend 3..6) or, once whole, the new one
    assert j.cursor == (6 if n == 20 else 2)
    assert "cursor.tmp" not in files(world) and j.status()["unsent"] == 8 - j.cursor


def test_a_cut_while_a_torn_tail_is_cut_off_is_finished_at_the_next_boot(world):
    j = boot(world)
    for i in range(3):
        j.append("status", dict(REC, i=i))
    good = (world.root / "journal" / "1.seg").read_bytes()
    cut(world, 30, lambda: j.append("status", REC))
    world.drop_firmware()
    # the copy of the good part is cut half-way: the torn segment itself is untouched
    cut(world, len(good) // 2, lambda: world.get("fab.journal").Journal(segment_bytes=512))
    j = boot(world)
    assert j.status()["torn"] == 1 and files(world) == ["1.seg"]
    assert (world.root / "journal" / "1.seg").read_bytes() == good


def test_seq_never_goes_back_even_when_the_segments_are_lost(world):
    j = boot(world, ack_every=1)
    for i in range(5):
        j.append("status", {"i": i})
    j.ack(3)  # the cursor file also keeps the next seq
    for p in (world.root / "journal").glob("*.seg"):
        p.unlink()  # segments lost (a person cleaning up, a bad block)
    j = boot(world)
    assert j.append("status", {"i": 5}) == 6  # the saved next seq: 1 to 5 are never reused


# --- in the runtime ---

def test_telemetry_goes_into_the_journal_and_out_with_its_seq(make_board):
    b = make_board(machine={"machine": "axis", "report_s": 5, "journal": True})
    b.advance(30)
    tele = b.telemetry()
    assert [t["seq"] for t in tele] == [1, 2, 3, 4, 5, 6, 7]
    # the production total goes out with the first status, and again only when it moves
    assert [t["tele"] for t in tele] == ["status", "production"] + ["status"] * 5
    st = b.send("status")
    assert st["boots"] == 1
    assert st["journal"]["newest"] == 7 and st["journal"]["unsent"] == 7
    assert st["journal"]["capacity"] == 32 * KB  # journal_kb's default
    # what went out on the link is what is on flash, field for field
    w = b.world
    j = w.get("fab.journal").Journal(segments=8)
    on_flash = {seq: rec for seq, ts, kind, rec in j.pending()}
    for t in tele:
        rec = {k: v for k, v in t.items() if k not in ("tele", "seq")}
        assert on_flash[t["seq"]] == rec


def test_boots_are_counted_from_the_journal_and_the_sequence_continues(make_board):
    b = make_board(machine={"machine": "axis", "report_s": 2, "journal": True})
    b.advance(5)
    b.reset()
    b.advance(5)
    ev = b.lines("boot")[-1]
    assert ev["boots"] == 2 and ev["seq"] == 4  # the boot record, after status, production, status
    b.send("reset")
    b.advance(5)
    assert b.send("status")["boots"] == 3
    seqs = [x["seq"] for x in b.log if isinstance(x, dict) and "seq" in x]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1  # never repeated, never back


def test_the_journal_can_be_turned_off(make_board):
    b = make_board(machine={"machine": "axis", "report_s": 5, "journal": False})
    b.advance(12)
    assert [t["seq"] for t in b.telemetry()] == [1, 2, 3]  # status, production, status
    st = b.send("status")
    assert st["boots"] is None and "journal" not in st
    assert not (b.root / "journal").exists()


def test_journal_kb_is_checked(make_board):
    b = make_board(machine={"machine": "axis", "journal": True, "journal_kb": 4})
    err = b.lines("config_error")[0]["error"]
    assert "'journal_kb' is 4, expected a whole number from 8 to 512 KB" in err


def test_the_journal_in_the_micropython_vm_fits_the_heap(record_property):
    """The firmware with its journal in the real MicroPython VM: records on the VM's flash, a
    reset restores the boot counter and goes on with the sequence, and the heap stays within the
    firmware's 48 KB."""
    from microfab_sim.wasm_board import FIRMWARE_TARGET_KB, WasmBoard

    with WasmBoard(board="pico", machine={"machine": "axis", "report_s": 1, "journal": True}, seed=1) as b:
        b.advance(120)
        st = b.send("status")
        assert st["journal"]["records"] == 121 and st["journal"]["torn"] == 0
        b.reset()
        b.advance(3)
        ev = b.lines("boot")[-1]
        assert ev["boots"] == 2 and ev["seq"] == 122
        tele = b.telemetry()
        # after the reset: status, the production total (restored from the journal), status...
        assert [t["seq"] for t in tele] == list(range(1, 122)) + [123, 124, 125, 126]
        m = b.mem()
        record_property("journal_heap", json.dumps(m))
        print("journal in the MicroPython VM: firmware boot %.1f KB, now %.1f KB, peak %.1f KB"
              % (m["firmware_boot"] / KB, m["firmware_now"] / KB, m["firmware_peak"] / KB))
        assert m["firmware_now"] <= FIRMWARE_TARGET_KB * KB and not m["heap_grew"], m
        assert b.console == []
