"""The firmware's heap in the real MicroPython VM (WebAssembly build), after boot and after one
job, on the RP2040 and ESP32 budgets, as .py source and as .mpy (what a deploy sends).

    python bench/heap.py

Figures are bytes live after a garbage collection, minus the simulator's own baseline in the
same VM (the firmware's share). Target: <= 48 KB.
"""
from __future__ import annotations

from microfab_sim.wasm_board import WasmBoard

JOB = [[10.0, 50.0], [190.0, 50.0]]


def measure(board: str, compiled: bool) -> dict:
    with WasmBoard(board=board, seed=1, compiled=compiled) as b:
        boot = b.mem()["firmware_boot"]
        assert b.send("home")["ok"]
        assert b.send("job", moves=JOB, repeat=2, timeout=120)["ok"]
        m = b.mem()
    return {"boot": boot, "job": m["firmware_now"], "peak": m["firmware_peak"],
            "heap_kb": m["heap_kb"]}


def main():
    print("%-16s %-5s %10s %10s %10s   (target <= 48 KB)" % ("board", "files", "after boot",
                                                            "after job", "peak"))
    for board in ("pico", "esp32_devkitc"):
        for compiled in (False, True):
            r = measure(board, compiled)
            print("%-16s %-5s %8.1f KB %8.1f KB %8.1f KB   (heap %d KB)"
                  % (board, ".mpy" if compiled else ".py", r["boot"] / 1024, r["job"] / 1024,
                     r["peak"] / 1024, r["heap_kb"]))


if __name__ == "__main__":
    main()
