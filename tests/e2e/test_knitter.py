"""The knitting machine end to end: an image becomes needle rows on the host, the rows stream to
the simulated board as it asks for them, a simulated knitter pushes the carriage, and the bed
model records which needles the solenoids really selected as the carriage passed them."""
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_pages  # noqa: E402  (beside this file)

pytest.importorskip("PIL", reason="Pillow reads the pattern images (pip install pillow)")
from PIL import Image, ImageDraw  # noqa: E402

from microfab.patterns import knit  # noqa: E402

PINS = {"enc_a": 10, "enc_b": 11, "enc_c": 12, "eol_left": 26, "eol_right": 27}
SPEED = 300.0  # mm/s, a brisk hand


@pytest.fixture(scope="module")
def motif(tmp_path_factory):
    """A 40 x 12 image: a filled square, a diagonal and a checkered band."""
    im = Image.new("RGB", (40, 12), "white")
    d = ImageDraw.Draw(im)
    d.rectangle([3, 2, 12, 9], fill="black")
    d.line([16, 0, 39, 11], fill=(40, 40, 40))
    for x in range(0, 40, 2):
        im.putpixel((x, 11), (0, 0, 0))
    path = tmp_path_factory.mktemp("img") / "motif.png"
    im.save(path)
    return path


def knitter(make_board, sim=None, **cfg):
    """A simulated knitter: `sim` the model settings, cfg the machine config's keys."""
    mc = {"machine": "knitter", "pins": dict(PINS)}
    mc.update(cfg)
    return make_board(machine=mc, model=sim or {})


class Host:
    """The test in the host's place: answers every need_row with that row of the pattern."""

    def __init__(self, b, rows):
        self.b = b
        self.rows = rows
        self.seen = 0

    def serve(self):
        self.b.advance(0.05)
        asks = self.b.lines("need_row")
        for ev in asks[self.seen:]:
            r = self.b.send("row", index=ev["row"], bits=knit.row_hex(self.rows[ev["row"]]))
            assert r["ok"], r
        self.seen = len(asks)

    def start(self, first, last, **kw):
        r = self.b.send("knit_start", first=first, last=last, rows=len(self.rows), **kw)
        assert r["ok"], r
        self.serve()
        return r

    def passes(self, n=1, speed=SPEED):
        car = self.b.hw.models["carriage"]
        for _ in range(n):
            self.b.advance(car.push(1, speed) + 0.05)
            self.serve()


def on_spans(chip, bit, until=None):
    """(on, off) times in us of every interval the output `bit` of the solenoid board was on;
    one still on at `until` ends there."""
    out, since = [], None
    for t, word in chip.history:
        if word >> bit & 1 and since is None:
            since = t
        elif not word >> bit & 1 and since is not None:
            out.append((since, t))
            since = None
    if since is not None and until is not None:
        out.append((since, until))
    return out


def on_times(chip, bit):
    """How long (ms) each of those intervals lasted."""
    return [(b - a) / 1000 for a, b in on_spans(chip, bit)]


@pytest.mark.parametrize("belt", ["regular", "shifted"])
def test_an_image_is_knitted_row_by_row_as_the_board_selects_it(make_board, motif, belt):
    pat = knit.read(motif)
    assert (pat.first, pat.last, len(pat.rows)) == (80, 119, 12)
    b = knitter(make_board, {"belt": belt})
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    host = Host(b, pat.rows)
    r = host.start(pat.first, pat.last)
    assert r["needles"] == 200 and not r["position_known"]
    assert [e["row"] for e in b.lines("need_row")] == [0, 1, 2, 3]  # the ring is filled first
    for i, row in enumerate(pat.rows):
        host.passes(1)
        got = car.passes[-1]
        assert got.complete(), i
        assert got.row() == row, "row %d: needles selected differ from the image" % i
        assert chip.outputs() == 0  # nothing stays energised past the row
    st = b.send("status")
    assert st["knit"] == "idle" and st["carriage"] == "K" and st["belt"] == belt
    assert (st["rows_knitted"], st["stitches"], st["repeats"]) == (12, 12 * 40, 1)
    assert st["position_error"] == 0 and st["overheats"] == 0
    assert [e["row"] for e in b.lines("row_done")] == list(range(12))
    assert b.lines("knit_done") == [{"event": "knit_done", "rows": 12, "stitches": 480,
                                     "repeats": 1}]
    assert len(b.lines("need_row")) == 12  # asked once each, never ahead of the job's end
    # the right needles were selected, and by more than one solenoid: the mapping was exercised
    assert {car.solenoid_of(n) for n in range(80, 120)} == set(range(16))


