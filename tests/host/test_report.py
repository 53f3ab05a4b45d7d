"""`microfab report` on a database made here: production and energy per device, per machine
kind and per day from the boards' cumulative totals, a board reset that restarts its totals,
Wh per unit, and the CSV, PNG and self-contained HTML files."""
import base64
import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import date, datetime

import pytest

from microfab.report import ReportError, build, increases, main
from microfab.telemetry import SqliteStore, open_store

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def at(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute).timestamp()  # local time


def fleet_records():
    """(device, seq, ts, kind, record) of three boards over two days."""
    out = []

    def add(device, seq, ts, kind, **fields):
        out.append((device, seq, ts, kind, {"seq": seq, "ts": ts, "kind": kind, **fields}))

    # loom1: machine from its status records; 120 picks and 24 Wh on day 1, 80 and 16 on day 2
    add("loom1", 1, at(D1, 7), "status", machine="loom", state="ready")
    add("loom1", 2, at(D1, 8), "production", units=100, unit="picks")  # the starting point
    add("loom1", 3, at(D1, 8), "energy", harvested_wh=0.0, used_wh=10.0, battery_soc=90, power_w=5)
    add("loom1", 4, at(D1, 12), "production", units=150, unit="picks")
    add("loom1", 5, at(D1, 18), "production", units=220, unit="picks")
    add("loom1", 6, at(D1, 18), "energy", harvested_wh=0.0, used_wh=34.0, battery_soc=80, power_w=5)
    add("loom1", 7, at(D2, 8), "production", units=230, unit="picks")
    add("loom1", 8, at(D2, 12), "production", units=300, unit="picks")
    add("loom1", 9, at(D2, 12), "energy", harvested_wh=0.0, used_wh=50.0, battery_soc=70, power_w=5)
    add("loom1", 10, at(D2, 13), "piece", units=40, seconds=3600, wh=8.0)
    add("loom1", 11, at(D2, 15), "piece", units=30, seconds=2700, wh=6.0)
    # loom2: a second loom, day 1 only: 30 picks, 3 Wh
    add("loom2", 1, at(D1, 9), "status", machine="loom")
    add("loom2", 2, at(D1, 9), "production", units=0, unit="picks")
    add("loom2", 3, at(D1, 9), "energy", harvested_wh=0, used_wh=0)
    add("loom2", 4, at(D1, 17), "production", units=30, unit="picks")
    add("loom2", 5, at(D1, 17), "energy", harvested_wh=0, used_wh=3.0)
    # wind1: machine from its retained info; reset on day 2 restarts its totals from zero
    add("wind1", 1, at(D1, 6), "energy", harvested_wh=5.0, used_wh=1.0)
    add("wind1", 2, at(D1, 20), "energy", harvested_wh=9.0, used_wh=2.0)
    add("wind1", 3, at(D1, 20), "production", units=12, unit="g")
    add("wind1", 4, at(D2, 10), "energy", harvested_wh=0.5, used_wh=0.25)  # board reset
    add("wind1", 5, at(D2, 10), "production", units=2, unit="g")
    add("wind1", 6, at(D2, 16), "energy", harvested_wh=2.5, used_wh=0.75)
    add("wind1", 7, at(D2, 16), "production", units=10, unit="g")
    return out


def fill(store, records):
    rows = [(d, s, t, k, json.dumps(r), t + 0.1) for d, s, t, k, r in records]
    store.write(rows, [("wind1", ("machine", "info"), ("windrig", '{"machine": "windrig"}'),
                        at(D1, 6))], [])


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "telemetry.db"
    store = SqliteStore(path)
    fill(store, fleet_records())
    store.close()
    return path


def by_key(days):
    return {(d.name, d.day): d for d in days}


def test_days_per_device_and_per_machine_kind_from_cumulative_totals(db):
    r = build(db)
    assert (r.first, r.last) == (D1, D2)
    dev = by_key(r.devices)
    loom1_d1, loom1_d2 = dev[("loom1", D1)], dev[("loom1", D2)]
    assert (loom1_d1.machine, loom1_d1.unit, loom1_d1.units, loom1_d1.used_wh) == (
        "loom", "picks", 120, 24.0)
    assert loom1_d1.wh_per_unit == pytest.approx(0.2)
    assert (loom1_d2.units, loom1_d2.used_wh, loom1_d2.pieces) == (80, 16.0, 2)
    assert dev[("loom2", D1)].units == 30 and dev[("loom2", D1)].used_wh == 3.0
    assert ("loom2", D2) not in dev
    m = {(d.machine, d.day): d for d in r.machines}
    loom_d1 = m[("loom", D1)]
    assert (loom_d1.units, loom_d1.used_wh, loom_d1.devices) == (150, 27.0, 2)
    assert m[("loom", D1)].wh_per_unit == pytest.approx(27 / 150)
    assert m[("loom", D2)].units == 80


