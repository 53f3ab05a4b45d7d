"""One board on a serial port: raw-REPL operations on mpremote's SerialTransport, and the
firmware's JSON-line protocol. Device errors are translated here, once, into DeviceError
messages that say what to do."""
from __future__ import annotations

import ast
import errno
import json
import os
import time

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

RAW_TRIES = (0.0, 0.2, 0.5, 1.0, 2.0)  # backoff between attempts to reach the raw REPL


class DeviceError(Exception):
    """Something a maker can fix; the message says what."""


class BoardError(DeviceError):
    """Code run on the board raised; `trace` is the board's traceback."""

    def __init__(self, message: str, trace: str = ""):
        super().__init__(message)
        self.trace = trace


def explain_open_error(port: str, e: BaseException) -> DeviceError:
    text = str(e)
    code = getattr(e, "errno", None)
    if code == errno.EACCES or "Permission denied" in text:
        return DeviceError("permission denied on %s: add yourself to the 'dialout' group "
                           "(sudo usermod -aG dialout $USER), then log out and back in" % port)
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return DeviceError("%s is busy: another program has it open (a serial monitor, Thonny, "
                           "another mpremote or microfab?); close it and try again" % port)
    if code == errno.ENOENT or "No such file" in text or "could not open port" in text:
        return DeviceError("%s does not exist (any more): is the board plugged in? "
                           "`microfab boards` lists what is" % port)
    return DeviceError("cannot open %s: %s" % (port, text))


