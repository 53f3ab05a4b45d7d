"""The Séguin dobby protocol (fab.seguin), loom side: the exchanges base_loom_server's mock looms
play (seguin_loom_server's MockLoom: "=C", "=U", "=Q", "=V" in, "=c", "=u", "=s" out, CR-ended;
base_loom_server's ExampleMockLoom: the same without "=", "m" and "p" reports, LF-ended), then a
weaving server driving the simulated loom over its UART and over USB."""
from pathlib import Path

import pytest

import microfab_boards
from microfab_sim.board import SimBoard, install_firmware
from microfab_sim.world import World

WORDS = (0x0, 0x1, 0x5, 0xFE, 0xFF19, 0xFFFFFFFE, 0xFFFFFFFF)  # the mock looms' own test words


@pytest.fixture
def seguin(tmp_path):
    install_firmware(tmp_path, microfab_boards.load("pico"), {"machine": "axis"})
    w = World(tmp_path)
    return w.get("fab.seguin")


def lines(dobby):
    text = dobby.take()
    return [x for x in text.replace("\r", "\n").split("\n") if x]


def test_seguin_loom_greets_and_answers_status_version_and_direction(seguin):
    d = seguin.Dobby(16)
    d.hello()
    assert d.take() == "=u0\r=s1\r"  # what the Séguin mock loom says first, CR-terminated
    assert d.feed(b"=Q\r") == [] and lines(d) == ["=s1"]
    assert d.feed(b"=V\r") == [] and lines(d) == ["=v001"]
    for direction in (0, 1, 0, 1):
        assert d.feed(b"=U%d\r" % direction) == [("direction", direction == 0)]
        assert lines(d) == ["=u%d" % direction]


def test_seguin_pick_exchange(seguin):
    d = seguin.Dobby(32)
    for word in WORDS:
        d.want_pick()  # the weaver pressed the pedal
        assert lines(d) == ["=s5"]
        acts = d.feed(b"=C%08x\r" % word)
        assert acts == [("lift", word)]
        d.moved()
        d.settled(word)
        assert lines(d) == ["=s0", "=c%08x" % word, "=s1"]
    assert d.errors == 0


def test_a_pick_that_was_not_asked_for_is_ignored(seguin):
    d = seguin.Dobby(8)
    assert d.feed(b"=C00000003\r") == [] and lines(d) == []
    d.want_pick()
    d.take()
    assert d.feed(b"=C00000003\r=C00000005\r") == [("lift", 3)]  # one pick per press


def test_example_dialect_of_base_loom_server(seguin):
    d = seguin.Dobby(32, seguin.EXAMPLE)
    d.hello()
    assert d.take() == "u0\nc00000000\nm0\n"
    for word in WORDS:
        d.want_pick()
        assert lines(d) == ["p"]
        assert d.feed(b"C%08x\n" % word) == [("lift", word)]
        d.moved()
        d.settled(word)
        assert lines(d) == ["m1", "c%08x" % word, "m0"]
    assert d.feed(b"U1\n") == [("direction", False)] and lines(d) == ["u1"]


def test_error_bit_is_reported(seguin):
    d = seguin.Dobby(8)
    d.set_error(True)
    assert lines(d) == ["=s9"]
    d.want_pick()
    assert lines(d) == ["=sd"]


@pytest.mark.parametrize("line, words", [
    (b"=C1ff\r", "raises shafts above 8"),
    (b"=Cxyz\r", "needs hex digits"),
    (b"=C\r", "needs 1 to 8 hex digits"),
    (b"=C123456789\r", "needs 1 to 8 hex digits"),
    (b"=U2\r", "U needs 0 (weave) or 1 (unweave)"),
    (b"=X1\r", "unknown dobby command"),
    (b"=\r", "not a dobby command"),
    (b"=" + b"C" * 50 + b"\r", "line too long"),
])
def test_bad_lines_are_counted_and_ignored(seguin, line, words):
    d = seguin.Dobby(8)
    d.want_pick()
    d.take()
    assert d.feed(line) == []
    assert d.errors == 1 and words in d.last_error, d.last_error
    assert d.feed(b"=C00000001\r") == [("lift", 1)]  # and the next good line is served


def test_lines_split_across_reads(seguin):
    d = seguin.Dobby(8)
    d.want_pick()
    d.take()
    assert d.feed(b"=C0") == [] and d.feed(b"000002") == [] and d.feed(b"a\r\n") == [("lift", 42)]


# --- a weaving server driving the simulated loom ---

PLAN = [0b00010011, 0b00100110, 0b01001100, 0b10001001, 0b11111111, 0]
LOOM = {"machine": "loom", "shafts": 8, "shaft_pins": [10, 11, 12, 13, 14, 15, 22, 26],
        "pins": {"pedal": 6}}


