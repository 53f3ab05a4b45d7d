# A small wind turbine: a rotor with inertia, its generator's power curve, and a brake; and Hall,
# the pulse sensor on anything that turns (rotor magnet, anemometer cups, knitting cam).
#
# The rotor heads for rpm_per_ms * wind (a fixed tip-speed ratio) above cut-in, and for 0 below it
# or when braked, as a first-order lag (tau_s free, brake_tau_s braked): rpm is known in closed
# form at any instant, so the model needs events only while the rotor is still changing speed.
# The generator delivers the power curve at the wind speed the rotor is turning for, so a rotor
# spinning up gives less, and one spinning down after a lull gives back its stored energy:
#   0 below cut_in, rated_w * (v^3 - cut_in^3) / (rated^3 - cut_in^3) up to rated, rated_w above.
# An unbraked rotor above max_rpm (by default the rpm at cut_out, the wind the turbine is built
# to survive turning in) is overspeeding: the model counts those seconds (overspeed_s).
#
# Settings (model "turbine": {...}): cut_in, rated, cut_out (m/s), rated_w, rpm_per_ms, tau_s,
# brake_tau_s, max_rpm.
import math

import vclock
import vmachine
from vpulse import PulseSource

_FALLING = vmachine.Pin.IRQ_FALLING
_IN = vmachine.Pin.IN


class Turbine:
    def __init__(self, cfg):
        self.cut_in = cfg.get("cut_in", 3.0)
        self.rated = cfg.get("rated", 11.0)
        self.cut_out = cfg.get("cut_out", 20.0)
        self.rated_w = cfg.get("rated_w", 100.0)
        self.k = cfg.get("rpm_per_ms", 20.0)
        self.tau = cfg.get("tau_s", 6.0)
        self.brake_tau = cfg.get("brake_tau_s", 1.5)
        self.max_rpm = cfg.get("max_rpm", self.k * self.cut_out)
        self.wind = 0.0
        self.braked = False
        self.target = 0.0
        self._rpm0 = 0.0
        self._t0 = vclock.now
        self._tau_us = self.tau * 1000000
        self.overspeed_s = 0.0
        self.peak_rpm = 0.0
        self.braked_s = 0.0
        self._t_seen = vclock.now

    def set(self, wind, braked):
        """A new wind speed or brake state from now on."""
        now = vclock.now
        self.account()
        self._rpm0 = self.rpm()
        self._t0 = now
        self.wind = wind
        self.braked = braked
        self.target = 0.0 if braked or wind < self.cut_in else self.k * wind
        self._tau_us = (self.brake_tau if braked else self.tau) * 1000000

    def rpm(self):
        dt = vclock.now - self._t0
        return self.target + (self._rpm0 - self.target) * math.exp(-dt / self._tau_us)

    def settled(self):
        return abs(self.rpm() - self.target) < 1.0 + 0.02 * self.target

    def account(self):
        # Between two looks the rpm moved monotonically, so checking both ends is enough.
        now = vclock.now
        dt = (now - self._t_seen) / 1000000
        self._t_seen = now
        r = self.rpm()
        if r > self.peak_rpm:
            self.peak_rpm = r
        if r > self.max_rpm and not self.braked:
            self.overspeed_s += dt
        if self.braked:
            self.braked_s += dt

    def curve(self, v):
        if v < self.cut_in:
            return 0.0
        if v >= self.rated:
            return self.rated_w
        ci3 = self.cut_in ** 3
        return self.rated_w * (v ** 3 - ci3) / (self.rated ** 3 - ci3)

    def power(self):
        return self.curve(self.rpm() / self.k)

    def status(self):
        return {"rpm": round(self.rpm(), 1), "wind": self.wind, "braked": self.braked,
                "power_w": round(self.power(), 2), "overspeed_s": round(self.overspeed_s, 1),
                "peak_rpm": round(self.peak_rpm, 1), "braked_s": round(self.braked_s, 1)}


class Hall(PulseSource):
    """A PulseSource whose frequency changes keep the phase: a rotor that speeds up from 0.1 Hz
    to 5 Hz pulses at once, not after the 10 s its previous period had still to run. Its pulses
    are edges, low and back high in the same instant: the falling-edge IRQ counts them all the
    same, and a day of rotor and anemometer pulses costs one clock event per pulse, not two."""

    def __init__(self, pin, width_us=500):
        PulseSource.__init__(self, pin, width_us)
        self._last = vclock.now

    def set_hz(self, hz):
        if hz < 0.001:  # a rotor coasting to a stop: one pulse in 17 minutes is none
            hz = 0.0
        if hz == self.hz:
            return
        now = vclock.now
        done = (now - self._last) * self.hz / 1000000 if self._ev is not None else 0.0
        vclock.cancel(self._ev)
        self._ev = None
        if done <= 0.0:
            self._last = now
        self.hz = hz
        if hz > 0:
            left = (1.0 - done) / hz if done < 1.0 else 0.0
            wait = max(self.width * 2, int(left * 1000000))
            self._ev = vclock.at(now + wait, self._fall)

    def _fall(self, _):
        now = self._last = vclock.now
        self.count += 1
        p = self.pin
        if p.watchers or p.irq is None or p.trigger != _FALLING or p.mode != _IN:
            p.set_ext(0)  # low and back, in one instant
            p.set_ext(1)
        elif p.ext == 1:
            p.irq(p.obj)  # the same, for an input whose falling-edge IRQ is all that looks
        self._ev = vclock.at(now + max(self.width * 2, int(1000000 / self.hz)), self._fall)
