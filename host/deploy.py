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

# One exec: every file under TOPS and LOOSE with the first 6 bytes of its SHA-256 (enough to
# tell a changed file, at a third of the bytes on the wire), then the board's facts on one line.
# Written tight on purpose: at 115200 baud every byte of it costs 87 us each way.
_PROBE = """import os,sys,gc,hashlib,binascii as a
def w(d):
 for e in os.ilistdir(d):
  p=d+'/'+e[0]
  if e[1]&0x4000:yield from w(p)
  else:yield p
b=bytearray(512);m=memoryview(b)
def h(p):
 s=hashlib.sha256()
 with open(p,'rb') as f:
  while 1:
   n=f.readinto(b)
   if not n:break
   s.update(m[:n])
 return a.hexlify(s.digest()[:6]).decode()
for t in TOPS:
 try:
  for p in w(t):print(p,h(p))
 except OSError:pass
for p in LOOSE:
 try:print(p,h(p))
 except OSError:pass
try:
 import deflate;z=1
except ImportError:z=0
i=sys.implementation;v=i.version
gc.collect()
print('=',z,'%d.%d.%d'%(v[0],v[1],v[2]),getattr(i,'_mpy',0) or 0,gc.mem_free())
"""
_HASH_LEN = 12

# Helpers for the writes: _a appends a base64 chunk to <tmp>.z, _fin inflates it into <tmp>.
_WRITE = """import os,binascii
def _md(p):
 d=''
 for s in p.split('/')[:-1]:
  d=d+'/'+s if d else s
  try:os.mkdir(d)
  except OSError:pass
def _a(p,s,first):
 if first:_md(p)
 with open(p+'.z','wb' if first else 'ab') as f:f.write(binascii.a2b_base64(s))
def _fin(p,z):
 if z:
  import deflate
  with open(p+'.z','rb') as i,open(p,'wb') as o:
   d=deflate.DeflateIO(i,deflate.RAW);b=bytearray(256)
   while 1:
    n=d.readinto(b)
    if not n:break
    o.write(b[:n] if n<256 else b)
  os.remove(p+'.z')
 else:os.rename(p+'.z',p)
"""

# All new files into place together. LittleFS replaces the target of a rename in one step, so a
# power cut leaves the old or the new file, never neither; FAT refuses, and gets remove+rename.
_COMMIT = """import os
for s,d in %r:
 try:os.rename(s,d)
 except OSError:
  os.remove(d);os.rename(s,d)
for p in %r:
 try:os.remove(p)
 except OSError:pass
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
    have, deflate_ok, info = probe(dev)
    version = tuple(int(x) for x in info["version"].split("."))
    if version < comp.MIN_MICROPYTHON:
        raise DeployError("the board runs MicroPython %s; microfab's firmware needs %s or newer: "
                          "update it with `microfab flash`" % (info["version"],
                                                               ".".join(map(str, comp.MIN_MICROPYTHON))))
    want.update(comp.device_files(info.get("mpy"), firmware_root))
    report = Report()
    todo = []
    for path, data in sorted(want.items()):
        if have.get(path) == _sha(data)[:_HASH_LEN]:
            report.unchanged += 1
        else:
            todo.append(path)
    stale = sorted(p for p in have if p not in want and p not in KEEP)
    total = sum(len(want[p]) for p in todo)
    # Calls grouped into execs of about BATCH characters; the helpers ride in the first exec and
    # the commit (all renames together) in the last, so a small change is one round trip.
    batches: list[list[str]] = [[]]
    finished: list[list[str]] = [[]]  # files whose last call is in each batch
    size = 0
    for path in todo:
        data = want[path]
        payload = zlib.compress(data, 9, -15) if deflate_ok else data
        b64 = base64.b64encode(payload).decode()
        report.bytes_sent += len(b64)
        tmp = path + TMP
        for i in range(0, max(1, len(b64)), BATCH):
            if size >= BATCH:
                batches.append([])
                finished.append([])
                size = 0
            part = b64[i:i + BATCH]
            batches[-1].append("_a(%r,%r,%d)" % (tmp, part, i == 0))
            size += len(part)
        batches[-1].append("_fin(%r,%d)" % (tmp, deflate_ok))
        finished[-1].append(path)
    if todo or stale:
        batches[0].insert(0, _WRITE)
        batches[-1].append(_COMMIT % ([(p + TMP, p) for p in todo], stale))
        done = 0
        for calls, paths in zip(batches, finished):
            out = _run(dev, calls)
            for path in paths:
                done += len(want[path])
                report.sent.append(path)
                if progress:
                    progress(done, total, path)
        if "done" not in out:
            raise DeployError("the board did not confirm the new files: %r" % out[-200:])
    report.removed = stale
    if reset:
        dev.reset()
        report.hello = dev.request("hello", timeout=15, resend=1.0)
        if report.hello.get("state") == "config_error":
            raise DeployError("the board refused its config: %s" % report.hello.get("error"))
    return report


def probe(dev: Device):
    """({path: hash prefix}, board has deflate, {version, mpy, mem_free}) in one exec."""
    code = _PROBE.replace("TOPS", repr(TOPS)).replace("LOOSE", repr(LOOSE))
    try:
        out = dev.exec(code, timeout=30)
    except BoardError as e:
        raise DeployError("could not list the board's files: %s" % e) from None
    have = {}
    facts = None
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["="]:
            facts = parts
        elif len(parts) == 2:
            have[parts[0]] = parts[1]
    if facts is None or len(facts) != 5:
        raise DeployError("unexpected answer from the board while listing its files: %r"
                          % out[-200:])
    return have, facts[1] == "1", {"version": facts[2], "mpy": int(facts[3]) or None,
                                   "mem_free": int(facts[4])}


def _run(dev: Device, calls: list[str]) -> str:
    try:
        return dev.exec("\n".join(calls), timeout=30)
    except BoardError as e:
        raise DeployError("writing on the board failed (is its flash full? `microfab df`): %s"
                          % e) from None
    except DeviceError as e:
        raise DeployError("deploy interrupted: %s. Nothing half-written was put in place; run "
                          "deploy again to finish" % e) from None
