"""Weaving drafts for the dobby loom: a WIF file (or a FiberWorks .dtx / WeavePoint .wpo, through
the `dtx-to-wif` package) becomes a lift plan, one list of 1-based shafts per pick, and the plan
becomes the board's commands (`pattern`, then `picks` in chunks).

WIF is the Weaving Information File, version 1.1: an INI-like text with sections in brackets and
KEY=VALUE lines, section names and keys case-insensitive, numbers 1-based, lists comma-separated.
The sections read here:

    [WEAVING]    Shafts=8, Treadles=10, Rising Shed=true
    [THREADING]  end=shaft[,shaft]          which shafts each warp end is threaded on
    [TIEUP]      treadle=shaft,shaft,...    which shafts each treadle lifts
    [TREADLING]  pick=treadle[,treadle]     which treadles each pick presses
    [LIFTPLAN]   pick=shaft,shaft,...       which shafts each pick lifts (a dobby's own plan)

The lift plan is [LIFTPLAN] when the file has one, else [TIEUP] x [TREADLING]; picks the file does
not list lift nothing. A sinking-shed draft (Rising Shed=false) lists the shafts that sink, so the
plan lifts the others. A section that [CONTENTS] marks false is ignored.

Bad files raise PatternError naming the file, the section, the line, the value and what was
expected, e.g. "twill.wif: [TIEUP] line 12: treadle 3 lists shaft 9, but [WEAVING] Shafts=8".
The CLI contract (`microfab pattern show`): show() returns the text to print; a PatternError is
printed as its one line on stderr and the command exits with status 2.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {".wif", ".wifw", ".dtx", ".wpo"}
# Masks per `picks` command: the board takes at most 64 (fab.loom.CHUNK), and a command line
# holds at most 1024 bytes (fab.link.MAX_LINE).
CHUNK = 64
MAX_LINE = 1024
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_MAX_SHAFTS = 256  # what WIF files in the wild use at most; the loom itself takes 4 to 32


class PatternError(ValueError):
    """A pattern that cannot be woven; the message is one line, made to be shown as it is."""


@dataclass
class Draft:
    name: str  # the file name, or the draft's own name for .dtx
    shafts: int  # shafts the file declares
    picks: list[list[int]]  # the lift plan: per pick, the sorted 1-based shafts it lifts
    treadles: int = 0
    threading: list[list[int]] = field(default_factory=list)  # per warp end, its shafts
    source: str = "liftplan"  # or "tieup x treadling"
    rising: bool = True

    def masks(self) -> list[int]:
        """One bitmask per pick, bit 0 for shaft 1: what the board stores."""
        return masks(self.picks)

    def used(self) -> int:
        """The highest shaft the draft lifts or threads: the shafts a loom needs to weave it."""
        top = 0
        for group in self.picks + self.threading:
            if group:
                top = max(top, max(group))
        return top


def masks(plan: list[list[int]]) -> list[int]:
    out = []
    for shafts in plan:
        m = 0
        for s in shafts:
            m |= 1 << (s - 1)
        out.append(m)
    return out


# --- WIF ---


class _Section:
    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line
        self.entries: dict[str, tuple[str, int]] = {}  # key (lower case) -> (value, line)
        self.problems: list[str] = []  # raised only if the section is read


def _sections(text: str, fname: str) -> dict[str, _Section]:
    sections: dict[str, _Section] = {}
    cur = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise PatternError("%s: line %d: '%s' is not a section header: expected a name in "
                                   "brackets, like [TIEUP]" % (fname, n, line))
            name = line[1:-1].strip().upper()
            if name in sections:
                raise PatternError("%s: line %d: section [%s] comes twice (first on line %d)"
                                   % (fname, n, name, sections[name].line))
            cur = sections[name] = _Section(name, n)
            continue
        if cur is None:
            raise PatternError("%s: line %d: '%s' comes before any section: expected a WIF file, "
                               "which starts with [WIF]" % (fname, n, line[:40]))
        key, eq, val = line.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            cur.problems.append("%s: [%s] line %d: '%s' is not KEY=VALUE"
                                % (fname, cur.name, n, line[:40]))
        elif key in cur.entries:
            cur.problems.append("%s: [%s] line %d: '%s' comes twice (first on line %d)"
                                % (fname, cur.name, n, key, cur.entries[key][1]))
        else:
            cur.entries[key] = (val.strip(), n)
    return sections


class _Wif:
    def __init__(self, text: str, fname: str):
        self.fname = fname
        self.sections = _sections(text, fname)
        self.contents = self.sections.get("CONTENTS")

    def section(self, name: str):
        """The section if the file has it and [CONTENTS] does not mark it false."""
        sec = self.sections.get(name)
        if self.contents is not None:
            flag = self.contents.entries.get(name.lower())
            if flag is not None and flag[0].lower() in _FALSE:
                return None
            if flag is not None and flag[0].lower() in _TRUE and sec is None:
                raise PatternError("%s: [CONTENTS] line %d: %s=%s, but the file has no [%s] "
                                   "section" % (self.fname, flag[1], name, flag[0], name))
        if sec is not None and sec.problems:
            raise PatternError(sec.problems[0])
        return sec

    def count(self, weaving, key: str, needed_by: str) -> int:
        """[WEAVING] Shafts or Treadles."""
        where = "%s: [WEAVING]" % self.fname
        if weaving is None:
            raise PatternError("%s: no [WEAVING] section: expected one with %s=<number>, which %s "
                               "needs" % (self.fname, key, needed_by))
        item = weaving.entries.get(key.lower())
        if item is None:
            raise PatternError("%s has no %s: expected %s=<number>, which %s needs"
                               % (where, key, key, needed_by))
        try:
            v = int(item[0])
        except ValueError:
            v = -1
        if not 1 <= v <= _MAX_SHAFTS:
            raise PatternError("%s line %d: %s=%s, expected a whole number from 1 to %d"
                               % (where, item[1], key, item[0], _MAX_SHAFTS))
        return v

    def table(self, sec, what: str, item: str, limit: int, limit_name: str,
              key_limit: int = 0, key_limit_name: str = "") -> dict[int, tuple[list[int], int]]:
        """A section of number=list lines: {key: (values, line)}. Values from 0 (none) to limit."""
        out = {}
        for key, (val, n) in sec.entries.items():
            where = "%s: [%s] line %d" % (self.fname, sec.name, n)
            try:
                k = int(key)
            except ValueError:
                k = 0
            if k < 1:
                raise PatternError("%s: '%s' is not a %s number: expected a whole number from 1%s"
                                   % (where, key, what, " to %d" % key_limit if key_limit else ""))
            if key_limit and k > key_limit:
                raise PatternError("%s: %s %d, but %s=%d" % (where, what, k, key_limit_name,
                                                               key_limit))
            vals = []
            for part in val.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    v = int(part)
                except ValueError:
                    raise PatternError("%s: %s %d lists %s '%s', expected a whole number from 0 to "
                                       "%d (%s=%d)" % (where, what, k, item, part, limit,
                                                       limit_name, limit)) from None
                if not 0 <= v <= limit:
                    raise PatternError("%s: %s %d lists %s %d, but %s=%d"
                                       % (where, what, k, item, v, limit_name, limit))
                if v:
                    vals.append(v)
            out[k] = (sorted(set(vals)), n)
        return out


def read_wif(text: str, name: str = "pattern.wif") -> Draft:
    """A WIF file's text as a Draft; PatternError for anything that cannot be woven."""
    w = _Wif(text, name)
    weaving = w.section("WEAVING")
    liftplan = w.section("LIFTPLAN")
    tieup = w.section("TIEUP")
    treadling = w.section("TREADLING")
    threading = w.section("THREADING")
    if liftplan is None and (tieup is None or treadling is None):
        missing = "[TIEUP]" if tieup is None and treadling is not None else (
            "[TREADLING]" if treadling is None and tieup is not None else "[LIFTPLAN]")
        raise PatternError("%s: no lift plan (%s is missing): expected [LIFTPLAN], or [TIEUP] "
                           "with [TREADLING]" % (name, missing))
    shafts = w.count(weaving, "Shafts", "the lift plan")
    rising = True
    if weaving is not None and "rising shed" in weaving.entries:
        val, n = weaving.entries["rising shed"]
        if val.lower() not in _TRUE + _FALSE:
            raise PatternError("%s: [WEAVING] line %d: Rising Shed=%s, expected true or false"
                               % (name, n, val))
        rising = val.lower() in _TRUE
    sh = "[WEAVING] Shafts"
    ends = []
    if threading is not None:
        th = w.table(threading, "end", "shaft", shafts, sh)
        ends = [th[e][0] if e in th else [] for e in range(1, max(th, default=0) + 1)]
    treadles = 0
    if liftplan is not None:
        rows = w.table(liftplan, "pick", "shaft", shafts, sh)
        plan = {p: rows[p][0] for p in rows}
        source = "liftplan"
    else:
        treadles = w.count(weaving, "Treadles", "[TIEUP] and [TREADLING]")
        tie = w.table(tieup, "treadle", "shaft", shafts, sh, treadles, "[WEAVING] Treadles")
        steps = w.table(treadling, "pick", "treadle", treadles, "[WEAVING] Treadles")
        plan = {}
        for p, (ts, _n) in steps.items():
            lifted: set[int] = set()
            for t in ts:
                lifted.update(tie[t][0] if t in tie else [])
            plan[p] = sorted(lifted)
        source = "tieup x treadling"
    if not plan:
        raise PatternError("%s: the lift plan has no picks: [%s] is empty"
                           % (name, "LIFTPLAN" if liftplan is not None else "TREADLING"))
    picks = [plan.get(p, []) for p in range(1, max(plan) + 1)]
    if not rising:
        picks = [[s for s in range(1, shafts + 1) if s not in p] for p in picks]
    return Draft(name, shafts, picks, treadles, ends, source, rising)


