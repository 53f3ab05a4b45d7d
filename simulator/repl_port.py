"""The REPL's footing: the board's USB serial line to the host, Ctrl-C on it, and the board's
clock while the REPL serves (see repl.py for how the parts fit).

Output goes to the host as a board's USB CDC driver sends it (cooked newlines, a writer that
waits on a slow host), input comes byte by byte with Ctrl-C turned into KeyboardInterrupt, and
time.sleep() and asyncio.run() go through here so that virtual time runs fast or follows the
wall clock while the host is served.
"""
from __future__ import annotations

import os
import signal
import threading
import time

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
FRIENDLY, RAW = "friendly", "raw"
FORCED_EXIT = 0x100  # pyexec.h PYEXEC_FORCED_EXIT: leave the REPL for a soft reboot
OUT_LIMIT = 4096  # bytes queued for the host before a writer waits, like a full USB CDC buffer
TX_TIMEOUT_S = 0.5
# After a hard reset, bytes from the host are lost for this long (or until it closes the port),
# as while a USB device re-enumerates: mpremote's Ctrl-B after `reset` must not reach main.py.
REENUMERATE_S = 0.2
TICK_S = 0.05  # the Ctrl-C timer signal's period
IO_EVERY_S = 0.002  # the fast event loop looks at the port this often (wall time)


class Shutdown(BaseException):
    """The server is stopping: unwinds through the board's code and the REPL."""


