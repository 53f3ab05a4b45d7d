"""A scenario file, read and checked before anything runs: the TOML keys, the times and
durations, the faults' calls and the expectations' conditions, with errors that name the file,
the line and what was expected. scenario.py runs it; docs/devkit.md has the syntax.
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path


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
OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
WORDS = {"true": True, "false": False, "null": None, "none": None}


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


class Expect:
    """One expectation: its condition and window from the file, then what the run saw."""

    def __init__(self, text, line, kind, cond, times, event):
        self.text, self.line, self.kind, self.cond = text, line, kind, cond
        self.times, self.event = times, event  # (t0, t1): in seconds; event: name or None
        self.ok = None  # None: undecided
        self.observed = None
        self.t = None
        self.checks = 0


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
    def line_of(self, key=None, table=None, index=0, needle=None) -> int | None:
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
        line = self.line_of(**where)
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
        line = self.line_of(needle=needle) if needle.strip() else None
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
            literal(a)
        return _check_path(node.func, calls_ok)
    raise ValueError("only names, .fields, [index] and plain values may appear here")


def literal(node):
    """A plain value: a Python literal, or true, false, null or none."""
    if isinstance(node, ast.Name) and node.id.lower() in WORDS:
        return WORDS[node.id.lower()]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError("%s is not a plain value" % ast.unparse(node)) from None


def _check_cond(node):
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in OPS:
            raise ValueError("one comparison only")
        for side in (node.left, node.comparators[0]):
            try:
                literal(side)
            except ValueError:
                _check_path(side)
        return
    _check_path(node)
