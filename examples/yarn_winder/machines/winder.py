# The yarn winder: one stepper turns a grooved winding drum that the bobbin rides on, as on a cone
# winder. The yarn runs at the drum's surface speed whatever the bobbin's diameter, so a metre of
# yarn is a fixed number of steps (steps_per_m). A normally closed switch rests on the yarn and
# opens when it breaks: the drum stops at once and the board says so. The metres wound are
# counted per bobbin and in total, and kept on the flash (winder.json) across resets.
#
# A microfab extension: this file travels to a board as fab/machines/winder.py. Metadata first
# and hal-free, so that the host can validate a config with this very module.
import json
import os

from fab.config import ConfigError

NAME = "winder"
# step/dir/enable: the board's stepper header; yarn_break: the yarn-break switch (any free input).
PINS = ("step", "dir", "enable", "yarn_break")
SCHEMA = (
    ("driver", "c", "tmc2209", ("a4988", "drv8825", "tmc2209"), None),
    # 200 steps x 16 microsteps per turn of a 40 mm drum: 3200 / (0.04 * pi) steps per metre
    ("steps_per_m", "f", 25465.0, 1.0, 10000000.0, "steps/m"),
    ("max_speed", "f", 1.0, 0.01, 20.0, "m/s"),
    ("accel", "f", 2.0, 0.01, 100.0, "m/s^2"),
    ("bobbin_m", "f", 5000.0, 1.0, 10000000.0, "m"),  # what one bobbin holds
    ("break_level", "i", 1, 0, 1, "level"),  # the switch's level when the yarn is broken
    ("external_pullup", "b", False, None, None),  # a resistor on the board pulls the switch up
    ("invert_dir", "b", False, None, None),
)
CALIBRATE = ("steps_per_m",)
STORE = "winder.json"  # outside config/ and fab/: a deploy leaves it alone
_FAR_MM = 1e12  # the drum has no ends: soft limits the axis never reaches
_BROKE = "yarn broke"
# ESP32 GPIO 34-39 are inputs only and have no internal pull-up (ESP32 datasheet, section 2.2,
# pin description notes): no step/dir/enable there, and an open switch there would float.
_ESP32_INPUT_ONLY = (34, 35, 36, 37, 38, 39)


def check(cfg, board, pins):
    """What the schema cannot say; hal-free, so that `microfab check-config` refuses it too."""
    if board["chip"] != "esp32":
        return
    for role in ("step", "dir", "enable"):
        if pins[role] in _ESP32_INPUT_ONLY:
            raise ConfigError("machine config pins: '%s' is on GPIO%d, which is an input only on "
                              "the ESP32; expected an output pin" % (role, pins[role]))
    if pins["yarn_break"] in _ESP32_INPUT_ONLY and not cfg["external_pullup"]:
        raise ConfigError("machine config pins: 'yarn_break' is on GPIO%d, which has no internal "
                          "pull-up on the ESP32, so an open switch would float; move it, or fit "
                          "a pull-up resistor and set external_pullup to true" % pins["yarn_break"])


def _emit_line(obj):
    print(json.dumps(obj))  # the USB serial, where the link's lines go too


