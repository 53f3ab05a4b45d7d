# The polyfloss spinner's parts under its control task, and the interlocks. The parts are wired
# from the config: thermocouple, heater and contactor, drum, scale, feed, lid. One task at a fixed
# period reads the thermocouple, trips on what is wrong (a broken or stale sensor,
# over-temperature, a heating check, the lid) and drives the heater (PID, or the relay autotune),
# the drum, the feed and the scale. A trip cuts heat, drum and feed and latches a fault until
# `clear` finds it safe again. fab.machines.polyfloss builds on this class with the commands.
_LID = "lid opened: drum and heater stopped"


def _emit_line(obj):
    import json

    print(json.dumps(obj))  # the USB serial, where the link's lines go too


class Control:
    # A base class, not a part the Machine holds: the state that the control task and the
    # commands share stays on one object (no second one on the heap), and status() reads it.
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

    # --- the interlocks ---

    def lid_open(self):
        return self.lid.value() != self.cfg["lid_closed_level"]

    def running(self):
        return self.mode != "off" or self.drum.target > 0

    def in_band(self):
        return (self.mode == "heat" and self.temp is not None
                and abs(self.temp - self.sp) <= self.cfg["band"])

    def _ready(self):
        if self.fault:
            raise ValueError("fault latched: %s; fix it, then send clear" % self.fault)
        if self.lid_open():
            raise ValueError("lid is open: close it first")

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

    def _clear(self, args):
        # The `clear` command: a latched fault goes only once nothing that tripped it remains.
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

    # --- the control task ---

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
