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
print('=',0,z,'%d.%d.%d'%(v[0],v[1],v[2]),getattr(i,'_mpy',0) or 0,gc.mem_free())
"""
_HASH_LEN = 12

# The same calls as fab/deployer.py, for a board that does not have it yet (or an old one):
# whole files only, no patches.
_WRITE = """import os,binascii
class D:
 def a(p,s,first):
  if first:
   d=''
   for x in p.split('/')[:-1]:
    d=d+'/'+x if d else x
    try:os.mkdir(d)
    except OSError:pass
  with open(p+'.z','wb' if first else 'ab') as f:f.write(binascii.a2b_base64(s))
 def fin(p,z):
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
 def commit(pairs,stale,hashes=None):
  for s,d in pairs:
   try:os.rename(s,d)
   except OSError:
    os.remove(d);os.rename(s,d)
  for p in stale:
   try:os.remove(p)
   except OSError:pass
  print('done')
"""
_HELPER = "from fab import deployer as D\n"
HELPER_VERSION = 1
BLOCK = 256  # patch granularity: a one-line change re-sends about two blocks


class DeployError(Exception):
    pass


@dataclass
class Report:
    sent: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)  # sent as a patch of the old file
    unchanged: int = 0
    bytes_sent: int = 0  # on the wire, after deflate and base64
    hello: dict = field(default_factory=dict)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_files(board: dict, machine: dict, calib: dict | None, net: dict | None,
                 extensions=None) -> dict[str, bytes]:
    """The config as files, checked first with the firmware's own rules."""
    hostcfg.check(board, machine, calib, extensions)
    files = {"config/board.json": json.dumps(board).encode(),
             "config/machine.json": json.dumps(machine).encode()}
    if calib:
        files["config/calib.json"] = json.dumps(calib).encode()
    if net:
        files["config/net.json"] = json.dumps(net).encode()
    return files


