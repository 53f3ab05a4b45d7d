# The polyfloss spinner: waste plastic melts in a heated drum that spins it out as fibre (floss)
# into a bowl on a load cell. A heater band on an SSR (time-proportioned, PID on a thermocouple),
# a mains contactor in series as the second cutoff, the drum motor on PWM with a hall sensor, an
# optional feed stepper, a lid switch. One control task at a fixed period does it all.
# Metadata first and hal-free, so that the host can validate a config with this very module.
NAME = "polyfloss"
# heater: SSR input; contactor: coil of the series contactor; drum: motor PWM; hall: drum speed;
# lid: lid switch; hx_clk/hx_data: HX711; step/dir/enable: the feed stepper (the board's stepper
# header). The thermocouple converter sits on the board's spi0 bus, selected by that bus's cs pin.
PINS = ("heater", "contactor", "drum", "hall", "lid", "hx_clk", "hx_data", "step", "dir", "enable")
SCHEMA = (
    ("sensor", "c", "max31855", ("max31855", "max6675"), None),
    ("period_ms", "i", 500, 250, 5000, "ms"),  # >= 250: a MAX6675 converts in up to 220 ms
    ("window_ms", "i", 2000, 200, 60000, "ms"),  # SSR time-proportioning window
    ("setpoint", "f", 230.0, 30.0, 450.0, "C"),  # heat and autotune without a setpoint
    ("band", "f", 10.0, 1.0, 50.0, "C"),
    ("max_temp", "f", 300.0, 50.0, 500.0, "C"),
    ("stale_periods", "i", 20, 2, 1000, "periods"),
    ("heat_watch_s", "i", 60, 0, 3600, "s"),  # 0 = off
    ("kp", "f", 0.05, 0.0, 10.0, "1/C"),
    ("ki", "f", 0.001, 0.0, 1.0, "1/(C s)"),
    ("kd", "f", 0.8, 0.0, 1000.0, "s/C"),
    ("heater_watts", "f", 600.0, 1.0, 20000.0, "W"),
    ("drum_drive", "c", "dc", ("dc", "esc"), None),
    ("drum_watts", "f", 60.0, 0.0, 5000.0, "W"),
    ("drum_max_rpm", "f", 3000.0, 100.0, 30000.0, "rpm"),
    ("drum_kp", "f", 0.0002, 0.0, 1.0, "1/rpm"),
    ("drum_ki", "f", 0.0002, 0.0, 1.0, "1/(rpm s)"),
    ("hall_per_rev", "i", 1, 1, 64, "magnets"),
    ("lid_closed_level", "i", 0, 0, 1, "level"),
    ("feed_driver", "c", "none", ("none", "a4988", "drv8825", "tmc2209"), None),
    ("feed_steps_per_g", "f", 200.0, 0.01, 1000000.0, "steps/g"),
    ("feed_max", "f", 30.0, 0.1, 1000.0, "g/min"),
    ("load_scale", "f", 420.0, 0.001, 10000000.0, "counts/g"),
    ("tc_offset", "f", 0.0, -20.0, 20.0, "C"),  # added to every thermocouple reading
)
CALIBRATE = ("kp", "ki", "kd", "load_scale", "feed_steps_per_g", "tc_offset")

_TUNE_MAX_MS = 3600000
_LID = "lid opened: drum and heater stopped"


def _emit_line(obj):
    import json

    print(json.dumps(obj))  # the USB serial, where the link's lines go too


