"""10,000 fuzzed command messages over MQTT to a simulated board, against a real Mosquitto: broken
JSON, wrong types, unknown fields, huge messages, bad and stolen signatures, replays, mixed with
properly signed commands. Each gets one reply, in order: refused with the words that say why, or
run when it was signed and new. Nothing unsigned runs, the board keeps running and its telemetry
loses nothing meanwhile.

Run with -s to see the figures."""
import json
import random
import time

from microfab import config  # noqa: F401  puts the firmware's `fab` on sys.path
from microfab_sim.net import Watcher, net_board, until

from fab import auth

N = 10_000
KEY = bytes(range(100, 132))
DEV = "fz"
WINDOW = 250  # messages on their way at a time


def fuzz(rng):
    """(payload bytes, expected reply: True for ok, else words of the error), N of them."""
    ctr = 0
    accepted = []  # signed messages already run: replayed later
    out = []

    def signed(cmd="status", args=None, c=None, key=KEY):
        return auth.request(key, cmd, args, ctr if c is None else c)

    def shape(**kw):
        m = signed(c=ctr + 1)
        m.update(kw)
        return json.dumps(m).encode()

    while len(out) < N:
        kind = rng.randrange(16)
        if kind == 0:  # a properly signed, new command: it runs
            ctr += rng.randint(1, 3)
            m = signed(rng.choice(["status", "hello", "net"]))
            accepted.append(m)
            out.append((json.dumps(m).encode(), True))
        elif kind == 1:  # signed and new, but a command the board does not have
            ctr += 1
            out.append((json.dumps(signed("fly", {"to": 1.5})).encode(), "unknown command 'fly'"))
        elif kind == 2 and accepted:  # a replay of one that ran
            out.append((json.dumps(rng.choice(accepted)).encode(), "replayed command"))
        elif kind == 3:  # random bytes, sometimes not UTF-8
            n = rng.randrange(1, 200)
            out.append((bytes(rng.getrandbits(8) for _ in range(n)), "not JSON"))
        elif kind == 4:  # a signed command cut short
            raw = json.dumps(signed(c=ctr + 1))
            out.append((raw[:rng.randrange(1, len(raw) - 1)].encode(), "not JSON"))
        elif kind == 5:
            out.append((json.dumps(rng.choice([[1, 2], "status", 7, None, True])).encode(),
                        "expected a JSON object"))
        elif kind == 6:
            bad = rng.choice(["5", 5.5, True, -3, 0, [1], None, {"n": 1}])
            m = signed(c=ctr + 1)
            m["ctr"] = bad
            out.append((json.dumps(m).encode(), "'ctr' must be a whole number"))
        elif kind == 7:
            out.append((shape(**{rng.choice(["id", "Cmd", "sig", "x" * 40]): 1}), "unknown field"))
        elif kind == 8:
            out.append((shape(cmd=rng.choice([5, None, [], {}, True])), "missing 'cmd'"))
        elif kind == 9:
            bad = rng.choice([None, 12, "abc", "0" * 63, "0" * 65, ["00"] * 32])
            out.append((shape(mac=bad), "'mac' must be 64 hex digits"))
        elif kind == 10:  # well formed, random MAC
            out.append((shape(mac="%064x" % rng.getrandbits(256)), "bad mac"))
        elif kind == 11:  # signed with another key
            out.append((json.dumps(signed(c=ctr + 1, key=bytes(32))).encode(), "bad mac"))
        elif kind == 12:  # signed, then changed on the way
            m = signed("jog", {"by": 1.0}, c=ctr + 1)
            m["args"]["by"] = 100.0
            out.append((json.dumps(m).encode(), "bad mac"))
        elif kind == 13:  # huge
            n = rng.choice([1025, 1500, 4096, 30000, 70000])
            body = json.dumps(dict(signed(c=ctr + 1), pad="x" * n)).encode()
            out.append((body, "command too long: at most 1024 bytes"))
        elif kind == 14:  # nested deeper than anyone signs
            args = {"moves": json.loads("[" * 30 + "]" * 30)}
            out.append((shape(args=args), "nested deeper than 8 levels"))
        elif kind == 15:  # wrong types inside a well formed message
            out.append((shape(args=rng.choice([[1], "x", 3])), "bad mac"))
    return out


def test_ten_thousand_fuzzed_commands_are_each_refused_or_run_and_nothing_is_lost(mosquitto):
    cases = fuzz(random.Random(11))
    w = Watcher(mosquitto.port, ("microfab/%s/#" % DEV,), client_id="fuzzer")
    b = net_board(mosquitto.url, DEV, KEY, machine={"machine": "axis", "report_s": 1,
                                                    "journal": True}, seed=2)
    try:
        topic = "microfab/%s/reply" % DEV
        until(b, lambda: w.count("microfab/%s/status" % DEV))
        t0 = time.monotonic()
        for i in range(0, N, WINDOW):
            for payload, _ in cases[i:i + WINDOW]:
                w.publish("microfab/%s/cmd" % DEV, payload, qos=1)
            until(b, lambda: w.count(topic) >= min(N, i + WINDOW), virtual_s=600, step=0.5,
                  real_s=60)
        real = time.monotonic() - t0
        got = w.json(topic)
        assert len(got) == N
        ran = refused = 0
        for k, ((payload, want), r) in enumerate(zip(cases, got)):
            if want is True:
                assert r["ok"], (k, payload[:120], r)
                ran += 1
            else:
                assert r["ok"] is False and want in r["error"], (k, payload[:120], want, r)
                refused += 1
        # The board runs on: no fault, every command counted, telemetry complete and in order.
        st = b.send("status")
        assert st["state"] == "ready" and st["faults"] == 0
        n = b.send("net")
        assert n["accepted"] == ran + sum(1 for p, want in cases if want == "unknown command 'fly'")
        assert n["refused"] == refused - sum(1 for p, want in cases if want == "unknown command 'fly'")
        assert n["drops"] == 0 and n["connects"] == 1
        assert b.lines("cmd_refused")  # logged, at most one event a second
        newest = st["journal"]["newest"]
        tele = lambda: [json.loads(m[1])["seq"] for m in w.take("microfab/%s/tele/" % DEV)]  # noqa: E731
        until(b, lambda: newest in tele())
        seqs = tele()  # every kind: status, production...
        assert seqs[:newest] == list(range(1, newest + 1))
        print("\n%d messages in %.1f s real (%.2f ms each): %d ran, %d refused; %d telemetry "
              "records meanwhile, none lost" % (N, real, real * 1000 / N, ran, refused, newest))
    finally:
        w.close()
        b.world.modules["vasyncio"]._io.reset()
        b.close()
