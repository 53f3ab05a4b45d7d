import os
import uuid

import pytest

from microfab.pytest_plugin import Made, start_broker
from microfab_sim.board import SimBoard


@pytest.fixture
def make_board():
    """SimBoard factory (seed 1 unless given); every board made is closed after the test."""
    made = Made()
    yield lambda **kw: made.add(SimBoard(**dict({"seed": 1}, **kw)))
    made.close()


@pytest.fixture
def board(make_board):
    return make_board()


@pytest.fixture
def homed(make_board):
    b = make_board()
    assert b.send("home")["ok"]
    return b


class SerialSim:
    """A simulated board served on a pty by `python -m microfab_sim.serial_port`."""

    def __init__(self, proc, port, flash, errlog):
        self.proc, self.port, self.flash, self.errlog = proc, port, flash, errlog

    def stop(self):
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture
def serial_sim(tmp_path):
    """Factory: serial_sim(*extra_args) -> SerialSim; every one is stopped after the test."""
    import subprocess
    import sys

    made = []

    def start(*args, name="sim"):
        flash, errlog = tmp_path / (name + "-flash"), tmp_path / (name + "-stderr.txt")
        with errlog.open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "microfab_sim.serial_port",
                                     "--root", str(flash), *args],
                                    stdout=subprocess.PIPE, stderr=err, text=True)
        first = proc.stdout.readline()
        assert first.startswith("port: "), first + errlog.read_text()
        sim = SerialSim(proc, first.split(": ", 1)[1].strip(), flash, errlog)
        made.append(sim)
        return sim

    yield start
    for sim in made:
        sim.stop()


@pytest.fixture
def mosquitto():
    """A private Mosquitto on a free loopback port (persistence in a temp folder, so
    `mosquitto.restart()` keeps sessions); `mosquitto.url` is mqtt://127.0.0.1:PORT. Without
    mosquitto installed the test fails, not skips: CI must not pass without the broker."""
    broker = start_broker(required=True)
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def mosquitto_module():
    """The same, shared by the tests of one module."""
    broker = start_broker(required=True)
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def flash(tmp_path_factory):
    """A Pico's flash folder with the firmware installed, shared (read-only) by driver tests."""
    import microfab_boards
    from microfab_sim.board import install_firmware

    root = tmp_path_factory.mktemp("flash")
    install_firmware(root, microfab_boards.load("pico"), {"machine": "axis"})
    return root


@pytest.fixture
def world(flash):
    """A board's module world with the virtual hardware only (no machine wired), clock at 0:
    load a driver with world.get("fab.drivers.x") and its model with world.get("vmodel")."""
    import microfab_boards
    from microfab_sim.world import World

    w = World(flash)
    w.modules["vclock"].reset()
    w.modules["vasyncio"].reset()
    w.board = w.modules["vboard"].Board(microfab_boards.load("pico"), {"machine": "none"}, seed=1)
    return w


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for the test (dropped after it), when a server is reachable:
    $MICROFAB_TEST_PG or the local one with trust auth; skips otherwise."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    base = os.environ.get("MICROFAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.Error as e:
        pytest.skip("no PostgreSQL server reachable at %s: %s" % (base, str(e).strip()[:120]))
    name = "microfab_test_" + uuid.uuid4().hex[:10]
    admin.execute("CREATE DATABASE %s" % name)
    yield base.rsplit("/", 1)[0] + "/" + name
    admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    admin.close()