class Machine:
    def __init__(self, cfg, pins, board):
        from fab import hal
        from fab.drivers.hx711 import HX711
        from fab.drum import Drum
        from fab.floss import Feed, Scale
        from fab.heater import Heater, Thermocouple
        from fab.pid import PID

        if cfg["setpoint"] + cfg["band"] >= cfg["max_temp"]:
            raise ValueError("machine config: setpoint %s + band %s must stay below max_temp %s"
                             % (cfg["setpoint"], cfg["band"], cfg["max_temp"]))
        bus = board["buses"].get("spi0")
        if not bus or "cs" not in bus:
            raise ValueError("board file: the polyfloss needs bus spi0 with a cs pin for its "
                             "thermocouple converter")
        self.cfg = cfg
        self.period = cfg["period_ms"]
        if cfg["sensor"] == "max6675":
            from fab.drivers.max6675 import MAX6675 as Chip
        else:
            from fab.drivers.max31855 import MAX31855 as Chip  # type: ignore[assignment]
        self.tc = Thermocouple(Chip(hal.spi(bus), hal.out(bus["cs"], 1)), cfg["stale_periods"],
                               cfg["tc_offset"])
        self.heater = Heater(pins["heater"], pins["contactor"], cfg["window_ms"],
                             cfg["heater_watts"], cfg["max_temp"])
        self.pid = PID(cfg["kp"], cfg["ki"], cfg["kd"], 0.0, 1.0, 2.0, cfg["band"])
        self.drum = Drum(cfg, pins["drum"], pins["hall"])
        hx = HX711(hal.out(pins["hx_clk"], 0), hal.inp(pins["hx_data"]))
        hx.scale = cfg["load_scale"]
        self.scale = Scale(hx)
        # About once a second: floss piles up slowly, and each HX711 read is 50 pin writes.
        self._weigh_every = max(1, 1000 // self.period)
        self.feed = None
        if cfg["feed_driver"] != "none":
            from fab.drivers.stepdir import StepDir
            self.feed = Feed(StepDir(cfg["feed_driver"], pins["step"], pins["dir"],
                                     pins["enable"], 0, board["step_backend"]),
                             cfg["feed_steps_per_g"], self.period)
        self.lid = hal.inp(pins["lid"], pull_up=True)  # a cut wire reads 1: "open" by default
        self.emit = _emit_line  # a runtime that routes machine events through its link sets this
        self.mode = "off"  # off, heat, tune
        self.sp = cfg["setpoint"]
        self.temp = None
        self.fault = ""
        self.trips = 0
        self.tune = None
        self.ticks = 0
        self.late_ms = 0
        self.overruns = 0
        self.alive = False
        hal.on_change(self.lid, self._on_lid)  # last: the handler reads the state set above

    # --- commands ---

    def commands(self, table):
        table.add("heat", self._heat, (("setpoint", "f", 0),))
        table.add("stop-heat", self._stop_heat)
        table.add("spin", self._spin, (("rpm", "f", 1),))
        table.add("feed", self._feed, (("g_min", "f", 1),))
        table.add("autotune", self._autotune, (("setpoint", "f", 0), ("cycles", "i", 0)), True)
        table.add("tare", self._tare)
        table.add("clear", self._clear)

    def _check_sp(self, sp):
        c = self.cfg
        if sp is None:
            return c["setpoint"]
        if sp < 30 or sp + c["band"] >= c["max_temp"]:
            raise ValueError("setpoint %s C is out of range: expected 30 C up to max_temp %s C "
                             "minus band %s C" % (sp, c["max_temp"], c["band"]))
        return sp

    def _ready(self):
        if self.fault:
            raise ValueError("fault latched: %s; fix it, then send clear" % self.fault)
        if self.lid_open():
            raise ValueError("lid is open: close it first")

    def _heat(self, args):
        sp = self._check_sp(args["setpoint"])
        self._ready()
        if self.mode == "tune":
            raise ValueError("autotune is running: wait for its reply or send stop")
        self.heater.arm()
        if self.mode != "heat":
            self.pid.reset()
        self.sp = sp
        self.mode = "heat"
        return {"setpoint": sp, "temp": self.temp}

    def _stop_heat(self, args):
        was = self.mode
        self._all_off()
        return {"was": was, "temp": self.temp}

    def in_band(self):
        return (self.mode == "heat" and self.temp is not None
                and abs(self.temp - self.sp) <= self.cfg["band"])

    def _spin(self, args):
        rpm = args["rpm"]
        if rpm < 0 or rpm > self.cfg["drum_max_rpm"]:
            raise ValueError("rpm %s is out of range: expected 0 to drum_max_rpm %s"
                             % (rpm, self.cfg["drum_max_rpm"]))
        if rpm == 0:
            if self.feed:
                self.feed.stop()
            self.drum.off()
            return {"rpm_target": 0}
        self._ready()
        if self.mode != "heat":
            raise ValueError("the heater is off: send heat first; the drum spins only once it is "
                             "within %s C of its setpoint" % self.cfg["band"])
        if not self.in_band():
            raise ValueError("drum at %s C, not yet within %s C of the setpoint %s C: wait for "
                             "in_band in status" % (self.temp, self.cfg["band"], self.sp))
        self.drum.set_rpm(rpm)
        return {"rpm_target": rpm, "temp": self.temp}

    def _feed(self, args):
        rate = args["g_min"]
        if self.feed is None:
            raise ValueError("no feed motor: feed_driver is none in the machine config")
        if rate < 0 or rate > self.cfg["feed_max"]:
            raise ValueError("g_min %s is out of range: expected 0 to feed_max %s g/min"
                             % (rate, self.cfg["feed_max"]))
        if rate == 0:
            self.feed.stop()
            return {"g_min": 0}
        self._ready()
        if self.drum.target <= 0:
            raise ValueError("the drum is not spinning: send spin first")
        self.feed.start(rate)
        return {"g_min": rate}

    async def _autotune(self, args):
        import asyncio
        import time
        from fab.autotune import RelayTune

        sp = self._check_sp(args["setpoint"])
        cycles = 4 if args["cycles"] is None else args["cycles"]
        if cycles < 2 or cycles > 10:
            raise ValueError("cycles must be 2 to 10, got %d" % cycles)
        self._ready()
        self.heater.arm()
        tune = self.tune = RelayTune(sp, 1.0, cycles, max_cycles=cycles * 3)
        self.sp = sp
        self.mode = "tune"
        t0 = time.ticks_ms()
        try:
            while not tune.done:
                await asyncio.sleep_ms(self.period)
                if self.mode != "tune":
                    raise ValueError("autotune stopped: %s" % (self.fault or "stop"))
                if tune.error:
                    raise ValueError("autotune failed: " + tune.error)
                if time.ticks_diff(time.ticks_ms(), t0) > _TUNE_MAX_MS:
                    raise ValueError("autotune gave up after %d min without a steady oscillation"
                                     % (_TUNE_MAX_MS // 60000))
            # Hold the setpoint with the new gains, the integral starting from the relay's mean
            # duty: what holding this temperature takes.
            self.pid.set_gains(tune.kp, tune.ki, tune.kd)
            self.pid.reset(tune.bias)
            self.mode = "heat"
        finally:
            self.tune = None
            if self.mode == "tune":
                self._all_off()
        return {"kp": tune.kp, "ki": tune.ki, "kd": tune.kd, "ku": tune.ku, "tu_s": tune.tu,
                "amplitude": tune.amplitude, "bias": tune.bias, "setpoint": sp, "applied": True}

    def _tare(self, args):
        return {"offset": self.scale.tare(), "grams": 0.0}

    def _clear(self, args):
        was = self.fault
        if not was:
            return {"cleared": ""}
        if not self.alive:
            raise ValueError("the control task has stopped: reset the board")
        if self.lid_open():
            raise ValueError("lid is open: close it, then clear")
        self.tc.stale = 0
        t = self.tc.read()
        if t is None:
            raise ValueError("still faulty: %s" % self.tc.why)
        if t >= self.cfg["max_temp"] - self.cfg["band"]:
            raise ValueError("drum still at %.1f C: wait until it is below %.1f C"
                             % (t, self.cfg["max_temp"] - self.cfg["band"]))
        self.fault = ""
        self.heater.reset_cutoff()
        return {"cleared": was}

    # --- safety ---

    def lid_open(self):
        return self.lid.value() != self.cfg["lid_closed_level"]

    def running(self):
        return self.mode != "off" or self.drum.target > 0

    def _on_lid(self, pin):
        # In the IRQ: cut heat and drum at once without allocating; the next tick latches why.
        # Opening the lid of an idle machine (to load plastic) is no fault.
        if self.lid_open() and self.running():
            self.heater.cut(_LID)
            self.drum.cut()

    def _all_off(self):
        self.mode = "off"
        self.heater.cut("")
        self.drum.off()
        if self.feed:
            self.feed.stop()

    def _trip(self, why):
        self._all_off()
        self.heater.cut(why)
        if not self.fault:
            self.fault = why
            self.trips += 1
            self.emit({"event": "heater_fault", "fault": why, "temp": self.temp})

    # --- the control task ---

    def tasks(self):
        return (("polyfloss", self._run),)

    async def _run(self):
        # Ticks on a fixed grid (nxt += period), waking between them only for the SSR's edges.
        import asyncio
        import time

        period = self.period
        nxt = time.ticks_ms()
        self.alive = True
        try:
            while True:
                now = time.ticks_ms()
                late = time.ticks_diff(now, nxt)
                if late >= 0:
                    if late > self.late_ms:
                        self.late_ms = late
                    if late >= period:  # a period was missed: count it, keep the phase from now
                        self.overruns += 1
                        nxt = now
                    self._tick(now)
                    nxt = time.ticks_add(nxt, period)
                wait = self.heater.service(now)
                d = time.ticks_diff(nxt, time.ticks_ms())
                await asyncio.sleep_ms(max(0, min(d, wait)))
        finally:
            self.alive = False

    def _tick(self, now):
        c = self.cfg
        dt = self.period / 1000
        self.ticks += 1
        t = self.tc.read()
        self.temp = t
        if t is None:
            self._trip(self.tc.why)
        elif self.heater.check(t):
            self._trip(self.heater.tripped)
        # The IRQ cut the outputs (heater.tripped); latch it here even if the lid shut again.
        if self.heater.tripped == _LID or (self.lid_open() and self.running()):
            self._trip(_LID)
        if self.fault:
            pass
        elif self.mode == "heat":
            self.heater.set_duty(self.pid.update(self.sp, t, dt), now)
            why = self.heater.watch(self.ticks * dt, t, c["heat_watch_s"])
            if why:
                self._trip(why)
        elif self.mode == "tune" and self.tune is not None:
            self.heater.set_duty(self.tune.update(t, self.ticks * dt), now)
        self.drum.tick(dt)
        if self.feed:
            # Plastic into a drum below its band would not melt: hold the feed until it is back.
            self.feed.tick(self.in_band(), "held: the drum is out of its band")
        if self.ticks % self._weigh_every == 0:
            self.scale.tick()

    # --- reporting ---

    def status(self):
        h, d, sc = self.heater, self.drum, self.scale
        wh = h.wh() + d.wh
        spin_h = d.spin_s / 3600
        s = {"heater": "fault" if self.fault else self.mode,
             "temp": self.temp, "setpoint": self.sp, "in_band": self.in_band(),
             "duty": round(h.duty, 3), "contactor": h.armed(), "fault": self.fault,
             "trips": self.trips, "lid": "open" if self.lid_open() else "closed",
             "cj_temp": self.tc.chip.internal,
             "feed_g_min": self.feed.rate if self.feed else 0.0,
             "feed_note": self.feed.note if self.feed else "",
             "fed_g": round(self.feed.fed_g(), 2) if self.feed else 0.0,
             "grams": None if sc.grams is None else round(sc.grams, 2),
             "scale_ok": sc.misses < 3, "produced_g": round(sc.produced, 2),
             "g_per_h": round(sc.produced / spin_h, 1) if spin_h > 0 else 0.0,
             "heater_wh": round(h.wh(), 2), "drum_wh": round(d.wh, 2),
             "kwh_per_kg": round(wh / sc.produced, 3) if sc.produced >= 1 else None,
             "spin_s": round(d.spin_s, 1), "kp": self.pid.kp, "ki": self.pid.ki,
             "kd": self.pid.kd, "ticks": self.ticks, "late_ms": self.late_ms,
             "overruns": self.overruns}
        s.update(d.status())
        return s

    def production(self):
        return {"units": round(self.scale.produced, 2), "unit": "g"}

    def energy(self):
        h, d = self.heater, self.drum
        return {"used_wh": round(h.wh() + d.wh, 3),
                "power_w": round(h.watts * h.duty + d.watts * d.drive, 1)}

    def stop(self):
        was = self.mode + (", spin" if self.drum.target > 0 else "")
        self._all_off()
        return was

    def safe(self):
        self._trip("task fault: outputs made safe; send clear (reset the board if the control "
                   "task stopped)")
