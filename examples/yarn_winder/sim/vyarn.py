# The yarn side of the winder, for the simulator: the winding drum (a stepper whose forward steps
# are yarn), the bobbin riding on it, the yarn's tension and the yarn-break switch. Written for
# CPython and MicroPython alike, as the simulator's vm/ modules are.
#
# The yarn breaks at the exact pulse that reaches a scheduled length (fault injection:
# break_at_m, one length or a list, counted on the bobbin), or at the first pulse of a block run
# so fast that the tension passes the yarn's strength. Once broken it winds nothing more until
# tie() is called, however far the drum turns: `overrun` counts the drum's steps meanwhile.
import vclock
import vstepper

_PI = 3.141592653589793


class Drum(vstepper.Motor):
    """The winding drum: a Motor that tells the yarn of every block it starts."""

    def __init__(self, yarn, step, dir, enable, **kw):
        vstepper.Motor.__init__(self, step, dir, enable, **kw)
        self.yarn = yarn
        yarn.drum = self

    def _start(self, t, chained):
        vstepper.Motor._start(self, t, chained)
        self.yarn.on_block(t)


class Yarn:
    def __init__(self, switch, steps_per_m, model, machine_cfg):
        self.switch = switch  # PinState of the yarn_break pin, or None when it is not wired
        self.spm = steps_per_m
        self.drum = None
        at = model.get("break_at_m", ())
        self.breaks_at = sorted(at if isinstance(at, (list, tuple)) else [at])
        self.pretension = model.get("pretension_n", 0.5)  # the tensioner's disc, at rest
        self.drag = model.get("drag_n_s2_m2", 0.3)  # balloon and guides: grows with speed squared
        self.strength = model.get("strength_n", 5.0)
        self.core_mm = model.get("core_mm", 40.0)
        self.yarn_mm = model.get("yarn_mm", 0.3)
        self.width_mm = model.get("traverse_mm", 150.0)
        self.fill = model.get("fill", 0.6)  # share of the package's volume that is yarn
        self.tex = model.get("tex", 30.0)  # grams per kilometre
        self.level = machine_cfg.get("break_level", 1)
        self.pullup = machine_cfg.get("external_pullup", False)
        self.length = 0.0  # metres on the bobbin up to `mark`
        self.mark = 0  # drum position (steps) where the yarn was last tied
        self.broken = False
        self.snaps = 0
        self.overrun = 0  # drum steps turned with a broken yarn
        self.at_snap = 0  # drum position at the last break
        self.tension = self.pretension
        self.max_tension = self.pretension
        self._ev = None
        self._close()

    # --- the switch ---

    def _close(self):
        # Intact yarn holds the switch at the other level than break_level.
        if self.switch is not None:
            self.switch.set_ext(1 - self.level)

    def _open(self):
        if self.switch is None:
            return
        if self.level == 1 and not self.pullup:
            self.switch.set_ext(None)  # open contact: the pin reads its pull-up, or floats low
        else:
            self.switch.set_ext(self.level)

    # --- the yarn ---

    def wound(self):
        """Metres on the bobbin now."""
        if self.broken or self.drum is None:
            return self.length
        return self.length + max(0, self.drum.position() - self.mark) / self.spm

    def _next_break(self):
        for at in self.breaks_at:
            if at > self.length + 1e-9:
                return at
        return None

    def on_block(self, t):
        c = self.drum.cur
        if c is None or not c[4] or c[3] < 0:
            return  # a stalled block or a backward one winds nothing
        v = 1000000.0 / c[1] / self.spm
        self.tension = self.pretension + self.drag * v * v
        if self.tension > self.max_tension:
            self.max_tension = self.tension
        if self.broken:
            return
        k = 0
        if self.tension > self.strength:
            k = 1
        else:
            at = self._next_break()
            if at is not None:
                # pulse k of this block (1-based) is the one that reaches `at`
                k = self.mark + int((at - self.length) * self.spm + 0.5) - c[5]
                if k < 1:
                    k = 1
                elif k > c[0]:
                    k = 0
        if k:
            ev = vclock.at(t + (k - 1) * c[1], self._snap)
            self.drum._evs.append(ev)  # cancelled with the block if the drum stops first

    def _snap(self, _):
        self.length = self.wound()
        self.broken = True
        self.snaps += 1
        self.at_snap = self.drum.position()
        self._open()  # the firmware's interrupt runs here, at this very pulse

    def settle(self):
        """Steps the drum turned since the yarn broke (call after the drum stopped)."""
        if self.broken:
            self.overrun = self.drum.position() - self.at_snap
        return self.overrun

    def tie(self):
        """The yarn tied again: the switch closes, winding goes on from here."""
        self.settle()
        self.broken = False
        self.mark = self.drum.position()
        self._close()

    # --- the bobbin ---

    def diameter_mm(self):
        # The package is a cylinder of width traverse_mm around the core, filled to `fill`.
        vol = self.wound() * 1000.0 * _PI * (self.yarn_mm / 2) ** 2 / self.fill
        return (self.core_mm ** 2 + 4 * vol / (_PI * self.width_mm)) ** 0.5

    def status(self):
        self.settle()
        return {"wound_m": self.wound(), "broken": self.broken, "snaps": self.snaps,
                "overrun": self.overrun, "tension_n": self.tension,
                "max_tension_n": self.max_tension, "diameter_mm": self.diameter_mm(),
                "grams": self.wound() * self.tex / 1000.0, "drum": self.drum.status()}
