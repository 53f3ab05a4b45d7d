"""Scenario files: a scripted run of a simulated board, written in TOML instead of Python.

    python -m microfab_sim.scenario scenarios/polyfloss_sensor_break.toml   # exit 0 pass, 1 fail

A scenario names the board and the machine, the machine's config and the model's settings,
commands and faults at given virtual times, and expectations such as
`heater.state == "off" within 1s of sensor_break`. docs/devkit.md has the syntax; the pytest
plugin (microfab.pytest_plugin) collects scenarios/*.toml as tests. The board is a
microfab_sim.devboard.DevBoard, the plugin's `sim_board`.

This module runs a scenario and judges it; scenario_file.py reads and checks the file.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time

from .devboard import DevBoard, NoHandle, report_sections
from .scenario_file import OPS, WORDS, Expect, Scenario, ScenarioError, fmt_t, literal

SUBJECT_ROOTS = ("status", "telemetry", "reply", "events", "board")


class _Vs:
    def __init__(self, left, right):
        self.left, self.right = left, right


def show(v) -> str:
    if isinstance(v, _Vs):
        return "%s against %s" % (show(v.left), show(v.right))
    if isinstance(v, float):
        return "%.1f" % v if v == int(v) and abs(v) < 1e15 else "%.6g" % v
    return json.dumps(v, default=repr)


def _describe(x: Expect) -> str:
    """What a check saw, for the report."""
    v = show(x.observed)
    if x.ok and x.kind in ("within", "by"):
        rel = "" if not x.event else " (%s after %s)" % (
            fmt_t(x.t - x.times[0]), x.event)
        return "%s at %s%s" % (v, fmt_t(x.t), rel)
    if x.ok and x.kind == "from":
        return "held at all %d checks" % x.checks
    if x.ok is False and x.kind in ("within", "by"):
        return "not met from %s to %s; last seen %s at %s" % (
            fmt_t(x.times[0]), fmt_t(x.times[1]), v, fmt_t(x.t or x.times[1]))
    return "%s at %s" % (v, fmt_t(x.t if x.t is not None else x.times[0]))


def _is_value(node) -> bool:
    try:
        literal(node)
        return True
    except ValueError:
        return False


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
            if n.lower() in WORDS:
                return WORDS[n.lower()]
            if n == "status":
                if self._status[0] != self.b.clock.now:
                    r = self.b.peek("status")
                    if not r.get("ok"):
                        raise LookupError("status refused: %s" % r.get("error"))
                    self._status = (self.b.clock.now, r)
                return self._status[1]
            if n in ("telemetry", "production", "energy"):
                # telemetry: the status report every report_s; production and energy: the totals
                kind = "status" if n == "telemetry" else n
                tele = [t for t in self.b.telemetry() if t.get("tele") == kind]
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
            return fn(*[literal(a) for a in node.args],
                      **{k.arg: literal(k.value) for k in node.keywords})
        return literal(node)

    def check(self, x: Expect):
        x.checks += 1
        t = self.b.now
        try:
            c = x.cond
            if isinstance(c, ast.Compare):
                left, right = self.resolve(c.left), self.resolve(c.comparators[0])
                op = OPS[type(c.ops[0])]
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
                self.sc.path, self.sc.line_of(table="fault", index=e["index"], key="do"),
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
            res.checks.append((x.ok, x.text, _describe(x)))


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
            line = sc.line_of(table="config", key=key.group(1)) if key else None
            raise ScenarioError("%s%s (config): the firmware refused the machine config: %s"
                                % (sc.path, ", line %d" % line if line else "", err))
        for t, kind, e in sc.steps:  # handle names are checked before anything runs
            if kind == "fault":
                _handle_ok(sc, b, e["call"], e)
        for x in sc.expects:
            for name in _roots(x.cond):
                if name not in SUBJECT_ROOTS and name.lower() not in WORDS:
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
        if isinstance(n, ast.Name) and not (isinstance(n.ctx, ast.Load) and n.id.lower() in WORDS):
            out.append(n.id)
    return out


def _handle_ok(sc, b, call, e):
    root = call
    while not isinstance(root, ast.Name):
        root = root.func if isinstance(root, ast.Call) else root.value
    try:
        b.subject(root.id)
    except NoHandle as ex:
        line = sc.line_of(table="fault", index=e["index"], key="do")
        raise ScenarioError("%s, line %s (%s): %s" % (sc.path, line, e["what"], ex)) from None


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
