"""The developer's simulated board: a SimBoard with what tests need on top.

    b = DevBoard(board="pico", machine="polyfloss", config={"pins": {...}}, seed=1)
    b.call("heat")                  # raises CommandError with the board's words on ok false
    b.advance(120)                  # virtual seconds
    b.heater.break_sensor()         # fault injection through handles on the physics models
    b.exec("import os; print(os.listdir('config'))")   # as the raw REPL would run it

The pytest plugin's `sim_board` fixture (microfab.pytest_plugin) and the scenario runner
(microfab_sim.scenario) are built on it. Handles are thin adapters over the models of
simulator/vm/ (m_<machine>.py): heater, lid, drum (polyfloss), wind, battery (windrig),
carriage (knitter), pedal (loom), solenoid(n) (loom, knitter), belt (axis), power (every board).
"""
from __future__ import annotations

import json

from .board import SimBoard
from .repl import _vfs_module, exception_text


class CommandError(Exception):
    """The board refused a command (ok false); the message is the board's own."""

    def __init__(self, cmd: str, reply: dict):
        super().__init__("%s refused: %s" % (cmd, reply.get("error")))
        self.cmd, self.reply = cmd, reply


class NoHandle(LookupError):
    """A fault handle this machine's models do not have."""


class DevBoard(SimBoard):
    """SimBoard(board, machine, ...) plus: every request and reply with its virtual time,
    call() that raises on ok false, exec() in the board's MicroPython namespace, and handles on
    the physics models for fault injection (heater, wind, power, solenoid(n), carriage, ...)."""

    def __init__(self, board="pico", machine="axis", config=None, calib=None, seed=0,
                 model=None, **kw):
        mc = dict(machine) if isinstance(machine, dict) else {"machine": machine}
        mc.update(config or {})
        self.seed = seed
        self.exchanges: list = []  # (t_s, request) for every request sent
        self.log_t: list = []  # virtual time each entry of self.log was written at
        self.reply_t: dict = {}
        self._stamped: list = []  # (t_us, text) as the board writes it
        self._globals = None
        self.cuts = 0
        super().__init__(board=board, machine=mc, calib=calib, model=model, seed=seed,
                         boot=False, **kw)  # kw: root, extensions, as SimBoard takes them
        clock = self.clock

        def write(s):  # stamp the console's output with the virtual time it was written at
            self._stamped.append((clock.now, s if isinstance(s, str) else s.decode()))
            return len(s)

        self.hw.stdio.write = write
        self._boot()

    @property
    def label(self) -> str:
        return "%s, %s, seed %s" % (self.board_cfg.get("name", "?"), self.machine_cfg["machine"],
                                    self.seed)

    def _collect(self):
        chunks, self._stamped = self._stamped, []
        rest = self.hw.stdio.take()  # written around the stamp (none expected)
        if rest:
            chunks.append((self.clock.now, rest))
        for t, text in chunks:
            n = len(self.log)
            self._take_text(text)
            for item in self.log[n:]:
                self.log_t.append(t / 1e6)
                if isinstance(item, dict) and "ok" in item and item.get("id") is not None:
                    self.reply_t.setdefault(item["id"], t / 1e6)

    def request(self, cmd: str, args: dict | None = None, log: bool = True) -> int:
        rid = super().request(cmd, args)
        if log:
            msg = {"id": rid, "cmd": cmd}
            if args:
                msg["args"] = args
            self.exchanges.append((self.now, msg))
        return rid

    def peek(self, cmd: str = "status", timeout: float = 10.0, **args) -> dict:
        """send() left out of `exchanges`: an observer's polls, not the test's own requests."""
        return self.wait_reply(self.request(cmd, args, log=False), timeout)

    def call(self, cmd: str, timeout: float = 60.0, **args) -> dict:
        """send(), raising CommandError with the board's error text when it refuses."""
        r = self.send(cmd, timeout=timeout, **args)
        if not r.get("ok"):
            raise CommandError(cmd, r)
        return r

    def console(self) -> list:
        """The board's lines that are not JSON (prints, tracebacks)."""
        return [x for x in self.log if isinstance(x, str)]

    # --- the raw REPL's exec, in process ---

    def exec(self, code: str, timeout: float = 10.0) -> str:
        """Run code in the board's MicroPython namespace (its `machine`, the firmware's loaded
        modules, its flash), as the raw REPL would; returns what it printed. The firmware's
        tasks wait meanwhile; time.sleep() in the code moves the board's clock. Raises
        microfab.device.BoardError with the board's traceback, as Device.exec does. (timeout:
        for a real board's exec; virtual time is not limited here.)"""
        self._collect()
        w = self.world
        w.modules.setdefault("vfs", _vfs_module(w))
        if self._globals is None:
            self._globals = {"__name__": "__main__", "__builtins__": w.builtins}
        root = str(w.root) + "/"
        errors = []

        def board_file(name):
            if name == "<stdin>":
                return name
            return name[len(root):] if name.startswith(root) else None

        def run():
            try:
                exec(compile(code, "<stdin>", "exec", dont_inherit=True), self._globals)
            except SystemExit:
                pass
            except self.machine.ResetRequest:
                raise  # machine.reset(): the board reboots, as _guarded does it
            except BaseException as e:
                errors.append(exception_text(e, board_file))

        boots, mark = self.boots, len(self._stamped)
        self._guarded(run)
        out = ""
        if self.boots == boots:
            out = "".join(text for _, text in self._stamped[mark:])
            del self._stamped[mark:]
        else:
            self._collect()  # the reset's boot: what printed before it went to the log
        if errors:
            from microfab.device import BoardError

            lines = errors[0].strip().splitlines()
            raise BoardError("the board raised %s" % lines[-1], out + errors[0])
        return out

    # --- handles on the models ---

    def power_cut(self, seconds: float = 0.0):
        """The supply drops: the firmware stops, the machine keeps its physical state (and its
        models run) for `seconds`, then the board starts again with reset cause power-on."""
        self._collect()
        self.hw.power_cycle(self.machine.PWRON_RESET)
        self.world.drop_firmware()
        self.cuts += 1
        if seconds > 0:
            self.sched.run_until(self.clock.now + int(seconds * 1e6))
        self._boot()

    def model(self, name: str):
        """A model as the machine's wiring registered it (b.hw.models[name])."""
        m = self.hw.models.get(name)
        if m is None:
            raise NoHandle("no model '%s' on this %s board; its models: %s" % (
                name, self.machine_cfg["machine"], ", ".join(self.hw.models) or "none"))
        return m

    def handles(self) -> list:
        return [n for n, (kinds, _) in HANDLES.items()
                if kinds is None or any(k in self.hw.models for k in kinds)]

    def handle(self, name: str):
        if name not in HANDLES:
            raise NoHandle("no handle '%s'; handles: %s" % (name, ", ".join(HANDLES)))
        kinds, make = HANDLES[name]
        if kinds is not None:
            have = [k for k in kinds if k in self.hw.models]
            if not have:
                raise NoHandle("the %s machine has no %s (that is the %s's); its handles: %s"
                               % (self.machine_cfg["machine"], name, " or ".join(kinds),
                                  ", ".join(self.handles())))
            return make(self, self.hw.models[have[0]])
        return make(self, None)

    def subject(self, name: str):
        """A handle, or a model by its name (axis, loom, carriage, ...), for scenarios."""
        if name not in HANDLES and name in self.hw.models:
            return self.hw.models[name]
        try:
            return self.handle(name)
        except NoHandle as e:
            raise NoHandle("%s; models: %s" % (e, ", ".join(self.hw.models) or "none")) from None

    heater = property(lambda self: self.handle("heater"))
    lid = property(lambda self: self.handle("lid"))
    drum = property(lambda self: self.handle("drum"))
    wind = property(lambda self: self.handle("wind"))
    battery = property(lambda self: self.handle("battery"))
    carriage = property(lambda self: self.handle("carriage"))
    pedal = property(lambda self: self.handle("pedal"))
    belt = property(lambda self: self.handle("belt"))
    power = property(lambda self: self.handle("power"))

    def solenoid(self, n: int):
        """Solenoid n: the loom's shaft n (1-based), the knitter's solenoid n (0-based)."""
        return self.handle("solenoid")(n)

    def model_state(self) -> dict:
        out = {}
        for name, m in self.hw.models.items():
            out[name] = m.status() if hasattr(m, "status") else repr(m)
        tele = self.telemetry("status")  # the machine's state; the totals are in status too
        if tele:
            out["last telemetry"] = tele[-1]
        return out


