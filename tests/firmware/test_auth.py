"""fab.auth: HMAC-SHA256 written by hand for MicroPython (no hmac module there) agrees with
RFC 4231 and with CPython's hmac; the canonical text a command is signed over is the same on a
board with single-precision floats; the command counter is kept on flash, so a replayed command
is refused, also after a reset."""
import hashlib
import hmac
import json
import os
import random
import struct

import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
from fab import auth

# RFC 4231 section 4: HMAC-SHA-256 test cases 1, 2, 3, 4, 6 and 7 (5 truncates the output).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize("key, msg, want", RFC4231)
def test_hmac_matches_rfc_4231(key, msg, want):
    assert auth.hexlify(auth.hmac_sha256(key, msg)) == want


def test_hmac_matches_cpython_for_every_key_length_around_the_block():
    rng = random.Random(7)
    for n in list(range(0, 70)) + [127, 128, 129, 200]:  # 64 is SHA-256's block size
        key = bytes(rng.getrandbits(8) for _ in range(n))
        msg = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        assert auth.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest(), n


def test_check_accepts_the_mac_in_either_case_and_nothing_else():
    key = bytes(range(32))
    s = auth.Signer(key)
    msg = auth.canonical("move", {"to": 12.5}, 7)
    good = hmac.new(key, msg, hashlib.sha256).hexdigest()
    assert s.check(good, msg) and s.check(good.upper(), msg)
    assert not s.check(good[:-1] + ("0" if good[-1] != "0" else "1"), msg)
    assert not s.check(good[:-2], msg) and not s.check(None, msg) and not s.check(good, msg + b" ")
    assert not auth.Signer(bytes(32)).check(good, msg)


def test_canonical_text_is_sorted_compact_ascii_json():
    args = {"moves": [[10, 5], [0, 5]], "name": "Dreher \u00e9 \U0001F9F6", "on": True,
            "none": None, "nested": {"b": 1, "a": [False]}}
    text = auth.canonical("job", args, 42)
    # For whole numbers, text, lists, objects, booleans and null it is what CPython writes with
    # sorted keys, no spaces and ASCII only: a host in another language can sign it too.
    assert text == json.dumps({"cmd": "job", "args": args, "ctr": 42}, sort_keys=True,
                              separators=(",", ":"), ensure_ascii=True).encode()


def single(v):
    """A JSON value as a board with single-precision floats (rp2, esp32) holds it."""
    if isinstance(v, float):
        return struct.unpack("f", struct.pack("f", v))[0]
    if isinstance(v, list):
        return [single(x) for x in v]
    if isinstance(v, dict):
        return {k: single(x) for k, x in v.items()}
    return v


def test_a_board_with_single_precision_floats_checks_what_the_host_signed():
    rng = random.Random(3)
    key = bytes(range(32))
    values = [0.1, 120.5, 230.123456, -3.75e-7, 1e12, 65535.99, 1 / 3, 2.0 ** -20, 516.4604925736]
    values += [rng.uniform(-1000, 1000) for _ in range(800)]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-9, 9) for _ in range(800)]
    s = auth.Signer(key)
    for v in values:
        wire = json.dumps(auth.request(key, "job", {"moves": [[v, 5.0]], "to": v}, 3))
        got = single(json.loads(wire))  # what json.loads gives on the board
        assert s.check(got["mac"], auth.canonical(got["cmd"], got["args"], got["ctr"])), (v, wire)
    # Sent with more digits than a float32 keeps, a number may not check: request() rounds.
    assert auth.canonical("m", {"to": 516.4604925736}, 1) != auth.canonical(
        "m", {"to": single(516.4604925736)}, 1)


def test_args_nested_too_deep_are_refused_before_hashing():
    deep = []
    for _ in range(20):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper than 8 levels"):
        auth.canonical("job", {"moves": deep}, 1)


def test_request_is_what_the_board_checks():
    key = os.urandom(32)
    req = auth.request(key, "move", {"to": 1.5}, 9)
    assert set(req) == {"cmd", "args", "ctr", "mac"} and req["ctr"] == 9
    assert auth.Signer(key).check(req["mac"], auth.canonical("move", {"to": 1.5}, 9))
    assert auth.request(key, "status", None, 1)["args"] == {}


