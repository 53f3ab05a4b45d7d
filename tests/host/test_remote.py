"""The operating commands over MQTT (`microfab status|send|home|stop|jog --broker URL --device
ID`): signed with the key `microfab provision` stored, answered by a simulated board on a real
Mosquitto, refused with the board's words, and never a secret on the screen."""
import json
import os
import subprocess
import sys

import pytest

from microfab.provision import KeyStore
from microfab_sim.net import net_board, until

KEY = bytes(range(32))


@pytest.fixture
def cfg_home(tmp_path):
    home = tmp_path / "cfg"
    KeyStore(home / "microfab" / "keys.json").put("rig-1", KEY, "127.0.0.1")
    return home


@pytest.fixture
def board(mosquitto):
    b = net_board(mosquitto.url, "rig-1", KEY, seed=2)
    until(b, lambda: b.send("net")["connected"])
    yield b
    b.world.modules["vasyncio"]._io.reset()
    b.close()


def mf(board, cfg_home, *args, virtual_s=600):
    """Run microfab in a subprocess while the simulated board runs here: (code, out, err)."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(cfg_home), COLUMNS="200")
    p = subprocess.Popen([sys.executable, "-m", "microfab.cli", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    until(board, lambda: p.poll() is not None, virtual_s=virtual_s, real_s=60)
    out, err = p.communicate()
    return p.returncode, out, err


def test_status_home_and_send_go_over_mqtt_signed_with_the_stored_key(mosquitto, board,
                                                                      cfg_home):
    url = "mqtt://maker:pa55word@127.0.0.1:%d" % mosquitto.port
    code, out, err = mf(board, cfg_home, "status", "--broker", url, "--device", "rig-1")
    assert code == 0, err
    assert json.loads(out)["state"] == "ready"
    code, out, err = mf(board, cfg_home, "home", "--broker", url, "--device", "rig-1",
                        "--timeout", "30")
    assert code == 0, err
    assert json.loads(out)["pos"] == 0.0
    assert board.send("status")["homed"] is True  # it really ran on the board
    code, out, err = mf(board, cfg_home, "send", "move", "to=500", "--broker", url, "--device",
                        "rig-1")
    assert code == 1 and "outside the soft limits" in err  # the board's own words
    assert "pa55word" not in out + err and KEY.hex() not in out + err
    net = board.send("net")
    assert net["accepted"] == 3 and net["refused"] == 0


def test_monitor_over_mqtt_needs_no_key_and_shows_the_records(mosquitto, board, tmp_path):
    code, out, err = mf(board, tmp_path / "empty-cfg", "monitor", "--broker", mosquitto.url,
                        "--device", "rig-1", "--seconds", "3", virtual_s=10 ** 6)
    assert code == 0, err
    assert "rig-1 on 127.0.0.1:%d" % mosquitto.port in out and "telemetry (Ctrl-C" in out
    assert "uptime_s" in out and "seq" in out  # a status record's fields


def test_a_board_ahead_of_this_computers_clock_gets_the_command_once_more(mosquitto, board,
                                                                         cfg_home):
    # Another computer (or a clock set back) left the board's counter in the future.
    from microfab_sim.net import Watcher

    w = Watcher(mosquitto.port, ("microfab/rig-1/reply",), client_id="ahead")
    try:
        w.command("rig-1", KEY, "status", ctr=10 ** 13)
        until(board, lambda: w.json("microfab/rig-1/reply"))
    finally:
        w.close()
    code, out, err = mf(board, cfg_home, "status", "--broker", mosquitto.url, "--device",
                        "rig-1")
    assert code == 0, err
    assert board.send("net")["ctr"] == 10 ** 13 + 1


def test_what_is_missing_is_said_in_one_line(mosquitto, board, cfg_home):
    code, out, err = mf(board, cfg_home, "status", "--broker", mosquitto.url, "--device",
                        "loom-9")
    assert code == 1 and "no device key for 'loom-9'" in err and "microfab provision" in err
    assert "Traceback" not in err
    code, out, err = mf(board, cfg_home, "status", "--broker", mosquitto.url)
    assert code == 1 and "--broker and --device go together" in err
    code, out, err = mf(board, cfg_home, "stop", "--broker", "mqtt://127.0.0.1:1",
                        "--device", "rig-1")
    assert code == 1 and "cannot reach the broker at 127.0.0.1:1" in err
    # The board is away (not stepped here): nobody answers.
    r = subprocess.run([sys.executable, "-m", "microfab.cli", "status", "--broker",
                        mosquitto.url, "--device", "rig-1", "--timeout", "2"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, XDG_CONFIG_HOME=str(cfg_home)))
    assert r.returncode == 1 and "no reply from rig-1 within 2 s" in r.stderr