# --- other formats, through dtx-to-wif ---


def _read_other(path: Path) -> Draft:
    name = path.name
    try:
        import dtx_to_wif
    except ImportError:
        raise PatternError("%s: reading %s files needs the package dtx-to-wif (pip install "
                           "dtx-to-wif)" % (name, path.suffix)) from None
    try:
        data = dtx_to_wif.read_pattern_file(path)
    except OSError as e:
        raise PatternError("%s: cannot be read: %s" % (name, e.strerror or e)) from None
    except Exception as e:  # the reader's own errors: RuntimeError, ValueError, IndexError...
        raise PatternError("%s: not a %s file dtx-to-wif can read: %s"
                           % (name, path.suffix, str(e) or type(e).__name__)) from None
    shafts = data.num_shafts
    if data.liftplan:
        plan = {p: sorted(s - {0}) for p, s in data.liftplan.items()}
        source = "liftplan"
    elif data.treadling and data.tieup:
        plan = {}
        for p, ts in data.treadling.items():
            lifted: set[int] = set()
            for t in ts:
                lifted |= data.tieup.get(t, set())
            plan[p] = sorted(lifted - {0})
        source = "tieup x treadling"
    else:
        raise PatternError("%s: no lift plan: expected a liftplan, or a tie-up with a treadling"
                           % name)
    if not plan:
        raise PatternError("%s: the lift plan has no picks" % name)
    picks = [plan.get(p, []) for p in range(1, max(plan) + 1)]
    if not data.is_rising_shed:
        picks = [[s for s in range(1, shafts + 1) if s not in p] for p in picks]
    ends = [sorted(data.threading.get(e, set()) - {0})
            for e in range(1, max(data.threading, default=0) + 1)]
    return Draft(name, shafts, picks, data.num_treadles, ends, source, data.is_rising_shed)