def test_a_board_reset_that_restarts_its_totals_counts_from_zero(db):
    w = by_key(build(db).devices)
    d1, d2 = w[("wind1", D1)], w[("wind1", D2)]
    assert d1.machine == "windrig" and d1.unit == "g"
    assert (d1.harvested_wh, d1.used_wh) == (4.0, 1.0)
    # 9.0 -> 0.5 is a restart: 0.5 since it, then +2.0
    assert d2.harvested_wh == pytest.approx(2.5) and d2.used_wh == pytest.approx(0.75)
    assert d2.units == 2 + 8  # 12 -> 2 (restart) -> 10
    assert increases([(1, 5.0), (2, 9.0), (3, 0.5), (4, 2.5), (5, None), (6, 3.0)]) == \
        [(2, 4.0), (3, 0.5), (4, 2.0), (6, 0.5)]


def test_a_period_starts_from_the_last_totals_before_it(db):
    r = build(db, "2026-03-02", "2026-03-02")
    dev = by_key(r.devices)
    assert set(dev) == {("loom1", D2), ("wind1", D2)}
    assert dev[("loom1", D2)].units == 80 and dev[("loom1", D2)].used_wh == 16.0
    assert dev[("wind1", D2)].harvested_wh == pytest.approx(2.5)
    assert by_key(build(db, None, "2026-03-01").devices).keys() == {
        ("loom1", D1), ("loom2", D1), ("wind1", D1)}


