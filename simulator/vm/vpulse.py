# A pulse source on a pin: a hall sensor under a rotor's magnet, a reed-switch anemometer. It
# pulls the pin low for a moment once per pulse at the current frequency, which the model
# behind it may change at any time.
import vclock


class PulseSource:
    def __init__(self, pin, width_us=500):
        self.pin = pin
        self.width = width_us
        self.hz = 0.0
        self.count = 0
        self._ev = None
        pin.set_ext(1)

    def set_hz(self, hz):
        was = self.hz
        self.hz = hz
        if hz > 0 and was <= 0:
            self._ev = vclock.at(vclock.now + int(1000000 / hz), self._fall)
        elif hz <= 0:
            vclock.cancel(self._ev)
            self._ev = None

    def _fall(self, _):
        self.count += 1
        self.pin.set_ext(0)
        vclock.at(vclock.now + self.width, self._rise)
        if self.hz > 0:
            self._ev = vclock.at(vclock.now + max(self.width * 2, int(1000000 / self.hz)), self._fall)

    def _rise(self, _):
        self.pin.set_ext(1)