class _Handle:
    def __init__(self, board, model):
        self.b, self.model = board, model

    def status(self) -> dict:
        return self.model.status()


class Heater(_Handle):
    """The polyfloss drum's band heater and its thermocouple."""

    @property
    def state(self):
        """"on" while the band really heats (SSR and contactor both closed), else "off"."""
        self.model.sync()
        return "on" if self.model.heating else "off"

    @property
    def temp(self):
        return self.model.temp()

    def break_sensor(self):
        self.model.break_sensor()

    def short_sensor(self, to="gnd"):
        self.model.short_sensor(to)

    def freeze_sensor(self):
        self.model.freeze_sensor()

    def unplug_sensor(self):
        self.model.unplug_sensor()

    def heal_sensor(self):
        self.model.heal_sensor()

    def stick_ssr(self, stuck=True):
        self.model.stick_ssr(stuck)


class Lid(_Handle):
    @property
    def state(self):
        m = self.model
        return "closed" if m.lid_pin.read() == m.closed_level else "open"

    def open(self):
        self.model.open_lid()

    def close(self):
        self.model.close_lid()

    def status(self):
        return {"state": self.state}


class Drum(_Handle):
    @property
    def rpm(self):
        return self.model.rotor.rpm()

    def jam(self, on=True):
        self.model.sync()
        self.model.rotor.jam(on)

    def status(self):
        return {"rpm": self.rpm}


