# The driver inside the MicroPython VM, called by runner.mjs: handle() takes one JSON request and
# returns a JSON string, step() runs one deadline of virtual time. MicroPython only (CPython never
# imports it): it swaps `time`, `asyncio` and `machine` for the virtual board's modules in
# sys.modules, builds the vboard.Board, runs boot.py and main.py from the flash folder as a board
# does on reset, and then runs virtual time for the host, event by event.
#
# The heap: this port collects garbage only when control is back in JavaScript (a gc.collect()
# in Python just asks for it), so the heap figures that count are taken by the runner between
# calls; see runner.mjs.
import binascii
import gc
import json
import sys

import vclock
import vasyncio
import vmachine
import vstepper
import vboard

ALIASES = {"time": vclock, "utime": vclock, "asyncio": vasyncio, "uasyncio": vasyncio,
           "machine": vmachine}

hw = None  # the vboard.Board
boots = 0
keep = None  # sys.modules names that survive a reset: the simulator's, not the firmware's
mem = {"peak": 0, "boot_alloc": None}
peak_mode = 0  # 1: mem_alloc() then gc.collect() after every step, see step()
_out = []  # firmware output taken from the board's USB serial, not yet handed to the host
_partial = ""  # output after the last newline, not yet scanned for replies
_replied = set()  # request ids whose reply the firmware has written


def _install():
    for name in ALIASES:
        sys.modules[name] = ALIASES[name]


def _print(*args, sep=" ", end="\n", file=None):
    # print() on a board goes to the USB serial, as in microfab_sim.world; before a board exists
    # the VM's own stdout (the runner's console, never the protocol) is the only console.
    text = sep.join([str(a) for a in args]) + end
    out = file or vmachine.stdio
    if out is None:
        sys.stdout.write(text)
    else:
        out.write(text)


def _take():
    # Move the firmware's output to _out, noting the ids of the replies in it.
    global _partial
    if hw is None:
        return
    text = hw.stdio.take()
    if not text:
        return
    _out.append(text)
    lines = (_partial + text).split("\n")
    _partial = lines.pop()
    for line in lines:
        if line.startswith("{") and '"ok"' in line:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and "ok" in msg and msg.get("id") is not None:
                _replied.add(msg["id"])


def _run_scripts():
    for name in ("boot.py", "main.py"):
        try:
            f = open(name)
        except OSError:
            continue
        with f:
            src = f.read()
        g = {"__name__": "__main__", "__file__": name}
        code = compile(src, name, "exec")
        src = None
        exec(code, g)


def _drop_firmware():
    for name in list(sys.modules):
        if name not in keep:
            del sys.modules[name]


def _guarded(fn, arg):
    # A ResetRequest unwinds the firmware from wherever it was: power-cycle the board model,
    # forget every firmware module, run boot.py and main.py again (after microfab_sim.board).
    global boots
    while True:
        try:
            fn(arg)
            return
        except vmachine.ResetRequest as r:
            _take()
            hw.power_cycle(r.cause)
            _drop_firmware()
            boots += 1
            vasyncio.horizon = vclock.now
            fn = _boot_scripts
            arg = None


def _boot_scripts(_):
    _run_scripts()


def step(limit, rid):
    """One deadline: the task steps and hardware events due at the next deadline, if it is not
    past `limit` (us). Called from JavaScript, once per deadline, so that the VM's garbage
    collection (which this port runs only when control is back at the top level) happens
    between steps as it would between them on a board. Returns 0 to go on, 1 when the reply to
    `rid` is out, 2 when virtual time stands at `limit`; plus 4 when there is output to drain()."""
    limit = int(limit)  # a string from JavaScript: its integers convert with 32 bits only
    if isinstance(rid, float):
        rid = int(rid)
    t = vasyncio.next_deadline()
    if t is None or t > limit:
        _guarded(vasyncio.run_until, limit)
        status = 1 if rid is not None and _scan(rid) else 2
    else:
        _guarded(vasyncio.run_until, t)
        status = 1 if rid is not None and _scan(rid) else 0
    if peak_mode:
        # The garbage of the last step was collected on the way out of it: what is allocated now
        # is what stayed live plus everything this step allocated, an upper bound of its peak.
        a = gc.mem_alloc()
        if a > mem["peak"]:
            mem["peak"] = a
        gc.collect()  # runs when this call returns to JavaScript
    if status == 1:
        _replied.discard(rid)
    _take()
    return status + 4 if _out else status


