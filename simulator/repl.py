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

The parts: repl_port.py is the line to the host, Ctrl-C and the clock while the REPL serves;
repl_raw.py the raw REPL and raw-paste; repl_friendly.py the friendly REPL, paste mode, input()
and help(), with repl_readline.py its line editor. This file runs code as pyexec.c does and is
the main loop.
"""
from __future__ import annotations

import errno
import sys
import time
import traceback
import types

from .repl_friendly import FriendlyRepl
from .repl_port import FORCED_EXIT, FRIENDLY, RAW, REENUMERATE_S, ReplPort, Shutdown
from .repl_raw import RawRepl


# --- what MicroPython prints ---


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


# --- the REPL ---


class Repl(ReplPort, RawRepl, FriendlyRepl):
    def __init__(self, board, port, realtime: bool = False):
        super().__init__(board, port, realtime)
        b = self.world.builtins
        b["input"] = self._input
        b["help"] = self._help
        self.world.modules["vfs"] = _vfs_module(self.world)

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
