"""pytest plugin for people who build a machine on microfab: the same tests on the simulator and
on the board on the bench.

    def test_homes(sim_board):
        b = sim_board(machine="axis", config={"max_pos": 300.0})
        assert b.call("home")["pos"] == 0.0

    pytest                          # simulated boards, virtual time
    pytest --port /dev/ttyACM0      # the same tests on the real board; sim_only tests skipped

Fixtures: sim_board (factory), mqtt_broker, collector. Markers: sim_only (fault injection, skipped
on a real board), hil (only with --port/--board). A failing test's report shows each board's
last exchanges, console lines and model state. scenarios/*.toml under the rootdir are collected as
tests (microfab_sim.scenario). Registered as the `microfab` pytest11 entry point; without it,
load with `-p microfab.pytest_plugin`. docs/devkit.md has it all.
"""
from __future__ import annotations

import errno
import fnmatch
import json
import os
import time

import pytest

from microfab_sim.board import LineLog
from microfab_sim.devboard import HANDLES, CommandError, DevBoard, report_sections
from microfab_sim import scenario

BOARDS = pytest.StashKey[list]()
BENCH = pytest.StashKey[object]()

__all__ = ["BenchBoard", "CommandError", "DevBoard"]


def pytest_addoption(parser):
    g = parser.getgroup("microfab", "microfab boards")
    g.addoption("--port", dest="microfab_port", metavar="PORT",
                help="run the sim_board tests on the real board at this serial port "
                     "(sim_only tests are skipped, hil tests run)")
    g.addoption("--board", dest="microfab_board", metavar="NAME",
                help="as --port, for a board named with `microfab boards --name`")
    parser.addini("microfab_scenarios", "scenario files collected as tests, a glob relative to "
                  "the rootdir", default="scenarios/*.toml")


def pytest_configure(config):
    config.addinivalue_line("markers", "sim_only: needs the simulator (fault injection on its "
                            "models); skipped when the tests run on a real board (--port)")
    config.addinivalue_line("markers", "hil: runs on a real board given with --port or --board; "
                            "skipped without")
    port, name = config.getoption("microfab_port"), config.getoption("microfab_board")
    if port and name:
        raise pytest.UsageError("give --port or --board, not both")
    if name:
        from microfab import ports

        try:
            port = ports.resolve(name).port
        except ports.PortError as e:
            raise pytest.UsageError("--board %s: %s" % (name, e)) from None
    if port:
        _check_rootdir(config, port)
        config.stash[BENCH] = Bench(port, name)


def _check_rootdir(config, port):
    # pytest looks for the rootdir before plugins add their options, so in `--port /dev/ttyACM0`
    # it takes /dev/ttyACM0 for a test path: the rootdir becomes /dev (or /), and the project's
    # pytest settings and scenarios/ are missed. `--port=/dev/ttyACM0` is one argument.
    args = list(config.invocation_params.args)
    split = any(a == "--port" and i + 1 < len(args) and os.path.exists(args[i + 1])
                for i, a in enumerate(args))
    if split and os.path.realpath(port).startswith(str(config.rootpath).rstrip("/") + "/"):
        raise pytest.UsageError("write --port=%s (with '='): given as two arguments, pytest "
                                "takes %s for a test path and looks for the project's settings "
                                "from %s" % (port, port, config.rootpath))


def pytest_unconfigure(config):
    bench = config.stash.get(BENCH, None)
    if bench is not None:
        bench.close()


def pytest_report_header(config):
    bench = config.stash.get(BENCH, None)
    if bench is not None:
        return ("microfab: tests run on the real board at %s; sim_only tests are skipped"
                % bench.where)
    return None


def pytest_runtest_setup(item):
    bench = item.config.stash.get(BENCH, None)
    if bench is not None and item.get_closest_marker("sim_only"):
        pytest.skip("sim_only: needs the simulator's models (fault injection); the tests run on "
                    "the real board at %s" % bench.where)
    if bench is None and item.get_closest_marker("hil"):
        pytest.skip("hil: needs a real board: run with --port PORT or --board NAME")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed:
        for b in item.stash.get(BOARDS, []):
            try:
                sections = report_sections(b)
            except Exception as e:  # a report must never hide the failure it reports
                sections = [("board", "could not describe the board: %s: %s"
                             % (type(e).__name__, e))]
            for title, text in sections:
                rep.sections.append(("microfab " + title, text))
    return rep


