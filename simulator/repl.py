"""A simulated board's MicroPython REPL on its USB serial, byte for byte as a board does it.

    board = SimBoard(board="pico", machine="axis", boot=False)
    Repl(board, serial_port.SerialEnd(fd)).run()   # power on, boot.py, main.py, REPL, ...

This is MicroPython's own main loop (ports/rp2/main.c) and shared/runtime/pyexec.c, readline.c
and py/repl.c, written again over the simulator: boot.py and main.py on every reset, the friendly
REPL (banner, `>>> `, line editing, history, auto-indent, paste mode), the raw REPL and its
raw-paste mode with flow control (what mpremote and pyboard.py use), Ctrl-C, Ctrl-D soft reboot
(`MPY: soft reboot`), and machine.reset(). Code runs in the board's World: firmware modules,
the virtual `machine`, `open`/`os` confined to the flash folder.

Time. The firmware's asyncio.run() blocks here as it does on a board: the event loop runs until
Ctrl-C or a reset, and the REPL comes after it. While it runs, virtual time goes as fast as the
firmware allows, or in step with the wall clock with `realtime`. At the REPL the board waits for
a person, so its clock follows the wall clock there (a Timer's callbacks and a watchdog fire at
their real pace). time.sleep() in REPL code advances the virtual clock (at once, or in step
with the wall clock with `realtime`).

Ctrl-C raises KeyboardInterrupt in the code that runs, as the board's USB driver does: at the next
sleep or scheduler step, or, for code that never sleeps, from a 50 ms timer signal (in the main
thread only) when the interpreter is in board code rather than in the simulator's hardware.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import time
import traceback
import types

MP_VERSION = "1.27.0"
BUILD_DATE = "2025-12-09"  # the simulated firmware's build date, shown in the banner
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
FRIENDLY, RAW = "friendly", "raw"
FORCED_EXIT = 0x100  # pyexec.h PYEXEC_FORCED_EXIT: leave the REPL for a soft reboot
PASTE_WINDOW = 128  # MICROPY_REPL_STDIN_BUFFER_MAX (256) / 2, as pyexec.c advertises
HISTORY = 8  # MICROPY_READLINE_HISTORY_SIZE
_AI_ON, _AI_JUST_ADDED = 1, 2  # readline.c auto-indent state
_COMPOUND = ("if", "while", "for", "try", "with", "def", "class", "async")
OUT_LIMIT = 4096  # bytes queued for the host before a writer waits, like a full USB CDC buffer
TX_TIMEOUT_S = 0.5
# After a hard reset, bytes from the host are lost for this long (or until it closes the port),
# as while a USB device re-enumerates: mpremote's Ctrl-B after `reset` must not reach main.py.
REENUMERATE_S = 0.2
TICK_S = 0.05  # the Ctrl-C timer signal's period
IO_EVERY_S = 0.002  # the fast event loop looks at the port this often (wall time)


class Shutdown(BaseException):
    """The server is stopping: unwinds through the board's code and the REPL."""


# --- what MicroPython prints ---


def continue_with_input(text: str) -> bool:
    """py/repl.c mp_repl_continue_with_input(): does this REPL input need more lines?"""
    if not text:
        return False
    word = text.split(None, 1)[0] if text.strip() else ""
    head = ""
    for ch in word:
        if not (ch.isalnum() or ch == "_"):
            break
        head += ch
    compound = text[0] == "@" or (head in _COMPOUND and text.startswith(head))
    paren = brack = brace = 0
    quote = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            triple = text[i:i + 3] == ch * 3
            if triple and quote in (None, ch * 3):
                quote = None if quote else ch * 3
                i += 2
            elif quote in (None, ch):
                quote = None if quote else ch
        elif ch == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
            if quote:
                i += 1
        elif quote is None:
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren -= 1
            elif ch == "[":
                brack += 1
            elif ch == "]":
                brack -= 1
            elif ch == "{":
                brace += 1
            elif ch == "}":
                brace -= 1
        i += 1
    if quote is not None and len(quote) == 3:
        return True
    if (paren > 0 or brack > 0 or brace > 0) and quote is None:
        return True
    if text[-1] == "\\":
        return True
    return compound and text[-1] != "\n"


def exception_text(exc: BaseException, board_file) -> str:
    """A traceback as mp_obj_print_exception() prints it: board frames only, MicroPython names."""
    lines = []
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if board_file(f.filename)]
    if isinstance(exc, SyntaxError) and exc.filename and board_file(exc.filename):
        lines.append('  File "%s", line %s' % (board_file(exc.filename), exc.lineno or 1))
    else:
        for f in frames:
            name = board_file(f.filename)
            lines.append('  File "%s", line %s, in %s' % (name, f.lineno, f.name))
    head = ["Traceback (most recent call last):"] if lines else []
    return "\n".join(head + lines + [_exc_line(exc)]) + "\n"


