"""Records the collector never got, got back: the report names the gap, and the board, asked
with a signed `resend`, sends them again from its journal; the collector then holds every seq."""
import time

from microfab import report
from microfab.collector import Collector
from microfab_sim.net import Watcher, net_board, until

KEY = bytes(range(32))


def test_a_gap_in_the_collectors_records_is_reported_and_filled_from_the_journal(mosquitto,
                                                                                tmp_path):
    db = tmp_path / "t.db"
    b = net_board(mosquitto.url, "g1", KEY, seed=4, machine={"machine": "axis", "report_s": 5})
    w = Watcher(mosquitto.port, ("microfab/g1/reply",), client_id="resend-host")
    c = None
    try:
        c = Collector(mosquitto.url, db, client_id="col-g", session_expiry_s=0).start()
        until(b, lambda: c.count("g1") >= 5)
        c.stop()  # its session ends with it: what comes meanwhile is lost to it
        c.close()
        lost_from = b.send("status")["journal"]["newest"] + 1
        b.advance(60)  # 12 records the broker takes and drops: nobody subscribed
        c = Collector(mosquitto.url, db, client_id="col-g").start()
        time.sleep(0.3)
        until(b, lambda: b.send("net")["inflight"] == 0 and c.count("g1") > 0, virtual_s=30)
        b.advance(20)
        until(b, lambda: b.send("net")["inflight"] == 0)
        c.flush()
        (gap,) = [g for g in report.build(db).gaps if g[0] == "g1"]
        assert gap[1] == lost_from and gap[2] - gap[1] >= 10
        newest = b.send("status")["journal"]["newest"]

        w.command("g1", KEY, "resend", {"from": gap[1]}, ctr=1)
        until(b, lambda: w.json("microfab/g1/reply"))
        r = w.json("microfab/g1/reply")[0]
        assert r["ok"] and r["from"] == gap[1] and r["resending"] >= newest - gap[1] + 1
        until(b, lambda: c.count("g1") >= newest and b.send("net")["inflight"] == 0,
              virtual_s=60)
        c.flush()
        assert report.build(db).gaps == []
        assert [s for (s, *_rest) in c.records("g1")][:newest] == list(range(1, newest + 1))

        w.command("g1", KEY, "resend", {"from": 10 ** 6}, ctr=2)
        until(b, lambda: len(w.json("microfab/g1/reply")) == 2)
        assert "seq 1000000 is not in the journal, which holds 1 to" in \
            w.json("microfab/g1/reply")[1]["error"]
    finally:
        if c is not None:
            c.stop()
            c.close()
        w.close()
        b.world.modules["vasyncio"]._io.reset()
        b.close()
