"""The `microfab` command line as a maker meets it: exit codes and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def run(*args):
    return subprocess.run([sys.executable, "-m", "microfab.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_pattern_show_json_for_a_loom():
    r = run("pattern", "show", str(DATA / "point_twill_8.wif"), "--machine", "loom", "--json")
    assert r.returncode == 0
    picks = json.loads(r.stdout)["picks"]
    assert picks[0] == [1, 2, 3, 5] and all(1 <= s <= 8 for p in picks for s in p)


def test_pattern_show_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.wif"
    bad.write_text("[WIF]\nVersion=1.1\n[WEAVING]\nShafts=8\n[TIEUP]\n1=1,9\n[TREADLING]\n1=1\n")
    r = run("pattern", "show", str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "bad.wif" in r.stderr and "Traceback" not in r.stderr


def test_pattern_for_the_wrong_machine_is_refused():
    r = run("pattern", "show", str(DATA / "point_twill_8.wif"), "--machine", "knitter")
    assert r.returncode == 2 and "loom pattern, not one for a knitter" in r.stderr


def test_no_board_is_a_clear_error_not_a_traceback(tmp_path):
    env_home = {"XDG_RUNTIME_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    import os

    r = subprocess.run([sys.executable, "-m", "microfab.cli", "status", "--port", "/dev/nonexistent-tty"],
                       capture_output=True, text=True, env={**os.environ, **env_home}, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "neither a serial port nor a board name" in r.stderr


def test_demo_runs_a_job_and_reports_no_lost_steps():
    r = run("demo", "--speed", "0", "--cycles", "2")
    assert r.returncode == 0, r.stderr
    assert "job done: 4 moves" in r.stdout and ", 0 lost" in r.stdout
