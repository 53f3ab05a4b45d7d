"""The knitting machine's position drivers against the bed model: the carriage encoder (A/B with
the belt phase C) and the end-of-line hall sensors; and the whole IRQ path (encoder, sensors,
needle selection, solenoid bank) in the real MicroPython VM with its heap locked."""
import pytest

import microfab_boards
from microfab_sim.world import World

PINS = {"enc_a": 10, "enc_b": 11, "enc_c": 12, "eol_left": 26, "eol_right": 27}
LO, HI = int(0.65 / 3.3 * 65535), int(1.95 / 3.3 * 65535)


class Bed:
    """A board's world with the knitter's models wired, and the firmware's drivers on it."""

    def __init__(self, root, model=None, sim=None):
        from microfab_sim.board import install_firmware

        board = microfab_boards.load("pico")
        mc = {"machine": "knitter", "pins": PINS, "model": model or "kh910"}
        install_firmware(root, board, mc)
        self.w = w = World(root)
        w.modules["vclock"].reset()
        w.modules["vasyncio"].reset()
        self.hw = w.modules["vboard"].Board(board, mc, sim or {}, seed=1)
        self.car = self.hw.models["carriage"]
        m = w.modules["vmachine"]
        el = w.get("fab.drivers.endline")
        self.enc = w.get("fab.drivers.encoder").Encoder(m.Pin(10), m.Pin(11), m.Pin(12))
        geo = self.car.geo
        self.ends = el.EndLines(self.enc, el.EndLine(m.ADC(m.Pin(26)), geo["left"], LO, HI),
                                el.EndLine(m.ADC(m.Pin(27)), geo["right"], LO, HI),
                                belt_period=16 if geo["solenoids"] == 16 else 0,
                                only_k=model == "kh270")
        self.enc.hook = self.ends.update
        self.clock = w.modules["vclock"]

    def go(self, needle, speed=300.0):
        self.clock.run_to(self.clock.now + int(self.car.move_to(needle, speed) * 1e6) + 1000)

    def pos(self):
        return self.enc.edge()


def test_the_count_follows_the_carriage_both_ways_without_drift(tmp_path):
    bed = Bed(tmp_path, sim={"start": 10.0})
    enc = bed.enc
    bed.go(50.3)
    assert (enc.pos, enc.dir) == (40, 1)  # one count per needle: floor(50.3) - floor(10.0)
    bed.go(20.6)
    assert (enc.pos, enc.dir) == (10, -1)
    for _ in range(20):  # a carriage rocking on an A edge counts up and down, never drifts
        bed.go(21.1)
        bed.go(20.9)
    assert enc.pos == 10
    bed.go(10.2)
    assert enc.pos == 0
    assert enc.counts == 40 + 30 + 20 * 2 + 10


@pytest.mark.parametrize("magnet", [0.55, 1.0, 1.4])
def test_the_sensors_zero_the_position_at_the_magnets_centre_whatever_its_strength(tmp_path,
                                                                                  magnet):
    bed = Bed(tmp_path, sim={"magnet": magnet, "start": -30.0})
    assert not bed.ends.known
    bed.go(60.0)
    assert bed.ends.known and bed.pos() == 60 and bed.ends.carriage == 1  # K
    bed.enc.pos += 7  # counts gained somehow: the right sensor puts it right
    bed.go(230.0)
    assert bed.pos() == 230 and bed.ends.error == -7 and bed.ends.worst == -7
    bed.go(-30.0)
    assert bed.pos() == -30 and bed.ends.zeroes == 4


@pytest.mark.parametrize("belt,shift", [("regular", 0), ("shifted", 8)])
def test_the_belt_phase_is_read_at_either_sensor(tmp_path, belt, shift):
    bed = Bed(tmp_path, sim={"belt": belt, "start": -30.0})
    bed.go(100.0)
    assert (bed.ends.shift, bed.ends.belt) == (shift, 1 if shift == 0 else 2)
    bed.ends.shift = 99
    bed.go(230.0)
    assert bed.ends.shift == shift
    bed.ends.shift = 99
    bed.go(100.0)  # right to left past the right sensor
    assert bed.ends.shift == shift


@pytest.mark.parametrize("kind,code", [("K", 1), ("L", 2), ("G", 3)])
def test_the_carriage_type_is_told_by_the_poles(tmp_path, kind, code):
    bed = Bed(tmp_path, sim={"carriage": kind, "start": -30.0})
    bed.go(100.0)
    assert bed.ends.carriage == code and bed.pos() == 100
    assert bed.ends.changed  # to be reported once, settled
    bed.go(230.0)
    bed.go(-30.0)
    assert bed.ends.carriage == code and bed.pos() == -30 and bed.ends.worst == 0