def _exc_line(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        name = "OSError"
        code = exc.errno if exc.errno is not None else (exc.args[0] if exc.args else None)
        if isinstance(code, int):
            return "OSError: [Errno %d] %s" % (code, errno.errorcode.get(code, str(code)))
    elif isinstance(exc, IndentationError):
        return "IndentationError: %s" % (exc.msg or "unexpected indent")
    elif isinstance(exc, SyntaxError):
        return "SyntaxError: invalid syntax"
    elif isinstance(exc, ModuleNotFoundError):
        return "ImportError: no module named '%s'" % exc.name
    else:
        name = type(exc).__name__
    if not exc.args:
        return name + ": "
    return "%s: %s" % (name, exc.args[0] if len(exc.args) == 1 else str(exc.args))


def _vfs_module(world):
    """`vfs` (MicroPython 1.23+): the flash is one LittleFS mounted at /."""
    m = types.ModuleType("vfs")

    class VfsLfs2:
        def __repr__(self):
            return "<VfsLfs2>"

        def statvfs(self, path="/"):
            return world.modules["os"].statvfs(path)

    flash = VfsLfs2()

    def mount(*args, **kw):
        if not args:
            return [(flash, "/")]
        raise OSError(errno.EPERM, "EPERM")

    def umount(path):
        raise OSError(errno.EINVAL, "EINVAL")

    m.VfsLfs2, m.mount, m.umount = VfsLfs2, mount, umount
    return m


_HELP = """Welcome to MicroPython!

For online help please visit https://micropython.org/help/.

This is a simulated %s (%s) by microfab: `machine` is wired to models of the
machine's mechanics, time is virtual, and the filesystem is a folder on the host.

Useful control commands:
  CTRL-C -- interrupt a running program
  CTRL-D -- on a blank line, do a soft reset of the board
  CTRL-E -- on a blank line, enter paste mode

For further help on a specific object, type help(obj)
For a list of available modules, type help('modules')
"""


# --- the REPL ---


class Repl:
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
        self.history: list[str] = []
        self.intr = False  # code is running: Ctrl-C raises KeyboardInterrupt
        self.kbd = False  # a Ctrl-C waits to be raised
        self._held = b""  # what the host sent after that Ctrl-C
        self.stop = False
        self._deaf_until = 0.0
        self._deaf_hups = 0
        self._ai = 0
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
        b = self.world.builtins
        b["input"] = self._input
        b["help"] = self._help
        self.world.modules["vfs"] = _vfs_module(self.world)

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

    # --- running code (pyexec.c parse_compile_execute) ---

    def _exec(self, src, filename: str, kind: str = "exec", eof: bool = False) -> int:
        ret = 0
        self._unread()
        self._flush_out()
        hook = sys.displayhook
        try:
            try:
                if isinstance(src, (bytes, bytearray)):
                    src = bytes(src).decode("utf-8", "replace")
                if not isinstance(src, types.CodeType):
                    src = compile(src.replace("\r\n", "\n").replace("\r", "\n"), filename, kind,
                                  dont_inherit=True)
                if kind == "exec":
                    self.globals["__file__"] = filename
                self.intr = True
                self._release()
                self._arm()
                if kind == "single":
                    sys.displayhook = self._display
                exec(src, self.globals)
            finally:
                sys.displayhook = hook
                self._disarm()
                self.intr = False
                self._release()
            if eof:
                self.tx(b"\x04")
        except Shutdown:
            raise
        except self.machine.ResetRequest as r:
            if r.cause != self.machine.SOFT_RESET:
                raise  # a hard reset: nothing more is printed
            if eof:  # machine.soft_reset() is SystemExit on a board
                self.tx(b"\x04")
            ret = FORCED_EXIT
        except SystemExit:
            if eof:
                self.tx(b"\x04")
            ret = FORCED_EXIT
        except BaseException as e:
            if eof:
                self.tx(b"\x04")
            self._print(exception_text(e, self.board_file))
        if eof:
            self.tx(b"\x04")
        return ret

    def _display(self, value):
        if value is not None:
            self.stdio.write(repr(value) + "\n")

    def _exec_file(self, name: str) -> int:
        path = self.world.root / name
        if not path.is_file():
            return 0
        try:
            code = compile(path.read_text(), str(path), "exec", dont_inherit=True)
        except SyntaxError as e:
            self._print(exception_text(e, self.board_file))
            return 0
        return self._exec(code, name)

    # --- the main loop (ports/rp2/main.c) ---

    def run(self):
        """Power on and serve the board until Shutdown."""
        try:
            while True:
                try:
                    self._session()
                except self.machine.ResetRequest as r:
                    self._hard_reset(r.cause)
        except Shutdown:
            pass
        finally:
            self._disarm()
            try:
                self._flush_out()
                self.port.exchange(0)
            except (OSError, Shutdown):
                pass

    def shutdown(self):
        self.stop = True

    def _session(self):
        """From a (soft) reset to the next soft reset."""
        self.globals = {"__name__": "__main__", "__builtins__": self.world.builtins}
        self.history = []
        self._sync()
        ret = self._exec_file("boot.py")
        if not ret & FORCED_EXIT and self.mode == FRIENDLY:
            try:
                ret = self._exec_file("main.py")
            finally:
                self._stop_tasks()
        if not ret & FORCED_EXIT:
            while True:
                r = self._raw_repl() if self.mode == RAW else self._friendly_repl()
                if r:
                    break
        self._print("MPY: soft reboot\n")
        self._reboot(self.machine.SOFT_RESET)

    def _reboot(self, cause):
        self._flush_out()
        self._unread()
        pending = bytes(self.stdio.inb) if cause == self.machine.SOFT_RESET else b""
        self.board.hw.power_cycle(cause)
        self.world.drop_firmware()
        self.world.modules["vfs"] = _vfs_module(self.world)
        self.world.cwd = "/"
        self.board.boots += 1
        self.stdio.inb.extend(pending)  # a soft reset keeps what the host already sent

    def _hard_reset(self, cause):
        if cause == self.machine.SOFT_RESET:  # machine.soft_reset() from the firmware's loop
            self._print("MPY: soft reboot\n")
            self._reboot(cause)
            return
        self._reboot(cause)
        self.mode = FRIENDLY
        # USB drops off the bus and comes back: what the host sends meanwhile is lost.
        self._deaf_until = time.monotonic() + REENUMERATE_S
        self._deaf_hups = self.port.hups

    # --- raw REPL ---

    def _raw_repl(self) -> int:
        self.tx("raw REPL; CTRL-B to exit\r\n")
        while True:
            line = bytearray()
            self.tx(">")
            while True:
                c = self._getc()
                if c == CTRL_A:
                    if len(line) == 2 and line[0] == CTRL_E:
                        ret = self._raw_paste(line[1])
                        if ret & FORCED_EXIT:
                            return ret
                        line = bytearray()
                        self.tx(">")
                        continue
                    self.tx("raw REPL; CTRL-B to exit\r\n")
                    line = bytearray()
                    self.tx(">")
                elif c == CTRL_B:
                    self.tx("\r\n")
                    self.mode = FRIENDLY
                    return 0
                elif c == CTRL_C:
                    line = bytearray()
                elif c == CTRL_D:
                    break
                else:
                    line.append(c)
            self.tx("OK")
            if not line:
                self.tx("\r\n")
                return FORCED_EXIT
            ret = self._exec(bytes(line), "<stdin>", "exec", eof=True)
            if ret & FORCED_EXIT:
                return ret

    def _raw_paste(self, c: int) -> int:
        if c != ord("A"):
            self.tx(b"R\x00")
            return 0
        self.tx(b"R\x01")
        self.tx(bytes([PASTE_WINDOW & 0xFF, PASTE_WINDOW >> 8, 0x01]))
        remain = PASTE_WINDOW
        src = bytearray()
        while True:
            b = self._getc()
            if b in (CTRL_C, CTRL_D):
                self.tx(b"\x04")  # end of data, acknowledged
                if b == CTRL_C:  # KeyboardInterrupt while reading: no traceback frames
                    self.tx(b"\x04")
                    self._print("KeyboardInterrupt: \n")
                    self.tx(b"\x04")
                    return 0
                break
            remain -= 1
            if remain == 0:
                self.tx(b"\x01")  # another window is free
                remain = PASTE_WINDOW
            src.append(b)
        return self._exec(bytes(src), "<stdin>", "exec", eof=True)

    # --- friendly REPL ---

    def _banner(self):
        cfg = self.board.board_cfg
        self.tx("MicroPython v%s on %s; %s with %s\r\n" % (MP_VERSION, BUILD_DATE, cfg["title"],
                                                         cfg["chip"].upper()))
        self.tx('Type "help()" for more information.\r\n')

    def _friendly_repl(self) -> int:
        self._banner()
        while True:
            line, r = self._readline("", ">>> ")
            kind = "single"
            if r == CTRL_A:
                self.tx("\r\n")
                self.mode = RAW
                return 0
            if r == CTRL_B:
                self.tx("\r\n")
                self._banner()
                continue
            if r == CTRL_C:
                self.tx("\r\n")
                continue
            if r == CTRL_D:
                self.tx("\r\n")
                return FORCED_EXIT
            if r == CTRL_E:
                line = self._paste_mode()
                if line is None:
                    continue
                kind = "exec"
            elif not line:
                continue
            else:
                cancelled = False
                while continue_with_input(line):
                    line += "\n"
                    line, r = self._readline(line, "... ")
                    if r == CTRL_C:
                        self.tx("\r\n")
                        cancelled = True
                        break
                    if r == CTRL_D:
                        break
                if cancelled:
                    continue
            ret = self._exec(line + ("\n" if kind == "single" else ""), "<stdin>", kind)
            if ret & FORCED_EXIT:
                return ret

    def _paste_mode(self):
        self.tx("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        buf = bytearray()
        while True:
            c = self._getc()
            if c == CTRL_C:
                self.tx("\r\n")
                return None
            if c == CTRL_D:
                self.tx("\r\n")
                return buf.decode("utf-8", "replace")
            buf.append(c)
            self.tx("\r\n=== " if c == 13 else bytes([c]))

    def _input(self, prompt=""):
        """input(): readline with echo, as the board's builtin does."""
        self._flush_out()
        line, r = self._readline("", str(prompt))
        if r == CTRL_C:
            raise KeyboardInterrupt()
        if r == CTRL_D:
            raise EOFError()
        return line

    def _help(self, obj=None):
        cfg = self.board.board_cfg
        if obj is None:
            self._print(_HELP % (cfg["title"], cfg["chip"]))
        elif obj == "modules":
            names = sorted(set(self.world.modules) | {"machine", "time", "asyncio", "os", "sys",
                                                       "gc", "micropython", "json", "vfs"})
            self._print("\n".join(names) + "\n")
        else:
            out = ["object %r is of type %s" % (obj, type(obj).__name__)]
            for name in dir(obj):
                if not name.startswith("_"):
                    out.append("  %s -- %r" % (name, getattr(obj, name, None)))
            self._print("\n".join(out) + "\n")

    # --- readline.c ---

    def _move_back(self, n: int):
        if n <= 0:
            return
        self.tx("\b" * n if n <= 4 else "\x1b[%dD" % n)

    def _auto_indent(self, line: str, cur: int):
        if not self._ai & _AI_ON:
            return line, cur
        if len(line) > 1 and line[-1] == "\n":
            i = len(line) - 1
            while i > 0 and line[i - 1] != "\n":
                i -= 1
            j = i
            while j < len(line) and line[j] == " ":
                j += 1
            if i > 0 and j + 1 == len(line):
                k = i - 1
                while k > 0:
                    if line[k - 1] == "\n":
                        return line, cur  # the last two lines are blank: no indent
                    if line[k - 1] != " ":
                        break
                    k -= 1
            n = (j - i) // 4 + (1 if line[-2] == ":" else 0)
            if n > 0:
                line += "    " * n
                self.tx("    " * n)
                cur += 4 * n
                self._ai |= _AI_JUST_ADDED
        return line, cur

    def _push_history(self, text: str):
        if text and (not self.history or self.history[0] != text):
            self.history.insert(0, text)
            del self.history[HISTORY:]

    def _readline(self, line: str, prompt: str):
        """readline(): edit the last line of `line`. Returns (line, 0) on Enter, or (line, c)
        for a control key c that the caller handles."""
        orig = len(line)
        cur = orig
        hist = -1
        esc, esc_digit = 0, ""
        self.tx(prompt)
        if not line:
            self._ai = _AI_ON
        line, cur = self._auto_indent(line, cur)
        while True:
            c = self._getc()
            last_len = len(line)
            back, redraw, fwd = 0, False, 0
            home = end = delete = up = down = False
            if esc == 0:
                if CTRL_A <= c <= CTRL_E and len(line) == orig:
                    return line, c
                if c == CTRL_A:
                    home = True
                elif c == CTRL_B:
                    if cur > orig:
                        back = 1
                elif c == CTRL_C:
                    return line, c
                elif c == CTRL_D:
                    delete = True
                elif c == CTRL_E:
                    end = True
                elif c == 6:  # Ctrl-F
                    if cur < len(line):
                        fwd = 1
                elif c == 11:  # Ctrl-K: kill to end of line
                    line = line[:cur]
                    redraw = True
                elif c == 14:  # Ctrl-N
                    down = True
                elif c == 16:  # Ctrl-P
                    up = True
                elif c == 21:  # Ctrl-U: kill to start of line
                    back = cur - orig
                    line = line[:orig] + line[cur:]
                    redraw = True
                elif c == 13:
                    self.tx("\r\n")
                    self._push_history(line[orig:])
                    return line, 0
                elif c == 27:
                    esc = 1
                elif c in (8, 127):
                    if cur > orig:
                        seg = line[orig:cur]
                        nspace = 4 if len(seg) >= 4 and seg.strip(" ") == "" else 1
                        line = line[:cur - nspace] + line[cur:]
                        back, redraw = nspace, True
                elif self._ai & _AI_JUST_ADDED and c in (9, 32):
                    self._ai = 0  # a tab keeps the indent, a space takes 3 of its 4 spaces back
                    if c == 32:
                        back = 3
                        line = line[:-3]
                elif c == 9:
                    done = self._complete(line, orig, cur, prompt)
                    if done is None:
                        redraw = True
                    elif done:
                        line = line[:cur] + done + line[cur:]
                        redraw, fwd = True, len(done)
                elif 32 <= c <= 126:
                    line = line[:cur] + chr(c) + line[cur:]
                    redraw, fwd = True, 1
            elif esc == 1:
                esc = {ord("["): 2, ord("O"): 4}.get(c, 0)
            elif esc == 2:
                esc = 0
                if ord("0") <= c <= ord("9"):
                    esc, esc_digit = 3, chr(c)
                elif c == ord("A"):
                    up = True
                elif c == ord("B"):
                    down = True
                elif c == ord("C"):
                    if cur < len(line):
                        fwd = 1
                elif c == ord("D"):
                    if cur > orig:
                        back = 1
                elif c == ord("H"):
                    home = True
                elif c == ord("F"):
                    end = True
            elif esc == 3:
                esc = 0
                if c == ord("~"):
                    home = esc_digit in "17"
                    end = esc_digit in "48"
                    delete = esc_digit == "3"
            else:
                esc = 0
                home = c == ord("H")
                end = c == ord("F")
            if home:
                back = cur - orig
            if end:
                fwd = len(line) - cur
            if delete and cur < len(line):
                line = line[:cur] + line[cur + 1:]
                redraw = True
            if up and hist + 1 < HISTORY and hist + 1 < len(self.history):
                hist += 1
                line = line[:orig] + self.history[hist]
                back, redraw, fwd = cur - orig, True, len(line) - orig
            if down and hist >= 0:
                hist -= 1
                line = line[:orig] + (self.history[hist] if hist >= 0 else "")
                back, redraw, fwd = cur - orig, True, len(line) - orig
            # redraw, as readline.c does it
            if back > 0:
                self._move_back(back)
                cur -= back
            if redraw:
                if len(line) < last_len:
                    self.tx("\x1b[K")
                self.tx(line[cur:])
                self._move_back(len(line) - (cur + fwd))
                cur += fwd
            elif fwd > 0:
                self.tx(line[cur:cur + fwd])
                cur += fwd
            self._ai &= ~_AI_JUST_ADDED

    def _complete(self, line: str, orig: int, cur: int, prompt: str):
        """Tab: 4 spaces after whitespace, else complete a name (py/repl.c). Returns the text to
        insert, "" for nothing, None when several names were listed."""
        if line and cur > 0 and line[cur - 1].isspace():
            return "    "
        text = line[orig:cur]
        s = len(text)
        while s > 0 and (text[s - 1].isalnum() or text[s - 1] in "_."):
            s -= 1
        words = text[s:].split(".")
        names: list
        if len(words) == 1:
            names = list(self.globals) + list(self.world.builtins)
        else:
            obj = self.globals.get(words[0], self.world.builtins.get(words[0]))
            if obj is None:
                return ""
            for w in words[1:-1]:
                obj = getattr(obj, w, None)
                if obj is None:
                    return ""
            names = dir(obj)
        prefix = words[-1]
        found = sorted({n for n in names if n.startswith(prefix) and (prefix or n[0] != "_")})
        if not found:
            if s == 0 and "import ".startswith(prefix) and prefix:
                return "import "[len(prefix):]
            return ""
        common = os.path.commonprefix(found)
        if len(found) == 1 or len(common) > len(prefix):
            return common[len(prefix):]
        out, width = "", 64
        for name in found:
            gap = (width + 15) // 16 * 16 - width
            if gap < 2:
                gap += 16
            if width + gap + len(name) <= 64:
                out += " " * gap + name
                width += gap + len(name)
            else:
                out += "\n" + name
                width = len(name)
        self._print(out + "\n")
        self.tx(prompt + line[orig:cur])
        return None
