"""Serve a simulated board on a pseudo-terminal, as a USB serial port that mpremote, pyserial and
`microfab` open like a real board's /dev/ttyACM0.

    python -m microfab_sim.serial_port --board pico --machine axis [--seed N] [--root DIR]
                                       [--link PATH] [--realtime] [--baud 115200] [--ext DIR]
                                       [--mqtt mqtt://HOST:PORT [--device-id ID]]

The first line of output is `port: <pty path>`; the board then runs (boot.py, main.py, the REPL
after Ctrl-C: see repl.py) until SIGTERM or SIGINT. A reset keeps the port: bytes sent while the
board "re-enumerates" (0.2 s, or until the host closes the port) are lost, as on USB.
--root keeps the board's flash in a folder across runs; the firmware and config are installed
there only when the folder is empty or new, so what was deployed to it stays, as on a board.
"""
from __future__ import annotations

import argparse
import errno
import os
import select
import signal
import sys
import threading
import time
import tty
from pathlib import Path

from .board import SimBoard
from .net import check_mqtt_arg, write_net
from .repl import Repl, Shutdown


class SerialEnd:
    """The board's end of a serial line over file descriptors: a pty master, or a pair of pipes.

    What the board writes is dropped while nobody has the port open (the pty master sees POLLHUP
    then), as a USB CDC device drops its output while no terminal is attached. `baud` emulates the
    line rate: baud/10 bytes per second each way.
    """

    def __init__(self, rfd: int, wfd: int | None = None, baud: int | None = None):
        self.rfd = rfd
        self.wfd = rfd if wfd is None else wfd
        self.rate = baud / 10 if baud else None
        if self.rate:
            # Up to 20 ms of line time may go at once (what UART FIFOs and USB packets smooth
            # over), in batches of up to 16 bytes so that pacing is not one poll() per byte.
            self._cap = max(1.0, self.rate * 0.02)
            self._batch = min(self._cap, 16.0)
        self.out = bytearray()
        self.open = False  # a host has the port open
        self.hups = 0  # how many times the host closed the port
        self._t = time.monotonic()
        self._in_tokens = self._out_tokens = 0.0
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)

    def send(self, data: bytes):
        if self.open:
            self.out += data

    def _refill(self, now):
        if self.rate:
            dt = now - self._t
            self._in_tokens = min(self._cap, self._in_tokens + dt * self.rate)
            self._out_tokens = min(self._cap, self._out_tokens + dt * self.rate)
        self._t = now

    def _closed(self):
        if self.open:
            self.hups += 1
        self.open = False
        self.out.clear()

    def exchange(self, timeout: float | None = 0.0) -> bytes:
        """Write what is queued; wait up to `timeout` seconds (None: forever) for input."""
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            now = time.monotonic()
            self._refill(now)
            wait = None if end is None else max(0.0, end - now)
            can_in = can_out = True
            if self.rate:
                batch_out = min(self._batch, len(self.out))
                can_in = self._in_tokens >= self._batch
                can_out = self._out_tokens >= max(1.0, batch_out)
                short = []
                if not can_in:
                    short.append((self._batch - self._in_tokens) / self.rate)
                if self.out and not can_out:
                    short.append((batch_out - self._out_tokens) / self.rate)
                if short:
                    wait = min(wait if wait is not None else 1.0, min(short))
            can_out = can_out and bool(self.out)
            if not self.open:
                wait = 0.0  # POLLHUP is level-triggered: probe, then sleep below
            p = select.poll()
            r_ev = select.POLLIN if can_in else 0
            if self.wfd == self.rfd:
                p.register(self.rfd, r_ev | (select.POLLOUT if can_out else 0))
            else:
                p.register(self.rfd, r_ev)
                if can_out:
                    p.register(self.wfd, select.POLLOUT)
            events = p.poll(None if wait is None else int(wait * 1000 + 0.999))
            got = b""
            hup = False
            for fd, ev in events:
                if ev & select.POLLIN and fd == self.rfd:
                    got = self._read() or got
                elif ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) and fd == self.rfd:
                    hup = True
                if ev & select.POLLOUT and self.open:
                    self._write()
            if hup and not got:
                self._closed()
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return b""
                time.sleep(0.05 if left is None else min(left, 0.05))
                continue
            if not self.open and not hup:
                self.open = True
                if can_out:
                    self._write()
            if got:
                return got
            if end is not None and time.monotonic() >= end:
                return b""

    def _read(self) -> bytes:
        n = 4096 if not self.rate else int(self._in_tokens)
        try:
            data = os.read(self.rfd, max(1, n))
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno == errno.EIO:  # a pty master whose slave was just closed
                self._closed()
                return b""
            raise
        if self.rate:
            self._in_tokens -= len(data)
        self.open = True
        return data

    def _write(self):
        n = len(self.out) if not self.rate else min(len(self.out), int(self._out_tokens))
        if n <= 0:
            return
        try:
            done = os.write(self.wfd, self.out[:n])
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno in (errno.EIO, errno.EPIPE):
                self._closed()
                return
            raise
        del self.out[:done]
        if self.rate:
            self._out_tokens -= done


