# Authenticated commands over MQTT: HMAC-SHA256 (RFC 2104) over a canonical JSON text of the
# command, and a counter that only goes up, kept on flash so that a reset does not reopen old
# messages to replay. MicroPython has hashlib.sha256 but no hmac module, hence HMAC by hand.
#
# Plain Python, no hal: the host imports this very module to sign what it sends, so both ends
# build the same canonical text with the same code.
import binascii
import hashlib
import json
import os

# No `micropython` import (so no const): the host imports this module to sign commands.
_BLOCK = 64  # SHA-256 block size in bytes (FIPS 180-4 section 5.1.2); HMAC pads to it
MAC_HEX = 64  # an HMAC-SHA256 written as hex digits
_DEPTH = 8  # args nested deeper than this are refused before any hashing
KEY_MIN = 16  # bytes: a 128-bit key at least (RFC 2104 section 3: not shorter than L/2)


def hmac_sha256(key, msg):
    """HMAC-SHA256 per RFC 2104: H((K ^ opad) || H((K ^ ipad) || msg))."""
    return Signer(key).mac(msg)


class Signer:
    # The two padded key blocks are made once per key; each MAC then costs two hash runs.
    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = bytes(key) + bytes(_BLOCK - len(key))
        self._ipad = bytes([b ^ 0x36 for b in key])
        self._opad = bytes([b ^ 0x5C for b in key])

    def mac(self, msg):
        h = hashlib.sha256(self._ipad)
        h.update(msg)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()

    def check(self, mac_hex, msg):
        """True when mac_hex (64 hex digits, either case) is the MAC of msg. Compares every byte,
        so the time taken does not tell how many leading digits were right."""
        want = hexlify(self.mac(msg))
        got = mac_hex.lower() if isinstance(mac_hex, str) else ""
        if len(got) != len(want):
            return False
        diff = 0
        for i in range(len(want)):
            diff |= ord(got[i]) ^ ord(want[i])
        return diff == 0


def hexlify(data):
    return binascii.hexlify(data).decode()


def parse_key(text):
    """The device key from config/net.json (hex). ValueError never repeats the value."""
    if isinstance(text, str) and len(text) % 2 == 0 and KEY_MIN * 2 <= len(text) <= 256:
        try:
            return binascii.unhexlify(text)
        except ValueError:
            pass
    raise ValueError("'key' must be %d to 256 hex digits, an even count (value hidden)"
                     % (KEY_MIN * 2))


# --- the canonical text that is signed ---
# Sorted keys, no spaces, strings with only printable ASCII left as is (everything else as \uXXXX),
# whole numbers in decimal, and other numbers as "%.6g". A board with single-precision floats
# (rp2, esp32) cannot rebuild more digits than that; and a number sent with at most 6 significant
# digits comes back from a single-precision float as the same text (FLT_DIG is 6), so request()
# rounds the host's numbers to 6 digits before it signs and sends them.


def canonical(cmd, args, ctr):
    """The bytes an HMAC covers: {"args":...,"cmd":...,"ctr":...} in canonical form."""
    out: list = []
    _enc({"args": args, "cmd": cmd, "ctr": ctr}, out, 0)
    return "".join(out).encode()


def _enc(v, out, depth):
    if depth > _DEPTH:
        raise ValueError("args nested deeper than %d levels" % _DEPTH)
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append("%.6g" % v)
    elif isinstance(v, str):
        _str(v, out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i in range(len(v)):
            if i:
                out.append(",")
            _enc(v[i], out, depth + 1)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k in sorted(v):
            if not isinstance(k, str):
                raise ValueError("object keys must be text")
            if not first:
                out.append(",")
            first = False
            _str(k, out)
            out.append(":")
            _enc(v[k], out, depth + 1)
        out.append("}")
    else:
        raise ValueError("cannot sign a %s" % type(v).__name__)


def _str(s, out):
    out.append('"')
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o > 0xFFFF:  # outside the BMP: a UTF-16 surrogate pair, as JSON writes it
            o -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
        else:
            out.append("\\u%04x" % o)
    out.append('"')


def request(key, cmd, args, ctr):
    """A signed command as the host sends it (key: bytes); numbers that are not whole are
    rounded to 6 significant digits first (see above). The board's reply echoes ctr."""
    args = _six({} if args is None else args)
    return {"cmd": cmd, "args": args, "ctr": ctr, "mac": hexlify(Signer(key).mac(
        canonical(cmd, args, ctr)))}


def _six(v):
    if isinstance(v, float):
        return float("%.6g" % v)
    if isinstance(v, (list, tuple)):
        return [_six(x) for x in v]
    if isinstance(v, dict):
        out = {}
        for k in v:
            out[k] = _six(v[k])
        return out
    return v


# --- replay protection ---


class Counter:
    """The last accepted command counter, on flash. A command runs only with a higher one, and
    only once the new value is stored: a reset cannot bring an old message back to life."""

    def __init__(self, path):
        self.path = path
        self.last = 0
        self.lost = False  # the stored value could not be read (see docs/telemetry.md)
        try:
            with open(path) as f:
                n = json.load(f)["ctr"]
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                self.last = n
            else:
                self.lost = True
        except OSError:
            pass  # never stored: no command accepted yet
        except (ValueError, KeyError, TypeError):
            self.lost = True

    def accept(self, ctr):
        """Store ctr as the last accepted; OSError when the flash refuses (then nothing runs)."""
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            json.dump({"ctr": ctr}, f)
        try:
            os.rename(tmp, self.path)  # atomic on LittleFS: the old value or the new, never half
        except OSError:
            os.remove(self.path)  # FAT will not rename onto an existing file
            os.rename(tmp, self.path)
        self.last = ctr
