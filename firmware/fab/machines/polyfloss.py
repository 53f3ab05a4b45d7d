# The polyfloss spinner: waste plastic melts in a heated drum that spins it out as fibre (floss)
# into a bowl on a load cell. A heater band on an SSR (time-proportioned, PID on a thermocouple),
# a mains contactor in series as the second cutoff, the drum motor on PWM with a hall sensor, an
# optional feed stepper, a lid switch. One control task at a fixed period does it all: it and the
# interlocks are fab.floss_control.Control, which this Machine builds on with the commands.
# Metadata first and hal-free, so that the host can validate a config with this very module.
from fab.floss_control import Control

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


class Machine(Control):
    # Machine(cfg, pins, board) is Control's: the parts wired from the config.
    PRODUCTION = ("produced_g", "g")  # the status fields of the totals (fab.tele)
    ENERGY = ("used_wh", "power_w")

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

    def tasks(self):
        return (("polyfloss", self._run),)

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
             "heater_wh": round(h.wh(), 2), "drum_wh": round(d.wh, 2), "used_wh": round(wh, 3),
             "power_w": round(h.watts * h.duty + d.watts * d.drive, 1),
             "kwh_per_kg": round(wh / sc.produced, 3) if sc.produced >= 1 else None,
             "spin_s": round(d.spin_s, 1), "kp": self.pid.kp, "ki": self.pid.ki,
             "kd": self.pid.kd, "ticks": self.ticks, "late_ms": self.late_ms,
             "overruns": self.overruns}
        s.update(d.status())
        return s

    def stop(self):
        was = self.mode + (", spin" if self.drum.target > 0 else "")
        self._all_off()
        return was

    def safe(self):
        self._trip("task fault: outputs made safe; send clear (reset the board if the control "
                   "task stopped)")
