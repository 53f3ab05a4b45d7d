# Step/dir stepper drivers: A4988, DRV8825 and TMC2209 (in standalone step/dir mode). The chips
# differ only in data, so they are rows of a table rather than classes.
from fab import hal

# chip: microstep settings its MS pins can select
MICROSTEPS = {
    "a4988": (1, 2, 4, 8, 16),  # A4988 datasheet, table 1
    "drv8825": (1, 2, 4, 8, 16, 32),  # DRV8825 datasheet, 7.3.5
    "tmc2209": (8, 16, 32, 64),  # TMC2209 datasheet, MS1/MS2 in standalone mode
}
# All three take ENABLE active low, so the de-energised (safe) level of that pin is 1.
_EN_OFF = 1


class StepDir:
    def __init__(self, chip, step, dir, enable, index, backend, invert_dir=False):
        self.chip = chip
        self.gen = hal.stepgen(backend, step, index)
        self._dir = hal.out(dir, 0)
        self._en = hal.out(enable, _EN_OFF)
        self._invert = invert_dir
        self._sign = 1
        self._base = 0

    def enable(self, on):
        self._en.value(0 if on else _EN_OFF)

    def enabled(self):
        return self._en.value() != _EN_OFF

    def set_dir(self, sign):
        # Only between moves: a queued block would otherwise run the wrong way.
        if sign != self._sign:
            self._base = self.position()
            self.gen.zero()
            self._sign = sign
        self._dir.value(1 if (sign > 0) != self._invert else 0)

    def position(self):
        return self._base + self._sign * self.gen.count()

    def set_position(self, steps):
        self._base = steps
        self.gen.zero()

    def stop(self):
        self.gen.stop()
        self._base = self.position()
        self.gen.zero()
