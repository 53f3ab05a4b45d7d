# Model wiring of the `knitter` machine: a Brother KH-9xx / KH-270 bed with its carriage
# (vcarriage), and the solenoid board, an MCP23017 on i2c0 (vmcp23017).
#
# Model settings (the firmware never sees them):
#   carriage   "K" (default), "L" or "G": which carriage is on the bed (its magnets' poles)
#   belt       "regular" (default) or "shifted": how the belt is coupled to the carriage
#   start      needle position of the carriage's centre at power-on (default: parked left)
#   stuck      {solenoid: 0 or 1}: solenoids stuck off or on, whatever they are driven
#   magnet     strength of the carriage magnets, 1.0 nominal (0.5: weak, still detected)
#   mcp_missing  true: no solenoid board answers on the bus
#   yarn_bounce  false: the yarn-break switch opens and closes cleanly (default: contact bounce)
#
# The tests reach the carriage as b.hw.models["carriage"], the solenoid board as
# b.hw.models["solenoids"] and the yarn (break_yarn, mend_yarn, break_at) as
# b.hw.models["yarn"], also car.yarn. The yarn's switch is on the config's yarn_break_pin.
import vcarriage
import vmcp23017
from vboard import role_pin

# The physical machines; the firmware's fab.machines.knitter.MODELS must agree with them.
# lead: activation point behind the carriage centre, by carriage (None: selects nothing);
# magnets: (offset from the centre in needles, pole) by carriage.
_9XX = {"needles": 200, "solenoids": 16, "out0": 0, "left": 0, "right": 199, "pitch_mm": 4.5,
        "lead": {"K": 16, "L": 4, "G": None},
        "magnets": {"K": ((0, 1),), "L": ((0, -1),), "G": ((-6, 1), (6, -1))}}
GEOMETRY = {
    "kh910": _9XX,
    "kh930": _9XX,
    # the KH-270 (bulky, 9 mm): 12 solenoids on outputs 3..14; its carriage has two magnets of
    # opposite poles, 12 needles apart (AYAB's MAGNET_DISTANCE_270)
    "kh270": {"needles": 112, "solenoids": 12, "out0": 3, "left": -9, "right": 120,
              "pitch_mm": 9.0, "lead": {"K": 9},
              "magnets": {"K": ((-6, 1), (6, -1))}},
}


def wire(b):
    mc, mo = b.machine_cfg, b.model
    geo = GEOMETRY[mc.get("model", "kh910")]
    chip = vmcp23017.Mcp23017()
    bus = b.cfg.get("buses", {}).get("i2c0")
    if bus is not None and not mo.get("mcp_missing"):
        b.i2c_devices[(bus.get("id", 0), mc.get("mcp_addr", 0x20))] = chip

    def pin(role):
        num = role_pin(b.cfg, mc, role)
        return None if num is None else b.pin(num)

    kind = mo.get("carriage", "K")
    if kind not in geo["magnets"]:
        raise ValueError("model setting 'carriage' is %r; this machine has %s"
                         % (kind, ", ".join(sorted(geo["magnets"]))))
    belt = mo.get("belt", "regular")
    if belt not in ("regular", "shifted"):
        raise ValueError("model setting 'belt' is %r, expected 'regular' or 'shifted'" % belt)
    car = vcarriage.Carriage(geo, chip, pin("enc_a"), pin("enc_b"), pin("enc_c"), kind=kind,
                             belt=8 if belt == "shifted" else 0, start=mo.get("start"),
                             stuck=mo.get("stuck"), magnet=mo.get("magnet", 1.0), rng=b.rng)
    left = role_pin(b.cfg, mc, "eol_left")
    right = role_pin(b.cfg, mc, "eol_right")
    if left is not None:
        b.analogs[left] = car.hall_left
    if right is not None:
        b.analogs[right] = car.hall_right
    yp = mc.get("yarn_break_pin")
    car.yarn = vcarriage.Yarn(None if yp is None else b.pin(yp), mo.get("yarn_bounce", True))
    car.yarn.car = car
    b.models["carriage"] = car
    b.models["yarn"] = car.yarn
    b.models["solenoids"] = chip
