"""Type-check the device firmware against MicroPython's own API stubs, one port at a time.

MicroPython stub packages (micropython-rp2-stubs, micropython-esp32-stubs) ship modules that
CPython also has (time, sys, os, asyncio, gc, ...). Installed into a venv, mypy ignores them (they
are not PEP 561 packages) and takes CPython's typeshed. On MYPYPATH they count as user code: mypy
reports a dozen errors inside the stubs themselves (machine.pyi redefinitions, _mpy_shed exports),
so no run can pass. --custom-typeshed-dir pointed at the install is not enough either: only its
stdlib/ folder is searched, so machine and time are missing. What works is a custom typeshed
assembled from the stubs: their micropython-stdlib-stubs `stdlib/` (a MicroPython-trimmed typeshed
stdlib) with the port's own modules (machine, time, rp2, esp32, micropython, ...) laid into it
and named in its VERSIONS file. mypy then treats all of it as the standard library: errors inside
the stubs are not reported, `time.ticks_ms()` is known, `time.perf_counter()` is not, and
`machine.Pin(..., valu=1)` is an error.

Each port gets its own cache folder, .typings/<port>/ (git-ignored):
    pkgs/      `pip install --target` of the pinned stub packages
    typeshed/  the custom typeshed assembled from pkgs/
    mypy/      mypy's incremental cache, so that a second run takes about a second
    READY      the requirements the folder was made from; a different pin rebuilds it

The stub pins are read from the `test` extra in pyproject.toml, so there is one place to bump
them. Installing both stub packages into one environment (as `pip install -e .[test]` does) is of
no use to this check: they write the same top-level files (machine.pyi, time.pyi), last one wins.

Run from the shell too:  python tests/firmware/typecheck.py [rp2|esp32 ...]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
TYPINGS = REPO / ".typings"
# Bump to rebuild every cache folder when the layout made below changes.
_LAYOUT = 1

# The stub packages pin micropython-stdlib-stubs only to >=1.27.0,<1.28.0; pinned here so that a
# new post-release of it cannot change the result from one CI run to the next.
STDLIB_STUBS = "micropython-stdlib-stubs==1.27.0.post2"

# Files that only one kind of chip runs; everything else in the firmware is port-independent.
# march: mpy-cross's native-code architecture of the port's chips (RP2040 is a Cortex-M0+;
# ESP32 and ESP32-S3 are both windowed Xtensa).
PORTS = {
    "rp2": {"stubs": "micropython-rp2-stubs", "march": "armv6m",
            "backends": ("fab/hal_pio.py", "fab/hal_timer.py")},
    "esp32": {"stubs": "micropython-esp32-stubs", "march": "xtensawin",
              "backends": ("fab/hal_rmt.py", "fab/hal_timer.py")},
}
PORT_ONLY = sorted({f for p in PORTS.values() for f in p["backends"]})

# mypy's options: unannotated firmware is the norm, so check the bodies of untyped functions
# (without this mypy skips them and would miss every wrong call); no host site-packages.
MYPY_OPTIONS = ("--check-untyped-defs", "--no-site-packages", "--explicit-package-bases",
                "--show-error-codes", "--no-error-summary", "--hide-error-context",
                "--no-color-output", "--warn-unused-ignores")


def device_files():
    """Device files as paths relative to firmware/, in '/' form."""
    try:
        from microfab_firmware import device_files as files
    except ImportError:  # not installed: read the tree the same way firmware/__init__.py does
        names = ["boot.py", "main.py"]
        names += sorted(p.relative_to(FIRMWARE).as_posix() for p in (FIRMWARE / "fab").rglob("*.py"))
        return names
    return [p.as_posix() for p in files()]


def port_files(port):
    """What a board of this port runs: the common files and the port's step backends."""
    backends = PORTS[port]["backends"]
    return [f for f in device_files() if f not in PORT_ONLY or f in backends]


def requirements(port):
    """The pinned stub requirements of a port: its stub package from pyproject's test extra."""
    name = PORTS[port]["stubs"]
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    for req in data["project"]["optional-dependencies"]["test"]:
        if re.match(re.escape(name) + r"\s*(==|$|\[|;|<|>|~|!)", req):
            return [req.replace(" ", ""), STDLIB_STUBS]
    raise RuntimeError("pyproject.toml: the test extra does not list %s, which the %s type check "
                       "needs; add it, pinned like '%s==1.27.0.post1'" % (name, port, name))