def test_kh270_two_magnets_make_one_k_carriage(tmp_path):
    bed = Bed(tmp_path, model="kh270", sim={"start": -30.0})
    bed.go(50.0)
    assert bed.ends.carriage == 1 and bed.pos() == 50 and bed.ends.belt == 0
    bed.go(141.0)
    bed.go(-30.0)
    assert bed.pos() == -30 and bed.ends.worst == 0


# --- the real MicroPython VM ---

_PROBE = r'''
import micropython
from fab.drivers.encoder import Encoder
from fab.drivers.endline import EndLine, EndLines
from fab.drivers.selector import Selector
from fab.drivers.solenoid_bank import SolenoidBank


class Pin:
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, v):
        self.v = v
        self.h = None

    def value(self):
        return self.v

    def irq(self, handler=None, trigger=0):
        self.h = handler


class Adc:
    def __init__(self):
        self.v = 25000

    def read_u16(self):
        return self.v


class Port:
    def __init__(self):
        self.w = 0
        self.writes = 0

    def write(self, w):
        self.w = w
        self.writes += 1


class Flag:
    def set(self):
        pass


def probe():
    # One pass of a KH-910's K carriage from past the left sensor to past the right one, with
    # every A edge's IRQ run under heap_lock(): any allocation raises MemoryError.
    a, b, c = Pin(1), Pin(1), Pin(0)
    la, ra = Adc(), Adc()
    port = Port()
    enc = Encoder(a, b, c)
    ends = EndLines(enc, EndLine(la, 0, 12900, 38700), EndLine(ra, 199, 12900, 38700))
    bank = SolenoidBank(port, 16, 1000, 50)
    sel = Selector(enc, ends, bank, 200, 16, 0, (0, 16, 4, 0), 4, 2, Flag())
    enc.hook = sel.count
    sel.start(80, 119, 1, 1)
    sel.load(bytes([0x55] * 25))
    calls = 0
    used = 0
    r = -28 * 4
    while r < 227 * 4:
        r += 1
        la.v = 50000 if abs(r) <= 8 else 25000
        ra.v = 50000 if abs(r - 199 * 4) <= 8 else 25000
        q = r % 4
        c.v = 1 if ((r + 2) // 4) % 16 < 8 else 0
        b.v = 1 if q == 3 or q == 0 else 0
        lvl = 1 if q < 2 else 0
        if lvl != a.v:
            a.v = lvl
            micropython.heap_lock()
            try:
                a.h(a)
            finally:
                micropython.heap_unlock()
            calls += 1
            used |= port.w
    return {"calls": calls, "known": ends.known, "rows": sel.head, "writes": port.writes,
            "used": used, "end": port.w}
'''


@pytest.fixture(scope="module")
def vm():
    from microfab_sim.wasm_board import WasmBoard

    b = WasmBoard(board="pico", machine={"machine": "knitter", "pins": PINS}, seed=1)
    yield b
    b.close()


def test_the_irq_path_allocates_nothing_in_micropython(vm):
    vm.eval("setattr(hw, 'probe_g', {})")
    r = vm.eval("exec(%r, hw.probe_g) or hw.probe_g['probe']()" % _PROBE)
    # 2 A edges a needle over 255 needles; the sensors, the selection of a row of every other
    # needle and the row's end all ran with the heap locked
    assert r == {"calls": 510, "known": True, "rows": 1, "writes": r["writes"], "used": 0x5555,
                 "end": 0}
    assert r["writes"] > 20


def test_the_knitter_knits_in_micropython_within_its_heap(vm):
    pytest.importorskip("PIL")
    from microfab.patterns import knit

    rows = ["0" * 80 + "".join("1" if (n + i) % 3 == 0 else "0" for n in range(40)) + "0" * 80
            for i in range(4)]
    assert vm.send("knit_start", first=80, last=119, rows=4)["ok"]
    vm.advance(0.05)
    for ev in vm.lines("need_row"):
        assert vm.send("row", index=ev["row"], bits=knit.row_hex(rows[ev["row"]]))["ok"]
    for i in range(4):
        vm.advance(vm.eval("hw.models['carriage'].push(1, 300.0)") + 0.1)
        assert vm.eval("hw.models['carriage'].passes[-1].row()") == rows[i]
    st = vm.send("status")
    assert st["rows_knitted"] == 4 and st["knit"] == "idle" and st["solenoids"] == 0
    m = vm.mem()
    # 48 KB is the spine's target (axis); the knitter, with its row buffer, selector and
    # solenoid bank, is allowed 56 KB of the Pico's 192 (measured: about 51 KB).
    assert m["firmware_now"] <= 56 * 1024 and not m["heap_grew"], m["firmware_now"]
