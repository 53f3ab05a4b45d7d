# Model wiring of the `windrig` machine: wind (vwind) on a turbine (vturbine) whose generator
# charges a battery (vbattery) through the charge controller; two INA monitors (vina) on i2c0,
# one between the generator and the bus, one between the bus and the loads (the electronics and,
# in buffered mode, the machine's motor); hall sensors on the anemometer, the rotor and the
# knitting machine's cam; the brake on its pin.
#
# The bus is looked at lazily: its flows are constant between two looks, and a look (a monitor
# read, a pin change, a wind update, a rotor tick while the rotor changes speed) integrates the
# battery over the time since the last one. The flows are worked out afresh on every change of
# what drives them (wind, brake, motor, rotor ticks) and at least every 10 s as the battery's
# voltage drifts with its charge; the monitors report exactly the flows that are integrated.
#
# Settings (model=...): "wind", "turbine", "battery" (see those modules), ina (the chip really
# fitted), shunt_ohm (the real shunt), anemometer_factor (the real m/s per Hz), controller_w
# (electronics, always on), motor_w (at full duty), rows_per_s (buffered, at full duty),
# stall_duty (the motor does not turn the machine below it), rev_per_row (direct: rotor turns
# per row), tick_s (rotor updates while it changes speed), gen_offset_uv and load_offset_uv (each
# monitor's input offset voltage, what a zero calibration finds).
# Fault injection: wind.gust(speed, s), battery.soc = ..., gen_ina/load_ina.answering = False,
# gen_ina.power_cycle(), anemometer_broken = True (from the next wind update);
# connect_loads(False): the loads unplugged from the load monitor (the board on USB power).
import vbattery
import vclock
import vina
import vmachine
import vturbine
import vwind
from vboard import Rng

_RESOLVE_US = 10000000  # the bus is solved afresh at least this often, besides on every change


def wire(b):
    for role in ("anemometer", "rotor", "row", "brake", "motor"):
        if b.role(role) is None:
            return  # not wired: the firmware refuses the config and says which role
    rig = Rig(b)
    b.models["windrig"] = rig
    b.windrig = rig


