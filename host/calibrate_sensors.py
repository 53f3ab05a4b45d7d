"""The sensor calibrations of `microfab calibrate` (the framework is microfab.calibrate):

    load-cell      polyfloss: tare the empty bowl, weigh a known weight -> load_scale (counts/g)
    thermocouple   polyfloss: the cold drum against a reference thermometer -> tc_offset (C)
    current-zero   wind rig: both power monitors with no current flowing -> gen_zero, load_zero (A)
    anemometer     wind rig: the rig's mean wind against a reference's over the same window
                   -> anemometer_factor (m/s per Hz)

Each reads the board through its own commands (status, tare, brake), refuses a sensor in fault,
an answer that is no number, or a correction no real part would need, and writes through
save_values, which restarts the board and checks it accepted the value.
"""
from __future__ import annotations

from typing import Callable

Ask = Callable[[str], str]
Say = Callable[[str], None]

_SCALE_MIN_G = 20.0  # lighter, and the HX711's noise (~0.1 g) is a noticeable part of it
_SCALE_RATIO = 10.0  # another load cell may be a few times off the default; 10x is a mistake
_SCALE_SETTLE_S = 6.0  # the scale averages its last 4 readings, about 1 s apart
_TC_MAX_FIX = 10.0  # C: type K class 2 (2.5 C) and a converter's cold junction (2-3 C), twice
_ROOM = (-10.0, 50.0)  # C: what "room temperature" may be, in a workshop
# Input offset voltage, datasheet maximum: INA219A by shunt range 40/80/160/320 mV (SBOS448G,
# 7.5: 100/125/150/200 uV), INA226 10 uV (SBOS547, electrical characteristics). A reading above
# twice that with no current flowing is a current.
_VOS_219 = ((0.04, 100e-6), (0.08, 125e-6), (0.16, 150e-6), (0.32, 200e-6))
_VOS_226 = 10e-6
_WIND_MIN = 2.0  # m/s: cups start at 0.5-1 m/s and turn unevenly near it, with few pulses
_WIND_RATIO = 2.0


def _config(target) -> dict:
    return _ok(target.send("config"), "reading the config")["machine"]


def _status(target) -> dict:
    return _ok(target.send("status"), "reading the status")


def _has(cfg: dict, key: str, what: str, machine: str):
    if key in cfg:
        return
    if cfg.get("machine") == machine:
        raise CalibrationError("the firmware on this %s has no '%s' yet: `microfab deploy` the "
                               "current firmware, then calibrate" % (machine, key))
    raise CalibrationError("this machine (%s) has no %s to calibrate: that one is the %s's"
                           % (cfg.get("machine"), what, machine))


# --- the polyfloss ---

def _scale_reading(target) -> float | None:
    st = _status(target)
    if not st.get("scale_ok", True):
        raise CalibrationError("the load cell does not answer: the HX711 never has a reading "
                               "ready. Check its wiring (DT to hx_data, SCK to hx_clk, VCC and "
                               "GND) and the load cell's four wires (E+, E-, A+, A-)")
    return st.get("grams")


def load_cell(target, ask: Ask, say: Say, weight: float | None = None,
              write: bool = True) -> float:
    """Tare the empty bowl, put a known weight in it; load_scale (counts/g) = old x read / true."""
    cfg = _config(target)
    _has(cfg, "load_scale", "load cell", "polyfloss")
    old = cfg["load_scale"]
    if weight is not None:
        weight = _grams(weight)
    ask("Empty the bowl and leave it on the scale, then press Enter.")
    for _ in range(10):  # the scale needs 4 readings, about one a second, before it tares
        if _scale_reading(target) is not None:
            break
        target.wait(1.0)
    _ok(target.send("tare"), "taring the empty bowl")
    if weight is None:
        weight = _grams(ask("Put a known weight in the bowl (not touching the rim). "
                            "How much does it weigh, in grams?"))
    else:
        ask("Put the %g g weight in the bowl (not touching the rim), then press Enter." % weight)
    target.wait(_SCALE_SETTLE_S)
    reads = []
    for _ in range(5):
        g = _scale_reading(target)
        if g is None:
            raise CalibrationError("the load cell gave no reading after the tare: check its "
                                   "wiring and try again")
        reads.append(g)
        target.wait(1.0)
    read = sum(reads) / len(reads)
    if read < -weight / _SCALE_RATIO:
        raise CalibrationError("the scale read %.1f g for the %g g weight: the reading went down "
                               "as the weight went on. Swap the load cell's A+ and A- wires "
                               "(or turn the cell over), then calibrate again" % (read, weight))
    ratio = read / weight
    if not 1 / _SCALE_RATIO <= ratio <= _SCALE_RATIO:
        raise CalibrationError("the scale read %.1f g for a %g g weight: off by more than %gx. Is "
                               "the weight in the bowl and the bowl free of the frame? Check the "
                               "load cell's wiring; load_scale is now %s counts/g"
                               % (read, weight, _SCALE_RATIO, old))
    new = round(old * ratio, 3)
    say("load_scale: %s -> %s counts/g (the scale read %.2f g for %g g)" % (old, new, read, weight))
    if write:
        save_values(target, {"load_scale": new}, say)
        say("take the weight out and send `tare` with the bowl empty before spinning")
    return new


