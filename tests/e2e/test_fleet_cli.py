"""The contract scripts rely on, through the command line only: `microfab sim ... --mqtt URL`
puts a simulated board on a broker, `microfab collect --broker URL --db PATH` stores what it
publishes in PATH's `telemetry` table (device, seq, ts, kind, record), and `microfab report`
reads it back."""
import json
import os
import sqlite3
import subprocess
import sys
import time


def test_a_simulated_board_on_the_command_line_ends_up_in_the_collectors_sqlite(
        mosquitto, serial_sim, tmp_path):
    db = tmp_path / "fleet.db"
    collect = subprocess.Popen([sys.executable, "-m", "microfab.cli", "collect", "--broker",
                                mosquitto.url, "--db", str(db), "--seconds", "6"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # subscribed before the board's first record
    sim = serial_sim("--board", "pico_w", "--machine", "windrig", "--mqtt", mosquitto.url,
                     "--device-id", "rig-7")
    out, err = collect.communicate(timeout=60)
    sim.stop()
    assert collect.returncode == 0, err
    assert "stored" in out and "0 rejected" in out
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT device, seq, ts, kind, record FROM telemetry "
                           "ORDER BY seq").fetchall()
        machine = con.execute("SELECT machine FROM devices WHERE device = 'rig-7'").fetchone()
    assert len(rows) >= 20 and {r[0] for r in rows} == {"rig-7"}
    assert [r[1] for r in rows] == list(range(1, len(rows) + 1))  # every record, once
    assert abs(rows[0][2] - time.time()) < 120  # stamped from today, not the sim's 2026-01-01
    kinds = {r[3] for r in rows}
    assert {"status", "production", "energy"} <= kinds, kinds
    for device, seq, ts, kind, record in rows:
        rec = json.loads(record)
        assert rec["seq"] == seq and rec["kind"] == kind and rec["ts"] == ts
    assert machine == ("windrig",)
    r = subprocess.run([sys.executable, "-m", "microfab.cli", "report", "--db", str(db),
                        "--utc", "--csv", str(tmp_path / "r.csv")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, COLUMNS="160"))
    assert r.returncode == 0, r.stderr
    assert "rig-7" in r.stdout and "windrig" in r.stdout
    csv = (tmp_path / "r.csv").read_text()
    assert "rig-7" in csv and "rows" in csv
