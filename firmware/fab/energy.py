# Energy accounting for machines that run on what they harvest (the wind rig first, any machine
# with a battery after it): energy in Wh per channel, the battery's state of charge by coulomb
# counting, and a policy that a machine asks before it runs: "may I run, and how fast?".
#
# Pure arithmetic on the samples a machine hands in at its fixed sample rate: no hal, no
# `micropython` import, so that the host imports SCHEMA along with a machine's metadata.
#
# Measured by two monitors (Monitors, below) on the battery bus. Channels, all in Wh since boot:
#   harvested  generator -> battery bus (the generator's monitor)
#   used       battery bus -> the loads: motor, electronics (the load monitor)
#   bat_in     into the battery: harvested minus used, where positive
#   bat_out    out of the battery: used minus harvested, where positive
# so harvested - used = bat_in - bat_out, sample by sample.

# Fields (key, kind, default, lo, hi, unit), see fab.config; a machine appends them to its SCHEMA.
SCHEMA = (
    # the two monitors (INA219 or INA226) on i2c0, one shunt each
    ("ina", "c", "ina219", ("ina219", "ina226"), None),
    ("gen_addr", "i", 0x40, 0x40, 0x4F),  # between the generator (or charger) and the bus
    ("load_addr", "i", 0x41, 0x40, 0x4F),  # between the bus and the loads
    ("shunt_ohm", "f", 0.01, 0.0001, 10.0, "ohm"),
    ("max_current", "f", 8.0, 0.01, 100.0, "A"),
    ("ina_avg", "i", 16, 1, 1024, "samples"),
    # each monitor's reading with no current flowing (its offset voltage over the shunt: up to
    # 100 uV on an INA219, 10 uV on an INA226), subtracted from every reading
    ("gen_zero", "f", 0.0, -5.0, 5.0, "A"),
    ("load_zero", "f", 0.0, -5.0, 5.0, "A"),
    # the battery
    ("battery_ah", "f", 40.0, 0.1, 10000.0, "Ah"),
    # coulombic efficiency of charging: lead-acid 0.85-0.95, LiFePO4 about 0.99
    ("charge_eff", "f", 0.9, 0.5, 1.0),
    ("soc_start", "f", 0.5, 0.0, 1.0),  # assumed at boot, until the first re-zero
    ("full_v", "f", 14.1, 1.0, 100.0, "V"),  # 12 V lead-acid absorbs at 14.1-14.7 V
    ("full_a", "f", 0.5, 0.0, 1000.0, "A"),  # tail current at full_v: ~C/100 to C/50
    ("cutoff_v", "f", 11.6, 1.0, 100.0, "V"),  # low-voltage disconnect, under load
    ("floor_soc", "f", 0.3, 0.0, 0.95),
    ("resume_soc", "f", 0.4, 0.0, 1.0),
    ("forecast_s", "i", 600, 10, 86400, "s"),
    ("horizon_s", "i", 7200, 60, 604800, "s"),
)

FULL_S = 60  # s at full_v with a tail current under full_a: the end of an absorption charge
CUTOFF_N = 3  # samples at or under cutoff_v in a row: a motor start-up dip is not an empty battery
STALE_S = 5  # s without a good sample before the policy stops the loads
CHECK_EVERY = 30  # samples between checks that the monitors still hold their calibration
_NOTE = 0.005  # a re-zero that moves the SoC by less than this is bookkeeping, not news
_START = 0.1  # a stopped load restarts only at min_speed plus this: no stop-start every minute


