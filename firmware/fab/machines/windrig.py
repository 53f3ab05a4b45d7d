# The wind-powered rig, after Merel Karhof's Wind Knitting Factory: a rotor on a facade turns a
# knitting machine, and every piece it finishes is labelled with the time and the wind it took.
#
#   direct    the rotor's shaft turns the knitting machine: rows come when the wind blows, and a
#             generator on the same shaft charges the battery that runs the electronics
#   buffered  the rotor turns only the generator, which charges a battery; the machine's motor
#             (PWM) runs from the battery at the speed the energy policy affords (fab.energy)
#
# Both: wind speed from a cup anemometer, rotor rpm from a hall sensor, rows from a hall on the
# machine's cam, energy from two INA219/INA226 monitors (generator -> battery bus -> loads), and a
# brake (or furling actuator) that stops the rotor above the cut-out wind speed: wind, rpm and
# the brake are fab.rotor.Rotor, which this Machine builds on.
# Metadata first and hal-free, so that the host can validate a config with this very module.
import time

from fab.energy import SCHEMA as _ENERGY
from fab.rotor import Rotor

NAME = "windrig"
PINS = ("anemometer", "rotor", "row", "brake", "motor")
SCHEMA = (
    ("mode", "c", "buffered", ("buffered", "direct"), None),
    ("anemometer_factor", "f", 1.0, 0.01, 100.0, "m/s per Hz"),
    ("rotor_pulses", "i", 1, 1, 64, "pulses/rev"),
    ("row_pulses", "i", 1, 1, 64, "pulses/row"),
    ("cutin", "f", 3.0, 0.0, 30.0, "m/s"),
    ("cutout", "f", 15.0, 3.0, 60.0, "m/s"),
    ("cutout_hyst", "f", 3.0, 0.1, 30.0, "m/s"),
    ("gust_s", "i", 3, 1, 60, "s"),  # wind and rpm are averaged over this window
    ("brake_hold_s", "i", 300, 0, 86400, "s"),
    ("brake_active", "i", 1, 0, 1, "level"),
    ("max_rpm", "f", 350.0, 1.0, 10000.0, "rpm"),
    ("piece_rows", "i", 200, 1, 1000000, "rows"),
    ("motor_w", "f", 30.0, 0.1, 5000.0, "W"),
    ("min_duty", "f", 0.3, 0.0, 1.0),
    ("max_duty", "f", 1.0, 0.05, 1.0),
    ("motor_hz", "i", 20000, 100, 100000, "Hz"),
) + _ENERGY
# Keys the calibration file may override: the anemometer against a reference, the shunt against
# a multimeter, the monitors' zero with no current flowing, the charge efficiency from a
# full-to-full cycle.
CALIBRATE = ("anemometer_factor", "shunt_ohm", "gen_zero", "load_zero", "charge_eff")


_DUTY_STEP = 0.02


