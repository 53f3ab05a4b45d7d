"""Supervision: a crashing task is reported and leaves the machine safe; the watchdog resets a
board whose tasks stopped beating; a bad config boots into a state that says why."""


def break_supply_sensor(board):
    def broken():
        raise OSError(5, "EIO")  # the ADC read fails, as a loose divider wire can make it

    board.hw.analogs[board.board_cfg["pins"]["vsense"]] = broken


def test_a_crashing_task_is_reported_and_the_machine_made_safe(homed):
    homed.send("enable", on=True)
    assert homed.hw.role("enable").read() == 0  # driver energised
    break_supply_sensor(homed)
    homed.advance(1.5)
    fault = homed.lines("fault")[0]
    assert fault["task"] == "sampler" and "OSError" in fault["error"] and "in supply" in fault["trace"]
    assert homed.hw.role("enable").read() == 1  # motor driver de-energised
    st = homed.send("status")
    assert st["state"] == "fault" and st["faults"] == 1 and not st["homed"]


def test_the_watchdog_resets_a_board_whose_sampler_died(homed):
    break_supply_sensor(homed)
    homed.advance(3)
    assert homed.boots == 1
    homed.advance(10)  # watchdog_ms defaults to 8000
    assert homed.boots == 2
    boots = homed.lines("boot")
    assert boots[-1]["reset_cause"] == "watchdog"
    assert homed.send("status")["homed"] is False  # a reset forgets the position


def test_a_healthy_board_is_never_reset_by_its_watchdog(board):
    board.advance(120)
    assert board.boots == 1 and not board.lines("fault")


def test_reset_command_reboots_and_keeps_the_physical_position(homed):
    homed.send("move", to=50.0)
    at = homed.axis.position()
    assert homed.send("reset")["reset"] is True
    homed.advance(0.5)
    assert homed.boots == 2 and homed.lines("boot")[-1]["reset_cause"] == "hard"
    assert homed.axis.position() == at
    assert homed.send("hello")["state"] == "ready"


def test_bad_config_on_the_board_boots_into_config_error_and_drives_nothing(make_board):
    b = make_board(machine={"machine": "axis", "max_speed": -1})
    err = b.lines("config_error")[0]["error"]
    assert "'max_speed' is -1" in err
    hello = b.send("hello")
    assert hello["state"] == "config_error" and hello["error"] == err
    assert "move" not in hello["commands"]
    r = b.send("move", to=1.0)
    assert not r["ok"] and "unknown command 'move'" in r["error"]
    assert b.axis.pulses == 0


def test_missing_config_file_is_named(make_board, tmp_path):
    b = make_board(root=tmp_path)
    (tmp_path / "config" / "machine.json").unlink()
    b.reset()
    assert "config/machine.json is missing" in b.send("hello")["error"]


def test_telemetry_every_report_interval(board):
    board.advance(60)
    assert [t["seq"] for t in board.telemetry()] == [1, 2, 3, 4, 5, 6, 7]
    tele = board.telemetry("status")
    assert [t["seq"] for t in tele] == [1, 3, 4, 5, 6, 7]  # 2: the production total, once
    assert all(4.9 < t["vsupply"] < 5.1 for t in tele)