class Machine:
    # The production record (fab.tele): total_m, kept in winder.json across resets by the winder
    # itself (the third item), so the runtime adds nothing to it.
    PRODUCTION = ("total_m", "m", True)

    def __init__(self, cfg, pins, board):
        from fab import hal
        from fab.axis import Axis

        self.cfg = cfg
        # The drum is an axis without limits or homing, counted in mm as fab.axis counts.
        self.axis = Axis({"driver": cfg["driver"], "steps_per_mm": cfg["steps_per_m"] / 1000,
                          "max_speed": cfg["max_speed"] * 1000, "accel": cfg["accel"] * 1000,
                          "min_pos": -_FAR_MM, "max_pos": _FAR_MM, "home": "none",
                          "home_speed": 1.0, "home_backoff": 1.0, "endstop_active": 0,
                          "invert_dir": cfg["invert_dir"]}, pins, board["step_backend"])
        self.pin = pins["yarn_break"]
        self.sensor = hal.inp(self.pin, pull_up=not cfg["external_pullup"])
        self.emit = _emit_line  # the runtime hands its own, which sends through the link
        self.winding = False
        self.snapped = False  # the yarn broke during the current wind
        self.wind_m = 0.0  # the current wind so far, or the last one
        self.bobbin = 0.0  # metres on the bobbin
        self.total = 0.0  # metres ever wound by this machine
        self.winds = 0
        self.breaks = 0
        self.fault = ""
        self._load()
        hal.on_change(self.sensor, self._on_sensor)  # last: the handler reads the state above

    def broken(self):
        return self.sensor.value() == self.cfg["break_level"]

    def _on_sensor(self, pin):
        # May run in an interrupt: no allocation. The drum stops now, not at the next block.
        if self.winding and not self.snapped and self.broken():
            self.snapped = True
            self.axis.estop(_BROKE)

    # --- commands ---

    def commands(self, table):
        table.add("wind", self._wind, (("metres", "f", 1), ("speed", "f", 0)), True)
        table.add("new-bobbin", self._new_bobbin)

    def tasks(self):
        return ()

    async def _wind(self, args):
        c = self.cfg
        metres, speed = args["metres"], args["speed"]
        if speed is None:
            speed = c["max_speed"]
        if metres <= 0:
            raise ValueError("metres must be more than 0, got %s" % metres)
        if speed <= 0 or speed > c["max_speed"]:
            raise ValueError("speed %s m/s is out of range: expected more than 0 and at most "
                             "max_speed %s m/s" % (speed, c["max_speed"]))
        room = c["bobbin_m"] - self.bobbin
        if metres > room:
            raise ValueError("the bobbin holds %s m and has %.2f m on it, so %.2f m fit; doff it "
                             "and send new-bobbin" % (c["bobbin_m"], self.bobbin, room))
        if self.broken():
            raise ValueError("the yarn is broken (the yarn_break switch on pin %d is open): tie "
                             "it, then wind again" % self.pin)
        self.axis.drv.set_position(0)
        self.snapped = False
        self.fault = ""
        self.winding = True
        stopped = None
        try:
            await self.axis.jog(metres * 1000, speed * 1000)
        except ValueError as e:  # an e-stop: the yarn, the stop command, a fault
            stopped = e
        finally:
            self.winding = False
            done = self.axis.position() / 1000  # exact: the pulses that went out
            self.wind_m = done
            self.bobbin += done
            self.total += done
            self.winds += 1
        if self.snapped:
            self.breaks += 1
        self._save()
        if self.snapped:
            self.fault = "yarn broke after %.3f m of %s m" % (done, metres)
            self.emit({"event": "yarn_break", "wind_m": round(done, 3), "of_m": metres,
                       "bobbin_m": round(self.bobbin, 3)})
            raise ValueError("%s: the drum stopped; tie the yarn and wind the remaining %.3f m"
                             % (self.fault, metres - done))
        if stopped is not None:
            self.fault = str(stopped)
            raise stopped
        return {"wound_m": round(done, 3), "bobbin_m": round(self.bobbin, 3),
                "total_m": round(self.total, 3)}

    def _new_bobbin(self, args):
        if self.winding:
            raise ValueError("winding: send stop first, then doff the bobbin")
        doffed = self.bobbin
        self.bobbin = 0.0
        self._save()
        return {"doffed_m": round(doffed, 3), "bobbin_m": 0.0}

    # --- state ---

    def status(self):
        now = self.axis.position() / 1000 if self.winding else 0.0
        if self.winding:
            motion = "winding"
        else:
            motion = "stopped" if self.axis.state == "estop" else "idle"
        return {"yarn": "broken" if self.broken() else "ok", "motion": motion,
                "enabled": self.axis.drv.enabled(),
                "wind_m": round(now if self.winding else self.wind_m, 3),
                "bobbin_m": round(self.bobbin + now, 3), "total_m": round(self.total + now, 3),
                "winds": self.winds, "breaks": self.breaks, "fault": self.fault}

    def _load(self):
        try:
            with open(STORE) as f:
                d = json.load(f)
            bobbin, total = float(d["bobbin_m"]), float(d["total_m"])
            winds, breaks = int(d["winds"]), int(d["breaks"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # a first boot (no file yet), or a file that is not ours: count from zero
        self.bobbin, self.total, self.winds, self.breaks = bobbin, total, winds, breaks

    def _save(self):
        # Written aside, then renamed over the old one: a power cut leaves one or the other.
        tmp = STORE + ".new"
        with open(tmp, "w") as f:
            json.dump({"bobbin_m": self.bobbin, "total_m": self.total, "winds": self.winds,
                       "breaks": self.breaks}, f)
        try:
            os.rename(tmp, STORE)
        except OSError:  # a port whose rename does not replace an existing file
            os.remove(STORE)
            os.rename(tmp, STORE)

    def stop(self):
        was = "winding" if self.winding else "idle"
        self.axis.estop("stop command")
        return was

    def safe(self):
        self.axis.estop("fault")
