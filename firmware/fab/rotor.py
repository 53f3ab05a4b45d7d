# The wind rig's rotor: the wind speed (a cup anemometer) and the rotor's speed (a hall sensor),
# each a rate over the last gust_s, and the brake (or furling actuator) that stops the rotor.
# Above the cut-out wind speed or max_rpm it brakes and holds for brake_hold_s after the last
# such moment; it releases once the wind has stayed below cutout - cutout_hyst that long. Braked
# at boot until the wind has been measured and found calm. By hand with the `brake` command; the
# e-stop (fab.machines.windrig) latches it until released by hand.
# Imported with the machine's metadata on the host: no `micropython` import here.
import time

_DAY_MS = 86400000  # the longest brake_hold_s


def _emit(obj):
    import json

    print(json.dumps(obj))


class _Rate:
    # Pulses per second over the last n samples, sliding: a slow rotor gives too few pulses in
    # one sample for a rate of its own, and a bare counter gives one rate per window only.
    # (A comment: a board that compiles the source keeps a docstring's text in its heap.)

    def __init__(self, n, t):
        from array import array

        self.c = array("l", [0] * (n + 1))
        self.t = array("l", [t] * (n + 1))
        self.i = 0

    def push(self, count, t):
        c, ts = self.c, self.t
        i = self.i
        c[i] = count
        ts[i] = t
        i = 0 if i + 1 == len(c) else i + 1
        self.i = i  # now the oldest slot
        dt = time.ticks_diff(t, ts[i])
        return (count - c[i]) * 1000 / dt if dt > 0 else 0.0


class Rotor:
    # A base class of the wind rig's Machine, not a part it holds: wind, rpm and the brake's
    # state stay on one object (no second one on the heap), where status() reads them.
    def __init__(self, cfg, pins):
        from fab import hal
        from fab.drivers.pulses import Pulses

        c = cfg
        # The brake first: whatever fails after this line, safe_state() leaves the rotor braked.
        self._brake = hal.out(pins["brake"], c["brake_active"])
        if c["cutout"] - c["cutout_hyst"] <= c["cutin"]:
            raise ValueError("machine config: cutout %s m/s minus cutout_hyst %s m/s must stay "
                             "above cutin %s m/s, or the brake would never release"
                             % (c["cutout"], c["cutout_hyst"], c["cutin"]))
        self.cfg = cfg
        self.emit = _emit  # the runtime hands its own, which sends through the link
        self.anemo = Pulses(hal.inp(pins["anemometer"], True))
        self.rotor = Pulses(hal.inp(pins["rotor"], True), c["rotor_pulses"])
        now = time.ticks_ms()
        n = max(1, c["gust_s"] * 1000 // c["sample_ms"])
        self._wind = _Rate(n, now)
        self._rpm = _Rate(n, now)
        self.wind = self.rpm = 0.0
        self.braked = True
        self.brake_why = "boot"
        self._hold_ms = c["gust_s"] * 1000 + 2000
        self._calm_since = now
        self.manual = self.latched = False

    def _brake_cmd(self, args):
        # The `brake` command.
        if args["on"]:
            self.manual = True
            self._engage("manual", 0)
            self.brake_why = "manual"
        else:
            # Released by hand: the automatic brake still holds while the wind is too strong.
            self.manual = self.latched = False
        return {"brake": self.braked, "why": self.brake_why}

    def _rotor_step(self, now):
        # One sample: wind and rpm, then the brake on them.
        c = self.cfg
        wind = self.wind = self._wind.push(self.anemo.count, now) * c["anemometer_factor"]
        rpm = self.rpm = self._rpm.push(self.rotor.count, now) * 60 / c["rotor_pulses"]
        if wind > c["cutout"]:
            self._engage("wind", c["brake_hold_s"])
        elif rpm > c["max_rpm"]:
            self._engage("overspeed", c["brake_hold_s"])
        if wind >= c["cutout"] - c["cutout_hyst"] or rpm > c["max_rpm"]:
            self._calm_since = now
        elif time.ticks_diff(now, self._calm_since) > _DAY_MS:
            # ticks wrap after 6 days; a day of calm is longer than any hold
            self._calm_since = time.ticks_add(now, -_DAY_MS)
        elif (self.braked and not self.manual and not self.latched
              and time.ticks_diff(now, self._calm_since) >= self._hold_ms):
            self._brake.value(1 - c["brake_active"])
            self.braked = False
            self._hold_ms = 0
            self.emit({"event": "brake", "on": False, "why": self.brake_why,
                       "wind": round(wind, 2), "rpm": round(rpm, 1)})
            self.brake_why = ""

    def _engage(self, why, hold_s):
        self._brake.value(self.cfg["brake_active"])
        self._calm_since = time.ticks_ms()
        hold = hold_s * 1000
        if self.braked:
            if hold > self._hold_ms:  # the reason that holds longest is the one shown
                self._hold_ms = hold
                self.brake_why = why
            return
        self.braked = True
        self._hold_ms = hold
        self.brake_why = why
        self.emit({"event": "brake", "on": True, "why": why, "wind": round(self.wind, 2),
                   "rpm": round(self.rpm, 1)})
