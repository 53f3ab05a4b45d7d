# config/net.json: Wi-Fi, the MQTT broker, the board's name on it and its command key. Written by
# `microfab provision` / `microfab deploy --net`; checked here, on the board at boot and on the
# host before it is sent. Plain Python, no hal.
#
# Secrets (wifi_password, the password inside the mqtt URL, key) never appear in an error, an
# event or a reply: every message below names the key and says "value hidden".
from fab.auth import parse_key
from fab.config import REQUIRED, ConfigError, check

WHERE = "config/net.json"
SECRETS = ("wifi_password", "mqtt", "key")
SCHEMA = (
    ("wifi_ssid", "s", REQUIRED, None, None),
    ("wifi_password", "s", "", None, None),
    ("mqtt", "s", REQUIRED, None, None),  # mqtt://[user[:password]@]host[:port]
    ("device_id", "s", "", None, None),  # the name in the topics; default: the chip's unique id
    ("key", "s", "", None, None),  # hex; without it, commands over MQTT are refused
    ("name", "s", "", None, None),  # the device name Home Assistant shows
    ("keepalive_s", "i", 30, 10, 600, "s"),
    ("discovery", "b", True, None, None),  # Home Assistant MQTT discovery configs
    ("discovery_prefix", "s", "homeassistant", None, None),
    ("ntp", "s", "pool.ntp.org", None, None),  # host[:port] that sets the clock (fab.clock); ""
)
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def parse(data, uid=""):
    """The checked settings with defaults filled in and the URL split:
    host, port, user, password. ConfigError says what was wrong, never a secret's value."""
    if isinstance(data, dict):
        for key in SECRETS:
            if key in data and not isinstance(data[key], str):
                raise ConfigError("%s: '%s' must be a text string (value hidden)" % (WHERE, key))
    cfg = check(WHERE, data, SCHEMA)
    cfg["host"], cfg["port"], cfg["user"], cfg["password"] = parse_url(cfg["mqtt"])
    dev = cfg["device_id"] or ("mf-" + uid if uid else "")
    if not dev or len(dev) > 64 or [c for c in dev if c not in _ID_CHARS]:
        raise ConfigError("%s: 'device_id' is '%s', expected 1 to 64 letters, digits, '_' or "
                          "'-' (it becomes part of MQTT topics)" % (WHERE, dev[:64]))
    cfg["device_id"] = dev
    if cfg["key"]:
        try:
            parse_key(cfg["key"])
        except ValueError as e:
            raise ConfigError("%s: %s" % (WHERE, e))
    if not cfg["discovery_prefix"] or [c for c in cfg["discovery_prefix"] if c in "+#"]:
        raise ConfigError("%s: 'discovery_prefix' must be a topic level without + or #, like "
                          "'homeassistant'" % WHERE)
    cfg["ntp_server"] = parse_ntp(cfg["ntp"])
    return cfg


def parse_ntp(text):
    """'host[:port]' -> (host, port); '' -> None (the clock is not set over the network)."""
    if not text:
        return None
    host, _, port = text.partition(":")
    if not host or "/" in host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ConfigError("%s: 'ntp' must be a time server's name or address with an optional "
                          ":port, like pool.ntp.org or 192.168.1.2:123, or \"\" for none; got "
                          "'%s'" % (WHERE, text[:64]))
    return host, int(port) if port else 123


def parse_url(url):
    """mqtt://[user[:password]@]host[:port] -> (host, port, user, password); None for absent
    parts. %XX escapes are decoded in user and password (for an '@' or ':' inside them)."""
    bad = ConfigError("%s: 'mqtt' must look like mqtt://user:password@host:1883 or "
                      "mqtt://host (value hidden: it may hold a password)" % WHERE)
    if url.startswith("mqtts://"):
        raise ConfigError("%s: 'mqtt' asks for TLS (mqtts://), which this firmware does not "
                          "speak yet: use mqtt:// on a trusted network" % WHERE)
    if not url.startswith("mqtt://"):
        raise bad
    rest = url[7:].rstrip("/")
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        cred, rest = rest[:at], rest[at + 1:]
        colon = cred.find(":")
        if colon >= 0:
            user, password = _unquote(cred[:colon], bad), _unquote(cred[colon + 1:], bad)
        else:
            user = _unquote(cred, bad)
    port = 1883
    colon = rest.rfind(":")
    if colon >= 0:
        digits = rest[colon + 1:]
        rest = rest[:colon]
        if not digits.isdigit() or not 0 < int(digits) < 65536:
            raise bad
        port = int(digits)
    if not rest or "/" in rest or "@" in rest:
        raise bad
    return rest, port, user, password


def _unquote(text, bad):
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            pair = text[i + 1:i + 3]
            if len(pair) != 2:
                raise bad
            try:
                out.append(int(pair, 16))
            except ValueError:
                raise bad
            i += 3
        else:
            out += text[i].encode()
            i += 1
    try:
        return out.decode()
    except UnicodeError:
        raise bad


def public(cfg):
    """What may be shown of the settings: no password, no key, no user name either."""
    return {"ssid": cfg["wifi_ssid"], "broker": "%s:%d" % (cfg["host"], cfg["port"]),
            "device_id": cfg["device_id"], "login": cfg["user"] is not None,
            "signed_commands": bool(cfg["key"]), "discovery": cfg["discovery"]}
