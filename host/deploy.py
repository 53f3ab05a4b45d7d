"""`microfab deploy`: the firmware and its config onto a board, sending only what changed.

One batched call hashes every file on the board; files that differ travel deflated and
base64-encoded in a few large raw-paste execs, land under temporary names, and are renamed into
place together at the end, so an interrupted deploy never leaves a half-written file and the
next deploy finishes the job. Then the board is reset and must answer `hello` as configured.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field

from . import compile as comp
from . import config as hostcfg
from .device import BoardError, Device, DeviceError

TOPS = ("fab", "config")  # folders microfab owns on the board; files elsewhere are left alone
# Kept when a deploy does not bring them: calibration (written by `microfab calibrate`) and the
# network settings (written once by provisioning) must survive a firmware update.
KEEP = ("config/calib.json", "config/net.json")
LOOSE = ("boot.py", "main.py")
TMP = ".mfnew"
BATCH = 6000  # base64 characters per exec: a few raw-paste windows, well inside a board's heap

_HASH = """
import os, hashlib, binascii
def _walk(d):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            yield from _walk(p)
        else:
            yield p
def _h(p, b=bytearray(512)):
    h = hashlib.sha256()
    m = memoryview(b)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
_r = {}
for _t in %r:
    try:
        for _p in _walk(_t):
            _r[_p] = _h(_p)
    except OSError:
        pass
for _p in %r:
    try:
        _r[_p] = _h(_p)
    except OSError:
        pass
try:
    import deflate
    _z = 1
except ImportError:
    _z = 0
print(repr((_r, _z)))
"""

_WRITE = """
import os, binascii
def _md(p):
    d = ''
    for s in p.split('/')[:-1]:
        d = d + '/' + s if d else s
        try:
            os.mkdir(d)
        except OSError:
            pass
def _a(p, s, first):
    if first:
        _md(p)
    with open(p + '.z', 'wb' if first else 'ab') as f:
        f.write(binascii.a2b_base64(s))
def _fin(p, z):
    if z:
        import deflate
        with open(p + '.z', 'rb') as i, open(p, 'wb') as o:
            d = deflate.DeflateIO(i, deflate.RAW)
            b = bytearray(256)
            while True:
                n = d.readinto(b)
                if not n:
                    break
                o.write(b[:n] if n < 256 else b)
        os.remove(p + '.z')
    else:
        os.rename(p + '.z', p)
"""

_COMMIT = """
import os
for _s, _d in %r:
    try:
        os.remove(_d)
    except OSError:
        pass
    os.rename(_s, _d)
for _p in %r:
    try:
        os.remove(_p)
    except OSError:
        pass
print('done')
"""


class DeployError(Exception):
    pass


@dataclass
class Report:
    sent: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes_sent: int = 0  # on the wire, after deflate and base64
    hello: dict = field(default_factory=dict)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_files(board: dict, machine: dict, calib: dict | None, net: dict | None) -> dict[str, bytes]:
    """The config as files, checked first with the firmware's own rules."""
    hostcfg.check(board, machine, calib)
    files = {"config/board.json": json.dumps(board).encode(),
             "config/machine.json": json.dumps(machine).encode()}
    if calib:
        files["config/calib.json"] = json.dumps(calib).encode()
    if net:
        files["config/net.json"] = json.dumps(net).encode()
    return files


def deploy(dev: Device, board: dict, machine: dict, calib: dict | None = None,
           net: dict | None = None, progress=None, reset: bool = True,
           firmware_root=None) -> Report:
    """Bring the board to exactly these files. progress(done_bytes, total_bytes, path)."""
    try:
        want = config_files(board, machine, calib, net)
    except hostcfg.ConfigError as e:
        raise DeployError("config refused before sending anything: %s" % e) from None
    info = dev.info()
    version = tuple(int(x) for x in info["version"].split("."))
    if version < comp.MIN_MICROPYTHON:
        raise DeployError("the board runs MicroPython %s; microfab's firmware needs %s or newer: "
                          "update it with `microfab flash`" % (info["version"],
                                                               ".".join(map(str, comp.MIN_MICROPYTHON))))
    want.update(comp.device_files(info.get("mpy"), firmware_root))
    have, deflate_ok = _hash(dev)
    report = Report()
    todo = []
    for path, data in sorted(want.items()):
        if have.get(path) == _sha(data):
            report.unchanged += 1
        else:
            todo.append(path)
    stale = sorted(p for p in have if p not in want and p not in KEEP)
    total = sum(len(want[p]) for p in todo)
    done = 0
    if todo:
        dev.exec(_WRITE)
    batch: list[str] = []
    size = 0
    for path in todo:
        data = want[path]
        payload = zlib.compress(data, 9, -15) if deflate_ok else data
        b64 = base64.b64encode(payload).decode()
        tmp = path + TMP
        for i in range(0, max(1, len(b64)), BATCH):
            batch.append("_a(%r,%r,%d)" % (tmp, b64[i:i + BATCH], i == 0))
            size += min(BATCH, len(b64) - i)
            report.bytes_sent += min(BATCH, len(b64) - i)
            if size >= BATCH:
                _run(dev, batch)
                batch, size = [], 0
        batch.append("_fin(%r,%d)" % (tmp, deflate_ok))
        done += len(data)
        report.sent.append(path)
        if progress:
            progress(done, total, path)
    if batch:
        _run(dev, batch)
    if todo or stale:
        out = dev.exec(_COMMIT % ([(p + TMP, p) for p in todo], stale))
        if "done" not in out:
            raise DeployError("the board did not confirm the new files: %r" % out[-200:])
    report.removed = stale
    if reset:
        dev.reset()
        report.hello = dev.request("hello", timeout=15, resend=1.0)
        if report.hello.get("state") == "config_error":
            raise DeployError("the board refused its config: %s" % report.hello.get("error"))
    return report


def _hash(dev: Device):
    try:
        return dev.eval_script(_HASH % (TOPS, LOOSE))
    except BoardError as e:
        raise DeployError("could not list the board's files: %s" % e) from None


def _run(dev: Device, calls: list[str]):
    try:
        dev.exec("\n".join(calls), timeout=30)
    except BoardError as e:
        raise DeployError("writing on the board failed (is its flash full? `microfab df`): %s"
                          % e) from None
    except DeviceError as e:
        raise DeployError("deploy interrupted: %s. Nothing half-written was put in place; run "
                          "deploy again to finish" % e) from None
