"""The JSON-line protocol: a declared command table, and an error reply for every bad line while
the board keeps running."""
import json

import pytest


def test_hello_declares_versions_and_the_command_table(board):
    r = board.send("hello")
    assert r["ok"] and r["protocol"] == 1 and r["firmware"] == "0.1.0"
    assert r["board"] == "pico" and r["machine"] == "axis" and r["micropython"] == "1.27.0"
    assert r["mem_free"] > 0
    assert r["commands"]["move"] == {"to": "float", "speed": "float?"}
    assert r["commands"]["job"] == {"moves": "list", "repeat": "int?"}
    assert set(r["commands"]) >= {"hello", "info", "status", "stop", "home", "move", "jog"}
    assert board.send("info")["commands"] == r["commands"]


def test_boot_announces_itself_and_its_effective_config(board):
    boot = board.lines("boot")[0]
    assert boot["state"] == "ready" and boot["reset_cause"] == "power-on"
    assert board.lines("config")[0]["machine"]["max_speed"] == 50.0


def last(board):
    board.advance(0.05)
    return board.log[-1]


@pytest.mark.parametrize("line, words", [
    (b"not json\n", "not JSON"),
    (b"[1, 2]\n", "expected a JSON object"),
    (b'{"id": 5}\n', "missing 'cmd'"),
    (b'{"id": 5, "cmd": "fly"}\n', "unknown command 'fly'"),
    (b'{"id": 5, "cmd": "move", "args": {"to": "far"}}\n', "argument 'to' of move must be a number, got 'far'"),
    (b'{"id": 5, "cmd": "move", "args": {}}\n', "move needs argument 'to'"),
    (b'{"id": 5, "cmd": "move", "args": {"to": 1, "spd": 2}}\n', "unknown argument 'spd' for move"),
    (b'{"id": 5, "cmd": "enable", "args": {"on": 1}}\n', "must be true or false, got 1"),
    (b'{"id": 5, "cmd": "move", "args": [1]}\n', "'args' of move must be an object"),
    (b'{"id": 5, "cmd": "hello", "extra": 1}\n', "unknown field 'extra'"),
    (b'{"id": true, "cmd": "hello"}\n', "'id' must be a number or a string"),
    (b"\xff\xfe\n", "not UTF-8"),
    (b'{"id": 1, "cmd": "hello", "args": {"x": "' + b"a" * 5000 + b'"}}\n', "line too long"),
])
def test_bad_lines_get_an_error_reply_and_the_board_keeps_serving(board, line, words):
    board.write(line)
    reply = last(board)
    assert reply["ok"] is False and words in reply["error"]
    assert board.send("status")["ok"]


def test_a_line_split_across_writes_is_one_command(board):
    board.write(b'{"id": 77, "cm')
    board.advance(0.1)
    board.write(b'd": "status"}\r\n')
    assert board.wait_reply(77)["ok"]


def test_only_one_motion_command_at_a_time_but_stop_always_gets_through(homed):
    rid = homed.request("move", {"to": 190.0, "speed": 20.0})
    homed.advance(0.5)
    busy = homed.send("jog", by=1.0)
    assert not busy["ok"] and "busy: move is running" in busy["error"]
    assert homed.send("stop")["stopped"] == "moving"
    moved = homed.wait_reply(rid)
    assert not moved["ok"] and "stopped" in moved["error"]


def test_replies_are_one_json_object_per_line(board):
    board.send("hello")
    raw = [x for x in board.log if isinstance(x, str)]
    assert raw == []  # nothing but JSON on the link while the firmware runs
    assert json.dumps(board.replies[1])