class Energy:
    def __init__(self, cfg):
        if cfg["resume_soc"] <= cfg["floor_soc"]:
            raise ValueError("machine config: resume_soc %s must be above floor_soc %s"
                             % (cfg["resume_soc"], cfg["floor_soc"]))
        if cfg["cutoff_v"] >= cfg["full_v"]:
            raise ValueError("machine config: cutoff_v %s V must be below full_v %s V"
                             % (cfg["cutoff_v"], cfg["full_v"]))
        self.ah = cfg["battery_ah"]
        self.eff = cfg["charge_eff"]
        self.full_v = cfg["full_v"]
        self.full_a = cfg["full_a"]
        self.cutoff_v = cfg["cutoff_v"]
        self.tau = cfg["forecast_s"]
        self.soc = cfg["soc_start"]
        self.harvested_wh = 0.0
        self.used_wh = 0.0
        self.bat_in_wh = 0.0
        self.bat_out_wh = 0.0
        self.volts = 0.0
        self.gen_w = 0.0
        self.load_w = 0.0
        self.bat_a = 0.0
        self.gen_a = 0.0
        self.load_a = 0.0
        self.forecast_w = 0.0  # harvest expected next: recent harvest, smoothed over forecast_s
        self.samples = 0
        self.gap_s = 0.0  # time not accounted because a monitor did not answer
        self.stale_s = STALE_S + 1.0  # time since the last good sample: none yet
        self.rezeros = 0
        self.rezeroed = ""  # "full" or "cutoff": the last re-zero
        self._full_s = 0.0
        self._low_n = 0

    def sample(self, volts, gen_a, load_a, gen_w, load_w, dt):
        # One sample covering the last dt seconds. Returns "full" or "cutoff" when it re-zeroed
        # the SoC by a noticeable amount, else "".
        self.volts = volts
        self.gen_w = gen_w
        self.load_w = load_w
        self.samples += 1
        self.stale_s = 0.0
        h = dt / 3600
        self.harvested_wh += gen_w * h
        self.used_wh += load_w * h
        net = gen_w - load_w
        if net > 0:
            self.bat_in_wh += net * h
        else:
            self.bat_out_wh -= net * h
        a = gen_a - load_a
        self.bat_a = a
        self.gen_a = gen_a
        self.load_a = load_a
        # Coulomb counting: charge is stored at charge_eff, discharge costs all of it.
        ah = a * h
        soc = self.soc + (ah * self.eff if ah > 0 else ah) / self.ah
        soc = 0.0 if soc < 0 else (1.0 if soc > 1 else soc)
        k = dt / self.tau
        self.forecast_w += (gen_w - self.forecast_w) * (1.0 if k > 1 else k)
        return self._rezero(soc, volts, a, dt)

    def _rezero(self, soc, volts, amps, dt):
        # Coulomb counting drifts (efficiency, offsets); the battery itself says where 0 and 1
        # are: a tail current at the absorption voltage is full, the cut-off voltage is empty.
        why = ""
        if volts >= self.full_v and -self.full_a <= amps <= self.full_a:
            self._full_s += dt
            if self._full_s >= FULL_S:
                why = "full" if soc < 1.0 - _NOTE else ""
                soc = 1.0
        else:
            self._full_s = 0.0
        if volts <= self.cutoff_v:
            self._low_n += 1
            if self._low_n >= CUTOFF_N:
                why = "cutoff" if soc > _NOTE else ""
                soc = 0.0
        else:
            self._low_n = 0
        self.soc = soc
        if why:
            self.rezeros += 1
            self.rezeroed = why
        return why

    def missed(self, dt):
        # A sample that did not come: the time is a gap, the SoC holds, the policy will stop.
        self.gap_s += dt
        self.stale_s += dt

    def set_soc(self, soc):
        if not 0.0 <= soc <= 1.0:
            raise ValueError("soc must be from 0.0 to 1.0 (a fraction of full), got %s" % soc)
        self.soc = soc

    def status(self):
        return {"soc": round(self.soc, 4), "vbat": round(self.volts, 3),
                "gen_w": round(self.gen_w, 2), "load_w": round(self.load_w, 2),
                "bat_a": round(self.bat_a, 3), "gen_a": round(self.gen_a, 4),
                "load_a": round(self.load_a, 4), "forecast_w": round(self.forecast_w, 2),
                "harvested_wh": round(self.harvested_wh, 3), "used_wh": round(self.used_wh, 3),
                "bat_in_wh": round(self.bat_in_wh, 3), "bat_out_wh": round(self.bat_out_wh, 3),
                "gap_s": round(self.gap_s, 1), "rezeros": self.rezeros}


