# `network` for a simulated board: a station interface (WLAN) that joins a simulated access point
# after an association delay, as on a Pico W or an ESP32. Tests take the access point down, or
# make it flap on a schedule of virtual time:
#
#   net = board.world.modules["vnetwork"]
#   net.ap.drop()                       # out of range: the link goes silent under open sockets
#   net.ap.drop(cut=True)               # ... or they are reset at once
#   net.ap.restore()
#   net.ap.flap(up_s=20, down_s=5)      # down 5 s of every 25, until net.ap.steady()
#
# A lost link does not come back by itself: the firmware calls connect() again, as it must on a
# Pico W. The sockets are the CPython simulator's (microfab_sim.net, via vasyncio._io); in the
# MicroPython VM there is no hook, the link state is modelled all the same.
import vasyncio
import vclock

STA_IF = 0
AP_IF = 1
# CYW43 (Pico W) status codes; ESP32 numbers them differently, the firmware compares names.
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 3
STAT_CONNECT_FAIL = -1
STAT_NO_AP_FOUND = -2
STAT_WRONG_PASSWORD = -3


class AccessPoint:
    def __init__(self):
        self.ssid = None  # None: any network name joins
        self.password = None  # None: any password
        self.up = True
        self.join_ms = 1200  # association, WPA handshake and DHCP
        self.joins = 0
        self.drops = 0
        self._flap = None  # (up_s, down_s, cut)
        self._next = None  # virtual time of the next flap edge
        self._ev = None

    def _set(self, up, cut=False):
        if up == self.up:
            return
        self.up = up
        if not up:
            self.drops += 1
            for w in _ifaces.values():
                w._lost()
        h = vasyncio._io
        if h is not None:
            h.link(up, cut)

    def drop(self, cut=False):
        self._set(False, cut)

    def restore(self):
        self._set(True)

    def flap(self, up_s, down_s, cut=False):
        """Up for up_s, down for down_s, again and again (virtual seconds), starting up."""
        self._flap = (up_s, down_s, cut)
        self.restore()
        self._arm(vclock.now + int(up_s * 1000000))

    def steady(self):
        self._flap = None
        vclock.cancel(self._ev)
        self._ev = self._next = None
        self.restore()

    def _arm(self, t):
        self._next = t
        self._ev = vclock.at(t, self._edge)

    def _edge(self, _):
        up_s, down_s, cut = self._flap
        if self.up:
            self._set(False, cut)
            self._arm(vclock.now + int(down_s * 1000000))
        else:
            self._set(True)
            self._arm(vclock.now + int(up_s * 1000000))

    def _power_cycled(self):
        # vclock.reset() dropped every event: the weather goes on regardless of the board.
        if self._flap is not None and self._next is not None:
            vclock.cancel(self._ev)
            self._arm(max(self._next, vclock.now))


ap = AccessPoint()
_ifaces = {}


class _WLAN:
    def __init__(self, iface):
        self.iface = iface
        self._on = False
        self._st = STAT_IDLE
        self._ev = None
        self._ssid = None

    def active(self, on=None):
        if on is None:
            return self._on
        self._on = bool(on)
        if not on:
            self.disconnect()
        return None

    def connect(self, ssid=None, key=None, **kw):
        if not self._on:
            raise OSError("Wi-Fi Internal Error")  # what a Pico W says when not active
        vclock.cancel(self._ev)
        self._ssid, self._key = ssid, key
        self._st = STAT_CONNECTING
        self._ev = vclock.at(vclock.now + ap.join_ms * 1000, self._joined)

    def _joined(self, _):
        self._ev = None
        if not ap.up or (ap.ssid is not None and self._ssid != ap.ssid):
            self._st = STAT_NO_AP_FOUND
        elif ap.password is not None and self._key != ap.password:
            self._st = STAT_WRONG_PASSWORD
        else:
            self._st = STAT_GOT_IP
            ap.joins += 1

    def _lost(self):
        vclock.cancel(self._ev)
        self._ev = None
        if self._st in (STAT_GOT_IP, STAT_CONNECTING):
            self._st = STAT_NO_AP_FOUND

    def disconnect(self):
        vclock.cancel(self._ev)
        self._ev = None
        self._st = STAT_IDLE

    def isconnected(self):
        return self._on and self._st == STAT_GOT_IP and ap.up

    def status(self, param=None):
        if param == "rssi":
            return -58 if self.isconnected() else -127
        return self._st

    def ifconfig(self, *args):
        if self.isconnected():
            return ("10.42.0.17", "255.255.255.0", "10.42.0.1", "10.42.0.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kw):
        if args == ("mac",):
            return b"\x28\xcd\xc1\x00\x00\x17"
        if args == ("ssid",):
            return self._ssid or ""
        return None

    def scan(self):
        if not ap.up:
            return []
        name = (ap.ssid or "microfab-sim").encode()
        return [(name, b"\x02\x00\x00\x00\x00\x01", 6, -58, 3, False)]


def WLAN(iface=STA_IF):
    # One object per interface, as on a board.
    w = _ifaces.get(iface)
    if w is None:
        w = _ifaces[iface] = _WLAN(iface)
    return w


def _power_off():
    for w in _ifaces.values():
        w._on = False
        w._st = STAT_IDLE
        w._ev = None
    ap._power_cycled()


vasyncio.on_reset.append(_power_off)
