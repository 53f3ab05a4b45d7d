"""`microfab provision` against a simulated board on a pty: the board gets config/net.json
whole (never half a file), the host keeps the device key in a file only its owner reads, and no
secret is ever printed unless the key is asked for, once."""
import json
import os
import stat

import pytest

from microfab.device import Device
from microfab.provision import KeyStore, ProvisionError, main, parse_key, provision

BROKER = "mqtt://fab:br0ker-pa55@broker.local:1883"
WIFI_PASSWORD = "hunter2-very-secret"


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """microfab provision in this process: (exit code, everything it printed)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("MICROFAB_WIFI_PASSWORD", raising=False)

    def run(sim, *extra, env=None, device_id="loom1", broker=BROKER):
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        code = main(["--port", sim.port, "--device-id", device_id, "--wifi-ssid", "workshop",
                     "--broker", broker, "--no-reset", *extra])
        out = capsys.readouterr()
        return code, out.out + out.err
    return run


def board_net(sim):
    return json.loads((sim.flash / "config" / "net.json").read_text())


def test_a_new_key_goes_to_the_board_and_the_key_store_and_no_secret_is_shown(serial_sim,
                                                                              tmp_path, run):
    sim = serial_sim("--blank")
    code, shown = run(sim, "--wifi-password", WIFI_PASSWORD)
    assert code == 0, shown
    net = board_net(sim)
    assert {k: net[k] for k in ("wifi_ssid", "wifi_password", "mqtt", "device_id")} == {
        "wifi_ssid": "workshop", "wifi_password": WIFI_PASSWORD, "mqtt": BROKER,
        "device_id": "loom1"}
    key = bytes.fromhex(net["key"])
    assert len(key) == 32 and key != bytes(32)
    store = tmp_path / "cfg" / "microfab" / "keys.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert KeyStore(store).get("loom1") == key
    assert json.loads(store.read_text())["devices"]["loom1"]["broker"] == "broker.local:1883 as fab"
    assert "config/net.json written on %s: device loom1, Wi-Fi 'workshop', broker " \
           "broker.local:1883 as fab" % sim.port in shown
    assert "device key stored in %s" % store in shown
    for secret in (WIFI_PASSWORD, "br0ker-pa55", net["key"], net["key"][:16]):
        assert secret not in shown
    assert sorted(p.name for p in (sim.flash / "config").iterdir()) == ["net.json"]  # no temp left


def test_show_key_prints_it_once_and_a_given_key_is_used_as_is(serial_sim, tmp_path, run):
    sim = serial_sim("--blank")
    code, shown = run(sim, "--show-key")
    assert code == 0, shown
    key = board_net(sim)["key"]
    assert shown.count(key) == 1
    assert board_net(sim)["wifi_password"] == ""  # an open network
    given = "00112233445566778899aabbccddeeff" * 2
    code, shown = run(sim, "--key", given)
    assert code == 0, shown
    assert board_net(sim)["key"] == given and given not in shown
    assert "device key replaced in" in shown
    assert "the previous key of loom1 no longer works" in shown
    assert KeyStore(tmp_path / "cfg" / "microfab" / "keys.json").get("loom1").hex() == given


def test_settings_already_on_the_board_are_kept_and_the_password_can_come_from_the_environment(
        serial_sim, tmp_path, run):
    sim = serial_sim("--blank")
    (sim.flash / "config").mkdir()
    (sim.flash / "config" / "net.json").write_text(json.dumps(
        {"wifi_ssid": "old", "mqtt": "mqtt://old", "name": "Loom by the window",
         "keepalive_s": 60}))
    code, shown = run(sim, env={"MICROFAB_WIFI_PASSWORD": WIFI_PASSWORD})
    assert code == 0, shown
    net = board_net(sim)
    assert net["name"] == "Loom by the window" and net["keepalive_s"] == 60
    assert net["wifi_ssid"] == "workshop" and net["wifi_password"] == WIFI_PASSWORD
    assert WIFI_PASSWORD not in shown


def test_bad_input_is_refused_before_the_board_is_touched_and_never_repeated(serial_sim,
                                                                            tmp_path, run):
    sim = serial_sim("--blank")
    secret_key = "zz" + "ab" * 31
    cases = [(("--key", secret_key), "--key must be 'auto' or 32 to 256 hex digits"),
             (("--key", "abcd"), "the one given has 4 characters (value hidden)"),
             (("--wifi-password", "short"), "--wifi-password must be 8 to 64 characters")]
    for extra, expected in cases:
        code, shown = run(sim, *extra)
        assert code == 1 and expected in shown, shown
        assert secret_key not in shown and "short" not in shown.replace("--", "")
    code, shown = run(sim, device_id="loom/1")
    assert code == 1 and "--device-id must be 1 to 64 letters" in shown
    code, shown = run(sim, broker="http://fab:br0ker-pa55@broker")
    assert code == 1 and "--broker must be a URL like mqtt://HOST:PORT" in shown
    assert "br0ker-pa55" not in shown and "fab:***@broker" in shown
    assert not (sim.flash / "config").exists()
    assert not (tmp_path / "cfg" / "microfab" / "keys.json").exists()


def test_a_broken_key_store_stops_provisioning_before_the_board_gets_a_key(serial_sim, tmp_path,
                                                                           run):
    sim = serial_sim("--blank")
    store = tmp_path / "cfg" / "microfab" / "keys.json"
    store.parent.mkdir(parents=True)
    store.write_text('{"devices": {"loom0": {"key": "00')  # cut short
    code, shown = run(sim)
    assert code == 1 and "the key store %s cannot be read (not valid JSON)" % store in shown
    assert not (sim.flash / "config").exists()
    assert store.read_text() == '{"devices": {"loom0": {"key": "00'  # left for the maker


def test_the_api_returns_the_key_and_keeps_it_out_of_its_repr_and_resets_the_board(serial_sim,
                                                                                   tmp_path):
    sim = serial_sim("--blank")
    store = KeyStore(tmp_path / "keys.json")
    key = parse_key("auto")
    with Device(sim.port).connect() as dev:
        done = provision(dev, "wind-2", "workshop", None, "mqtt://broker.local", key,
                         keystore=store)
        assert dev.eval("1 + 1") == 2  # back after the reset
    assert done.key == key and key.hex() not in repr(done)
    assert store.get("wind-2") == key and board_net(sim)["device_id"] == "wind-2"
    with pytest.raises(ProvisionError, match="TLS"):  # the firmware's own rule, in its words
        with Device(sim.port).connect() as dev:
            provision(dev, "wind-2", "workshop", None, "mqtts://broker.local", key,
                      keystore=store, reset=False)


def test_a_time_server_of_the_workshops_own_and_a_bad_one(serial_sim, run):
    sim = serial_sim("--blank")
    code, shown = run(sim, "--ntp", "192.168.1.2")
    assert code == 0, shown
    assert board_net(sim)["ntp"] == "192.168.1.2"
    code, shown = run(sim, "--ntp", "192.168.1.2:99999")
    assert code == 1 and "the board would refuse these settings" in shown
    assert "'ntp' must be a time server's name or address" in shown
    assert board_net(sim)["ntp"] == "192.168.1.2"  # left as it was
