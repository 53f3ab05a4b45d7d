"""Calibration flows find the simulated board's hidden true values."""
import pytest

from microfab.calibrate import CalibrationError, SimTarget, endstop, steps_per_mm


def test_steps_per_mm_finds_the_true_value(make_board):
    b = make_board(model={"true_steps_per_mm": 78.8})  # the belt pulley is not what the config says
    said = []

    def ask(question):
        if "How far" in question:
            # the maker's ruler: what the carriage really moved, to a tenth of a millimetre
            moved_steps = 100 * 80.0
            return "%.1f" % (moved_steps / 78.8)
        return ""

    new = steps_per_mm(SimTarget(b), ask, said.append)
    assert new == pytest.approx(78.8, rel=0.002)
    assert b.send("config")["machine"]["steps_per_mm"] == new  # on the board after a restart
    b.send("home")
    b.send("move", to=150.0)
    assert b.axis.position() / 78.8 == pytest.approx(150.0, abs=0.3)  # now true to the ruler
    assert any("steps_per_mm: 80.0 ->" in s for s in said)


def test_steps_per_mm_refuses_nonsense(make_board):
    b = make_board()
    with pytest.raises(CalibrationError, match="not a number"):
        steps_per_mm(SimTarget(b), lambda q: "about ten", lambda s: None)
    with pytest.raises(CalibrationError, match="off by more than 2x"):
        steps_per_mm(SimTarget(b), lambda q: "7", lambda s: None)


def test_endstop_check_catches_a_broken_wire(make_board):
    b = make_board(model={"endstop_broken": True})
    with pytest.raises(CalibrationError, match="did not read pressed"):
        endstop(SimTarget(b), lambda q: "", lambda s: None)


def test_endstop_check_passes_when_the_maker_presses_it(make_board):
    b = make_board()
    pin = b.hw.role("endstop")

    def ask(question):
        if "Hold" in question:
            pin.set_ext(0)  # the maker's finger
        elif "Release" in question:
            pin.set_ext(1)
        return ""

    assert endstop(SimTarget(b), ask, lambda s: None)
