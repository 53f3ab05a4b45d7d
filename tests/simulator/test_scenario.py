"""Scenario files (microfab_sim.scenario) and the developer's board under them
(microfab_sim.devboard): the shipped examples pass, expectations report what was seen and when,
the fault handles act on the models, and a bad file gets an error naming the line and the key."""
import subprocess
import sys
from pathlib import Path

import pytest

from microfab.device import BoardError
from microfab_sim import scenario
from microfab_sim.devboard import CommandError, DevBoard, NoHandle

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def checks(res):
    """{text: (ok, detail)} of a Result."""
    return {text: (ok, detail) for ok, text, detail in res.checks}


def error_of(tmp_path, text):
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.run(write(tmp_path, text))
    return str(e.value)


HOMING = """
machine = "axis"
seed = 1
expect = [%s]

[[command]]
at = "0s"
send = "home"
"""


# --- the shipped examples ---


def test_three_examples_are_shipped():
    assert [p.name for p in SHIPPED] == ["axis_home_job.toml", "polyfloss_sensor_break.toml",
                                         "windrig_windy_day.toml"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_pass(path):
    res = scenario.run(path)
    assert res.passed, res.report()
    assert sum(1 for ok, _, _ in res.checks if ok) >= 7


def test_sensor_break_example_reports_when_the_heater_went_off():
    res = scenario.run(ROOT / "scenarios" / "polyfloss_sensor_break.toml")
    c = checks(res)
    # The control task runs every 500 ms: the heater is off at its next tick after the break.
    assert c['heater.state == "off" within 1s of sensor_break'] == (
        True, '"off" at 90.5 s (0.5 s after sensor_break)')
    assert c["heater.state == \"off\" from 92s to 5min"] == (True, "held at all 202 checks")
    assert c["command heat at 95 s"][0] is None  # expect_ok = false: shown, not judged
    assert "refused at 95 s: fault latched: thermocouple open" in c["command heat at 95 s"][1]
    report = res.report()
    assert "10 passed, 0 failed" in report and "last 12 exchanges" not in report


# --- expectations ---


def test_a_failed_expectation_shows_the_value_seen_and_when(tmp_path):
    res = scenario.run(write(tmp_path, HOMING % '"status.homed == true at 5s", '
                                                 '"status.pos == 0.0 at 20s"'))
    assert not res.passed
    c = checks(res)
    assert c["status.homed == true at 5s"] == (False, "false at 5 s")  # homing takes 7.8 s
    assert c["status.pos == 0.0 at 20s"] == (True, "0.0 at 20 s")
    report = res.report()
    assert "  FAIL  status.homed == true at 5s: false at 5 s" in report
    assert "2 passed, 1 failed" in report  # the command's reply is a check too
    # and what the board did, for whoever has to find out why
    assert '--- pico, axis, seed 1: last 12 exchanges\n     0.000 s  -> {"id": 1, "cmd": "home"}' \
        in report
    assert "--- pico, axis, seed 1: model state at 20.000 s\naxis: {" in report


def test_windows_within_by_and_from(tmp_path):
    res = scenario.run(write(tmp_path, HOMING % (
        '"status.homed == true within 10s of home", "status.homed == true within 2s of home", '
        '"status.motion == \\"homing\\" by 1s", "status.faults == 0 from 0s to 30s", '
        '"status.homed == false from 0s to 30s"')))
    c = checks(res)
    ok, detail = c["status.homed == true within 10s of home"]
    assert ok and detail.startswith("true at 7.8") and detail.endswith("after home)")
    assert c["status.homed == true within 2s of home"] == (
        False, "not met from 0 s to 2 s; last seen false at 2 s")
    ok, detail = c['status.motion == "homing" by 1s']
    assert ok and detail.startswith('"homing" at 0.0')
    assert c["status.faults == 0 from 0s to 30s"] == (True, "held at all 202 checks")
    ok, detail = c["status.homed == false from 0s to 30s"]
    # the first check (every 150 ms: 30 s / 200) that saw it change
    assert not ok and detail.startswith("true at ") and 7.8 <= float(detail.split()[2]) < 7.96


def test_a_subject_may_be_compared_with_another(tmp_path):
    res = scenario.run(write(tmp_path, HOMING % (
        '"status.pos == reply.home.pos at 20s", "status.uptime_s == board.now at 20s", '
        '"status.uptime_s == reply.home.pos at 20s"')))
    c = checks(res)
    assert c["status.pos == reply.home.pos at 20s"] == (True, "0.0 at 20 s")
    assert c["status.uptime_s == board.now at 20s"] == (True, "20.0 at 20 s")
    # when two subjects differ, the report shows both
    assert c["status.uptime_s == reply.home.pos at 20s"] == (False, "20.0 against 0.0 at 20 s")


def test_an_unknown_field_is_a_failure_that_lists_the_fields(tmp_path):
    res = scenario.run(write(tmp_path, HOMING % '"status.homd == true at 20s"'))
    ok, detail = checks(res)["status.homd == true at 20s"]
    assert not ok and detail.startswith('"error: status has no field \'homd\'; it has: id, ok, ')
    assert "homed" in detail


# --- fault handles, through scenarios ---


def test_a_power_cut_restarts_the_firmware_and_keeps_the_carriage(tmp_path):
    res = scenario.run(write(tmp_path, """
machine = "axis"
seed = 1
expect = ["status.homed == true at 19s", "status.homed == false at 30s", "events.boot == 2 at 30s",
          "power.cuts == 1 at 30s", "axis.pos == 0 at 30s"]

[[command]]
at = "0s"
send = "home"

[[fault]]
at = "20s"
do = "power.cut(2)"
"""))
    assert res.passed, res.report()


def test_loom_solenoid_and_knitter_carriage_handles(tmp_path):
    loom = scenario.run(write(tmp_path, """
machine = "loom"
expect = ["loom.raised == [] at 1s", "loom.raised == [3] at 3s", "solenoid(3).stuck == true at 3s"]

[config]
shafts = 8
shaft_pins = [10, 11, 12, 13, 14, 15, 22, 26]
pins = { pedal = 6 }

[[fault]]
at = "2s"
do = "solenoid(3).stick(true)"
""", "loom.toml"))
    assert loom.passed, loom.report()
    knit = scenario.run(write(tmp_path, """
machine = "knitter"
expect = ["carriage.passes == 2 at 10s", "status.sensor_passes == 4 at 10s"]

[config]
pins = { enc_a = 10, enc_b = 11, enc_c = 12, eol_left = 26, eol_right = 27 }

[[fault]]
at = "1s"
do = "carriage.push(2)"
""", "knit.toml"))
    assert knit.passed, knit.report()


# --- the developer's board ---


def test_devboard_exec_runs_in_the_boards_namespace():
    b = DevBoard(seed=1)
    try:
        assert b.exec("x = 6") == ""
        assert b.exec("print(x * 7)") == "42\n"  # the globals last, as at the REPL
        assert b.exec("import sys\nprint(sys.platform, 'fab.runtime' in sys.modules)") == \
            "rp2 True\n"
        with pytest.raises(BoardError) as e:
            b.exec("def f():\n    return 1 / 0\nprint('before')\nf()")
        assert str(e.value) == "the board raised ZeroDivisionError: division by zero"
        assert e.value.trace.startswith("before\nTraceback (most recent call last):\n"
                                        '  File "<stdin>", line 4, in <module>\n')
        assert b.boots == 1
        b.exec("import machine\nmachine.reset()")
        assert b.boots == 2 and b.lines("boot")[-1]["reset_cause"] == "hard"
        assert b.call("hello")["state"] == "ready"
        with pytest.raises(CommandError) as e:
            b.call("move", to=10.0)
        assert "move refused: " in str(e.value) and e.value.reply["ok"] is False
    finally:
        b.close()


def test_a_handle_the_machine_lacks_says_which_it_has():
    b = DevBoard()
    try:
        with pytest.raises(NoHandle) as e:
            b.heater.break_sensor()
        assert str(e.value) == ("the axis machine has no heater (that is the polyfloss's); its "
                                "handles: belt, power")
    finally:
        b.close()


# --- bad files ---


@pytest.mark.parametrize("text, message", [
    ('machine = "axis"\nexpect = [\n  "status.homed == true at 5s"\n',
     "not valid TOML: "),
    ('machine = "axis"\nspeed = 3\n',
     "s.toml, line 2 (key 'speed'): unknown key; a scenario has board, calib, command, config, "
     "duration, expect, fault, machine, model, name, poll, seed"),
    ('machine = "axis"\n\n[[fault]]\nat = 1\ndo = "power.cut()"\n'
     'expect = ["power.cuts == 1 at 2s"]\n',
     "s.toml, line 6 ([[fault]] #1, key 'expect'): unknown key; a fault has at, do, name (TOML "
     "puts every key after a [[fault]] line into that fault: write expect = ... before the "
     "first [table])"),
    ('machine = "axis"\n\n[[command]]\nat = "1s"\n\n[[command]]\nat = "soon"\nsend = "home"\n',
     "s.toml, line 3 ([[command]] #1): missing key 'send'"),
    ('machine = "axis"\n\n[[command]]\nat = "1s"\nsend = "home"\n\n[[command]]\nat = "soon"\n'
     'send = "home"\n',
     "s.toml, line 8 ([[command]] #2, key 'at'): 'soon' is not a duration: expected seconds "
     "(90) or a number with ms, s, min, h or d, like \"90s\" or \"2h\""),
    ('machine = "axis"\nexpect = ["status.homed == true within 1s of hoem"]\n\n[[command]]\n'
     'at = 0\nsend = "home"\n',
     "s.toml, line 2 (expect 'status.homed == true within 1s of hoem'): no command or fault is "
     "named 'hoem'; names: home"),
    ('machine = "axis"\nexpect = ["status.homed = true at 5s"]\n',
     "s.toml, line 2 (expect 'status.homed = true at 5s'): condition 'status.homed = true': not "
     "an expression; expected SUBJECT OP VALUE, like telemetry.rows >= 40 or heater.state == "
     "\"off\", with OP one of == != < <= > >="),
    ('machine = "axis"\nexpect = ["status.homed == true"]\n',
     "s.toml, line 2 (expect 'status.homed == true'): no time given: expected CONDITION at "
     "TIME, by TIME, within DURATION of EVENT, or from TIME to TIME"),
    ('machine = "axis"\nexpect = ["heater.state == \\"off\\" at 5s"]\n',
     "(expect 'heater.state == \"off\" at 5s'): the axis machine has no heater (that is the "
     "polyfloss's); its handles: belt, power; models: axis"),
    ('machine = "axis"\n\n[[fault]]\nat = "1s"\ndo = "import os"\n',
     "s.toml, line 5 ([[fault]] #1, key 'do'): 'import os': expected a call of a handle's "
     "method with plain values"),
    ('machine = "axis"\n\n[[fault]]\nat = "1s"\ndo = "power._b.reset()"\n',
     "s.toml, line 5 ([[fault]] #1, key 'do'): 'power._b.reset()': expected a call"),
    ('machine = "axis"\nduration = "10s"\nexpect = ["status.homed == true at 30s"]\n',
     "s.toml, line 2 (key 'duration'): 10 s is shorter than the last time the file names (30 s)"),
    ('machine = "axis"\n\n[config]\nmax_speed = -1\n',
     "s.toml, line 4 (config): the firmware refused the machine config: machine config: "
     "'max_speed' is -1, expected a number from 0.1 to 2000.0 mm/s"),
    ('board = "pico2"\n', "cannot build the board: unknown board 'pico2'; expected one of: "),
    ('machine = "axis"\nseed = "one"\n',
     "s.toml, line 2 (key 'seed'): 'one' is not a whole number"),
], ids=["toml", "unknown-key", "expect-after-table", "missing-send", "duration", "event",
        "condition", "no-time", "handle", "do", "underscore", "duration-short", "config",
        "board", "seed"])
def test_bad_files_name_the_line_and_what_was_expected(tmp_path, text, message):
    assert message in error_of(tmp_path, text)


def test_a_toml_error_gives_its_line(tmp_path):
    msg = error_of(tmp_path, 'machine = "axis"\nseed = \n')
    assert msg.startswith(str(tmp_path / "s.toml") + ": not valid TOML: ") and "line 2" in msg


# --- the command line ---


def test_main_exit_codes(tmp_path, capsys):
    good = write(tmp_path, HOMING % '"status.homed == true at 20s"', "good.toml")
    bad = write(tmp_path, HOMING % '"status.homed == true at 5s"', "bad.toml")
    broken = write(tmp_path, 'machine = "axis"\nspeed = 3\n', "broken.toml")
    assert scenario.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "PASS  status.homed == true at 20s: true at 20 s" in out and "---" not in out
    assert scenario.main([str(good), str(bad)]) == 1
    assert "FAIL  status.homed == true at 5s: false at 5 s" in capsys.readouterr().out
    assert scenario.main([str(broken), str(good)]) == 2
    assert "error: " in capsys.readouterr().err


def test_python_dash_m_runs_it(tmp_path):
    bad = write(tmp_path, HOMING % '"status.homed == true at 5s"')
    p = subprocess.run([sys.executable, "-m", "microfab_sim.scenario", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "FAIL  status.homed == true at 5s: false at 5 s" in p.stdout