class Machine(Rotor):
    RECORDS = ("piece",)  # a piece's label is kept in the journal and sent over MQTT
    PRODUCTION = ("rows", "rows")  # the status fields of the totals (fab.tele)
    ENERGY = ("harvested_wh", "used_wh", "bat_in_wh", "bat_out_wh", "soc", "load_w", "gen_w")

    def __init__(self, cfg, pins, board):
        from fab import hal
        from fab.drivers.pulses import Pulses
        from fab.energy import Energy, Monitors, Policy

        c = cfg
        super().__init__(cfg, pins)  # the brake first, braked
        if c["min_duty"] > c["max_duty"]:
            raise ValueError("machine config: min_duty %s is above max_duty %s"
                             % (c["min_duty"], c["max_duty"]))
        bus = board["buses"].get("i2c0")
        if bus is None:
            raise ValueError("board %s has no i2c0 bus in its board file; the windrig's power "
                             "monitors need one" % board["name"])
        self.direct = c["mode"] == "direct"
        self.motor = hal.pwm(pins["motor"], c["motor_hz"])
        self.rowp = Pulses(hal.inp(pins["row"], True), c["row_pulses"])
        self.meter = Energy(c)
        self.policy = Policy(self.meter, c, c["min_duty"])
        self.monitors = Monitors(c, hal.i2c(bus))
        self.sensor_error = ""
        self.running = False
        self._stop_at = -1
        self.duty = 0.0
        self.rows = self.pieces = 0
        self._piece_start(0)

    def commands(self, table):
        table.add("run", self._run, (("rows", "i", 0),))
        table.add("pause", self._pause)
        table.add("brake", self._brake_cmd, (("on", "b", 1),))
        table.add("soc", self._soc, (("value", "f", 1),))

    def tasks(self):
        return (("windrig", self._loop),)

    # --- commands ---

    def _run(self, args):
        if self.direct:
            raise ValueError("mode is direct: the rotor turns the machine and there is no motor "
                             "to run; it knits whenever the brake is off and the wind blows")
        if self.latched:
            raise ValueError("stopped: release the brake with brake on=false first")
        rows = args["rows"]
        if rows is not None and rows < 1:
            raise ValueError("rows must be 1 or more (or left out to run until pause), got %d"
                             % rows)
        self._stop_at = -1 if rows is None else self.rows + rows
        self.running = True
        return {"running": True, "policy": self.policy.why}

    def _pause(self, args):
        self.running = False
        self._set_duty(0.0, "paused")
        return {"running": False, "rows": self.rows}

    def _soc(self, args):
        self.meter.set_soc(args["value"])
        return {"soc": self.meter.soc}

    # --- the sampling loop ---

    async def _loop(self):
        import asyncio

        period = self.cfg["sample_ms"]
        last = due = time.ticks_ms()
        while True:
            due = time.ticks_add(due, period)
            wait = time.ticks_diff(due, time.ticks_ms())
            if wait < 0:  # fell behind: carry on from now rather than catch up in a burst
                due = time.ticks_ms()
                wait = 0
            await asyncio.sleep_ms(wait)
            now = time.ticks_ms()
            self.step(now, time.ticks_diff(now, last) / 1000)
            last = now

    def step(self, now, dt):
        self.rows = self.rowp.count // self.cfg["row_pulses"]
        self._sample_energy(dt)
        self._rotor_step(now)
        if not self.direct:
            self._motor_step()
        self._piece_step(dt)

    def _sample_energy(self, dt):
        m, e = self.monitors, self.meter
        ok = m.read()
        if m.error != self.sensor_error:
            self.sensor_error = m.error
            self.emit({"event": "sensor", "ok": ok, "error": m.error})
        if not ok:
            e.missed(dt)
            return
        if not e.samples:  # the first reading: say how the chips were set up
            s = m.status()
            s["event"] = "monitors"
            self.emit(s)
        v = m.volts
        why = e.sample(v, m.gen_a, m.load_a, v * m.gen_a, v * m.load_a, dt)
        if why:
            self.emit({"event": "soc", "soc": e.soc, "why": why, "vbat": round(v, 3)})

    def _set_duty(self, duty, why):
        was = self.duty
        # A speed that wanders by a hair each second is not worth a new duty: steps of 2 %.
        if duty != was and (duty == 0 or was == 0 or abs(duty - was) >= _DUTY_STEP):
            self.duty = duty
            self.motor.duty_u16(int(duty * 65535))
            if (duty > 0) != (was > 0):
                self.emit({"event": "motor", "on": duty > 0, "why": why,
                           "soc": round(self.meter.soc, 4), "rows": self.rows})

    def _motor_step(self):
        s = self.policy.speed(self.cfg["motor_w"])  # asked even when idle: status shows it
        if not self.running:
            return
        if 0 <= self._stop_at <= self.rows:
            self.running = False
            self._set_duty(0.0, "done")
            self.emit({"event": "run", "done": True, "rows": self.rows})
            return
        self._set_duty(min(s, self.cfg["max_duty"]), self.policy.why)

    # --- pieces ---

    def _piece_start(self, rows):
        e = self.meter
        self._p_rows = rows
        self._p_s = self._p_wind = self._p_windy = 0.0
        self._p_wh = e.harvested_wh
        self._p_used = e.used_wh

    def _piece_step(self, dt):
        c = self.cfg
        self._p_s += dt
        self._p_wind += self.wind * dt
        if self.wind >= c["cutin"]:
            self._p_windy += dt
        n = c["piece_rows"]
        if self.rows - self._p_rows < n:
            return
        # The label: how long the piece took and the wind it took.
        e = self.meter
        hw = e.harvested_wh - self._p_wh
        uw = e.used_wh - self._p_used
        self.pieces += 1
        self.emit({"event": "piece", "n": self.pieces, "mode": c["mode"], "rows": n,
                   "s": round(self._p_s), "wind_ms": round(self._p_wind / self._p_s, 2),
                   "wind_h": round(self._p_windy / 3600, 3),
                   "wind_km": round(self._p_wind / 1000, 2), "harvested_wh": round(hw, 2),
                   "used_wh": round(uw, 2), "wh_per_row": round(hw / n, 4),
                   "used_wh_per_row": round(uw / n, 4)})
        self._piece_start(self._p_rows + n)

    # --- the runtime's interface ---

    def status(self):
        s = self.meter.status()
        rows = self.rows
        s.update({"mode": self.cfg["mode"], "wind": round(self.wind, 2), "rpm": round(self.rpm, 1),
                  "brake": self.braked, "brake_why": self.brake_why, "rows": rows,
                  "pieces": self.pieces, "piece_rows": rows - self._p_rows,
                  "sensor_error": self.sensor_error,
                  "wh_per_row": round(self.meter.harvested_wh / rows, 4) if rows else None,
                  "used_wh_per_row": round(self.meter.used_wh / rows, 4) if rows else None})
        if not self.direct:
            s.update({"running": self.running, "duty": round(self.duty, 3),
                      "policy": self.policy.why, "budget_w": round(self.policy.budget_w(), 2)})
        return s

    def resume(self, kind, rec):
        # The battery did not change while the board was off (much): better than soc_start.
        soc = rec.get("soc") if kind == "energy" else None
        if isinstance(soc, float) and 0.0 <= soc <= 1.0:
            self.meter.set_soc(soc)

    def stop(self):
        """The e-stop: motor off, rotor braked, and both stay so until `brake on=false`."""
        was = "running" if self.running else ("braked" if self.braked else "idle")
        self.running = False
        self._set_duty(0.0, "stop")
        self.latched = True
        self._engage("stop", 0)
        self.brake_why = "stop"
        return was

    def safe(self):
        self.stop()