# --- fixtures ---


class Made(list):
    """What a factory fixture made for one test, to close after it: make returns made.add(x),
    the fixture ends with made.close()."""

    def add(self, thing):
        self.append(thing)
        return thing

    def close(self):
        for thing in self:
            thing.close()


def start_broker(required: bool = False):
    """A private Mosquitto started for a test (microfab.broker.Mosquitto). Without mosquitto on
    the machine the test is skipped, or fails if `required` (a project whose CI must not pass
    without the broker)."""
    from microfab.broker import BrokerError, Mosquitto

    try:
        return Mosquitto()
    except BrokerError as e:
        if required:
            pytest.fail(str(e), pytrace=False)
        pytest.skip("mqtt_broker: %s" % e)


@pytest.fixture
def sim_board(request):
    """Factory: sim_board(board="pico", machine="axis", config=None, calib=None, seed=0,
    model=None) -> a running board. A simulated one (microfab_sim.devboard.DevBoard), or with
    --port the real one behind the same interface (BenchBoard)."""
    bench = request.config.stash.get(BENCH, None)
    made = Made()
    request.node.stash[BOARDS] = made

    def make(board="pico", machine="axis", config=None, calib=None, seed=0, model=None, **kw):
        if bench is not None:
            if made:
                raise pytest.UsageError("a test gets one real board; this one asked for a second")
            b = bench.board(machine, config)
        else:
            b = DevBoard(board=board, machine=machine, config=config, calib=calib, seed=seed,
                         model=model, **kw)
        return made.add(b)

    yield make
    made.close()


@pytest.fixture
def mqtt_broker():
    """A Mosquitto of the test's own on a free loopback port (microfab.broker.Mosquitto):
    .url, .stop(), .restart(); skipped where mosquitto is not installed."""
    broker = start_broker()
    yield broker
    broker.close()


@pytest.fixture
def collector(mqtt_broker, tmp_path):
    """A started microfab.collector.Collector on mqtt_broker, storing into a fresh SQLite file;
    .records(device), .count(), .flush(); stopped after the test."""
    try:
        from microfab.collector import Collector
    except ImportError as e:
        pytest.skip("collector needs microfab.collector (host/collector.py): %s" % e)
    c = Collector(mqtt_broker.url, tmp_path / "telemetry.sqlite")
    c.start()
    yield c
    c.stop()
    c.close()


# --- the board on the bench ---


class Bench:
    """The real board given with --port/--board: one Device, opened when a test first needs it."""

    def __init__(self, port: str, name: str | None = None):
        self.port = port
        self.where = "%s (%s)" % (port, name) if name else port
        self.device = None

    def board(self, machine: str, config: dict | None):
        from microfab.device import Device, DeviceError, explain_open_error

        if self.device is None:
            try:
                if not os.path.exists(self.port):
                    raise explain_open_error(self.port, FileNotFoundError(errno.ENOENT, self.port))
                self.device = Device(self.port).connect()
            except DeviceError as e:
                pytest.fail("--port %s: %s" % (self.port, e), pytrace=False)
        d = self.device
        hello = d.request("hello", timeout=10, resend=1.0)
        if hello.get("machine") != machine:
            pytest.skip("the board at %s runs the %r machine; this test is for %r"
                        % (self.where, hello.get("machine"), machine))
        if config:
            have = d.request("config", timeout=10).get("machine") or {}
            # Pins are the simulator's wiring in a test; the bench board has its own.
            differ = ["%s is %s there, %s here" % (k, json.dumps(have.get(k)), json.dumps(v))
                      for k, v in sorted(config.items())
                      if not (k.endswith("pins") or k.endswith("_pin")) and have.get(k) != v]
            if differ:
                pytest.skip("the board at %s runs another config: %s (deploy the test's config, "
                            "or mark the test sim_only)" % (self.where, "; ".join(differ)))
        return BenchBoard(d, "%s, %s" % (self.where, machine))

    def close(self):
        if self.device is not None:
            self.device.close()
            self.device = None


