"""A simulated board in the real MicroPython VM: the WebAssembly build from the npm registry, run
by Node (simulator/wasm/runner.mjs), with the same firmware files, the same virtual board modules
(simulator/vm/) and the same interface as SimBoard:

    with WasmBoard(board="esp32_devkitc", seed=1) as b:   # heap: the board's heap_kb
        b.send("home")                                     # -> {"id": 1, "ok": True, "pos": 0.0}
        b.mem()     # heap: baseline (simulator alone), boot, now, peak; firmware_*: minus baseline

The CPython simulator runs the firmware fast; this one runs it where a MicroPython-only
construct (or one CPython has and MicroPython lacks) fails as it would on a board, and where the
firmware's heap can be measured. compiled=True gives the board .mpy files from mpy-cross, as a
deploy does, instead of source.

Needs Node 18+ and npm; the npm package is installed into simulator/wasm/node_modules on first
use (or by `npm install` there).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import microfab_boards

from .board import BoardTimeout, LineLog, install_firmware

WASM_DIR = Path(__file__).resolve().parent / "wasm"
VM_DIR = Path(__file__).resolve().parent / "vm"
PACKAGE = "@micropython/micropython-webassembly-pyscript"
# The firmware's own heap, the target for every supported board (see tests/simulator/
# test_wasm_vm.py); a board's heap_kb is the hard ceiling.
FIRMWARE_TARGET_KB = 48
_install_lock = threading.Lock()


class WasmError(RuntimeError):
    """The VM side failed: a Python exception in the VM (traceback in .trace), or the runner."""

    def __init__(self, message, trace=""):
        RuntimeError.__init__(self, message + ("\n" + trace if trace else ""))
        self.trace = trace


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise WasmError("node is not installed: the MicroPython VM runs on Node 18+ "
                        "(Debian/Ubuntu: apt-get install nodejs npm)")
    return node


def ensure_vm() -> Path:
    """simulator/wasm with its node_modules installed (npm ci/install, once)."""
    pkg = WASM_DIR / "node_modules" / Path(*PACKAGE.split("/")) / "package.json"
    if pkg.exists():
        return WASM_DIR
    with _install_lock:
        if pkg.exists():
            return WASM_DIR
        node_binary()
        npm = shutil.which("npm")
        if npm is None:
            raise WasmError("npm is not installed: it fetches %s for the MicroPython VM "
                            "(Debian/Ubuntu: apt-get install npm)" % PACKAGE)
        cmd = "ci" if (WASM_DIR / "package-lock.json").exists() else "install"
        r = subprocess.run([npm, cmd, "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=WASM_DIR, capture_output=True, text=True, timeout=600)
        if r.returncode != 0 or not pkg.exists():
            raise WasmError("npm %s in %s failed (exit %d): %s"
                            % (cmd, WASM_DIR, r.returncode, (r.stderr or r.stdout).strip()[-2000:]))
    return WASM_DIR


def compile_flash(root: Path, mpy: int, extensions=None):
    """Replace the fab package's .py files under root by .mpy files for a VM with this
    sys.implementation._mpy, as `microfab deploy` does (boot.py and main.py stay source).
    extensions: the microfab.extensions.Extension objects installed on that flash."""
    from microfab.compile import device_files

    for path, data in device_files(mpy, None, extensions).items():
        if path.endswith(".mpy"):
            (root / path).write_bytes(data)
            src = root / (path[:-4] + ".py")
            if src.exists():
                src.unlink()


class _AxisView:
    """The axis model's truth, read from the VM: position in steps, lost steps, stalls."""

    def __init__(self, board):
        self._b = board

    def status(self) -> dict:
        return self._b.call({"op": "axis"})["axis"]

    def position(self) -> int:
        return self.status()["pos"]

    def __getattr__(self, name):
        st = self.status()
        if name in st:
            return st[name]
        raise AttributeError(name)


