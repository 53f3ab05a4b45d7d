# The board on MQTT: journal records out at QoS 1 (the journal's cursor moves only on PUBACK, and
# whatever was not acknowledged goes out again after a reconnect or a reset), a retained status
# with a last will, Home Assistant discovery, and authenticated commands in, answered with the
# serial protocol's words. Topics under microfab/<device>/: tele/<kind>, status, cmd, reply.
# Started by fab.runtime when config/net.json exists; see docs/telemetry.md.
import json

import asyncio
from micropython import const

from fab import VERSION, hal, hass, netcfg, wifi
from fab.mqtt import Client, MQTTError
from fab.netcmd import CTR_FILE, Commands

_WINDOW = const(8)  # journal records in flight (published, no PUBACK yet)
_POLL_MS = const(1000)  # how often the journal is looked at when nothing else wakes the pump
_HA_FILE = "net_ha.json"  # the discovery topics this board published, for `retire`


def start(rt, data):
    """Check config/net.json and start the uplink under the runtime's guard; a bad file is an
    event (net_error) and the machine runs on without a network."""
    try:
        if rt.board is not None and not rt.board.get("wifi"):
            raise ValueError("%s: board %s has no Wi-Fi; remove the file or deploy to a board "
                             "with Wi-Fi" % (netcfg.WHERE, rt.board["name"]))
        up = Uplink(rt, netcfg.parse(data, hal.uid()))
    except ValueError as e:
        rt.emit({"event": "net_error", "error": str(e)})
        return None
    rt.uplink = up
    asyncio.create_task(rt.guard("uplink", up.run, True))
    if up.clock is not None:
        asyncio.create_task(rt.guard("clock", lambda: up.clock.run(wifi.wifi_up), True))
    return up