class Policy:
    # Whether a load of full_w may run, and at what fraction of it.
    # It never runs at or under floor_soc, and after stopping there it waits for resume_soc. Above
    # the floor it affords the harvest it expects (the recent harvest, smoothed over forecast_s)
    # plus the reserve above the floor spread over horizon_s; a fraction under min_speed is not
    # worth running. `why` names what decided: "ok", "floor", "budget" or "no reading".

    def __init__(self, energy, cfg, min_speed):
        self.e = energy
        self.floor = cfg["floor_soc"]
        self.resume = cfg["resume_soc"]
        self.horizon = cfg["horizon_s"]
        self.min = min_speed
        self.held = False
        self.on = False
        self.why = "budget"

    def budget_w(self):
        e = self.e
        reserve_wh = (e.soc - self.floor) * e.ah * e.volts
        if reserve_wh < 0:
            reserve_wh = 0.0
        return e.forecast_w + reserve_wh * 3600 / self.horizon

    def speed(self, full_w):
        e = self.e
        s = 0.0
        if e.soc <= self.floor:
            self.held = True
        elif self.held and e.soc >= self.resume:
            self.held = False
        if e.stale_s > STALE_S:
            self.why = "no reading"
        elif self.held:
            self.why = "floor"
        else:
            s = self.budget_w() / full_w
            if s < self.min + (0.0 if self.on else _START):
                self.why = "budget"
                s = 0.0
            else:
                self.why = "ok"
                s = 1.0 if s > 1 else s
        self.on = s > 0
        return s


class Monitors:
    # The bus's two power monitors: bus voltage and both currents, three register reads a sample.
    # A chip of the wrong kind, or a shunt or current it cannot measure, is a config error
    # (ValueError, at boot); a chip that does not answer is retried every sample, and checked for a
    # lost calibration when it comes back (a brown-out resets it). `error` says which is silent.

    def __init__(self, cfg, i2c):
        if cfg["gen_addr"] == cfg["load_addr"]:
            raise ValueError("machine config: gen_addr and load_addr are both 0x%02x; the two "
                             "monitors need different addresses (A0/A1 pins)" % cfg["gen_addr"])
        self.cfg = cfg
        self.i2c = i2c
        self.gen = self.load = None
        self.volts = self.gen_a = self.load_a = 0.0
        self.error = ""
        self._recheck = False
        self._n = 0
        try:
            self.gen = self._chip(cfg["gen_addr"])
            self.load = self._chip(cfg["load_addr"])
        except OSError:
            pass  # not there at boot: read() tries again, and says so

    def _chip(self, addr):
        c = self.cfg
        if c["ina"] == "ina226":
            from fab.drivers import ina226

            return ina226.INA226(self.i2c, addr, c["shunt_ohm"], c["max_current"], c["ina_avg"])
        from fab.drivers import ina219

        return ina219.INA219(self.i2c, addr, c["shunt_ohm"], c["max_current"], c["ina_avg"])

    def read(self):
        # True with volts, gen_a and load_a fresh; False when a monitor did not answer.
        c = self.cfg
        addr = c["gen_addr"]
        try:
            g = self.gen
            if g is None:
                g = self.gen = self._chip(addr)
            addr = c["load_addr"]
            ld = self.load
            if ld is None:
                ld = self.load = self._chip(addr)
            self._n += 1
            if self._recheck or self._n % CHECK_EVERY == 0:
                addr = c["gen_addr"]
                g.check()
                addr = c["load_addr"]
                ld.check()
                self._recheck = False
            # Both chips sit on the same bus, and power is bus voltage times current (what their
            # power registers compute too): three reads, not eight.
            addr = c["gen_addr"]
            self.volts = g.bus_voltage()
            self.gen_a = g.current() - c["gen_zero"]
            addr = c["load_addr"]
            self.load_a = ld.current() - c["load_zero"]
        except OSError as e:
            self._recheck = True  # it may come back reset, without its calibration
            self.error = "%s at 0x%02x does not answer (OSError %s)" % (
                c["ina"].upper(), addr, e.args[0] if e.args else "?")
            return False
        except ValueError as e:  # answered, but not as the chip it was at boot: a bad contact
            self._recheck = True
            self.error = str(e)
            return False
        self.error = ""
        return True

    def status(self):
        g, ld = self.gen, self.load
        return {"gen": g.status() if g else None, "load": ld.status() if ld else None}
