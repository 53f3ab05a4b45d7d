"""From the board's counters to the maker's report: a simulated wind rig and loom publish over a
real Mosquitto, a real collector stores their records, and `microfab report` says how much each
made and how much energy it took, also across a power cut in the middle."""
import sqlite3

import pytest

from microfab import report
from microfab.collector import Collector
from microfab_sim.net import net_board, until

RIG = {"machine": "windrig", "pins": {"anemometer": 6, "rotor": 7, "row": 10, "brake": 11,
                                      "motor": 12}, "report_s": 60, "mode": "direct"}
HOUR = 3600


@pytest.fixture
def rig(mosquitto):
    b = net_board(mosquitto.url, "wind-1", machine=RIG, model={"wind": {"replay": [[0, 9.0]]}},
                  seed=4)
    yield b
    b.world.modules["vasyncio"]._io.reset()
    b.close()


def sent_all(b):
    j = b.send("status")["journal"]
    return j["cursor"] >= j["newest"]


def test_report_adds_up_what_a_wind_rig_made_and_harvested_across_a_power_cut(mosquitto, rig,
                                                                            tmp_path):
    db = tmp_path / "fleet.db"
    c = Collector(mosquitto.url, db).start()
    try:
        b = rig
        until(b, lambda: b.send("net")["connected"])
        b.advance(HOUR)
        model_before = b.hw.windrig.status()
        b.reset()  # the power goes; the rig's counters start from zero, its totals do not
        b.advance(HOUR)
        until(b, lambda: sent_all(b), virtual_s=120)
        model = b.hw.windrig.status()
        newest = b.send("status")["journal"]["newest"]
        assert c.flush()
        until(b, lambda: c.count("wind-1") >= newest - 1, virtual_s=5, step=0.5)
    finally:
        c.stop()
        c.close()
    with sqlite3.connect(db) as con:
        kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM telemetry")}
        energy = [r for r in con.execute("SELECT seq, record FROM telemetry WHERE kind = 'energy' "
                                          "ORDER BY seq")]
    assert {"status", "production", "energy", "boot"} <= kinds
    r = report.build(db, utc=True)
    (day,) = [d for d in r.devices if d.name == "wind-1"]
    assert day.machine == "windrig" and day.unit == "rows"
    # What the report counts from the first record on, against what the simulated world made:
    # the first minute is before the first record, and the power cut loses the minute between
    # the last record and the cut (~50 W of harvest at 9 m/s: under 1 Wh each).
    true_wh = model["gen_wh"]
    assert true_wh - 2.0 < day.harvested_wh < true_wh
    true_rows = model["rows"]
    assert true_rows - 40 < day.units <= true_rows and day.units > 400
    assert day.used_wh > 0 and day.wh_per_unit == pytest.approx(day.used_wh / day.units)
    assert model_before["gen_wh"] < true_wh / 2 + 2.0  # the cut was half way
    assert len(energy) >= 100
    print("\nreport: %.0f rows, %.2f Wh harvested (the world: %d rows, %.2f Wh), %.4f Wh/row used"
          % (day.units, day.harvested_wh, true_rows, true_wh, day.wh_per_unit))
