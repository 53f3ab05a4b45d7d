"""One board's module namespace in the CPython process.

Firmware modules import `machine`, `time` and `asyncio`; the host process has its own `time` and
`asyncio` and must keep them. So each simulated board gets a world: its own module table, reached
through an `__import__` in the builtins of every module loaded into it. `machine`, `time` and
`asyncio` resolve to fresh copies of the vm/ modules, `os` and `open` are confined to the board's
flash folder, `print` goes to the board's USB serial, and the standard library is shared.
"""
from __future__ import annotations

import builtins
import importlib
import os
import traceback
import types
from pathlib import Path

from .flashfaults import Flash
from .net import Net

VM_DIR = Path(__file__).resolve().parent / "vm"
VM_MODULES = ("vclock", "vasyncio", "vstreams", "vmachine", "vstepper", "vboard", "vnetwork")
ALIASES = {"time": "vclock", "utime": "vclock", "asyncio": "vasyncio", "uasyncio": "vasyncio",
           "machine": "vmachine", "network": "vnetwork"}
# Port modules a simulated board does not have; the HAL must not need them in the simulator.
ABSENT = {"rp2", "esp32", "esp", "bluetooth", "neopixel", "onewire", "dht"}
_CODE_CACHE: dict = {}


def _compiled(path: Path):
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    code = _CODE_CACHE.get(key)
    if code is None:
        code = _CODE_CACHE[key] = compile(path.read_text(), str(path), "exec")
    return code


