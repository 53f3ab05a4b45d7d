# The bare motion axis: one stepper, one endstop. Its job is a list of moves, repeated; the
# other machines build on the same Axis.
# Metadata first and hal-free, so that the host can validate a config with this very module.
from fab.schemas import AXIS

NAME = "axis"
PINS = ("step", "dir", "enable", "endstop")
SCHEMA = AXIS
# Keys the calibration file may override (found by `microfab calibrate`).
CALIBRATE = ("steps_per_mm",)
_MAX_MOVES = 64


class Machine:
    PRODUCTION = ("job_moves", "moves")  # the status field that counts what it made, its unit
    def __init__(self, cfg, pins, board):
        from fab.axis import Axis

        self.axis = Axis(cfg, pins, board["step_backend"])
        self.jobs = 0
        self.job_moves = 0

    def commands(self, table):
        table.add("home", self._home, (), True)
        table.add("move", self._move, (("to", "f", 1), ("speed", "f", 0)), True)
        table.add("jog", self._jog, (("by", "f", 1), ("speed", "f", 0)), True)
        table.add("enable", self._enable, (("on", "b", 1),))
        table.add("job", self._job, (("moves", "l", 1), ("repeat", "i", 0)), True)

    def tasks(self):
        return ()

    async def _home(self, args):
        await self.axis.home()
        return {"pos": self.axis.position()}

    async def _move(self, args):
        await self.axis.move_to(args["to"], args["speed"])
        return {"pos": self.axis.position()}

    async def _jog(self, args):
        await self.axis.jog(args["by"], args["speed"])
        return {"pos": self.axis.position()}

    def _enable(self, args):
        if self.axis.state in ("moving", "homing"):
            raise ValueError("cannot change enable while %s; send stop first" % self.axis.state)
        self.axis.drv.enable(args["on"])
        if not args["on"] and self.axis.endstop is not None:
            self.axis.homed = False  # a free shaft can be turned by hand
        return {"enabled": self.axis.drv.enabled()}

    async def _job(self, args):
        moves = args["moves"]
        repeat = 1 if args["repeat"] is None else args["repeat"]
        if not moves or len(moves) > _MAX_MOVES:
            raise ValueError("job needs 1 to %d moves, got %d" % (_MAX_MOVES, len(moves)))
        if repeat < 1 or repeat > 100000:
            raise ValueError("repeat must be from 1 to 100000, got %d" % repeat)
        c = self.axis.cfg
        # Check the whole job before the first step: a bad move must not strand a half-done job.
        for i, m in enumerate(moves):
            if (not isinstance(m, list) or len(m) != 2 or isinstance(m[0], bool)
                    or not isinstance(m[0], (int, float)) or not isinstance(m[1], (int, float))):
                raise ValueError("move %d of the job must be [position_mm, speed_mm_s], got %s"
                                  % (i, m))
            if not c["min_pos"] <= m[0] <= c["max_pos"]:
                raise ValueError("move %d of the job goes to %s mm, outside the soft limits "
                                  "%s..%s mm" % (i, m[0], c["min_pos"], c["max_pos"]))
            self.axis._check_speed(m[1])
        for _ in range(repeat):
            for m in moves:
                await self.axis.move_to(m[0], m[1])
                self.job_moves += 1
        self.jobs += 1
        return {"moves": len(moves) * repeat, "pos": self.axis.position()}

    def status(self):
        s = self.axis.status()
        s["jobs"] = self.jobs
        s["job_moves"] = self.job_moves
        return s

    def stop(self):
        return self.axis.estop("stop command")

    def safe(self):
        self.axis.estop("fault")
