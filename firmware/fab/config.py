# Config validation shared by the board (at boot) and the host (before deploy): the same code, so
# that both reject the same files with the same words. Plain Python, no MicroPython imports.
#
# A schema is a tuple of fields: (key, kind, default, lo, hi, unit)
#   kind: "i" int, "f" number, "s" text, "b" true/false, "c" one of lo (a tuple), "o" object,
#         "l" list, "p" pin number
#   default: REQUIRED, or the value used when the key is absent
#   lo, hi: inclusive limits for numbers (None = unbounded); for "l", the item count limits


class ConfigError(ValueError):
    pass


REQUIRED = "<required>"
_NAMES = {"i": "a whole number", "f": "a number", "s": "a text string", "b": "true or false",
          "o": "an object", "l": "a list", "p": "a pin number"}


def kind_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int):
        return "whole number"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def expect(field):
    kind, lo, hi = field[1], field[3], field[4]
    if kind == "c":
        return "one of " + ", ".join(lo)
    text = _NAMES[kind]
    unit = (" " + field[5]) if len(field) > 5 and field[5] else ""
    if kind == "l":
        if lo is not None and hi is not None:
            return "%s of %s to %s items" % (text, lo, hi)
        return text
    if lo is not None and hi is not None:
        return "%s from %s to %s%s" % (text, lo, hi, unit)
    if lo is not None:
        return "%s >= %s%s" % (text, lo, unit)
    return text + unit


