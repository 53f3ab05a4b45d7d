# A 12 V lead-acid battery on the rig's bus, with the turbine's charge controller in front of it.
#
# Open-circuit voltage is a curve over the state of charge (ocv: [[soc, V], ...], linear in
# between). Discharging: V = OCV - I * r_int. Charging, a lead-acid battery takes current only
# against a rising overpotential, the more so the fuller it is: V = OCV + I * R(soc) with
# R(soc) = (charge_v - OCV) / acceptance(soc), the acceptance falling from max_charge_a below
# taper_soc to float_a at full. The charge controller holds the bus at charge_v (absorption) and
# dumps what the battery will not take into its dump load, ahead of the generator's monitor.
# Charge is stored at charge_eff; at full, what still flows is gassing, all loss.
#
# Tallies (Wh): terminal_wh = energy through the terminals (in minus out), stored_wh = energy put
# into or taken out of chemistry (OCV * charge), lost_wh = their difference (resistance,
# efficiency, gassing). min_soc and empty_s tell whether the battery was ever run flat.
#
# Settings (model "battery": {...}): capacity_ah, soc, charge_eff, r_int, ocv, charge_v,
# max_charge_a, float_a, taper_soc.
import math

# A 12 V AGM battery at rest, 25 C (typical manufacturers' tables).
OCV = ((0.0, 11.5), (0.1, 11.65), (0.2, 11.8), (0.3, 11.95), (0.4, 12.05), (0.5, 12.2),
       (0.6, 12.35), (0.7, 12.5), (0.8, 12.6), (0.9, 12.75), (1.0, 12.85))


class Battery:
    def __init__(self, cfg):
        self.ah = cfg.get("capacity_ah", 40.0)
        self.soc = cfg.get("soc", 0.6)
        self.eff = cfg.get("charge_eff", 0.9)
        self.r = cfg.get("r_int", 0.02)
        self.ocv_table = cfg.get("ocv", OCV)
        self.charge_v = cfg.get("charge_v", 14.4)
        self.max_a = cfg.get("max_charge_a", self.ah / 4)
        self.float_a = cfg.get("float_a", self.ah / 100)
        self.taper = cfg.get("taper_soc", 0.8)
        self.terminal_wh = 0.0
        self.stored_wh = 0.0
        self.lost_wh = 0.0
        self.min_soc = self.soc
        self.max_soc = self.soc
        self.empty_s = 0.0

    def ocv(self):
        t = self.ocv_table
        s = self.soc
        if s <= t[0][0]:
            return t[0][1]
        for i in range(1, len(t)):
            if s <= t[i][0]:
                s0, v0 = t[i - 1]
                s1, v1 = t[i]
                return v0 + (v1 - v0) * (s - s0) / (s1 - s0)
        return t[-1][1]

    def acceptance(self):
        f = (1.0 - self.soc) / (1.0 - self.taper)
        a = self.float_a + (self.max_a - self.float_a) * (1.0 if f > 1 else (f if f > 0 else 0.0))
        return a if a > 1e-6 else 1e-6

    def solve(self, avail_w, load_w):
        """(bus V, battery A, power the loads got, power dumped) when the generator offers
        avail_w and the loads ask for load_w (constant-power loads, both in W)."""
        ocv = self.ocv()
        net = avail_w - load_w
        if net >= 0:
            r = (self.charge_v - ocv) / self.acceptance()
            r = self.r if r < self.r else r
            # V = OCV + r * I and V * I = net:  V^2 - OCV V - r net = 0
            v = (ocv + math.sqrt(ocv * ocv + 4 * r * net)) / 2
            if v <= self.charge_v:
                return v, net / v, load_w, 0.0
            v = self.charge_v  # absorption: the controller holds the bus, dumps the rest
            i = (v - ocv) / r
            return v, i, load_w, net - v * i
        if self.soc <= 0.0:
            # Flat: the battery gives nothing more and the loads get only what the wind gives.
            v = ocv - 1.0
            return v, 0.0, avail_w, 0.0
        disc = ocv * ocv + 4 * self.r * net
        if disc < 0:  # more than the battery can deliver at any voltage: it sags to half
            v = ocv / 2
            return v, -v / self.r, avail_w + v * v / self.r, 0.0
        v = (ocv + math.sqrt(disc)) / 2
        return v, net / v, load_w, 0.0

    def flow(self, volts, amps, dt):
        """dt seconds of `amps` (charging positive) at `volts` on the terminals."""
        h = dt / 3600
        ocv = self.ocv()
        self.terminal_wh += volts * amps * h
        if amps > 0:
            ah = amps * h * self.eff
            if self.soc + ah / self.ah > 1.0:
                ah = (1.0 - self.soc) * self.ah  # full: the rest is gassing
        else:
            ah = amps * h
            if self.soc + ah / self.ah < 0.0:
                ah = -self.soc * self.ah
        self.soc += ah / self.ah
        if self.soc <= 0.0:
            self.soc = 0.0
            self.empty_s += dt
        self.stored_wh += ocv * ah
        self.lost_wh = self.terminal_wh - self.stored_wh
        if self.soc < self.min_soc:
            self.min_soc = self.soc
        if self.soc > self.max_soc:
            self.max_soc = self.soc

    def status(self):
        return {"soc": round(self.soc, 4), "ocv": round(self.ocv(), 3),
                "terminal_wh": round(self.terminal_wh, 3), "stored_wh": round(self.stored_wh, 3),
                "lost_wh": round(self.lost_wh, 3), "min_soc": round(self.min_soc, 4),
                "empty_s": round(self.empty_s, 1)}
