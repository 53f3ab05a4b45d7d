"""A private Mosquitto broker on a free loopback port: for tests, benchmarks and trying the
collector on one computer. A fleet uses the workshop's own broker; this one is thrown away.

    with Mosquitto() as broker:
        Collector(broker.url, "telemetry.db").start()
        broker.restart()  # same port; sessions and queued messages kept (persistence on)
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


# MQTT 3.1.1 CONNECT: clean session, keepalive 5 s, empty client id (the broker names it).
_PROBE = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x05\x00\x00"


class BrokerError(Exception):
    """The broker could not be started; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_mosquitto() -> str:
    # Debian installs it in /usr/sbin, which is not on a normal user's PATH.
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not path:
        raise BrokerError("the mosquitto broker is not installed: `sudo apt-get install mosquitto` "
                          "(Debian, Ubuntu, Raspberry Pi OS) or `brew install mosquitto` (macOS)")
    return path


class Mosquitto:
    """mosquitto on 127.0.0.1:port (a free one unless given) with a config of its own in a temp
    folder. persistence: sessions, subscriptions and queued QoS 1 messages are saved there on a
    clean stop and read back on start, so restart() acts like a real broker's restart.
    options: extra mosquitto.conf lines as {name: value}, e.g. {"max_queued_messages": 0}."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", persistence: bool = True,
                 options: dict | None = None, start: bool = True):
        self.binary = find_mosquitto()
        self.host = host
        self.port = port or free_port(host)
        self._fixed_port = port is not None
        self.persistence = persistence
        self.options = dict(options or {})
        self.dir = Path(tempfile.mkdtemp(prefix="microfab-mosquitto-"))
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        if start:
            try:
                self.start()
            except BaseException:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise

    @property
    def url(self) -> str:
        return "mqtt://%s:%d" % (self.host, self.port)

    @property
    def log(self) -> str:
        """What the broker wrote to its log (errors, warnings, notices)."""
        try:
            return (self.dir / "mosquitto.log").read_text(errors="replace")
        except OSError:
            return ""

    def _config(self) -> str:
        lines = ["listener %d %s" % (self.port, self.host), "allow_anonymous true",
                 "log_dest stderr", "log_type error", "log_type warning", "log_type notice",
                 "persistence %s" % ("true" if self.persistence else "false")]
        if self.persistence:
            lines += ["persistence_location %s/" % self.dir, "autosave_interval 0"]
        if os.geteuid() == 0:
            # Run as root, mosquitto would switch to the user 'mosquitto', which cannot write
            # the persistence file into our private temp folder.
            lines.append("user %s" % pwd.getpwuid(0).pw_name)
        for name, value in self.options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append("%s %s" % (name, value))
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        if self.running:
            return self
        for attempt in range(5):
            conf = self.dir / "mosquitto.conf"
            conf.write_text(self._config())
            with open(self.dir / "mosquitto.log", "ab") as log:
                self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.dir,
                                             start_new_session=True)
            if self._wait_ready(timeout):
                self.starts += 1
                return self
            gone = self.proc.poll() is not None
            self._kill()
            if gone and "Address already in use" in self.log and not self._fixed_port \
                    and self.starts == 0:
                self.port = free_port(self.host)  # taken between our probe and its bind
                continue
            if gone and "Address already in use" in self.log and self.starts:
                time.sleep(0.2 * (attempt + 1))  # a restart: the old socket may linger
                continue
            break
        raise BrokerError("mosquitto did not start on %s:%d; its log ends with:\n%s"
                          % (self.host, self.port, self.log[-600:]))

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                # A CONNACK, not just an open port: another program may hold the port.
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(_PROBE)
                    if s.recv(4)[:1] == b"\x20":
                        s.sendall(b"\xe0\x00")  # DISCONNECT
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False, timeout: float = 10.0):
        """Stop the broker. A clean stop (SIGTERM) saves the persistence file; kill=True
        (SIGKILL) is a crash: whatever it had not saved is gone."""
        if not self.running:
            self.proc = None
            return
        if kill:
            self._kill()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        self.proc = None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.0, kill: bool = False) -> "Mosquitto":
        """Stop, stay down for down_s seconds, start again on the same port."""
        self.stop(kill=kill)
        if down_s:
            time.sleep(down_s)
        return self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Mosquitto(%s, %s)" % (self.url, "running" if self.running else "stopped")
