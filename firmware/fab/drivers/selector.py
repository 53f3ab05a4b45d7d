# Needle selection of a Brother electronic knitting machine, run on every encoder count: which
# solenoids to energise for the carriage's position and direction, from the row being knitted,
# and when that row is done. See fab/machines/knitter.py for the geometry.
#
# The carriage selects needles at an activation point that trails its centre by `lead` needles.
# At every count the whole set of energised solenoids is worked out afresh from the needles
# between `hold` needles behind the activation point and `advance` needles ahead of it: a
# turn-back, a re-zero at a sensor, a new row or a solenoid the heat limit let go are then all
# right by the next count, with no incremental state to get wrong.
#
# IRQ side: count() and what it calls allocate nothing (small ints, a ring of preallocated rows,
# events into a preallocated list); the task reads the events with pop().
from micropython import const

SLOTS = const(4)  # rows held ahead of the carriage
_EVQ = const(8)
DONE = const(1)  # a row was crossed: (row index)
SHORT = const(2)  # the carriage turned back in the window: (row index, needles crossed)
NOROW = const(3)  # the window was crossed before the row arrived: (row index)
END = const(4)  # the last row of the job is done


class Selector:
    def __init__(self, enc, ends, bank, needles, nsol, out0, leads, advance, hold, wake):
        self.enc = enc
        self.ends = ends
        self.bank = bank
        self.nb = (needles + 7) // 8
        self.nsol = nsol
        self.out0 = out0  # solenoid 0's output bit
        self.leads = leads  # lead of the activation point, by carriage (0 = cannot select)
        self.adv = advance
        self.hold = hold
        self.wake = wake  # ThreadSafeFlag of the task that reads the events
        self.rows = bytearray(SLOTS * self.nb)
        self.active = False
        self.first = self.last = 0
        self.nrows = 1
        self.total = 0  # rows in the job, 0 = until stop
        self.head = 0  # rows knitted in this job (index of the row under the carriage)
        self.loaded = 0  # rows received
        self.cdir = 0  # direction of the crossing under way, 0 none
        self.cfar = 0  # farthest activation point reached in it
        self.cload = False  # its row was there when it began
        self.total_rows = self.total_stitches = 0  # since boot
        self.yarn = None  # the yarn-break switch (fab.drivers.yarn), when one is wired
        self.paused = False  # the yarn broke: nothing is selected until it is mended
        self._q = [0] * (3 * _EVQ)
        self._w = 0
        self._r = 0
        self.dropped = 0

    def start(self, first, last, rows, total):
        self.first, self.last, self.nrows, self.total = first, last, rows, total
        self.head = self.loaded = 0
        self.cdir = 0
        self.paused = False
        self.active = True

    def stop(self):
        self.active = False
        self.paused = False
        self.cdir = 0
        self.bank.release()

    def room(self):
        """Rows that may be sent now."""
        n = self.head + SLOTS - self.loaded
        if self.total:
            n = min(n, self.total - self.loaded)
        return n

    def load(self, data):
        off = (self.loaded % SLOTS) * self.nb
        self.rows[off:off + self.nb] = data
        self.loaded += 1  # after the copy: the IRQ may select from it at once

    # --- IRQ context ---

    def count(self):
        ends = self.ends
        if ends.update() and ends.changed:
            self.wake.set()  # the task reports the carriage
        if not self.active or self.paused:
            return
        y = self.yarn
        if y is not None and y.broken():
            y.halt()  # the watch task may be late: never select a needle past the debounce
            return
        if not ends.known:
            return
        lead = self.leads[ends.carriage]
        if not lead:
            self.bank.write(0)
            return
        e = self.enc.edge()
        d = self.enc.dir
        self._track(e, d, lead)
        w = 0
        if self.cdir == d and self.cload:
            act = e - lead * d
            buf = self.rows
            off = (self.head % SLOTS) * self.nb
            first = self.first
            last = self.last
            k = -self.hold
            while k <= self.adv:
                n = act + k * d
                if first <= n <= last and buf[off + (n >> 3)] >> (n & 7) & 1:
                    w |= 1 << ((n + ends.shift) % self.nsol + self.out0)
                k += 1
        self.bank.write(w)

    def _track(self, e, d, lead):
        # A row counts only when the activation point has crossed the whole window in one
        # direction: armed on the near side, done past the far side and the hold, dropped when
        # the carriage turns back out of the side it came in.
        c = self.cdir
        first = self.first
        last = self.last
        if c == 0:
            a = e - lead * d
            if (d > 0 and a < first) or (d < 0 and a > last):
                self.cdir = d
                self.cfar = a
                self.cload = self.head < self.loaded
            return
        a = e - lead * c
        if d == c:
            if (a - self.cfar) * c > 0:
                self.cfar = a
            if (c > 0 and a > last + self.hold) or (c < 0 and a < first - self.hold):
                self._row_end()
        elif (c > 0 and a < first) or (c < 0 and a > last):
            n = self.cfar - first + 1 if c > 0 else last - self.cfar + 1
            if n > 0:
                self._push(SHORT, self.head, n)
            self.cdir = 0

    def _row_end(self):
        self.cdir = 0
        h = self.head
        if not self.cload:
            self._push(NOROW, h, 0)
            return
        self.head = h + 1
        self.total_rows += 1
        self.total_stitches += self.last - self.first + 1
        self._push(DONE, h, 0)
        if self.total and self.head >= self.total:
            self.active = False
            self.bank.write(0)
            self._push(END, h, 0)

    def _push(self, kind, a, b):
        i = self._w
        if i - self._r >= _EVQ:
            self.dropped += 1
            return
        j = (i % _EVQ) * 3
        q = self._q
        q[j] = kind
        q[j + 1] = a
        q[j + 2] = b
        self._w = i + 1
        self.wake.set()

    # --- task context ---

    def pop(self):
        """The oldest event as (kind, a, b), or None."""
        if self._r >= self._w:
            return None
        j = (self._r % _EVQ) * 3
        self._r += 1
        return self._q[j], self._q[j + 1], self._q[j + 2]
