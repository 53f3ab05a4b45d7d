"""The board on MQTT, against a real Mosquitto: journal records arrive at QoS 1 with their seq,
the journal's cursor moves only when the broker acknowledged, what was not acknowledged goes out
again after the broker comes back, the heater's control task keeps its period while the Wi-Fi
flaps and the broker is gone or silent, Home Assistant finds the board's sensors and forgets
them when it is retired, and the retained status turns "offline" through the last will when
the board vanishes.

Run with -s to see the figures."""
import json
import os
import signal
import time

import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` on sys.path
from microfab.broker import free_port
from microfab_sim.net import Watcher, net_board, until

from fab import hass

KEY = bytes(range(32))
PINS = {"heater": 6, "contactor": 7, "drum": 10, "hall": 11, "lid": 12, "hx_clk": 13, "hx_data": 14}
FLOSS = {"machine": "polyfloss", "pins": PINS, "report_s": 5, "journal": True}
PERIOD = 0.5  # s: the polyfloss control period


@pytest.fixture
def made():
    """Boards and watchers made by a test, closed after it (sockets too)."""
    things = []
    yield things
    for t in things:
        if hasattr(t, "world"):
            t.world.modules["vasyncio"]._io.reset()
        t.close()


def board(made, url, dev="b1", **kw):
    kw.setdefault("key", KEY)
    b = net_board(url, dev, seed=1, **kw)
    made.append(b)
    return b


def watcher(made, broker, topics=("microfab/#", "homeassistant/#")):
    w = Watcher(broker.port, topics, client_id="w%d" % len(made))
    made.append(w)
    return w


def net(b):
    return b.send("net")


def journal(b):
    return b.send("status")["journal"]


def seqs(w, dev="b1", kind=None):
    """The seqs of a board's records as they arrived: one kind, or all (status, production...)."""
    if kind:
        return [r["seq"] for r in w.json("microfab/%s/tele/%s" % (dev, kind))]
    return [json.loads(m[1])["seq"] for m in w.take("microfab/%s/tele/" % dev)]


def in_order_once(got):
    """(first-arrival order, duplicates): a replay may repeat a record, never lose one."""
    seen, order = set(), []
    for s in got:
        if s not in seen:
            seen.add(s)
            order.append(s)
    return order, len(got) - len(order)


# --- records out ---


def test_records_arrive_at_qos1_with_seq_and_the_cursor_moves_only_on_puback(made, mosquitto):
    w = watcher(made, mosquitto)
    b = board(made, mosquitto.url, machine={"machine": "axis", "report_s": 1, "journal": True})
    until(b, lambda: len(seqs(w)) >= 20)
    assert seqs(w) == list(range(1, len(seqs(w)) + 1))  # a first boot: from 1
    recs = w.json("microfab/b1/tele/status")
    assert len(recs) >= 19 and all(r["kind"] == "status" and r["ts"] >= 1767225600
                                   and r["state"] == "ready" for r in recs)
    # The idle axis's production total went out once, and is not repeated while it stands still.
    assert w.json("microfab/b1/tele/production") == [
        {"units": 0, "unit": "moves", "seq": 2, "ts": recs[0]["ts"], "kind": "production"}]
    assert {m[3] for m in w.take("microfab/b1/tele/")} == {1}  # delivered at QoS 1
    until(b, lambda: net(b)["inflight"] == 0)
    st = net(b)
    assert st["connected"] and st["acked"] == st["sent"] and st["cursor"] == journal(b)["newest"]

    # The broker stops answering (SIGSTOP): records keep coming into the journal, the cursor
    # stays where the last PUBACK left it, however long that lasts.
    os.kill(mosquitto.proc.pid, signal.SIGSTOP)
    try:
        at = net(b)["cursor"]
        b.advance(40)
        j = journal(b)
        assert j["cursor"] == at and j["newest"] >= at + 35 and j["dropped"] == 0
        st = net(b)
        assert not st["connected"] and "within" in st["error"]  # a timeout, not a hang
    finally:
        os.kill(mosquitto.proc.pid, signal.SIGCONT)
    # Back: what piled up goes out (new records keep coming meanwhile).
    newest = journal(b)["newest"]
    until(b, lambda: journal(b)["cursor"] >= newest and newest in seqs(w), virtual_s=120)
    order, dups = in_order_once(seqs(w))
    assert order[:newest] == list(range(1, newest + 1))
    print("\n%d records, %d sent twice (in flight when the broker froze)" % (newest, dups))


def test_unacknowledged_records_go_out_again_after_a_broker_restart(made, mosquitto):
    w = watcher(made, mosquitto)
    b = board(made, mosquitto.url, machine={"machine": "axis", "report_s": 2, "journal": True})
    until(b, lambda: len(seqs(w)) >= 5 and net(b)["inflight"] == 0)
    mosquitto.stop()
    b.advance(120)  # 60 records made while the broker is down
    st = net(b)
    assert not st["connected"] and st["attempts"] >= 4 and "ECONNREFUSED" in st["error"]
    assert journal(b)["unsent"] >= 59
    mosquitto.start()
    w.wait_connected()
    until(b, lambda: journal(b)["unsent"] == 0, virtual_s=120)
    newest = journal(b)["newest"]
    until(b, lambda: newest in seqs(w))
    # Nothing was in flight when the broker went: every record arrives exactly once, in order.
    assert seqs(w) == list(range(1, newest + 1))
    online = [s for s in w.json("microfab/b1/status") if s["state"] == "online"]
    assert len(online) == 2 and net(b)["connects"] == 2


# --- network trouble never stalls control ---


@pytest.mark.parametrize("trouble", ["no broker", "silent broker", "broker up"])
def test_the_heater_keeps_its_control_period_while_the_wifi_flaps(made, mosquitto, trouble):
    url = mosquitto.url
    if trouble == "no broker":
        url = "mqtt://127.0.0.1:%d" % free_port()  # nothing listens: connects are refused
    elif trouble == "silent broker":
        os.kill(mosquitto.proc.pid, signal.SIGSTOP)  # TCP connects, then never a CONNACK
    w = watcher(made, mosquitto) if trouble == "broker up" else None
    try:
        b = board(made, url, machine=FLOSS, model={"start_c": 215.0})
        assert b.send("heat")["ok"]
        ap = b.world.modules["vnetwork"].ap
        ap.flap(up_s=13, down_s=7)  # out of range 7 s of every 20
        t0 = time.monotonic()
        b.advance(400)
        real = time.monotonic() - t0
        st = b.send("status")
        ticks = int(b.now / PERIOD) + 1
        # One tick per 500 ms since boot, none late, none missed: the network never held it up.
        assert st["ticks"] == ticks and st["late_ms"] == 0 and st["overruns"] == 0
        assert st["in_band"] and abs(st["temp"] - st["setpoint"]) < 3
        n = net(b)
        assert ap.drops == 20
        print("\n%s: %d virtual s in %.1f real s; Wi-Fi lost 20 times, joined %d times, %d "
              "broker connects in %d attempts; control ticks %d, late 0 ms"
              % (trouble, b.now, real, n["wifi_joins"], n["connects"], n["attempts"], st["ticks"]))
        if trouble == "broker up":
            ap.steady()
            until(b, lambda: journal(b)["unsent"] == 0, virtual_s=120)
            until(b, lambda: journal(b)["newest"] in seqs(w))
            order, dups = in_order_once(seqs(w))
            assert order == list(range(1, journal(b)["newest"] + 1))  # nothing lost
            assert n["wifi_joins"] >= 19 and n["connects"] >= 19  # back after every drop
        else:
            # Backing off up to a minute between attempts, with the Wi-Fi joined for each.
            assert n["connects"] == 0 and 5 <= n["attempts"] <= 20 and n["wifi_joins"] >= 4
    finally:
        if trouble == "silent broker":
            os.kill(mosquitto.proc.pid, signal.SIGCONT)


# --- Home Assistant ---


def retained(broker, topics, wait=0.5):
    """What a client that subscribes now gets: {topic: payload} of the retained messages."""
    w = Watcher(broker.port, (topics,), client_id="fresh-%f" % time.monotonic())
    try:
        time.sleep(wait)
        return {t: p for t, p, r, q in w.take() if r}
    finally:
        w.close()


def test_home_assistant_finds_the_sensors_and_forgets_them_when_the_board_is_retired(made, mosquitto):
    w = watcher(made, mosquitto)
    b = board(made, mosquitto.url, machine=FLOSS, model={"start_c": 215.0}, net={"name": "Floss 1"})
    until(b, lambda: len(seqs(w)) >= 2)
    cfgs = {t: json.loads(p) for t, p in retained(mosquitto, "homeassistant/#").items()}
    # The energy dashboard's meter: the energy record's total, which survives resets.
    used = cfgs["homeassistant/sensor/b1_energy_used_wh/config"]
    assert used["unit_of_measurement"] == "kWh" and used["device_class"] == "energy"
    assert used["state_class"] == "total_increasing"
    assert used["value_template"] == "{{ (value_json.used_wh / 1000) | round(6) }}"
    assert used["state_topic"] == "microfab/b1/tele/energy"
    assert used["unique_id"] == "b1_energy_used_wh"
    assert used["device"]["identifiers"] == ["microfab_b1"] and used["device"]["name"] == "Floss 1"
    assert used["device"]["model"] == "polyfloss on pico_w" and used["origin"]["name"] == "microfab"
    assert used["availability_topic"] == "microfab/b1/status"
    assert cfgs["homeassistant/sensor/b1_energy_power_w/config"]["device_class"] == "power"
    assert "homeassistant/sensor/b1_status_power_w/config" not in cfgs  # one sensor, not twins
    made = cfgs["homeassistant/sensor/b1_production_units/config"]
    assert made["state_class"] == "total_increasing" and made["unit_of_measurement"] == "g"
    assert made["device_class"] == "weight" and made["state_topic"] == "microfab/b1/tele/production"
    assert cfgs["homeassistant/sensor/b1_status_temp/config"]["device_class"] == "temperature"
    assert "homeassistant/sensor/b1_status_kp/config" not in cfgs  # not a sensor reading
    # The status record's since-boot counters would be a second meter that restarts at each boot.
    assert "homeassistant/sensor/b1_status_heater_wh/config" not in cfgs
    n = len(cfgs)

    w.command("b1", KEY, "retire", ctr=1)
    until(b, lambda: w.json("microfab/b1/reply"))
    assert w.json("microfab/b1/reply")[0] == {"ctr": 1, "ok": True, "retired": True, "entities": n}
    until(b, lambda: net(b)["entities"] == 0)
    assert retained(mosquitto, "homeassistant/#") == {}
    b.reset()  # retired stays retired: records flow, no configs come back
    until(b, lambda: len(seqs(w, kind="status")) >= 6)
    assert retained(mosquitto, "homeassistant/#") == {} and net(b)["retired"]
    w.command("b1", KEY, "discover", ctr=2)
    until(b, lambda: net(b)["entities"] == n, virtual_s=30)
    assert len(retained(mosquitto, "homeassistant/#")) == n


def test_power_battery_and_production_fields_become_home_assistant_sensors():
    rec = {"harvest_w": 12.5, "soc": 0.62, "harvested_wh": 3.2, "used_wh": 1.1, "power_w": 4.0}
    got = {t.split("/")[2]: json.loads(p) for t, p in
           hass.configs("homeassistant", "w1", "Wind 1", "windrig on pico_w", "energy", rec)}
    assert set(got) == {"w1_energy_harvest_w", "w1_energy_soc", "w1_energy_harvested_wh",
                        "w1_energy_used_wh", "w1_energy_power_w"}
    assert got["w1_energy_harvest_w"]["unit_of_measurement"] == "W"
    assert got["w1_energy_harvest_w"]["device_class"] == "power"
    assert got["w1_energy_harvest_w"]["state_class"] == "measurement"
    soc = got["w1_energy_soc"]
    assert soc["device_class"] == "battery" and soc["unit_of_measurement"] == "%"
    assert soc["value_template"] == "{{ (value_json.soc * 100) | round(2) }}"
    assert got["w1_energy_harvested_wh"]["unit_of_measurement"] == "kWh"
    assert got["w1_energy_harvested_wh"]["state_class"] == "total_increasing"
    rows = hass.configs("homeassistant", "w1", "Wind 1", "m", "production",
                        {"units": 40, "unit": "rows"})
    assert len(rows) == 1
    rows = json.loads(rows[0][1])
    assert rows["unit_of_measurement"] == "rows" and rows["state_class"] == "total_increasing"
    assert rows["name"] == "production" and "device_class" not in rows
    # A piece's label (Wh per piece) is an event, not a meter.
    assert hass.configs("homeassistant", "w1", "Wind 1", "m", "piece", {"used_wh": 2.0}) == []


# --- status and the last will ---


def test_status_is_retained_and_the_last_will_says_offline_when_the_board_vanishes(made, mosquitto):
    w = watcher(made, mosquitto)
    b = board(made, mosquitto.url)
    until(b, lambda: w.json("microfab/b1/status"))
    st = json.loads(retained(mosquitto, "microfab/b1/status")["microfab/b1/status"])
    assert st["state"] == "online" and st["machine"] == "axis" and st["firmware"]
    b.reset()  # the power goes: the TCP connection ends without a DISCONNECT
    deadline = time.monotonic() + 5
    while not [s for s in w.json("microfab/b1/status") if s["state"] == "offline"]:
        assert time.monotonic() < deadline, "no last will within 5 s"
        time.sleep(0.02)
    assert json.loads(retained(mosquitto, "microfab/b1/status")["microfab/b1/status"])["state"] == \
        "offline"
    until(b, lambda: w.json("microfab/b1/status")[-1]["state"] == "online")


# --- the network settings ---


@pytest.mark.parametrize("net, words", [
    ({"wifi_ssid": "lab", "mqtt": "mqtt://maker:s3cret-pw@"}, "'mqtt' must look like"),
    ({"wifi_ssid": "lab", "mqtt": "http://maker:s3cret-pw@host"}, "'mqtt' must look like"),
    ({"wifi_ssid": "lab", "mqtt": "mqtt://h", "key": "s3cret-pw"}, "'key' must be 32 to 256 hex"),
    ({"wifi_ssid": "lab", "mqtt": "mqtt://h", "wifi_password": 12345678}, "'wifi_password' must be a text"),
    ({"wifi_ssid": "lab", "mqtt": "mqtt://h", "device_id": "a/b"}, "'device_id' is 'a/b'"),
    ({"wifi_ssid": "lab", "mqtt": "mqtts://h"}, "TLS"),
    ({"mqtt": "mqtt://h"}, "missing 'wifi_ssid'"),
    ({"wifi_ssid": "lab", "mqtt": "mqtt://h", "ntp": "pool.ntp.org:99999"}, "'ntp' must be"),
])
def test_bad_network_settings_are_an_event_that_hides_the_secrets(make_board, net, words):
    b = make_board(board="pico_w")
    (b.root / "config" / "net.json").write_text(json.dumps(net))
    b.reset()
    err = b.lines("net_error")[-1]["error"]
    assert words in err and err.startswith("config/net.json: ")
    assert "s3cret" not in err and "12345678" not in err
    assert b.send("status")["state"] == "ready"  # the machine runs on without a network
    assert not b.send("net")["ok"]


def test_a_network_config_turns_the_journal_on_so_records_go_over_mqtt(made, mosquitto):
    # The machine config does not ask for a journal (off by default): net.json is enough.
    b = board(made, mosquitto.url, machine={"machine": "axis", "report_s": 1})
    until(b, lambda: net(b)["connected"])
    assert not b.lines("net_error")
    until(b, lambda: net(b)["acked"] >= 3)
    assert b.send("status")["journal"]["cursor"] >= 3 and b.telemetry()  # and on the serial line


def test_a_board_without_wifi_says_so(make_board):
    b = make_board(board="pico")
    (b.root / "config" / "net.json").write_text('{"wifi_ssid": "lab", "mqtt": "mqtt://h"}')
    b.reset()
    assert "board pico has no Wi-Fi" in b.lines("net_error")[-1]["error"]
