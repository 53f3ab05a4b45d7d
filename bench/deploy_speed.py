"""Deploy speed against a simulated board at 115200 baud: microfab deploy vs mpremote, same run.

    python bench/deploy_speed.py

1. first deploy into an empty board: `microfab deploy` vs `mpremote fs cp -r` of the firmware
   tree (target: >= 2x);
2. re-deploy after a one-line change to one firmware file: microfab's incremental deploy vs
   `mpremote fs cp -r` again, which skips unchanged files by hash, one round trip per file
   (target: >= 10x).
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import microfab_boards
import microfab_firmware
from microfab.deploy import deploy
from microfab.device import Device

BAUD = "115200"


class Sim:
    def __init__(self, root: Path):
        self.p = subprocess.Popen([sys.executable, "-m", "microfab_sim.serial_port", "--blank",
                                   "--root", str(root), "--baud", BAUD],
                                  stdout=subprocess.PIPE, text=True)
        self.port = self.p.stdout.readline().split(": ", 1)[1].strip()

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(10)


def tree(dest: Path) -> Path:
    """The device files of the firmware, as a folder mpremote can copy."""
    for rel in microfab_firmware.device_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(microfab_firmware.ROOT / rel, dest / rel)
    return dest


def mpremote_cp(port: str, src: Path) -> float:
    t0 = time.perf_counter()
    args = [sys.executable, "-m", "mpremote", "connect", port, "fs", "cp", "-r"]
    args += [str(p) for p in sorted(src.iterdir())] + [":"]
    subprocess.run(args, check=True, capture_output=True, cwd=src, timeout=1800)
    return time.perf_counter() - t0


def microfab_deploy(port: str, src: Path) -> float:
    t0 = time.perf_counter()
    with Device(port, int(BAUD)).connect() as dev:
        deploy(dev, microfab_boards.load("pico"), {"machine": "axis"}, firmware_root=src,
               reset=False)
    return time.perf_counter() - t0


def one_line_change(src: Path):
    f = src / "fab" / "planner.py"
    f.write_text(f.read_text() + "\n# one more line\n")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        size = sum((microfab_firmware.ROOT / r).stat().st_size
                   for r in microfab_firmware.device_files())
        print("firmware: %d files, %d bytes; simulated Pico at %s baud"
              % (len(microfab_firmware.device_files()), size, BAUD))
        results = {}
        for tool, fn in (("mpremote", mpremote_cp), ("microfab", microfab_deploy)):
            src = tree(tmp / ("src-" + tool))
            sim = Sim(tmp / ("flash-" + tool))
            try:
                first = fn(sim.port, src)
                one_line_change(src)
                again = fn(sim.port, src)
            finally:
                sim.close()
            results[tool] = (first, again)
            print("%-9s first deploy %6.1f s   after a one-line change %6.2f s"
                  % (tool, first, again))
        (m1, m2), (f1, f2) = results["mpremote"], results["microfab"]
        print("first deploy: microfab %.1fx faster (target >= 2x); incremental: %.1fx faster "
              "(target >= 10x)" % (m1 / f1, m2 / f2))


if __name__ == "__main__":
    main()
