"""`microfab demo`: a simulated microfactory on embedded defaults, with live figures.

A simulated Pico runs the real firmware with a traverse axis (a carriage on a belt, an endstop,
a stepper behind a TMC2209): it boots, homes, then runs a traverse job while the host polls the
board's status over the same JSON-line protocol a USB board speaks.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from microfab_sim.board import SimBoard

DEFAULT_JOB = [[10.0, 50.0], [190.0, 50.0]]


def _table(rows: list[tuple[str, str]]) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t


def run(board: str = "pico", cycles: int = 10, seed: int = 1, speed: float = 25.0,
        console: Console | None = None) -> int:
    """Run the demo job; returns a process exit code. speed: virtual s per wall s (0 = flat out)."""
    con = console or Console()
    wall0 = time.perf_counter()
    with SimBoard(board=board, machine="axis", seed=seed) as b:
        hello = b.send("hello")
        if not hello.get("ok") or hello.get("state") != "ready":
            con.print("[red]the simulated board did not come up:[/red] %s" % hello)
            return 1
        con.print("[bold]microfab demo[/bold]: simulated %s, firmware %s, MicroPython %s, "
                  "machine %s" % (hello["board"], hello["firmware"], hello["micropython"],
                                  hello["machine"]))
        con.print("homing the carriage against its endstop ...")
        r = b.send("home")
        if not r["ok"]:
            con.print("[red]homing failed:[/red] " + r["error"])
            return 1
        con.print("homed at %.3f mm after %.2f virtual s; running %d traverse cycles"
                  % (r["pos"], b.now, cycles))
        rid = b.request("job", {"moves": DEFAULT_JOB, "repeat": cycles})
        t_job = b.now
        status: dict = {}
        live = Live(console=con, auto_refresh=False, transient=False) if con.is_terminal else None
        if live:
            live.start()
        last_print = -10.0
        try:
            while rid not in b.replies:
                pace = time.perf_counter()
                b.advance(1.0)
                status = b.send("status")
                m = b.axis.status()
                rows = [("virtual time", "%.0f s" % b.now),
                        ("state", "%s, %s" % (status["state"], status["motion"])),
                        ("position", "%.2f mm" % status["pos"]),
                        ("moves done", "%d / %d" % (status["job_moves"], 2 * cycles)),
                        ("distance", "%.1f m" % (status["travel_mm"] / 1000)),
                        ("step rate", "%d steps/s" % m["rate"]),
                        ("steps lost", str(m["lost"])),
                        ("supply", "%.2f V" % status.get("vsupply", 0.0))]
                if live:
                    live.update(_table(rows), refresh=True)
                elif b.now - last_print >= 10:
                    last_print = b.now
                    con.print("  ".join("%s %s" % kv for kv in rows))
                if speed > 0:
                    time.sleep(max(0.0, 1.0 / speed - (time.perf_counter() - pace)))
        finally:
            if live:
                live.stop()
        reply = b.replies[rid]
        if not reply["ok"]:
            con.print("[red]job failed:[/red] " + reply["error"])
            return 1
        final = b.send("status")
        m = b.axis.status()
        wall = time.perf_counter() - wall0
        con.print("[green]job done[/green]: %d moves, %.1f m of travel in %.1f virtual s; "
                  "%d step pulses, %d lost; %d telemetry records; %.1f wall s"
                  % (reply["moves"], final["travel_mm"] / 1000, b.now - t_job, m["pulses"],
                     m["lost"], len(b.telemetry()), wall))
        return 0 if m["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(run())
