"""The picture of a wiring plan (wiring.Plan) as one self-contained SVG: the board's header
pins in their physical order, the parts beside it on the side most of their pins are on, each
wire in its own lane with few crossings, and the power rails.
"""
from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from . import pinouts

if TYPE_CHECKING:
    from .wiring import Plan

P = 22  # header pitch, px: pins on whole rows, part terminals on half rows, so wires never overlap
LS = 9  # lane spacing, px
BW = 184  # board width, px
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
RAIL_COLOR = {"3V3": "#e65100", "5V": "#c62828", "GND": "#212121", "VMOT": "#b71c1c"}
KIND_COLOR = {"SDA": "#1565c0", "SCL": "#4fc3f7", "SCK": "#6a1b9a", "MOSI": "#ab47bc",
              "MISO": "#ce93d8", "CS": "#8e24aa", "TX": "#00897b", "RX": "#4db6ac"}
PALETTE = ("#2e7d32", "#ad1457", "#6d4c41", "#f9a825", "#558b2f", "#37474f", "#d81b60",
           "#8d6e63", "#9e9d24", "#4e342e", "#c2185b", "#1b5e20")  # none a bus's or a rail's


def _w(text, size=10.0):
    """Estimated width of a text in px (no font metrics in an SVG we write by hand)."""
    return len(text) * size * 0.6


# --- layout ---

def _route(pl: Plan, lay: dict):
    """Sides and rows of parts, wires with their lanes; all positions in rows and lanes."""
    rows = {}
    for side in ("left", "right"):
        for i, (_num, _name, gp) in enumerate(lay[side]):
            if gp is not None:
                rows[gp] = (side, i)
    nrows = max(len(lay["left"]), len(lay["right"]))
    # Parts that share a pin (a bus) go on one side: the side most of their pins are on.
    group = list(range(len(pl.parts)))

    def find(i):
        while group[i] != i:
            i = group[i]
        return i
    owner: dict = {}
    for i, p in enumerate(pl.parts):
        for _label, gp in p["sig"]:
            if gp in owner:
                group[find(i)] = find(owner[gp])
            owner[gp] = i
    votes: dict = {}
    for i, p in enumerate(pl.parts):
        for _label, gp in p["sig"]:
            if gp in rows:
                v = votes.setdefault(find(i), [0, 0])
                v[rows[gp][0] == "right"] += 1
    load, vmot = [0, 0], [0, 0]
    for i, p in enumerate(pl.parts):
        v = votes.get(find(i))
        if v is not None:
            p["side"] = "right" if v[1] >= v[0] else "left"
            load[p["side"] == "right"] += 2 + len(p["sig"])
            vmot[p["side"] == "right"] += sum(r == "VMOT" for _t, r in p["pwr"])
    for p in pl.parts:  # parts without a header pin (power only): beside the motor/coil
        if "side" not in p:  # drivers when they take that supply, else the shorter column
            uses = any(r == "VMOT" for _t, r in p["pwr"])
            right = vmot[1] >= vmot[0] if uses and vmot != [0, 0] else load[1] <= load[0]
            p["side"] = "right" if right else "left"
            load[right] += 2 + len(p["pwr"])
            vmot[right] += uses

    def key(p):
        ys = [rows[gp][1] if rows.get(gp, ("", 0))[0] == p["side"] else nrows + 4
              for _l, gp in p["sig"] if gp in rows]
        return (sum(ys) / len(ys) if ys else nrows + 10, "+" in [t for t, _r in p["pwr"]])
    wires = []
    for side in ("left", "right"):
        k = 0
        for p in sorted([p for p in pl.parts if p["side"] == side], key=key):
            p["row"] = k
            t0 = 1  # rows for the title and notes, then the terminals on half rows
            while (t0 + 1) * P - 3 < 27 + 12 * len(p["notes"]):
                t0 += 1
            p["t0"] = t0
            p["h"] = p["t0"] + max(len(p["sig"]), len(p["pwr"]), 1)
            k += p["h"] + 1
    targets: dict = {}
    for p in pl.parts:
        for i, (_label, gp) in enumerate(p["sig"]):
            targets.setdefault(gp, []).append((p, p["row"] + p["t0"] + i + 0.5))
    for gp in sorted(targets, key=lambda g: (rows.get(g, ("z", 0)), g)):
        if gp in rows:
            side, r = rows[gp]
            wires.append({"gpio": gp, "side": side, "row": r, "to": targets[gp],
                          "dest": targets[gp][0][0]["side"], "kind": pl.uses[gp][1]})
    # Rails: fed from the board's power pins (3V3, GND) or drawn from the supply part.
    rails: dict = {"left": [], "right": []}
    for side in ("left", "right"):
        for rail in ("3V3", "5V", "GND", "VMOT"):
            if any(r == rail for p in pl.parts if p["side"] == side for _t, r in p["pwr"]):
                rails[side].append(rail)
        for i, rail in enumerate(rails[side]):
            src = _power_pin(lay, rail, side)
            if src is not None:
                wires.append({"gpio": None, "rail": rail, "side": src[0], "row": src[1],
                              "to": [(None, -1.0 - i)], "dest": side, "kind": rail})
    _lanes(wires, nrows)
    return rows, nrows, wires, rails


