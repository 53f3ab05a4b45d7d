"""The operating commands against a simulated board on a real pty, as a maker types them."""
import json
import os
import signal
import subprocess
import sys

import pytest


def mf(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "microfab.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def reply(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_status_home_jog_send_stop(serial_sim):
    port = serial_sim("--machine", "axis", "--seed", "2").port
    st = reply(mf("status", "--port", port))
    assert st["state"] == "ready" and st["homed"] is False
    assert reply(mf("home", "--port", port))["pos"] == 0.0
    assert reply(mf("jog", "12.5", "--port", port))["pos"] == 12.5
    assert reply(mf("send", "move", "to=40", "speed=20", "--port", port))["pos"] == 40.0
    bad = mf("send", "move", "to=900", "--port", port)
    assert bad.returncode == 1 and "outside the soft limits" in bad.stderr
    assert reply(mf("stop", "--port", port))["stopped"] == "idle"
    assert reply(mf("status", "--port", port))["homed"] is False  # an e-stop forgets position


def test_send_argument_errors_are_one_line(serial_sim):
    port = serial_sim("--machine", "axis").port
    r = mf("send", "move", "to", "--port", port)
    assert r.returncode == 1 and "expected NAME=VALUE" in r.stderr and "Traceback" not in r.stderr


def test_monitor_shows_telemetry_and_totals_then_stops(serial_sim):
    port = serial_sim("--machine", "windrig").port
    r = mf("monitor", "--port", port, "--seconds", "3", timeout=60,
           env=dict(os.environ, COLUMNS="200"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "telemetry" in out and "vbat" in out  # the status record's fields
    assert "energy.harvested_wh" in out and "energy.soc" in out  # the totals, beside it


def test_calibrate_steps_non_interactive(serial_sim):
    port = serial_sim("--machine", "axis").port
    r = mf("calibrate", "steps", "--port", port, "--measured", "101.5", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "steps_per_mm: 80.0 -> 78.8177" in r.stdout
    assert reply(mf("send", "config", "--port", port))["machine"]["steps_per_mm"] == 78.8177


def test_boards_lists_a_running_sim_and_follows_its_name(tmp_path):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    sim = subprocess.Popen([sys.executable, "-m", "microfab.cli", "sim", "--board", "pico",
                            "--machine", "axis"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = sim.stdout.readline().split(": ", 1)[1].strip()
        listed = json.loads(mf("boards", "--json", env=env).stdout)
        assert [b["port"] for b in listed] == [port] and listed[0]["kind"] == "sim"
        assert mf("boards", "--name", "bench", "--port", port, env=env).returncode == 0
        assert reply(mf("status", "--port", "bench", env=env))["state"] == "ready"
        probed = json.loads(mf("boards", "--json", "--probe", env=env).stdout)
        assert probed[0]["name"] == "bench" and probed[0]["firmware"] == "0.1.0"
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    gone = mf("status", "--port", "bench", env=env)
    assert gone.returncode == 1 and "'bench'" in gone.stderr and "not plugged in" in gone.stderr


def test_no_board_is_explained(tmp_path):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = mf("status", env=env)
    if "boards found" in r.stderr:
        pytest.skip("a real board is plugged into this machine")
    assert r.returncode == 1 and "no board found" in r.stderr
