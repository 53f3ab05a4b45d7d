"""Scenario files: a scripted run of a simulated board, written in TOML instead of Python.

    python -m microfab_sim.scenario scenarios/polyfloss_sensor_break.toml   # exit 0 pass, 1 fail

A scenario names the board and the machine, the machine's config and the model's settings,
commands and faults at given virtual times, and expectations such as
`heater.state == "off" within 1s of sensor_break`. docs/devkit.md has the syntax; the pytest
plugin (microfab.pytest_plugin) collects scenarios/*.toml as tests. The board is a
microfab_sim.devboard.DevBoard, the plugin's `sim_board`.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
import tomllib
from pathlib import Path

from .devboard import DevBoard, NoHandle, report_sections

# --- scenario files ---


class ScenarioError(ValueError):
    """A scenario file that cannot run; says where and what was expected."""


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DUR = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h|d)?\s*$")
_TOP = {"name", "board", "machine", "seed", "duration", "poll", "calib", "config", "model",
        "command", "fault", "expect"}
_KEYS = {"command": {"at", "send", "args", "name", "expect_ok"}, "fault": {"at", "do", "name"}}
_WHEN = (("within", re.compile(r"^(.+?)\s+within\s+(\S+)\s+of\s+([A-Za-z_][\w-]*)\s*$")),
         ("from", re.compile(r"^(.+?)\s+from\s+(\S+)\s+to\s+(\S+)\s*$")),
         ("at", re.compile(r"^(.+?)\s+at\s+(\S+)\s*$")),
         ("by", re.compile(r"^(.+?)\s+by\s+(\S+)\s*$")))
_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_WORDS = {"true": True, "false": False, "null": None, "none": None}
SUBJECT_ROOTS = ("status", "telemetry", "reply", "events", "board")


def _duration(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value), None
    m = _DUR.match(value) if isinstance(value, str) else None
    if m is None:
        return None, ("%r is not a duration: expected seconds (90) or a number with ms, s, min, "
                      "h or d, like \"90s\" or \"2h\"" % (value,))
    return float(m.group(1)) * _UNITS[m.group(2) or "s"], None


def duration(value, where: str = "duration") -> float:
    """Seconds from 90, 1.5, "90s", "500ms", "2min" (or "2m"), "2h", "1d"."""
    t, msg = _duration(value)
    if msg:
        raise ScenarioError("%s: %s" % (where, msg))
    return t


def fmt_t(t: float) -> str:
    return ("%.3f" % t).rstrip("0").rstrip(".") + " s"


class _Vs:
    def __init__(self, left, right):
        self.left, self.right = left, right


def show(v) -> str:
    if isinstance(v, _Vs):
        return "%s against %s" % (show(v.left), show(v.right))
    if isinstance(v, float):
        return "%.1f" % v if v == int(v) and abs(v) < 1e15 else "%.6g" % v
    return json.dumps(v, default=repr)


class Expect:
    def __init__(self, text, line, kind, cond, times, event):
        self.text, self.line, self.kind, self.cond = text, line, kind, cond
        self.times, self.event = times, event  # (t0, t1): in seconds; event: name or None
        self.ok = None  # None: undecided
        self.observed = None
        self.t = None
        self.checks = 0

    def describe(self) -> str:
        v = show(self.observed)
        if self.ok and self.kind in ("within", "by"):
            rel = "" if not self.event else " (%s after %s)" % (
                fmt_t(self.t - self.times[0]), self.event)
            return "%s at %s%s" % (v, fmt_t(self.t), rel)
        if self.ok and self.kind == "from":
            return "held at all %d checks" % self.checks
        if self.ok is False and self.kind in ("within", "by"):
            return "not met from %s to %s; last seen %s at %s" % (
                fmt_t(self.times[0]), fmt_t(self.times[1]), v, fmt_t(self.t or self.times[1]))
        return "%s at %s" % (v, fmt_t(self.t if self.t is not None else self.times[0]))


class Scenario:
    """A parsed scenario file; load() checks everything that can be checked before running."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.text = self.path.read_text()
        except OSError as e:
            raise ScenarioError("%s: cannot read it: %s" % (path, e.strerror or e)) from None
        self.lines = self.text.splitlines()
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError("%s: not valid TOML: %s" % (path, e)) from None
        self._load(data)

    # where things are in the file, for the errors
    def _line(self, key=None, table=None, index=0, needle=None) -> int | None:
        start, end = 0, len(self.lines)
        if table is not None:
            heads = [i for i, s in enumerate(self.lines)
                     if re.match(r"\s*\[\[?\s*%s\s*\]\]?\s*(#.*)?$" % re.escape(table), s)]
            if index < len(heads):
                start = heads[index]
                nxt = [i for i, s in enumerate(self.lines)
                       if i > start and re.match(r"\s*\[\[?\s*[A-Za-z_]", s)]
                end = nxt[0] if nxt else len(self.lines)
        for i in range(start, end):
            s = self.lines[i]
            if needle is not None and needle in s:
                return i + 1
            if needle is None and key is not None and re.match(r"\s*%s\s*=" % re.escape(key), s):
                return i + 1
        return start + 1 if table is not None else None

    def error(self, what, msg, **where):
        line = self._line(**where)
        at = ", line %d" % line if line else ""
        return ScenarioError("%s%s (%s): %s" % (self.path, at, what, msg))

    def _load(self, d):
        for k in d:
            if k not in _TOP:
                hint = ""
                if k in _KEYS["command"] | _KEYS["fault"]:
                    hint = " (%s belongs in a [[command]] or [[fault]] table)" % k
                raise self.error("key '%s'" % k, "unknown key; a scenario has %s%s"
                                 % (", ".join(sorted(_TOP)), hint), key=k)
        self.name = self._typed(d, "name", str, self.path.stem)
        self.board = self._typed(d, "board", str, "pico")
        self.machine = self._typed(d, "machine", str, "axis")
        self.seed = self._typed(d, "seed", int, 0)
        self.config = self._typed(d, "config", dict, {})
        self.model = self._typed(d, "model", dict, {})
        self.calib = self._typed(d, "calib", dict, None)
        if "machine" in self.config:
            raise self.error("[config] key 'machine'", "the machine is named at the top "
                             "(machine = \"...\"); [config] holds its settings", key="machine",
                             table="config")
        self.poll = None
        if "poll" in d:
            self.poll = self._dur(d["poll"], "key 'poll'", key="poll")
            if self.poll <= 0:
                raise self.error("key 'poll'", "must be above 0 s", key="poll")
        self.steps = []  # (t, kind, entry), in file order
        events = {}
        for kind in ("command", "fault"):
            items = d.get(kind, [])
            if not isinstance(items, list):
                raise self.error("[[%s]]" % kind, "expected a list of tables, written "
                                 "[[%s]] (double brackets)" % kind, table=kind)
            for i, e in enumerate(items):
                what = "[[%s]] #%d" % (kind, i + 1)
                for k in e:
                    if k not in _KEYS[kind]:
                        hint = "" if k not in _TOP else (
                            " (TOML puts every key after a [[%s]] line into that %s: write "
                            "%s = ... before the first [table])" % (kind, kind, k))
                        raise self.error("%s, key '%s'" % (what, k), "unknown key; a %s has %s%s"
                                         % (kind, ", ".join(sorted(_KEYS[kind])), hint),
                                         table=kind, index=i, key=k)
                need = "send" if kind == "command" else "do"
                for k in ("at", need):
                    if k not in e:
                        raise self.error(what, "missing key '%s'" % k, table=kind, index=i)
                e = dict(e)
                e["at"] = self._dur(e["at"], "%s, key 'at'" % what, table=kind, index=i, key="at")
                e["what"], e["index"] = what, i
                if kind == "command":
                    if not isinstance(e["send"], str) or not isinstance(e.get("args", {}), dict):
                        raise self.error(what, "expected send = \"command\" and args = { ... }",
                                         table=kind, index=i, key="send")
                    e.setdefault("name", e["send"])
                    e.setdefault("args", {})
                    if not isinstance(e.setdefault("expect_ok", True), bool):
                        raise self.error(what, "expect_ok is true or false", table=kind,
                                         index=i, key="expect_ok")
                else:
                    e["call"] = self._parse_call(e["do"], what, i)
                    e.setdefault("name", e["do"])
                if not isinstance(e["name"], str):
                    raise self.error(what, "name is a string", table=kind, index=i, key="name")
                if e["name"] in events and "name" in d[kind][i]:
                    raise self.error(what, "the name '%s' is already taken by %s"
                                     % (e["name"], events[e["name"]]["what"]),
                                     table=kind, index=i, key="name")
                events.setdefault(e["name"], e)
                self.steps.append((e["at"], kind, e))
        self.events = events
        ex = d.get("expect", [])
        if isinstance(ex, str) or not isinstance(ex, list):
            raise self.error("key 'expect'", "expected a list of strings: expect = [\"...\", ...]",
                             key="expect")
        self.expects = [self._parse_expect(x) for x in ex]
        last = max([t for t, _, _ in self.steps] + [x.times[1] for x in self.expects] + [0.0])
        self.duration = last
        if "duration" in d:
            self.duration = self._dur(d["duration"], "key 'duration'", key="duration")
            if self.duration < last:
                raise self.error("key 'duration'", "%s is shorter than the last time the file "
                                 "names (%s)" % (fmt_t(self.duration), fmt_t(last)), key="duration")

    def _typed(self, d, key, typ, default):
        v = d.get(key, default)
        if v is not None and (not isinstance(v, typ) or isinstance(v, bool) and typ is int):
            name = {str: "a string", int: "a whole number", dict: "a table"}[typ]
            raise self.error("key '%s'" % key, "%r is not %s" % (v, name), key=key, table=None
                             if typ is not dict else key)
        return v

    def _dur(self, v, what, **where):
        t, msg = _duration(v)
        if msg:
            raise self.error(what, msg, **where)
        return t

    def _parse_call(self, text, what, i):
        bad = self.error("%s, key 'do'" % what, "%r: expected a call of a handle's method with "
                         "plain values, like \"heater.break_sensor()\", \"wind.gust(19, 120)\", "
                         "\"solenoid(3).stick()\" or \"power.cut(5)\"" % (text,),
                         table="fault", index=i, key="do")
        try:
            node = ast.parse(text.strip(), mode="eval").body if isinstance(text, str) else None
        except SyntaxError:
            node = None
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            raise bad
        try:
            _check_path(node, calls_ok=True)
        except ValueError:
            raise bad from None
        return node

    def _parse_expect(self, text):
        # the file has the string as TOML wrote it (\" for "): look for the part before any quote
        needle = re.split(r'["\\]', text.strip())[0][:40] if isinstance(text, str) else ""
        line = self._line(needle=needle) if needle.strip() else None
        where = "%s%s" % (self.path, ", line %d" % line if line else "")
        if not isinstance(text, str):
            raise ScenarioError("%s (expect): %r is not a string" % (where, text))
        body = text.strip()
        if body.startswith("expect "):
            body = body[7:].strip()
        for kind, rx in _WHEN:
            m = rx.match(body)
            if m:
                break
        else:
            raise ScenarioError("%s (expect %r): no time given: expected CONDITION at TIME, by "
                                "TIME, within DURATION of EVENT, or from TIME to TIME, like "
                                "'status.homed == true at 30s'" % (where, text))
        cond, args = m.group(1), m.groups()[1:]
        wh = "%s (expect %r)" % (where, text)
        if kind == "within":
            if args[1] not in self.events:
                raise ScenarioError("%s: no command or fault is named '%s'; names: %s"
                                    % (wh, args[1], ", ".join(self.events) or "none"))
            t0 = self.events[args[1]]["at"]
            times = (t0, t0 + duration(args[0], wh))
        elif kind == "from":
            times = (duration(args[0], wh), duration(args[1], wh))
            if times[1] < times[0]:
                raise ScenarioError("%s: the window ends before it starts" % wh)
        elif kind == "at":
            times = (duration(args[0], wh),) * 2
        else:
            times = (0.0, duration(args[0], wh))
        try:
            node = ast.parse(cond.strip(), mode="eval").body
            _check_cond(node)
        except (SyntaxError, ValueError) as e:
            why = e.args[0] if isinstance(e, ValueError) else "not an expression"
            raise ScenarioError("%s: condition %r: %s; expected SUBJECT OP VALUE, like "
                                "telemetry.rows >= 40 or heater.state == \"off\", with OP one of "
                                "== != < <= > >=" % (wh, cond.strip(), why)) from None
        return Expect(text.strip(), line, kind, node, times,
                      args[1] if kind == "within" else None)


