"""Motion on the simulated axis: homing, soft limits, jog, e-stop, lost steps."""
import pytest

SPM = 80.0


def test_home_finds_the_endstop_wherever_the_carriage_starts(make_board):
    for seed in (1, 2, 3):
        b = make_board(seed=seed)
        start = b.axis.position()
        r = b.send("home")
        assert r["ok"] and r["pos"] == 0.0
        assert b.axis.position() == 0  # the true carriage is at the switch
        assert b.axis.lost == 0
        assert start != 0


def test_move_lands_where_the_firmware_says(homed):
    r = homed.send("move", to=123.4)
    assert r["ok"] and r["pos"] == pytest.approx(123.4, abs=1 / SPM)
    assert homed.axis.position() == round(123.4 * SPM)
    st = homed.send("status")
    assert st["homed"] and st["motion"] == "idle" and st["state"] == "ready" and st["moves"] == 1


def test_moves_are_refused_before_homing_and_outside_soft_limits(board):
    r = board.send("move", to=10.0)
    assert not r["ok"] and "not homed" in r["error"]
    assert board.axis.pulses == 0
    board.send("home")
    for to in (-1.0, 200.5):
        r = board.send("move", to=to)
        assert not r["ok"] and "outside the soft limits 0.0..200.0 mm" in r["error"]
    r = board.send("move", to=100.0, speed=500.0)
    assert not r["ok"] and "above" not in r["error"] and "max_speed 50.0" in r["error"]


def test_jog_before_homing_is_limited(board):
    start = board.axis.position()
    assert board.send("jog", by=5.0)["ok"]
    assert board.axis.position() == start + 5 * SPM
    r = board.send("jog", by=50.0)
    assert not r["ok"] and "at most 10.0 mm" in r["error"]


def test_estop_stops_pulses_at_once_and_requires_homing(homed):
    rid = homed.request("move", {"to": 200.0})
    homed.advance(1.0)
    assert homed.axis.rate > 0
    t_stop = homed.now
    homed.write(b'{"id": "e", "cmd": "stop"}\n')
    homed.advance(0.001)
    pulses = homed.axis.pulses
    at = homed.axis.position()
    homed.advance(2.0)
    assert homed.axis.pulses == pulses and homed.axis.position() == at  # not one more step
    assert homed.axis.rate == 0
    assert homed.replies["e"]["stopped"] == "moving" and homed.now - t_stop < 3
    assert not homed.replies[rid]["ok"]
    st = homed.send("status")
    assert st["motion"] == "estop" and not st["homed"] and not st["enabled"]
    assert not homed.send("move", to=10.0)["ok"]
    assert homed.send("home")["ok"] and homed.send("move", to=10.0)["ok"]


def test_endstop_hit_during_a_move_stops_the_axis(homed):
    homed.send("move", to=100.0)
    homed.axis.pos -= int(20 * SPM)  # the belt slipped 20 mm: the switch comes early
    r = homed.send("move", to=5.0)
    assert not r["ok"] and "endstop hit during a move" in r["error"]
    assert homed.axis.position() >= -1  # stopped at the switch, not crashed into the frame


def test_broken_endstop_wire_fails_homing_with_a_clear_message(make_board):
    b = make_board(model={"endstop_broken": True})
    r = b.send("home")
    assert not r["ok"] and "endstop on pin 5 not reached within" in r["error"]
    assert b.axis.position() == b.axis.lo  # it ran into the frame stop, then gave up


def test_too_much_acceleration_loses_steps_in_the_model(make_board):
    b = make_board(machine={"machine": "axis", "accel": 50000.0, "max_speed": 200.0})
    b.send("home")
    r = b.send("move", to=150.0, speed=200.0)
    assert r["ok"]  # the firmware cannot know ...
    assert b.axis.lost > 0 and b.axis.stalls > 0  # ... but the motor stalled
    assert b.axis.position() != round(150 * SPM)


def test_job_runs_every_move_and_counts(homed):
    r = homed.send("job", moves=[[10, 50], [190, 40]], repeat=3, timeout=120)
    assert r["ok"] and r["moves"] == 6 and r["pos"] == 190.0
    st = homed.send("status")
    assert st["jobs"] == 1 and st["job_moves"] == 6
    assert st["travel_mm"] == pytest.approx(10 + 5 * 180)  # from 0: up to 10, then 5 traverses
    assert homed.axis.lost == 0


def test_bad_job_is_refused_before_the_first_step(homed):
    pulses = homed.axis.pulses
    r = homed.send("job", moves=[[10, 50], [500, 50]])
    assert not r["ok"] and "move 1 of the job goes to 500" in r["error"]
    r = homed.send("job", moves=[[10, "fast"]])
    assert not r["ok"] and "must be [position_mm, speed_mm_s]" in r["error"]
    assert homed.axis.pulses == pulses
