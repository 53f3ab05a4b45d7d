"""Simulator real-time factor: virtual seconds per wall second, on CPython.

    python bench/sim_speed.py

1. idle: one simulated hour of a board that samples its supply sensor at 1 Hz and reports
   telemetry every 10 s (target >= 10,000x);
2. stepping: ten simulated minutes of continuous 10 kHz stepping (target >= 1,000x).
"""
from __future__ import annotations

import time

from microfab_sim.board import SimBoard


def idle(hours: float = 1.0) -> tuple[float, int]:
    with SimBoard(board="pico", machine="axis", seed=1) as b:
        t0 = time.perf_counter()
        b.advance(hours * 3600)
        wall = time.perf_counter() - t0
        records = len(b.telemetry())
    return hours * 3600 / wall, records


def stepping(minutes: float = 10.0) -> tuple[float, int, float]:
    # 125 mm/s at 80 steps/mm is 10 kHz; a 7.5 m traverse takes a minute at that rate.
    cfg = {"machine": "axis", "max_speed": 125.0, "accel": 2000.0, "max_pos": 7600.0,
           "home": "none"}
    with SimBoard(board="pico", machine=cfg, model={"start_mm": 20.0}, seed=1) as b:
        moves = [[7550.0, 125.0], [50.0, 125.0]]
        repeat = max(1, round(minutes / 2))
        t0 = time.perf_counter()
        v0 = b.now
        r = b.send("job", moves=moves, repeat=repeat, timeout=minutes * 120)
        wall = time.perf_counter() - t0
        assert r["ok"], r
        virtual = b.now - v0
        pulses = b.axis.pulses
        assert b.axis.lost == 0
    return virtual / wall, pulses, virtual


def main():
    rtf_idle, records = idle()
    print("idle     1 h virtual, 1 Hz sampling, 10 s reports: %8.0fx real time "
          "(%d telemetry records; target >= 10000x)" % (rtf_idle, records))
    rtf_step, pulses, virtual = stepping()
    print("stepping %.0f s virtual at 10 kHz (%d pulses):        %8.0fx real time "
          "(target >= 1000x)" % (virtual, pulses, rtf_step))


if __name__ == "__main__":
    main()
