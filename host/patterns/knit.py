"""Knitting patterns for Brother electronic knitting machines (KH-910, KH-930, KH-270) driven by the
`knitter` firmware: an image (PNG, JPEG, BMP, GIF; anything Pillow reads) becomes needle rows.

Needles are numbered 0 to N-1 from the left of the bed (N = 200 on the KH-910/930, 112 on the
KH-270). The bed itself is marked from the centre out, yellow 100..1 on the left and green 1..100
on the right of a KH-9xx; needle_label() gives that marking ("L20", "R1"), the AYAB desktop's
-100..-1 / 1..100 in other words.

- Colours: the image is made grey (transparent pixels count as white) and split at `threshold`:
  a dark pixel selects its needle (the contrast yarn in single-bed Fair Isle), a light one does
  not; `invert` swaps them.
- Placement: centred on the bed, or with its left column on needle `left`; `mirror` flips it left
  to right (the side facing the knitter on a single bed is the purl side).
- Order: the fabric grows from the cast-on up, so the BOTTOM row of the image is knitted first.
- Modes: "single" (single bed, one pass per image row) or "dbj" (double-bed jacquard: two passes
  per image row, the first selecting the dark pixels, the second the light ones).

A row is a string of '0'/'1', one character per needle of the whole bed, left to right; the
board takes it as `row` bits (row_hex: needle n is bit n % 8 of byte n // 8, in hex).
Bad input raises PatternError with one line naming the file and what was expected, e.g.
"pattern.png: 240 pixels wide, the KH-910 bed has 200 needles". The CLI contract (`microfab
pattern show --machine knitter`): show() returns the text to print; a PatternError is printed as
its one line on stderr and the command exits with status 2.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from .weave import PatternError

# model -> (name on the machine, needles); the firmware's fab.machines.knitter.MODELS agrees
MACHINES = {"kh910": ("KH-910", 200), "kh930": ("KH-930", 200), "kh270": ("KH-270", 112)}
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
MODES = ("single", "dbj")
MAX_ROWS = 100000  # what knit_start takes


@dataclass
class KnitPattern:
    name: str  # the file name
    model: str  # kh910, kh930, kh270
    width: int  # image pixels
    height: int
    left: int  # needle of the image's left column
    mode: str
    rows: list[str]  # bed-wide rows in knitting order

    @property
    def needles(self) -> int:
        return MACHINES[self.model][1]

    @property
    def first(self) -> int:
        return self.left

    @property
    def last(self) -> int:
        return self.left + self.width - 1

    def start_args(self) -> dict:
        """The arguments of the board's knit_start for this pattern."""
        return {"first": self.first, "last": self.last, "rows": len(self.rows)}

    def hex_rows(self) -> list[str]:
        return [row_hex(r) for r in self.rows]


def needle_label(i: int, needles: int = 200) -> str:
    """The bed's own marking of needle i (0-based from the left): L100..L1, R1..R100."""
    half = needles // 2
    return "L%d" % (half - i) if i < half else "R%d" % (i - half + 1)


