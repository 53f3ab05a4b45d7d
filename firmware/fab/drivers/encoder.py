# Carriage encoder of a Brother electronic knitting machine (KH-910/930/940/950i, KH-270), as the
# AYAB interface board reads it: two quadrature channels A and B, one full A/B cycle per needle
# (4.5 mm on a standard-gauge bed, 9 mm on the KH-270), and a third channel C, the belt phase,
# which is only meaningful at a known position (see EndLines.belt in fab.drivers.endline).
#
# The count follows AYAB's encoders.cpp: one count per needle, on the A edge that happens while
# B is high. Moving right, A rises with B high (+1); moving left, A falls with B high (-1). The
# edges with B low only tell the direction. The count is therefore the floor of the carriage's
# position in needles, the same whichever way it got there, and a carriage that rocks on one edge
# counts up and down without drifting.
#
# The IRQ handler does not allocate: small ints only, and the hook is a bound method stored once.


class Encoder:
    def __init__(self, a, b, c=None):
        self.a = a
        self.b = b
        self.c = c
        self.pos = 0  # floor of the carriage position, in needles
        self.dir = 0  # +1 moving right, -1 moving left, 0 not moved since boot
        self.counts = 0  # every count, for diagnostics
        self.hook = None  # fn() called after every count, in IRQ context; must not allocate
        self._a = a.value()
        a.irq(handler=self._edge, trigger=a.IRQ_RISING | a.IRQ_FALLING)

    def edge(self):
        """The needle position of the A edge last counted: pos moving right, pos + 1 moving left.

        Exact at the moment of the count, whichever the direction, so position-dependent work
        (needle selection, the belt phase) can be done in the count's own IRQ."""
        return self.pos + 1 if self.dir < 0 else self.pos

    def phase(self):
        """Belt phase C now: 0 or 1 (0 when C is not wired)."""
        return self.c.value() if self.c is not None else 0

    def _edge(self, pin):
        a = self.a.value()
        if a == self._a:
            return  # two edges merged by a late soft IRQ: they cancel, nothing to count
        self._a = a
        if self.b.value():
            if a:
                self.dir = 1
                self.pos += 1
            else:
                self.dir = -1
                self.pos -= 1
            self.counts += 1
            h = self.hook
            if h is not None:
                h()
        else:
            self.dir = -1 if a else 1
