# The network side of the hardware abstraction layer: Wi-Fi, name lookup, UDP and the real-time
# clock, for the MQTT uplink (fab/uplink.py, fab/mqtt.py, fab/clock.py). A module of its own so
# that only a board with a network config pays for it in RAM; it imports `network` and `socket`
# only when called (a plain Pico has neither).
import sys
import time

import asyncio
import machine

_wlan = None


def wifi_connect(ssid, password):
    """Start joining `ssid` and return at once: wifi_up() tells when the board has an address."""
    global _wlan
    import network  # type: ignore[import-not-found,unused-ignore]  # not on a Pico without W

    if _wlan is None:
        _wlan = network.WLAN(network.STA_IF)
    _wlan.active(True)
    if sys.platform == "rp2":
        # The CYW43's power saving loses packets under load (Pico W "Connecting to the internet"
        # guide, 3.6.3): off, as the machine runs on mains or a battery it already budgets.
        _wlan.config(pm=0xA11140)
    try:
        _wlan.disconnect()  # an ESP32 still trying the last join refuses a new connect()
    except OSError:
        pass
    _wlan.connect(ssid, password)


def wifi_up():
    return _wlan is not None and _wlan.isconnected()


def wifi_failed():
    """True when the last join failed for good (no such network, wrong password, no answer):
    asking again is then better than waiting on it. Ports number these differently."""
    if _wlan is None:
        return False
    import network  # type: ignore[import-not-found,unused-ignore]

    st = _wlan.status()
    for name in ("STAT_NO_AP_FOUND", "STAT_WRONG_PASSWORD", "STAT_CONNECT_FAIL",
                 "STAT_BEACON_TIMEOUT", "STAT_ASSOC_FAIL", "STAT_HANDSHAKE_TIMEOUT"):
        if getattr(network, name, None) == st:
            return True
    return False


def wifi_status():
    """The link as a person needs it to see why there is none: status code, RSSI and address."""
    if _wlan is None:
        return {"wifi": "off"}
    up = _wlan.isconnected()
    return {"wifi": "up" if up else "down", "wifi_status": _wlan.status(),
            "rssi": _wlan.status("rssi") if up else None, "ip": _wlan.ifconfig()[0] if up else None}


def resolve(host, port):
    """The IP address of a host name, as text. On a board this DNS query BLOCKS the event loop
    (lwIP's getaddrinfo) unless `host` is an IP address already: call it once, never in a loop."""
    import socket  # type: ignore[import-not-found,unused-ignore]  # not on a Pico without W

    addr = socket.getaddrinfo(host, port)[0][-1]
    # ("192.168.1.2", 1883) on current ports; an old port's packed sockaddr: keep the name
    return addr[0] if isinstance(addr, tuple) else host


async def udp(host, port):
    """A UDP socket connected to (host, port) as an asyncio stream: write() + drain() send a
    datagram, read(n) waits for one. `host` is an address (resolve() it first)."""
    op = getattr(asyncio, "open_datagram", None)  # the simulator's: through its network hook
    if op is not None:
        return await op(host, port)
    import socket  # type: ignore[import-not-found,unused-ignore]

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect(socket.getaddrinfo(host, port)[0][-1])
    return asyncio.StreamReader(s)  # MicroPython's one Stream class reads and writes


def set_time(unix):
    """Set the real-time clock to Unix seconds; time.time() then counts from there."""
    t = int(unix)
    if time.gmtime(0)[0] == 2000:  # the ports that count from 2000 (older ESP32 builds)
        t -= 946684800
    tm = time.gmtime(t)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))
