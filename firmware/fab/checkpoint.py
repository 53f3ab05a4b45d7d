# What the journal checkpointed, read back at boot: the boot counter and the production and energy
# totals (see fab.tele). Imported only when the board keeps a journal.
from fab import VERSION
from fab.journal import Journal
from fab.tele import KINDS


def restore(tele, ev, kb):
    """Open the journal for `tele` (a fab.tele.Tele) and take back the boot counter and the
    newest production and energy records. An empty journal is a first boot and gets no boot record,
    so that a new board's first status record is seq 1; later boots' records go out with the
    boot event `ev`."""
    try:
        j = Journal(segments=max(2, kb // 4))  # 4 KB segments: LittleFS blocks
        boots = 0
        for kind in ("boot", "status"):
            r = j.last(kind)
            if r and isinstance(r.get("boots"), int) and r["boots"] > boots:
                boots = r["boots"]
        for kind in KINDS:
            r = j.last(kind)
            if r:
                tele.base[kind] = r
        tele.journal = j
        tele.boot_seq = j.next_seq
        tele.boots = ev["boots"] = boots + 1
        if j.next_seq > 1:
            ev["seq"] = j.append("boot", {"boots": tele.boots, "firmware": VERSION,
                                          "reset_cause": ev["reset_cause"]})
    except (OSError, ValueError) as e:
        tele.error = "journal: %s" % e  # telemetry still goes out on the link
