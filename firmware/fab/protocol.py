# The declared command table: every command with its typed arguments. The board sends this table
# on `hello`, so the host, the docs and the firmware cannot drift apart (after Klipper's
# declared MCU commands).
#
# An argument is (name, type, required): type is "i" int, "f" number, "s" text, "b" bool,
# "l" list, "o" object.

_TYPES = {"i": "int", "f": "float", "s": "str", "b": "bool", "l": "list", "o": "object"}
_WORDS = {"i": "a whole number", "f": "a number", "s": "a text string", "b": "true or false",
          "l": "a list", "o": "an object"}


class CommandError(ValueError):
    pass


def _fits(t, v):
    if isinstance(v, bool):
        return t == "b"
    if t == "i":
        return isinstance(v, int)
    if t == "f":
        return isinstance(v, (int, float))
    if t == "s":
        return isinstance(v, str)
    if t == "l":
        return isinstance(v, list)
    if t == "o":
        return isinstance(v, dict)
    return False


class Table:
    def __init__(self):
        self.cmds = {}

    def add(self, name, fn, args=(), task=False):
        """task=True: a long-running coroutine; it replies when done and holds the motion lock."""
        self.cmds[name] = (fn, args, task)

    def describe(self):
        out = {}
        for name in self.cmds:
            spec = {}
            for a in self.cmds[name][1]:
                spec[a[0]] = _TYPES[a[1]] + ("" if a[2] else "?")
            out[name] = spec
        return out

    def check(self, name, args):
        """(fn, args, task) for a request, or CommandError saying what was wrong and expected."""
        entry = self.cmds.get(name)
        if entry is None:
            raise CommandError("unknown command '%s'; expected one of: %s"
                               % (name, ", ".join(sorted(self.cmds))))
        spec = entry[1]
        if not isinstance(args, dict):
            raise CommandError("'args' of %s must be an object, got %s" % (name, _word(args)))
        out = {}
        for a in spec:
            key = a[0]
            if key in args:
                v = args[key]
                if not _fits(a[1], v):
                    raise CommandError("argument '%s' of %s must be %s, got %s"
                                       % (key, name, _WORDS[a[1]], _word(v)))
                out[key] = float(v) if a[1] == "f" else v
            elif a[2]:
                raise CommandError("%s needs argument '%s' (%s)" % (name, key, _WORDS[a[1]]))
            else:
                out[key] = None
        for key in args:
            if key not in out:
                names = ", ".join([a[0] for a in spec]) or "none"
                raise CommandError("unknown argument '%s' for %s; expected: %s" % (key, name, names))
        return entry[0], out, entry[2]


def _word(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return "'%s'" % (v if len(v) < 30 else v[:27] + "...")
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "null" if v is None else type(v).__name__