def _grams(text) -> float:
    g = _number(text, "weight", "grams like 500")
    if g < _SCALE_MIN_G:
        raise CalibrationError("a weight of %g g is too light to calibrate with: use %g g or more "
                               "(a full water bottle weighed on a kitchen scale will do)"
                               % (g, _SCALE_MIN_G))
    return g


def thermocouple(target, ask: Ask, say: Say, reference: float | None = None,
                 seconds: float = 10.0, write: bool = True) -> float:
    """The cold drum's reading against a reference thermometer: tc_offset += reference - read."""
    cfg = _config(target)
    _has(cfg, "tc_offset", "thermocouple", "polyfloss")
    old = cfg["tc_offset"]
    if reference is not None:
        reference = _room(reference)
    st = _status(target)
    if st.get("heater") in ("heat", "tune"):
        raise CalibrationError("the heater is on (%s): send stop-heat and let the drum cool to "
                               "room temperature first (an hour or more)" % st["heater"])
    ask("With the drum cold at room temperature (heater off for an hour or more), hold the "
        "reference thermometer's probe on the drum beside the thermocouple, then press Enter.")
    if reference is None:
        reference = _room(ask("What does the reference thermometer read, in C?"))
    # The board's reading meanwhile, averaged over its control ticks (one read each).
    every = cfg.get("period_ms", 500) / 1000
    reads = []
    for _ in range(max(2, int(seconds / every))):
        st = _status(target)
        if st.get("temp") is None:
            raise CalibrationError("the thermocouple is in fault: %s. Fix it (and send clear) "
                                   "before calibrating" % (st.get("fault") or "no reading"))
        reads.append(st["temp"])
        target.wait(every)
    read = sum(reads) / len(reads)
    if read > _ROOM[1]:
        raise CalibrationError("the drum reads %.1f C: it is not cold yet; let it cool to room "
                               "temperature and calibrate then" % read)
    fix = reference - read
    new = round(old + fix, 2)
    if abs(new) > _TC_MAX_FIX:
        raise CalibrationError("the board reads %.2f C and the reference %.2f C: an offset of %.1f "
                               "C is more than a thermocouple and its converter are off (%g C). "
                               "Is the reference on the drum, the thermocouple type K and its "
                               "wires the right way round (a reversed one reads falling "
                               "temperatures as it warms)?" % (read, reference, new, _TC_MAX_FIX))
    say("tc_offset: %s -> %s C (the board read %.2f C, the reference %.2f C)"
        % (old, new, read, reference))
    if write:
        save_values(target, {"tc_offset": new}, say)
    return new


def _room(text) -> float:
    c = _number(text, "reference temperature", "degrees C like 21.5")
    if not _ROOM[0] <= c <= _ROOM[1]:
        raise CalibrationError("reference %g C: expected room temperature, %g to %g C; calibrate "
                               "with the drum cold" % (c, _ROOM[0], _ROOM[1]))
    return c


# --- the wind rig ---

