"""`microfab provision`: give a board its network identity over USB: Wi-Fi, the MQTT broker,
its device id and a device key, in the board's config/net.json. The key (32 random bytes from
`secrets`, or one given as hex) is also kept on this computer in ~/.config/microfab/keys.json
(mode 0600), so that the host can sign the commands it sends to that board later.

Secrets (the Wi-Fi password, the broker password, the key) are never printed, logged or put in
an error message; the key is shown once, and only when asked for (show_key)."""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .device import Device

DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as fab.netcfg takes it
NET_FILE = "config/net.json"

# Runs on the board: keep what net.json already says (settings provisioning does not touch),
# write the whole file under a temp name, then rename it into place, so a cable pulled halfway
# leaves the old file or the new one, never half of one. LittleFS replaces the target in one
# rename; FAT refuses and gets remove + rename.
_BOARD = """import json,os
try:os.mkdir('config')
except OSError:pass
try:
 with open('config/net.json') as f:d=json.load(f)
except (OSError,ValueError):d={}
n=json.loads(%r)
d.update(n)
with open('config/net.json.mfnew','w') as f:f.write(json.dumps(d))
try:os.rename('config/net.json.mfnew','config/net.json')
except OSError:
 os.remove('config/net.json');os.rename('config/net.json.mfnew','config/net.json')
with open('config/net.json') as f:b=json.load(f)
print('provisioned' if all(b.get(k)==v for k,v in n.items()) else 'mismatch')
"""


class ProvisionError(Exception):
    """Bad input, or a key store that cannot be used; says what was expected."""


def keystore_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "microfab" / "keys.json"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def parse_key(key: str) -> bytes:
    """'auto' -> a new random key; else hex, as the firmware takes it (fab.auth.parse_key: 16 to
    128 bytes). The message never repeats the key."""
    if key == "auto":
        return new_key()
    text = key.strip()
    if len(text) % 2 == 0 and 32 <= len(text) <= 256 and re.fullmatch(r"[0-9a-fA-F]+", text):
        return bytes.fromhex(text)
    raise ProvisionError("--key must be 'auto' or 32 to 256 hex digits, an even count (64 for "
                         "a 32-byte key); the one given has %d characters (value hidden)"
                         % len(text))


