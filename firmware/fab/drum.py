# The spinning drum: a motor on PWM (a DC motor driver, or a hobby brushless ESC that takes servo
# pulses) with a hall sensor counting magnets on the drum, held at a speed by a PI loop.
from fab import hal
from fab.drivers.pulses import Pulses
from fab.pid import PID

_ESC_HZ = 50  # servo frame: 20 ms
_DC_HZ = 20000  # above hearing, within what DC motor drivers (DRV8871, BTS7960) switch
_ESC_MIN_US = 1000  # 1.0 ms = stop (armed), 2.0 ms = full throttle: the servo-pulse convention
_ESC_SPAN_US = 1000


class Drum:
    def __init__(self, cfg, pwm_pin, hall_pin):
        self.esc = cfg["drum_drive"] == "esc"
        self.pwm = hal.pwm(pwm_pin, _ESC_HZ if self.esc else _DC_HZ)
        # Hall sensors have open-collector outputs: the pull-up is theirs to pull down.
        self.hall = Pulses(hal.inp(hall_pin, pull_up=True), cfg["hall_per_rev"])
        self.max_rpm = cfg["drum_max_rpm"]
        self.watts = cfg["drum_watts"]
        self.pid = PID(cfg["drum_kp"], cfg["drum_ki"], 0.0, 0.0, 1.0)
        self.target = 0.0
        self.rpm = 0.0
        self.drive = 0.0
        self.wh = 0.0
        self.spin_s = 0.0  # time spent at speed (within 10 % of the target)
        self._write(0.0)

    def _write(self, d):
        self.drive = d
        if self.esc:
            us = _ESC_MIN_US + _ESC_SPAN_US * d
            self.pwm.duty_u16(int(us * _ESC_HZ * 65535 // 1000000))
        else:
            self.pwm.duty_u16(int(d * 65535))

    def set_rpm(self, rpm):
        if rpm > 0 and self.target <= 0:
            # Start from the open-loop guess, so the integral does not have to climb to it.
            self.pid.reset(rpm / self.max_rpm)
            self.hall.rate()  # start the speed measurement afresh
        self.target = rpm
        if rpm <= 0:
            self.off()

    def off(self):
        self.target = 0.0
        self._write(0.0)

    def cut(self):
        # From the lid IRQ: no float arithmetic (it would allocate). No pulses at all stops an
        # ESC too (its signal-loss failsafe).
        self.pwm.duty_u16(0)
        self.target = 0.0
        self.drive = 0.0

    def tick(self, dt):
        """Measure the speed over the last period and drive towards the target."""
        self.rpm = self.hall.rpm()
        if self.target > 0:
            self._write(self.pid.update(self.target, self.rpm, dt))
            if abs(self.rpm - self.target) <= 0.1 * self.target:
                self.spin_s += dt
        self.wh += self.watts * self.drive * dt / 3600

    def at_speed(self):
        return self.target > 0 and abs(self.rpm - self.target) <= 0.1 * self.target

    def status(self):
        return {"rpm": round(self.rpm), "rpm_target": round(self.target),
                "drum_drive": round(self.drive, 3)}