class WasmBoard(LineLog):
    def __init__(self, board: str | dict = "pico", machine: str | dict = "axis", calib=None,
                 model: dict | None = None, seed: int = 0, heap_kb: int | None = None,
                 compiled: bool = False, peak: bool = True, root: str | Path | None = None,
                 wall_timeout: float = 120.0, extensions=None):
        """heap_kb: the VM's GC heap at start (default: the board file's heap_kb).
        peak: sample the heap after every step of virtual time (see mem()).
        wall_timeout: real seconds any one exchange with the VM may take.
        extensions: folders of machine extensions beside MICROFAB_EXTENSIONS and entry points
        (microfab.extensions); the one that provides the machine is used."""
        from microfab import extensions as ext

        self.board_cfg = microfab_boards.load(board) if isinstance(board, str) else dict(board)
        self.machine_cfg = {"machine": machine} if isinstance(machine, str) else dict(machine)
        self.extensions = ext.for_machine(self.machine_cfg.get("machine"), extensions)
        self._sim_dirs = ext.sim_dirs(self.extensions)
        self._vm_tmp = None  # vm/ and the extension's model modules, when it has any
        self.heap_kb = int(heap_kb or self.board_cfg["heap_kb"])
        self.compiled = compiled
        self.seed = seed
        self.model = model
        self.wall_timeout = wall_timeout
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="microfab-wasm-")
            root = self._tmp.name
        self.root = Path(root)
        self._init_log()
        self.console: list = []  # what the VM itself printed, outside the board's serial
        self._now_us = 0
        self.boots = 0
        self._buf = b""
        self._proc = None
        self._stderr = None
        try:
            install_firmware(self.root, self.board_cfg, self.machine_cfg, calib, self.extensions)
            self._start()
            if compiled:
                compile_flash(self.root, self.info["mpy"], self.extensions)
            self.call({"op": "flash", "dir": str(self.root)})
            self.call({"op": "boot", "board": self.board_cfg, "machine": self.machine_cfg,
                       "model": model, "seed": seed, "peak": peak})
        except BaseException:
            self.close()
            raise

    # --- the runner process ---

    def _start(self):
        wasm = ensure_vm()
        vm_dir = VM_DIR
        if self._sim_dirs:
            # The runner takes one folder of simulator modules: vm/ with the extension's beside.
            self._vm_tmp = tempfile.TemporaryDirectory(prefix="microfab-wasm-vm-")
            vm_dir = Path(self._vm_tmp.name)
            for d in [VM_DIR] + self._sim_dirs:
                for f in d.glob("*.py"):
                    shutil.copyfile(f, vm_dir / f.name)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [node_binary(), str(wasm / "runner.mjs"), "--heap-kb", str(self.heap_kb),
             "--vm", str(vm_dir)],
            cwd=wasm, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self.info = self._read()
        if not self.info.get("ready"):
            raise WasmError("runner did not start: %r" % (self.info,))

    def _read(self) -> dict:
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], self.wall_timeout)
            if not ready:
                self._fail("no answer from the MicroPython VM within %s s (real time)"
                           % self.wall_timeout)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._fail("the MicroPython VM runner exited (code %s)" % self._proc.poll())
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _fail(self, why):
        err = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace")[-4000:]
        self.close()
        raise WasmError(why, err)

    def call(self, req: dict) -> dict:
        """One request to the runner (see runner.mjs); the firmware's output goes to the log."""
        if self._proc is None:
            raise WasmError("the board is closed")
        self._proc.stdin.write(json.dumps(req).encode() + b"\n")
        self._proc.stdin.flush()
        r = self._read()
        if r.get("console"):
            self.console.extend(r["console"])
        if "out" in r:
            self._collect(r["out"])
        if "t_us" in r:
            self._now_us = r["t_us"]
        if "boots" in r:
            self.boots = r["boots"]
        if "error" in r:
            raise WasmError("in the MicroPython VM: " + r["error"], r.get("trace", ""))
        return r

    # --- power ---

    def reset(self):
        """Press the reset button."""
        self.call({"op": "reset"})

    # --- time ---

    @property
    def now(self) -> float:
        """Virtual seconds since power-on."""
        return self._now_us / 1e6

    def advance(self, seconds: float):
        self.call({"op": "run", "until": self._now_us + int(seconds * 1e6)})

    def _collect(self, text):
        self._take_text(text)

    # --- the serial link ---

    def write(self, data: bytes | str):
        data = data.encode() if isinstance(data, str) else bytes(data)
        self.call({"op": "feed", "hex": data.hex()})

    def wait_reply(self, rid, timeout: float = 60.0) -> dict:
        """Run virtual time, event by event, until the reply to `rid` arrives."""
        if rid not in self.replies:
            self.call({"op": "wait", "rid": rid, "limit": self._now_us + int(timeout * 1e6)})
        if rid not in self.replies:
            raise BoardTimeout("no reply to %r within %s virtual seconds" % (rid, timeout))
        return self.replies[rid]

    # --- the physical side and the heap ---

    @property
    def axis(self):
        """The axis model: status() and position() read from the VM."""
        return _AxisView(self)

    def eval(self, expr: str):
        """An expression evaluated in the VM, with hw (the vboard.Board) and the vm modules."""
        return self.call({"op": "eval", "expr": expr})["value"]

    def mem(self) -> dict:
        """Heap figures in bytes, each taken after a garbage collection:
        baseline: the simulator alone (vm modules, board model, driver), before boot.py;
        boot:     after boot.py and main.py (the firmware's tasks started);
        now:      now; peak: the highest seen, sampled after every step of virtual time (an
                  upper bound: what was live before the step plus all the step allocated);
        firmware_boot, firmware_now, firmware_peak: the same minus the baseline, the firmware's
        own use; heap_total: the VM's heap now (it grows past heap_kb rather than failing)."""
        r = self.call({"op": "mem"})
        base = r["baseline"]
        out = {"heap_kb": self.heap_kb, "baseline": base, "boot": r["boot"], "now": r["now"],
               "peak": r["peak"], "peak_sampled": r["peak_sampled"],
               "firmware_boot": r["boot"] - base, "firmware_now": r["now"] - base,
               "firmware_peak": r["peak"] - base, "heap_total": r.get("heap_total"),
               "boot_alloc": r.get("boot_alloc")}
        start = self.info.get("heap_total")
        out["heap_grew"] = bool(start and out["heap_total"] and out["heap_total"] > start)
        return out

    def close(self):
        p, self._proc = self._proc, None
        if p is not None:
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if getattr(self, "_vm_tmp", None) is not None:
            self._vm_tmp.cleanup()
            self._vm_tmp = None

    def __del__(self):
        if getattr(self, "_proc", None) is not None:
            self.close()
