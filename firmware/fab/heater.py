# A heater band switched by a solid-state relay, time-proportioned: within a window of e.g. 2 s
# the SSR is on for duty * window, then off (a zero-crossing SSR switches on mains half-cycles, so
# it cannot follow a fast PWM). A mains contactor in series is a second way to cut the heat: an
# SSR usually fails shorted, and then only the contactor (or a thermal fuse) stops the band.
import time

from fab import hal

_WATCH_RISE = 2.0  # C the drum must gain per watch period at full power (Marlin's default)
# C the drum may gain per watch period with the SSR off: the band's stored heat flowing on into
# the drum gives a few C; a shorted SSR at full power tens of C.
_STUCK_RISE = 10.0


class Heater:
    def __init__(self, ssr_pin, contactor_pin, window_ms, watts, max_temp):
        self.ssr = hal.out(ssr_pin, 0)
        # Coil energised = contacts closed; hal.safe_state() and a reset de-energise it.
        self.contactor = hal.out(contactor_pin, 0)
        self.window = window_ms
        self.watts = watts
        self.max_temp = max_temp
        self.duty = 0.0
        self._on_ms = 0
        self._w0 = time.ticks_ms()
        self._on = False
        self._spent = False  # the SSR has had its pulse in this window
        self._t_on = 0
        self.on_ms = 0  # every ms the SSR has been on since boot
        self.tripped = ""
        self._watch = None  # (s, temp, +1 full / -1 zero duty) when the steady duty began

    def arm(self):
        """Close the contactor, so that the SSR can heat; refused once the cutoff has tripped."""
        if self.tripped:
            raise ValueError("heater cut off: %s" % self.tripped)
        self.contactor.value(1)

    def armed(self):
        return self.contactor.value() == 1

    def set_duty(self, d, now):
        self.duty = 0.0 if d <= 0 else (1.0 if d >= 1 else d)
        self._on_ms = int(self.duty * self.window + 0.5)
        return self.service(now)

    def _ssr(self, on, now):
        if on == self._on:
            return
        if on:
            self._t_on = now
        else:
            self.on_ms += time.ticks_diff(now, self._t_on)
        self._on = on
        self.ssr.value(1 if on else 0)

    def service(self, now):
        """Drive the SSR for this moment of the window; returns ms until its next edge.

        The SSR is on from the window's start while the time into the window is below
        duty * window, with the duty as it is now, so that a lower duty acts at once (after the
        Arduino PID library's relay-output example)."""
        pos = time.ticks_diff(now, self._w0)
        if pos >= self.window or pos < 0:
            self._w0 = now
            self._spent = False
            pos = 0
        # One pulse per window at most: once off, the SSR waits for the next window even if the
        # duty rises again (fewer switchings, and a cut is never undone within the window).
        on = pos < self._on_ms and not self._spent and self.contactor.value() == 1
        if self._on and not on:
            self._spent = True
        self._ssr(on, now)
        return (self._on_ms - pos) if on else (self.window - pos)

    def off(self):
        """SSR off now; the contactor stays closed (the heater is idle, not cut off)."""
        self.duty = 0.0
        self._on_ms = 0
        self._watch = None
        self._ssr(False, time.ticks_ms())

    def cut(self, why):
        """SSR off and contactor open: the second path, for an SSR that fails shorted."""
        self.off()
        self.contactor.value(0)
        if why and not self.tripped:
            self.tripped = why

    def reset_cutoff(self):
        self.tripped = ""

    def check(self, temp):
        """The over-temperature cutoff; True when it tripped now."""
        if temp >= self.max_temp and not self.tripped:
            self.cut("over-temperature: %.1f C reached max_temp %.1f C" % (temp, self.max_temp))
            return True
        return False

    def watch(self, now_s, temp, watch_s):
        """The heating checks, each over watch_s seconds at a steady extreme duty. At full power
        the drum must warm: a thermocouple that is shorted (a MAX6675 cannot tell), out of the
        drum, or a dead band would otherwise heat blind (Marlin's WATCH_TEMP_PERIOD/INCREASE).
        At zero duty it must not keep warming: then the SSR has failed shorted. Returns why a
        check failed, or ""."""
        kind = 1 if self.duty >= 0.99 else (-1 if self.duty <= 0 else 0)
        w = self._watch
        if not watch_s or not kind:
            self._watch = None
            return ""
        if w is None or w[2] != kind:
            self._watch = (now_s, temp, kind)
            return ""
        if now_s - w[0] < watch_s:
            return ""
        self._watch = (now_s, temp, kind)
        rise = temp - w[1]
        if kind > 0 and rise < _WATCH_RISE:
            return ("heating check: %d s at full power raised the drum %.1f C only; is the "
                    "thermocouple shorted or out of the drum, or the heater band dead?"
                    % (watch_s, rise))
        if kind < 0 and rise > _STUCK_RISE:
            return ("heating check: the drum rose %.1f C in %d s with the SSR off; the SSR has "
                    "probably failed shorted (the contactor cuts the band now)" % (rise, watch_s))
        return ""

    def wh(self):
        """Energy delivered: rated power times the SSR's on-time, i.e. duty integrated over time."""
        ms = self.on_ms
        if self._on:
            ms += time.ticks_diff(time.ticks_ms(), self._t_on)
        return self.watts * ms / 3600000


_WHY = {"open": "thermocouple open: no connection at the converter (check the thermocouple and "
                "its plug)",
        "short_gnd": "thermocouple shorted to GND", "short_vcc": "thermocouple shorted to VCC",
        "no_chip": "no thermocouple converter answers on the SPI bus: the word read is all zeros "
                   "or has reserved bits set (check its wiring and power)",
        "bus": "SPI error reading the thermocouple converter"}


class Thermocouple:
    """A converter (fab.drivers.max31855 / max6675) watched for faults and for staleness: the
    same word bit for bit, `stale_periods` reads in a row, means it stopped converting (thermal
    noise and the cold-junction bits change a live reading at least every few reads).
    `offset` (C, the config's tc_offset) is added to every reading: a type K thermocouple may be
    2.5 C off by its class (IEC 60584 class 2) and the converter's cold junction a few C more;
    calibrated against a reference thermometer, and every check sees the corrected value."""

    def __init__(self, chip, stale_periods, offset=0.0):
        self.chip = chip
        self.stale_periods = stale_periods
        self.offset = offset
        self.stale = 0
        self.why = ""

    def read(self):
        """Temperature in C, or None with `why` saying what is wrong."""
        try:
            t = self.chip.read()
        except OSError:
            self.chip.fault = "bus"
            t = None
        if t is None:
            self.why = _WHY.get(self.chip.fault, self.chip.fault)
            return None
        self.stale = self.stale + 1 if self.chip.same else 0
        if self.stale >= self.stale_periods:
            self.why = ("thermocouple reading stale: the same word %d reads in a row; the "
                        "converter stopped updating" % self.stale)
            return None
        self.why = ""
        return t + self.offset
