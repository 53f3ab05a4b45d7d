# The journal: records (telemetry, checkpoints of totals) kept in flash until the collector has
# them, safe against a power cut at any byte of any write. docs/journal.md has the format, what a
# cut does, capacity and wear. In short: records are appended whole to segment files
# journal/<n>.seg and synced before append() returns (the commit); a cut leaves at most a torn
# tail on the newest segment, cut off at the next boot, and the next record takes its seq, which
# nobody has seen. The sent cursor (journal/cursor) is saved only every few acks: after a reset a
# few records are sent again (the collector dedups by device and seq), and none unsent is lost.
# What a boot finds on flash (torn tail, cut-short rewrites) is fab.journal_boot's.
import json
import os
import struct
import time
from binascii import crc32

from micropython import const

_MAGIC = const(0x4A46)  # the bytes "FJ" on flash
_VERSION = const(1)
_HDR = "<HBBHII"  # magic, kind length, version, payload length, seq, ts (time.time() seconds)
_HDR_LEN = const(14)
OVER = const(18)  # header + CRC-32: the bytes a record takes besides its kind and payload
_CUR = "<IIII"  # magic "MFJC", cursor, next seq, dropped; then the CRC-32 of those 16 bytes
_CUR_MAGIC = const(0x434A464D)
_CUR_LEN = const(20)
_MAX_KIND = const(32)

_sync = getattr(os, "sync", None)  # not every port has it; close() has synced the file anyway


def _replace(tmp, dst):
    # LittleFS renames over a file atomically; FAT refuses and gets remove + rename (a cut in
    # between leaves only tmp, which the next boot renames: see fab.journal_boot).
    try:
        os.rename(tmp, dst)
    except OSError:
        os.remove(dst)
        os.rename(tmp, dst)