def drain():
    """The firmware's output since the last drain, handed to JavaScript (out of this heap)."""
    text = "".join(_out)
    _out.clear()
    return text


def _scan(rid):
    _take()
    return rid in _replied


def _state(extra=None):
    _take()
    out = {"t_us": vclock.now, "boots": boots, "out": drain(), "next": vasyncio.next_deadline()}
    if extra:
        out.update(extra)
    return out


# --- requests ---

def op_wire(req):
    """Wire the board (its pins, models and serial): the simulator alone, no firmware yet."""
    global hw, keep, peak_mode, _partial
    _install()
    vclock.reset()
    vasyncio.reset()
    peak_mode = 1 if req.get("peak") else 0
    hw = vboard.Board(req["board"], req["machine"], req.get("model"), req.get("seed", 0))
    keep = set(sys.modules)
    _partial = ""
    _replied.clear()
    gc.collect()
    return {"ok": True}


def op_power(req):
    """Power on: boot.py, then main.py, which starts the firmware's tasks and returns at the
    scheduler's horizon (now)."""
    global boots
    boots = 1
    vasyncio.horizon = vclock.now
    _guarded(_boot_scripts, None)
    mem["boot_alloc"] = gc.mem_alloc()  # before any collection: all boot allocated, garbage too
    gc.collect()
    return _state()


def op_state(req):
    return _state()


def op_feed(req):
    # bytes for the board's USB serial: "hex" (any bytes) or "data" (text, sent as UTF-8)
    hw.stdio.feed(binascii.unhexlify(req["hex"]) if "hex" in req else req["data"].encode())
    return _state()


def op_reset(req):
    """The reset button."""
    global boots
    _take()
    hw.power_cycle(vmachine.HARD_RESET)
    _drop_firmware()
    boots += 1
    vasyncio.horizon = vclock.now
    _guarded(_boot_scripts, None)
    gc.collect()
    return _state()


def op_mem(req):
    return {"peak": mem["peak"], "peak_sampled": bool(peak_mode), "boot_alloc": mem["boot_alloc"]}


def op_peak(req):
    """Set the peak (JavaScript measures the baseline and boot figures at the top level)."""
    mem["peak"] = max(mem["peak"], req["at_least"])
    return {"peak": mem["peak"]}


def op_axis(req):
    """The motor model's truth (position in steps, lost steps, stalls)."""
    a = getattr(hw, "axis", None)
    return {"axis": a.status() if a is not None else None}


def op_eval(req):
    # For tests and debugging: an expression evaluated with the vm modules in scope.
    g = {"hw": hw, "vclock": vclock, "vasyncio": vasyncio, "vmachine": vmachine,
         "vstepper": vstepper, "vboard": vboard, "sys": sys, "gc": gc}
    value = eval(req["expr"], g)
    try:
        json.loads(json.dumps(value))  # MicroPython's dumps writes a repr() for other objects
    except (TypeError, ValueError):
        value = repr(value)
    return {"value": value}


OPS = {"wire": op_wire, "power": op_power, "state": op_state, "feed": op_feed,
       "reset": op_reset, "mem": op_mem, "peak": op_peak, "axis": op_axis, "eval": op_eval}


def handle(line):
    """One request line in, one JSON reply string out; a Python error becomes {"error": ...}."""
    try:
        req = json.loads(line)
        fn = OPS.get(req.get("op"))
        if fn is None:
            raise ValueError("unknown op %r; expected one of %s" % (req.get("op"), sorted(OPS)))
        return json.dumps(fn(req))
    except BaseException as e:  # everything goes back to the host; nothing may kill the VM
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        try:
            _take()
            out = "".join(_out)
            _out.clear()
        except BaseException:
            out = ""
        return json.dumps({"error": "%s: %s" % (type(e).__name__, e), "trace": buf.getvalue(),
                           "out": out})


import builtins  # noqa: E402

builtins.print = _print