@pytest.mark.parametrize("text", ["abc", "0" * 31, "0" * 30, "zz" * 16, 1234, "0" * 258])
def test_a_bad_key_is_refused_without_repeating_it(text):
    with pytest.raises(ValueError) as e:
        auth.parse_key(text)
    assert "value hidden" in str(e.value) and (not isinstance(text, str) or text[:8] not in str(e.value))


def test_key_from_hex():
    assert auth.parse_key("00ff" * 8) == b"\x00\xff" * 8


def test_the_counter_survives_a_restart_and_a_torn_update(tmp_path):
    path = str(tmp_path / "net_ctr.json")
    c = auth.Counter(path)
    assert c.last == 0 and not c.lost
    c.accept(5)
    c.accept(9)
    assert auth.Counter(path).last == 9  # what a reset reads back
    # A cut between writing the new file and the rename leaves the old value in place.
    (tmp_path / "net_ctr.json.new").write_text('{"ct')
    assert auth.Counter(path).last == 9
    (tmp_path / "net_ctr.json").write_text("garbage")
    assert auth.Counter(path).lost


def test_micropython_itself_computes_the_same_macs_and_canonical_text():
    """fab.auth in the real MicroPython VM (1.27, WebAssembly): its hashlib, bytes and string
    formatting give what CPython's hmac and fab.auth on the host give."""
    from microfab_sim.wasm_board import WasmBoard

    cases = [(key, msg) for key, msg, _ in RFC4231] + [(bytes(range(64)), b""), (b"k", b"x" * 300)]
    args = {"moves": [[120.5, 5], [-3.75e-07, 1e12]], "name": "Dreher \u00e9", "on": True,
            "none": None, "to": 230.123}
    with WasmBoard(board="pico_w", seed=1) as b:
        a = "__import__('fab.auth').auth"
        for key, msg in cases:
            got = b.eval("%s.hexlify(%s.hmac_sha256(%r, %r))" % (a, a, key, msg))
            assert got == hmac.new(key, msg, hashlib.sha256).hexdigest()
        assert b.eval("%s.canonical('job', %r, 7)" % (a, args)) == \
            auth.canonical("job", args, 7).decode()


# --- on a board: the same message twice runs once, also across a reset ---


def test_a_replayed_command_is_refused_also_after_a_reset(mosquitto):
    from microfab_sim.net import Watcher, net_board, until

    key = os.urandom(32)
    w = Watcher(mosquitto.port)
    b = net_board(mosquitto.url, "r1", key)
    try:
        online = lambda n: len([s for s in w.json("microfab/r1/status") if s["state"] == "online"]) >= n  # noqa: E731
        replies = lambda n: len(w.json("microfab/r1/reply")) >= n  # noqa: E731
        until(b, lambda: online(1))
        w.command("r1", key, "status", ctr=5)
        until(b, lambda: replies(1))
        w.command("r1", key, "status", ctr=5)  # captured and sent again
        until(b, lambda: replies(2))
        b.reset()  # the counter must not be forgotten
        until(b, lambda: online(2))
        w.command("r1", key, "status", ctr=5)
        w.command("r1", key, "status", ctr=4)
        w.command("r1", key, "status", ctr=6)
        until(b, lambda: replies(5))
        r = w.json("microfab/r1/reply")
        assert r[0]["ok"] and r[0]["ctr"] == 5 and r[0]["state"] == "ready"
        assert [x["ok"] for x in r] == [True, False, False, False, True]
        assert r[1]["error"] == "replayed command: ctr 5 is not above the last accepted 5"
        assert r[2]["error"] == "replayed command: ctr 5 is not above the last accepted 5"
        assert r[3]["error"] == "replayed command: ctr 4 is not above the last accepted 5"
        assert r[4]["ctr"] == 6
        # Refusals are logged on the board (an event on its serial line), the commands run
        # are too; the second boot's log starts after the reset.
        logged = [e["error"] for e in b.lines("cmd_refused")]
        assert logged and all(x.startswith("replayed command") for x in logged)
        assert [e["ctr"] for e in b.lines("mqtt_cmd")] == [5, 6]
    finally:
        w.close()
        b.close()
