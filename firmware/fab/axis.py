# One stepper axis: soft limits, endstop homing, jog, and an e-stop that stops pulses at once.
# Units are mm and mm/s at this layer; steps appear only below it.
import asyncio
from micropython import const

from fab import hal
from fab.drivers.stepdir import StepDir
from fab.planner import Profile

_POLL_MS = const(5)
_JOG_UNHOMED_MM = 10.0  # how far one jog may go before the axis knows where it is


class MotionError(ValueError):
    pass


class Axis:
    def __init__(self, cfg, pins, backend, index=0):
        if cfg["max_pos"] <= cfg["min_pos"]:
            raise MotionError("machine config: max_pos %s must be above min_pos %s"
                              % (cfg["max_pos"], cfg["min_pos"]))
        self.cfg = cfg
        self.spm = cfg["steps_per_mm"]
        self.drv = StepDir(cfg["driver"], pins["step"], pins["dir"], pins["enable"], index, backend,
                           cfg["invert_dir"])
        self._prof = Profile()
        self._endstop_pin = pins.get("endstop")
        self._active = cfg["endstop_active"]
        self.endstop = None
        if cfg["home"] != "none":
            # Pull-up: a normally-closed switch to ground reads 0; a cut wire then reads 1 (pressed
            # when endstop_active is 1), which stops the axis instead of crashing it.
            self.endstop = hal.inp(self._endstop_pin, pull_up=True)
            hal.on_change(self.endstop, self._on_endstop)
        self._toward = -1 if cfg["home"] == "min" else 1
        self.homed = cfg["home"] == "none"
        self.state = "idle"
        self.fault = ""
        self._seeking = False
        self._hit = False
        self._abort = False
        self._dir = 0
        self.moves = 0
        self.travel_mm = 0.0

    def pressed(self):
        return self.endstop is not None and self.endstop.value() == self._active

    def _on_endstop(self, pin):
        if not self.pressed():
            return
        if self._seeking:
            self.drv.stop()
            self._hit = True
        elif self._dir == self._toward and self.state == "moving":
            self.estop("endstop hit during a move: steps were lost or the axis is not homed right")

    def estop(self, why="e-stop"):
        """Pulses stop now; the position is no longer trusted, so the axis must home again."""
        self.drv.stop()
        self.drv.enable(False)
        was = self.state
        self._abort = True
        self.homed = self.cfg["home"] == "none" and self.homed
        self.state = "estop"
        self.fault = why
        return was

    def position(self):
        return self.drv.position() / self.spm

    async def _run(self, steps, speed):
        """Run `steps` (signed) at up to `speed` mm/s; returns when the pulses are out."""
        if not steps:
            return
        drv = self.drv
        gen = drv.gen
        self._dir = 1 if steps > 0 else -1
        drv.set_dir(self._dir)
        drv.enable(True)
        prof = self._prof
        prof.start(abs(steps), speed * self.spm, self.cfg["accel"] * self.spm)
        wait = _POLL_MS
        while prof.next():
            while not gen.free():
                await asyncio.sleep_ms(wait)
            if self._abort or (self._seeking and self._hit):
                break
            gen.push(prof.count, prof.interval)
            # Sleep about half a block between polls: fewer wake-ups, the FIFO never runs dry.
            wait = max(_POLL_MS, prof.count * prof.interval // 2000)
        while not gen.idle() and not self._abort and not (self._seeking and self._hit):
            await asyncio.sleep_ms(_POLL_MS)
        self._dir = 0
        if self._abort:
            raise MotionError("stopped: " + self.fault)

    def _begin(self, state):
        if self.state == "estop":
            self.state = "idle"
        self._abort = False
        self.fault = ""
        self.state = state

    def _check_speed(self, speed):
        if speed is None:
            return self.cfg["max_speed"]
        if speed <= 0 or speed > self.cfg["max_speed"]:
            raise MotionError("speed %s mm/s is out of range: expected more than 0 and at most "
                              "max_speed %s mm/s" % (speed, self.cfg["max_speed"]))
        return speed

    async def move_to(self, pos, speed=None):
        c = self.cfg
        if not self.homed:
            raise MotionError("axis is not homed: send home first (or jog, up to %s mm)"
                              % _JOG_UNHOMED_MM)
        if pos < c["min_pos"] or pos > c["max_pos"]:
            raise MotionError("target %s mm is outside the soft limits %s..%s mm"
                              % (pos, c["min_pos"], c["max_pos"]))
        speed = self._check_speed(speed)
        await self._move(int(pos * self.spm + (0.5 if pos >= 0 else -0.5)) - self.drv.position(),
                         speed)

    async def jog(self, dist, speed=None):
        speed = self._check_speed(speed)
        if self.homed:
            target = self.position() + dist
            if target < self.cfg["min_pos"] or target > self.cfg["max_pos"]:
                raise MotionError("jog to %s mm would leave the soft limits %s..%s mm"
                                  % (target, self.cfg["min_pos"], self.cfg["max_pos"]))
        elif abs(dist) > _JOG_UNHOMED_MM:
            raise MotionError("jog of %s mm before homing: at most %s mm at a time"
                              % (dist, _JOG_UNHOMED_MM))
        await self._move(int(dist * self.spm), speed)

    async def _move(self, steps, speed):
        self._begin("moving")
        try:
            await self._run(steps, speed)
            self.moves += 1
            self.travel_mm += abs(steps) / self.spm
        finally:
            if self.state == "moving":
                self.state = "idle"

    async def _seek(self, steps, speed):
        self._hit = False
        self._seeking = True
        try:
            await self._run(steps, speed)
        finally:
            self._seeking = False
        return self._hit

    async def home(self):
        c = self.cfg
        self._begin("homing")
        try:
            if self.endstop is None:
                self.drv.set_position(0)
                self.homed = True
                return
            self.homed = False
            back = int(c["home_backoff"] * self.spm)
            speed = c["home_speed"]
            if self.pressed():
                await self._run(-self._toward * back, speed)
                if self.pressed():
                    raise MotionError("endstop on pin %d still reads pressed after backing off "
                                      "%s mm: check the switch and endstop_active"
                                      % (self._endstop_pin, c["home_backoff"]))
            reach = (c["max_pos"] - c["min_pos"]) * 1.2 + c["home_backoff"]
            if not await self._seek(self._toward * int(reach * self.spm), speed):
                raise MotionError("endstop on pin %d not reached within %.1f mm: check its wiring"
                                  % (self._endstop_pin, reach))
            await self._run(-self._toward * back, speed)
            if not await self._seek(self._toward * 2 * back, speed / 5):
                raise MotionError("endstop on pin %d did not trigger again on the slow approach"
                                  % self._endstop_pin)
            edge = c["min_pos"] if self._toward < 0 else c["max_pos"]
            self.drv.set_position(int(edge * self.spm))
            self.homed = True
        finally:
            if self.state == "homing":
                self.state = "idle"

    def status(self):
        return {"pos": round(self.position(), 3), "homed": self.homed, "motion": self.state,
                "enabled": self.drv.enabled(), "endstop": self.pressed(), "moves": self.moves,
                "travel_mm": round(self.travel_mm, 3), "fault": self.fault}
