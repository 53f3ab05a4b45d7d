"""The raw REPL and its raw-paste mode, with flow control: what mpremote and pyboard.py speak
(shared/runtime/pyexec.c pyexec_raw_repl). A part of repl.Repl."""
from __future__ import annotations

from .repl_port import CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, FORCED_EXIT, FRIENDLY

PASTE_WINDOW = 128  # MICROPY_REPL_STDIN_BUFFER_MAX (256) / 2, as pyexec.c advertises


class RawRepl:
    """Needs from repl.Repl: tx(), _getc(), _print(), _exec() and the mode."""

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