class Journal:
    def __init__(self, path="journal", segment_bytes=4096, segments=8, ack_every=16,
                 ack_ms=60000):
        if not 256 <= segment_bytes <= 65536:
            raise ValueError("journal: segment_bytes is %s, expected 256 to 65536"
                             % segment_bytes)
        if segments < 2:
            raise ValueError("journal: segments is %s, expected 2 or more" % segments)
        self.path = path
        self.segment_bytes = segment_bytes
        self.segments = segments
        self.ack_every = ack_every
        self.ack_ms = ack_ms
        self._segs: list = []  # [n, first seq, last seq, bytes, records] per file, oldest first
        self.next_seq = 1
        self.cursor = 0  # every record up to here is sent (or dropped)
        self.dropped = 0  # unsent records the journal had to let go when full
        self.torn = 0  # torn tails cut off at this boot
        self._hdr = bytearray(_HDR_LEN)
        self._cur = bytearray(_CUR_LEN)
        self._acks = 0
        self._dirty = False  # cursor or dropped changed since the cursor file was written
        self._saved = time.ticks_ms()
        self._seal = False  # a write failed half-way: the next record goes to a new segment
        self._hint = None  # (segment, offset, seq) after the record pending() gave last
        self._seq = 0  # the seq of the header _head() read last
        try:
            os.mkdir(path)
        except OSError:
            pass  # there already
        from fab.journal_boot import recover

        recover(self)

    def _name(self, n, ext=".seg"):
        return "%s/%d%s" % (self.path, n, ext)

    def _head(self, f):
        # The record header at f's position into self._hdr; the record's size, 0 if there is
        # none. Read byte by byte so that walking the journal allocates nothing.
        h = self._hdr
        if (f.readinto(h) != _HDR_LEN or h[0] | h[1] << 8 != _MAGIC or h[3] != _VERSION
                or not h[2]):
            return 0
        self._seq = h[6] | h[7] << 8 | h[8] << 16 | h[9] << 24
        return OVER + h[2] + (h[4] | h[5] << 8)

    # --- writing ---

    def append(self, kind, record):
        """Commit one record (a dict, stored as JSON); its seq. Raises OSError when the flash
        fails, ValueError when the record is too big for a segment."""
        k = kind.encode()
        p = json.dumps(record).encode()
        kl = len(k)
        size = OVER + kl + len(p)
        if not 0 < kl <= _MAX_KIND:
            raise ValueError("journal: kind '%s' has %d bytes, expected 1 to %d"
                             % (kind, kl, _MAX_KIND))
        if size > self.segment_bytes:
            raise ValueError("journal: a %s record of %d bytes does not fit a segment of %d "
                             "bytes" % (kind, size, self.segment_bytes))
        segs = self._segs
        if self._seal or not segs or segs[-1][3] + size > self.segment_bytes:
            self._rotate()
        seg = segs[-1]
        seq = self.next_seq
        # The whole record in one buffer and one write: one flash operation per record.
        rec = bytearray(size)
        struct.pack_into(_HDR, rec, 0, _MAGIC, kl, _VERSION, len(p), seq, int(time.time()))
        rec[_HDR_LEN:_HDR_LEN + kl] = k
        rec[_HDR_LEN + kl:size - 4] = p
        struct.pack_into("<I", rec, size - 4, crc32(memoryview(rec)[:size - 4]))
        try:
            with open(self._name(seg[0]), "ab") as f:
                f.write(rec)
        except OSError:
            # Some or all of it may be on flash: never append after it, nor reuse its seq.
            self._seal = True
            self.next_seq = seq + 1
            raise
        if _sync:
            _sync()
        if not seg[4]:
            seg[1] = seq
        seg[2] = seq
        seg[3] += size
        seg[4] += 1
        self.next_seq = seq + 1
        return seq

    def _rotate(self):
        segs = self._segs
        while len(segs) >= self.segments:
            n, first, last, end, count = segs[0]
            if count and last > self.cursor:
                # Full of unsent records: the oldest go. Counted (and the count saved) before
                # they are gone, so that a cut in between loses no count.
                self.dropped += min(count, last - self.cursor)
                self.cursor = last
                self.save()
            os.remove(self._name(n))
            segs.pop(0)
        n = segs[-1][0] + 1 if segs else 1
        with open(self._name(n), "wb"):
            pass
        segs.append([n, 0, 0, 0, 0])
        self._seal = False
        if self._dirty:
            self.save()  # a segment switch is a cheap moment to keep the cursor

    # --- the sent cursor ---

    def _load_cursor(self, names):
        # At boot (fab.journal_boot): the cursor file, or its temp copy when a rewrite was cut;
        # each value only ever grows, so the larger of two good copies is the newer. None good:
        # everything is unsent.
        for name in ("cursor", "cursor.tmp"):
            if name not in names:
                continue
            b = self._cur
            try:
                with open(self.path + "/" + name, "rb") as f:
                    ok = f.readinto(b) == _CUR_LEN
            except OSError:
                ok = False
            if ok and struct.unpack_from("<I", b, 16)[0] == crc32(memoryview(b)[:16]):
                magic, cur, nxt, dropped = struct.unpack_from(_CUR, b)
                if magic == _CUR_MAGIC:
                    self.cursor = max(self.cursor, cur)
                    self.next_seq = max(self.next_seq, nxt)
                    self.dropped = max(self.dropped, dropped)
        if "cursor.tmp" in names:
            self._dirty = True
            os.remove(self.path + "/cursor.tmp")

    def ack(self, seq):
        """Every record up to seq has reached the collector."""
        if seq <= self.cursor:
            return
        self.cursor = min(seq, self.next_seq - 1)
        self._acks += 1
        self._dirty = True
        if (self._acks >= self.ack_every
                or time.ticks_diff(time.ticks_ms(), self._saved) >= self.ack_ms):
            self.save()

    def save(self):
        """Write the cursor file now (the runtime calls it before a planned reset)."""
        b = self._cur
        struct.pack_into(_CUR, b, 0, _CUR_MAGIC, self.cursor, self.next_seq, self.dropped)
        struct.pack_into("<I", b, 16, crc32(memoryview(b)[:16]))
        tmp = self.path + "/cursor.tmp"
        with open(tmp, "wb") as f:
            f.write(b)
        if _sync:
            _sync()
        _replace(tmp, self.path + "/cursor")
        self._acks = 0
        self._dirty = False
        self._saved = time.ticks_ms()

    # --- reading ---

    def _read(self, n, off, end, after):
        # The first record after seq `after` in segment n, from offset off on:
        # (seq, ts, kind, payload bytes, offset after it), or None.
        with open(self._name(n), "rb") as f:
            f.seek(off)
            while off < end:
                rs = self._head(f)
                if not rs:
                    return None
                off += rs
                if self._seq > after:
                    h = self._hdr
                    kl = h[2]
                    kp = rs - OVER  # kind and payload
                    body = f.read(kp + 4)
                    if (len(body) != kp + 4 or struct.unpack_from("<I", body, kp)[0]
                            != crc32(memoryview(body)[:kp], crc32(h))):
                        return None  # changed on flash since boot: the rest is not trusted
                    return (self._seq, struct.unpack_from("<I", h, 10)[0], body[:kl].decode(),
                            body[kl:kp], off)
                f.seek(off)
        return None

    def pending(self, after_seq=None, limit=None, again=False):
        """(seq, ts, kind, record) not yet acknowledged, oldest first: those after the cursor, or
        after after_seq if it is further; again=True: after after_seq even when acknowledged
        (what the collector asks for again). No file stays open between two of them."""
        after = self.cursor if after_seq is None or (
            after_seq < self.cursor and not again) else after_seq
        given = 0
        while limit is None or given < limit:
            r = None
            for seg in self._segs:
                if not seg[4] or seg[2] <= after:
                    continue
                off = 0
                hint = self._hint
                if hint and hint[0] == seg[0] and hint[2] == after:
                    off = hint[1]
                r = self._read(seg[0], off, seg[3], after)
                if r:
                    self._hint = (seg[0], r[4], r[0])
                    break
            if r is None:
                return
            after = r[0]
            given += 1
            yield r[0], r[1], r[2], json.loads(r[3])

    def last(self, kind):
        """The newest record of this kind (a dict), or None: totals restored at boot."""
        k = kind.encode()
        for i in range(len(self._segs) - 1, -1, -1):
            n, end = self._segs[i][0], self._segs[i][3]
            found = -1
            off = 0
            with open(self._name(n), "rb") as f:
                while off < end:
                    rs = self._head(f)
                    if not rs:
                        break
                    if self._hdr[2] == len(k) and f.read(len(k)) == k:
                        found = off
                    off += rs
                    f.seek(off)
            r = self._read(n, found, end, 0) if found >= 0 else None
            if r:
                return json.loads(r[3])
        return None

    def status(self):
        records = size = unsent = 0
        oldest = newest = None
        for n, first, last, end, count in self._segs:
            size += end
            records += count
            if count:
                oldest = first if oldest is None else oldest
                newest = last
                if last > self.cursor:
                    unsent += min(count, last - self.cursor)
        return {"records": records, "bytes": size, "oldest": oldest, "newest": newest,
                "unsent": unsent, "cursor": self.cursor, "next_seq": self.next_seq,
                "dropped": self.dropped, "torn": self.torn, "segments": len(self._segs),
                "capacity": self.segments * self.segment_bytes}
