"""The private Mosquitto that the collector tests and benchmarks run against: its own free
loopback port, a real MQTT broker behind it, restarts on the same port keeping sessions, and a
clear word when mosquitto is not installed."""
import json
import socket
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab import broker as broker_mod
from microfab.broker import BrokerError, Mosquitto


def client(port, cid, clean=True):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    got = []
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload))
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0 if clean else 3600
    c.connect("127.0.0.1", port, clean_start=clean, properties=props)
    c.loop_start()
    return c, got


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_a_private_broker_on_a_free_loopback_port_passes_messages(mosquitto):
    assert mosquitto.port != 1883 and mosquitto.url == "mqtt://127.0.0.1:%d" % mosquitto.port
    sub, got = client(mosquitto.port, "sub")
    sub.subscribe("microfab/+/tele/#", qos=1)
    time.sleep(0.2)
    pub, _ = client(mosquitto.port, "pub")
    pub.publish("microfab/loom1/tele/energy", json.dumps({"seq": 1}), qos=1).wait_for_publish(5)
    assert wait_for(lambda: got)
    assert got == [("microfab/loom1/tele/energy", b'{"seq": 1}')]
    for c in (sub, pub):
        c.disconnect()
        c.loop_stop()


def test_restart_keeps_the_port_and_what_waits_for_a_persistent_session(mosquitto):
    port = mosquitto.port
    sub, _ = client(port, "collector", clean=False)
    sub.subscribe("microfab/+/tele/#", qos=1)
    time.sleep(0.2)
    sub.disconnect()
    sub.loop_stop()
    pub, _ = client(port, "board")
    pub.publish("microfab/w1/tele/energy", b'{"seq": 7}', qos=1).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()

    mosquitto.restart()
    assert mosquitto.port == port and mosquitto.running
    again, got = client(port, "collector", clean=False)
    assert wait_for(lambda: got)
    assert got == [("microfab/w1/tele/energy", b'{"seq": 7}')]
    again.disconnect()
    again.loop_stop()


def test_a_stopped_broker_refuses_connections_and_close_removes_its_folder():
    b = Mosquitto()
    folder = b.dir
    with socket.create_connection(("127.0.0.1", b.port), timeout=2):
        pass
    b.stop()
    assert not b.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", b.port), timeout=2).close()
    b.start()
    assert b.running
    b.close()
    assert not b.running and not folder.exists()


def test_without_mosquitto_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(broker_mod.shutil, "which", lambda *a, **k: None)
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        Mosquitto()


def test_a_port_already_taken_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BrokerError, match="did not start on 127.0.0.1:%d" % port):
            Mosquitto(port=port)