def test_csv_png_and_a_self_contained_html_page(db, tmp_path):
    out = {ext: tmp_path / ("r." + ext) for ext in ("csv", "png", "html")}
    r = subprocess.run([sys.executable, "-m", "microfab.report", "--db", str(db), "--csv",
                        str(out["csv"]), "--png", str(out["png"]), "--html", str(out["html"])],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "COLUMNS": "160"})
    assert r.returncode == 0, r.stderr
    assert "per device" in r.stdout and "per machine kind" in r.stdout
    assert re.search(r"loom1 .*2026-03-01 .*120 .*picks .*24\.00 .*0\.200", r.stdout), r.stdout
    rows = list(csv.DictReader(out["csv"].open()))
    loom = [x for x in rows if x["level"] == "machine" and x["name"] == "loom"]
    assert [(x["day"], float(x["units"]), float(x["used_wh"])) for x in loom] == [
        ("2026-03-01", 150.0, 27.0), ("2026-03-02", 80.0, 16.0)]
    wind = [x for x in rows if x["level"] == "device" and x["name"] == "wind1"]
    assert wind[1]["day"] == "2026-03-02" and float(wind[1]["harvested_wh"]) == 2.5
    png = out["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    page = out["html"].read_text()
    assert "<td>loom1</td>" in page and "<td>windrig</td>" in page
    # Self-contained: nothing fetched from anywhere, the plot is inside the page.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|[^"'d#])""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    embedded = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page).group(1)
    assert base64.b64decode(embedded)[:8] == b"\x89PNG\r\n\x1a\n"


def test_device_names_cannot_inject_html(tmp_path):
    store = SqliteStore(tmp_path / "t.db")
    evil = "<img src=x onerror=alert(1)>"
    fill(store, [(evil, 1, at(D1, 8), "production", {"units": 1}),
                 (evil, 2, at(D1, 9), "production", {"units": 5})])
    store.close()
    from microfab.report import html_page

    page = html_page(build(tmp_path / "t.db"), png=b"\x89PNG")
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_clear_errors_for_empty_missing_and_foreign_databases(tmp_path, db, capsys):
    def run_cli(*args):
        code = main(list(args))
        return code, capsys.readouterr().err.strip()

    SqliteStore(tmp_path / "empty.db").close()
    code, msg = run_cli("--db", str(tmp_path / "empty.db"))
    assert code == 1 and "holds no telemetry yet: start `microfab collect`" in msg
    code, msg = run_cli("--db", str(tmp_path / "nope.db"))
    assert code == 1 and "no telemetry database at" in msg
    assert not (tmp_path / "nope.db").exists()
    (tmp_path / "notes.db").write_text("not a database\n" * 200)
    code, msg = run_cli("--db", str(tmp_path / "notes.db"))
    assert code == 1 and "not a usable SQLite database" in msg
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE recipes (name TEXT)")
    other.close()
    code, msg = run_cli("--db", str(tmp_path / "other.db"))
    assert code == 1 and "no such table: telemetry (is it a microfab telemetry database?)" in msg
    code, msg = run_cli("--db", str(db), "--from", "March 1st")
    assert code == 1
    assert "--from must be a date like 2026-03-01 (YYYY-MM-DD), got 'March 1st'" in msg
    code, msg = run_cli("--db", str(db), "--from", "2026-03-02", "--to", "2026-03-01")
    assert code == 1 and "--from 2026-03-02 is after --to 2026-03-01" in msg
    code, msg = run_cli("--db", str(db), "--from", "2026-04-01")
    assert code == 1 and "no production or energy records from 2026-04-01" in msg
    assert "holds telemetry from 2026-03-01 to 2026-03-02" in msg
    code, msg = run_cli("--db", str(db), "--csv", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code == 1 and "cannot write" in msg and "No such file or directory" in msg
    with pytest.raises(ReportError):
        build(tmp_path / "empty.db")


def test_the_same_report_from_postgresql(tmp_path, pg_url):
    store = open_store(pg_url)
    fill(store, fleet_records())
    store.close()
    pg = build(pg_url)
    lite = tmp_path / "t.db"
    store = SqliteStore(lite)
    fill(store, fleet_records())
    store.close()
    assert pg.devices == build(lite).devices and pg.machines == build(lite).machines


def test_records_of_a_board_whose_clock_was_not_set_are_left_out_and_nothing_is_lost(tmp_path,
                                                                                     capsys):
    # A Pico W that lost power overnight and woke without a time server: its clock said
    # 2021-01-01 for two records; what it counted meanwhile arrives with the next real time.
    unset = datetime(2021, 1, 1, 0, 5).timestamp()
    recs = [("rig9", 1, at(D1, 8), "production", {"units": 10, "unit": "rows"}),
            ("rig9", 2, at(D1, 18), "production", {"units": 40, "unit": "rows"}),
            ("rig9", 3, unset, "production", {"units": 45, "unit": "rows"}),
            ("rig9", 4, unset + 600, "production", {"units": 55, "unit": "rows"}),
            ("rig9", 5, at(D2, 9), "production", {"units": 70, "unit": "rows"})]
    path = tmp_path / "t.db"
    store = SqliteStore(path)
    fill(store, [(d, s, t, k, dict(r, seq=s, ts=t, kind=k)) for d, s, t, k, r in recs])
    store.close()
    r = build(path)
    assert (r.first, r.last) == (D1, D2) and r.unset_clock == 2  # not from 2021
    dev = by_key(r.devices)
    assert dev[("rig9", D1)].units == 30 and dev[("rig9", D2)].units == 30  # 40 -> 70
    assert main(["--db", str(path)]) == 0
    assert "2 records were left out: stamped before 2024" in capsys.readouterr().err


def test_records_that_never_arrived_are_named_with_how_to_get_them_back(tmp_path, capsys):
    recs = [("loom4", s, at(D1, 8 + s), "production", {"units": 10 * s, "unit": "picks"})
            for s in (1, 2, 5, 6, 9)]
    path = tmp_path / "t.db"
    store = SqliteStore(path)
    fill(store, [(d, s, t, k, dict(r, seq=s, ts=t, kind=k)) for d, s, t, k, r in recs])
    store.close()
    assert build(path).gaps == [("loom4", 3, 4), ("loom4", 7, 8)]
    assert main(["--db", str(path)]) == 0
    err = capsys.readouterr().err
    assert "loom4: records 3 to 4 never arrived" in err
    assert "microfab send resend from=7 --broker URL --device loom4" in err
    assert build(tmp_path / "t.db").devices[0].units == 80  # the totals do not need them
