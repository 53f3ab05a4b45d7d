# A loom shaft lifted by its solenoid: it is up rise_ms after the coil is energised and down
# fall_ms after it is released (the plunger's travel, the shaft's weight). A seized plunger
# (stick()) keeps the shaft where it is, whatever the coil does: the firmware cannot see that,
# a test can.
import vclock


class Shaft:
    def __init__(self, n, rise_ms=60, fall_ms=80):
        self.n = n  # 1-based, as the weaver counts
        self.rise_us = int(rise_ms * 1000)
        self.fall_us = int(fall_ms * 1000)
        self.coil = 0  # drive level the solenoid sees
        self.up = False  # the shaft is fully up
        self.stuck = False
        self.lifts = 0  # times it arrived at the top
        self.energised_us = 0  # total coil-on time
        self._on_t = 0
        self._ev = None
        self.watchers = []  # fn(shaft) when it arrives up or down

    def drive(self, level):
        level = 1 if level else 0
        if level == self.coil:
            return
        self.coil = level
        if level:
            self._on_t = vclock.now
        else:
            self.energised_us += vclock.now - self._on_t
        if not self.stuck:
            self._move()

    def _move(self):
        vclock.cancel(self._ev)
        self._ev = None
        if self.coil and not self.up:
            self._ev = vclock.at(vclock.now + self.rise_us, self._arrive, True)
        elif not self.coil and self.up:
            self._ev = vclock.at(vclock.now + self.fall_us, self._arrive, False)

    def _arrive(self, up):
        self._ev = None
        self.up = up
        if up:
            self.lifts += 1
        for w in self.watchers:
            w(self)

    def stick(self, up=None):
        """The plunger seizes: the shaft stays up (or down, or where it is) from now on."""
        self.stuck = True
        vclock.cancel(self._ev)
        self._ev = None
        if up is not None:
            self.up = bool(up)

    def unstick(self):
        self.stuck = False
        self._move()

    def status(self):
        return {"up": self.up, "coil": self.coil, "stuck": self.stuck, "lifts": self.lifts}
