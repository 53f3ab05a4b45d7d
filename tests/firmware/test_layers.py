"""The HAL is the firmware's only door to the hardware: nothing above fab/hal.py (and its
network side fab/wifi.py, and the step backends) imports `machine`, `rp2`, `esp32`, `network` or
`socket`, so that drivers, machines and the runtime run unchanged in the simulator and the VM."""
import ast
from pathlib import Path

FAB = Path(__file__).resolve().parents[2] / "firmware" / "fab"
HARDWARE = {"machine", "rp2", "esp32", "network", "socket"}
DOORS = {"hal.py", "wifi.py", "hal_pio.py", "hal_rmt.py", "hal_timer.py"}


def imported(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_hal_imports_hardware_modules():
    offenders = {str(p.relative_to(FAB)): sorted(imported(p) & HARDWARE)
                 for p in sorted(FAB.rglob("*.py")) if p.name not in DOORS}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, "import these through fab.hal / fab.wifi: %s" % offenders
    # and the doors are where the hardware is
    assert "machine" in imported(FAB / "hal.py") and "machine" in imported(FAB / "wifi.py")
