# Config schemas shared by several machines, hal-free so that the host imports them too.
# Fields are (key, kind, default, lo, hi, unit), see fab.config.

# One stepper axis with an endstop (fab.axis).
AXIS = (
    ("driver", "c", "tmc2209", ("a4988", "drv8825", "tmc2209"), None),
    ("microsteps", "i", 16, 1, 256),
    ("steps_per_mm", "f", 80.0, 0.01, 100000.0, "steps/mm"),
    ("max_speed", "f", 50.0, 0.1, 2000.0, "mm/s"),
    ("accel", "f", 200.0, 1.0, 100000.0, "mm/s^2"),
    ("min_pos", "f", 0.0, -100000.0, 100000.0, "mm"),
    ("max_pos", "f", 200.0, -100000.0, 100000.0, "mm"),
    ("home", "c", "min", ("min", "max", "none"), None),
    ("home_speed", "f", 10.0, 0.1, 500.0, "mm/s"),
    ("home_backoff", "f", 2.0, 0.1, 50.0, "mm"),
    ("endstop_active", "i", 0, 0, 1, "level"),
    ("invert_dir", "b", False, None, None),
)