def _show(v):
    if isinstance(v, str):
        return "'" + (v if len(v) < 40 else v[:37] + "...") + "'"
    if isinstance(v, (dict, list, tuple)):
        return "a " + kind_of(v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def value(where, field, v):
    """One value checked against its field; returns it (ints widened to float for "f")."""
    key, kind, lo, hi = field[0], field[1], field[3], field[4]
    ok = True
    if kind == "c":
        ok = isinstance(v, str) and v in lo
    elif kind == "b":
        ok = isinstance(v, bool)
    elif kind == "s":
        ok = isinstance(v, str)
    elif kind == "o":
        ok = isinstance(v, dict)
    elif kind == "l":
        ok = isinstance(v, list) and (lo is None or lo <= len(v)) and (hi is None or len(v) <= hi)
    elif isinstance(v, bool) or not isinstance(v, (int, float)):
        ok = False
    elif kind in "ip" and not isinstance(v, int):
        ok = False
    else:
        if kind == "p":
            lo = 0 if lo is None else lo
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            ok = False
        elif kind == "f":
            v = float(v)
    if not ok:
        raise ConfigError("%s: '%s' is %s, expected %s" % (where, key, _show(v), expect(field)))
    return v


def _near(key, known):
    # A typo usually keeps the first letters: 'max_sped' -> 'max_speed'.
    best = ""
    for k in known:
        n = 0
        while n < len(k) and n < len(key) and k[n] == key[n]:
            n += 1
        if n >= 3 and n > len(best):
            best = k
    return (" (did you mean '%s'?)" % best) if best else ""


def check(where, data, schema):
    """A new dict with defaults filled in; raises ConfigError naming the key, value and expectation."""
    if not isinstance(data, dict):
        raise ConfigError("%s: expected an object of settings, got %s" % (where, kind_of(data)))
    out = {}
    known = []
    for field in schema:
        key = field[0]
        known.append(key)
        if key in data:
            out[key] = value(where, field, data[key])
        elif field[2] == REQUIRED:
            raise ConfigError("%s: missing '%s', expected %s" % (where, key, expect(field)))
        else:
            out[key] = field[2]
    for key in data:
        if key not in known:
            raise ConfigError("%s: unknown key '%s'%s; known keys: %s"
                              % (where, key, _near(key, known), ", ".join(sorted(known))))
    return out


BOARD: tuple = (
    ("name", "s", REQUIRED, None, None),
    ("title", "s", REQUIRED, None, None),
    ("chip", "c", REQUIRED, ("rp2040", "esp32", "esp32s3"), None),
    ("port", "c", REQUIRED, ("rp2", "esp32"), None),
    ("heap_kb", "i", REQUIRED, 16, 8192, "KB"),
    ("step_backend", "c", "timer", ("pio", "rmt", "timer"), None),
    ("valid_pins", "l", REQUIRED, 1, 64),
    ("adc_pins", "l", [], 0, 64),
    ("pins", "o", REQUIRED, None, None),
    ("buses", "o", {}, None, None),
    ("usb", "o", {}, None, None),
    ("wifi", "b", False, None, None),
    ("vsense_ratio", "f", 3.0, 1.0, 100.0),
)


def board(data):
    """The board file checked: fields, and every pin by role on a pin the chip has."""
    cfg = check("board file", data, BOARD)
    valid = cfg["valid_pins"]
    for role in cfg["pins"]:
        pin = cfg["pins"][role]
        value("board file pins", (role, "p", None, 0, 63), pin)
        if pin not in valid:
            raise ConfigError("board file pins: '%s' is on pin %d, which %s does not have; "
                              "expected one of %s" % (role, pin, cfg["chip"],
                                                      ", ".join([str(p) for p in valid])))
    return cfg


def pins(board_cfg, overrides, roles):
    """Pin number by role for a machine: the board's wiring, then the machine's overrides.

    Every role the machine needs must be wired, and no two roles may share a pin."""
    table: dict = {}
    for role in roles:
        pin = overrides.get(role, board_cfg["pins"].get(role))
        if pin is None:
            raise ConfigError("machine config pins: '%s' is not wired on board %s; add it to "
                              "\"pins\" in the machine config" % (role, board_cfg["name"]))
        value("machine config pins", (role, "p", None, 0, 63), pin)
        if pin not in board_cfg["valid_pins"]:
            raise ConfigError("machine config pins: '%s' is on pin %d, which %s does not have"
                              % (role, pin, board_cfg["chip"]))
        for other in table:
            if table[other] == pin:
                raise ConfigError("machine config pins: '%s' and '%s' are both on pin %d"
                                  % (other, role, pin))
        table[role] = pin
    for role in overrides:
        if role not in roles:
            raise ConfigError("machine config pins: unknown role '%s'; this machine uses %s"
                              % (role, ", ".join(roles)))
    return table


# Fields every machine config has besides its machine's own.
RUNTIME: tuple = (
    ("machine", "s", REQUIRED, None, None),
    ("pins", "o", {}, None, None),
    ("watchdog_ms", "i", 8000, 0, 8388, "ms"),  # RP2040 WDT tops out at 8388 ms (datasheet 4.7)
    ("sample_ms", "i", 1000, 10, 60000, "ms"),
    ("report_s", "i", 10, 1, 3600, "s"),
    ("journal", "b", False, None, None),  # telemetry kept in flash until sent (fab/journal.py)
    ("journal_kb", "i", 32, 8, 512, "KB"),  # its size on flash, in 4 KB segments
)


def machine_module(name):
    try:
        return __import__("fab.machines." + name, None, None, ("NAME",))
    except ImportError as e:
        if name not in str(e):
            raise
        raise ConfigError("machine config: 'machine' is '%s', but the firmware has no module "
                          "fab/machines/%s.py" % (name, name))


def configure(board_data, machine_data, calib_data=None):
    """(board, machine module, machine config, pins by role), every value checked."""
    b = board(board_data)
    if not isinstance(machine_data, dict):
        raise ConfigError("machine config: expected an object of settings, got %s"
                          % kind_of(machine_data))
    name = machine_data.get("machine")
    if not isinstance(name, str) or not name:
        raise ConfigError("machine config: missing 'machine', expected a machine name like \"axis\"")
    mod = machine_module(name)
    schema = RUNTIME + mod.SCHEMA
    m = check("machine config", machine_data, schema)
    if calib_data:
        if not isinstance(calib_data, dict):
            raise ConfigError("calibration: expected an object of settings, got %s"
                              % kind_of(calib_data))
        for key in calib_data:
            if key not in mod.CALIBRATE:
                raise ConfigError("calibration: '%s' is not calibrated on a %s; expected one of: %s"
                                  % (key, name, ", ".join(mod.CALIBRATE)))
            for field in schema:
                if field[0] == key:
                    m[key] = value("calibration", field, calib_data[key])
    p = pins(b, m["pins"], mod.PINS)
    # What a schema cannot say (the pins and buses a chosen driver needs): a machine module may
    # define a hal-free check(cfg, board, pins), run here so that the host refuses it too.
    extra = getattr(mod, "check", None)
    if extra is not None:
        extra(m, b, p)
    return b, mod, m, p