def _ready_text(port):
    return "layout %d\n%s\n" % (_LAYOUT, "\n".join(requirements(port)))


def _assemble(pkgs, typeshed):
    """A custom typeshed: the stubs' stdlib, with the port's modules laid into it."""
    shutil.copytree(pkgs / "stdlib", typeshed / "stdlib")
    shutil.copytree(pkgs / "stubs", typeshed / "stubs")
    added = []
    for p in sorted(pkgs.iterdir()):
        # __builtins__.pyi is pyright's way to add const(); mypy takes it from micropython.pyi.
        if p.name in ("stdlib", "stubs", "__builtins__.pyi", "__pycache__") or p.name.endswith(
                (".dist-info", ".egg-info")) or p.name.startswith("."):
            continue
        if p.is_dir():
            shutil.copytree(p, typeshed / "stdlib" / p.name, dirs_exist_ok=True)
            added.append(p.name)
        elif p.suffix == ".pyi":
            shutil.copy2(p, typeshed / "stdlib" / p.name)
            added.append(p.stem)
    versions = typeshed / "stdlib" / "VERSIONS"
    known = set()
    for line in versions.read_text().splitlines():
        line = line.split("#")[0]
        if ":" in line:
            known.add(line.split(":")[0].strip())
    with versions.open("a") as f:
        f.write("\n# MicroPython port modules, added by tests/firmware/typecheck.py\n")
        for name in added:
            if name not in known:
                f.write("%s: 3.0-\n" % name)


def _install(port, folder):
    """pip-installs the stubs into folder/pkgs and assembles folder/typeshed."""
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(folder / "pkgs"), "--no-compile",
           "--only-binary=:all:", "--disable-pip-version-check", "--no-input", "--quiet",
           *requirements(port)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode:
        raise RuntimeError("installing the %s stubs failed (%s):\n%s%s"
                           % (port, " ".join(cmd), r.stdout, r.stderr))
    _assemble(folder / "pkgs", folder / "typeshed")
    (folder / "READY").write_text(_ready_text(port))


def ensure_stubs(port):
    """The port's cache folder, with its stubs installed; installs them on first use."""
    folder = TYPINGS / port
    ready = folder / "READY"
    if ready.is_file() and ready.read_text() == _ready_text(port):
        return folder
    TYPINGS.mkdir(exist_ok=True)
    lock = open(TYPINGS / (port + ".lock"), "w")
    try:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one installs, the rest wait
        except ImportError:
            pass
        if ready.is_file() and ready.read_text() == _ready_text(port):
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=port + "-", dir=TYPINGS))
        try:
            _install(port, tmp / "new")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp / "new", folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.close()
    return folder


def _config(port, path):
    """mypy.ini: the other ports' backends are not followed from hal.py's lazy imports (their
    chip modules do not exist here); they are checked in their own port's run."""
    lines = ["[mypy]"]
    for f in PORT_ONLY:
        if f not in PORTS[port]["backends"]:
            lines += ["", "[mypy-%s]" % f[:-3].replace("/", "."), "follow_imports = skip"]
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def run_mypy(port, files=None, root=FIRMWARE):
    """(exit code, mypy's report) for `files` (relative to root; default: the port's firmware
    files) checked against the port's MicroPython stubs."""
    folder = ensure_stubs(port)
    files = port_files(port) if files is None else list(files)
    cmd = [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(folder / "typeshed"),
           "--config-file", str(_config(port, folder / "mypy.ini")),
           "--cache-dir", str(folder / "mypy"), *MYPY_OPTIONS, "--", *files]
    env = dict(os.environ, MYPYPATH=str(root))
    env.pop("MYPY_CACHE_DIR", None)
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def main(argv):
    ports = argv or list(PORTS)
    worst = 0
    for port in ports:
        if port not in PORTS:
            print("unknown port '%s'; expected one of: %s" % (port, ", ".join(PORTS)))
            return 2
        rc, out = run_mypy(port)
        print("== %s: %s" % (port, "ok" if rc == 0 else "FAILED"))
        if out:
            print(out)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
