# The board's side of `microfab deploy`, run from the raw REPL while the firmware is stopped;
# the running firmware never imports it. Kept on the board so that a re-deploy sends a few
# short calls instead of this code, and so that a changed file can travel as a patch: the
# blocks it shares with the old file at its start and end are copied on the board.
import binascii
import hashlib
import os

VERSION = 1
_buf = bytearray(256)
_mv = memoryview(_buf)


def _walk(d):
    for e in os.ilistdir(d):
        p = d + "/" + e[0]
        if e[1] & 0x4000:
            yield from _walk(p)
        else:
            yield p


def _hash(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            n = f.readinto(_buf)
            if not n:
                break
            h.update(_mv[:n])
    return binascii.hexlify(h.digest()[:6]).decode()


def probe(tops, loose):
    """Every file with a hash prefix, then '= VERSION deflate version mpy mem_free'."""
    import gc
    import sys

    # Grouped by folder ('+folder' lines, then 'name hash'): a third fewer bytes on the wire.
    for t in tops:
        d = None
        try:
            for p in _walk(t):
                i = p.rfind("/")
                if p[:i] != d:
                    d = p[:i]
                    print("+" + d)
                print(p[i + 1:], _hash(p))
        except OSError:
            pass
    print("+")
    for p in loose:
        try:
            print(p, _hash(p))
        except OSError:
            pass
    try:
        import deflate  # noqa: F401

        z = 1
    except ImportError:
        z = 0
    i = sys.implementation
    v = i.version
    gc.collect()
    print("=", VERSION, z, "%d.%d.%d" % (v[0], v[1], v[2]), getattr(i, "_mpy", 0) or 0,
          gc.mem_free())


def blocks(p, size):
    """'p length fwd bwd': 4-byte hashes of the file's blocks counted from its start and from
    its end (the last one from each side may be short and is left out)."""
    n = os.stat(p)[6]
    b = bytearray(size)
    fwd = []
    bwd = []
    with open(p, "rb") as f:
        for i in range(n // size):
            f.readinto(b)
            fwd.append(binascii.hexlify(hashlib.sha256(b).digest()[:4]).decode())
        for i in range(1, n // size + 1):
            f.seek(n - i * size)
            f.readinto(b)
            bwd.append(binascii.hexlify(hashlib.sha256(b).digest()[:4]).decode())
    print(p, n, ",".join(fwd) or "-", ",".join(bwd) or "-")


def _md(p):
    d = ""
    for s in p.split("/")[:-1]:
        d = d + "/" + s if d else s
        try:
            os.mkdir(d)
        except OSError:
            pass


def a(p, s, first):
    """Append a base64 chunk to p.z (created on the first)."""
    if first:
        _md(p)
    with open(p + ".z", "wb" if first else "ab") as f:
        f.write(binascii.a2b_base64(s))


def _copy(src, dst, start, count):
    src.seek(start)
    while count > 0:
        n = src.readinto(_buf)
        if not n:
            break
        n = min(n, count)
        dst.write(_mv[:n])
        count -= n


def fin(p, z, old=None, head=0, tail=0):
    """p.z (deflated or not) becomes p; with `old`, p is old[:head] + that + old[-tail:]."""
    with open(p, "wb") as o:
        if old is not None and head:
            with open(old, "rb") as f:
                _copy(f, o, 0, head)
        with open(p + ".z", "rb") as i:
            if z:
                import deflate

                src = deflate.DeflateIO(i, deflate.RAW)
            else:
                src = i
            while True:
                n = src.readinto(_buf)
                if not n:
                    break
                o.write(_mv[:n])
        if old is not None and tail:
            with open(old, "rb") as f:
                _copy(f, o, os.stat(old)[6] - tail, tail)
    os.remove(p + ".z")


def commit(pairs, stale, hashes=None):
    """Every (tmp, final) into place, stale files removed; with `hashes`, only if every tmp file
    hashes as the host expects (a patch applied to the wrong old file renames nothing)."""
    if hashes:
        for i in range(len(pairs)):
            if _hash(pairs[i][0]) != hashes[i]:
                print("bad", pairs[i][1])
                return
    # LittleFS replaces a rename's target in one step (old or new survives a power cut, never
    # neither); FAT refuses, and gets remove + rename.
    for s, d in pairs:
        try:
            os.rename(s, d)
        except OSError:
            os.remove(d)
            os.rename(s, d)
    for p in stale:
        try:
            os.remove(p)
        except OSError:
            pass
    print("done")