def test_solenoids_are_released_as_the_row_ends_and_held_only_a_few_needles(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    # stop the carriage just past the end of the row: activation point 16 needles behind the
    # centre, hold 2 needles, so at needle 119 + 16 + 3 the row is done
    b.advance(car.move_to(pat.last + 16 + 4, SPEED) + 0.1)
    st = b.send("status")
    assert st["rows_knitted"] == 1 and st["solenoids"] == 0 and chip.outputs() == 0
    w = slice(pat.first, pat.last + 1)
    assert car.passes[-1].row()[w] == pat.rows[0][w]
    host.serve()
    host.passes(3)
    # each solenoid is on from `advance` needles before its needle to `hold` after it: at
    # 300 mm/s, 4.5 mm a needle, that is at most 7 needles = 105 ms, far under max_on_ms
    longest = max(max(on_times(chip, s) or [0]) for s in range(16))
    assert 0 < longest <= 7 * 4.5 / SPEED * 1000 + 1
    assert max(bin(w).count("1") for _, w in chip.history) <= 7


def test_a_row_is_not_counted_when_the_carriage_turns_back_inside_it(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    b.advance(car.move_to(pat.first + 16 + 20, SPEED) + car.move_to(car.park_left, SPEED) + 0.1)
    st = b.send("status")
    assert st["rows_knitted"] == 0 and st["solenoids"] == 0
    short = b.lines("row_incomplete")
    assert short and short[0]["row"] == 0 and 18 <= short[0]["needles"] <= 22
    assert short[0]["of"] == 40
    host.passes(1)  # the whole way this time: row 0 again, and now it counts
    assert car.passes[-1].row() == pat.rows[0]
    assert b.send("status")["rows_knitted"] == 1
    assert [e["row"] for e in b.lines("row_done")] == [0]


def test_a_stopped_carriage_does_not_cook_its_solenoids(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, max_on_ms=400)
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    # the knitter pauses in the middle of row 0, with solenoids energised
    b.advance(car.move_to(100 + 16, SPEED) + 0.01)
    on = chip.outputs()
    assert on
    t0 = b.clock.now
    b.advance(3.0)
    for s in range(16):
        times = on_times(chip, s)
        assert all(t <= 400 + 21 for t in times), s  # never longer than max_on_ms (+ a tick)
        if on >> s & 1:
            # held at 50 % duty while the carriage stands: the selection is kept for when it
            # moves on, and the solenoid stays cool
            spans = on_spans(chip, s, b.clock.now)
            held = sum(min(b_, b.clock.now) - max(a, t0) for a, b_ in spans if b_ > t0) / 1000
            assert 1000 <= held <= 0.5 * 3000 + 400, (s, held)
    assert all(not w & ~on for t, w in chip.history if t >= t0)  # nothing else came on
    hot = b.lines("overheat")
    assert hot[0]["max_on_ms"] == 400
    assert sum(e["solenoids"] for e in hot) == on  # each reported once, not on every cycle
    assert b.send("status")["overheats"] >= 3 * bin(on).count("1")
    # cooled while it waited: the row goes on, and is right to the last needle
    b.advance(car.push(1, SPEED) + 0.1)
    assert car.passes[-1].row() == pat.rows[0]
    assert b.send("status")["rows_knitted"] == 1


def test_the_duty_limit_holds_against_a_host_that_keeps_them_on(make_board):
    b = knitter(make_board, max_on_ms=500, max_duty=20)
    chip = b.hw.models["solenoids"]
    for _ in range(200):  # a wiring test gone wrong: all on, again and again, for 20 s
        b.send("solenoids", mask=0xFFFF)
        b.advance(0.1)
    b.send("solenoids", mask=0)
    for s in (0, 7, 15):
        times = on_times(chip, s)
        assert max(times) <= 500 + 21
        assert sum(times) / 20000 <= 0.20 + 0.03  # the duty, with the first burst from cold


def test_kh270_has_112_needles_and_12_solenoids_on_outputs_3_to_14(make_board, motif):
    pat = knit.read(motif, machine="kh270")
    assert (pat.first, pat.last, len(pat.rows[0])) == (36, 75, 112)
    b = knitter(make_board, model="kh270")
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    host = Host(b, pat.rows[:4])
    r = b.send("knit_start", first=0, last=112, rows=4)
    assert not r["ok"] and "0 to 111" in r["error"]
    host.start(pat.first, pat.last)
    for i in range(4):
        host.passes(1)
        assert car.passes[-1].row() == pat.rows[i]
    used = 0
    for _, word in chip.history:
        used |= word
    assert used & ~0x7FF8 == 0 and used  # outputs 3..14 only
    st = b.send("status")
    assert st["needles"] == 112 and st["rows_knitted"] == 4 and st["carriage"] == "K"
    assert st["belt"] is None  # the KH-270 has no belt shift


def test_the_carriage_type_comes_from_the_magnets_pole(make_board):
    for kind in ("K", "L", "G"):
        b = knitter(make_board, {"carriage": kind})
        b.advance(b.hw.models["carriage"].push(1, SPEED) + 0.1)
        st = b.send("status")
        assert st["carriage"] == kind and st["position"] == b.hw.models["carriage"].park_right
        assert b.lines("carriage")[0]["type"] == kind
        if kind == "G":
            r = b.send("knit_start", first=0, last=9, rows=1)
            assert not r["ok"] and "G carriage" in r["error"]


def test_the_lace_carriage_selects_with_its_own_lead(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, {"carriage": "L"})
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows[:3])
    host.start(pat.first, pat.last)
    host.passes(3)
    assert [p.row() for p in car.passes] == pat.rows[:3]


def test_lost_counts_are_put_right_at_the_next_sensor(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, {"magnet": 0.6})  # a weak magnet: the zero must not move
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows[:3])
    host.start(pat.first, pat.last)
    host.passes(1)
    car.slip(-5)  # the encoder missed five needles while parked
    assert b.send("status")["position"] == car.park_right == car.position() + 5
    host.passes(2)
    assert [p.row() for p in car.passes] == pat.rows[:3]  # corrected before the window
    st = b.send("status")
    assert st["position"] == car.park_right and st["position_error"] == -5
    assert b.lines("position_corrected") == [{"event": "position_corrected", "needles": -5}]


