"""Trapezoidal profiles: exact step totals, bounded rate changes, the right duration."""
import pytest

from microfab_sim.world import World


@pytest.fixture(scope="module")
def Profile(tmp_path_factory):
    from microfab_sim.board import install_firmware
    import microfab_boards

    root = tmp_path_factory.mktemp("flash")
    install_firmware(root, microfab_boards.load("pico"), {"machine": "axis"})
    return World(root).get("fab.planner").Profile


def blocks(Profile, steps, v, a):
    p = Profile()
    p.start(steps, v, a)
    out = []
    while p.next():
        out.append((p.count, p.interval))
    return out


@pytest.mark.parametrize("steps", [1, 2, 3, 10, 333, 16000, 1000003])
def test_every_step_is_planned_once(Profile, steps):
    assert sum(c for c, _ in blocks(Profile, steps, 4000.0, 16000.0)) == steps


def test_long_move_takes_distance_over_speed_plus_ramp_time(Profile):
    v, a, n = 4000.0, 16000.0, 16000
    t = sum(c * i for c, i in blocks(Profile, n, v, a)) / 1e6
    assert t == pytest.approx(n / v + v / a, rel=0.01)


def test_rate_never_jumps_more_than_one_ramp_slice(Profile):
    v, a = 10000.0, 20000.0
    rates = [1e6 / i for _, i in blocks(Profile, 100000, v, a)]
    assert max(rates) == pytest.approx(v, rel=0.01)
    jumps = [abs(r2 - r1) for r1, r2 in zip(rates, rates[1:])]
    assert max(jumps) < a * 0.025  # 20 ms slices, with rounding
    assert rates[0] < a * 0.025 and rates[-1] < a * 0.025  # starts and ends near rest