def current_zero(target, ask: Ask, say: Say, seconds: float = 10.0,
                 write: bool = True) -> dict:
    """Brake the rotor, unplug the loads: what each power monitor reads then is its offset."""
    cfg = _config(target)
    _has(cfg, "gen_zero", "power monitors", "windrig")
    st = _status(target)
    _monitors_ok(st)
    if st.get("running"):
        _ok(target.send("pause"), "pausing the motor")
    _ok(target.send("brake", on=True), "braking the rotor")
    ask("The rotor is braked. Unplug the loads from the load monitor's output (the motor driver "
        "and the electronics' supply; the board stays powered over USB) so that no current "
        "flows through either shunt, then press Enter.")
    for _ in range(60):  # the rotor coasts down; the rpm is a gust_s average
        st = _status(target)
        if st.get("rpm", 0) == 0:
            break
        target.wait(1.0)
    else:
        raise CalibrationError("the rotor still turns at %s rpm a minute after braking: check the "
                               "brake before calibrating" % st.get("rpm"))
    target.wait(cfg.get("gust_s", 3) + 1)  # the generator's current decays with the rotor
    every = cfg.get("sample_ms", 1000) / 1000
    gen, load = [], []
    for _ in range(max(1, int(seconds / every))):
        target.wait(every)
        st = _status(target)
        _monitors_ok(st)
        gen.append(st["gen_a"])
        load.append(st["load_a"])
    limit = 2 * _vos_max(cfg) / cfg["shunt_ohm"]
    found = {}
    for key, name, reads, hint in (
            ("gen_zero", "generator", gen, "the rotor braked and the generator still"),
            ("load_zero", "load", load, "every load unplugged from it")):
        mean = sum(reads) / len(reads)
        if abs(mean) > limit:
            raise CalibrationError("the %s monitor reads %.4f A with %s: more than its chip's "
                                   "offset can be (%.4f A over a %s ohm shunt), so a current "
                                   "flows. Unplug what still draws or feeds, then calibrate again"
                                   % (name, mean, hint, limit, cfg["shunt_ohm"]))
        found[key] = round(cfg[key] + mean, 5)
        say("%s: %s -> %s A (the %s monitor read %.4f A with no current)"
            % (key, cfg[key], found[key], name, mean))
    if write:
        save_values(target, found, say)
        say("plug the loads back in; the board braked the rotor at its restart and releases it "
            "when the wind allows")
    else:
        say("the brake stays on: release it with `microfab send brake on=false`")
    return found


def _vos_max(cfg: dict) -> float:
    if cfg.get("ina") == "ina226":
        return _VOS_226
    need = cfg["max_current"] * cfg["shunt_ohm"]  # the range the driver picks (drivers/ina219.py)
    for fs, vos in _VOS_219:
        if need <= fs * 1.000001:
            return vos
    return _VOS_219[-1][1]


def _monitors_ok(st: dict):
    if st.get("sensor_error"):
        raise CalibrationError("a power monitor is in fault: %s. Fix its wiring first"
                               % st["sensor_error"])
    if "gen_a" not in st:
        raise CalibrationError("the board reports no monitor currents (gen_a, load_a): "
                               "`microfab deploy` the current firmware first")


def anemometer(target, ask: Ask, say: Say, reference: float | None = None,
               seconds: float = 60.0, write: bool = True) -> float:
    """The rig's mean wind over `seconds` against a reference anemometer's over the same time:
    anemometer_factor x reference / read."""
    cfg = _config(target)
    _has(cfg, "anemometer_factor", "anemometer", "windrig")
    old = cfg["anemometer_factor"]
    if reference is not None:
        reference = _number(reference, "reference wind", "m/s like 5.4")
    gust = cfg.get("gust_s", 3)
    n = max(1, int(round(seconds / gust)))
    ask("Both anemometers are read for %d s from when you press Enter: hold the reference next "
        "to the rig's, at the same height and clear of the rotor, then press Enter." % (n * gust))
    # The board's wind is the pulse rate over the last gust_s: reads gust_s apart tile the window.
    reads = []
    for _ in range(n):
        target.wait(gust)
        reads.append(_status(target)["wind"])
    read = sum(reads) / n
    if reference is None:
        reference = _number(ask("What was the reference's mean wind over those %d s, in m/s?"
                                % (n * gust)), "reference wind", "m/s like 5.4")
    if reference < _WIND_MIN:
        raise CalibrationError("the reference read %.2f m/s: too little wind to calibrate with; "
                               "wait for a steady %g m/s or more" % (reference, _WIND_MIN))
    if read <= 0:
        raise CalibrationError("the rig's anemometer gave no pulses while the reference read "
                               "%.2f m/s: check its cable and reed switch (to the anemometer pin "
                               "and GND)" % reference)
    ratio = reference / read
    if not 1 / _WIND_RATIO <= ratio <= _WIND_RATIO:
        raise CalibrationError("the rig read %.2f m/s and the reference %.2f m/s: off by more than "
                               "%gx. Were both in the same wind, and is the reference's mean over "
                               "the same %d s?" % (read, reference, _WIND_RATIO, n * gust))
    new = round(old * ratio, 4)
    say("anemometer_factor: %s -> %s m/s per Hz (the rig read %.2f m/s, the reference %.2f m/s, "
        "over %d s)" % (old, new, read, reference, n * gust))
    if write:
        save_values(target, {"anemometer_factor": new}, say)
    return new


# At the end: microfab.calibrate imports this module at its own end, for FLOWS.
from .calibrate import CalibrationError, _number, _ok, save_values  # noqa: E402
