"""Host-side locator for the device firmware shipped in the wheel.

This file is never deployed: the board gets ``boot.py``, ``main.py`` and the ``fab`` package.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# What a board's flash holds, relative to ROOT; everything else here is host-side.
DEVICE_TOP = ("boot.py", "main.py")
DEVICE_PACKAGE = "fab"


def device_files():
    """Every file that belongs on a board, as paths relative to the board's root."""
    files = [Path(name) for name in DEVICE_TOP]
    for path in sorted((ROOT / DEVICE_PACKAGE).rglob("*.py")):
        files.append(path.relative_to(ROOT))
    return files