class BenchBoard(LineLog):
    """A real board behind sim_board's interface: send/call through the JSON-line protocol,
    exec through the raw REPL, advance() is real time, telemetry is what the board sent.
    lines() and telemetry() come from LineLog, as for the simulated boards."""

    def __init__(self, device, label: str):
        self.dev = device
        self.label = label
        self.t0 = time.monotonic()
        self.log: list = []
        self.log_t: list = []
        self.exchanges: list = []
        self.replies: dict = {}
        self.reply_t: dict = {}
        self._buf = b""

    @property
    def now(self) -> float:
        """Seconds since the test took the board (wall time)."""
        return time.monotonic() - self.t0

    def _note(self, item):
        self.log.append(item)
        self.log_t.append(self.now)

    def _events(self):
        for ev in self.dev.events:
            self._note(ev)
        self.dev.events.clear()

    def send(self, cmd: str, timeout: float = 10.0, **args) -> dict:
        msg = {"id": self.dev._next_id + 1, "cmd": cmd}  # the id Device.request gives it
        if args:
            msg["args"] = args
        self.exchanges.append((self.now, msg))
        try:
            r = self.dev.request(cmd, args or None, timeout=timeout)
        finally:
            self._events()
        self.replies[r["id"]] = r
        self.reply_t[r["id"]] = self.now
        self._note(r)
        return r

    def call(self, cmd: str, timeout: float = 10.0, **args) -> dict:
        r = self.send(cmd, timeout=timeout, **args)
        if not r.get("ok"):
            raise CommandError(cmd, r)
        return r

    def exec(self, code: str, timeout: float = 10.0) -> str:
        """Through the raw REPL: this stops the firmware; the next send() or advance() starts it
        again with a soft reset, as after mpremote."""
        return self.dev.exec(code, timeout=timeout)

    def advance(self, seconds: float):
        """Let `seconds` of real time pass, reading what the board sends meanwhile."""
        d = self.dev
        if d.t.in_raw_repl:
            d.start()
        s = d.serial
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._buf += s.read(s.in_waiting or 1)
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                try:
                    item = json.loads(line) if line.startswith("{") else line
                except ValueError:
                    item = line
                if isinstance(item, dict) and "ok" in item and item.get("id") is not None:
                    self.replies[item["id"]] = item
                if item != "":
                    self._note(item)

    def console(self) -> list:
        return [x for x in self.log if isinstance(x, str)]

    def model_state(self) -> dict:
        try:
            st = self.dev.request("status", timeout=2)
        except Exception as e:  # the board may be what failed
            return {"status": "no answer: %s" % e}
        return {"status (asked after the failure)": st}

    def _sim_only(self, name):
        pytest.fail("%s is fault injection on the simulator's models, which a real board does "
                    "not have: mark the test @pytest.mark.sim_only" % name, pytrace=False)

    def solenoid(self, n):
        self._sim_only("solenoid(%r)" % (n,))

    def model(self, name):
        self._sim_only("model(%r)" % (name,))

    def close(self):
        # Leave the machine safe whatever the test did: heaters off, motors stopped.
        try:
            self.dev.request("stop", timeout=3)
        except Exception:
            pass


for _name in HANDLES:
    if _name != "solenoid":
        setattr(BenchBoard, _name, property(lambda self, n=_name: self._sim_only(n)))
for _name in ("hw", "axis", "world", "clock"):
    setattr(BenchBoard, _name, property(lambda self, n=_name: self._sim_only(n)))


# --- scenario files as tests ---


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".toml":
        return None
    try:
        rel = file_path.relative_to(parent.config.rootpath).as_posix()
    except ValueError:
        return None
    if fnmatch.fnmatch(rel, parent.config.getini("microfab_scenarios")):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioFailed(Exception):
    def __init__(self, result):
        super().__init__("scenario failed")
        self.result = result


class ScenarioItem(pytest.Item):
    """One scenario file, run on a simulated board (also with --port: scenarios are virtual
    time and fault injection by nature)."""

    def runtest(self):
        rel = os.path.relpath(self.path)  # as the maker wrote it: scenarios/x.toml
        res = scenario.run(self.path if rel.startswith("..") else rel)
        if not res.passed:
            raise ScenarioFailed(res)

    def repr_failure(self, excinfo, style=None):
        e = excinfo.value
        if isinstance(e, ScenarioFailed):
            return e.result.report(details=True)
        if isinstance(e, scenario.ScenarioError):
            return "bad scenario file: %s" % e
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "scenario %s" % self.path.name
