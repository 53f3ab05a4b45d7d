# The journal at boot: what a power cut may have left on flash is put right before the first
# record is written or read (docs/journal.md, "What a power cut does"). A truncation or a FAT
# rename cut short leaves <n>.tmp: redone or finished. Only the newest segment can end in a torn
# record: every CRC of it is checked and the tail cut off; older segments are only walked for
# their first and last seq. A segment with no record in it goes. fab.journal.Journal calls
# recover() once, when it opens.
import os
import struct
from binascii import crc32

from micropython import const

from fab.journal import OVER, _replace, _sync

_CHUNK = const(64)  # the read buffer of the scan and of a truncation: freed once the boot is done


def recover(j):
    names = os.listdir(j.path)
    j._load_cursor(names)
    nums = []
    for name in names:
        stem, _, ext = name.partition(".")
        if not stem.isdigit() or ext not in ("seg", "tmp"):
            continue
        n = int(stem)
        if ext == "seg":
            nums.append(n)
        elif stem + ".seg" in names:
            os.remove(j._name(n, ".tmp"))  # a truncation cut short: redone below
        else:
            os.rename(j._name(n, ".tmp"), j._name(n))  # FAT, cut after the remove
            nums.append(n)
    nums.sort()
    mv = memoryview(bytearray(_CHUNK))
    newest = 0
    for i in range(len(nums)):
        n = nums[i]
        first, last, end, count, size = _scan(j, n, i == len(nums) - 1, mv)
        if i == len(nums) - 1 and end < size:
            _truncate(j, n, end, mv)  # the torn tail
            j.torn += 1
        if count or i == len(nums) - 1:
            j._segs.append([n, first, last, end, count])
            newest = last if count else newest
        else:
            os.remove(j._name(n))  # nothing in it
    j.next_seq = max(j.next_seq, newest + 1)
    if j.cursor >= j.next_seq:
        j.cursor = j.next_seq - 1


def _scan(j, n, check, mv):
    # (first seq, last seq, bytes of good records, records, file size) of one segment. A torn
    # tail is a prefix of a record, so it ends the file before the record's length does; `check`
    # also verifies every CRC (the newest segment, where a cut can fall).
    first = last = end = count = 0
    size = os.stat(j._name(n))[6]
    with open(j._name(n), "rb") as f:
        while True:
            rs = j._head(f)
            seq = j._seq
            if not rs or end + rs > size or (count and seq <= last):
                break
            if check:  # the rest of the record through the small buffer, against its CRC
                crc = crc32(j._hdr)
                left = rs - OVER
                while left:
                    k = f.readinto(mv if left >= _CHUNK else mv[:left])
                    if not k:
                        break
                    crc = crc32(mv if k == _CHUNK else mv[:k], crc)
                    left -= k
                if left or f.readinto(mv[:4]) != 4 or struct.unpack_from("<I", mv)[0] != crc:
                    break
            if not count:
                first = seq
            last = seq
            count += 1
            end += rs
            f.seek(end)
    return first, last, end, count, size


def _truncate(j, n, end, mv):
    # MicroPython files cannot be truncated: copy the good part, then rename it over.
    tmp = j._name(n, ".tmp")
    with open(j._name(n), "rb") as src:
        with open(tmp, "wb") as dst:
            left = end
            while left:
                k = src.readinto(mv[:min(left, _CHUNK)])
                if not k:
                    break
                dst.write(mv[:k])
                left -= k
    if _sync:
        _sync()
    _replace(tmp, j._name(n))
