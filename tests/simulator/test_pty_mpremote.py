"""The simulated board as a serial device: `python -m microfab_sim.serial_port` on a pty, driven
by unmodified mpremote and by pyserial, as a maker would drive a board on /dev/ttyACM0."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import microfab_boards

serial = pytest.importorskip("serial")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")

BANNER = b"MicroPython v1.27.0 on "


class Sim:
    def __init__(self, proc, port, link, flash, errlog):
        self.proc, self.port, self.link, self.flash, self.errlog = proc, port, link, flash, errlog

    def mpremote(self, *args, timeout=30, ok=True):
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", str(self.link), *args],
                           capture_output=True, text=True, timeout=timeout)
        if ok:
            assert r.returncode == 0, "mpremote %s: %s%s%s" % (args, r.stdout, r.stderr,
                                                               self.errlog.read_text())
        return r


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    flash, link, errlog = base / "flash", base / "ttySIM", base / "stderr.txt"
    with errlog.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "microfab_sim.serial_port",
                                 "--board", "pico", "--machine", "axis", "--seed", "1",
                                 "--root", str(flash), "--link", str(link)],
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("port: "), first + errlog.read_text()
        port = first.split(": ", 1)[1].strip()
        assert Path(link).resolve() == Path(port).resolve()
        yield Sim(proc, port, link, flash, errlog)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
    assert rc == 0, errlog.read_text()
    assert not link.exists() and not link.is_symlink()  # the link goes with the server


def read_until(s, marker: bytes, timeout=5.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        buf += s.read(s.in_waiting or 1)
    assert marker in buf, "no %r in %r" % (marker, buf[-400:])
    return buf


def request(port, cmd, args=None, rid=1, timeout=10.0) -> dict:
    """One JSON-line request; resent every half second, as bytes sent while the board resets
    are lost."""
    msg = {"id": rid, "cmd": cmd}
    if args:
        msg["args"] = args
    with serial.Serial(port, 115200, timeout=0.05) as s:
        end = time.monotonic() + timeout
        buf = b""
        resend = 0.0
        while time.monotonic() < end:
            if time.monotonic() >= resend:
                s.write(b"\n" + json.dumps(msg).encode() + b"\n")
                resend = time.monotonic() + 0.5
            buf += s.read(s.in_waiting or 1)
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"{"):
                    item = json.loads(line)
                    if item.get("id") == rid and "ok" in item:
                        return item
    raise AssertionError("no reply to %s" % cmd)


def test_firmware_answers_json_lines_on_the_port(sim):
    reply = request(sim.port, "hello")
    assert reply["ok"] and reply["board"] == "pico" and reply["machine"] == "axis"
    assert reply["micropython"] == "1.27.0" and reply["reset_cause"] == "power-on"


def test_ctrl_c_stops_the_firmware_in_a_safe_state_and_ctrl_d_restarts_it(sim):
    assert request(sim.port, "enable", {"on": True}, rid=2)["enabled"] is True
    with serial.Serial(sim.port, 115200, timeout=0.05) as s:
        s.write(b"\x03")
        out = read_until(s, b">>> ")
        assert b'File "main.py", line 4, in <module>' in out and b"KeyboardInterrupt: \r\n" in out
        assert BANNER in out and b"; Raspberry Pi Pico (RP2040) with RP2040\r\n" in out
        # The stepper driver's enable pin is back at its safe level (1: A4988/TMC2209 off).
        s.write(b"import machine\r")
        read_until(s, b">>> ")
        s.write(b"machine.Pin(4).value()\r")
        assert read_until(s, b">>> ").endswith(b"machine.Pin(4).value()\r\n1\r\n>>> ")
        s.write(b"\x04")  # soft reboot from the friendly REPL runs main.py again
        read_until(s, b"MPY: soft reboot\r\n")
    reply = request(sim.port, "hello", rid=3)
    assert reply["reset_cause"] == "soft" and reply["state"] == "ready"


def test_raw_repl_and_ctrl_c_of_code_that_never_sleeps(sim):
    with serial.Serial(sim.port, 115200, timeout=0.05) as s:
        s.write(b"\r\x03\x03\r\x01")
        read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"print('a', 6 * 7)\x04")
        assert read_until(s, b"\x04>") == b"OKa 42\r\n\x04\x04>"
        s.write(b"n = 0\nwhile True:\n n += 1\n\x04")
        read_until(s, b"OK")
        time.sleep(0.2)
        s.write(b"\x03")
        out = read_until(s, b"\x04>")
        assert out.startswith(b"\x04Traceback") and b"KeyboardInterrupt: \r\n\x04>" in out
        s.write(b"1/0\x04")
        out = read_until(s, b"\x04>")
        assert out == (b'OK\x04Traceback (most recent call last):\r\n  File "<stdin>", line 1, '
                       b"in <module>\r\nZeroDivisionError: division by zero\r\n\x04>")
        s.write(b"\x02")
        read_until(s, b">>> ")


def test_exec_eval_and_run(sim, tmp_path):
    assert sim.mpremote("exec", "print(1 + 2)").stdout == "3\n"
    assert sim.mpremote("eval", "[x * x for x in range(4)]").stdout == "[0, 1, 4, 9]\n"
    script = tmp_path / "blink.py"
    # More than two raw-paste windows (2 x 128 bytes), so mpremote waits for the board's \x01.
    script.write_text(
        "# blink the LED and time it on the board's clock\n"
        "import time\nimport machine\nimport os\n\n"
        "led = machine.Pin(25, machine.Pin.OUT)\nt0 = time.ticks_ms()\n"
        "for i in range(3):\n    led.toggle()\n    time.sleep_ms(500)\n"
        "    print('led', led.value())\n"
        "time.sleep(1)\n"
        "print('slept', time.ticks_diff(time.ticks_ms(), t0), 'ms')\n"
        "print('flash', sorted(os.listdir('/')))\n"
        "print('cwd', os.getcwd(), 'platform', __import__('sys').platform)\n")
    assert len(script.read_bytes()) > 256
    out = sim.mpremote("run", str(script)).stdout
    assert out.splitlines() == ["led 1", "led 0", "led 1", "slept 2500 ms",
                                "flash ['boot.py', 'config', 'fab', 'main.py']",
                                "cwd / platform rp2"]
    err = sim.mpremote("exec", "import nosuchmodule", ok=False)
    assert err.returncode == 1 and "ImportError: no module named 'nosuchmodule'" in err.stdout


def test_fs_ls_cat_and_df(sim):
    ls = sim.mpremote("fs", "ls").stdout.splitlines()
    assert ls[0] == "ls :"
    assert "           0 fab/" in ls and "           0 config/" in ls
    assert any(line.endswith(" main.py") for line in ls)
    cat = sim.mpremote("fs", "cat", ":config/board.json").stdout
    assert json.loads(cat) == microfab_boards.load("pico")
    df = sim.mpremote("df").stdout.splitlines()
    assert df[0].split() == ["filesystem", "size", "used", "avail", "use%", "mounted", "on"]
    fs, size, used, avail, pct, mount = df[1].split()
    assert mount == "/" and int(size) == int(used) + int(avail) == 352 * 4096


def test_fs_cp_both_ways_mkdir_and_rm(sim, tmp_path):
    data = bytes(range(256)) * 3 + "naïve ✓ text\n".encode() + b"\r\n\x04\x03 end"
    src, back = tmp_path / "blob.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    sim.mpremote("fs", "mkdir", ":data", "+", "fs", "cp", str(src), ":data/blob.bin")
    assert (sim.flash / "data" / "blob.bin").read_bytes() == data  # on the board's flash
    sim.mpremote("fs", "cp", ":data/blob.bin", str(back))
    assert back.read_bytes() == data
    assert "%12d blob.bin" % len(data) in sim.mpremote("fs", "ls", ":data").stdout
    sim.mpremote("fs", "rm", ":data/blob.bin", "+", "fs", "rmdir", ":data")
    assert not (sim.flash / "data").exists()
    missing = sim.mpremote("fs", "cat", ":data/blob.bin", ok=False)
    assert missing.returncode == 1 and "No such file or directory" in missing.stderr


def test_soft_reset_clears_the_interpreter(sim):
    out = sim.mpremote("exec", "marker = 1", "exec", "print('marker' in globals())",
                       "soft-reset", "exec", "print('marker' in globals())").stdout
    assert out.splitlines() == ["True", "False"]


def test_reset_reboots_the_board_and_keeps_the_port(sim):
    sim.mpremote("reset")
    assert Path(sim.port).exists()
    reply = request(sim.port, "hello", rid=4)
    assert reply["ok"] and reply["reset_cause"] == "hard" and reply["state"] == "ready"
    # `resume`: no soft reset first, so the board still says why it last started
    cause = sim.mpremote("resume", "eval", "__import__('machine').reset_cause()").stdout
    assert cause == "2\n"  # machine.HARD_RESET
