# Telemetry records: what a board reports every report_s (status, production, energy) and the
# machine events worth keeping (a wind rig's pieces), each with a seq, committed to the journal
# before it goes out (USB as a JSON line, MQTT from the journal, see fab.uplink).
#
# Totals since the board's first boot: a machine counts since this boot (its counters start at 0
# with it; its PRODUCTION and ENERGY name the status fields that count); the journal's last
# production and energy records are the base that those counts add to. So a reset or a power
# cut loses at most what was counted since the last record (a minute at most), and flash sees an
# appended record per change, never a counter file rewritten in place (wear). Without a journal
# they count from boot.
import time

from micropython import const

KINDS = ("production", "energy")
_TOTALS_MS = const(60000)  # a changed total is recorded at most once a minute: flash wear


def _summed(field):
    return field == "units" or field.endswith("_wh")


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Tele:
    def __init__(self, rt):
        self.rt = rt
        self.journal = None  # fab.journal.Journal when on (fab.checkpoint opens it)
        self.error = ""  # the journal's last failure
        self.bad = ""  # a PRODUCTION or ENERGY that names a field the status does not have
        self.seq = 0  # the seq without a journal: counted from boot
        self.boots = None  # restored from the journal; None without one
        self.boot_seq = 1  # the seq of this boot's first record
        self.base = {}  # kind -> the journal's last record of it, from before this boot
        self.sent = {}  # kind -> the last record reported: an unchanged total is not repeated
        self.when = {}  # kind -> ticks_ms of that record
        self.events = ()  # machine events kept as records (the machine's RECORDS)

    def attach(self, machine):
        # The machine's counters and event records; it may take back what it keeps besides
        # counts (the wind rig its battery's state of charge) with resume(kind, record).
        self.events = getattr(machine, "RECORDS", ())
        resume = getattr(machine, "resume", None)
        if resume is not None:
            for kind in self.base:
                resume(kind, self.base[kind])

    def record(self, kind, rec):
        # Commit one record; its seq (None when the flash failed: it still goes out on USB).
        j = self.journal
        if j is None:
            self.seq += 1
            return self.seq
        try:
            return j.append(kind, rec)
        except (OSError, ValueError) as e:
            self.error = "journal: %s" % e
            return None

    def totals(self, machine, status):
        # [(kind, record)] of the machine's totals that changed (and were last recorded a
        # minute ago or more): fields of its status, named by its PRODUCTION (field, unit) and
        # ENERGY (fields), so that a total is the status's own number.
        out = []
        now = time.ticks_ms()
        for kind in KINDS:
            prod = kind == "production"
            spec = getattr(machine, "PRODUCTION" if prod else "ENERGY", None)
            if spec is None:
                continue
            t = self.when.get(kind)
            if t is not None and time.ticks_diff(now, t) < _TOTALS_MS:
                continue
            # A machine (an extension's, say) that names a field its status lacks gets no
            # record and a reason in its status, not a crashed sampler and a watchdog reset.
            missing = [k for k in (spec[:1] if prod else spec) if k not in status]
            if missing:
                self.bad = "%s names %s, which the machine's status does not have" % (
                    "PRODUCTION" if prod else "ENERGY", ", ".join(missing))
                continue
            if prod:
                rec = {"units": status[spec[0]], "unit": spec[1]}
            else:
                rec = {}
                for k in spec:
                    rec[k] = status[k]
            # A machine that keeps its total itself (PRODUCTION's third item) needs no base; a
            # base in another unit is another machine's (the board was re-configured).
            base = None if prod and len(spec) > 2 else self.base.get(kind)
            if base is not None and base.get("unit") == rec.get("unit"):
                for k in rec:
                    b, v = base.get(k), rec[k]
                    if _summed(k) and _number(b) and _number(v):
                        rec[k] = round(v + b, 4)
            if rec != self.sent.get(kind):
                self.sent[kind] = dict(rec)  # rec itself gets seq and tele on its way out
                self.when[kind] = now
                out.append((kind, rec))
        return out

    def report(self, status):
        # The records of one report_s: the status, then the totals that moved.
        rt = self.rt
        status.pop("journal", None)
        self._out("status", status)
        if rt.machine is not None:
            for kind, rec in self.totals(rt.machine, status):
                self._out(kind, rec)

    def _out(self, kind, rec):
        rec["seq"] = self.record(kind, rec)
        rec["tele"] = kind
        self.rt.emit(rec)

    def again(self):
        # The next report sends every total, changed or not (a listener that lost them).
        self.sent, self.when = {}, {}

    def status(self, out):
        out["boots"] = self.boots
        if self.journal:
            out["journal"] = self.journal.status()
        if self.error:
            out["journal_error"] = self.error
        if self.bad:
            out["tele_error"] = self.bad