class World:
    def __init__(self, root: Path, port: str = "rp2", heap_kb: int = 192, sim_dirs=()):
        self.root = Path(root).resolve()
        # Extensions' model folders (microfab.extensions): m_<machine>.py and its models.
        self.sim_dirs = [Path(d) for d in sim_dirs]
        self.port = port
        self.heap_kb = heap_kb
        self.modules: dict[str, types.ModuleType] = {}
        self.cwd = "/"
        self.flash = Flash(self)  # bytes written, and power cuts (flashfaults.py)
        b = dict(builtins.__dict__)
        b["__import__"] = self._import
        b["open"] = self.open
        b["print"] = self._print
        self.builtins = b
        for name in VM_MODULES:
            if name not in self.modules:  # vasyncio has loaded vstreams, which it imports
                self._load(name, VM_DIR / (name + ".py"), False)
        self.modules["vasyncio"]._io = Net()  # real sockets for asyncio.open_connection (net.py)
        self.modules["micropython"] = self._micropython()
        self.modules["gc"] = self._gc()
        self.modules["sys"] = self._sys()
        self.modules["os"] = self.modules["uos"] = self._os()
        self.modules["deflate"] = self._deflate()

    # --- imports ---

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            pkg = (globals or {}).get("__package__") or ""
            parts = pkg.split(".")
            base = ".".join(parts[: len(parts) - level + 1])
            name = base + ("." + name if name else "")
        mod = self.get(name)
        if fromlist:
            for item in fromlist:
                if item != "*" and not hasattr(mod, item) and hasattr(mod, "__path__"):
                    if self._find(name + "." + item):
                        self.get(name + "." + item)
            return mod
        return self.get(name.partition(".")[0])

    def get(self, name: str):
        mod = self.modules.get(name)
        if mod is not None:
            return mod
        if name in ALIASES:
            return self.modules[ALIASES[name]]
        if "." in name:
            self.get(name.rpartition(".")[0])
        found = self._find(name)
        if found:
            return self._load(name, *found)
        if name in ABSENT or name.partition(".")[0] in ABSENT:
            raise ImportError("no module named '%s'" % name)
        return importlib.import_module(name)

    def _find(self, name: str):
        rel = Path(*name.split("."))
        pkg = self.root / rel / "__init__.py"
        if pkg.is_file():
            return pkg, True
        mod = self.root / rel.with_suffix(".py")
        if mod.is_file():
            return mod, False
        vm = VM_DIR / rel.with_suffix(".py")
        if "." not in name and vm.is_file():
            return vm, False  # a model module (m_<machine>.py) of the virtual board
        for d in self.sim_dirs if "." not in name else ():
            if (d / (name + ".py")).is_file():
                return d / (name + ".py"), False  # an extension's model module
        return None

    def _load(self, name, path: Path, is_pkg: bool):
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        mod.__builtins__ = self.builtins
        if is_pkg:
            mod.__path__ = [str(path.parent)]
            mod.__package__ = name
        else:
            mod.__package__ = name.rpartition(".")[0]
        self.modules[name] = mod
        try:
            exec(_compiled(path), mod.__dict__)
        except BaseException:
            self.modules.pop(name, None)
            raise
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(self.modules[parent], child, mod)
        return mod

    def run_file(self, name: str):
        """Run a top-level script from the board's flash (boot.py, main.py) as MicroPython does."""
        path = self.root / name
        if path.is_file():
            g = {"__name__": "__main__", "__file__": name, "__builtins__": self.builtins}
            exec(_compiled(path), g)

    def drop_firmware(self):
        """Forget every module loaded from the flash, as a reset does; the vm/ modules stay."""
        keep = set(VM_MODULES) | {"micropython", "gc", "sys", "os", "uos", "deflate"}
        for name in list(self.modules):
            if name not in keep:
                del self.modules[name]

    # --- the console ---

    @property
    def stdio(self):
        return self.modules["vmachine"].stdio

    def _print(self, *args, sep=" ", end="\n", file=None):
        text = sep.join(str(a) for a in args) + end
        out = file or self.stdio
        if out is None:  # no board wired yet: the host's stderr is the only console there is
            import sys

            out = sys.stderr
        out.write(text)

    # --- the confined filesystem ---

    def path(self, p) -> Path:
        p = os.fspath(p)
        if isinstance(p, bytes):
            p = p.decode()
        full = os.path.normpath(os.path.join(self.cwd, p))
        if not full.startswith("/"):
            full = "/" + full
        parts = [x for x in full.split("/") if x]
        if ".." in parts:
            raise OSError(2, "ENOENT")
        return self.root.joinpath(*parts)

    def open(self, file, mode="r", *args, **kw):
        if isinstance(file, int):
            raise OSError(22, "EINVAL")
        return self.flash.wrap(builtins.open(self.path(file), mode, *args, **kw), mode, file)

    def cut_power_after(self, n: int, *then: int):
        """Let exactly n more bytes reach the flash, then cut the power (a power-on reset);
        then cut again after each of `then` bytes more (see flashfaults.py)."""
        self.flash.cut_after(n, *then)

    def _os(self):
        w = self
        m = types.ModuleType("os")
        m.sep = "/"

        def listdir(p="."):
            return sorted(os.listdir(w.path(p)))

        def ilistdir(p="."):
            for name in listdir(p):
                full = w.path(p) / name
                d = full.is_dir()  # LittleFS gives directories no size
                yield (name, 0x4000 if d else 0x8000, 0, 0 if d else full.stat().st_size)

        def stat(p):
            st = os.stat(w.path(p))
            mode = 0x4000 if os.path.isdir(w.path(p)) else 0x8000
            size = 0 if mode == 0x4000 else st.st_size
            return (mode, 0, 0, 0, 0, 0, size, 0, int(st.st_mtime), 0)

        def statvfs(p="/"):
            # A LittleFS partition of 4 KB blocks, sized like the port's default.
            blocks = 352 if w.port == "rp2" else 512
            used = sum(f.stat().st_size // 4096 + 1 for f in w.root.rglob("*") if f.is_file())
            free = max(0, blocks - used)
            return (4096, 4096, blocks, free, free, 0, 0, 0, 0, 255)

        def chdir(p):
            if not w.path(p).is_dir():
                raise OSError(2, "ENOENT")
            w.cwd = os.path.normpath(os.path.join(w.cwd, p))

        m.listdir = listdir
        m.ilistdir = ilistdir
        m.stat = stat
        m.statvfs = statvfs
        m.chdir = chdir
        m.getcwd = lambda: w.cwd
        m.remove = lambda p: os.remove(w.path(p))
        m.unlink = m.remove
        m.rename = lambda a, b: os.replace(w.path(a), w.path(b))
        m.mkdir = lambda p: os.mkdir(w.path(p))
        m.rmdir = lambda p: os.rmdir(w.path(p))
        m.sync = lambda: None
        m.dupterm = lambda *a: None
        m.urandom = lambda n: bytes(w.modules["vmachine"].board.rng.next() & 0xFF for _ in range(n))
        m.uname = lambda: ("simulated-" + w.port, "microfab-sim", "1.27.0", "v1.27.0 (sim)", w.port)
        return m

    # --- MicroPython-only modules ---

    def _micropython(self):
        w = self
        m = types.ModuleType("micropython")
        m.const = lambda x: x
        m.native = m.viper = m.asm_thumb = lambda f: f
        m.opt_level = lambda *a: 0
        m.alloc_emergency_exception_buf = lambda n: None
        m.kbd_intr = lambda c: None
        m.heap_lock = m.heap_unlock = lambda: 0
        m.mem_info = lambda *a: w._print("heap: not modelled in the CPython simulator; "
                                         "measure in the MicroPython VM")
        m.stack_use = lambda: 0

        def schedule(fn, arg):
            clock = w.modules["vclock"]
            clock.at(clock.now, fn, arg)
            return True

        m.schedule = schedule
        return m

    def _deflate(self):
        # MicroPython's `deflate` (1.21+): DeflateIO(stream, format, wbits) decompressing on read.
        import zlib

        m = types.ModuleType("deflate")
        m.AUTO, m.RAW, m.ZLIB, m.GZIP = 0, 1, 2, 3
        bits = {0: 47, 1: -15, 2: 15, 3: 31}

        class DeflateIO:
            def __init__(self, stream, format=0, wbits=0, close=False):
                self.s = stream
                self.z = zlib.decompressobj(bits[format])
                self.buf = b""

            def read(self, n=-1):
                while n < 0 or len(self.buf) < n:
                    chunk = self.s.read(512)
                    if not chunk:
                        self.buf += self.z.flush()
                        break
                    self.buf += self.z.decompress(chunk)
                if n < 0:
                    n = len(self.buf)
                out, self.buf = self.buf[:n], self.buf[n:]
                return out

            def readinto(self, b):
                data = self.read(len(b))
                b[: len(data)] = data
                return len(data)

            def close(self):
                pass

        m.DeflateIO = DeflateIO
        return m

    def _gc(self):
        # The CPython simulator does not model the MicroPython heap; the WebAssembly VM does
        # (see microfab_sim.wasm). mem_free() reports the board's whole budget.
        m = types.ModuleType("gc")
        budget = self.heap_kb * 1024
        m.collect = lambda: 0
        m.mem_free = lambda: budget
        m.mem_alloc = lambda: 0
        m.enable = m.disable = lambda: None
        m.isenabled = lambda: True
        m.threshold = lambda *a: -1
        return m

    def _sys(self):
        w = self
        m = types.ModuleType("sys")
        m.implementation = types.SimpleNamespace(name="micropython", version=(1, 27, 0, ""),
                                                 _machine="microfab simulator", _mpy=None)
        m.version = "3.4.0; MicroPython v1.27.0 (microfab simulator)"
        m.version_info = (3, 4, 0)
        m.platform = self.port
        m.byteorder = "little"
        m.maxsize = 2**31 - 1
        m.path = ["", "/lib"]
        m.modules = self.modules
        m.argv = []

        class _Out:
            def write(self, s):
                return w.stdio.write(s)

            buffer = property(lambda self: self)

        m.stdout = m.stderr = _Out()

        def print_exception(exc, file=None):
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            (file or m.stdout).write(text)

        m.print_exception = print_exception

        def exit(code=0):
            raise SystemExit(code)

        m.exit = exit
        return m