class Uplink:
    def __init__(self, rt, cfg):
        self.rt = rt
        self.cfg = cfg
        dev = cfg["device_id"]
        base = "microfab/%s/" % dev
        self.t_status, self.t_cmd, self.t_reply = base + "status", base + "cmd", base + "reply"
        self.t_tele = base + "tele/"
        self.cmds = Commands(rt, cfg["key"], self.reply)
        c = self.c = Client(cfg["host"], cfg["port"], "microfab-" + dev, cfg["user"],
                            cfg["password"], cfg["keepalive_s"], cfg["wifi_ssid"],
                            cfg["wifi_password"])
        c.will = (self.t_status, json.dumps({"state": "offline", "device": dev}), True)
        c.subs = [(self.t_cmd, 1)]
        c.on_up, c.on_message, c.on_ack, c.on_down = self._up, self._message, self._ack, self._down
        self.clock = None
        if cfg["ntp_server"]:
            from fab.clock import Clock

            self.clock = Clock(cfg["ntp_server"], rt.tele.boot_seq)
        self.j = rt.tele.journal  # None only when the flash refused to open one
        self.after = self.j.cursor if self.j else 0  # the last record handed to the broker
        self.sent_max = self.after  # records up to here went out before: resent with DUP
        self.pids = {}  # pid -> seq
        self.flight = []  # [seq, acked] in the order sent
        self.gen = 0  # connections lost so far: a batch begun on an older one is abandoned
        self.sent = self.acked = 0
        self._poke = asyncio.Event()
        self.announced = []  # record kinds whose discovery configs went out on this connection
        self.ha_topics = []  # discovery topics published (kept on flash for `retire`)
        self.retired = False
        try:
            with open(_HA_FILE) as f:
                ha = json.load(f)
            self.ha_topics, self.retired = list(ha["topics"]), bool(ha["retired"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none published yet, or unreadable: retire then removes what it knows
        self._retire = False
        t = rt.table
        t.add("net", self._status)
        t.add("resend", self._resend_cmd, (("from", "i", 1),))
        t.add("retire", self._retire_cmd)
        t.add("discover", self._discover_cmd)
        ev = netcfg.public(cfg)
        ev["event"] = "net"
        rt.emit(ev)
        if self.j is None:  # the runtime opens one for a network config: the flash failed
            rt.emit({"event": "net_error", "error": "no telemetry over MQTT: %s (MQTT sends "
                     "what the journal holds)" % (rt.tele.error or "no journal")})
        if self.cmds.ctr.lost:
            rt.emit({"event": "net_error", "error": "%s is unreadable: the command counter "
                     "starts again from 0; provision a new key" % CTR_FILE})

    async def run(self):
        pump = asyncio.create_task(self._pump())
        try:
            await self.c.run()
        finally:
            pump.cancel()

    # --- connection events (from the client) ---

    async def _up(self):
        self.rt.emit({"event": "mqtt", "up": True, "connects": self.c.connects})
        st = {"state": "online", "device": self.cfg["device_id"], "firmware": VERSION,
              "machine": self.rt.cfg and self.rt.cfg["machine"],
              "board": self.rt.board and self.rt.board["name"], "reset_cause": hal.reset_cause()}
        await self.c.publish(self.t_status, json.dumps(st), 1, True)
        self._poke.set()

    def _down(self):
        self.rt.emit({"event": "mqtt", "up": False, "error": self.c.error})
        self.gen += 1
        self.pids = {}
        self.flight = []
        self.announced = []
        self.after = self.j.cursor if self.j else 0  # replay from the last acknowledged record

    def _ack(self, pid):
        seq = self.pids.pop(pid, None)
        if seq is None:
            return  # a status or discovery config
        done = None
        for item in self.flight:
            if item[0] == seq:
                item[1] = True
        while self.flight and self.flight[0][1]:
            done = self.flight.pop(0)[0]
            self.acked += 1
        if done is not None:
            self.j.ack(done)  # the cursor moves over a gap-free run of acknowledged records
        self._poke.set()

    # --- records out ---

    async def _pump(self):
        while True:
            try:
                if self._retire and self.c.up():
                    await self._clear_discovery()
                room = _WINDOW - len(self.flight)
                clock = self.clock
                if (self.j is not None and self.c.up() and room > 0
                        and (clock is None or clock.settled())):
                    gen = self.gen
                    j = self.j
                    batch = list(j.pending(self.after, room, self.after < j.cursor))
                    for seq, ts, kind, rec in batch:
                        await self._send(gen, seq, ts, kind, rec)
                    if batch:
                        continue
            except Exception:  # the connection broke under a publish: the client reconnects
                pass
            try:
                await asyncio.wait_for_ms(self._poke.wait(), _POLL_MS)
            except asyncio.TimeoutError:
                pass
            self._poke.clear()

    async def _send(self, gen, seq, ts, kind, rec):
        c = self.c
        if kind not in self.announced:
            await self._announce(kind, rec)
        msg = {}
        for k in rec:
            msg[k] = rec[k]
        if self.clock is not None:
            ts = self.clock.stamp(seq, ts)
        msg["seq"], msg["ts"], msg["kind"] = seq, ts, kind
        if gen != self.gen or not c.up():
            # The connection this batch was read for is gone (_down has rewound to the
            # cursor): booking this record now would skip those before it.
            raise MQTTError("the connection was lost")
        pid = c.next_pid()
        self.pids[pid] = seq  # before the write: the PUBACK may come back before it returns
        self.flight.append([seq, False])
        self.after = seq
        await c.publish(self.t_tele + kind, json.dumps(msg), 1, False, seq <= self.sent_max, pid)
        self.sent += 1
        if seq > self.sent_max:
            self.sent_max = seq

    async def _announce(self, kind, rec):
        self.announced.append(kind)
        if not self.cfg["discovery"] or self.retired:
            return
        rt, dev = self.rt, self.cfg["device_id"]
        model = "%s on %s" % (rt.cfg and rt.cfg["machine"], rt.board and rt.board["name"])
        topics = self.ha_topics
        new = False
        # The energy record's fields are its sensors; the status's copies would be twins.
        skip = getattr(rt.machine, "ENERGY", ()) if kind == "status" else ()
        for topic, payload in hass.configs(self.cfg["discovery_prefix"], dev,
                                           self.cfg["name"] or "microfab " + dev, model, kind, rec,
                                           skip):
            await self.c.publish(topic, payload, 1, True)
            if topic not in topics:
                topics.append(topic)
                new = True
        if new:
            self._save_ha()

    async def _clear_discovery(self):
        # An empty retained payload deletes a retained message, and Home Assistant the entity.
        topics = self.ha_topics
        while topics:
            await self.c.publish(topics[-1], b"", 1, True)
            topics.pop()
        self._retire = False
        self._save_ha()

    def _save_ha(self):
        try:
            with open(_HA_FILE, "w") as f:
                json.dump({"topics": self.ha_topics, "retired": self.retired}, f)
        except OSError:
            pass  # a full flash: retire then misses the entities added since

    # --- commands in ---

    async def _message(self, topic, payload):
        if topic != self.t_cmd:
            return
        try:
            out = self.cmds.handle(payload)
        except Exception as e:  # a bug, not bad input: say so, keep serving
            out = {"ctr": None, "ok": False, "error": "internal error: %s: %s"
                   % (type(e).__name__, e)}
        if out is not None:
            await self.reply(out)

    async def reply(self, out):
        if self.c.up():
            try:
                await self.c.publish(self.t_reply, json.dumps(out))
            except Exception:
                pass  # the connection broke: the host asks again with a new ctr

    # --- commands of the uplink itself (serial and MQTT alike) ---

    def _status(self, args):
        c = self.c
        out = {"connected": c.up(), "error": c.error, "attempts": c.attempts,
               "connects": c.connects, "drops": c.drops,
               "wifi_joins": c.wifi_joins, "sent": self.sent, "acked": self.acked,
               "inflight": len(self.flight), "cursor": self.j.cursor if self.j else None,
               "accepted": self.cmds.accepted, "refused": self.cmds.refused,
               "ctr": self.cmds.ctr.last,
               "entities": len(self.ha_topics), "retired": self.retired}
        out.update(netcfg.public(self.cfg))
        out.update(wifi.wifi_status())
        if self.clock is not None:
            out.update(self.clock.status())
        return out

    def _resend_cmd(self, args):
        # The collector lost records the broker had acknowledged (a broker that lost its
        # store, a shared subscription over a restart): they go again from the journal, which
        # keeps sent records until it needs their room.
        j, n = self.j, args["from"]
        if j is None:
            raise ValueError("no journal on this board: nothing to send again")
        st = j.status()
        if st["oldest"] is None or not st["oldest"] <= n <= st["newest"]:
            raise ValueError("seq %d is not in the journal, which holds %s to %s" % (
                n, st["oldest"], st["newest"]))
        if n <= self.after:
            self.after = n - 1  # the pump goes on from there (DUP set: sent before)
        self._poke.set()
        return {"resending": st["newest"] - n + 1, "from": n}

    def _retire_cmd(self, args):
        n = len(self.ha_topics)
        self.retired = True
        self._retire = True
        self._save_ha()
        self._poke.set()
        return {"retired": True, "entities": n}

    def _discover_cmd(self, args):
        self.retired = False
        self.announced = []
        self.rt.tele.again()  # the totals go out again at the next report, and are announced
        self._save_ha()
        return {"retired": False}

