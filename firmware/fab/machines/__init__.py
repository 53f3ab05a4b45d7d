# One module per machine. Each defines Machine with NAME, SCHEMA, PINS, CALIBRATE, and
# commands(table), tasks(), status(), safe().
