"""fab.heater on virtual pins: the SSR time-proportioned in its window, the over-temperature
cutoff through the contactor, the heating checks, and energy as power x on-time."""
import pytest

import microfab_boards
from microfab_sim.world import World

SSR, CONTACTOR = 6, 7


@pytest.fixture
def rig(flash):
    """(heater, clock, edges): a Heater on pins 6/7, 2 s window, 600 W, max 300 C."""
    w = World(flash)
    clock = w.modules["vclock"]
    clock.reset()
    w.modules["vasyncio"].reset()
    board = w.modules["vboard"].Board(microfab_boards.load("pico"), {"machine": "none"}, seed=1)
    edges = []
    board.pin(SSR).watchers.append(lambda level: edges.append((clock.now // 1000, level)))
    h = w.get("fab.heater").Heater(SSR, CONTACTOR, 2000, 600.0, 300.0)
    return h, clock, edges


def run(h, clock, until_ms):
    """The control task's part: service the SSR at each edge it asks for."""
    while clock.now // 1000 < until_ms:
        wait = h.service(clock.ticks_ms())
        clock.run_to(min(until_ms, clock.now // 1000 + wait) * 1000)


def test_ssr_on_for_duty_times_window(rig):
    h, clock, edges = rig
    h.arm()
    h.set_duty(0.25, clock.ticks_ms())
    run(h, clock, 8000)
    assert edges == [(0, 1), (500, 0), (2000, 1), (2500, 0), (4000, 1), (4500, 0), (6000, 1),
                     (6500, 0)]
    assert h.wh() == pytest.approx(600 * 2.0 / 3600)  # 4 x 0.5 s at 600 W


def test_a_lower_duty_cuts_at_once_a_higher_one_waits_for_the_next_window(rig):
    h, clock, edges = rig
    h.arm()
    h.set_duty(0.5, 0)
    run(h, clock, 300)
    h.set_duty(0.1, clock.ticks_ms())  # 200 ms of on-time: already past, off now
    assert edges[-1] == (300, 0)
    run(h, clock, 1200)
    h.set_duty(0.9, clock.ticks_ms())  # this window had its pulse: nothing until 2000
    run(h, clock, 2000)
    assert edges == [(0, 1), (300, 0)]
    run(h, clock, 4000)
    assert edges[2:] == [(2000, 1), (3800, 0)]


def test_no_heat_without_the_contactor(rig):
    h, clock, edges = rig
    h.set_duty(1.0, 0)  # never armed
    run(h, clock, 5000)
    assert edges == [] and h.wh() == 0


def test_over_temperature_opens_the_contactor_and_stays_cut(rig):
    h, clock, edges = rig
    h.arm()
    h.set_duty(1.0, 0)
    assert not h.check(299.9)
    assert h.check(300.0) and not h.check(305.0)  # trips once
    assert h.ssr.value() == 0 and h.contactor.value() == 0
    assert h.tripped == "over-temperature: 300.0 C reached max_temp 300.0 C"
    with pytest.raises(ValueError, match="heater cut off: over-temperature"):
        h.arm()
    h.reset_cutoff()
    h.arm()
    assert h.armed()


def test_heating_checks(rig):
    h, clock, edges = rig
    h.arm()
    h.set_duty(1.0, 0)
    assert h.watch(0, 100.0, 60) == ""
    assert h.watch(30, 101.0, 60) == ""
    why = h.watch(60, 101.5, 60)  # a minute at full power, 1.5 C: a thermocouple not in the drum
    assert why.startswith("heating check: 60 s at full power raised the drum 1.5 C only")
    assert h.watch(120, 130.0, 60) == ""  # a healthy minute
    h.set_duty(0.0, 0)
    assert h.watch(130, 230.0, 60) == ""
    why = h.watch(190, 262.0, 60)  # rising 32 C with the SSR off
    assert "with the SSR off; the SSR has probably failed shorted" in why
    h.set_duty(0.5, 0)
    assert h.watch(300, 262.0, 60) == "" and h.watch(900, 300.0, 60) == ""  # only at extremes
