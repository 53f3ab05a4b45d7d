"""The firmware type-checks against MicroPython's API stubs for each port (see typecheck.py), and
the check really is against MicroPython: wrong calls into machine, time, rp2 and esp32 fail, a
CPython-only API fails, and MicroPython-only APIs pass.

The first run pip-installs the pinned stubs into .typings/<port> (PyPI needed, ~10 s); after that
each mypy run takes about a second from its cache there.
"""
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import typecheck  # noqa: E402

PORTS = list(typecheck.PORTS)


@pytest.mark.parametrize("port", PORTS)
def test_firmware_typechecks(port):
    rc, out = typecheck.run_mypy(port)
    if rc:
        pytest.fail("mypy with the %s stubs finds errors in firmware/ (run `python "
                    "tests/firmware/typecheck.py %s`):\n%s" % (port, port, out), pytrace=False)


@pytest.mark.parametrize("port", PORTS)
def test_an_error_in_the_firmware_is_reported(port, tmp_path):
    """The firmware run itself (its file list, its mypy.ini) reports a wrong call."""
    fw = tmp_path / "firmware"
    for rel in typecheck.device_files():
        (fw / rel).parent.mkdir(parents=True, exist_ok=True)
        (fw / rel).write_text((typecheck.FIRMWARE / rel).read_text())
    with (fw / "fab" / "hal_timer.py").open("a") as f:
        f.write("\n\ndef _broken():\n    return machine.Timer(0, mode=machine.Timer.PERIODIC, "
                "frq=10)\n")
    rc, out = typecheck.run_mypy(port, root=fw)
    assert rc == 1, out
    assert 'fab/hal_timer.py:' in out and '"frq"' in out and "[call-overload]" in out, out


def check(port, tmp_path, source):
    """mypy's (exit code, report) on one snippet module checked like the firmware."""
    (tmp_path / "snippet.py").write_text(textwrap.dedent(source))
    return typecheck.run_mypy(port, ["snippet.py"], root=tmp_path)


def errors(out):
    """{line: report line} of mypy's errors."""
    found = {}
    for line in out.splitlines():
        parts = line.split(":", 3)
        if len(parts) == 4 and parts[0] == "snippet.py" and parts[2].strip() == "error":
            found[int(parts[1])] = line
    return found


# Unannotated, like the firmware: --check-untyped-defs is what makes mypy look inside at all.
WRONG_COMMON = """\
    import machine
    import time


    def setup(n):
        led = machine.Pin(n, machine.Pin.OUT, valu=1)
        t0 = time.ticks_ms()
        return led, time.ticks_diff(t0)
"""


@pytest.mark.parametrize("port", PORTS)
def test_wrong_machine_and_time_calls_fail(port, tmp_path):
    rc, out = check(port, tmp_path, WRONG_COMMON)
    assert rc == 1, out
    found = errors(out)
    assert set(found) == {6, 8}, out
    assert 'Unexpected keyword argument "valu"' in found[6] and "[call-arg]" in found[6], out
    assert "ticks_diff" in found[8] and "[call-arg]" in found[8], out


@pytest.mark.parametrize("port", PORTS)
def test_micropython_apis_pass_and_cpython_only_fails(port, tmp_path):
    # ticks_ms/ticks_diff, asyncio.sleep_ms, sys.print_exception and const are MicroPython's:
    # CPython's typeshed knows none of them, so this passing shows the stubs shadow the stdlib.
    ok = """\
        import asyncio
        import io
        import sys
        import time

        from micropython import const

        _MS = const(5)


        async def tick(e):
            t0 = time.ticks_ms()
            await asyncio.sleep_ms(_MS)
            buf = io.StringIO()
            sys.print_exception(e, buf)
            return time.ticks_diff(time.ticks_ms(), t0), buf.getvalue()
    """
    rc, out = check(port, tmp_path, ok)
    assert rc == 0, out
    rc, out = check(port, tmp_path, "import time\n\n\ndef f():\n    return time.perf_counter()\n")
    assert rc == 1 and set(errors(out)) == {5}, out
    assert '"perf_counter"' in out and "[attr-defined]" in out, out


def test_rp2_calls_are_checked(tmp_path):
    rc, out = check("rp2", tmp_path, """\
        import rp2
        from machine import Pin


        def start(prog):
            sm = rp2.StateMachine(0, prog, freq="1MHz", set_base=Pin(2))
            sm.restart(True)
            return sm
    """)
    # (StateMachine takes **kwargs, so a misspelt keyword there is not caught; a wrong type is.)
    found = errors(out)
    assert rc == 1 and set(found) == {6, 7}, out
    assert '"freq"' in found[6] and "[arg-type]" in found[6], out
    assert '"restart"' in found[7] and "[call-arg]" in found[7], out


def test_esp32_calls_are_checked(tmp_path):
    rc, out = check("esp32", tmp_path, """\
        import esp32
        from machine import Pin


        def start():
            return esp32.RMT(0, pin=Pin(2), clock_div=80, idle_lvl=False)
    """)
    assert rc == 1 and set(errors(out)) == {6}, out
    assert '"idle_lvl"' in out, out


@pytest.mark.parametrize("port, other", [("rp2", "esp32"), ("esp32", "rp2")])
def test_a_port_has_only_its_own_chip_module(port, other, tmp_path):
    rc, out = check(port, tmp_path, "import %s\n" % other)
    assert rc == 1 and "[import-not-found]" in out, out
