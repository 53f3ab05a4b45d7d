"""`microfab report`: production and energy per device, per machine kind and per day, from the
telemetry the collector stored; a table on the terminal, CSV, PNG plots and one self-contained
HTML page.

Boards send cumulative totals (`units` in `production` records, `harvested_wh` and `used_wh` in
`energy` records, counted since the board's first boot). A day's figure is the sum of the
increases between consecutive records of the device (in seq order), given to the day of the
later record. A total that goes down means the board started counting again from zero (a reset
that lost its totals): the new value is what was counted since. The first record of a device is
the starting point: what it had counted before is given to no day. Days are local days unless
utc=True."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import sqlite3
from dataclasses import dataclass, field as _field
from datetime import date, datetime, time as dtime, timedelta, timezone

from .telemetry import SANE_TS, TelemetryError, open_store

COUNTERS = {"production": ("units",), "energy": ("harvested_wh", "used_wh")}
# A record stamped before SANE_TS has no day: such records are left out, and what they counted
# goes to the next record with a real time.


class ReportError(TelemetryError):
    pass


@dataclass
class Day:
    name: str  # a device, or a machine kind for the fleet rows
    machine: str
    day: date
    unit: str = ""
    units: float = 0.0
    harvested_wh: float = 0.0
    used_wh: float = 0.0
    pieces: int = 0
    devices: int = 1

    @property
    def wh_per_unit(self) -> float | None:
        return self.used_wh / self.units if self.units > 0 else None


@dataclass
class Report:
    db: str
    first: date
    last: date
    devices: list[Day]   # one per device and day with anything to say
    machines: list[Day]  # the same summed per machine kind (and unit name) and day
    unset_clock: int = 0  # records left out: stamped by a board whose clock was not set
    gaps: list = _field(default_factory=list)  # (device, first, last) seqs missing in between


def parse_day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError("%s must be a date like 2026-03-01 (YYYY-MM-DD), got %r"
                          % (what, text)) from None


def increases(points):
    """[(ts, total)] in seq order -> [(ts, increase)], the first point being the start."""
    out, prev = [], None
    for ts, v in points:
        if type(v) not in (int, float):
            continue
        if prev is not None:
            out.append((ts, v - prev if v >= prev else v))  # lower: counting restarted at 0
        prev = v
    return out


def _query(store, sql, args=()):
    try:
        return store.query(sql, args)
    except sqlite3.Error as e:
        raise ReportError("cannot read %s: %s%s" % (store.name, e, (
            " (is it a microfab telemetry database?)" if "no such table" in str(e) else ""))) \
            from None
    except Exception as e:  # psycopg's errors
        if type(e).__module__.split(".")[0] != "psycopg":
            raise
        raise ReportError("cannot read %s: %s" % (store.name, str(e).strip().splitlines()[0])) \
            from None


def _record(r):
    return r if isinstance(r, dict) else json.loads(r)


def build(db, date_from: str | None = None, date_to: str | None = None,
          utc: bool = False) -> Report:
    tz = timezone.utc if utc else None
    d_from, d_to = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if d_from and d_to and d_from > d_to:
        raise ReportError("--from %s is after --to %s" % (d_from, d_to))
    store = open_store(db, create=False)
    try:
        return _build(store, d_from, d_to, tz)
    finally:
        store.close()


def _stamp(d: date, tz) -> float:
    return datetime.combine(d, dtime(0), tzinfo=tz).timestamp()


def _build(store, d_from, d_to, tz) -> Report:
    span = _query(store, "SELECT min(ts), max(ts), count(*) FROM telemetry WHERE ts >= %s",
                  (SANE_TS,))[0]
    unset = _query(store, "SELECT count(*) FROM telemetry WHERE ts < %s", (SANE_TS,))[0][0]
    if not span[2]:
        raise ReportError("%s holds no telemetry yet: start `microfab collect`, and boards "
                          "publish to microfab/<device>/tele/<kind>%s" % (store.name, (
                              " (%d records stamped before 2024: their boards' clocks were "
                              "never set; give them a time server)" % unset) if unset else ""))
    held = [datetime.fromtimestamp(t, tz).date() for t in span[:2]]
    first, last = d_from or held[0], d_to or held[1]
    t0, t1 = _stamp(first, tz), _stamp(last + timedelta(days=1), tz)
    t0 = max(t0, SANE_TS)
    rows = _query(store, "SELECT device, seq, ts, kind, record FROM telemetry WHERE kind IN "
                  "('production', 'energy', 'piece') AND ts >= %s AND ts < %s "
                  "ORDER BY device, seq", (t0, t1))
    if not rows:
        raise ReportError("no production or energy records from %s to %s; %s holds telemetry "
                          "from %s to %s" % (first, last, store.name, held[0], held[1]))
    # Each counter starts from the device's last record before the period, when there is one.
    starts = _query(store, "SELECT t.device, t.seq, t.ts, t.kind, t.record FROM telemetry t "
                    "JOIN (SELECT device, kind, max(seq) AS seq FROM telemetry WHERE kind IN "
                    "('production', 'energy') AND ts >= %s AND ts < %s GROUP BY device, kind) b "
                    "ON t.device = b.device AND t.seq = b.seq", (SANE_TS, t0))
    machines, units = _machines(store), {}
    series: dict = {}
    days: dict = {}
    for device, seq, ts, kind, rec in sorted(list(starts) + list(rows), key=lambda r: r[:2]):
        rec = _record(rec)
        if kind == "piece":
            _day(days, device, machines, ts, tz).pieces += 1
            continue
        for field in COUNTERS[kind]:
            series.setdefault((device, field), []).append((ts, rec.get(field)))
        if kind == "production" and isinstance(rec.get("unit"), str):
            units[device] = rec["unit"]
    for (device, field), points in series.items():
        for ts, inc in increases(points):
            if ts >= t0:
                d = _day(days, device, machines, ts, tz)
                setattr(d, field, getattr(d, field) + inc)
    for d in days.values():
        d.unit = units.get(d.name, "")
    devices = sorted(days.values(), key=lambda d: (d.name, d.day))
    return Report(store.name, first, last, devices, _by_machine(devices), unset, _gaps(store))


def _gaps(store) -> list:
    """(device, first, last) of every run of seqs missing between a device's first and last
    record: records the collector never got (the board's journal may still hold them)."""
    ends = _query(store, "SELECT t.device, t.seq FROM telemetry t WHERE NOT EXISTS (SELECT 1 "
                  "FROM telemetry u WHERE u.device = t.device AND u.seq = t.seq + 1) "
                  "ORDER BY t.device, t.seq")
    out, prev = [], {}
    for device, seq in ends:
        if device in prev:  # the run after the previous end starts at the next record
            nxt = _query(store, "SELECT min(seq) FROM telemetry WHERE device = %s AND seq > %s",
                         (device, prev[device]))[0][0]
            out.append((device, prev[device] + 1, nxt - 1))
        prev[device] = seq
    return out


def _machines(store) -> dict:
    """device -> machine kind: the newest status record's `machine`, else the retained info."""
    found = {}
    for device, machine in _query(store, "SELECT device, machine FROM devices "
                                  "WHERE machine IS NOT NULL"):
        found[device] = machine
    for device, rec in _query(store, "SELECT t.device, t.record FROM telemetry t JOIN (SELECT "
                              "device, max(seq) AS seq FROM telemetry WHERE kind = 'status' "
                              "GROUP BY device) s ON t.device = s.device AND t.seq = s.seq"):
        machine = _record(rec).get("machine")
        if isinstance(machine, str) and machine:
            found[device] = machine
    return found


def _day(days, device, machines, ts, tz) -> Day:
    day = datetime.fromtimestamp(ts, tz).date()
    d = days.get((device, day))
    if d is None:
        d = days[(device, day)] = Day(device, machines.get(device, "unknown"), day)
    return d


def _by_machine(devices: list[Day]) -> list[Day]:
    out: dict = {}
    for d in devices:
        key = (d.machine, d.unit, d.day)
        m = out.get(key)
        if m is None:
            m = out[key] = Day(d.machine, d.machine, d.day, d.unit, devices=0)
        m.units += d.units
        m.harvested_wh += d.harvested_wh
        m.used_wh += d.used_wh
        m.pieces += d.pieces
        m.devices += 1
    return sorted(out.values(), key=lambda d: (d.machine, d.unit, d.day))


# --- output ---

COLUMNS = ("level", "name", "machine", "day", "units", "unit", "harvested_wh", "used_wh",
           "wh_per_unit", "pieces")


def _num(x, digits=2) -> str:
    if x is None:
        return ""
    if digits < 2 and float(x).is_integer():
        return "%d" % x
    return "%.*f" % (digits, x)


HEADS = {"device": ("device", "machine", "day", "production", "unit", "harvested Wh",
                    "used Wh", "Wh/unit", "pieces"),
         "machine": ("machine kind", "devices", "day", "production", "unit", "harvested Wh",
                     "used Wh", "Wh/unit", "pieces")}


def table_rows(days: list[Day], level: str = "device"):
    for d in days:
        yield (d.name, d.machine if level == "device" else str(d.devices), d.day.isoformat(),
               _num(d.units, 1), d.unit, _num(d.harvested_wh), _num(d.used_wh),
               _num(d.wh_per_unit, 3), str(d.pieces))


def print_tables(r: Report, console):
    from rich.table import Table

    for level, title, days in (("device", "per device", r.devices),
                               ("machine", "per machine kind", r.machines)):
        t = Table(title="%s, %s to %s" % (title, r.first, r.last))
        for i, head in enumerate(HEADS[level]):
            t.add_column(head, justify="left" if i in (0, 2, 4) or head == "machine" else "right")
        for row in table_rows(days, level):
            t.add_row(*row)
        console.print(t)


def write_csv(r: Report, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for level, days in (("device", r.devices), ("machine", r.machines)):
            for d in days:
                w.writerow((level, d.name, d.machine, d.day.isoformat(), round(d.units, 6),
                            d.unit, round(d.harvested_wh, 6), round(d.used_wh, 6),
                            "" if d.wh_per_unit is None else round(d.wh_per_unit, 6), d.pieces))


def png_bytes(r: Report) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 9), layout="constrained")
    ax_e, ax_p, ax_w = fig.subplots(3, 1, sharex=True)
    days = sorted({d.day for d in r.machines})
    used = {day: 0.0 for day in days}
    harvested = dict(used)
    for d in r.machines:
        used[d.day] += d.used_wh
        harvested[d.day] += d.harvested_wh
    x = [datetime.combine(day, dtime(12)) for day in days]
    ax_e.bar([t - timedelta(hours=4) for t in x], [harvested[d] for d in days], width=0.33,
             label="harvested", color="#3a923a")
    ax_e.bar([t + timedelta(hours=4) for t in x], [used[d] for d in days], width=0.33,
             label="used", color="#c8553d")
    ax_e.set_ylabel("Wh per day")
    ax_e.set_title("Energy, all devices")
    ax_e.legend()
    for (machine, unit), group in _groups(r.machines).items():
        label = "%s (%s)" % (machine, unit or "units")
        ax_p.plot([datetime.combine(d.day, dtime(12)) for d in group], [d.units for d in group],
                  marker="o", label=label)
        per = [(datetime.combine(d.day, dtime(12)), d.wh_per_unit) for d in group
               if d.wh_per_unit is not None]
        if per:
            ax_w.plot(*zip(*per), marker="o", label=label)
    ax_p.set_ylabel("units per day")
    ax_p.set_title("Production per machine kind")
    ax_w.set_ylabel("Wh per unit")
    ax_w.set_title("Energy used per unit produced")
    for ax in (ax_p, ax_w):
        if ax.lines:
            ax.legend()
    import matplotlib.dates as mdates

    if len(days) <= 21:  # one tick a day; past three weeks matplotlib picks them
        ax_w.xaxis.set_major_locator(mdates.HourLocator(byhour=12))  # under the points
        ax_w.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    if x:
        ax_w.set_xlim(x[0] - timedelta(hours=14), x[-1] + timedelta(hours=14))
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _groups(days: list[Day]) -> dict:
    out: dict = {}
    for d in days:
        out.setdefault((d.machine, d.unit), []).append(d)
    return out


