"""`microfab collect` against a real Mosquitto: boards publish with paho as the firmware does
(QoS 1, replays after reconnects, out of order); every (device, seq) is stored exactly once,
nothing the broker accepted is lost when the broker or the collector goes down, and collectors
in one shared-subscription group split a fleet between them."""
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab.collector import Collector, CollectorError, parse_broker
from microfab.pytest_plugin import Made
from microfab.telemetry import TelemetryError, default_db_path


class Board:
    """A board's MQTT side as the firmware has it: QoS 1, its own session, retries."""

    def __init__(self, port, device, clean=True):
        self.device = device
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="board-" + device,
                             protocol=mqtt.MQTTv5)
        self.c.reconnect_delay_set(0.1, 0.5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if clean else 600
        self.acked = set()  # mids the broker acknowledged: accepted, its responsibility now
        self.c.on_publish = lambda cl, ud, mid, rc, pr: self.acked.add(mid)
        self.c.connect("127.0.0.1", port, clean_start=clean, properties=props)
        self.c.loop_start()
        self.sent = []

    def send(self, seq, kind="energy", **fields):
        rec = {"seq": seq, "ts": 1767225600.0 + seq, "kind": kind, **fields}
        info = self.c.publish("microfab/%s/tele/%s" % (self.device, kind), json.dumps(rec), qos=1)
        self.sent.append(info)
        return info

    def raw(self, topic, payload, retain=False):
        self.sent.append(self.c.publish(topic, payload, qos=1, retain=retain))

    def wait(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not all(i.mid in self.acked for i in self.sent):
            assert time.monotonic() < deadline, "the broker did not accept every message"
            time.sleep(0.02)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def boards(mosquitto):
    made = Made()
    yield lambda device, clean=True: made.add(Board(mosquitto.port, device, clean))
    made.close()


@pytest.fixture
def collectors():
    made = []

    def make(url, db, paho_reader=False, **kw):
        c = Collector(url, str(db), **kw)
        if paho_reader:
            c.client.on_publish_fast = None  # paho's own reader, as with a paho it cannot speed up
        c.start()
        made.append(c)
        time.sleep(0.3)  # subscribed
        return c

    yield make
    for c in made:
        c.stop()
        c.close()


def wait_count(c, n, timeout=20.0, device=None):
    deadline = time.monotonic() + timeout
    while c.count(device) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    c.flush()
    return c.count(device)


@pytest.mark.parametrize("reader", ["fast", "paho"])
def test_replays_and_out_of_order_records_are_stored_once_in_seq_order(mosquitto, boards,
                                                                        collectors, tmp_path,
                                                                        reader):
    c = collectors(mosquitto.url, tmp_path / "t.db", paho_reader=reader == "paho")
    loom, wind = boards("loom1"), boards("wind1")
    for seq in (1, 2, 3, 5, 4, 2, 3, 6, 1):  # after a reconnect a board replays
        loom.send(seq, "production", units=seq * 10, unit="picks")
    for seq in (10, 11, 11, 12):
        wind.send(seq, "energy", harvested_wh=seq / 10, used_wh=0.1, battery_soc=80, power_w=3.0)
    loom.wait()
    wind.wait()
    assert wait_count(c, 9) == 9
    assert c.flush()
    assert c.count("loom1") == 6 and c.count("wind1") == 3
    recs = c.records("loom1")
    assert [r[0] for r in recs] == [1, 2, 3, 4, 5, 6]
    assert recs[3] == (4, 1767225604.0, "production",
                       {"seq": 4, "ts": 1767225604.0, "kind": "production", "units": 40,
                        "unit": "picks"})
    assert c.stats["stored"] == 9 and c.stats["duplicates"] == 4 and c.stats["rejected"] == 0


def test_large_records_and_mqtt5_properties_arrive_intact(mosquitto, boards, collectors,
                                                          tmp_path):
    c = collectors(mosquitto.url, tmp_path / "t.db")
    b = boards("knit2")
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("firmware", "0.1.0"), ("board", "pico_w")]
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    rows = ["0110" * 50] * 1500  # a 300 KB record: more than one read of the socket
    big = {"seq": 1, "ts": 1767225601.0, "kind": "pattern", "rows": rows}
    b.sent.append(b.c.publish("microfab/knit2/tele/pattern", json.dumps(big), qos=1,
                              properties=props))
    for seq in range(2, 202):
        rec = {"seq": seq, "ts": 1767225600.0 + seq, "kind": "energy", "used_wh": seq}
        b.sent.append(b.c.publish("microfab/knit2/tele/energy", json.dumps(rec), qos=1,
                                  properties=props))
    b.wait()
    assert wait_count(c, 201) == 201
    recs = c.records("knit2")
    assert recs[0][3] == big
    assert [r[3]["used_wh"] for r in recs[1:]] == list(range(2, 202))


def test_bad_messages_are_kept_aside_with_the_reason_and_the_rest_goes_on(mosquitto, boards,
                                                                           collectors, tmp_path):
    db = tmp_path / "t.db"
    c = collectors(mosquitto.url, db)
    b = boards("knit1")
    b.raw("microfab/knit1/tele/energy", b"not json")
    b.raw("microfab/knit1/tele/energy", b'{"ts": 1767225600, "kind": "energy"}')
    b.raw("microfab/knit1/tele/energy", b'{"seq": 3, "ts": 1767225600, "used_wh": NaN}')
    b.raw("microfab/knit1/tele/energy", b'{"seq": 4, "kind": "production"}')
    b.raw("microfab/knit1/tele/energy", b"\xff\xfe")
    b.send(5, "energy", used_wh=1.0)
    b.send(6, "status", state="ready")  # tele/status is a record, not the board's status
    b.raw("microfab/knit1/info", json.dumps({"machine": "knitter", "firmware": "0.1"}), retain=True)
    b.raw("microfab/loom5/status", json.dumps({"state": "online", "device": "loom5",
                                               "machine": "loom"}), retain=True)
    b.raw("microfab/loom5/status", json.dumps({"state": "offline", "device": "loom5"}))  # will
    b.wait()
    assert wait_count(c, 2) == 2
    assert c.stats["rejected"] == 5
    with sqlite3.connect(db) as con:
        reasons = [r[0] for r in con.execute("SELECT reason FROM rejected ORDER BY rowid")]
        machine = con.execute("SELECT machine FROM devices WHERE device = 'knit1'").fetchone()
        loom5 = con.execute("SELECT machine, status FROM devices WHERE device = 'loom5'").fetchone()
    assert "not a JSON object" in reasons[0]
    assert "seq must be a whole number" in reasons[1]
    assert "NaN is not allowed" in reasons[2]
    assert "kind 'production' in the record but 'energy' in the topic" in reasons[3]
    assert "not a JSON object" in reasons[4]
    assert machine == ("knitter",)
    assert loom5[0] == "loom" and json.loads(loom5[1])["state"] == "offline"
    with sqlite3.connect(db) as con:
        kinds = [r[0] for r in con.execute("SELECT kind FROM telemetry ORDER BY seq")]
        status = con.execute("SELECT status FROM devices WHERE device = 'knit1'").fetchone()
    assert kinds == ["energy", "status"] and status == (None,)


def test_a_broker_restart_in_the_middle_loses_nothing_the_broker_accepted(mosquitto, boards,
                                                                          collectors, tmp_path):
    c = collectors(mosquitto.url, tmp_path / "t.db", batch_ms=300)
    b = boards("wind7", clean=False)
    n = 1500

    def publish():
        for seq in range(1, n + 1):
            b.send(seq, "energy", harvested_wh=seq * 0.01)
            if seq % 50 == 0:
                time.sleep(0.01)

    t = threading.Thread(target=publish)
    t.start()
    while len(b.sent) < n // 3:
        time.sleep(0.005)
    mosquitto.restart(down_s=0.5)
    t.join()
    b.wait(timeout=30)
    assert wait_count(c, n, timeout=30) == n
    assert [r[0] for r in c.records("wind7")] == list(range(1, n + 1))
    assert c.stats["connects"] >= 2


def test_a_killed_collector_loses_nothing_it_had_not_committed(mosquitto, boards, tmp_path):
    """The first collector cannot commit (another program holds the database) and is killed
    (SIGKILL) with 300 messages received: it had not acked them, so the broker hands them to
    the next collector with the same client id."""
    db = tmp_path / "t.db"
    args = [sys.executable, "-m", "microfab.collector", "--broker", mosquitto.url, "--db",
            str(db), "--client-id", "col-A"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "collecting" in first.stdout.readline()
    time.sleep(0.5)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    b = boards("loom3")
    for seq in range(1, 301):
        b.send(seq, "production", units=seq, unit="picks")
    b.wait()
    time.sleep(0.5)  # at the collector, waiting for the database
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    holder.execute("ROLLBACK")
    assert holder.execute("SELECT count(*) FROM telemetry").fetchone()[0] == 0
    holder.close()
    for seq in range(301, 601):
        b.send(seq, "production", units=seq, unit="picks")
    b.wait()
    second = Collector(mosquitto.url, str(db), client_id="col-A").start()
    try:
        assert wait_count(second, 600) == 600
        assert [r[0] for r in second.records("loom3")] == list(range(1, 601))
    finally:
        second.stop()
        second.close()


def test_two_collectors_in_a_group_split_the_fleet_and_store_each_record_once(
        mosquitto, boards, collectors, tmp_path):
    a = collectors(mosquitto.url, tmp_path / "a.db", client_id="col-a", group="microfab")
    b = collectors(mosquitto.url, tmp_path / "b.db", client_id="col-b", group="microfab")
    fleet = [boards("rig%02d" % i) for i in range(10)]
    for seq in range(1, 41):
        for board in fleet:
            board.send(seq, "energy", harvested_wh=seq)
    for board in fleet:
        board.wait()
    deadline = time.monotonic() + 20
    while a.count() + b.count() < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = []
    for c in (a, b):
        c.flush()
        for board in fleet:
            keys += [(board.device, r[0]) for r in c.records(board.device)]
    assert a.count() > 50 and b.count() > 50  # both took a share
    assert sorted(keys) == sorted((bd.device, s) for bd in fleet for s in range(1, 41))


def test_a_collector_away_keeps_its_share_and_one_retired_gives_it_up(mosquitto, boards,
                                                                     collectors, tmp_path):
    a = collectors(mosquitto.url, tmp_path / "a.db", client_id="col-a", group="microfab")
    b = collectors(mosquitto.url, tmp_path / "b.db", client_id="col-b", group="microfab")
    b.stop()  # away: the broker keeps its session and goes on giving it a share
    board = boards("rig1")
    for seq in range(1, 101):
        board.send(seq, "energy", harvested_wh=seq)
    board.wait()
    time.sleep(0.5)
    a.flush()
    held = a.count()
    assert 0 < held < 100
    # Retired: it takes what waited for it, and its session ends when it stops.
    last = collectors(mosquitto.url, tmp_path / "b.db", client_id="col-b", group="microfab",
                      session_expiry_s=0)
    assert wait_count(last, 100 - held) == 100 - held
    last.stop()
    for seq in range(101, 151):
        board.send(seq, "energy", harvested_wh=seq)
    board.wait()
    assert wait_count(a, held + 50) == held + 50  # all of the new ones


def test_without_a_group_every_collector_gets_every_message(mosquitto, boards, collectors,
                                                            tmp_path):
    a = collectors(mosquitto.url, tmp_path / "a.db", client_id="col-a")
    b = collectors(mosquitto.url, tmp_path / "b.db", client_id="col-b")
    board = boards("poly1")
    for seq in range(1, 21):
        board.send(seq, "production", units=seq, unit="g")
    board.wait()
    assert wait_count(a, 20) == 20 and wait_count(b, 20) == 20


def test_a_collector_started_before_its_broker_connects_when_the_broker_comes(tmp_path):
    from microfab.broker import Mosquitto

    broker = Mosquitto(start=False)
    try:
        c = Collector(broker.url, str(tmp_path / "t.db")).start()
        time.sleep(0.5)
        assert not c.stats["connected"]
        broker.start()
        deadline = time.monotonic() + 10
        while not c.stats["connected"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        b = Board(broker.port, "late1")
        b.send(1, "energy", used_wh=0.5)
        b.wait()
        assert wait_count(c, 1) == 1
        b.close()
        c.stop()
        c.close()
    finally:
        broker.close()


def test_cli_shows_figures_stops_cleanly_on_ctrl_c_and_never_shows_the_password(
        mosquitto, boards, tmp_path):
    db = tmp_path / "t.db"
    url = "mqtt://fab:s3cret-pa55@127.0.0.1:%d" % mosquitto.port
    p = subprocess.Popen([sys.executable, "-m", "microfab.collector", "--broker", url, "--db",
                          str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "collecting microfab/+/tele/# from" in p.stdout.readline()
    time.sleep(0.5)
    b = boards("loom9")
    for seq in (1, 2, 2, 3):
        b.send(seq, "production", units=seq, unit="picks")
    b.wait()
    time.sleep(0.8)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "stopped: 4 messages, 3 stored, 1 duplicates ignored, 0 rejected" in out
    assert "s3cret-pa55" not in out + err


def test_bad_settings_are_refused_with_what_was_expected(tmp_path):
    with pytest.raises(CollectorError, match="mqtt://HOST:PORT") as e:
        parse_broker("http://fab:hunter2@broker:1883")
    assert "hunter2" not in str(e.value) and "fab:***@broker" in str(e.value)
    with pytest.raises(CollectorError, match="port must be a number"):
        parse_broker("mqtt://broker:99999")
    assert parse_broker("mqtts://u:p%40ss@h") == {"host": "h", "port": 8883, "tls": True,
                                                   "username": "u", "password": "p@ss"}
    bad = tmp_path / "notes.db"
    bad.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(TelemetryError, match="not a usable SQLite database"):
        Collector("mqtt://127.0.0.1:1", str(bad))
    assert bad.read_text().startswith("these are my notes")  # left as it was
    with pytest.raises(CollectorError, match="group must be a name"):
        Collector("mqtt://127.0.0.1:1", str(tmp_path / "t.db"), group="a/b")


def test_the_default_database_is_in_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "microfab" / "telemetry.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "microfab" / "telemetry.db"


# --- PostgreSQL, when a server is reachable ---

def test_postgresql_two_collectors_into_one_database_store_each_record_once(
        mosquitto, boards, collectors, pg_url):
    a = collectors(mosquitto.url, pg_url, client_id="pg-a", group="microfab")
    b = collectors(mosquitto.url, pg_url, client_id="pg-b", group="microfab")
    fleet = [boards("pg%d" % i) for i in range(4)]
    for seq in (1, 2, 3, 4, 5, 3, 4, 6, 7, 8):  # replays included
        for board in fleet:
            board.send(seq, "production", units=seq, unit="rows")
    for board in fleet:
        board.wait()
    assert wait_count(a, 32) == 32
    b.flush()
    assert a.stats["stored"] + b.stats["stored"] == 32
    assert a.stats["duplicates"] + b.stats["duplicates"] == 8
    assert a.stats["stored"] > 0 and b.stats["stored"] > 0
    recs = a.records("pg2")
    assert [r[0] for r in recs] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert recs[0][3] == {"seq": 1, "ts": 1767225601.0, "kind": "production", "units": 1,
                          "unit": "rows"}


def test_a_board_that_counts_its_seqs_anew_is_said_and_its_records_kept(mosquitto, boards,
                                                                       collectors, tmp_path):
    db = tmp_path / "t.db"
    c = collectors(mosquitto.url, db)
    b = boards("wiped1")
    for seq in (1, 2, 3):
        b.send(seq, "energy", used_wh=float(seq))
    b.send(2, "energy", used_wh=2.0)  # a replay: the same record, quietly one
    b.wait()
    assert wait_count(c, 3) == 3
    # The flash was erased: seq 1 again, made later.
    b.c.publish("microfab/wiped1/tele/energy", json.dumps(
        {"seq": 1, "ts": 1767300000.0, "kind": "energy", "used_wh": 0.1}), qos=1).wait_for_publish()
    deadline = time.monotonic() + 10
    while c.stats["rejected"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    with sqlite3.connect(db) as con:
        rej = con.execute("SELECT topic, payload, reason FROM rejected").fetchall()
    assert c.stats["duplicates"] >= 1 and len(rej) == 1  # the replay is no conflict
    topic, payload, reason = rej[0]
    assert topic == "microfab/wiped1/tele/energy" and json.loads(payload)["used_wh"] == 0.1
    assert "wiped1 sent seq 1 again, made at another time" in reason
    assert "new device id" in c.stats["conflict"]
