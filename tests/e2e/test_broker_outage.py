"""The broker is gone for a simulated hour while the board goes on working and recording: nothing
is lost, the board backs off (a minute at most between attempts) instead of hammering, and once
the broker is back every record of that hour arrives, exactly once, in order, stamped with the
time it was made.

Run with -s to see the figures."""
import time

from microfab_sim.net import Watcher, net_board, until

KEY = bytes(range(32))
HOUR = 3600


def test_an_hour_without_broker_loses_nothing_and_sends_everything_once_in_order(mosquitto):
    w = Watcher(mosquitto.port, ("microfab/o1/#",), client_id="outage-watcher")
    # 10 s reports for an hour: 360 records of ~600 bytes, in a 512 KB journal.
    b = net_board(mosquitto.url, "o1", KEY, seed=3, machine={
        "machine": "axis", "report_s": 10, "journal": True, "journal_kb": 512})
    try:
        recs = lambda: w.json("microfab/o1/tele/status")  # noqa: E731
        until(b, lambda: len(recs()) >= 3 and b.send("net")["inflight"] == 0)
        before = b.send("status")["journal"]["newest"]
        mosquitto.stop()
        t0 = time.monotonic()
        attempts = []
        for _ in range(6):
            b.advance(HOUR / 6)
            attempts.append(b.send("net")["attempts"])
        assert b.send("home")["ok"]  # the machine answers and works all along
        real = time.monotonic() - t0
        j = b.send("status")["journal"]
        n = b.send("net")
        assert not n["connected"] and "ECONNREFUSED" in n["error"]
        assert j["newest"] - before >= 359 and j["cursor"] == before and j["dropped"] == 0
        # Backing off: a minute at most between attempts (with jitter), so 60 to 130 an hour.
        per_10_min = [b_ - a for a, b_ in zip(attempts, attempts[1:])]
        assert all(10 <= x <= 22 for x in per_10_min), per_10_min

        mosquitto.start()
        w.wait_connected()
        newest = j["newest"]
        t1 = time.monotonic()
        until(b, lambda: b.send("status")["journal"]["cursor"] >= newest
              and newest in [r["seq"] for r in recs()], virtual_s=180)
        catch_up = time.monotonic() - t1
        got = [r for r in recs() if r["seq"] <= newest]
        assert [r["seq"] for r in got] == list(range(1, newest + 1))  # once each, in order
        made = [r["ts"] for r in got if r["seq"] > before]
        assert made == sorted(made) and made[-1] - made[0] >= HOUR - 20  # when made, not sent
        print("\nan hour without broker in %.1f s real, %d attempts; %d records made meanwhile, "
              "all delivered once in order %.1f s after it came back"
              % (real, n["attempts"], newest - before, catch_up))
    finally:
        w.close()
        b.world.modules["vasyncio"]._io.reset()
        b.close()
