"""Config checks on the host with the firmware's own code (fab.config), so that a file the board
would refuse is refused here first, in the same words."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import microfab_boards
import microfab_firmware

if str(microfab_firmware.ROOT) not in sys.path:
    # fab.config and the machine modules' metadata are hal-free, so they import on CPython.
    sys.path.append(str(microfab_firmware.ROOT))

from fab import config as _fw  # noqa: E402

ConfigError = _fw.ConfigError


def read_json(path: str | Path, what: str):
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError("%s %s cannot be read: %s" % (what, p, e.strerror or e)) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError("%s %s is not valid JSON: %s" % (what, p, e)) from None


def board_data(name_or_path: str):
    if name_or_path.endswith(".json") or "/" in name_or_path:
        return read_json(name_or_path, "board file")
    try:
        return microfab_boards.load(name_or_path)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None


def check(board: dict, machine: dict, calib: dict | None = None, extensions=None) -> dict:
    """extensions: folders (or microfab.extensions.Extension objects) beside those found in
    MICROFAB_EXTENSIONS and installed entry points; the one providing the machine is used."""
    from . import extensions as ext

    name = machine.get("machine") if isinstance(machine, dict) else None
    try:
        ext.activate(ext.for_machine(name, extensions))
    except ext.ExtensionError as e:
        raise ConfigError(str(e)) from None
    try:
        b, mod, m, pins = _fw.configure(board, machine, calib)
    except ConfigError as e:
        if "the firmware has no module" not in str(e):
            raise
        raise ConfigError("%s; a machine from an extension needs its folder: --ext PATH, %s, "
                          "or an installed package (docs/extending.md)" % (e, ext.ENV)) from None
    return {"board": b, "machine": m, "pins": pins}


def check_files(board: str, machine: str, calib: str | None = None, extensions=None) -> dict:
    return check(board_data(board), read_json(machine, "machine config"),
                 read_json(calib, "calibration") if calib else None, extensions)


def summary(cfg: dict) -> str:
    b, m = cfg["board"], cfg["machine"]
    pins = ", ".join("%s=%d" % kv for kv in cfg["pins"].items())
    return "ok: %s on %s (%s); pins %s" % (m["machine"], b["title"], b["chip"], pins)
