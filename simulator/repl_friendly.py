"""The friendly REPL: banner, `>>> ` and `... ` prompts with continuation lines, paste mode
(Ctrl-E), and the board's input() and help() (shared/runtime/pyexec.c pyexec_friendly_repl and
py/repl.c). A part of repl.Repl; its line editing is repl_readline.py.
"""
from __future__ import annotations

from .repl_port import CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, FORCED_EXIT, RAW
from .repl_readline import LineEditor

MP_VERSION = "1.27.0"
BUILD_DATE = "2025-12-09"  # the simulated firmware's build date, shown in the banner
_COMPOUND = ("if", "while", "for", "try", "with", "def", "class", "async")


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


class FriendlyRepl(LineEditor):
    """Needs from repl.Repl: tx(), _getc(), _print(), _flush_out(), _exec(), board, world and
    the mode."""

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