class Device:
    def __init__(self, port: str, baud: int = 115200):
        self.port = port
        self.baud = baud
        self.t: SerialTransport | None = None
        self.events: list[dict] = []  # lines without an id that the firmware sent
        self._next_id = 0

    # --- connection ---

    def connect(self, wait: float = 0.0) -> "Device":
        deadline = time.monotonic() + wait
        while True:
            try:
                self.t = SerialTransport(self.port, baudrate=self.baud)
                # Reads return after 50 ms of silence, so every wait in here can time out.
                self.t.serial.timeout = 0.05
                return self
            except (TransportError, serial.SerialException, OSError) as e:
                cause = e.__cause__ or e.__context__ or e
                if time.monotonic() >= deadline:
                    raise explain_open_error(self.port, cause if isinstance(cause, OSError) else e) from None
                time.sleep(0.2)

    def close(self):
        if self.t is not None:
            try:
                self.t.close()
            except (OSError, serial.SerialException):
                pass
            self.t = None

    def __enter__(self):
        if self.t is None:
            self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def serial(self):
        return self.t.serial

    def _reopen(self, wait: float = 10.0):
        # Native-USB boards (ESP32-S2/S3, RP2040) drop off the bus on reset and come back.
        self.close()
        deadline = time.monotonic() + wait
        while not os.path.exists(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.connect(wait=max(0.0, deadline - time.monotonic()))

    # --- the raw REPL ---

    def raw(self):
        """Into the raw REPL, interrupting whatever runs; retried with backoff."""
        if self.t is None:
            self.connect()
        if self.t.in_raw_repl:
            return
        seen = b""
        for i, delay in enumerate(RAW_TRIES):
            time.sleep(delay)
            try:
                s = self.t.serial
                if i == 0:
                    s.write(b"\r\x03\x03\r\x01")  # the quick way, right for an idle board
                else:
                    # Spaced Ctrl-Cs: the first may land inside a read that swallows it.
                    s.write(b"\r\x03")
                    time.sleep(0.05)
                    s.write(b"\x03")
                    time.sleep(0.05)
                    while s.in_waiting:
                        seen = (seen + s.read(s.in_waiting))[-400:]
                    s.write(b"\r\x01")
                # Up to the banner only: exec_raw_no_follow() reads the '>' prompt itself.
                data = self.t.read_until(1, b"raw REPL; CTRL-B to exit\r\n", timeout=1 + i,
                                         timeout_overall=2 + 2 * i)
                seen = (seen + data)[-400:]
                if data.endswith(b"raw REPL; CTRL-B to exit\r\n"):
                    self.t.in_raw_repl = True
                    return
            except (OSError, serial.SerialException):
                self._reopen()
        if b"waiting for download" in seen:
            raise DeviceError("the board on %s is in its ROM bootloader (download mode): press "
                              "reset without holding BOOT, or flash it with `microfab flash`"
                              % self.port)
        if not seen.strip():
            raise DeviceError("no answer from %s: the board may not run MicroPython yet "
                              "(`microfab flash`), or it is hung (press reset)" % self.port)
        raise DeviceError("could not reach the MicroPython raw REPL on %s after %d tries; the "
                          "board said: %r. Press reset and try again" % (self.port, len(RAW_TRIES),
                                                                         seen[-120:]))

    def exec(self, code: str, timeout: float = 10.0) -> str:
        self.raw()
        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except TransportError as e:
            raise DeviceError("lost the board on %s while running code: %s" % (self.port, e)) from None
        except (OSError, serial.SerialException) as e:
            raise explain_open_error(self.port, e) from None
        if err:
            trace = err.decode(errors="replace")
            last = trace.strip().splitlines()[-1] if trace.strip() else "error"
            raise BoardError("the board raised %s" % last, trace)
        return out.decode(errors="replace")

    def eval(self, expr: str):
        return ast.literal_eval(self.exec("print(repr(%s))" % expr).strip())

    def eval_script(self, code: str):
        """Run a script whose last line prints repr(result); returns the result."""
        out = self.exec(code).strip().splitlines()
        return ast.literal_eval(out[-1]) if out else None

    def info(self) -> dict:
        """What the board runs: MicroPython version, .mpy ABI, platform, heap, our firmware."""
        return self.eval(
            "(lambda s, gc: (gc.collect(), {'version': '%d.%d.%d' % s.implementation.version[:3],"
            " 'mpy': getattr(s.implementation, '_mpy', None), 'platform': s.platform,"
            " 'machine': getattr(s.implementation, '_machine', ''), 'mem_free': gc.mem_free()})[1])"
            "(__import__('sys'), __import__('gc'))")

    def reset(self, wait: float = 10.0):
        """machine.reset(), then find the board again (its port may vanish and come back)."""
        self.raw()
        try:
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")
        except (TransportError, OSError, serial.SerialException):
            pass
        time.sleep(0.3)
        self._reopen(wait)

    def start(self):
        """Leave the REPL and run main.py with a soft reset, as a power-up would."""
        if self.t is None:
            self.connect()
        s = self.t.serial
        if not self.t.in_raw_repl:
            self.raw()
        # main.py runs after a soft reset only from the friendly REPL, not from the raw one.
        s.write(b"\r\x02")
        self.t.read_until(1, b">>> ", timeout=2)
        s.write(b"\x04")
        self.t.read_until(1, b"soft reboot\r\n", timeout=3)
        self.t.in_raw_repl = False

    # --- the firmware's JSON-line protocol ---

    def request(self, cmd: str, args: dict | None = None, timeout: float = 10.0,
                resend: float | None = None) -> dict:
        """One command and its reply. resend: repeat an idempotent request (hello, status) every
        so many seconds, for a board that is still booting and drops what it hears."""
        if self.t is None:
            self.connect()
        if self.t.in_raw_repl:
            self.start()
        self._next_id += 1
        rid = self._next_id
        msg = {"id": rid, "cmd": cmd}
        if args:
            msg["args"] = args
        s = self.t.serial
        line = (json.dumps(msg) + "\n").encode()
        s.write(line)
        deadline = time.monotonic() + timeout
        again = time.monotonic() + resend if resend else None
        buf = b""
        while time.monotonic() < deadline:
            if again is not None and time.monotonic() >= again:
                s.write(b"\n" + line)
                again = time.monotonic() + resend
            chunk = s.read(s.in_waiting or 1)
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                item = self._parse(line)
                if item is None:
                    continue
                if item.get("id") == rid and "ok" in item:
                    return item
                if "id" not in item:
                    self.events.append(item)
        raise DeviceError("no reply to %s from %s within %.0f s: is the microfab firmware "
                          "running? (`microfab deploy`)" % (cmd, self.port, timeout))

    def lines(self, seconds: float):
        """The firmware's event and telemetry lines for `seconds` (for monitor)."""
        s = self.t.serial
        deadline = time.monotonic() + seconds
        buf = b""
        while time.monotonic() < deadline:
            chunk = s.read(s.in_waiting or 1)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                item = self._parse(line)
                if item is not None:
                    yield item

    @staticmethod
    def _parse(line: bytes):
        line = line.strip()
        if not line.startswith(b"{"):
            return None
        try:
            item = json.loads(line)
        except ValueError:
            return None
        return item if isinstance(item, dict) else None