def test_a_row_that_did_not_arrive_in_time_is_not_knitted(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    assert b.send("knit_start", first=pat.first, last=pat.last, rows=12)["ok"]
    b.advance(car.push(1, SPEED) + 0.1)  # the host has not sent a row yet
    assert b.lines("no_row") == [{"event": "no_row", "row": 0}]
    assert chip.history == [] and b.send("status")["rows_knitted"] == 0
    host = Host(b, pat.rows)
    host.serve()
    host.passes(1)
    assert car.passes[-1].row() == pat.rows[0]


def test_repeats_stream_the_pattern_again(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows[:2])
    host.start(pat.first, pat.last, repeats=3)
    host.passes(6)
    assert [p.row() for p in car.passes] == pat.rows[:2] * 3
    assert [(e["row"], e["repeat"]) for e in b.lines("need_row")] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    st = b.send("status")
    assert (st["rows_knitted"], st["repeats"], st["knit"]) == (6, 3, "idle")


def test_a_stuck_solenoid_shows_in_the_fabric_exactly_where_it_selects(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, {"stuck": {5: 1}})
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows[:1])
    host.start(pat.first, pat.last)
    host.passes(1)
    got, want = car.passes[-1].row(), pat.rows[0]
    wrong = [n for n in range(200) if got[n] != want[n]]
    assert wrong and all(car.solenoid_of(n) == 5 and got[n] == "1" for n in wrong)


