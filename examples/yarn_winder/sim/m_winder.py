# Model wiring of the `winder` machine (a microfab extension): the winding drum on the stepper
# header, the yarn with its break switch on the yarn_break pin. Model settings (the firmware
# never sees them): true_steps_per_m, break_at_m (a length or a list: fault injection),
# pretension_n, drag_n_s2_m2, strength_n, core_mm, yarn_mm, traverse_mm, fill, tex, max_rate,
# pull_in.
import vyarn
from vboard import role_pin


def wire(b):
    mc, mo = b.machine_cfg, b.model
    spm = mo.get("true_steps_per_m", mc.get("steps_per_m", 25465.0))
    yarn = vyarn.Yarn(b.role("yarn_break"), spm, mo, mc)
    drum = vyarn.Drum(yarn, b.role("step"), b.role("dir"), b.role("enable"),
                      max_rate=mo.get("max_rate", 40000), pull_in=mo.get("pull_in", 4000),
                      invert=mc.get("invert_dir", False))
    b.motors[role_pin(b.cfg, mc, "step")] = drum
    b.models["winder"] = yarn
    b.winder = yarn  # tests and fault injection: b.hw.winder.tie(), .status()
    b.axis = drum  # the drum's steps, where tools look for the axis