def _check_path(node, calls_ok=False):
    """A subject: name(.attr | [const] | (consts))*; calls only where calls_ok or on a root."""
    if isinstance(node, ast.Name):
        return
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ValueError("names starting with _ are the models' insides")
        return _check_path(node.value, calls_ok)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return _check_path(node.value, calls_ok)
    if isinstance(node, ast.Call) and (calls_ok or isinstance(node.func, ast.Name)):
        for a in list(node.args) + [k.value for k in node.keywords]:
            _literal(a)
        return _check_path(node.func, calls_ok)
    raise ValueError("only names, .fields, [index] and plain values may appear here")


def _literal(node):
    if isinstance(node, ast.Name) and node.id.lower() in _WORDS:
        return _WORDS[node.id.lower()]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError("%s is not a plain value" % ast.unparse(node)) from None


def _is_value(node) -> bool:
    try:
        _literal(node)
        return True
    except ValueError:
        return False


def _check_cond(node):
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in _OPS:
            raise ValueError("one comparison only")
        for side in (node.left, node.comparators[0]):
            try:
                _literal(side)
            except ValueError:
                _check_path(side)
        return
    _check_path(node)


# --- running one ---


class Result:
    def __init__(self, scenario):
        self.scenario = scenario
        self.checks: list = []  # (ok, text, detail)
        self.sections: list = []
        self.wall_s = 0.0
        self.virtual_s = 0.0

    @property
    def passed(self) -> bool:
        return all(ok is not False for ok, _, _ in self.checks)

    def report(self, details: bool | None = None) -> str:
        sc = self.scenario
        out = ["scenario %r (%s): %s, %s, seed %d; %s of virtual time in %.2f s"
               % (sc.name, sc.path, sc.board, sc.machine, sc.seed, fmt_t(self.virtual_s),
                  self.wall_s)]
        for ok, text, detail in self.checks:
            out.append("  %s  %s: %s" % ({True: "PASS", False: "FAIL", None: "    "}[ok], text,
                                          detail))
        good = sum(1 for ok, _, _ in self.checks if ok)
        bad = sum(1 for ok, _, _ in self.checks if ok is False)
        out.append("%d passed, %d failed" % (good, bad))
        if details or (details is None and bad):
            for title, text in self.sections:
                out += ["", "--- " + title, text]
        return "\n".join(out)