def _power_pin(lay, rail, side):
    names = {"3V3": ("3V3", "3V3(OUT)"), "5V": ("5V", "VBUS"), "GND": ("GND",)}.get(rail, ())
    for s in (side, "right" if side == "left" else "left"):
        for i, (_num, name, _gp) in enumerate(lay[s]):
            if name in names:
                return s, i
    return None


def _segments(w, side):
    """(inner horizontals, outer horizontals, span) of a wire's vertical on one side."""
    outer = [y for _p, y in w["to"]] if w["dest"] == side else []
    inner = [w["row"]] if w["side"] == side else []
    if w["side"] != w["dest"]:
        inner.append(w["chan"])
    ys = inner + outer
    return inner, outer, (min(ys), max(ys))


def _crossings(order, side):
    segs = [_segments(w, side) for w in order]
    n = 0
    for a in range(len(order)):
        lo_a, hi_a = segs[a][2]
        for b in range(a + 1, len(order)):
            lo_b, hi_b = segs[b][2]
            n += sum(lo_a < y < hi_a for y in segs[b][0])
            n += sum(lo_b < y < hi_b for y in segs[a][1])
    return n


def _lanes(wires, nrows):
    """Each wire its own vertical lane on each side it runs on, ordered for few crossings;
    a wire from one header to parts on the other side runs under the board in its own row."""
    cross = [w for w in wires if w["side"] != w["dest"]]
    order = {s: [w for w in wires if w["side"] == w["dest"] == s] for s in ("left", "right")}
    for s in order:
        order[s].sort(key=lambda w: min(y for _p, y in w["to"]))
        order[s] += [w for w in cross if w["side"] == s] + [w for w in cross if w["dest"] == s]

    def place_channels():
        mine = [w for s in ("left", "right") for w in order[s] if w["side"] == s != w["dest"]]
        mine.sort(key=lambda w: order[w["side"]].index(w))
        for j, w in enumerate(mine):  # the outer lane runs lowest
            w["chan"] = nrows + 4 + j  # under the board's bottom edge

    place_channels()
    for _round in range(8):
        better = False
        for s in ("left", "right"):
            for i in range(len(order[s]) - 1):
                before = _crossings(order["left"], "left") + _crossings(order["right"], "right")
                o = order[s]
                o[i], o[i + 1] = o[i + 1], o[i]
                place_channels()
                after = _crossings(order["left"], "left") + _crossings(order["right"], "right")
                if after < before:
                    better = True
                else:
                    o[i], o[i + 1] = o[i + 1], o[i]
                    place_channels()
        if not better:
            break
    for s in order:
        for i, w in enumerate(order[s]):
            w.setdefault("lane", {})[s] = i


# --- drawing ---

