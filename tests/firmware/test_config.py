"""Config files are checked at boot and on the host by the same code, with errors that name the
key, the bad value and what was expected."""
import pytest

import microfab_boards
from microfab import config


def check(machine, board="pico", calib=None):
    return config.check(microfab_boards.load(board), machine, calib)


@pytest.mark.parametrize("name", microfab_boards.names())
def test_every_shipped_board_is_valid_with_the_default_machine(name):
    cfg = check({"machine": "axis"}, board=name)
    assert set(cfg["pins"]) == {"step", "dir", "enable", "endstop"}
    assert cfg["machine"]["steps_per_mm"] == 80.0  # default filled in


def test_shipped_boards_cover_the_four_supported():
    assert {"pico", "pico_w", "esp32_devkitc", "esp32s3_devkitc"} <= set(microfab_boards.names())


@pytest.mark.parametrize("machine, words", [
    ({"machine": "axis", "max_sped": 3}, ["unknown key 'max_sped'", "did you mean 'max_speed'"]),
    ({"machine": "axis", "max_speed": -5}, ["'max_speed' is -5", "a number from 0.1 to 2000.0 mm/s"]),
    ({"machine": "axis", "microsteps": 2.5}, ["'microsteps' is 2.5", "a whole number"]),
    ({"machine": "axis", "driver": "l298"}, ["'driver' is 'l298'", "one of a4988, drv8825, tmc2209"]),
    ({"machine": "axis", "invert_dir": "yes"}, ["'invert_dir' is 'yes'", "true or false"]),
    ({"machine": "loomx"}, ["'machine' is 'loomx'", "fab/machines/loomx.py"]),
    ({"max_speed": 3}, ["missing 'machine'"]),
    ({"machine": "axis", "pins": {"endstop": 3}}, ["'dir' and 'endstop' are both on pin 3"]),
    ({"machine": "axis", "pins": {"endstop": 23}}, ["'endstop' is on pin 23", "rp2040 does not have"]),
    ({"machine": "axis", "pins": {"heater": 7}}, ["unknown role 'heater'"]),
])
def test_bad_machine_config_is_refused_with_a_clear_message(machine, words):
    with pytest.raises(config.ConfigError) as e:
        check(machine)
    for w in words:
        assert w in str(e.value)


def test_calibration_overrides_only_calibrated_keys():
    cfg = check({"machine": "axis"}, calib={"steps_per_mm": 81.5})
    assert cfg["machine"]["steps_per_mm"] == 81.5
    with pytest.raises(config.ConfigError, match="'max_speed' is not calibrated"):
        check({"machine": "axis"}, calib={"max_speed": 10})


def test_board_file_with_a_pin_the_chip_lacks_is_refused():
    b = microfab_boards.load("esp32_devkitc")
    b["pins"]["step"] = 24  # GPIO24 does not exist on the ESP32
    with pytest.raises(config.ConfigError, match="'step' is on pin 24, which esp32 does not have"):
        config.check(b, {"machine": "axis"})


def test_check_config_cli_exit_codes(tmp_path, capsys):
    from microfab.cli import main

    good = tmp_path / "m.json"
    good.write_text('{"machine": "axis", "max_pos": 300}')
    assert main(["check-config", "--board", "pico", "--machine", str(good)]) == 0
    assert "ok: axis on Raspberry Pi Pico" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"machine": "axis",')
    assert main(["check-config", "--board", "pico", "--machine", str(bad)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