class Wind(_Handle):
    """The wind at the rig."""

    @property
    def speed(self):
        return self.model.wind.speed

    def gust(self, speed, seconds):
        """The wind is `speed` m/s for the next `seconds`, whatever it was."""
        self.model.wind.gust(speed, seconds)

    def status(self):
        return {"speed": self.speed, "base": self.model.wind.base}


class Battery(_Handle):
    @property
    def soc(self):
        self.model.look()
        return self.model.battery.soc

    def set_soc(self, soc):
        """Charge or drain the battery to `soc` (0..1) at once."""
        self.model.look()
        self.model.battery.soc = float(soc)
        self.model._refresh()

    def status(self):
        self.model.look()
        return self.model.battery.status()


class Carriage(_Handle):
    """The knitting machine's carriage, in a simulated knitter's hands."""

    def push(self, rows=1, speed_mm_s=300.0):
        """Across the bed `rows` times; returns the seconds until it is at rest."""
        return self.model.push(rows, speed_mm_s)

    def move_to(self, needle, speed_mm_s=300.0):
        return self.model.move_to(needle, speed_mm_s)

    def slip(self, needles):
        self.model.slip(needles)

    @property
    def passes(self):
        return len(self.model.passes)

    @property
    def position(self):
        return self.model.position()


class Pedal(_Handle):
    def press(self, hold_ms=300):
        self.model.press_pedal(hold_ms)

    @property
    def presses(self):
        return self.model.presses

    def status(self):
        return {"presses": self.presses}


class Belt(_Handle):
    """The axis' belt: slip(mm) moves the carriage without a step (a belt jumping a tooth)."""

    def slip(self, mm):
        m = self.model
        if m.cur is not None:
            raise ValueError("belt.slip() is for a carriage at rest")
        spm = self.b.hw.model.get("true_steps_per_mm", self.b.machine_cfg.get("steps_per_mm", 80.0))
        m.pos += int(round(mm * spm))
        m._sync_switches()  # the endstop sees the carriage where it now is

    @property
    def pos(self):
        return self.model.position()


