"""The board files shipped with microfab: one JSON file per supported board."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def names():
    return sorted(p.stem for p in ROOT.glob("*.json"))


def path(name):
    p = ROOT / (name + ".json")
    if not p.exists():
        raise KeyError("unknown board '%s'; expected one of: %s" % (name, ", ".join(names())))
    return p


def load(name):
    return json.loads(path(name).read_text())
