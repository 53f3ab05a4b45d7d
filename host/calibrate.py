"""`microfab calibrate`: guided flows that measure, propose a value and write it to the board's
config/calib.json. Each flow asks the maker (`ask`) or takes the answer from a flag, so the same
code runs interactively, in scripts, and in tests against a simulated board whose hidden true
value the flow has to find.

A flow works on a Target: send(cmd, **args) -> reply, read_calib() -> dict,
write_calib(dict), reboot(), wait(seconds) (the board runs on meanwhile). DeviceTarget speaks to
a board over serial; SimTarget to a SimBoard in this process.

Flows: steps, endstop (the axis); load-cell, thermocouple (the polyfloss); current-zero,
anemometer (the wind rig). A value a flow needs is asked for, unless given as a keyword (a CLI
flag); every other question ends with "press Enter." (is_prompt), so that --yes can answer it.
"""
from __future__ import annotations

import inspect
import json
import time
from typing import Any, Callable


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

    def wait(self, seconds: float):
        time.sleep(seconds)


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

    def wait(self, seconds: float):
        self.b.advance(seconds)


def _ok(reply: dict, doing: str) -> dict:
    if not reply.get("ok"):
        raise CalibrationError("%s failed: %s" % (doing, reply.get("error")))
    return reply


def _number(text, what: str, expected: str = "millimetres like 99.6") -> float:
    try:
        v = float(str(text).strip().replace(",", "."))
    except ValueError:
        v = float("nan")
    if v != v or v in (float("inf"), float("-inf")):
        raise CalibrationError("%s: '%s' is not a number; expected %s" % (what, text, expected))
    return v


def is_prompt(question: str) -> bool:
    """True for a question that only waits for the maker (answered by Enter, or by --yes)."""
    return question.rstrip().lower().endswith("press enter.")


def _check_values(target, values: dict):
    """Refuse on the host, in the firmware's own words, what the board would refuse at boot: a
    key the machine does not calibrate, a value outside its schema's range."""
    from . import config as _hostcfg  # noqa: F401  (puts the firmware's fab package on the path)
    from fab import config as fw

    name = _ok(target.send("config"), "reading the config")["machine"].get("machine")
    try:
        mod = fw.machine_module(name)
    except fw.ConfigError:
        return  # a machine from an extension: the board checks it at the restart
    schema = fw.RUNTIME + mod.SCHEMA
    for key, v in values.items():
        if key not in mod.CALIBRATE:
            raise CalibrationError("'%s' is not calibrated on the %s (expected one of: %s); "
                                   "nothing was written" % (key, name, ", ".join(mod.CALIBRATE)))
        for field in schema:
            if field[0] == key:
                try:
                    fw.value("calibration", field, v)
                except fw.ConfigError as e:
                    raise CalibrationError("%s; nothing was written" % e) from None


def save_values(target, values: dict, say: Callable[[str], None]) -> dict:
    """Write `values` into the board's calibration, restart it and check it accepted them; if it
    did not, the previous calibration goes back on the board."""
    _check_values(target, values)
    calib = target.read_calib()
    before = dict(calib)
    calib.update(values)
    target.write_calib(calib)
    hello = target.reboot()
    if hello.get("state") != "ready":
        target.write_calib(before)
        back = target.reboot().get("state") == "ready"
        raise CalibrationError("the board refused the new calibration (%s): %s; %s"
                               % (hello.get("state"), hello.get("error"),
                                  "the previous calibration is back on it" if back else
                                  "the previous one is back on it, but it does not boot "
                                  "ready either: check `microfab status`"))
    say("wrote %s to %s; the board restarted and accepted it" % (", ".join(
        "%s = %s (was %s)" % (k, v, "unset" if before.get(k) is None else before[k])
        for k, v in values.items()), CALIB))
    return calib


def save(target, key: str, value: float, say: Callable[[str], None]) -> dict:
    return save_values(target, {key: value}, say)


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


# Here, after the helpers: calibrate_sensors imports them from this module (at its own end).
from .calibrate_sensors import anemometer, current_zero, load_cell, thermocouple  # noqa: E402

FLOWS: dict[str, Callable[..., Any]] = {
    "steps": steps_per_mm, "endstop": endstop, "load-cell": load_cell,
    "thermocouple": thermocouple, "current-zero": current_zero, "anemometer": anemometer}
# The flags that answer each flow's questions in a script, for the CLI's error message.
FLAGS = {"steps": "--measured MM, --yes", "endstop": "--yes", "load-cell": "--weight G, --yes",
         "thermocouple": "--reference C, --yes", "current-zero": "--yes",
         "anemometer": "--reference M/S, --yes"}


def run(what: str, target, ask: Callable[[str], str], say: Callable[[str], None],
        write: bool = True, **values):
    """Run the flow `what` with those of `values` it takes (None: ask for it); the CLI's entry."""
    if what not in FLOWS:
        raise CalibrationError("no calibration called '%s'; expected one of: %s"
                               % (what, ", ".join(FLOWS)))
    fn = FLOWS[what]
    takes = inspect.signature(fn).parameters
    kw = {k: v for k, v in values.items() if v is not None and k in takes}
    if "write" in takes:
        kw["write"] = write
    return fn(target, ask, say, **kw)
