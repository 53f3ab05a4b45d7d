"""The friendly REPL's line editor, as shared/readline/readline.c has it: cursor keys and
Emacs keys, history, auto-indent, and tab completion of names (py/repl.c). A part of repl.Repl.
"""
from __future__ import annotations

import os

from .repl_port import CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E

HISTORY = 8  # MICROPY_READLINE_HISTORY_SIZE
_AI_ON, _AI_JUST_ADDED = 1, 2  # readline.c auto-indent state


class LineEditor:
    """Needs from repl.Repl: tx(), _getc(), _print(), globals and world (for completion), and
    history and _ai (its state, kept per session)."""

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
