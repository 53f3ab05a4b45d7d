"""fab.pid and fab.autotune on plain CPython (both are hal-free): derivative on measurement,
anti-windup, the integral's range, and the relay autotune against a plant whose ultimate gain
and period are known in closed form."""
import math

import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
from fab.autotune import RelayTune
from fab.pid import PID


def test_proportional_output_is_clamped():
    pid = PID(0.1, 0.0, 0.0)
    assert pid.update(230, 225, 0.5) == pytest.approx(0.5)
    assert pid.update(230, 100, 0.5) == 1.0
    assert pid.update(230, 240, 0.5) == 0.0


def test_derivative_acts_on_the_measurement_not_the_setpoint():
    pid = PID(0.0, 0.0, 1.0, lo=-10, hi=10, d_smooth_s=0.5)
    pid.update(100, 50, 0.5)
    pid.update(200, 50, 0.5)  # a setpoint step: no derivative kick
    assert pid.d == 0.0
    out = pid.update(200, 51, 0.5)  # the measurement rises 2 C/s: the derivative brakes
    assert pid.d == pytest.approx(-2.0) and out == pytest.approx(-2.0)


def test_derivative_is_smoothed():
    pid = PID(0.0, 0.0, 1.0, lo=-10, hi=10, d_smooth_s=2.0)
    pid.update(0, 50, 0.5)
    pid.update(0, 50.25, 0.5)  # one quantisation step of a thermocouple
    assert pid.d == pytest.approx(-0.125)  # a quarter of the raw -0.5 C/s


def test_integral_does_not_wind_up_while_saturated():
    pid = PID(0.01, 0.01, 0.0)
    for _ in range(1000):  # 500 s far below the setpoint: output pinned at 1
        assert pid.update(230, 20, 0.5) == 1.0
    assert pid.i == 0.0  # conditional integration: nothing stored while saturated
    assert pid.update(230, 235, 0.5) == 0.0  # so it lets go as soon as the error turns


def test_integral_stays_within_the_output_limits():
    pid = PID(0.0, 0.1, 0.0)
    for _ in range(100):
        pid.update(230, 229, 0.5)
    assert 0.9 < pid.i <= 1.0 and pid.out == pid.i


def test_integral_only_moves_within_its_range():
    pid = PID(0.001, 0.001, 0.0, i_range=10.0)
    pid.update(230, 150, 1.0)
    assert pid.i == 0.0
    pid.update(230, 225, 1.0)
    assert pid.i == pytest.approx(0.005)
    pid.reset(0.3)
    assert pid.i == 0.3 and pid.prev is None


class Fopdt:
    """A first-order plant with dead time: tau * dy/dt = gain * u(t - dead) - (y - ambient)."""

    def __init__(self, gain=400.0, tau=300.0, dead=12.0, ambient=20.0, dt=0.5):
        self.gain, self.tau, self.dead, self.ambient, self.dt = gain, tau, dead, ambient, dt
        self.y = ambient
        self.queue = [0.0] * int(round(dead / dt))

    def step(self, u):
        self.queue.append(u)
        late = self.queue.pop(0)
        self.y += self.dt / self.tau * (self.gain * late - (self.y - self.ambient))
        return self.y

    def ultimate(self):
        """(Ku, Tu) in closed form: the phase -atan(w tau) - w dead reaches -pi at w."""
        lo, hi = 1e-6, math.pi / self.dead
        for _ in range(100):
            w = (lo + hi) / 2
            if math.atan(w * self.tau) + w * self.dead < math.pi:
                lo = w
            else:
                hi = w
        return math.sqrt(1 + (w * self.tau) ** 2) / self.gain, 2 * math.pi / w


def tune(plant, sp, **kw):
    t = RelayTune(sp, **kw)
    y = plant.y
    for i in range(20000):
        y = plant.step(t.update(y, i * plant.dt))
        if t.done or t.error:
            break
    return t


@pytest.mark.parametrize("tau, dead", [(300.0, 12.0), (150.0, 30.0), (60.0, 30.0)])
def test_relay_autotune_finds_the_ultimate_gain_and_period(tau, dead):
    plant = Fopdt(tau=tau, dead=dead)
    ku, tu = plant.ultimate()
    t = tune(plant, 220.0, hyst=0.5, cycles=4)
    assert t.done and not t.error
    # The describing function takes the relay's wave for a sine; a first-order plant makes it
    # more of a triangle, so Ku reads 15-25 % low (the gentle side); the period is close.
    assert 0.7 * ku < t.ku < 1.0 * ku
    assert t.tu == pytest.approx(tu, rel=0.1)
    # Gains by the "some overshoot" rule; the mean duty of the cycle is what holds 220 C.
    assert t.kp == pytest.approx(0.33 * t.ku)
    assert t.ki == pytest.approx(t.kp / (0.5 * t.tu))
    assert t.kd == pytest.approx(t.kp * 0.33 * t.tu)
    assert t.bias == pytest.approx((220 - 20) / 400, abs=0.05)


def test_tuned_gains_hold_the_plant():
    plant = Fopdt()
    t = tune(plant, 220.0, hyst=0.5, cycles=4)
    pid = PID(t.kp, t.ki, t.kd, i_range=10.0)
    pid.reset(t.bias)
    ys = [plant.step(pid.update(220.0, plant.y, plant.dt)) for _ in range(4000)]
    assert max(abs(y - 220) for y in ys[-1000:]) < 0.5


def test_autotune_gives_up_on_an_oscillation_that_does_not_settle():
    t = RelayTune(100.0, hyst=1.0, cycles=3, max_cycles=5)
    # A plant that swings wider every cycle.
    y, amp, heating, tt = 100.0, 3.0, True, 0.0
    while not (t.done or t.error) and tt < 10000:
        for k in range(20):
            y = 100 + (amp if heating else -amp) * math.sin(math.pi * k / 20)
            t.update(y, tt)
            tt += 1
        heating = not heating
        amp *= 1.5
    assert t.error.startswith("the oscillation did not settle in 5 cycles")
    assert t.update(100.0, tt) == 0.0  # off, for good
