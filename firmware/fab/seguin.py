# The Séguin dobby protocol, loom side: what a Séguin electronic dobby says on its serial line, so
# that a weaving server written for that loom (seguin_loom_server, or base_loom_server's example
# loom) drives a microfab loom unchanged. Pure: no hardware, no asyncio; the loom machine feeds it
# bytes, moves the shafts it is told to, and sends what take() returns.
#
# The conversation (as base_loom_server's mock looms play it):
#   loom   -> "=s5"           the weaver pressed the pedal: a pick is wanted (status bit 2)
#   server -> "=C0000002a"    the shafts to raise for that pick, one bit per shaft (bit 0 = shaft 1)
#   loom   -> "=s0"           shafts moving (status bit 0, "shed fully closed", clear)
#   loom   -> "=c0000002a"    the shafts that are up
#   loom   -> "=s1"           done
#   server -> "=U1" / "=U0"   unweave / weave; the loom answers "=u1" / "=u0" (also when its own
#                             direction switch changes)
#   server -> "=Q"            status please: "=s<hex>"; bit 0 shed closed, bit 2 pick wanted,
#                             bit 3 error
#   server -> "=V"            version: "=v001"
# A "=C" that comes when no pick is wanted is ignored, as the Séguin loom does. Séguin lines end
# in CR. The EXAMPLE dialect is base_loom_server's simplified loom: no "=", lines end in LF, and
# motion and pick requests are separate reports ("m1"/"m0", "p"); a leading "=" is accepted.
from micropython import const

SEGUIN = const(0)
EXAMPLE = const(1)
DIALECTS = ("seguin", "example")
MAX_LINE = const(40)
_SHED_CLOSED = const(1)
_PICK_WANTED = const(4)
_ERROR = const(8)
_HEX = "0123456789abcdefABCDEF"


class SeguinError(ValueError):
    pass


def parse(text):
    """(command letter, data) of one line, with or without the leading '='."""
    if text[:1] == "=":
        text = text[1:]
    if not text or not ("A" <= text[0] <= "Z" or "a" <= text[0] <= "z"):
        raise SeguinError("not a dobby command: %r; expected '=' and a letter, like =C0000002a"
                          % text)
    return text[0], text[1:]


def shaft_word(data, shafts):
    """The shaft bitmask of a C command's hex data (at most 8 digits for 32 shafts)."""
    if not 1 <= len(data) <= 8:
        raise SeguinError("C needs 1 to 8 hex digits (one bit per shaft), got %r" % data)
    for ch in data:
        if ch not in _HEX:
            raise SeguinError("C needs hex digits (one bit per shaft), got %r" % data)
    word = int(data, 16)
    if word >> shafts:
        raise SeguinError("C%s raises shafts above %d, the shafts this loom has" % (data, shafts))
    return word


class Dobby:
    """The loom's half of the protocol: parse what the server sends, report what the loom does.

    feed() and line() return the actions for the loom ("lift", mask) or ("direction", forward);
    everything to send waits in take(), terminated as the dialect wants."""

    def __init__(self, shafts, dialect=SEGUIN):
        self.shafts = shafts
        self.dialect = dialect
        self.eq = "=" if dialect == SEGUIN else ""
        self.end = "\r" if dialect == SEGUIN else "\n"
        self.forward = True
        self.wanted = False
        self.moving = False
        self.error = False
        self.mask = 0  # the shafts reported up
        self.errors = 0
        self.last_error = ""
        self.out = []
        self._buf = bytearray(MAX_LINE)  # one line assembled here, allocated once
        self._n = 0
        self._skip = False

    # --- reports ---

    def _say(self, text):
        self.out.append(self.eq + text + self.end)

    def take(self):
        """Everything to send since the last call, as one str."""
        text = "".join(self.out)
        self.out = []
        return text

    def hello(self):
        """What the loom reports when the line comes up."""
        self.report_direction()
        if self.dialect == SEGUIN:
            self.report_status()
        else:
            self._say("c%08x" % self.mask)
            self._say("m%d" % self.moving)

    def status_word(self):
        w = 0 if self.moving else _SHED_CLOSED
        if self.wanted:
            w |= _PICK_WANTED
        if self.error:
            w |= _ERROR
        return w

    def report_status(self):
        self._say("s%x" % self.status_word())

    def report_direction(self):
        self._say("u%d" % (0 if self.forward else 1))

    def want_pick(self):
        """The weaver pressed the pedal: ask the server for the next pick."""
        self.wanted = True
        if self.dialect == SEGUIN:
            self.report_status()
        else:
            self._say("p")

    def set_direction(self, forward):
        """The loom's own direction switch (or its JSON command) changed the direction."""
        self.forward = forward
        self.report_direction()

    def moved(self):
        """The shafts started to move."""
        self.moving = True
        if self.dialect == SEGUIN:
            self.report_status()
        else:
            self._say("m1")

    def settled(self, mask):
        """The shafts are where they go: report which are up."""
        self.moving = False
        self.mask = mask
        self._say("c%08x" % mask)
        if self.dialect == SEGUIN:
            self.report_status()
        else:
            self._say("m0")

    def set_error(self, on):
        if on != self.error:
            self.error = on
            if self.dialect == SEGUIN:
                self.report_status()

    # --- commands ---

    def feed(self, data):
        """Bytes from the line; returns the actions of the complete lines among them."""
        acts = []
        for b in data:
            if b == 13 or b == 10:  # CR or LF ends a line: servers of both dialects are served
                if self._skip:
                    self._fail("line too long: a dobby command has at most %d characters"
                               % MAX_LINE)
                elif self._n:
                    a = self.line(bytes(self._buf[:self._n]).decode())
                    if a is not None:
                        acts.append(a)
                self._n = 0
                self._skip = False
            elif self._n < MAX_LINE:
                self._buf[self._n] = b
                self._n += 1
            else:
                self._skip = True
        return acts

    def _fail(self, text):
        self.errors += 1
        self.last_error = text

    def line(self, text):
        """One command line (no terminator); returns an action or None. Bad lines are counted and
        ignored, as the loom does: the protocol has no error reply."""
        text = text.strip()
        if not text:
            return None
        try:
            c, data = parse(text)
            if c == "C":
                word = shaft_word(data, self.shafts)
                if not self.wanted:
                    return None  # the Séguin loom ignores a pick it did not ask for
                self.wanted = False
                return ("lift", word)
            if c == "U":
                if data not in ("0", "1"):
                    raise SeguinError("U needs 0 (weave) or 1 (unweave), got %r" % data)
                self.forward = data == "0"
                self.report_direction()
                return ("direction", self.forward)
            if c == "Q":
                self.report_status()
                return None
            if c == "V":
                self._say("v001")
                return None
            raise SeguinError("unknown dobby command %r; expected C, U, Q or V" % text)
        except SeguinError as e:
            self._fail(str(e))
            return None