class Power(_Handle):
    """The board's supply."""

    def cut(self, seconds=0.0):
        """Off now, for `seconds`; then a power-on reset."""
        self.b.power_cut(seconds)

    def cut_after_bytes(self, n):
        """Off once the firmware has written exactly n more bytes to its flash (a torn write;
        simulator/flashfaults.py); the board then starts again."""
        self.b.world.cut_power_after(n)

    @property
    def cuts(self):
        """Power cuts so far: cut() and cut_after_bytes() together."""
        flash = getattr(self.b.world, "flash", None)
        return self.b.cuts + (len(flash.cuts) if flash is not None else 0)

    def status(self):
        return {"cuts": self.cuts, "boots": self.b.boots}


class Solenoid:
    """One solenoid: stick() seizes it where it is (or on/off), unstick() frees it."""

    def __init__(self, board, model, n):
        self.b, self.model, self.n = board, model, n
        if hasattr(model, "solenoid"):  # the loom: one shaft per solenoid, 1-based
            if not 1 <= n <= len(model.shafts):
                raise ValueError("solenoid %r: the loom has shafts 1 to %d"
                                 % (n, len(model.shafts)))
        elif not 0 <= n < model.nsol:
            raise ValueError("solenoid %r: the knitter has solenoids 0 to %d" % (n, model.nsol - 1))

    def stick(self, on=None):
        m = self.model
        if hasattr(m, "solenoid"):
            m.solenoid(self.n).stick(on)
        else:
            m.stuck[self.n] = m.energised(self.n) if on is None else (1 if on else 0)

    def unstick(self):
        m = self.model
        if hasattr(m, "solenoid"):
            m.solenoid(self.n).unstick()
        else:
            m.stuck.pop(self.n, None)

    @property
    def stuck(self):
        m = self.model
        return m.solenoid(self.n).stuck if hasattr(m, "solenoid") else self.n in m.stuck

    def status(self):
        m = self.model
        if hasattr(m, "solenoid"):
            return m.solenoid(self.n).status()
        return {"stuck": self.stuck, "energised": m.energised(self.n)}


# name -> (models that have it, or None for every board; handle factory)
HANDLES = {
    "heater": (("polyfloss",), Heater),
    "lid": (("polyfloss",), Lid),
    "drum": (("polyfloss",), Drum),
    "wind": (("windrig",), Wind),
    "battery": (("windrig",), Battery),
    "carriage": (("carriage",), Carriage),
    "pedal": (("loom",), Pedal),
    "belt": (("axis",), Belt),
    "solenoid": (("loom", "carriage"), lambda b, m: lambda n: Solenoid(b, m, n)),
    "power": (None, Power),
}


def report_sections(target, exchanges: int = 12, lines: int = 20) -> list:
    """What a developer needs when a test on this board fails: (title, text) for the last
    protocol exchanges, the console and events, and the model state now."""
    name = getattr(target, "label", "board")
    log, log_t = target.log, target.log_t
    rows = [(t, 0, "-> " + json.dumps(msg)) for t, msg in target.exchanges[-exchanges:]]
    for t, msg in target.exchanges[-exchanges:]:
        r = target.replies.get(msg["id"])
        if r is not None:
            rows.append((target.reply_t.get(msg["id"], t), 1, "<- " + json.dumps(r)))
    rows.sort(key=lambda r: (r[0], r[1]))
    proto = "\n".join("%10.3f s  %s" % (t, _cut(text)) for t, _, text in rows) or "(none sent)"
    con = []
    for item, t in zip(log, log_t):
        if isinstance(item, str):
            con.append("%10.3f s  %s" % (t, item))
        elif "event" in item:
            con.append("%10.3f s  event %s" % (t, _cut(json.dumps(item))))
    state = target.model_state()
    body = "\n".join("%s: %s" % (k, json.dumps(v, default=repr)) for k, v in state.items())
    return [("%s: last %d exchanges" % (name, exchanges), proto),
            ("%s: console and events" % name, "\n".join(con[-lines:]) or "(nothing)"),
            ("%s: model state at %.3f s" % (name, target.now), body or "(no models)")]


def _cut(text, n=600):
    return text if len(text) <= n else text[:n] + " ... (%d more characters)" % (len(text) - n)
