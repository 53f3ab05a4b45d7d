# Model wiring of the `polyfloss` machine: a heated drum (vthermal) read by a MAX31855/MAX6675 on
# spi0, the drum rotor with its hall sensor (vdrum), a bowl on a load cell behind an HX711
# (vloadcell), the lid switch, the feed stepper, and the plastic itself: a charge in the drum that
# turns into floss at a rate set by the drum's temperature and speed, taking heat as it melts.
#
# Everything is advanced lazily to the present by sync(), called whenever the firmware touches a
# model (an SSR or contactor edge, a PWM change, an SPI read, a load-cell read): the inputs are
# constant between those calls, so nothing runs on a timer except the rotor while it speeds up.
#
# Model settings (the firmware never sees them): heater_watts, c_band, c_drum, g, h0, h_spin,
# t_amb, tau_s, start_c, noise_c, free_rpm, drum_tau_s, static, charge_g, bowl_g, rate_max,
# e_melt, t_soft, t_flow, counts_per_g, zero_counts, cell_noise, feed_steps_per_g,
# sensor_offset_c (C the thermocouple reads above the truth).
import vclock
import vdrum
import vloadcell
import vstepper
import vthermal
from vboard import role_pin

_STEP_US = 250000


class Polyfloss:
    def __init__(self, b):
        mc, mo = b.machine_cfg, b.model
        self.b = b
        self.thermal = vthermal.Drum(mo.get("heater_watts", mc.get("heater_watts", 600.0)),
                                     mo.get("c_band", 80.0), mo.get("c_drum", 600.0),
                                     mo.get("g", 10.0), mo.get("h0", 0.8), mo.get("h_spin", 0.6),
                                     3000.0, mo.get("t_amb", 22.0), mo.get("tau_s", 3.0),
                                     mo.get("start_c"))
        chip = vthermal.Max6675 if mc.get("sensor") == "max6675" else vthermal.Max31855
        self.tc = chip(lambda: self.sync() or self.thermal.sensor, b.rng, mo.get("noise_c", 0.3),
                       mo.get("t_amb", 22.0) + 3.0)
        self.tc.offset = mo.get("sensor_offset_c", 0.0)
        b.spi_devices.append((b.cfg["buses"]["spi0"]["cs"], self.tc))
        self.rotor = vdrum.Rotor(b.role("drum"), b.role("hall"), mc.get("hall_per_rev", 1),
                                 mo.get("free_rpm", 4000.0), mo.get("drum_tau_s", 1.5),
                                 mo.get("static", 0.08), mc.get("drum_drive") == "esc")
        self.rotor.on_change = self.sync
        self.cell = vloadcell.HX711(b.role("hx_clk"), b.role("hx_data"), self._on_cell, b.rng,
                                    mo.get("zero_counts", 84000),
                                    mo.get("counts_per_g", mc.get("load_scale", 420.0)),
                                    mo.get("cell_noise", 20.0))
        step = role_pin(b.cfg, mc, "step")
        self.feeder = vstepper.Motor(b.role("step"), b.role("dir"), b.role("enable"))
        b.motors[step] = self.feeder
        self.feed_spg = mo.get("feed_steps_per_g", mc.get("feed_steps_per_g", 200.0))
        self._fed_pos = 0
        self.lid_pin = b.role("lid")
        self.closed_level = mc.get("lid_closed_level", 0)
        self.lid_pin.set_ext(self.closed_level)
        self.ssr = b.role("heater")
        self.contactor = b.role("contactor")
        self.ssr_stuck = False
        self.heating = False
        self.edges = []  # (t_us, ssr level, contactor level): the last 64 changes of either
        self.ssr.watchers.append(self._edge)
        self.contactor.watchers.append(self._edge)
        self.charge = mo.get("charge_g", 100.0)  # plastic in the drum
        self.bowl = mo.get("bowl_g", 250.0)
        self.floss = 0.0  # made so far, all of it in the bowl
        self.weight = 0.0  # a calibration weight in the bowl (put_weight)
        self.fed = 0.0
        self.rate_max = mo.get("rate_max", 0.3)  # g/s at full melt and speed
        self.e_melt = mo.get("e_melt", 500.0)  # J/g to heat PP from 20 C and melt it
        self.t_soft = mo.get("t_soft", 170.0)
        self.t_flow = mo.get("t_flow", 215.0)
        self.t = vclock.now

    # --- the timeline ---

    def _heats(self):
        return (self.ssr.read() == 1 or self.ssr_stuck) and self.contactor.read() == 1

    def _edge(self, _):
        self.sync()
        self.heating = self._heats()
        self.edges.append((vclock.now, self.ssr.read(), self.contactor.read()))
        if len(self.edges) > 64:  # the recent ones are what tests look at; the heap stays flat
            self.edges.pop(0)

    def melt(self, temp):
        """How freely the plastic flows, 0..1: soft below t_flow, degrading (smoke) above 275 C."""
        if temp <= self.t_soft:
            return 0.0
        if temp < self.t_flow:
            return (temp - self.t_soft) / (self.t_flow - self.t_soft)
        if temp <= 275:
            return 1.0
        return max(0.3, 1.0 - (temp - 275) / 60)

    def rate(self, temp, rpm):
        """Floss made, g/s: melt x speed (fibres need ~2400 rpm) x how full the drum is."""
        spin = 0.0 if rpm < 600 else min(1.0, (rpm - 600) / 1800)
        return self.rate_max * self.melt(temp) * spin * min(1.0, self.charge / 20.0)

    def sync(self):
        """Advance heat, plastic and the feed to now."""
        now = vclock.now
        if self.t >= now:
            return
        pos = self.feeder.position()
        if pos > self._fed_pos:
            g = (pos - self._fed_pos) / self.feed_spg
            self.charge += g
            self.fed += g
            self._fed_pos = pos
        th = self.thermal
        while self.t < now:
            us = now - self.t
            if us > _STEP_US:
                us = _STEP_US
            dt = us / 1000000
            rpm = self.rotor.rpm_at(self.t + us // 2)
            made = min(self.charge, self.rate(th.drum, rpm) * dt)
            self.charge -= made
            self.floss += made
            th.step(dt, self.heating, rpm, made * self.e_melt / dt)
            self.t += us
        # Then re-read the rotor's drive and the HX711's timeline (a reset drops their events);
        # a change re-anchors the rotor at now, which calls back here with nothing left to do.
        self.rotor.poll()
        self.cell.poll()

    def _on_cell(self):
        self.sync()
        return self.bowl + self.floss + self.weight

    # --- fault injection ---

    def break_sensor(self):
        """Open thermocouple: a wire off its terminal."""
        self.tc.fault = "open"

    def short_sensor(self, to="gnd"):
        self.tc.fault = "short_" + to

    def freeze_sensor(self):
        """The converter stops updating: every read returns the last word (stale)."""
        self.tc.frozen = True

    def unplug_sensor(self):
        self.tc.unplugged = True

    def heal_sensor(self):
        self.tc.heal()

    def open_lid(self):
        self.sync()
        self.lid_pin.set_ext(1 - self.closed_level)

    def close_lid(self):
        self.lid_pin.set_ext(self.closed_level)

    def stick_ssr(self, stuck=True):
        """The SSR fails shorted: the band heats whatever the firmware drives (the contactor
        still cuts it)."""
        self.sync()
        self.ssr_stuck = stuck
        self.heating = self._heats()

    def empty_bowl(self):
        self.sync()
        self.floss = 0.0

    def put_weight(self, grams):
        """A known weight into the bowl (0: taken out again), as a load-cell calibration needs."""
        self.sync()
        self.weight = grams

    # --- what tests look at ---

    def temp(self):
        self.sync()
        return self.thermal.drum

    def status(self):
        self.sync()
        th = self.thermal
        return {"drum_c": th.drum, "band_c": th.band, "sensor_c": th.sensor, "peak_c": th.peak,
                "heating": self.heating, "rpm": self.rotor.rpm(), "charge_g": self.charge,
                "floss_g": self.floss, "fed_g": self.fed, "heater_wh": th.energy_j / 3600}


def wire(b):
    m = Polyfloss(b)
    b.models["polyfloss"] = m
    b.polyfloss = m