class Rig:
    def __init__(self, b):
        mc, mo = b.machine_cfg, b.model
        self.direct = mc.get("mode", "buffered") == "direct"
        self.turbine = vturbine.Turbine(mo.get("turbine", {}))
        self.battery = vbattery.Battery(mo.get("battery", {}))
        self.controller_w = mo.get("controller_w", 0.4)
        self.motor_w = mo.get("motor_w", 30.0)
        self.rows_per_s = mo.get("rows_per_s", 0.2)
        self.stall_duty = mo.get("stall_duty", 0.15)
        self.rev_per_row = mo.get("rev_per_row", 10.0)
        self.factor = mo.get("anemometer_factor", mc.get("anemometer_factor", 1.0))
        self.anemometer_broken = False  # fault injection: the cups stuck, no pulses
        self.rotor_pulses = mc.get("rotor_pulses", 1)
        self.row_pulses = mc.get("row_pulses", 1)
        self.tick_us = int(mo.get("tick_s", 3.0) * 1000000)
        self.anemometer = vturbine.Hall(b.role("anemometer"))
        self.hall = vturbine.Hall(b.role("rotor"))
        self.row_sensor = vturbine.Hall(b.role("row"))
        self._brake_pin = b.role("brake")
        self._active = mc.get("brake_active", 1)
        self._motor_pin = b.role("motor")
        chip = vina.Ina226 if mo.get("ina", mc.get("ina")) == "ina226" else vina.Ina219
        shunt = mo.get("shunt_ohm", mc.get("shunt_ohm", 0.01))
        self.gen_ina = chip(shunt, self._gen_truth)
        self.load_ina = chip(shunt, self._load_truth)
        self.gen_ina.offset_v = mo.get("gen_offset_uv", 0.0) * 1e-6
        self.load_ina.offset_v = mo.get("load_offset_uv", 0.0) * 1e-6
        self.loads_connected = True
        bus = b.cfg.get("buses", {}).get("i2c0", {}).get("id", 0)
        b.i2c_devices[(bus, mc.get("gen_addr", 0x40))] = self.gen_ina
        b.i2c_devices[(bus, mc.get("load_addr", 0x41))] = self.load_ina
        self.t = self._solved = vclock.now
        self.volts = self.battery.ocv()
        self.i_gen = self.i_load = self.i_bat = 0.0
        self.load_w = self.dump_w = 0.0
        self.gen_wh = self.load_wh = self.dumped_wh = 0.0
        self.duty = 0.0
        self.braked = self._brake_pin.read() == self._active
        self.brake_log = []  # (t_s, engaged) at every change
        self._tick_ev = None
        self._brake_pin.watchers.append(self._on_pins)
        self._motor_pin.watchers.append(self._on_pins)
        self.wind = vwind.Wind(Rng(b.rng.next()), mo.get("wind", {}), self._on_wind)

    # --- looking at the bus ---

    def look(self):
        now = vclock.now
        if now == self.t:
            return
        dt = (now - self.t) / 1000000
        self.t = now
        h = dt / 3600
        v = self.volts
        self.battery.flow(v, self.i_bat, dt)
        self.gen_wh += v * self.i_gen * h
        self.load_wh += v * self.i_load * h
        self.dumped_wh += self.dump_w * h
        self.turbine.account()
        if now - self._solved >= _RESOLVE_US:
            self._refresh()  # the battery's voltage drifts with its charge, slowly

    def _refresh(self):
        self._solved = vclock.now
        want = self.controller_w + (0.0 if self.direct else self.motor_w * self.duty)
        if not self.loads_connected:
            want = 0.0
        v, i_bat, got, dump = self.battery.solve(self.turbine.power(), want)
        self.volts = v
        self.i_bat = i_bat
        self.load_w = got
        self.i_load = got / v
        self.i_gen = self.i_load + i_bat
        self.dump_w = dump
        rpm = self.turbine.rpm()
        self.hall.set_hz(rpm * self.rotor_pulses / 60)
        if self.direct:
            rows_hz = rpm / 60 / self.rev_per_row
        else:
            d = self.duty * (got / want if got < want else 1.0)  # a sagging bus slows it
            s = self.stall_duty
            rows_hz = self.rows_per_s * (d - s) / (1 - s) if d > s else 0.0
        self.row_sensor.set_hz(rows_hz * self.row_pulses)
        if self._tick_ev is None and not self.turbine.settled():
            self._tick_ev = vclock.at(vclock.now + self.tick_us, self._tick)

    def _tick(self, _):
        self._tick_ev = None
        self.look()
        self._refresh()

    def _gen_truth(self):
        self.look()
        return self.volts, self.i_gen

    def _load_truth(self):
        self.look()
        return self.volts, self.i_load

    # --- inputs ---

    def _on_wind(self, v):
        self.look()
        self.anemometer.set_hz(0.0 if self.anemometer_broken else v / self.factor)
        self.turbine.set(v, self.braked)
        self._refresh()

    def _on_pins(self, _):
        braked = self._brake_pin.read() == self._active
        p = self._motor_pin
        duty = p.duty if p.mode == vmachine.Pin.ALT else float(p.read())
        if braked == self.braked and duty == self.duty:
            return
        self.look()
        if braked != self.braked:
            self.braked = braked
            self.brake_log.append((vclock.now / 1000000, braked))
            self.turbine.set(self.turbine.wind, braked)
        self.duty = duty
        self._refresh()

    def connect_loads(self, on=True):
        """Plug the loads (electronics, motor driver) into the load monitor's output, or not."""
        self.look()
        self.loads_connected = on
        self._refresh()

    # --- for tests ---

    def rows(self):
        return self.row_sensor.count // self.row_pulses

    def status(self):
        self.look()
        out = {"t": vclock.now / 1000000, "wind": round(self.wind.speed, 2), "volts": self.volts,
               "gen_wh": self.gen_wh, "load_wh": self.load_wh, "dumped_wh": self.dumped_wh,
               "duty": self.duty, "rows": self.rows(), "braked": self.braked}
        out["turbine"] = self.turbine.status()
        out["battery"] = self.battery.status()
        return out