class ReplPort:
    """The state of a board's REPL and its line to the host; the REPL's parts (repl_raw.py,
    repl_friendly.py, repl_readline.py) and repl.Repl build on it."""

    def __init__(self, board, port, realtime: bool = False):
        # port: the line to the host (serial_port.SerialEnd): send(bytes), exchange(timeout)
        # -> bytes received, .out (bytes queued), .open (a host has the port open), .hups
        self.board = board
        self.port = port
        self.realtime = realtime
        self.world = board.world
        m = self.world.modules
        self.clock, self.sched, self.machine = m["vclock"], m["vasyncio"], m["vmachine"]
        self.stdio = board.hw.stdio
        self.mode = FRIENDLY
        self.globals: dict = {}
        self.history: list[str] = []  # the line editor's (repl_readline.py), per session
        self.intr = False  # code is running: Ctrl-C raises KeyboardInterrupt
        self.kbd = False  # a Ctrl-C waits to be raised
        self._held = b""  # what the host sent after that Ctrl-C
        self.stop = False
        self._deaf_until = 0.0
        self._deaf_hups = 0
        self._ai = 0  # the line editor's auto-indent state
        self._rx = b""  # bytes taken from the board's stdin buffer, not yet read by the REPL
        self._last_io = 0.0
        self._w0, self._v0 = time.monotonic(), self.clock.now
        root = str(self.world.root)
        self._root = root + os.sep
        self._ticker = threading.current_thread() is threading.main_thread()
        self._old_alarm = None
        self._wire()

    # --- the simulator's hooks: I/O and time go through the REPL while it serves ---

    def _wire(self):
        clock, sched, stdio = self.clock, self.sched, self.stdio
        self._run_to = clock.run_to
        clock.sleep_us = lambda us: self._sleep_until(clock.now + int(us))
        clock.sleep_ms = lambda ms: self._sleep_until(clock.now + int(ms) * 1000)
        clock.sleep = lambda s: self._sleep_until(clock.now + int(s * 1000000))
        sched.run = self._asyncio_run
        sched.Loop.run_forever = lambda loop: self._asyncio_run(None)
        raw_write = stdio.write

        def write(s):
            n = raw_write(s)
            if len(stdio.out) >= 32:
                self._flush_out()
            return n

        stdio.write = write

    def board_file(self, filename: str):
        """The name MicroPython shows for a code file of the board, or None for the simulator's."""
        if filename == "<stdin>":
            return filename
        if filename.startswith(self._root):
            return filename[len(self._root):].replace(os.sep, "/")
        return None

    # --- output ---

    def _flush_out(self):
        text = self.stdio.take()
        if text:
            # mp_hal_stdout_tx_strn_cooked(): print() and sys.stdout send \r\n for \n
            self.port.send(text.replace("\n", "\r\n").encode("utf-8", "replace"))
        # A writer waits while the host reads slowly, and drops what does not fit once the host
        # has read nothing for TX_TIMEOUT_S (MICROPY_HW_USB_CDC_TX_TIMEOUT).
        since = time.monotonic()
        while self.port.open and len(self.port.out) > OUT_LIMIT:
            before = len(self.port.out)
            self._feed(self.port.exchange(0.05))
            if len(self.port.out) < before:
                since = time.monotonic()
            elif time.monotonic() - since > TX_TIMEOUT_S:
                del self.port.out[OUT_LIMIT:]

    def tx(self, data):
        """Raw bytes from the REPL itself, after whatever the code printed."""
        self._flush_out()
        self.port.send(data.encode() if isinstance(data, str) else data)

    def _print(self, text: str):
        self.stdio.write(text)
        self._flush_out()

    # --- input ---

    def _feed(self, data: bytes):
        if not data:
            return
        if time.monotonic() < self._deaf_until and self.port.hups == self._deaf_hups:
            return  # the board is re-enumerating after a reset: the host's bytes are lost
        if self.kbd:
            self._held += data  # behind a Ctrl-C: for whatever runs after the interrupt
            return
        if self.intr and CTRL_C in data:
            # The USB driver turns the interrupt character into KeyboardInterrupt; the bytes
            # after it wait in the buffer for whatever runs next (the REPL, mostly).
            i = data.index(CTRL_C)
            self.kbd = True
            self._held = data[i + 1:]
            data = data[:i]
        if data:
            self.stdio.feed(data)

    def _release(self):
        held, self._held = self._held, b""
        self.kbd = False
        if held:
            self.stdio.feed(held)

    def _service(self, timeout: float | None = 0.0) -> bool:
        self._flush_out()
        got = self.port.exchange(timeout)
        self._last_io = time.monotonic()
        self._feed(got)
        if self.stop:
            raise Shutdown()
        self._check_kbd()
        return bool(got)

    def _check_kbd(self):
        if self.kbd and self.intr:
            self._release()
            raise KeyboardInterrupt()

    def _getc(self) -> int:
        """mp_hal_stdin_rx_chr(): the next byte from the host; the board's clock runs meanwhile."""
        while not self._rx:
            self._check_kbd()
            if self.stdio.any():
                self._rx = self.stdio.read()
                break
            self._paced(self.clock.next_event(), self._run_to)
        c = self._rx[0]
        self._rx = self._rx[1:]
        return c

    def _unread(self):
        if self._rx:
            self.stdio.inb[0:0] = self._rx
            self._rx = b""

    # --- time ---

    def _sync(self):
        self._w0, self._v0 = time.monotonic(), self.clock.now

    def _wall(self) -> int:
        """The virtual time that the wall clock says it is."""
        return self._v0 + int((time.monotonic() - self._w0) * 1e6)

    def _paced(self, t, run) -> bool:
        """Let virtual time follow the wall clock up to t (None: no event to wait for), or until
        the host sends something. True when t was reached."""
        now = self.clock.now
        w = self._wall()
        if now > w or w - now > 1000000:
            self._sync()  # ran ahead (a fast stretch), or fell more than 1 s behind
        while True:
            w = self._wall()
            if t is not None and w >= t:
                run(t)
                return True
            if self._service(None if t is None else (t - w) / 1e6):
                w = self._wall()
                target = w if t is None else min(t, w)
                if target > self.clock.now:
                    run(target)
                return t is not None and target >= t

    def _sleep_until(self, t: int):
        # time.sleep*() in the board's code: the clock jumps (fast) or follows the wall clock.
        if self.realtime:
            while self.clock.now < t:
                self._paced(t, self._run_to)
                self._check_kbd()
        else:
            self._run_to(t)
            if time.monotonic() - self._last_io > IO_EVERY_S:
                self._service(0)
            self._check_kbd()

    def _asyncio_run(self, coro):
        """asyncio.run() as on a board: runs the loop until the main task ends (never, for a
        firmware), raising KeyboardInterrupt on Ctrl-C."""
        sched = self.sched
        task = sched.create_task(coro) if coro is not None else None
        while task is None or not task.done_:
            self._check_kbd()
            t = sched.next_deadline()
            if self.realtime:
                self._paced(t, sched.run_until)
            elif t is None:
                self._service(None)  # every task waits for the host
            else:
                if time.monotonic() - self._last_io > IO_EVERY_S:
                    self._service(0)
                    t = sched.next_deadline()
                if t is not None:
                    sched.run_until(t)
                self._flush_out()
        task.retrieved = True
        if task.exc is not None:
            raise task.exc
        return task.result

    def _stop_tasks(self):
        # The firmware's tasks stop with its event loop; nothing may wake them again.
        self.sched.reset()
        self.stdio.ready = self.sched.ThreadSafeFlag()

    # --- Ctrl-C for code that never sleeps ---

    def _arm(self):
        if self._ticker:
            self._old_alarm = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, TICK_S, TICK_S)

    def _disarm(self):
        if self._ticker and self._old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._old_alarm)
            self._old_alarm = None

    def _tick(self, signum, frame):
        if self.stop:
            raise Shutdown()
        # Only between two lines of the board's own code: the simulator's hardware (vm/) and
        # the REPL are the board's C code, which a KeyboardInterrupt never cuts in two.
        if not self.intr or frame is None or not self.board_file(frame.f_code.co_filename):
            return
        self._service(0)