class KeyStore:
    """{device id: key} on this computer, in a JSON file only its owner can read."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else keystore_path()

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"version": 1, "devices": {}}
        except (OSError, ValueError) as e:
            raise ProvisionError("the key store %s cannot be read (%s): fix or move it away; "
                                 "it holds the keys of the boards provisioned from here"
                                 % (self.path, getattr(e, "strerror", None) or "not valid JSON")) \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
            raise ProvisionError("the key store %s is not a microfab key store (expected "
                                 '{"version": 1, "devices": {...}})' % self.path)
        return data

    def get(self, device_id: str) -> bytes | None:
        entry = self.load()["devices"].get(device_id)
        return bytes.fromhex(entry["key"]) if entry else None

    def put(self, device_id: str, key: bytes, broker: str) -> bool:
        """Store the key; True if it replaced another one for this device."""
        data = self.load()
        replaced = device_id in data["devices"]
        data["devices"][device_id] = {
            "key": key.hex(), "broker": broker,
            "provisioned": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a temp name created 0600, then renamed over the old file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), stat.S_IRUSR | stat.S_IWUSR)
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return replaced


@dataclass
class Provisioned:
    device_id: str
    wifi_ssid: str
    broker: str  # host:port, and the user name if any: never the password
    key: bytes
    keystore: Path
    replaced: bool  # the key store had another key for this device id

    def __repr__(self):  # the key stays out of reprs and tracebacks
        return "Provisioned(%s, %s, key stored in %s)" % (self.device_id, self.broker,
                                                          self.keystore)


def settings(device_id: str, wifi_ssid: str, wifi_password: str | None, broker_url: str,
             key: bytes, ntp: str | None = None) -> tuple[dict, str]:
    """Check everything before touching the board -> (net.json fields, broker as shown)."""
    from .collector import CollectorError, parse_broker

    if not DEVICE_ID.match(device_id or ""):
        raise ProvisionError("--device-id must be 1 to 64 letters, digits, '-' or '_' (it "
                             "becomes a level of MQTT topics), got %r" % device_id)
    if not wifi_ssid or len(wifi_ssid.encode()) > 32:
        raise ProvisionError("--wifi-ssid must be a network name of 1 to 32 bytes")
    if wifi_password and not 8 <= len(wifi_password) <= 64:
        raise ProvisionError("--wifi-password must be 8 to 64 characters (WPA2), or left out "
                             "for an open network; the one given has %d" % len(wifi_password))
    try:
        b = parse_broker(broker_url)
    except CollectorError as e:
        raise ProvisionError(str(e).replace("broker must be", "--broker must be")) from None
    shown = "%s:%d" % (b["host"], b["port"]) + (" as %s" % b["username"] if b["username"] else "")
    net = {"wifi_ssid": wifi_ssid, "wifi_password": wifi_password or "", "mqtt": broker_url,
           "device_id": device_id, "key": key.hex()}
    if ntp is not None:
        net["ntp"] = ntp
    try:  # the board's own check, in its words (it never repeats a secret)
        from . import config as hostcfg
        from fab import netcfg
    except ImportError:
        return net, shown
    try:
        netcfg.parse(net)
    except hostcfg.ConfigError as e:
        raise ProvisionError("the board would refuse these settings: %s" % e) from None
    return net, shown


def provision(dev: Device, device_id: str, wifi_ssid: str, wifi_password: str | None,
              broker_url: str, key: bytes | None = None, keystore: KeyStore | None = None,
              reset: bool = True, ntp: str | None = None) -> Provisioned:
    """Write config/net.json on the board and the key in the key store; returns what was done
    (the key included, for the caller that was asked to show it)."""
    key = key if key is not None else new_key()
    net, shown = settings(device_id, wifi_ssid, wifi_password, broker_url, key, ntp)
    store = keystore or KeyStore()
    store.load()  # a broken key store stops us before the board gets a key we could not keep
    out = dev.exec(_BOARD % json.dumps(net), timeout=20)
    if "provisioned" not in out:
        raise ProvisionError("the board did not confirm %s (it answered %r); nothing is stored "
                             "on this computer: run provision again"
                             % (NET_FILE, out.strip()[-80:]))
    try:
        replaced = store.put(device_id, key, shown)
    except OSError as e:
        raise ProvisionError("the board has its new key but it could not be stored in %s (%s): "
                             "run provision again once that is fixed"
                             % (store.path, e.strerror or type(e).__name__)) from None
    if reset:
        dev.reset()  # the firmware reads net.json at boot
    return Provisioned(device_id, wifi_ssid, shown, key, store.path, replaced)


# --- the command ---

def cli(args) -> int:
    """`microfab provision`: args.port, device_id, wifi_ssid, wifi_password, broker, key,
    show_key, no_reset."""
    from rich.console import Console

    from . import ports
    from .device import DeviceError

    # soft_wrap: a key cut over two lines would not paste whole
    out = Console(highlight=False, soft_wrap=True, markup=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
    password = args.wifi_password
    if password is None:
        password = os.environ.get("MICROFAB_WIFI_PASSWORD")  # keeps it out of shell history
    try:
        key = parse_key(args.key or "auto")
        ntp = getattr(args, "ntp", None)
        settings(args.device_id, args.wifi_ssid, password, args.broker, key, ntp)
        port = ports.resolve(args.port).port
        with Device(port).connect() as dev:
            done = provision(dev, args.device_id, args.wifi_ssid, password, args.broker, key,
                             reset=not args.no_reset, ntp=ntp)
    except (ProvisionError, DeviceError, ports.PortError) as e:
        err.print("microfab: %s" % e)
        return 1
    out.print("%s written on %s: device %s, Wi-Fi %r, broker %s"
              % (NET_FILE, port, done.device_id, done.wifi_ssid, done.broker))
    out.print("device key %s in %s%s" % (
        "replaced" if done.replaced else "stored", done.keystore,
        " (the previous key of %s no longer works)" % done.device_id if done.replaced else ""))
    if args.show_key:
        out.print("device key (shown this once; keep it like a password): %s" % done.key.hex())
    return 0


def add_arguments(p):
    p.add_argument("--port", help="serial port or board name (default: the only board plugged in)")
    p.add_argument("--device-id", required=True, help="the board's name in MQTT topics "
                   "(letters, digits, - and _)")
    p.add_argument("--wifi-ssid", required=True, help="Wi-Fi network name")
    p.add_argument("--wifi-password", help="Wi-Fi password, never printed (default: "
                   "$MICROFAB_WIFI_PASSWORD, or none for an open network)")
    p.add_argument("--broker", required=True, help="mqtt://USER:PASSWORD@HOST:PORT "
                   "(the board has no TLS yet); the password is never printed")
    p.add_argument("--key", default="auto", help="device key: auto (32 random bytes, default) "
                   "or 64 hex digits")
    p.add_argument("--show-key", action="store_true", help="print the key once (it is stored "
                   "in ~/.config/microfab/keys.json either way)")
    p.add_argument("--ntp", metavar="HOST[:PORT]", help="the time server that sets the board's "
                   "clock (default: pool.ntp.org; \"\" for none, e.g. on a network without "
                   "internet and no server of its own)")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board afterwards")


DESCRIPTION = ("Give a board over USB its Wi-Fi, broker, device id and device key "
               "(config/net.json).")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="microfab provision", description=DESCRIPTION)
    add_arguments(p)
    return cli(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