class _Runner:
    def __init__(self, sc: Scenario, board: DevBoard):
        self.sc, self.b = sc, board
        self.rids: dict = {}
        self._status = (None, None)

    def resolve(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            n = node.id
            if n.lower() in _WORDS:
                return _WORDS[n.lower()]
            if n == "status":
                if self._status[0] != self.b.clock.now:
                    r = self.b.peek("status")
                    if not r.get("ok"):
                        raise LookupError("status refused: %s" % r.get("error"))
                    self._status = (self.b.clock.now, r)
                return self._status[1]
            if n == "telemetry":
                tele = self.b.telemetry()
                return dict(tele[-1] if tele else {}, count=len(tele))
            if n == "reply":
                return {k: self.b.replies.get(rid) for k, rid in self.rids.items()}
            if n == "events":
                return _Counts(self.b)
            if n == "board":
                return {"now": self.b.now, "boots": self.b.boots}
            return self.b.subject(n)
        if isinstance(node, ast.Attribute):
            return _field(self.resolve(node.value), node.attr, ast.unparse(node.value))
        if isinstance(node, ast.Subscript):
            obj = self.resolve(node.value)
            try:
                return obj[node.slice.value]
            except (LookupError, TypeError):
                raise LookupError("%s has no [%r]" % (ast.unparse(node.value), node.slice.value))
        if isinstance(node, ast.Call):
            f = node.func
            fn = getattr(self.resolve(f.value), f.attr) if isinstance(f, ast.Attribute) \
                else self.resolve(f)
            return fn(*[_literal(a) for a in node.args],
                      **{k.arg: _literal(k.value) for k in node.keywords})
        return _literal(node)

    def check(self, x: Expect):
        x.checks += 1
        t = self.b.now
        try:
            c = x.cond
            if isinstance(c, ast.Compare):
                left, right = self.resolve(c.left), self.resolve(c.comparators[0])
                op = _OPS[type(c.ops[0])]
                try:
                    ok = {"==": left == right, "!=": left != right}[op] if op in ("==", "!=") \
                        else {"<": lambda: left < right, "<=": lambda: left <= right,
                              ">": lambda: left > right, ">=": lambda: left >= right}[op]()
                except TypeError:
                    ok = False
                lv, rv = _is_value(c.left), _is_value(c.comparators[0])
                seen = right if lv else left
                if not (lv or rv or ok):
                    seen = _Vs(left, right)
            else:
                seen = self.resolve(c)
                ok = bool(seen)
        except (LookupError, ValueError, TypeError, TimeoutError) as e:
            ok, seen = False, "error: %s" % (e.args[0] if e.args else e)
        if x.kind == "from":
            if not ok:
                x.ok, x.observed, x.t = False, seen, t
        elif ok:
            x.ok, x.observed, x.t = True, seen, t
        else:
            x.observed, x.t = seen, t
            if x.kind == "at":
                x.ok = False

    def do(self, kind, e):
        if kind == "command":
            self.rids[e["name"]] = self.b.request(e["send"], e["args"])
            return
        node = e["call"]
        try:
            self.resolve(node)
        except (LookupError, ValueError, TypeError, AttributeError) as ex:
            raise ScenarioError("%s, line %s (%s): %s: %s" % (
                self.sc.path, self.sc._line(table="fault", index=e["index"], key="do"),
                e["what"], e["do"], ex)) from None


    def go(self, res):
        sc, b = self.sc, self.b
        plan = []  # (t_us, order, seq, what, payload)
        for i, (t, kind, e) in enumerate(sc.steps):
            plan.append((int(round(t * 1e6)), 0, i, kind, e))
        for j, x in enumerate(sc.expects):
            t0, t1 = x.times
            span = t1 - t0
            step = sc.poll or max(span / 200, 0.001)
            n = int(span / step) if span > 0 else 0
            ts = [t0 + k * step for k in range(n + 1)] + ([t1] if span > 0 else [])
            for t in ts:
                plan.append((int(round(t * 1e6)), 1, j, "check", x))
        plan.sort(key=lambda p: p[:3])
        for t_us, _, _, what, payload in plan:
            if what == "check" and payload.ok is not None:
                continue  # decided: a window that already passed (or a range that failed)
            if t_us > b.clock.now:
                b.advance((t_us - b.clock.now) / 1e6)
            if what == "check":
                self.check(payload)
            else:
                self.do(what, payload)
        end = int(round(sc.duration * 1e6))
        if end > b.clock.now:
            b.advance((end - b.clock.now) / 1e6)
        self.finish(res)

    def finish(self, res):
        sc, b = self.sc, self.b
        for t, kind, e in sorted(sc.steps, key=lambda s: s[0]):
            if kind == "fault":
                res.checks.append((None, "fault %s at %s" % (e["do"], fmt_t(t)), "applied"))
                continue
            rid = self.rids[e["name"]]
            rep = b.replies.get(rid)
            text = "command %s at %s" % (json.dumps({"cmd": e["send"], "args": e["args"]})
                                         if e["args"] else e["send"], fmt_t(t))
            ok = e["expect_ok"] or None  # expect_ok = false: shown, not judged
            if rep is None:
                res.checks.append((False if ok else None, text,
                                   "no reply by the end (%s)" % fmt_t(b.now)))
            elif rep.get("ok"):
                res.checks.append((ok, text, "ok at %s" % fmt_t(b.reply_t.get(rid, b.now))))
            else:
                res.checks.append((False if ok else None, text, "refused at %s: %s"
                                   % (fmt_t(b.reply_t.get(rid, b.now)), rep.get("error"))))
        for x in sc.expects:
            if x.ok is None:
                x.ok = x.kind == "from"
            res.checks.append((x.ok, x.text, x.describe()))


def _field(obj, name, owner):
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        raise LookupError("%s has no field '%s'; it has: %s" % (owner, name, ", ".join(obj)))
    st = obj.status() if hasattr(obj, "status") else {}
    if not name.startswith("_") and hasattr(obj, name):
        v = getattr(obj, name)
        if not callable(v):
            return v
        if name not in st:
            raise LookupError("%s.%s is an action, not a value; values: %s" % (
                owner, name, ", ".join(sorted(st)) or "none"))
    if name in st:
        return st[name]
    raise LookupError("%s has no '%s'; it has: %s" % (owner, name, ", ".join(
        sorted(set(k for k in dir(type(obj)) if not k.startswith("_")) | set(st)))))


class _Counts(dict):
    """events.<kind>: how many events (or telemetry records) of that kind the board sent."""

    def __init__(self, b):
        super().__init__()
        self.b = b

    def __contains__(self, kind):
        return True

    def __missing__(self, kind):
        return len(self.b.lines(kind))


def run(path) -> Result:
    """Run one scenario file on a fresh simulated board; ScenarioError for a bad file."""
    sc = Scenario(path)
    res = Result(sc)
    wall = time.monotonic()
    try:
        b = DevBoard(board=sc.board, machine=sc.machine, config=sc.config, calib=sc.calib,
                     seed=sc.seed, model=sc.model)
    except (KeyError, ValueError) as e:
        raise ScenarioError("%s: cannot build the board: %s"
                            % (sc.path, e.args[0] if e.args else e)) from None
    try:
        if b.lines("config_error"):
            err = b.lines("config_error")[0]["error"]
            key = re.search(r"'(\w+)'", err)
            line = sc._line(table="config", key=key.group(1)) if key else None
            raise ScenarioError("%s%s (config): the firmware refused the machine config: %s"
                                % (sc.path, ", line %d" % line if line else "", err))
        for t, kind, e in sc.steps:  # handle names are checked before anything runs
            if kind == "fault":
                _handle_ok(sc, b, e["call"], e)
        for x in sc.expects:
            for name in _roots(x.cond):
                if name not in SUBJECT_ROOTS and name.lower() not in _WORDS:
                    try:
                        b.subject(name)
                    except NoHandle as ex:
                        raise ScenarioError("%s%s (expect %r): %s" % (
                            sc.path, ", line %d" % x.line if x.line else "", x.text, ex)) from None
        _Runner(sc, b).go(res)
        res.virtual_s = b.now
        res.sections = report_sections(b)
    finally:
        b.close()
    res.wall_s = time.monotonic() - wall
    return res


def _roots(node):
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and not (isinstance(n.ctx, ast.Load) and n.id.lower() in _WORDS):
            out.append(n.id)
    return out


def _handle_ok(sc, b, call, e):
    root = call
    while not isinstance(root, ast.Name):
        root = root.func if isinstance(root, ast.Call) else root.value
    try:
        b.subject(root.id)
    except NoHandle as ex:
        raise ScenarioError("%s, line %s (%s): %s" % (
            sc.path, sc._line(table="fault", index=e["index"], key="do"), e["what"], ex)) from None


def main(argv=None) -> int:
    """`python -m microfab_sim.scenario FILE...`: 0 when every scenario passes, 1 when one
    fails, 2 when a file is not a valid scenario."""
    ap = argparse.ArgumentParser(prog="python -m microfab_sim.scenario",
                                 description="Run scenario files on a simulated board.")
    ap.add_argument("files", nargs="+", metavar="FILE", help="scenario file (TOML)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show the exchanges, console and model state even when it passes")
    a = ap.parse_args(argv)
    code = 0
    for f in a.files:
        try:
            res = run(f)
        except ScenarioError as e:
            print("error: %s" % e, file=sys.stderr)
            code = 2
            continue
        print(res.report(details=True if a.verbose else None))
        if not res.passed and code == 0:
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