class Server:
    """What seguin_loom_server / base_loom_server do with the loom's reports: on a pick request,
    send the next pick's shafts."""

    def __init__(self, read, write, dialect="seguin"):
        self.read, self.write = read, write
        self.eq, self.end = ("=", "\r") if dialect == "seguin" else ("", "\n")
        self.next = 0
        self.heard = []

    def poll(self):
        for line in self.read().replace("\r", "\n").split("\n"):
            if not line:
                continue
            self.heard.append(line)
            body = line.lstrip("=")
            wanted = body == "p" or (body[0] == "s" and int(body[1:], 16) & 4)
            if wanted:
                self.write("%sC%08x%s" % (self.eq, PLAN[self.next % len(PLAN)], self.end))
                self.next += 1


def raised_mask(model):
    return sum(1 << (s - 1) for s in model.raised())


def test_weaving_server_on_the_uart(make_board):
    b = make_board(board="pico", machine=dict(LOOM, seguin="uart"))
    port = b.hw.uart(1)  # the board file's uart1: GP8/GP9

    def read():
        text = bytes(port.tx).decode()
        port.tx = bytearray()
        return text

    srv = Server(read, lambda text: port.rx.extend(text.encode()))
    srv.poll()
    assert srv.heard == ["=u0", "=s1"]
    model = b.hw.models["loom"]
    for i, mask in enumerate(PLAN):
        model.press_pedal(hold_ms=150)
        for _ in range(10):  # the loom asks, the server answers, the shafts move
            b.advance(0.05)
            srv.poll()
        assert raised_mask(model) == mask, "pick %d" % i
    assert srv.heard[-4:] == ["=s5", "=s0", "=c%08x" % PLAN[-1], "=s1"]
    assert "Séguin weaving server" in b.send("pattern", name="x", shafts=8, picks=2)["error"]
    st = b.send("status")  # the JSON link stays on USB
    assert st["seguin"] == "uart" and st["seguin_errors"] == 0 and st["presses"] == len(PLAN)
    port.rx.extend(b"=U1\r")
    b.advance(0.1)
    assert srv.poll() is None and srv.heard[-1] == "=u1"
    assert b.send("status")["direction"] == "unweave"


def _hooked(runtime_py):
    """fab/runtime.py with the machine-link hook proposed for the lead (a no-op once merged)."""
    s = runtime_py.read_text()
    if "MACHINE_LINK" in s:
        return
    rep = [("_RESTART_MS = const(200)\n", "_RESTART_MS = const(200)\nMACHINE_LINK = True\n"),
           ("        self.faults = 0\n", "        self.faults = 0\n        self.own_link = None\n"),
           ("    def emit(self, obj):\n        self.link.send(obj)",
            "    def emit(self, obj):\n        if self.own_link is None:\n            self.link.send(obj)"),
           ("            self.machine.commands(t)\n",
            "            self.machine.commands(t)\n"
            "            self.own_link = getattr(self.machine, \"usb_link\", None)\n"),
           ('    asyncio.create_task(rt.guard("link", rt.link.run, True))',
            "    own = rt.own_link\n    if own is not None:\n"
            '        asyncio.create_task(rt.guard("link", lambda: own(rt.con), True))\n'
            "    else:\n"
            '        asyncio.create_task(rt.guard("link", rt.link.run, True))')]
    for a, b in rep:
        assert s.count(a) == 1, a
        s = s.replace(a, b)
    runtime_py.write_text(s)


def test_weaving_server_on_usb_with_the_machine_link_hook(tmp_path):
    cfg = dict(LOOM, seguin="usb", seguin_dialect="example")
    board = microfab_boards.load("pico")
    install_firmware(tmp_path, board, cfg)
    _hooked(tmp_path / "fab" / "runtime.py")
    b = SimBoard(board=board, machine=cfg, root=tmp_path, install=False, seed=1)
    try:
        seen = [0]

        def read():
            new = [x for x in b.log[seen[0]:] if isinstance(x, str)]
            seen[0] = len(b.log)
            assert all(isinstance(x, str) for x in b.log), "a JSON line went to the server"
            return "\n".join(new) + "\n"

        srv = Server(read, b.write, "example")
        srv.poll()
        assert srv.heard == ["u0", "c00000000", "m0"]  # ExampleMockLoom's greeting
        model = b.hw.models["loom"]
        for i, mask in enumerate(PLAN):
            model.press_pedal(hold_ms=150)
            for _ in range(10):
                b.advance(0.05)
                srv.poll()
            assert raised_mask(model) == mask, "pick %d" % i
        assert srv.heard[-4:] == ["p", "m1", "c%08x" % PLAN[-1], "m0"]
        b.advance(30)  # telemetry would be due every 10 s: none of it reaches the server
        srv.poll()
    finally:
        b.close()


def test_usb_mode_needs_the_hook(make_board):
    runtime_py = Path(__file__).resolve().parents[2] / "firmware" / "fab" / "runtime.py"
    if "MACHINE_LINK" in runtime_py.read_text():
        pytest.skip("the runtime hands the USB link to machines")
    b = make_board(board="pico", machine=dict(LOOM, seguin="usb"))
    err = b.lines("config_error")
    assert err and "seguin 'usb' needs a firmware whose runtime hands the USB link" in err[0]["error"]
