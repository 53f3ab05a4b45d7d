"""`microfab calibrate`: guided flows that measure, propose a value and write it to the board's
config/calib.json. Each flow asks the maker (`ask`) or takes the answer from a flag, so the same
code runs interactively, in scripts, and in tests against a simulated board whose hidden true
value the flow has to find.

A flow works on a Target: send(cmd, **args) -> reply, read_calib() -> dict,
write_calib(dict), reboot(). DeviceTarget speaks to a board over serial; SimTarget to a SimBoard
in this process.
"""
from __future__ import annotations

import json
from typing import Callable


class CalibrationError(Exception):
    pass


CALIB = "config/calib.json"


class DeviceTarget:
    def __init__(self, dev):
        self.dev = dev

    def send(self, cmd, timeout=120.0, **args):
        return self.dev.request(cmd, args, timeout=timeout)

    def read_calib(self) -> dict:
        text = self.dev.exec("try:\n print(open(%r).read())\nexcept OSError:\n print('{}')" % CALIB)
        return json.loads(text or "{}")

    def write_calib(self, values: dict):
        text = json.dumps(values)
        # Written aside and renamed: a reset mid-write leaves the old calibration, not half a file.
        self.dev.exec("import os\nwith open(%r, 'w') as f:\n f.write(%r)\nos.rename(%r, %r)"
                      % (CALIB + ".new", text, CALIB + ".new", CALIB))

    def reboot(self) -> dict:
        self.dev.reset()
        return self.dev.request("hello", timeout=15)


class SimTarget:
    def __init__(self, board):
        self.b = board

    def send(self, cmd, timeout=120.0, **args):
        return self.b.send(cmd, timeout=timeout, **args)

    def read_calib(self) -> dict:
        p = self.b.root / CALIB
        return json.loads(p.read_text()) if p.exists() else {}

    def write_calib(self, values: dict):
        p = self.b.root / CALIB
        p.with_suffix(".new").write_text(json.dumps(values))
        p.with_suffix(".new").replace(p)

    def reboot(self) -> dict:
        self.b.reset()
        return self.b.send("hello")


def _ok(reply: dict, doing: str) -> dict:
    if not reply.get("ok"):
        raise CalibrationError("%s failed: %s" % (doing, reply.get("error")))
    return reply


def _number(text: str, what: str) -> float:
    try:
        return float(str(text).strip().replace(",", "."))
    except ValueError:
        raise CalibrationError("%s: '%s' is not a number; expected millimetres like 99.6"
                               % (what, text)) from None


def save(target, key: str, value: float, say: Callable[[str], None]) -> dict:
    calib = target.read_calib()
    old = calib.get(key)
    calib[key] = value
    target.write_calib(calib)
    hello = target.reboot()
    if hello.get("state") != "ready":
        raise CalibrationError("the board refused the new calibration (%s): %s"
                               % (hello.get("state"), hello.get("error")))
    say("wrote %s = %s (was %s) to %s; the board restarted and accepted it"
        % (key, value, "unset" if old is None else old, CALIB))
    return calib


def steps_per_mm(target, ask: Callable[[str], str], say: Callable[[str], None],
                 distance: float = 100.0, write: bool = True) -> float:
    """Move `distance` mm by the current steps/mm; the maker measures how far it really went."""
    cfg = _ok(target.send("config"), "reading the config")["machine"]
    if "steps_per_mm" not in cfg:
        raise CalibrationError("this machine (%s) has no steps_per_mm to calibrate" % cfg.get("machine"))
    old = cfg["steps_per_mm"]
    span = cfg["max_pos"] - cfg["min_pos"]
    if distance <= 0 or distance > span:
        raise CalibrationError("distance %s mm: expected more than 0 and at most the axis "
                               "travel, %s mm" % (distance, span))
    say("homing ...")
    _ok(target.send("home"), "homing")
    start = cfg["min_pos"] if cfg.get("home", "min") != "max" else cfg["max_pos"] - distance
    _ok(target.send("move", to=start), "moving to the start")
    answer = ask("Mark the carriage's position now. It will move %s mm. Press Enter." % distance)
    _ok(target.send("move", to=start + distance), "the calibration move")
    answer = ask("How far did the carriage really move, in mm?")
    measured = _number(answer, "measured distance")
    if measured <= 0:
        raise CalibrationError("measured distance must be more than 0 mm")
    ratio = measured / distance
    if not 0.5 <= ratio <= 2.0:
        raise CalibrationError("measured %s mm for a %s mm move: off by more than 2x; check the "
                               "belt, pulley and microstepping before calibrating" % (measured, distance))
    new = round(old * distance / measured, 4)
    say("steps_per_mm: %s -> %s (the axis moved %.2f%% %s than asked)"
        % (old, new, abs(ratio - 1) * 100, "further" if ratio > 1 else "less far"))
    if write:
        save(target, "steps_per_mm", new, say)
    return new


def endstop(target, ask: Callable[[str], str], say: Callable[[str], None]) -> bool:
    """The endstop reads released, then pressed while the maker holds it, then homes."""
    st = _ok(target.send("status"), "reading the status")
    if "endstop" not in st:
        raise CalibrationError("this machine has no endstop")
    if st["endstop"]:
        raise CalibrationError("the endstop reads pressed while nothing touches it: check "
                               "endstop_active in the machine config, or the wiring")
    ask("Hold the endstop switch pressed, then press Enter.")
    if not _ok(target.send("status"), "reading the status")["endstop"]:
        raise CalibrationError("the endstop did not read pressed: check its wire to the "
                               "endstop pin and to GND")
    ask("Release it and press Enter.")
    say("homing against it ...")
    _ok(target.send("home"), "homing")
    say("endstop works: released, pressed, and homing found it")
    return True


FLOWS = {"steps": steps_per_mm, "endstop": endstop}
