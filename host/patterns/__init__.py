"""Pattern files the machines weave and knit from: the file is read on the host, turned into the
machine's compact plan, and sent to the board in chunks. The file's suffix picks the module:
weave (.wif, .wifw, .dtx, .wpo: the loom's lift plan) or knit (images: the knitter's rows).

    from microfab import patterns
    draft = patterns.read("twill.wif")
    print(patterns.show("twill.wif", as_json=False))

Both raise PatternError with one line to show; `microfab pattern show` prints it on stderr and
exits with status 2.
"""
from __future__ import annotations

from pathlib import Path

from .weave import PatternError


def _module(path):
    suffix = Path(path).suffix.lower()
    from . import weave

    if suffix in weave.SUFFIXES:
        return weave
    known = set(weave.SUFFIXES)
    try:
        from . import knit
    except ImportError:
        knit = None
    if knit is not None:
        if suffix in knit.SUFFIXES:
            return knit
        known |= set(knit.SUFFIXES)
    raise PatternError("%s: unknown pattern file type '%s'; expected one of: %s"
                       % (Path(path).name, suffix, ", ".join(sorted(known))))


def read(path: str | Path, **opts):
    """The plan of a pattern file, by its suffix (opts go to the knitter's reader)."""
    return _module(path).read(path, **opts)


def show(path: str | Path, as_json: bool = False, **opts) -> str:
    """What `microfab pattern show` prints for the file."""
    return _module(path).show(path, as_json, **opts)


__all__ = ["PatternError", "read", "show"]
