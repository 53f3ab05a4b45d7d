"""A thousand power cuts in the middle of the journal's writes on a simulated Pico.

The board reports every second (report_s 1) into a small journal (8 KB: two segments, so that it
rotates and drops its oldest unsent records all the time). Each round arms a cut after a random
number of bytes (seeded): the cut falls inside a record's header, kind, payload or CRC, inside
the cursor file's rewrite, or inside the copy that cuts a torn tail off at boot. The board
reboots (a power-on reset) and goes on. After every reboot, what is on flash is read back with
this file's own reader of the documented format (docs/journal.md), and:

- every record the board reported as committed (its JSON line: append() had returned) that the
  journal still keeps is there, field for field: no committed record is ever lost;
- the seqs on flash run without a gap from the oldest to the newest, and the seqs the board sent
  only ever grow: never repeated, never back;
- the board dropped exactly the torn tail the cut left, no more (its status' `torn`);
- everything older than the oldest record kept was counted as dropped for capacity (no acks come
  over USB, so every record is unsent), and nothing newer than what was dropped.
"""
import json
import random
import struct
import zlib
from collections import Counter

SEED = 20261124
CUTS = 1000
HDR = 14  # magic "FJ", kind length, version 1, payload length, seq, ts; then kind, payload, CRC-32
MACHINE = {"machine": "axis", "report_s": 1, "sample_ms": 100, "journal": True, "journal_kb": 8}


def read_journal(folder):
    """seq -> (kind, record) for every good record of every segment, by the documented format."""
    out = {}
    for path in sorted(folder.glob("*.seg"), key=lambda p: int(p.stem)):
        raw = path.read_bytes()
        off = 0
        while off + HDR <= len(raw):
            magic, klen, ver, plen, seq, ts = struct.unpack_from("<HBBHII", raw, off)
            end = off + HDR + klen + plen
            if raw[off:off + 2] != b"FJ" or ver != 1 or end + 4 > len(raw):
                break
            if struct.unpack_from("<I", raw, end)[0] != zlib.crc32(raw[off:end]):
                break
            assert seq not in out, "seq %d twice on flash" % seq
            kind = raw[off + HDR:off + HDR + klen].decode()
            out[seq] = (kind, json.loads(raw[off + HDR + klen:end]))
            off = end + 4
    return out


def region(size, reached):
    """Where in a record write of `size` bytes a cut after `reached` of them fell."""
    if reached == 0:
        return "before the record"
    if reached < HDR:
        return "header"
    if reached < size - 4:
        return "kind or payload"
    if reached < size:
        return "CRC"
    return "whole record, not yet returned"


def test_a_thousand_power_cuts_lose_no_committed_record(make_board):
    b = make_board(machine=MACHINE, seed=SEED)
    rng = random.Random(SEED)
    flash = b.world.flash
    folder = b.root / "journal"
    committed = {}  # seq -> (kind, fields) as the board reported them
    last_sent = 0
    where = Counter()
    torn_dropped = 0  # by the boots checked (the last of each round)
    boots_seen = []
    cuts = 0
    while cuts < CUTS:
        # A status record is about 250 bytes. Some cuts fall early (header, kind), and some
        # rounds cut twice: the second time while the rebooted board copies the good part of
        # the torn segment, writes its boot record, or goes on.
        pick = rng.random()
        if pick < 0.5:
            budgets = [rng.randrange(0, 700)]
        elif pick < 0.75:
            budgets = [rng.randrange(0, 40)]
        else:
            budgets = [rng.randrange(0, 700), rng.randrange(0, 3000)]
        b.world.cut_power_after(*budgets)
        boots, seen = b.boots, len(b.log)
        for _ in range(60):
            b.advance(1)
            if b.boots == boots + len(budgets):
                break
        assert b.boots == boots + len(budgets), "round %d: no power cut within 60 s" % cuts
        cuts += len(budgets)
        # What the board reported before and after the cut: committed records only.
        for line in b.log[seen:]:
            if not isinstance(line, dict) or line.get("seq") is None:
                continue
            assert line["seq"] > last_sent, "seq %d sent after %d" % (line["seq"], last_sent)
            last_sent = line["seq"]
            if "tele" in line:
                fields = {k: v for k, v in line.items() if k not in ("tele", "seq")}
                committed[line["seq"]] = (line["tele"], fields)
            else:  # the boot event carries the boot record's seq
                committed[line["seq"]] = ("boot", {k: line[k] for k in
                                                   ("boots", "firmware", "reset_cause")})
        for path, size, reached in flash.cuts[-len(budgets):]:
            if path.endswith(".seg"):
                where[region(size, reached)] += 1
            elif path.endswith(".tmp") and "cursor" not in path:
                where["copy of a torn segment, at boot"] += 1
            else:
                where["cursor file rewrite"] += 1
        # What the last cut left is what the last boot found: a torn tail, or none (a cut in the
        # copy leaves the torn tail there, for the next boot to cut off again).
        path, size, reached = flash.cuts[-1]
        torn = (0 < reached < size) if path.endswith(".seg") else ("cursor" not in path)
        # The board has rebooted: its view of the journal, and the flash itself.
        boot = b.lines("boot")[-1]
        assert boot["reset_cause"] == "power-on" and boot["state"] == "ready"
        boots_seen.append(boot["boots"])
        st = b.send("status")["journal"]
        assert st["torn"] == torn, "after cut %d: %r" % (cuts, flash.cuts[-1])
        torn_dropped += st["torn"]
        on_flash = read_journal(folder)
        seqs = sorted(on_flash)
        oldest = seqs[0] if seqs else 1  # empty: nothing was ever committed
        assert seqs == list(range(oldest, oldest + len(seqs))), "a gap on flash"
        assert (seqs[-1] if seqs else 0) >= last_sent
        assert st["newest"] == (seqs[-1] if seqs else None)
        for seq in committed:
            if seq >= oldest:
                kind, fields = committed[seq]
                assert on_flash[seq][0] == kind, seq
                assert on_flash[seq][1] == fields, "record %d changed" % seq
        # Nothing is acked over USB: every record the journal let go was unsent, and counted.
        # (A cut right after the count was saved leaves that segment on flash until the next
        # switch: counted already, and never sent.)
        assert st["dropped"] == st["cursor"] >= oldest - 1
        assert st["unsent"] == (seqs[-1] if seqs else 0) - st["cursor"]
    lost = [s for s in committed if s >= oldest and s not in on_flash]
    assert lost == []
    assert boots_seen == sorted(boots_seen)  # the boot counter never goes back
    kept = sum(1 for s in committed if s >= oldest)
    print("\n%d power cuts, %d records committed (reported by the board), %d lost; "
          "%d torn tails dropped at the boots checked; %d committed records still on flash, "
          "%d older ones dropped for capacity (8 KB, nothing acked); boot counter %d after %d "
          "boots" % (cuts, len(committed), len(lost), torn_dropped, kept, st["dropped"],
                     boots_seen[-1], b.boots))
    print("cuts by where they fell: " + ", ".join("%s %d" % kv for kv in sorted(where.items())))
    print("flash written: %d bytes in %d writes, %.0f bytes per committed record (its own bytes, "
          "and after each cut one copy of the good part of the torn segment)"
          % (flash.written, flash.writes, flash.written / len(committed)))
    # every kind of torn tail happened
    assert {"header", "kind or payload", "CRC", "cursor file rewrite",
            "copy of a torn segment, at boot"} <= set(where)