def html_page(r: Report, png: bytes | None = None) -> str:
    png = png if png is not None else png_bytes(r)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<title>microfab report %s to %s</title><style>" % (r.first, r.last),
             "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}th,td{padding:.25em .7em;"
             "border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child,"
             "td:nth-child(3),td:nth-child(5){text-align:left}img{max-width:100%}"
             "</style></head><body>",
             "<h1>Production and energy, %s to %s</h1>" % (r.first, r.last),
             "<p>From %s. Days are the increases of the boards' cumulative totals; a total that "
             "went down is counted as a restart from zero.</p>" % html.escape(r.db),
             "<img alt='energy and production per day' src='data:image/png;base64,%s'>"
             % base64.b64encode(png).decode()]
    for level, title, days in (("machine", "Per machine kind", r.machines),
                               ("device", "Per device", r.devices)):
        parts.append("<h2>%s</h2><table><tr>%s</tr>" % (title, "".join(
            "<th>%s</th>" % h for h in HEADS[level])))
        for row in table_rows(days, level):
            parts.append("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(c) for c in row))
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


# --- the command ---

def cli(args) -> int:
    """`microfab report`: args.db, args.date_from, args.date_to, args.csv, args.png, args.html,
    args.utc."""
    from rich.console import Console

    out = Console(markup=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
    try:
        r = build(args.db, args.date_from, args.date_to, utc=getattr(args, "utc", False))
        print_tables(r, out)
        for device, a, b in r.gaps[:10]:
            err.print("microfab: %s: records %d to %d never arrived; if its journal still holds "
                      "them: microfab send resend from=%d --broker URL --device %s"
                      % (device, a, b, a, device))
        if r.unset_clock:
            err.print("microfab: %d records were left out: stamped before 2024 by boards whose "
                      "clock was not set (what they counted is in the next record with a real "
                      "time); give those boards a time server, see docs/telemetry.md"
                      % r.unset_clock)
        png = png_bytes(r) if (args.png or args.html) else None
        for path, write in ((args.csv, lambda p: write_csv(r, p)),
                            (args.png, lambda p: open(p, "wb").write(png)),
                            (args.html, lambda p: open(p, "w").write(html_page(r, png)))):
            if path:
                try:
                    write(path)
                except OSError as e:
                    raise ReportError("cannot write %s: %s" % (path, e.strerror or e)) from None
                out.print("wrote %s" % path)
    except TelemetryError as e:
        err.print("microfab: %s" % e)
        return 1
    return 0


def add_arguments(p):
    p.add_argument("--db", help="SQLite file or postgresql://... URL (default: the collector's "
                   "~/.local/share/microfab/telemetry.db)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="last day, YYYY-MM-DD")
    p.add_argument("--csv", metavar="FILE", help="write the figures as CSV")
    p.add_argument("--png", metavar="FILE", help="write the plots as PNG")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML page")
    p.add_argument("--utc", action="store_true", help="days in UTC (default: local time)")


DESCRIPTION = ("Production and energy per device, per machine kind and per day, from "
               "the collected telemetry.")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="microfab report", description=DESCRIPTION)
    add_arguments(p)
    return cli(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
