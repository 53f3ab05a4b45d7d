"""`microfab deploy` against a simulated board on a pty: only what changed travels, nothing
half-written is ever put in place, secrets are never shown, and the board must answer as
configured afterwards."""
import json
import shutil
import subprocess
import sys

import pytest

import microfab_boards
import microfab_firmware
from microfab.deploy import DeployError, deploy
from microfab.device import Device

BOARD = microfab_boards.load("pico")


def on_flash(sim):
    return {p.relative_to(sim.flash).as_posix(): p.read_bytes()
            for p in sim.flash.rglob("*") if p.is_file()}


def test_first_deploy_onto_a_blank_board_then_nothing_to_send(serial_sim):
    sim = serial_sim("--blank")
    assert on_flash(sim) == {}
    with Device(sim.port).connect() as dev:
        r = deploy(dev, BOARD, {"machine": "axis", "max_pos": 250.0})
        assert r.hello["state"] == "ready" and r.hello["machine"] == "axis"
        assert len(r.sent) == len(microfab_firmware.device_files()) + 2 and r.unchanged == 0
        files = on_flash(sim)
        for rel in microfab_firmware.device_files():
            assert files[rel.as_posix()] == (microfab_firmware.ROOT / rel).read_bytes()
        assert json.loads(files["config/machine.json"])["max_pos"] == 250.0
        assert not any(".mfnew" in p for p in files)
        again = deploy(dev, BOARD, {"machine": "axis", "max_pos": 250.0})
        assert again.sent == [] and again.bytes_sent == 0 and again.removed == []
        assert dev.request("config")["machine"]["max_pos"] == 250.0


def test_one_changed_file_is_all_that_travels_and_strays_are_removed(serial_sim, tmp_path):
    sim = serial_sim("--blank")
    tree = tmp_path / "fw"
    shutil.copytree(microfab_firmware.ROOT, tree, ignore=shutil.ignore_patterns("__pycache__"))
    with Device(sim.port).connect() as dev:
        deploy(dev, BOARD, {"machine": "axis"}, firmware_root=tree)
        (tree / "fab" / "planner.py").write_text((tree / "fab" / "planner.py").read_text()
                                                 + "\n# a maker's one-line change\n")
        (tree / "fab" / "drivers" / "pulses.py").unlink()
        r = deploy(dev, BOARD, {"machine": "axis"}, firmware_root=tree)
        assert r.sent == ["fab/planner.py"] and r.removed == ["fab/drivers/pulses.py"]
        assert (sim.flash / "fab" / "planner.py").read_bytes() == (tree / "fab" / "planner.py").read_bytes()
        assert r.hello["state"] == "ready"
        # A change in the middle of a file travels as a patch: the board keeps the rest.
        text = (tree / "fab" / "axis.py").read_text()
        middle = text.index("\n", len(text) // 2)
        (tree / "fab" / "axis.py").write_text(text[:middle] + "\n# tuned by hand" + text[middle:])
        r = deploy(dev, BOARD, {"machine": "axis"}, firmware_root=tree)
        assert r.sent == r.patched == ["fab/axis.py"]
        assert r.bytes_sent < len(text) // 4
        assert (sim.flash / "fab" / "axis.py").read_bytes() == (tree / "fab" / "axis.py").read_bytes()
        assert r.hello["state"] == "ready"


def test_an_interrupted_deploy_leaves_no_half_file_and_the_next_one_finishes(serial_sim, tmp_path):
    sim = serial_sim("--blank")
    with Device(sim.port).connect() as dev:
        def pull_the_cable(done, total, path):
            if done > total / 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            deploy(dev, BOARD, {"machine": "axis"}, progress=pull_the_cable)
        files = on_flash(sim)
        finals = [p for p in files if ".mfnew" not in p]
        assert finals == []  # nothing put in place before every file had arrived whole
        assert any(".mfnew" in p for p in files)
    with Device(sim.port).connect() as dev:
        r = deploy(dev, BOARD, {"machine": "axis"})
        assert r.hello["state"] == "ready"
        assert not any(".mfnew" in p for p in on_flash(sim))


def test_calibration_survives_a_deploy_without_one(serial_sim):
    sim = serial_sim("--blank")
    with Device(sim.port).connect() as dev:
        deploy(dev, BOARD, {"machine": "axis"}, calib={"steps_per_mm": 81.2})
        r = deploy(dev, BOARD, {"machine": "axis"})
        assert r.removed == []
        assert dev.request("config")["machine"]["steps_per_mm"] == 81.2


def test_bad_config_is_refused_before_anything_is_sent(serial_sim):
    sim = serial_sim("--blank")
    with Device(sim.port).connect() as dev:
        with pytest.raises(DeployError, match="config refused before sending anything: .*'accel'"):
            deploy(dev, BOARD, {"machine": "axis", "accel": "fast"})
    assert on_flash(sim) == {}


def test_cli_deploy_never_shows_the_secrets(serial_sim, tmp_path):
    sim = serial_sim("--blank")
    r = subprocess.run([sys.executable, "-m", "microfab.cli", "deploy", "--port", sim.port,
                        "--board", "pico", "--machine", "axis", "--wifi-ssid", "workshop",
                        "--wifi-password", "hunter2-very-secret",
                        "--mqtt", "mqtt://fab:pa55word@broker.local:1883"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    shown = r.stdout + r.stderr
    assert "hunter2-very-secret" not in shown and "pa55word" not in shown
    net = json.loads((sim.flash / "config" / "net.json").read_text())
    assert net["wifi_password"] == "hunter2-very-secret"