class _Svg:
    def __init__(self):
        self.out: list = []
        self.xs = [0.0]
        self.ys = [0.0]

    def add(self, text, *xy):
        self.out.append(text)
        for i in range(0, len(xy), 2):
            self.xs.append(xy[i])
            self.ys.append(xy[i + 1])

    def text(self, x, y, s, size=10, anchor="start", cls="", extra="", color="#212121"):
        w = _w(s, size)
        x0 = x - w if anchor == "end" else (x - w / 2 if anchor == "middle" else x)
        self.add('<text x="%.1f" y="%.1f" font-size="%g" text-anchor="%s" fill="%s"%s%s>%s'
                 '</text>' % (x, y, size, anchor, color, ' class="%s"' % cls if cls else "",
                              extra, escape(s)), x0, y - size, x0 + w, y + 3)

    def line(self, pts, color, width=2.0):
        d = " ".join("%.1f,%.1f" % xy for xy in pts)
        self.add('<polyline points="%s" fill="none" stroke="%s" stroke-width="%g" '
                 'stroke-linejoin="round"/>' % (d, color, width),
                 *[c for xy in pts for c in xy])

    def dot(self, x, y, color):
        self.add('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (x, y, color), x, y)

    def rect(self, x, y, w, h, fill, stroke="none", rx=4, extra=""):
        self.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%g" fill="%s" '
                 'stroke="%s"%s/>' % (x, y, w, h, rx, fill, stroke, extra), x, y, x + w, y + h)


def _color(w, i):
    k = w["kind"]
    if k in KIND_COLOR:
        return KIND_COLOR[k]
    if k in RAIL_COLOR:
        return RAIL_COLOR[k]
    return PALETTE[i % len(PALETTE)]


