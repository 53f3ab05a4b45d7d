"""The dobby loom end to end: a WIF draft read on the host, sent over the JSON link, woven by
pressing the simulated pedal; the shafts the model really raised are compared with the plan."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_pages  # noqa: E402  (beside this file)

from microfab.patterns import weave

DATA = Path(__file__).resolve().parents[1] / "data"
TWILL = weave.read(DATA / "point_twill_8.wif")
# Pico: pedal on GP6, eight solenoids on free pins (see docs/machines/loom.md).
GPIO8 = {"machine": "loom", "shafts": 8, "shaft_pins": [10, 11, 12, 13, 14, 15, 22, 26],
         "pins": {"pedal": 6}}


def loom_board(make_board, **cfg):
    c = dict(GPIO8)
    c.update(cfg)
    return make_board(board=cfg.pop("board", "pico"), machine=c)


def sender(b):
    return lambda cmd, args: b.send(cmd, **args)


def press(b, wait=0.4):
    b.hw.models["loom"].press_pedal(hold_ms=150)
    b.advance(wait)


def test_weaving_a_point_twill_raises_exactly_the_planned_shafts(make_board):
    b = loom_board(make_board)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL, loom_shafts=8)
    st = b.send("status")
    assert st["loaded"] == st["picks"] == 14 and st["pattern"] == "point_twill_8.wif"
    assert model.raised() == [] and st["shed"] == "closed"
    for i, shafts in enumerate(TWILL.picks + TWILL.picks[:3]):  # round the repeat and on
        press(b)
        assert model.raised() == shafts, "pick %d" % i
        st = b.send("status")
        assert st["pick"] == i % 14 and st["shed"] == "open"
    assert st["woven"] == 17 and st["repeats"] == 1
    assert st["length_cm"] == pytest.approx(1.7)  # picks_per_cm 10 by default
    assert model.presses == st["presses"] == 17  # a bouncing switch still counts once per press


def test_unweaving_walks_back_through_the_plan(make_board):
    b = loom_board(make_board)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL)
    for _ in range(5):
        press(b)
    r = b.send("direction", dir="unweave")
    assert r["ok"] and r["next_pick"] == 3
    for i in (3, 2, 1, 0, 13, 12):  # back past the start of the repeat
        press(b)
        assert model.raised() == TWILL.picks[i], "pick %d" % i
    st = b.send("status")
    assert st["direction"] == "unweave" and st["pick"] == 12 and st["woven"] == 0
    b.send("direction", dir="weave")
    press(b)
    assert model.raised() == TWILL.picks[13]


def test_resume_at_a_pick_after_a_reset(make_board):
    b = loom_board(make_board)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL)
    for _ in range(9):
        press(b)
    before = b.send("status")
    b.reset()
    b.advance(0.2)
    assert model.raised() == []  # the pins went high-impedance: the coils let go
    st = b.send("status")
    assert st["picks"] == 0 and st["pick"] == -1
    press(b)
    assert model.raised() == [] and "no pattern" in b.send("status")["note"]
    weave.upload(sender(b), TWILL, loom_shafts=8, resume=before["pick"] + 1)
    assert b.send("goto", pick=before["pick"] + 1, woven=before["woven"], repeat=0)["ok"]
    for i in range(9, 14):
        press(b)
        assert model.raised() == TWILL.picks[i], "pick %d" % i
    assert b.send("status")["woven"] == 14


def test_a_stuck_solenoid_shows_in_the_model_not_in_the_firmware(make_board):
    b = loom_board(make_board)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL)
    model.solenoid(3).stick(up=False)
    missed = 0
    for i in range(8):
        press(b)
        st = b.send("status")
        assert st["energised"] == TWILL.masks()[i]  # the firmware drove what the plan says
        want = [s for s in TWILL.picks[i] if s != 3]
        assert model.raised() == want
        missed += 3 in TWILL.picks[i]
    assert missed == 4 and model.solenoid(3).lifts == 0 and model.status()["stuck"] == [3]
    model.solenoid(3).unstick()  # freed: the next pick that needs it gets it
    press(b)
    assert model.raised() == TWILL.picks[8] and 3 in TWILL.picks[8]


def test_too_many_shafts_are_refused_before_anything_is_sent(make_board):
    b = loom_board(make_board)
    wide = weave.Draft("wide.wif", 12, [[1, 12], [2, 11]])
    sent = len(b.replies)
    with pytest.raises(weave.PatternError, match="wide.wif needs 12 shafts, but the loom has 8"):
        weave.upload(sender(b), wide, loom_shafts=8)
    assert len(b.replies) == sent  # not one command left the host
    # and the board itself refuses it, whoever sends it
    r = b.send("pattern", name="wide", shafts=12, picks=2)
    assert not r["ok"]
    assert r["error"] == ("pattern 'wide' needs 12 shafts, but this loom has 8 (config 'shafts'); "
                          "nothing was changed")
    weave.upload(sender(b), TWILL)
    with pytest.raises(weave.PatternError, match="refused `pattern`.*12 shafts"):
        weave.upload(sender(b), wide)
    assert b.send("status")["pattern"] == "point_twill_8.wif"  # the old pattern still stands


def test_bad_plans_are_refused_with_what_was_expected(make_board):
    b = loom_board(make_board)
    assert "send `pattern`" in b.send("picks", start=0, masks=[1])["error"]
    b.send("pattern", name="p", shafts=4, picks=3)
    r = b.send("picks", start=0, masks=[1, 16])
    assert r["error"] == "pick 1: mask 16 is not a whole number from 0 to 15 (pattern 'p' has 4 shafts)"
    assert b.send("status")["loaded"] == 0  # nothing of a bad chunk is kept
    r = b.send("picks", start=2, masks=[1])
    assert "expected start 0 to 0" in r["error"]
    assert b.send("picks", start=0, masks=[1, 2])["loaded"] == 2
    press(b)
    assert "no pattern loaded (2 of 3 picks)" in b.send("status")["note"]
    assert "expected 0 to 2" in b.send("goto", pick=3)["error"]
    assert "'weave' or 'unweave'" in b.send("direction", dir="back")["error"]


def test_hold_limit_drops_the_shed_and_the_next_press_reopens_it(make_board):
    b = loom_board(make_board, hold_max_s=2)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL)
    press(b)
    press(b)
    assert model.raised() == TWILL.picks[1]
    b.advance(2.0)
    assert model.raised() == []  # the coils were released, the shafts fell
    st = b.send("status")
    assert st["hold_timeouts"] == 1 and "held up for hold_max_s 2 s" in st["note"]
    press(b)
    assert model.raised() == TWILL.picks[1]  # the same pick again, not the next
    assert b.send("status")["pick"] == 1


def test_a_hot_coil_refuses_the_pick_until_it_has_cooled(make_board):
    b = loom_board(make_board, duty_max_pct=50, duty_window_s=10)
    model = b.hw.models["loom"]
    weave.upload(sender(b), weave.Draft("tabby.wif", 8, [[1, 3, 5, 7], [1, 2, 4, 6, 8]]))
    refused_at = None
    for i in range(12):  # shaft 1 is up in every pick: its coil heats
        press(b, 0.6)
        if not model.raised():
            refused_at = i
            break
    assert refused_at is not None and refused_at >= 6
    st = b.send("status")
    assert "shaft 1 was energised" in st["note"] and "duty_max_pct 50" in st["note"]
    assert st["refused"] == 1 and st["shed"] == "closed"
    assert st["pick"] == refused_at % 2  # the weaver is at that pick, its shed shut
    b.advance(15)
    press(b)
    tabby = [[1, 3, 5, 7], [1, 2, 4, 6, 8]]
    assert model.raised() == tabby[refused_at % 2]  # the refused pick, now that the coil is cool
    press(b)
    assert model.raised() == tabby[(refused_at + 1) % 2]  # and on, not one pick twice
    assert b.send("status")["woven"] == refused_at + 2


def test_stop_drops_every_shaft(make_board):
    b = loom_board(make_board)
    model = b.hw.models["loom"]
    weave.upload(sender(b), TWILL)
    press(b)
    assert b.send("stop")["stopped"] == "open"
    b.advance(0.3)
    assert model.raised() == [] and model.energised() == []
    press(b)
    assert model.raised() == TWILL.picks[0]  # reopened: a stop does not skip a pick


@pytest.mark.parametrize("cfg, shafts", [
    ({"solenoids": "shiftreg", "shaft_pins": [], "shafts": 16, "sr_oe_pin": 7}, 16),
    ({"solenoids": "shiftreg", "shaft_pins": [], "shafts": 12}, 12),
    ({"solenoids": "mcp23017", "shaft_pins": [], "shafts": 24, "mcp_addr": 0x21}, 24),
    ({"solenoids": "mcp23017", "shaft_pins": [], "shafts": 32}, 32),
])
def test_shift_register_and_port_expander_looms(make_board, cfg, shafts):
    b = loom_board(make_board, **cfg)
    model = b.hw.models["loom"]
    plan = [[1, shafts], [2, shafts - 1, 9], [], list(range(1, shafts + 1)), [min(16, shafts - 1), min(17, shafts)]]
    weave.upload(sender(b), weave.Draft("wide.wif", shafts, plan), loom_shafts=shafts)
    for i, want in enumerate(plan):
        press(b)
        assert model.raised() == sorted(want), "pick %d" % i
    b.send("stop")
    b.advance(0.3)
    assert model.raised() == []
    press(b)
    assert model.raised() == sorted(plan[-1])


def test_shift_register_outputs_stay_off_until_the_firmware_clears_them(make_board):
    b = loom_board(make_board, solenoids="shiftreg", shaft_pins=[], sr_oe_pin=7)
    chain = b.hw.models["loom"].chain
    assert chain.history == []  # /OE held high by its pull-up until the register held zeros
    b.send("pattern", name="x", shafts=8, picks=1)
    b.send("picks", start=0, masks=[0b101])
    press(b)
    assert chain.outputs() == 0b101
    b.write(b'{"id": "s", "cmd": "stop"}\n')
    b.advance(0.001)
    assert chain.outputs() == 0 and not chain.enabled  # hal.safe_state: /OE high


@pytest.mark.parametrize("cfg, words", [
    ({"shaft_pins": [10, 11, 12]}, "'shaft_pins' lists 3 pins, expected one per shaft (shafts 8"),
    ({"shafts": 4, "shaft_pins": [10, "11", 12, 13]}, "'shaft_pins' shaft 2 is a text, expected a pin number"),
    ({"shaft_pins": [10, 11, 12, 13, 14, 15, 22, 6]}, "pins 'pedal' and 'shaft_pins' shaft 8 are both on pin 6"),
    ({"shaft_pins": [10, 11, 12, 13, 14, 15, 22, 23]}, "shaft 8 is on pin 23, which rp2040 does not have"),
    ({"solenoids": "mcp23017"}, "'shaft_pins' is for solenoids 'gpio'"),
    ({"solenoids": "shiftreg", "shaft_pins": [], "sr_oe_pin": 17}, "spi0 cs and 'sr_oe_pin' are both on pin 17"),
    ({"sr_oe_pin": 7}, "'sr_oe_pin' is for solenoids 'shiftreg'"),
    ({"seguin": "uart", "pins": {"pedal": 8}}, "pins 'pedal' and uart1 tx are both on pin 8"),
])
def test_config_mistakes_are_named(make_board, cfg, words):
    b = loom_board(make_board, **cfg)
    err = b.lines("config_error")
    assert err and words in err[0]["error"], err


def test_weaving_in_the_micropython_vm_within_the_heap_budget():
    """The same firmware and models in the real MicroPython VM (WebAssembly, run by Node)."""
    from microfab_sim.wasm_board import FIRMWARE_TARGET_KB, WasmBoard

    with WasmBoard(board="pico", machine=dict(GPIO8, solenoids="shiftreg", shaft_pins=[],
                                              sr_oe_pin=7), seed=1) as b:
        assert b.lines("boot")[0]["state"] == "ready"
        weave.upload(sender(b), TWILL, loom_shafts=8)
        for i in range(8):
            b.eval("hw.models['loom'].press_pedal(150)")
            b.advance(0.4)
            assert b.eval("hw.models['loom'].raised()") == TWILL.picks[i], "pick %d" % i
        st = b.send("status")
        assert st["woven"] == 8 and st["presses"] == 8 and b.console == []
        m = b.mem()
        # the plan buffer (max_picks 1000: 4 KB) included; about 44 KB at boot on the Pico
        assert m["firmware_boot"] <= FIRMWARE_TARGET_KB * 1024 and not m["heap_grew"], m


# The wiring the docs give for each board and driver: each must pass the board's own checks.
DOC_WIRING = {
    "pico": (6, [10, 11, 12, 13, 14, 15, 22, 26], 7),
    "pico_w": (6, [10, 11, 12, 13, 14, 15, 22, 26], 7),
    "esp32_devkitc": (32, [4, 13, 14, 15], 4),
    "esp32s3_devkitc": (14, [15, 16, 21, 38, 39, 40, 41, 42], 47),
}


@pytest.mark.parametrize("name", sorted(DOC_WIRING))
def test_documented_wiring_is_valid_on_each_board(name):
    import microfab_boards
    from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
    from fab.config import configure
    from fab.machines import loom

    page = (Path(__file__).resolve().parents[2] / "docs" / "machines" / "loom.md").read_text()
    pedal, gpio, oe = DOC_WIRING[name]
    board = microfab_boards.load(name)
    col = "GP%d" if name.startswith("pico") else "GPIO%d"
    for pin in [pedal, oe] + gpio:
        assert col % pin in page, (name, pin)
    for extra in ({"shaft_pins": gpio, "shafts": max(4, len(gpio))},
                  {"solenoids": "shiftreg", "sr_oe_pin": oe, "shafts": 32},
                  {"solenoids": "mcp23017", "shafts": 32, "seguin": "uart"}):
        cfg = dict({"machine": "loom", "pins": {"pedal": pedal}}, **extra)
        b, mod, m, pins = configure(board, cfg)
        for role, pin in pins.items():
            assert pin not in board["pins"].values(), (name, role, pin)  # no clash with the board's roles
        loom.check(m, b, pins)


def test_the_pages_config_is_valid_on_a_pico():
    # the page's python sample runs in tests/docs/test_samples.py; this is its config block
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "machines" / "loom.md").read_text()
    cfg = json.loads(re.search(r"```json\n(.*?)```", page, re.S).group(1))
    from fab.config import configure
    from fab.machines import loom

    import microfab_boards

    b, mod, m, pins = configure(microfab_boards.load("pico"), cfg)
    loom.check(m, b, pins)


def test_docs_list_every_key_command_and_board(board, make_board):
    from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
    from fab.machines import loom

    page = (Path(__file__).resolve().parents[2] / "docs" / "machines" / "loom.md").read_text()
    assert machine_pages.unnamed(page, [f[0] for f in loom.SCHEMA]) == []
    table = loom_board(make_board).send("hello")["commands"]
    assert machine_pages.unnamed_commands(page, table, ("pattern", "picks", "goto", "direction",
                                                        "pedal", "rest")) == []
    assert machine_pages.unnamed(page, ("Pico", "Pico W", "ESP32-DevKitC", "ESP32-S3-DevKitC-1"),
                                 "%s") == []
