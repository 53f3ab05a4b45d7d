# Model wiring of the `loom` machine: one shaft per solenoid (vshaft.Shaft), the solenoids on GPIO
# pins, a 74HC595 chain on spi0 or MCP23017 expanders on i2c0 as the machine config says, and a
# pedal switch the test presses. Model settings (the firmware never sees them): rise_ms, fall_ms
# (shaft travel), bounce (pedal contact bounce on, default true).
#
#     loom = b.hw.models["loom"]
#     loom.press_pedal()            # a press with contact bounce; release after hold_ms
#     b.advance(0.5)
#     loom.raised()                 # [1, 3, 5]: the shafts that are really up
#     loom.solenoid(3).stick()      # a seized plunger: shaft 3 stays where it is
import vclock
import vmcp23017
import vshaft
import v74hc595
from vboard import role_pin

# Contact bounce of a pedal microswitch, in us after the press (or release) begins: the level
# flips at each of these, new, old, new..., and holds the new one after the last (a few ms, the
# bounce time switch datasheets give).
_BOUNCE_US = (0, 300, 700, 1200, 2100)
_KEEP = 500  # shaft arrivals kept in `sheds`: a simulated week of weaving stays small


class Loom:
    def __init__(self, b, shafts, pedal, active, rise_ms, fall_ms, bounce):
        self.shafts = [vshaft.Shaft(i + 1, rise_ms, fall_ms) for i in range(shafts)]
        self.pedal = pedal  # PinState, or None when the config wires none
        self.active = active
        self.bounce = bounce
        self.presses = 0
        self.sheds = []  # (t_us, [raised shafts]) each time a shaft arrives up or down
        if pedal is not None:
            pedal.set_ext(1 - active)  # at rest
        for s in self.shafts:
            s.watchers.append(self._arrived)

    def solenoid(self, n):
        """Shaft n's solenoid and the shaft it lifts (1-based): stick(), unstick(), status()."""
        return self.shafts[n - 1]

    shaft = solenoid

    def drive(self, mask, first=0, width=32):
        """Coil levels from a driver: bit i of mask is solenoid first + i."""
        for i in range(width):
            k = first + i
            if k >= len(self.shafts):
                break
            self.shafts[k].drive((mask >> i) & 1)

    def raised(self):
        return [s.n for s in self.shafts if s.up]

    def mask(self):
        m = 0
        for s in self.shafts:
            if s.up:
                m |= 1 << (s.n - 1)
        return m

    def energised(self):
        return [s.n for s in self.shafts if s.coil]

    def _arrived(self, shaft):
        if len(self.sheds) >= _KEEP:
            self.sheds.pop(0)
        self.sheds.append((vclock.now, self.raised()))

    def press_pedal(self, hold_ms=300):
        """The weaver's foot: down now, up hold_ms later, each with contact bounce."""
        self.presses += 1
        t = vclock.now
        self._flip(t, self.active)
        self._flip(t + int(hold_ms * 1000), 1 - self.active)

    def _flip(self, t, level):
        if not self.bounce:
            vclock.at(t, self._set, level)
            return
        for i in range(len(_BOUNCE_US)):
            vclock.at(t + _BOUNCE_US[i], self._set, level if i % 2 == 0 else 1 - level)

    def _set(self, level):
        self.pedal.set_ext(level)

    def status(self):
        return {"raised": self.raised(), "energised": self.energised(), "presses": self.presses,
                "stuck": [s.n for s in self.shafts if s.stuck]}


def wire(b):
    mc, mo = b.machine_cfg, b.model
    n = mc.get("shafts", 8)
    pedal = role_pin(b.cfg, mc, "pedal")
    m = Loom(b, n, None if pedal is None else b.pin(pedal), mc.get("pedal_active", 0),
             mo.get("rise_ms", 60), mo.get("fall_ms", 80), mo.get("bounce", True))
    kind = mc.get("solenoids", "gpio")
    if kind == "gpio":
        pins = mc.get("shaft_pins", [])
        for i in range(min(n, len(pins))):
            b.pin(pins[i]).watchers.append(m.shafts[i].drive)
    elif kind == "shiftreg":
        bus = b.cfg["buses"]["spi0"]
        oe = mc.get("sr_oe_pin")
        chain = v74hc595.Chain((n + 7) // 8, b.pin(bus["cs"]), None if oe is None else b.pin(oe))
        chain.watchers.append(m.drive)
        b.spi_devices.append((bus["cs"], chain))
        m.chain = chain
    else:
        bus = b.cfg["buses"]["i2c0"]
        addr = mc.get("mcp_addr", 0x20)
        m.chips = []
        for k in range((n + 15) // 16):
            chip = vmcp23017.Mcp23017()
            chip.watchers.append(lambda out, k=k: m.drive(out, 16 * k, 16))
            b.i2c_devices[(bus.get("id", 0), addr + k)] = chip
            m.chips.append(chip)
    b.models["loom"] = m