def row_bytes(row: str) -> bytes:
    out = bytearray((len(row) + 7) // 8)
    for n, c in enumerate(row):
        if c == "1":
            out[n >> 3] |= 1 << (n & 7)
    return bytes(out)


def row_hex(row: str) -> str:
    """A row as the board's `row` bits: needle n is bit n % 8 of byte n // 8."""
    return row_bytes(row).hex()


def row_b64(row: str) -> str:
    return base64.b64encode(row_bytes(row)).decode()


def to_json(rows: list[str]) -> dict:
    return {"rows": list(rows)}


def _model(machine: str) -> str:
    m = (machine or "knitter").lower().replace("-", "")
    if m.startswith("knitter:"):
        m = m.split(":", 1)[1]
    if m == "knitter":
        return "kh910"
    if m not in MACHINES:
        raise PatternError("unknown machine '%s' for a knitting pattern; expected knitter, %s"
                           % (machine, ", ".join(MACHINES)))
    return m


def _pixels(path: Path, threshold: int, invert: bool, mirror: bool):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise PatternError("%s: reading images needs Pillow: pip install pillow" % path.name) \
            from None
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                grey = Image.alpha_composite(white, rgba).convert("L")
            else:
                grey = im.convert("L")
    except FileNotFoundError:
        raise PatternError("%s: no such file" % path) from None
    except UnidentifiedImageError:
        raise PatternError("%s: not an image Pillow can read: expected PNG, JPEG, BMP or GIF"
                           % path.name) from None
    except OSError as e:
        raise PatternError("%s: cannot be read: %s" % (path.name, e.strerror or e)) from None
    w, h = grey.size
    data = grey.tobytes()
    rows = []
    for y in range(h):
        line = data[y * w:(y + 1) * w]
        bits = [(1 if v < threshold else 0) ^ (1 if invert else 0) for v in line]
        if mirror:
            bits.reverse()
        rows.append(bits)
    return w, h, rows


def read(path: str | Path, machine: str = "knitter", left: int | None = None,
         mode: str = "single", threshold: int = 128, invert: bool = False,
         mirror: bool = False) -> KnitPattern:
    """An image as needle rows for a knitting machine (see the module's docstring)."""
    p = Path(path)
    model = _model(machine)
    title, needles = MACHINES[model]
    if mode not in MODES:
        raise PatternError("%s: mode '%s' is not known; expected single or dbj" % (p.name, mode))
    if not 1 <= threshold <= 255:
        raise PatternError("%s: threshold %s is out of range; expected 1 to 255 (grey levels "
                           "below it select their needle)" % (p.name, threshold))
    w, h, pix = _pixels(p, threshold, invert, mirror)
    if w > needles:
        raise PatternError("%s: %d pixels wide, the %s bed has %d needles"
                           % (p.name, w, title, needles))
    if left is None:
        left = (needles - w) // 2
    elif left < 0 or left + w > needles:
        raise PatternError("%s: %d pixels wide from needle %d needs needles %d..%d, but the %s "
                           "bed has needles 0..%d" % (p.name, w, left, left, left + w - 1, title,
                                                      needles - 1))
    passes = h * (2 if mode == "dbj" else 1)
    if passes > MAX_ROWS:
        raise PatternError("%s: %d rows to knit; a job takes at most %d" % (p.name, passes,
                                                                             MAX_ROWS))
    pad_l, pad_r = "0" * left, "0" * (needles - left - w)
    rows = []
    for bits in reversed(pix):  # the bottom row of the image is knitted first
        rows.append(pad_l + "".join(["1" if b else "0" for b in bits]) + pad_r)
        if mode == "dbj":
            rows.append(pad_l + "".join(["0" if b else "1" for b in bits]) + pad_r)
    return KnitPattern(p.name, model, w, h, left, mode, rows)


def image_rows(path: str | Path, machine: str = "knitter", **opts) -> list[str]:
    """Just the bed-wide rows, in knitting order."""
    return read(path, machine, **opts).rows


def show(path: str | Path, as_json: bool = False, machine: str = "knitter", **opts) -> str:
    """What `microfab pattern show --machine knitter` prints: the rows as the needles will be
    selected, or with as_json the rows and where they sit on the bed."""
    pat = read(path, machine, **opts)
    title, needles = MACHINES[pat.model]
    if as_json:
        out = to_json(pat.rows)
        out.update({"machine": pat.model, "needles": needles, "first": pat.first,
                    "last": pat.last, "mode": pat.mode, "width": pat.width,
                    "height": pat.height})
        return json.dumps(out)
    per = 2 if pat.mode == "dbj" else 1
    lines = ["%s: %d x %d pixels on the %s (%d needles), %s" % (
        pat.name, pat.width, pat.height, title, needles,
        "double-bed jacquard, 2 passes a row" if per == 2 else "single bed"),
        "needles %d..%d (bed %s..%s), %d rows, knitted from the bottom row up; "
        "# = needle selected" % (pat.first, pat.last, needle_label(pat.first, needles),
                                 needle_label(pat.last, needles), len(pat.rows))]
    for y in range(pat.height - 1, -1, -1):  # the top of the image first, as it looks
        for k in range(per):
            tag = "%d" % (y + 1) + ("ab"[k] if per == 2 else "")
            row = pat.rows[y * per + k]
            lines.append("%5s %s" % (tag, row[pat.first:pat.last + 1].replace("1", "#")
                                     .replace("0", ".")))
    return "\n".join(lines)
