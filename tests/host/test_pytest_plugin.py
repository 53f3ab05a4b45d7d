"""The developer's pytest plugin, from the outside: test files as a maker would write them, run
by pytester on simulated boards, on a board behind a serial port, and with a port that is not
there; scenario files collected as tests; failure reports that show what the board did."""
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

PINS = {"heater": 6, "contactor": 7, "drum": 10, "hall": 11, "lid": 12, "hx_clk": 13, "hx_data": 14}


def plugin_args():
    # Once the `microfab` pytest11 entry point is installed pytest loads the plugin by itself,
    # and naming it again with -p would register it twice.
    if any(ep.value.startswith("microfab.pytest_plugin") for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "microfab.pytest_plugin"]


def run(pytester, *args):
    return pytester.runpytest(*plugin_args(), "-rs", *args)


MAKER_TESTS = """
import pytest

PINS = %r


def test_homes_and_reports(sim_board):
    b = sim_board(seed=1)
    assert b.call("home")["pos"] == 0.0
    b.advance(30)
    assert [t["seq"] for t in b.telemetry("status")] == [1, 3, 4]  # 2: the production total
    assert b.exec("import os\\nprint(sorted(os.listdir('config')))").strip() == \\
        "['board.json', 'machine.json']"


@pytest.mark.sim_only
def test_broken_thermocouple_cuts_the_heater(sim_board):
    b = sim_board(machine="polyfloss", config={"pins": PINS}, model={"start_c": 215.0})
    b.call("heat")
    b.advance(20)
    assert b.heater.state == "on"
    b.heater.break_sensor()
    b.advance(1)
    assert b.heater.state == "off" and b.call("status")["heater"] == "fault"


@pytest.mark.hil
def test_only_on_the_bench(sim_board):
    assert sim_board().call("hello")["machine"] == "axis"
""" % (PINS,)


def test_tests_written_with_sim_board_run_on_the_simulator_and_failures_show_the_board(pytester):
    pytester.makepyfile(test_maker=MAKER_TESTS, test_fail="""
def test_moves_too_far(sim_board):
    b = sim_board(seed=1)
    b.call("home")
    b.exec("import micropython\\nmicropython.schedule(lambda a: print('hello from the board'), 0)")
    b.advance(12)
    b.call("move", to=500.0)
""")
    r = run(pytester)
    r.assert_outcomes(passed=2, skipped=1, failed=1)
    out = r.stdout.str()
    assert "CommandError: move refused: target 500.0 mm is outside the soft limits" in out
    r.stdout.fnmatch_lines([
        "*microfab pico, axis, seed 1: last 12 exchanges*",
        "     0.000 s  -> {\"id\": 1, \"cmd\": \"home\"}",
        "     7.804 s  <- {\"id\": 1, \"ok\": true, \"pos\": 0.0}",
        "    19.804 s  -> {\"id\": 2, \"cmd\": \"move\", \"args\": {\"to\": 500.0}}",
        "    19.804 s  <- {\"id\": 2, \"ok\": false, \"error\": \"target 500.0 mm is outside*",
        "*microfab pico, axis, seed 1: console and events*",
        "     0.000 s  event {\"event\": \"boot\"*",
        "     7.804 s  hello from the board",
        "*microfab pico, axis, seed 1: model state at 19.804 s*",
        "axis: {\"pos\": 0, \"lost\": 0, *",
        "last telemetry: {*\"homed\": true*",
        "*SKIPPED*hil: needs a real board: run with --port PORT or --board NAME*",
    ])
    assert out.count("last 12 exchanges") == 1  # the passing tests add nothing


def test_with_a_port_sim_only_tests_are_skipped_and_the_rest_go_to_the_port(pytester):
    pytester.makepyfile(test_maker=MAKER_TESTS)
    r = run(pytester, "--port", "/dev/ttyMICROFAB-NOT-THERE")
    # sim_only: skipped, with the reason; the others try the port and say it is not there.
    r.assert_outcomes(failed=2, skipped=1)
    r.stdout.fnmatch_lines([
        "*tests run on the real board at /dev/ttyMICROFAB-NOT-THERE; sim_only tests are skipped*",
        "*SKIPPED*sim_only: needs the simulator's models (fault injection); the tests run on the "
        "real board at /dev/ttyMICROFAB-NOT-THERE*",
    ])
    assert "/dev/ttyMICROFAB-NOT-THERE does not exist (any more): is the board plugged in?" \
        in r.stdout.str()


