"""The broker is gone for a simulated hour while the board goes on working and recording: nothing
is lost, the board backs off (a minute at most between attempts) instead of hammering, and once
the broker is back the collector (`microfab collect`, running all along and reconnecting by
itself) holds every record of that hour, exactly once, in order, stamped with the time it was
made.

Run with -s to see the figures."""
import sqlite3
import time

import pytest

from microfab.collector import Collector
from microfab_sim.net import net_board, until

KEY = bytes(range(32))
HOUR = 3600


# Mosquitto 2.0 saves a persistent session's plain subscriptions over a restart but not its
# shared ones ($share/...): until the collector has subscribed again, what boards publish has
# no subscriber and is gone once the broker acks it. A collector in a group (--group) must
# therefore be back before the boards; the default, plain subscription keeps everything
# whichever comes back first.
@pytest.mark.parametrize("share", [False, True], ids=["plain", "group-collector-back-first"])
def test_an_hour_without_broker_loses_nothing_and_the_collector_stores_everything_once_in_order(
        mosquitto, tmp_path, share):
    db = tmp_path / "telemetry.db"
    c = Collector(mosquitto.url, str(db), client_id="outage-collector",
                  group="microfab" if share else None).start()
    # The table as a user would query it: every kind of record, not only status.
    con = sqlite3.connect(db, timeout=5)
    stored = lambda upto: con.execute(  # noqa: E731
        "SELECT count(*) FROM telemetry WHERE device = 'o1' AND seq <= ?", (upto,)).fetchone()[0]
    # 10 s reports for an hour: 360 records of ~600 bytes, in a 512 KB journal.
    b = net_board(mosquitto.url, "o1", KEY, seed=3, machine={
        "machine": "axis", "report_s": 10, "journal": True, "journal_kb": 512})
    try:
        until(b, lambda: stored(1 << 30) >= 3 and b.send("net")["inflight"] == 0)
        before = b.send("status")["journal"]["newest"]
        mosquitto.stop()
        t0 = time.monotonic()
        attempts = []
        for _ in range(6):
            b.advance(HOUR / 6)
            attempts.append(b.send("net")["attempts"])
        assert b.send("home")["ok"]  # the machine answers and works all along
        real = time.monotonic() - t0
        j = b.send("status")["journal"]
        n = b.send("net")
        assert not n["connected"] and "ECONNREFUSED" in n["error"]
        assert not c.stats["connected"]  # the collector lost the broker too
        assert j["newest"] - before >= 359 and j["cursor"] == before and j["dropped"] == 0
        # Backing off: a minute at most between attempts (with jitter), so 60 to 130 an hour.
        per_10_min = [b_ - a for a, b_ in zip(attempts, attempts[1:])]
        assert all(10 <= x <= 22 for x in per_10_min), per_10_min

        mosquitto.start()
        newest = j["newest"]
        t1 = time.monotonic()
        if share:
            deadline = time.monotonic() + 10
            while not c.stats["connected"] and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # its SUBSCRIBE on the way
        until(b, lambda: b.send("status")["journal"]["cursor"] >= newest, virtual_s=180)
        # The broker holds what the board sent for the collector's session until the
        # collector's own reconnect (paho's back-off, in real time) takes it.
        deadline = time.monotonic() + 30
        while stored(newest) < newest and time.monotonic() < deadline:
            time.sleep(0.02)
        catch_up = time.monotonic() - t1
        c.flush()
        rows = con.execute("SELECT seq, ts, kind FROM telemetry WHERE device = 'o1' AND seq <= ? "
                           "ORDER BY rowid", (newest,)).fetchall()
        assert sorted(r[0] for r in rows) == list(range(1, newest + 1))  # once each, none lost
        # Committed in the order made: by seq and by the time each record was made.
        assert [r[0] for r in rows] == list(range(1, newest + 1))
        made = [r[1] for r in rows if r[0] > before]
        assert made == sorted(made) and made[-1] - made[0] >= HOUR - 20  # when made, not sent
        assert c.stats["connects"] >= 2 and c.stats["rejected"] == 0
        print("\nan hour without broker in %.1f s real, %d attempts; %d records made meanwhile "
              "(kinds %s), all in the collector once in order %.1f s after it came back"
              % (real, n["attempts"], newest - before, ",".join(sorted({r[2] for r in rows})),
                 catch_up))
    finally:
        con.close()
        b.world.modules["vasyncio"]._io.reset()
        b.close()
        c.stop()
        c.close()
