"""Records the collector never got, got back: the report names the gap, and the board, asked
with a signed `resend` (by hand, or by a collector that holds its key), sends them again from its
journal; the collector then holds every seq."""
import time

import pytest

from microfab import report
from microfab.collector import Collector
from microfab.provision import KeyStore
from microfab_sim.net import Watcher, net_board, until

KEY = bytes(range(32))


@pytest.fixture
def made():
    """Boards, collectors and watchers a test made, closed after it."""
    things = []
    yield things
    for t in reversed(things):
        if hasattr(t, "world"):
            t.world.modules["vasyncio"]._io.reset()
        elif hasattr(t, "stats"):
            t.stop()
        t.close()


def with_a_gap(made, mosquitto, db, device, **collector):
    """A board whose records from some seq on were lost to the collector (it was retired for a
    minute: its session ended, and the broker dropped what nobody subscribed to), and the
    collector back; returns (board, collector, first lost seq)."""
    b = net_board(mosquitto.url, device, KEY, seed=4, machine={"machine": "axis", "report_s": 5})
    made.append(b)
    c = Collector(mosquitto.url, db, client_id="col-" + device, session_expiry_s=0).start()
    until(b, lambda: c.count(device) >= 5)
    c.stop()
    c.close()
    lost_from = b.send("status")["journal"]["newest"] + 1
    b.advance(60)
    c = Collector(mosquitto.url, db, client_id="col-" + device, **collector).start()
    made.append(c)
    time.sleep(0.3)  # subscribed
    b.advance(10)  # records after the gap open it
    until(b, lambda: b.send("net")["inflight"] == 0)
    return b, c, lost_from


def at_real_pace(b, cond, real_s=20.0):
    """Run the board at about real time (the collector's waits are in real time) until cond."""
    deadline = time.monotonic() + real_s
    while not cond():
        assert time.monotonic() < deadline, "not met within %s real seconds" % real_s
        b.advance(0.5)
        time.sleep(0.05)


def test_a_gap_is_reported_and_filled_from_the_journal_when_asked(made, mosquitto, tmp_path):
    db = tmp_path / "t.db"
    b, c, lost_from = with_a_gap(made, mosquitto, db, "g1", fill_gaps_s=None)
    c.flush()
    (gap,) = [g for g in report.build(db).gaps if g[0] == "g1"]
    assert gap[1] == lost_from and gap[2] - gap[1] >= 10
    newest = b.send("status")["journal"]["newest"]
    w = Watcher(mosquitto.port, ("microfab/g1/reply",), client_id="resend-host")
    made.append(w)
    w.command("g1", KEY, "resend", {"from": gap[1]}, ctr=1)
    until(b, lambda: w.json("microfab/g1/reply"))
    r = w.json("microfab/g1/reply")[0]
    assert r["ok"] and r["from"] == gap[1] and r["resending"] >= newest - gap[1] + 1
    until(b, lambda: c.count("g1") >= newest and b.send("net")["inflight"] == 0, virtual_s=60)
    c.flush()
    assert report.build(db).gaps == []
    assert [r[0] for r in c.records("g1")][:newest] == list(range(1, newest + 1))
    w.command("g1", KEY, "resend", {"from": 10 ** 6}, ctr=2)
    until(b, lambda: len(w.json("microfab/g1/reply")) == 2)
    assert "seq 1000000 is not in the journal, which holds 1 to" in \
        w.json("microfab/g1/reply")[1]["error"]


def test_a_collector_with_the_key_asks_for_the_gap_itself(made, mosquitto, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    keys.put("g2", KEY, "127.0.0.1")
    db = tmp_path / "t.db"
    b, c, lost_from = with_a_gap(made, mosquitto, db, "g2", keystore=keys, fill_gaps_s=0.5)
    newest = b.send("status")["journal"]["newest"]
    at_real_pace(b, lambda: set(range(1, newest + 1)) <= {r[0] for r in c.records("g2")})
    c.flush()
    assert c.stats["resend_asked"] == 1 and c.stats["gap_error"] == ""
    assert report.build(db).gaps == []
    assert b.send("net")["accepted"] == 1  # the signed resend, run once


def test_without_the_key_the_collector_says_what_to_do(made, mosquitto, tmp_path):
    b, c, lost_from = with_a_gap(made, mosquitto, tmp_path / "t.db", "g3", fill_gaps_s=0.2,
                                 keystore=KeyStore(tmp_path / "none.json"))
    at_real_pace(b, lambda: c.stats["gap_error"] != "")
    assert ("records %d and on of g3 never arrived, and this computer has no key" % lost_from
            in c.stats["gap_error"])
    assert "microfab send resend from=%d" % lost_from in c.stats["gap_error"]