def deploy(dev: Device, board: dict, machine: dict, calib: dict | None = None,
           net: dict | None = None, progress=None, reset: bool = True,
           firmware_root=None, extensions=None) -> Report:
    """Bring the board to exactly these files. progress(done_bytes, total_bytes, path).
    extensions: extension folders beside MICROFAB_EXTENSIONS and entry points; the one that
    provides the configured machine goes along (microfab.extensions)."""
    from . import extensions as ext

    try:
        want = config_files(board, machine, calib, net, extensions)
        exts = ext.for_machine(machine.get("machine"), extensions)
    except hostcfg.ConfigError as e:
        raise DeployError("config refused before sending anything: %s" % e) from None
    have, deflate_ok, info = probe(dev)
    version = tuple(int(x) for x in info["version"].split("."))
    if version < comp.MIN_MICROPYTHON:
        raise DeployError("the board runs MicroPython %s; microfab's firmware needs %s or newer: "
                          "update it with `microfab flash`" % (info["version"],
                                                               ".".join(map(str, comp.MIN_MICROPYTHON))))
    want.update(comp.device_files(info.get("mpy"), firmware_root, exts))
    report = Report()
    todo = []
    for path, data in sorted(want.items()):
        if have.get(path) == _sha(data)[:_HASH_LEN]:
            report.unchanged += 1
        else:
            todo.append(path)
    stale = sorted(p for p in have if p not in want and p not in KEEP)
    # The board's own helper can patch files, if it is the one this host would send.
    helper = next((p for p in want if p.startswith("fab/deployer.")), None)
    patching = info["helper"] == HELPER_VERSION and helper not in todo
    patches = _patches(dev, want, [p for p in todo if p in have]) if patching else {}
    total = sum(len(want[p]) for p in todo)
    # Calls grouped into execs of about BATCH characters; the helpers ride in the first exec and
    # the commit (all renames together) in the last, so a small change is one round trip.
    batches: list[list[str]] = [[]]
    finished: list[list[str]] = [[]]  # files whose last call is in each batch
    size = 0
    for path in todo:
        head, tail = patches.get(path, (0, 0))
        data = want[path][head:len(want[path]) - tail]
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
            batches[-1].append("D.a(%r,%r,%d)" % (tmp, part, i == 0))
            size += len(part)
        if path in patches:
            batches[-1].append("D.fin(%r,%d,%r,%d,%d)" % (tmp, deflate_ok, path, head, tail))
            report.patched.append(path)
        else:
            batches[-1].append("D.fin(%r,%d)" % (tmp, deflate_ok))
        finished[-1].append(path)
    if todo or stale:
        batches[0].insert(0, _HELPER if patching else _WRITE)
        hashes = [_sha(want[p])[:_HASH_LEN] for p in todo] if patching else None
        batches[-1].append("D.commit(%r,%r,%r)" % ([(p + TMP, p) for p in todo], stale, hashes))
        done = 0
        for calls, paths in zip(batches, finished):
            out = _run(dev, calls)
            for path in paths:
                done += len(want[path])
                report.sent.append(path)
                if progress:
                    progress(done, total, path)
        if "bad " in out:
            raise DeployError("a patched file did not come out as expected on the board (%s); "
                              "nothing was put in place. Deploy again: it will send whole files"
                              % out.split("bad ", 1)[1].split()[0])
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
    """({path: hash prefix}, board has deflate, facts) in one exec: through the board's own
    fab/deployer when it has one, else with the probe sent along."""
    try:
        out = dev.exec(_HELPER + "D.probe(%r,%r)" % (TOPS, LOOSE), timeout=30)
    except BoardError:
        out = ""  # no fab/deployer on this board yet
    if "\n= " not in "\n" + out:
        code = _PROBE.replace("TOPS", repr(TOPS)).replace("LOOSE", repr(LOOSE))
        try:
            out = dev.exec(code, timeout=30)
        except BoardError as e:
            raise DeployError("could not list the board's files: %s" % e) from None
    have = {}
    facts = None
    folder = ""
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["="]:
            facts = parts
        elif len(parts) == 1 and parts[0].startswith("+"):
            folder = parts[0][1:]
        elif len(parts) == 2:
            have[folder + "/" + parts[0] if folder else parts[0]] = parts[1]
    if facts is None or len(facts) != 6:
        raise DeployError("unexpected answer from the board while listing its files: %r"
                          % out[-200:])
    return have, facts[2] == "1", {"helper": int(facts[1]), "version": facts[3],
                                   "mpy": int(facts[4]) or None, "mem_free": int(facts[5])}


def _patches(dev: Device, want: dict, paths: list[str]) -> dict:
    """{path: (head, tail)}: bytes at the start and end of the new file that the board already
    has in the old one, found from the old file's block hashes (one exec for all files)."""
    paths = [p for p in paths if len(want[p]) >= 4 * BLOCK]
    if not paths:
        return {}
    out = dev.exec(_HELPER + "\n".join("D.blocks(%r,%d)" % (p, BLOCK) for p in paths), timeout=30)
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] not in want:
            continue
        path, old_len = parts[0], int(parts[1])
        fwd = [] if parts[2] == "-" else parts[2].split(",")
        bwd = [] if parts[3] == "-" else parts[3].split(",")
        new = want[path]

        def h(b: bytes) -> str:
            return hashlib.sha256(b).hexdigest()[:8]

        k = 0
        while k < len(fwd) and (k + 1) * BLOCK <= len(new) and h(new[k * BLOCK:(k + 1) * BLOCK]) == fwd[k]:
            k += 1
        head = k * BLOCK
        j = 0
        while (j < len(bwd) and (j + 1) * BLOCK <= min(len(new), old_len) - head
               and h(new[len(new) - (j + 1) * BLOCK:len(new) - j * BLOCK]) == bwd[j]):
            j += 1
        if head or j:
            found[path] = (head, j * BLOCK)
    return found


def _run(dev: Device, calls: list[str]) -> str:
    try:
        return dev.exec("\n".join(calls), timeout=30)
    except BoardError as e:
        raise DeployError("writing on the board failed (is its flash full? `microfab df`): %s"
                          % e) from None
    except DeviceError as e:
        raise DeployError("deploy interrupted: %s. Nothing half-written was put in place; run "
                          "deploy again to finish" % e) from None
