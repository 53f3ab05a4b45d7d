# The spinning drum: a motor on a PWM pin (a DC motor driver, or an ESC taking servo pulses) with
# a hall sensor under the drum's magnets. The speed follows the drive as a first-order system
# (inertia against a torque that falls with speed, and friction), solved analytically:
#   rpm(t) = target + (rpm0 - target) * exp(-(t - t0) / tau)
# with target = free_rpm * (drive - static) / (1 - static) above the drive that overcomes static
# friction, 0 below it. The hall pulse rate is updated every 50 ms while the speed changes, and
# not at all once it has settled.
import math

import vclock
import vmachine
import vpulse

_UPDATE_US = 50000


class Rotor:
    def __init__(self, pwm_pin, hall_pin, per_rev=1, free_rpm=4000.0, tau_s=1.5, static=0.08,
                 esc=False):
        self.pin = pwm_pin
        self.hall = vpulse.PulseSource(hall_pin)
        self.per_rev = per_rev
        self.free_rpm, self.tau, self.static, self.esc = free_rpm, tau_s, static, esc
        self.jammed = False  # fault injection: the drum is blocked (plastic set solid)
        self.on_change = None  # fn() called before the speed law changes (the owner syncs)
        self.rpm0 = 0.0
        self.t0 = vclock.now
        self.target = 0.0
        self.drive = 0.0
        self._ev = None
        pwm_pin.watchers.append(self._pin_changed)

    def read_drive(self):
        """The drive the pin gives now, 0..1: duty for a DC driver, pulse width for an ESC."""
        p = self.pin
        if p.mode != vmachine.Pin.ALT or p.freq <= 0:  # not (or no longer) a PWM output: a reset
            return 0.0
        if not self.esc:
            return p.duty
        us = p.duty * 1000000 / p.freq
        return 0.0 if us < 1000 else (1.0 if us > 2000 else (us - 1000) / 1000)

    def rpm_at(self, t_us):
        dt = (t_us - self.t0) / 1000000
        if dt <= 0:
            return self.rpm0
        return self.target + (self.rpm0 - self.target) * math.exp(-dt / self.tau)

    def rpm(self):
        return self.rpm_at(vclock.now)

    def _pin_changed(self, _):
        self.poll(True)

    def poll(self, changed=False):
        """Re-read the drive; re-arm what a board reset dropped from the timeline."""
        d = 0.0 if self.jammed else self.read_drive()
        ev = self._ev
        lost = ev is not None and ev[0] < vclock.now
        h = self.hall
        if h.hz > 0 and (h._ev is None or h._ev[0] < vclock.now):
            h.set_hz(0)  # its next pulse was dropped by a reset: start the train again
            h.set_hz(self.hall_hz())
        if changed or lost or d != self.drive:
            self._anchor(d)

    def jam(self, on=True):
        self.jammed = on
        self._anchor(0.0 if on else self.read_drive())
        if on:
            self.rpm0 = 0.0

    def _anchor(self, d):
        if self.on_change is not None:
            self.on_change()
        now = vclock.now
        self.rpm0 = self.rpm_at(now)
        self.t0 = now
        self.drive = d
        s = self.static
        self.target = self.free_rpm * (d - s) / (1 - s) if d > s else 0.0
        self._update(None)

    def hall_hz(self):
        r = self.rpm()
        return r * self.per_rev / 60 if r >= 1 else 0.0

    def _update(self, _):
        vclock.cancel(self._ev)
        self._ev = None
        self.hall.set_hz(self.hall_hz())
        if abs(self.rpm() - self.target) > 0.5:
            self._ev = vclock.at(vclock.now + _UPDATE_US, self._update)