def draw(pl: Plan) -> str:
    lay = pinouts.layout(pl.name)
    rows, nrows, wires, rails = _route(pl, lay)
    g = _Svg()
    top = 60 + P * (1 + max(len(rails["left"]), len(rails["right"])))
    Y = lambda r: top + r * P  # noqa: E731  row -> y
    labels = {"left": [], "right": []}
    for gp, (role, _kind) in pl.uses.items():
        if gp in rows:
            labels[rows[gp][0]].append(role)
    feeds = {(w["side"], w["row"]): w["rail"] + " rail" for w in wires if w.get("rail")}
    for (side, _row), text in feeds.items():
        labels[side].append(text)
    lbl = {s: max([90.0] + [_w(t) + 16 for t in labels[s]]) for s in labels}
    nl = {s: max([-1] + [w["lane"][s] for w in wires if s in w["lane"]]) + 1 for s in labels}
    lane_x = {"left": lambda i: -lbl["left"] - 12 - i * LS,
              "right": lambda i: BW + lbl["right"] + 12 + i * LS}
    pw = {s: max([150.0] + [max(_w(p["title"], 12.5), *[_w(n, 8.5) for n in p["notes"]],
                                max([_w(t) for t, _g in p["sig"]] + [0])
                                + max([_w(t) for t, _r in p["pwr"]] + [0]) + 36) + 16
                            for p in pl.parts if p["side"] == s]) for s in labels}
    inner = {"left": lane_x["left"](nl["left"]) - 4, "right": lane_x["right"](nl["right"]) + 4}
    rail_x = {"left": lambda i: inner["left"] - pw["left"] - 16 - i * 12,
              "right": lambda i: inner["right"] + pw["right"] + 16 + i * 12}
    # the board
    bottom = Y(nrows - 1) + (70 if lay["top"] == "USB" else 84)
    g.rect(0, Y(0) - 50, BW, bottom - Y(0) + 50, "#1b5e20" if pl.name.startswith("pico")
           else "#263238", "#0b2e13", 8)
    if lay["top"] == "USB":
        g.rect(BW / 2 - 22, Y(0) - 62, 44, 24, "#9e9e9e", "#616161", 3)
        g.text(BW / 2, Y(0) - 44, "USB", 9, "middle", color="#212121")
    else:
        g.rect(BW / 2 - 50, Y(0) - 46, 100, 30, "#b0bec5", "#78909c", 2)
        g.text(BW / 2, Y(0) - 27, "antenna", 9, "middle", color="#37474f")
        g.text(BW / 2, bottom - 8, "USB", 9, "middle", color="#eceff1")
    g.text(BW / 2, Y(nrows - 1) + 32, lay["title"], 10, "middle", color="#ffffff",
           extra=' font-weight="bold"')
    g.text(BW / 2, Y(nrows - 1) + 46, pl.board["chip"].upper(), 9, "middle", color="#e0e0e0")
    for side in ("left", "right"):
        px = 14 if side == "left" else BW - 14
        for i, (num, name, gp) in enumerate(lay[side]):
            y = Y(i)
            use = pl.uses.get(gp) if gp is not None else None
            fill = ("#212121" if name == "GND" else "#e53935" if name in (
                "3V3", "3V3(OUT)", "5V", "VBUS", "VSYS") else "#fdd835" if use else "#cfd8dc")
            g.out.append('<g class="pin" data-side="%s" data-number="%d" data-name="%s"%s%s>'
                         % (side, num, escape(name), ' data-gpio="%d"' % gp if gp is not None
                            else "", ' data-role="%s"' % escape(use[0]) if use else ""))
            g.rect(px - 7, y - 7, 14, 14, fill, "#eceff1", 2)
            g.text(px, y + 2.5, str(num), 7, "middle",
                   color="#ffffff" if fill in ("#212121", "#e53935") else "#263238")
            g.text(px + (12 if side == "left" else -12), y + 3.5, name, 9,
                   "start" if side == "left" else "end", color="#ffffff")
            if use:
                ex = -6 if side == "left" else BW + 6
                g.text(ex, y - 4, use[0], 10, "end" if side == "left" else "start",
                       "role" + (" held" if use[1] == "held" else ""),
                       ' data-gpio="%d"' % gp, "#757575" if use[1] == "held" else "#212121")
            elif (side, i) in feeds:
                g.text(-6 if side == "left" else BW + 6, y - 4, feeds[side, i], 10,
                       "end" if side == "left" else "start", "feed",
                       color=RAIL_COLOR[feeds[side, i].split()[0]])
            g.out.append("</g>")
    onboard = [(gp, lay["onboard"][gp], pl.uses[gp][0]) for gp in sorted(pl.uses)
               if gp in lay["onboard"]]
    # the parts
    for p in pl.parts:
        s = p["side"]
        x0 = inner[s] if s == "right" else inner[s] - pw[s]
        y0 = Y(p["row"]) - P / 2 + 3
        h = (p["h"] + 0.5) * P - 6
        g.out.append('<g class="part" data-title="%s">' % escape(p["title"]))
        g.rect(x0, y0, pw[s], h, "#fafafa", "#455a64", 5)
        g.text(x0 + 8, y0 + 15, p["title"], 11, extra=' font-weight="bold"')
        for j, n in enumerate(p["notes"]):
            g.text(x0 + 8, y0 + 28 + 12 * j, n, 8.5, color="#546e7a")
        ix, ox = (x0, x0 + pw[s]) if s == "right" else (x0 + pw[s], x0)
        sgn = 1 if s == "right" else -1
        for i, (t, gp) in enumerate(p["sig"]):
            y = Y(p["row"] + p["t0"] + i + 0.5)
            txt = t if gp in rows else "%s: %s (%s, on the board)" % (t, pl.label(gp),
                                                                      lay["onboard"].get(gp))
            g.text(ix + sgn * 8, y + 3.5, txt, 10, "start" if s == "right" else "end",
                   "terminal", ' data-gpio="%d"' % gp)
        for i, (t, rail) in enumerate(p["pwr"]):
            y = Y(p["row"] + p["t0"] + i + 0.5)
            g.text(ox - sgn * 8, y + 3.5, t, 9, "end" if s == "right" else "start",
                   color=RAIL_COLOR.get(rail, "#424242"))
            k = rails[s].index(rail)
            g.line([(ox, y), (rail_x[s](k), y)], RAIL_COLOR[rail], 1.6)
            g.dot(rail_x[s](k), y, RAIL_COLOR[rail])
        g.out.append("</g>")
    # rails
    for s in ("left", "right"):
        for k, rail in enumerate(rails[s]):
            ys = [Y(p["row"] + p["t0"] + i + 0.5) for p in pl.parts if p["side"] == s
                  for i, (_t, r) in enumerate(p["pwr"]) if r == rail]
            x, y_top = rail_x[s](k), Y(-1.0 - k)
            g.line([(x, y_top), (x, max(ys))], RAIL_COLOR[rail], 2.4)
            # above its feed, on the inner side of the corner: clear of the other rails
            g.text(x + (-4 if s == "right" else 4), y_top - 4, pl.rail_notes.get(rail, rail), 9,
                   "end" if s == "right" else "start", "rail", color=RAIL_COLOR[rail])
    # wires
    for i, w in enumerate(wires):
        c = _color(w, i)
        side, dest = w["side"], w["dest"]
        pts = [(0 if side == "left" else BW, Y(w["row"]))]
        lx = lane_x[side](w["lane"][side])
        pts.append((lx, Y(w["row"])))
        if side != dest:
            pts += [(lx, Y(w["chan"])), (lane_x[dest](w["lane"][dest]), Y(w["chan"]))]
        dx = lane_x[dest](w["lane"][dest])
        ys = [y for _p, y in w["to"]]
        here = Y(w["chan"]) if side != dest else Y(w["row"])
        far = max(ys, key=lambda y: abs(Y(y) - here))
        pts.append((dx, Y(far)))
        g.line(pts, c)
        for part, y in w["to"]:
            end = inner[dest] if part is not None else rail_x[dest](rails[dest].index(w["rail"]))
            g.line([(dx, Y(y)), (end, Y(y))], c)
            if len(w["to"]) > 1:
                g.dot(dx, Y(y), c)
        g.dot(0 if side == "left" else BW, Y(w["row"]), c)
    return _frame(g, pl, lay, onboard)


