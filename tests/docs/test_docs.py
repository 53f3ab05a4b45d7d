"""The docs say what the code does: every command and every config key is documented (the
samples are run by test_samples.py)."""
from pathlib import Path

import microfab_boards
from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path

ROOT = Path(__file__).resolve().parents[2]


def test_protocol_page_lists_every_command_the_board_declares(board):
    page = (ROOT / "docs" / "protocol.md").read_text()
    table = board.send("hello")["commands"]
    for name, args in table.items():
        assert "`%s`" % name in page, name
        for arg in args:
            assert "`%s`" % arg in page, (name, arg)


def test_config_page_lists_every_key_of_every_schema():
    page = (ROOT / "docs" / "config.md").read_text()
    from fab import config as fw
    from fab.machines import axis

    for field in fw.RUNTIME + axis.SCHEMA + fw.BOARD:
        assert "`%s`" % field[0] in page, field[0]


def test_config_page_wiring_matches_the_board_files():
    page = (ROOT / "docs" / "config.md").read_text()
    for name, col in (("pico", "GP%d"), ("esp32_devkitc", "GPIO%d"), ("esp32s3_devkitc", "GPIO%d")):
        pins = microfab_boards.load(name)["pins"]
        for role in ("step", "dir", "enable", "endstop"):
            row = next(line for line in page.splitlines() if line.startswith("| %s" % role))
            assert col % pins[role] in row, (name, role)


# The README's and the docs' Python samples are run by test_samples.py.