def test_stop_ends_the_job_and_releases_everything(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car, chip = b.hw.models["carriage"], b.hw.models["solenoids"]
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    b.advance(car.move_to(110, SPEED) + 0.01)
    assert chip.outputs()
    assert b.send("stop")["stopped"] == "knitting"
    assert chip.outputs() == 0
    b.advance(car.push(1, SPEED) + 0.1)
    assert chip.outputs() == 0 and b.send("status")["knit"] == "idle"
    assert not b.send("row", index=4, bits="00" * 25)["ok"]


def test_a_solenoid_board_that_stops_answering_stops_the_job(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car = b.hw.models["carriage"]
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    host.passes(1)
    del b.hw.i2c_devices[(0, 0x20)]  # a loose wire
    b.advance(car.push(1, SPEED) + 0.1)
    stopped = b.lines("knit_stopped")
    assert stopped and "MCP23017" in stopped[0]["error"]
    st = b.send("status")
    assert st["knit"] == "idle" and st["i2c_errors"] >= 1


def test_commands_refuse_bad_input_with_what_was_expected(make_board):
    b = knitter(make_board)

    def err(cmd, **args):
        r = b.send(cmd, **args)
        assert not r["ok"], r
        return r["error"]

    assert "send knit_start first" in err("row", index=0, bits="00" * 25)
    assert "0 <= first <= last <= 199" in err("knit_start", first=50, last=20, rows=3)
    assert "rows must be from 1" in err("knit_start", first=0, last=9, rows=0)
    assert b.send("knit_start", first=0, last=9, rows=6)["ok"]
    assert "send stop first" in err("knit_start", first=0, last=9, rows=3)
    assert "send stop first" in err("solenoids", mask=1)
    assert "expected row 0" in err("row", index=1, bits="00" * 25)
    assert "50 hex digits or 36 base64" in err("row", index=0, bits="0F")
    assert "50 hex digits" in err("row", index=0, bits="zz" * 25)
    assert b.send("row", index=0, bits="ff" * 25)["ok"]
    assert b.send("row", index=1, bits=knit.row_b64("1" * 200))["ok"]  # base64 too
    assert b.send("row", index=2, bits="00" * 25)["ok"]
    assert b.send("row", index=3, bits="00" * 25)["ok"]
    assert "row buffer full" in err("row", index=4, bits="00" * 25)


def test_config_errors_name_the_pin_or_the_chip(make_board):
    b = knitter(make_board, pins=dict(PINS, eol_left=13))
    st = b.send("hello")
    assert st["state"] == "config_error"
    assert "'eol_left' is on pin 13, which is not an ADC pin of pico" in st["error"]
    b = knitter(make_board, {"mcp_missing": True})
    st = b.send("hello")
    assert st["state"] == "config_error"
    assert "no MCP23017 answers at 0x20 on i2c0 (SDA pin 20, SCL pin 21)" in st["error"]
    b = knitter(make_board, model="kh270", advance=8, hold=4)
    assert "advance + hold is 12 needles; with 12 solenoids it must be at most 10" in b.send(
        "hello")["error"]


# --- the yarn-break switch ---

YARN = 13  # a free pin of the Pico: the page's wiring table


def _off_for_good(chip, t):
    """When the solenoid board last went to all-off after t, to stay off; None if it is on."""
    off = None
    for when, word in chip.history:
        if when >= t:
            off = None if word else (off if off is not None else when)
    return off


def test_a_yarn_break_mid_row_releases_everything_and_the_row_is_knitted_again(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, yarn_break_pin=YARN)
    car, chip, yarn = (b.hw.models[k] for k in ("carriage", "solenoids", "yarn"))
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    host.passes(2)  # rows 0 and 1
    # row 2 goes right: the yarn snaps when the carriage's centre is over needle 108, its
    # selection point 16 behind over needle 92, in the filled square with solenoids on
    brk = 92
    assert "1" in pat.rows[2][brk + 2:pat.last + 1]  # needles it would still have selected
    yarn.break_at(brk + 16, row=2)
    b.advance(car.move_to(130, SPEED) + 0.1)  # the knitter stops a few needles on
    t0 = yarn.broke_us
    assert t0 is not None
    on = [w for t, w in chip.history if t <= t0][-1]
    assert on, "solenoids were on when the yarn broke"
    t_off = _off_for_good(chip, t0)  # and nothing came on again
    step_us = 4.5 / SPEED * 1e6  # one needle at 300 mm/s: 15 ms
    assert t_off is not None and t_off - t0 <= step_us
    assert b.lines("yarn_break") == [{"event": "yarn_break", "row": 2, "needle": brk + 16}]
    assert "1" not in car.passes[2].row()[brk + 2:]  # selection stopped at the break
    st = b.send("status")
    assert (st["knit"], st["yarn"], st["yarn_breaks"]) == ("yarn_break", "broken", 1)
    assert st["rows_knitted"] == 2 and st["solenoids"] == 0
    assert [e["row"] for e in b.lines("row_done")] == [0, 1]  # the broken row did not count
    r = b.send("resume")
    assert not r["ok"] and "yarn switch on pin 13 is still open" in r["error"]
    # the knitter brings the carriage back: nothing is selected on the way
    b.advance(car.move_to(car.park_left, SPEED) + 0.1)
    assert "1" not in car.passes[3].row() and b.send("status")["rows_knitted"] == 2
    yarn.mend_yarn()
    b.advance(0.1)
    r = b.send("resume")
    assert r["ok"] and (r["row"], r["repeat"]) == (2, 0)
    assert b.send("status")["knit"] == "knitting"
    host.passes(10)  # row 2 again, then 3 to 11
    knitted = [car.passes[0], car.passes[1]] + car.passes[4:]
    assert [p.row() for p in knitted] == pat.rows  # the fabric is the image, row for row
    assert [e["row"] for e in b.lines("row_done")] == list(range(12))
    assert b.lines("knit_done")[0]["rows"] == 12
    st = b.send("status")
    assert (st["rows_knitted"], st["knit"], st["yarn"], st["yarn_breaks"]) == (
        12, "idle", "ok", 1)
    r = b.send("resume")
    assert not r["ok"] and "nothing to resume" in r["error"]


def test_a_switch_that_chatters_shorter_than_the_debounce_changes_nothing(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, yarn_break_pin=YARN, yarn_debounce_ms=5)
    car, pin = b.hw.models["carriage"], b.hw.pin(YARN)
    host = Host(b, pat.rows[:3])
    host.start(pat.first, pat.last)
    host.passes(1)
    # the tension arm flicks open for 3 ms, twice, while row 1 is being selected
    t = b.clock.now + int(car.move_to(100, SPEED) * 1e6)
    for dt in (0, 3000, 9000, 12000):
        b.clock.at(t + dt, pin.set_ext, None if dt in (0, 9000) else 0)
    b.advance(car.push(1, SPEED) + 0.1)
    host.serve()
    host.passes(1)
    assert [p.row() for p in car.passes] == pat.rows[:3]
    assert b.lines("yarn_break") == [] and b.send("status")["yarn_breaks"] == 0


def test_a_job_does_not_start_on_a_broken_yarn_and_stop_clears_a_break(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board, yarn_break_pin=YARN)
    car, yarn = b.hw.models["carriage"], b.hw.models["yarn"]
    yarn.break_yarn()
    b.advance(0.1)
    assert b.send("status")["yarn"] == "broken" and b.lines("yarn_break") == []  # no job
    r = b.send("knit_start", first=pat.first, last=pat.last, rows=12)
    assert not r["ok"] and "yarn switch on pin 13 is open" in r["error"]
    yarn.mend_yarn()
    b.advance(0.1)
    host = Host(b, pat.rows)
    host.start(pat.first, pat.last)
    host.passes(1)
    yarn.break_yarn()
    b.advance(0.1)
    assert b.send("status")["knit"] == "yarn_break"
    assert b.send("stop")["stopped"] == "knitting"  # the restart path: stop, mend, start over
    yarn.mend_yarn()
    b.advance(car.push(1, SPEED) + 0.1)
    assert b.send("status")["knit"] == "idle"
    assert b.send("knit_start", first=pat.first, last=pat.last, rows=12)["ok"]


def test_without_a_yarn_switch_a_broken_yarn_changes_nothing(make_board, motif):
    pat = knit.read(motif)
    b = knitter(make_board)
    car = b.hw.models["carriage"]
    assert "resume" not in b.send("hello")["commands"]
    host = Host(b, pat.rows[:2])
    host.start(pat.first, pat.last)
    b.hw.models["yarn"].break_at(110)  # the model's yarn breaks; no switch tells the board
    host.passes(2)
    assert [p.row() for p in car.passes] == pat.rows[:2]
    st = b.send("status")
    assert "yarn" not in st and st["knit"] == "idle" and st["rows_knitted"] == 2
    assert b.lines("yarn_break") == []


@pytest.mark.parametrize("pin,words", [
    (10, "'yarn_break_pin' is on pin 10, which pins 'enc_a' already uses; expected a free pin "
         "of pico: 0, 1, 6, 7, 8, 9, 13,"),
    (20, "'yarn_break_pin' is on pin 20, which i2c0 sda (the solenoid board) already uses"),
    (29, "'yarn_break_pin' is on pin 29, which the board's 'vsense' already uses"),
    (23, "'yarn_break_pin' is on pin 23, which rp2040 does not have"),
])
def test_a_yarn_break_pin_already_in_use_is_refused(make_board, pin, words):
    import microfab_boards
    from microfab import config

    b = knitter(make_board, yarn_break_pin=pin)
    st = b.send("hello")
    assert st["state"] == "config_error" and words in st["error"]
    with pytest.raises(ValueError, match=re.escape(words)):  # the host refuses it first
        config.check(microfab_boards.load("pico"),
                     {"machine": "knitter", "pins": PINS, "yarn_break_pin": pin})


@pytest.mark.parametrize("pin,words", [
    (39, "pin 39, an input-only pin of the esp32 without the pull-up the switch needs"),
    (0, "pin 0, the boot strapping pin: a closed switch would start the esp32's ROM bootloader "
        "at reset"),
])
def test_an_esp32_pin_without_pull_up_or_a_strapping_pin_is_refused(pin, words):
    import microfab_boards
    from microfab import config

    pins = {"enc_a": 13, "enc_b": 14, "enc_c": 4, "eol_left": 34, "eol_right": 36}
    free = "; expected a free pin of esp32_devkitc: 2, 5, 12, 15, 16, 17, 18, 19, 23, 32"
    with pytest.raises(ValueError, match=re.escape(words + free)):
        config.check(microfab_boards.load("esp32_devkitc"),
                     {"machine": "knitter", "pins": pins, "yarn_break_pin": pin})


# --- the machine's page says what the code does ---

DOC = Path(__file__).resolve().parents[2] / "docs" / "machines" / "knitter.md"
BOARD_COLUMNS = [(name, col, "GP" if col == 1 else "GPIO")
                 for name, col in machine_pages.BOARD_COLUMNS]


def test_the_page_lists_every_config_key_command_and_event(make_board):
    page = DOC.read_text()
    from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
    from fab.machines import knitter as fw

    assert machine_pages.unnamed(page, [f[0] for f in fw.SCHEMA] + list(fw.PINS)) == []
    assert machine_pages.unnamed(page, fw.PINS, "| %s |") == []
    table = knitter(make_board).send("hello")["commands"]
    assert machine_pages.unnamed_commands(page, table, ("knit_start", "row", "solenoids")) == []
    assert machine_pages.unnamed(page, ("need_row", "carriage", "row_done", "row_incomplete",
                                        "no_row", "knit_done", "overheat", "position_corrected",
                                        "knit_stopped"), "| `%s` |") == []


def page_pin(page, role, col, prefix):
    """The pin of `role` in the page's wiring table, in the board column `col` (GP10 -> 10)."""
    row = next(line for line in page.splitlines() if line.startswith("| %s " % role))
    cell = row.split("|")[col + 1].strip()
    assert cell.startswith(prefix), (role, cell)
    return int(cell[len(prefix):].split()[0])


@pytest.mark.parametrize("name,col,prefix", BOARD_COLUMNS)
def test_the_wiring_table_is_valid_on_every_board(make_board, name, col, prefix):
    import microfab_boards
    from microfab import config

    page = DOC.read_text()
    pins = {role: page_pin(page, role, col, prefix) for role in PINS}
    board = microfab_boards.load(name)
    # the host's check, with the firmware's metadata imported on CPython: pins the chip has,
    # no clash with the board's own roles and buses
    assert config.check(board, {"machine": "knitter", "pins": pins})["pins"] == pins
    assert not machine_pages.taken(board) & set(pins.values())
    assert {pins["eol_left"], pins["eol_right"]} <= set(board["adc_pins"])
    for row_name, key in (("SDA", "sda"), ("SCL", "scl")):
        row = next(line for line in page.splitlines() if row_name + " (i2c0)" in line)
        assert row.split("|")[col + 1].strip() == "%s%d" % (prefix, board["buses"]["i2c0"][key])
    b = make_board(board=name, machine={"machine": "knitter", "pins": pins})
    assert b.send("hello")["state"] == "ready"  # the sensor pins are ADC pins there too
    b.advance(b.hw.models["carriage"].push(1, SPEED) + 0.1)
    assert b.send("status")["position"] == b.hw.models["carriage"].park_right


def test_the_page_documents_the_yarn_switch(make_board):
    page = DOC.read_text()
    b = knitter(make_board, yarn_break_pin=YARN)
    assert b.send("hello")["commands"]["resume"] == {}  # no arguments
    assert "| `resume` | none |" in page and "| `yarn_break` | `row`, `needle` |" in page
    st = b.send("status")
    for field in ("yarn", "yarn_breaks", "yarn_break"):
        assert "`%s`" % field in page, field
    assert (st["yarn"], st["yarn_breaks"]) == ("ok", 0)
    for call in ("break_yarn()", "mend_yarn()", "break_at(needle, row=None)", "`yarn_bounce`"):
        assert call in page, call


@pytest.mark.parametrize("name,col,prefix", BOARD_COLUMNS)
def test_the_yarn_switch_wiring_line_is_valid_on_every_board(make_board, name, col, prefix):
    import microfab_boards
    from microfab import config

    page = DOC.read_text()
    pins = {role: page_pin(page, role, col, prefix) for role in PINS}
    yp = page_pin(page, "yarn_break", col, prefix)
    mc = {"machine": "knitter", "pins": pins, "yarn_break_pin": yp}
    assert config.check(microfab_boards.load(name), mc)["machine"]["yarn_break_pin"] == yp
    b = make_board(board=name, machine=mc)
    assert b.send("hello")["state"] == "ready"
    b.hw.models["yarn"].break_yarn()
    b.advance(0.1)
    assert b.send("status")["yarn"] == "broken"  # the pull-up is there on that pin
