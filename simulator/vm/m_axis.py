# Model wiring of the `axis` machine: one stepper moving a carriage on a belt, a min endstop,
# frame stops past both ends. Model settings (the firmware never sees them): start_mm,
# true_steps_per_mm, endstop_mm, frame_min_mm, frame_max_mm, max_rate, pull_in, endstop_broken.
import vstepper
from vboard import role_pin


def wire(b):
    """One stepper moving a carriage on a belt, a min endstop, frame stops past both ends."""
    mc, mo = b.machine_cfg, b.model
    spm = mo.get("true_steps_per_mm", mc.get("steps_per_mm", 80.0))
    lo_mm = mo.get("frame_min_mm", mc.get("min_pos", 0.0) - 5.0)
    hi_mm = mo.get("frame_max_mm", mc.get("max_pos", 200.0) + 5.0)
    start = mo.get("start_mm")
    if start is None:
        start = b.rng.uniform(lo_mm + 10, hi_mm - 10)
    m = vstepper.Motor(b.role("step"), b.role("dir"), b.role("enable"),
                       pos=int(start * spm), lo=int(lo_mm * spm), hi=int(hi_mm * spm),
                       max_rate=mo.get("max_rate", 40000), pull_in=mo.get("pull_in", 4000),
                       invert=mc.get("invert_dir", False))
    b.motors[role_pin(b.cfg, mc, "step")] = m
    if mc.get("home", "min") != "none" and not mo.get("endstop_broken"):
        home_max = mc.get("home") == "max"
        at = mo.get("endstop_mm", mc.get("max_pos", 200.0) if home_max else mc.get("min_pos", 0.0))
        m.add_switch(b.role("endstop"), int(at * spm), 1 if home_max else -1,
                     mc.get("endstop_active", 0))
    b.models["axis"] = m
    b.axis = m