def _frame(g, pl, lay, onboard) -> str:
    x_min, y_max = min(g.xs), max(g.ys)
    foot = y_max + 30
    lines = ["on the board: %s %s (%s)" % (pl.label(gp), what, role) for gp, what, role in onboard]
    lines.append("generated by `microfab wiring` from boards/%s.json and the machine config, "
                 "checked with the firmware's own fab.config" % pl.name)
    for j, t in enumerate(lines):
        g.text(x_min, foot + 14 * j, t, 9, color="#455a64")
    lx = x_min
    ly = foot + 14 * len(lines) + 8
    for name, c in (("signal", PALETTE[0]), ("I2C", KIND_COLOR["SDA"]), ("SPI", KIND_COLOR["SCK"]),
                    ("UART", KIND_COLOR["TX"]), ("3V3", RAIL_COLOR["3V3"]),
                    ("GND", RAIL_COLOR["GND"]), ("motor/coil supply", RAIL_COLOR["VMOT"])):
        g.line([(lx, ly), (lx + 18, ly)], c, 3)
        g.text(lx + 22, ly + 3.5, name, 9)
        lx += 34 + _w(name, 9)
    g.text(x_min, 22, "%s on the %s" % (pl.cfg["machine"], lay["title"]), 16,
           extra=' font-weight="bold"')
    if pl.summary:
        g.text(x_min, 40, pl.summary, 10, color="#455a64")
    x0, y0 = min(g.xs) - 16, min(g.ys) - 16
    wd, ht = max(g.xs) - x0 + 16, max(g.ys) - y0 + 16
    head = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="%.0f %.0f %.0f %.0f" width="%.0f" '
            'height="%.0f" font-family="%s" data-board="%s" data-machine="%s">\n'
            '<title>%s</title>\n<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" '
            'fill="#ffffff"/>\n' % (x0, y0, wd, ht, wd, ht, FONT, pl.name, pl.cfg["machine"],
                                    escape("Wiring: %s on the %s" % (pl.cfg["machine"],
                                                                     lay["title"])),
                                    x0, y0, wd, ht))
    return head + "\n".join(g.out) + "\n</svg>\n"
