"""A simulated board in this process: flash folder, firmware, models, virtual clock.

    board = SimBoard(board="pico", machine="axis", seed=1)
    board.send("home")                       # -> {"id": 1, "ok": True, "pos": 0.0}
    board.advance(3600)                      # one virtual hour
    board.telemetry()                        # the board's "tele" records so far
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import microfab_boards
import microfab_firmware

from .world import World

_FOREVER = 1 << 62


class BoardTimeout(TimeoutError):
    pass


def install_firmware(root: Path, board_cfg: dict, machine_cfg: dict, calib: dict | None = None,
                     extensions=None):
    """Put the firmware and its config on a board's flash folder, as a deploy would.
    extensions: extension folders beside MICROFAB_EXTENSIONS and entry points; the one that
    provides the machine is installed too (microfab.extensions)."""
    from microfab import extensions as ext

    root.mkdir(parents=True, exist_ok=True)
    files = {rel.as_posix(): microfab_firmware.ROOT / rel
             for rel in microfab_firmware.device_files()}
    files.update(ext.firmware_files(ext.for_machine(machine_cfg.get("machine"), extensions)))
    for rel, src in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    cfg = root / "config"
    cfg.mkdir(exist_ok=True)
    (cfg / "board.json").write_text(json.dumps(board_cfg, indent=1))
    (cfg / "machine.json").write_text(json.dumps(machine_cfg, indent=1))
    if calib:
        (cfg / "calib.json").write_text(json.dumps(calib))
    elif (cfg / "calib.json").exists():
        (cfg / "calib.json").unlink()


class LineLog:
    """A board's USB serial as the tests see it: every line it wrote (dicts for JSON lines,
    text otherwise), replies by request id, and the requests handed out. Shared by SimBoard and
    WasmBoard, which differ only in how bytes reach the firmware and how time passes."""

    def _init_log(self):
        self.log: list = []  # every line the board wrote: dicts for JSON, str otherwise
        self.replies: dict = {}  # request id -> reply
        self._partial = ""
        self._next_id = 0

    def _take_text(self, text: str):
        if not text:
            return
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            line = line.rstrip("\r")
            if line.startswith("{"):
                try:
                    item = json.loads(line)
                except ValueError:
                    item = None
                if isinstance(item, dict):
                    self.log.append(item)
                    if "ok" in item and item.get("id") is not None:
                        self.replies[item["id"]] = item
                    continue
            self.log.append(line)

    def write(self, data: bytes | str):
        raise NotImplementedError

    def wait_reply(self, rid, timeout: float = 60.0) -> dict:
        raise NotImplementedError

    def request(self, cmd: str, args: dict | None = None) -> int:
        self._next_id += 1
        msg = {"id": self._next_id, "cmd": cmd}
        if args:
            msg["args"] = args
        self.write(json.dumps(msg) + "\n")
        return self._next_id

    def send(self, cmd: str, timeout: float = 60.0, **args) -> dict:
        return self.wait_reply(self.request(cmd, args), timeout)

    def lines(self, kind: str | None = None) -> list:
        """What the board wrote: all lines, or the dicts with an "event"/"tele" of that kind."""
        if kind is None:
            return list(self.log)
        return [x for x in self.log if isinstance(x, dict)
                and (x.get("event") == kind or x.get("tele") == kind)]

    def telemetry(self, kind: str | None = None) -> list:
        """The "tele" records so far: all, or one kind ("status", "production", "energy")."""
        return [x for x in self.log if isinstance(x, dict) and "tele" in x
                and (kind is None or x["tele"] == kind)]

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SimBoard(LineLog):
    def __init__(self, board: str | dict = "pico", machine: str | dict = "axis", calib=None,
                 model: dict | None = None, seed: int = 0, root: str | Path | None = None,
                 install: bool = True, boot: bool = True, extensions=None):
        """extensions: folders of machine extensions beside MICROFAB_EXTENSIONS and entry
        points (microfab.extensions); the one that provides the machine is used."""
        from microfab import extensions as ext

        self.board_cfg = microfab_boards.load(board) if isinstance(board, str) else dict(board)
        self.machine_cfg = {"machine": machine} if isinstance(machine, str) else dict(machine)
        self.extensions = ext.for_machine(self.machine_cfg.get("machine"), extensions)
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="microfab-board-")
            root = self._tmp.name
        self.root = Path(root)
        if install:
            install_firmware(self.root, self.board_cfg, self.machine_cfg, calib, self.extensions)
        self.world = World(self.root, self.board_cfg["port"], self.board_cfg["heap_kb"],
                           ext.sim_dirs(self.extensions))
        m = self.world.modules
        self.clock, self.sched, self.machine = m["vclock"], m["vasyncio"], m["vmachine"]
        self.clock.reset()
        self.hw = m["vboard"].Board(self.board_cfg, self.machine_cfg, model, seed)
        self._init_log()
        self.boots = 0
        if boot:  # boot=False: powered but not started, for a driver of its own (repl.Repl)
            self._boot()

    # --- power ---

    def _boot(self):
        self.boots += 1
        self.sched.horizon = self.clock.now
        self._guarded(self._run_scripts)
        self._collect()

    def _run_scripts(self):
        self.world.run_file("boot.py")
        self.world.run_file("main.py")

    def _guarded(self, fn, *args):
        reset = self.machine.ResetRequest
        while True:
            try:
                fn(*args)
                return
            except reset as r:
                self._collect()
                self.hw.power_cycle(r.cause)
                self.world.drop_firmware()
                self.boots += 1
                self.sched.horizon = self.clock.now
                fn = self._run_scripts
                args = ()

    def reset(self):
        """Press the reset button."""
        self._collect()
        self.hw.power_cycle(self.machine.HARD_RESET)
        self.world.drop_firmware()
        self._boot()

    # --- time ---

    @property
    def now(self) -> float:
        """Virtual seconds since power-on."""
        return self.clock.now / 1e6

    def advance(self, seconds: float):
        end = self.clock.now + int(seconds * 1e6)
        while True:
            # A reset on the way reboots the board; the rest of the interval runs on the new boot.
            self._guarded(self.sched.run_until, end)
            if self.clock.now >= end:
                break
        self._collect()

    def _collect(self):
        self._take_text(self.hw.stdio.take())

    # --- the serial link ---

    def write(self, data: bytes | str):
        self.hw.stdio.feed(data.encode() if isinstance(data, str) else data)

    def wait_reply(self, rid, timeout: float = 60.0) -> dict:
        """Run virtual time, event by event, until the reply to `rid` arrives."""
        limit = self.clock.now + int(timeout * 1e6)
        while rid not in self.replies:
            t = self.sched.next_deadline()
            if t is None or t > limit:
                self.advance((limit - self.clock.now) / 1e6)
                if rid in self.replies:
                    break
                raise BoardTimeout("no reply to %r within %s virtual seconds" % (rid, timeout))
            self._guarded(self.sched.run_until, t)
            self._collect()
        return self.replies[rid]

    # --- the physical side ---

    @property
    def axis(self):
        """The axis model: true position in steps, lost steps, stalls."""
        return self.hw.axis

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