def read(path: str | Path) -> Draft:
    """A draft file by its suffix: .wif/.wifw here, .dtx/.wpo through dtx-to-wif."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise PatternError("%s: unknown draft file type '%s'; expected one of: %s"
                           % (p.name, suffix, ", ".join(sorted(SUFFIXES))))
    if suffix in (".dtx", ".wpo"):
        return _read_other(p)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise PatternError("%s: cannot be read: %s" % (p.name, e.strerror or e)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older weaving programs write Windows-1252/Latin-1
    return read_wif(text, p.name)


# --- to the board ---


def fits(draft: Draft, loom_shafts: int):
    """PatternError unless the loom has the shafts the draft uses."""
    need = draft.used()
    if need > loom_shafts:
        raise PatternError("%s needs %d shafts, but the loom has %d (its config 'shafts'); "
                           "nothing was sent" % (draft.name, need, loom_shafts))


def commands(draft: Draft) -> list[tuple[str, dict]]:
    """The board commands that load the draft: `pattern`, then `picks` chunks that each fit a
    command line."""
    ms = draft.masks()
    out = [("pattern", {"name": draft.name[:60], "shafts": max(1, draft.used()),
                        "picks": len(ms)})]
    i = 0
    while i < len(ms):
        n = min(CHUNK, len(ms) - i)
        while n > 1 and len(json.dumps({"id": 99999999, "cmd": "picks",
                                        "args": {"start": i, "masks": ms[i:i + n]}})) > MAX_LINE:
            n -= 1
        out.append(("picks", {"start": i, "masks": ms[i:i + n]}))
        i += n
    return out


def upload(send, draft: Draft, loom_shafts: int | None = None, resume: int | None = None):
    """Load the draft onto a loom with send(cmd, args) -> reply dict. With loom_shafts, a draft
    that does not fit is refused before anything is sent; with resume, the next press of the
    pedal opens that pick (0-based). PatternError if the board refuses a command."""
    if loom_shafts is not None:
        fits(draft, loom_shafts)
    cmds = commands(draft)
    if resume is not None:
        cmds.append(("goto", {"pick": resume}))
    for cmd, args in cmds:
        r = send(cmd, args)
        if not r.get("ok"):
            raise PatternError("%s: the loom refused `%s`: %s" % (draft.name, cmd, r.get("error")))


def to_json(plan) -> dict:
    """{"picks": [[1, 3], [2, 4], ...]} for a lift plan; a Draft adds its name and counts."""
    if isinstance(plan, Draft):
        return {"name": plan.name, "shafts": plan.shafts, "used_shafts": plan.used(),
                "treadles": plan.treadles, "source": plan.source, "rising_shed": plan.rising,
                "ends": len(plan.threading), "picks": plan.picks}
    return {"picks": [list(p) for p in plan]}


def drawdown(draft: Draft, picks: int = 16, ends: int = 48) -> list[str]:
    """The cloth's face as text: '#' where the warp end is up (its shaft lifted), '.' where the
    weft shows; first pick at the bottom, as a draft is drawn."""
    rows = []
    for p in draft.picks[:picks]:
        up = set(p)
        rows.append("".join("#" if set(e) & up else "." for e in draft.threading[:ends]))
    return rows[::-1]


def show(path: str | Path, as_json: bool = False) -> str:
    """`microfab pattern show`: the lift plan as JSON, or as a grid a weaver reads (one row per
    pick, shaft 1 on the left, '#' lifted) with the drawdown. PatternError -> exit status 2."""
    d = read(path)
    if as_json:
        return json.dumps(to_json(d))
    lines = ["%s: %d shafts (%d used), %d picks, from %s%s"
             % (d.name, d.shafts, d.used(), len(d.picks), d.source,
                "" if d.rising else " (sinking shed, inverted)")]
    width = max(1, d.used())
    for i, p in enumerate(d.picks):
        up = set(p)
        lines.append("%5d  %s  %s" % (i + 1, "".join("#" if s in up else "." for s in
                                                       range(1, width + 1)),
                                      ",".join(str(s) for s in p) or "-"))
    if d.threading:
        lines.append("drawdown (first %d picks, %d ends):" % (min(16, len(d.picks)),
                                                               min(48, len(d.threading))))
        lines += ["       " + row for row in drawdown(d)]
    return "\n".join(lines)