def open_pty() -> tuple[int, str]:
    """A pty in raw mode: (master fd, slave path). The slave is closed again so that the master
    sees POLLHUP while no host has the port open."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def _link(path: str, link: str):
    p = Path(link)
    if p.is_symlink():
        p.unlink()
    elif p.exists():
        raise SystemExit("--link %s exists and is not a symlink; not replacing it" % link)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to(path)


def serve(board: str = "pico", machine: str = "axis", seed: int = 0, root: str | None = None,
          link: str | None = None, realtime: bool = False, baud: int | None = None,
          on_ready=None, out=None, blank: bool = False, extensions=None,
          mqtt: str | None = None, device_id: str | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or Shutdown); returns the exit status.

    on_ready(info) is called once the port exists, with info = {"port", "link", "board",
    "machine", "serial_number", "root"}: `microfab sim` registers the board with it."""
    out = out or sys.stdout
    install = not blank
    if root is not None and not blank:
        r = Path(root)
        install = not r.exists() or not any(r.iterdir())
    if blank and root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    sim = SimBoard(board, machine, seed=seed, root=root, install=install, boot=False,
                   extensions=extensions)
    if mqtt and not blank:
        write_net(sim.root, mqtt, device_id)  # config/net.json: the firmware's uplink starts
        # Its records reach real tools (a collector, Home Assistant): stamped from today, as a
        # board with a time server would be, not from the simulator's fixed 2026-01-01.
        sim.world.modules["vclock"].epoch = int(time.time())
    master, path = open_pty()
    repl = None
    old = {}

    def stop(signum, frame):
        if repl is not None:
            repl.shutdown()
        raise Shutdown()

    try:
        if link:
            _link(path, link)
        out.write("port: %s\n" % path)
        if link:
            out.write("link: %s\n" % link)
        out.write("board: %s (%s), machine %s, seed %d, flash %s%s\n" % (
            sim.board_cfg["name"], sim.board_cfg["title"], sim.machine_cfg.get("machine"), seed,
            sim.root, ", realtime" if realtime else ""))
        out.flush()
        repl = Repl(sim, SerialEnd(master, baud=baud), realtime=realtime)
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                old[s] = signal.signal(s, stop)
        if on_ready is not None:
            on_ready({"port": path, "link": link, "board": sim.board_cfg["name"],
                      "machine": sim.machine_cfg.get("machine"), "root": str(sim.root),
                      "serial_number": "".join("%02x" % b for b in sim.hw.uid)})
        repl.run()
    except Shutdown:
        pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        os.close(master)
        if link and Path(link).is_symlink() and os.readlink(link) == path:
            Path(link).unlink()
        sim.close()
    return 0


def main(argv=None, on_ready=None, prog="python -m microfab_sim.serial_port") -> int:
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Serve a simulated board on a pseudo-terminal.")
    ap.add_argument("--board", default="pico", help="board file name (default: pico)")
    ap.add_argument("--machine", default="axis", help="machine the firmware runs, wired as "
                    "`microfab wiring` shows, or its config file (.json, with its pins) "
                    "(default: axis)")
    ap.add_argument("--ext", action="append", default=[], metavar="DIR",
                    help="a machine extension folder (repeatable; MICROFAB_EXTENSIONS and "
                         "installed packages are looked at too), see docs/extending.md")
    ap.add_argument("--seed", type=int, default=0, help="seed of the board's models (default: 0)")
    ap.add_argument("--root", help="the board's flash folder, kept across runs "
                                   "(default: a temporary one)")
    ap.add_argument("--link", help="make a symlink PATH to the pty, removed on exit")
    ap.add_argument("--realtime", action="store_true",
                    help="virtual time in step with wall time (default: as fast as possible)")
    ap.add_argument("--baud", type=int, default=None,
                    help="emulate the line rate: baud/10 bytes per second each way "
                         "(default: as fast as the pty)")
    ap.add_argument("--blank", action="store_true",
                    help="a board with MicroPython only: no firmware, no config on its flash")
    ap.add_argument("--mqtt", metavar="URL",
                    help="connect the board to this broker, mqtt://[user:password@]HOST:PORT "
                         "(writes its config/net.json; a Wi-Fi board is needed: pico_w, esp32...)")
    ap.add_argument("--device-id", help="the board's name in MQTT topics (default: mf-<chip id>)")
    a = ap.parse_args(argv)
    try:
        machine, exts = _machine_arg(a.machine, a.ext)
        if isinstance(machine, str) and not exts:
            machine = _wired(a.board, machine)
        if a.mqtt:
            check_mqtt_arg(a.board, a.mqtt)
        return serve(a.board, machine, a.seed, a.root, a.link, a.realtime, a.baud, on_ready,
                     blank=a.blank, extensions=exts, mqtt=a.mqtt, device_id=a.device_id)
    except KeyError as e:  # an unknown board: the message lists the known ones
        print("%s: %s" % (ap.prog, e.args[0]), file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # the --machine file, an --ext folder: one line
        print("%s: %s" % (ap.prog, e), file=sys.stderr)
        return 2


def _wired(board: str, machine: str):
    """A machine named without a config gets the documented wiring of `microfab wiring`: a wind
    rig or a loom boots working, not with 'pin ... is not wired'."""
    from microfab import wiring

    try:
        return wiring.example(board, machine)
    except (KeyError, ValueError, ImportError):
        return machine  # unknown here: the board says what is wrong when it boots


def _machine_arg(machine: str, ext_dirs: list) -> tuple:
    """(machine name or config dict, the extensions it needs), read and checked before the
    board is powered."""
    import json

    from microfab import extensions

    if machine.endswith(".json"):
        p = Path(machine)
        try:
            machine = json.loads(p.read_text())
        except OSError as e:
            raise OSError("--machine %s cannot be read: %s" % (p, e.strerror or e)) from None
        except ValueError as e:
            raise ValueError("--machine %s is not valid JSON: %s" % (p, e)) from None
        if not isinstance(machine, dict):
            raise ValueError("--machine %s: expected one JSON object, like {\"machine\": "
                             "\"axis\"}" % p)
    name = machine.get("machine") if isinstance(machine, dict) else machine
    return machine, extensions.for_machine(name, ext_dirs)


if __name__ == "__main__":
    sys.exit(main())