def test_the_same_tests_run_on_a_board_behind_a_serial_port(pytester, serial_sim):
    # The simulator's pty board stands in for /dev/ttyACM0: Device, the raw REPL, real time.
    sim = serial_sim("--board", "pico", "--machine", "axis", "--seed", "2")
    pytester.makepyfile(test_bench="""
import pytest
from microfab.device import BoardError


@pytest.mark.hil
def test_home_exec_and_telemetry(sim_board):
    b = sim_board()
    assert b.call("home")["pos"] == 0.0
    assert b.exec("print(6 * 7)").strip() == "42"
    with pytest.raises(BoardError) as e:
        b.exec("1 / 0")
    assert "ZeroDivisionError" in str(e.value)
    # exec went through the raw REPL: the firmware was stopped and started again.
    assert b.call("status")["homed"] is False
    b.advance(0.5)
    assert b.telemetry() and b.telemetry()[-1]["tele"] == "status"


def test_another_machine_is_skipped(sim_board):
    sim_board(machine="loom")


def test_another_config_is_skipped(sim_board):
    sim_board(config={"max_pos": 123.0, "pins": {"endstop": 3}})


def test_a_handle_without_sim_only_says_what_to_do(sim_board):
    sim_board().heater.break_sensor()
""")
    r = run(pytester, "--port=" + sim.port)
    r.assert_outcomes(passed=1, skipped=2, failed=1)
    r.stdout.fnmatch_lines([
        "*heater is fault injection on the simulator's models, which a real board does not "
        "have: mark the test @pytest.mark.sim_only*",
        "*the board at %s runs the 'axis' machine; this test is for 'loom'*" % sim.port,
        "*the board at %s runs another config: max_pos is 200.0 there, 123.0 here*" % sim.port,
    ])
    assert "pins" not in r.stdout.str().split("runs another config")[1].split("\n")[0]


def test_a_port_given_as_two_arguments_is_refused_with_the_fix(pytester, serial_sim):
    # pytest would take the port for a test path and miss the project's settings.
    sim = serial_sim("--board", "pico", "--machine", "axis")
    pytester.makepyfile(test_x="def test_x(sim_board):\n    pass\n")
    r = run(pytester, "--port", sim.port)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*write --port=%s (with '='): given as two arguments, pytest takes "
                            "%s for a test path*" % (sim.port, sim.port)])


SCENARIO = """
name = "homing"
machine = "axis"
seed = 1
expect = ["status.homed == true at 20s", "%s"]

[[command]]
at = "0s"
send = "home"
"""


def test_scenario_files_are_collected_and_failures_say_what_was_seen(pytester):
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "homing.toml").write_text(SCENARIO % "status.pos == 0.0 at 30s")
    (pytester.path / "scenarios" / "slow.toml").write_text(
        SCENARIO % "status.pos == 50.0 within 5s of home")
    (pytester.path / "scenarios" / "bad.toml").write_text(
        'machine = "axis"\n\n[[command]]\nat = "2 hours"\nsend = "home"\n')
    (pytester.path / "notes.toml").write_text("not = 'a scenario'\n")  # outside scenarios/
    r = run(pytester, "-v")
    r.assert_outcomes(passed=1, failed=2)
    r.stdout.fnmatch_lines([
        "scenarios/homing.toml::homing PASSED*",
        "scenario 'homing' (scenarios/slow.toml): pico, axis, seed 1; 20 s of virtual time in *",
        "  PASS  command home at 0 s: ok at 7.804 s",
        "  PASS  status.homed == true at 20s: true at 20 s",
        # the board counts from where it started while homing: the position is negative then
        "  FAIL  status.pos == 50.0 within 5s of home: not met from 0 s to 5 s; last seen -49.75 "
        "at 5 s",
        "2 passed, 1 failed",
        "--- pico, axis, seed 1: last 12 exchanges",
    ])
    assert ("bad scenario file: scenarios/bad.toml, line 4 ([[command]] #1, key 'at'): '2 hours' "
            "is not a duration: expected seconds (90) or a number with ms, s, min, h or d, like "
            "\"90s\" or \"2h\"") in r.stdout.str()


def test_mqtt_broker_and_collector_fixtures(pytester):
    pytester.makepyfile(test_fleet="""
import json
import time

import paho.mqtt.client as mqtt


def test_a_record_reaches_the_collector(mqtt_broker, collector):
    assert mqtt_broker.url.startswith("mqtt://127.0.0.1:") and not mqtt_broker.url.endswith(":1883")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="board-1")
    c.connect("127.0.0.1", mqtt_broker.port)
    c.loop_start()
    # Sent again until stored: the collector subscribes once it has connected; it keeps one
    # record per device and seq whatever arrives twice.
    for _ in range(50):
        c.publish("microfab/board-1/tele/energy", json.dumps({"seq": 1, "uptime_s": 3.0}),
                  qos=1).wait_for_publish(5)
        collector.flush(1)
        if collector.count("board-1"):
            break
        time.sleep(0.1)
    c.loop_stop()
    c.disconnect()
    assert [r[0] for r in collector.records("board-1")] == [1]
""")
    r = run(pytester)
    r.assert_outcomes(passed=1)
