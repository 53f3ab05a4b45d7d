"""Machines from outside microfab: extension folders, found once here for deploy, the config
check, the simulator and `microfab sim`.

An extension is a folder:

    machines/<name>.py   the firmware machine module, same contract as fab/machines/axis.py
                         (NAME, PINS, SCHEMA, CALIBRATE, optional hal-free check(), Machine);
                         on a board it is fab/machines/<name>.py
    drivers/*.py         optional chip drivers; on a board fab/drivers/<file>
    sim/m_<name>.py      optional: the simulator's model wiring, wire(board), and beside it the
                         model modules it imports (the simulator's vm/ rules: CPython and
                         MicroPython alike)

Found, in this order (the same folder twice counts once):
  1. folders given explicitly (`--ext PATH`, or the `extensions=` argument of the APIs);
  2. the MICROFAB_EXTENSIONS environment variable: folders separated by os.pathsep;
  3. installed packages with an entry point in the group `microfab.machines`, whose value is a
     module (its folder is the extension), a path, or a callable returning a path.

Only the extension that provides the configured machine travels to a board or a simulated one:
the others stay on the host. A machine name is a module name and may be neither one of
microfab's own machines nor provided twice.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import microfab_firmware

GROUP = "microfab.machines"
ENV = "MICROFAB_EXTENSIONS"
_SIM_VM = Path(__file__).resolve().parents[1] / "simulator" / "vm"
_active: list[Path] = []  # folders this module added to the host's fab.machines/fab.drivers
_ep_cache: dict = {}  # sys.path -> extensions from entry points: a scan takes ~40 ms


class ExtensionError(ValueError):
    """A folder or entry point that is not a usable extension; the message says which and why.
    (Not fab.config's ConfigError: importing that puts the firmware's `fab` on the host's
    sys.path, where a simulated board must never find it. microfab.config turns this into a
    ConfigError for the config check and deploy.)"""


def _builtin(kind: str) -> set[str]:
    folder = microfab_firmware.ROOT / "fab" / kind
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}


def _sim_builtin() -> set[str]:
    try:
        import microfab_sim

        folder = Path(microfab_sim.__file__).resolve().parent / "vm"
    except ImportError:
        folder = _SIM_VM
    return {p.stem for p in folder.glob("*.py")}


@dataclass(frozen=True)
class Extension:
    name: str  # the folder's name, or the entry point's
    root: Path
    source: str  # where it was found, for messages: "--ext", "MICROFAB_EXTENSIONS", an entry point
    machines: tuple[str, ...]
    drivers: tuple[str, ...]

    @property
    def sim_dir(self) -> Path | None:
        d = self.root / "sim"
        return d if d.is_dir() else None

    def firmware_files(self) -> dict[str, Path]:
        """Board path -> file on the host."""
        out = {"fab/machines/%s.py" % m: self.root / "machines" / (m + ".py")
               for m in self.machines}
        for d in self.drivers:
            out["fab/drivers/%s.py" % d] = self.root / "drivers" / (d + ".py")
        return out

    def __str__(self):
        return "extension %s (%s, from %s)" % (self.name, self.root, self.source)


def _modules(folder: Path) -> tuple[str, ...]:
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__"))


def load(folder: str | os.PathLike, source: str = "--ext", name: str | None = None) -> Extension:
    """One extension folder, its layout checked."""
    root = Path(folder).expanduser().resolve()
    where = "extension folder %s (from %s)" % (root, source)
    if not root.is_dir():
        raise ExtensionError("%s does not exist or is not a folder; expected a folder with "
                             "machines/<name>.py" % where)
    machines = _modules(root / "machines")
    if not machines:
        raise ExtensionError("%s has no machines/<name>.py; expected the firmware module of at "
                             "least one machine there" % where)
    drivers = _modules(root / "drivers")
    for kind, names in (("machines", machines), ("drivers", drivers)):
        own = _builtin(kind)
        for n in names:
            if not n.isidentifier():
                raise ExtensionError("%s: %s/%s.py is not a module name; use letters, digits and "
                                     "_ only" % (where, kind, n))
            if n in own:
                raise ExtensionError("%s: %s/%s.py has the name of microfab's own "
                                     "fab/%s/%s.py; rename it" % (where, kind, n, kind, n))
    sim = root / "sim"
    if sim.is_dir():
        vm = _sim_builtin()
        for p in sorted(sim.glob("*.py")):
            if p.stem in vm:
                raise ExtensionError("%s: sim/%s would shadow the simulator's own vm/%s; rename "
                                     "it" % (where, p.name, p.name))
    return Extension(name or root.name, root, source, machines, drivers)


def _entry_points() -> list[Extension]:
    key = tuple(sys.path)
    if key not in _ep_cache:
        _ep_cache.clear()
        _ep_cache[key] = _scan_entry_points()
    return list(_ep_cache[key])


def _scan_entry_points() -> list[Extension]:
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        source = "entry point %s = %s%s in group %s" % (
            ep.name, ep.value, " of package %s" % dist.name if dist is not None else "", GROUP)
        try:
            obj = ep.load()
        except Exception as e:  # a broken package must say so, not take the tool down unnamed
            raise ExtensionError("%s could not be loaded: %s: %s"
                                 % (source, type(e).__name__, e)) from None
        if callable(obj) and not isinstance(obj, type(sys)):
            obj = obj()
        if isinstance(obj, type(sys)):
            f = getattr(obj, "__file__", None)
            if f is None:
                raise ExtensionError("%s is a module without a file; expected a package whose "
                                     "folder is the extension, or a path" % source)
            folder = Path(f).parent
        elif isinstance(obj, (str, os.PathLike)):
            folder = Path(obj)
        else:
            raise ExtensionError("%s gave %s; expected a module, a path, or a callable returning "
                                 "a path" % (source, type(obj).__name__))
        found.append(load(folder, source, ep.name))
    return found


def discover(folders=(), env: str | None = None, entry_points: bool = True) -> list[Extension]:
    """Every extension: `folders` (paths or Extension objects), then MICROFAB_EXTENSIONS (or
    `env`), then installed entry points. Raises ExtensionError for a folder that is not an
    extension and for a machine name provided twice."""
    out: list[Extension] = []
    for f in folders or ():
        out.append(f if isinstance(f, Extension) else load(f, "--ext"))
    text = os.environ.get(ENV, "") if env is None else env
    for part in text.split(os.pathsep):
        if part.strip():
            out.append(load(part.strip(), ENV))
    if entry_points:
        out += _entry_points()
    seen: dict[Path, Extension] = {}
    owner: dict[str, Extension] = {}
    result = []
    for ext in out:
        if ext.root in seen:
            continue
        seen[ext.root] = ext
        for m in ext.machines:
            if m in owner:
                raise ExtensionError("machine '%s' is provided twice: by %s and by %s; keep one"
                                     % (m, owner[m], ext))
            owner[m] = ext
        result.append(ext)
    return result


def is_builtin(machine: str | None) -> bool:
    return isinstance(machine, str) and machine in _builtin("machines")


def for_machine(machine, extensions=None) -> list[Extension]:
    """The extensions a board running `machine` needs: [] for microfab's own machines (nothing
    is looked up then), else the one extension that provides it, or [] when none does (the
    config check then says the machine is unknown). `extensions`: folders or Extension objects
    given explicitly; the environment and entry points are always looked at too."""
    if not isinstance(machine, str) or not machine or is_builtin(machine):
        for f in extensions or ():
            if not isinstance(f, Extension):
                load(f)  # a folder given by hand is checked even when not needed
        return []
    for ext in discover(extensions or ()):
        if machine in ext.machines:
            return [ext]
    return []


def firmware_files(extensions) -> dict[str, Path]:
    """Board path -> host file for these extensions (Extension objects or folders)."""
    out: dict[str, Path] = {}
    for ext in extensions or ():
        ext = ext if isinstance(ext, Extension) else load(ext)
        out.update(ext.firmware_files())
    return out


def sim_dirs(extensions) -> list[Path]:
    """The folders where the simulator finds these extensions' model modules."""
    return [e.sim_dir for e in extensions or () if e.sim_dir is not None]


def activate(extensions):
    """Make these extensions' machine and driver modules importable on the host as
    fab.machines.<name> and fab.drivers.<name> (for the config check), and only these: folders
    added by an earlier call are taken out, and modules already imported from any extension
    are forgotten so that the next import finds the right file. Host only, after
    microfab.config has put the shipped firmware on sys.path."""
    import fab.drivers
    import fab.machines

    want = [e.root for e in extensions or ()]
    roots = set(_active) | set(want)
    for name in list(sys.modules):
        if name.startswith(("fab.machines.", "fab.drivers.")):
            f = getattr(sys.modules[name], "__file__", None) or ""
            if any(f.startswith(str(r) + os.sep) for r in roots):
                del sys.modules[name]
                pkg, _, child = name.rpartition(".")
                if getattr(sys.modules.get(pkg), child, None) is not None:
                    delattr(sys.modules[pkg], child)
    for pkg, kind in ((fab.machines, "machines"), (fab.drivers, "drivers")):
        path = pkg.__path__
        for r in _active:
            d = str(r / kind)
            while d in path:
                path.remove(d)
        for r in want:
            d = str(r / kind)
            if (r / kind).is_dir() and d not in path:
                path.append(d)
    _active[:] = want
