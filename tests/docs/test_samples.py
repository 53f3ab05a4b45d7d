"""Every ```python sample in the README and the docs runs as printed (on the simulator), unless
the line before its fence says why it cannot:

    <!-- no-test: needs a board on USB -->
    ```python
    ...

Use the marker only for samples that need hardware. The samples of a page run in order in one
namespace, as a reader would type them, from a folder that looks like the repository's root (its
entries linked in) and also holds motif.png, the 40 x 12 picture the knitter page knits. A block
whose first line is `# file: PATH` is a listing of a file in the repository: its lines must be
there, in that order (elided parts may be left out), and it is not run."""
import re
from pathlib import Path

import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path, as on a host

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*no-test\b\s*(?::\s*(?P<why>[^>]*?))?\s*-->\s*$")


def samples(text: str):
    """(line, code, reason-to-skip or None) for each ```python block of a Markdown text."""
    out = []
    for m in FENCE.finditer(text):
        before = [ln for ln in text[:m.start()].splitlines() if ln.strip()]
        mark = MARKER.match(before[-1].strip()) if before else None
        why = None
        if mark:
            why = (mark.group("why") or "").strip()
            if not why:
                raise ValueError("a no-test marker without a reason, line %d: write "
                                 "<!-- no-test: why it cannot run here -->"
                                 % (text[:m.start()].count("\n")))
        out.append((text[:m.start()].count("\n") + 2, m.group(1), why))
    return out


def pages():
    found = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")) + sorted(
        (ROOT / "docs" / "machines").glob("*.md"))
    return [p for p in found if p.exists()]


def params():
    out = []
    for page in pages():
        rel = str(page.relative_to(ROOT))
        found = samples(page.read_text())
        if found:
            out.append(pytest.param(rel, found, id=rel))
    return out


@pytest.fixture
def sample_folder(tmp_path, monkeypatch):
    from PIL import Image, ImageDraw

    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv") and not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    im = Image.new("RGB", (40, 12), "white")
    d = ImageDraw.Draw(im)
    d.rectangle([3, 2, 12, 9], fill="black")
    d.line([16, 0, 39, 11], fill=(40, 40, 40))
    im.save(tmp_path / "motif.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_listing(page, line, code):
    head, _, body = code.partition("\n")
    path = ROOT / head.split(":", 1)[1].strip()
    assert path.is_file(), "%s:%d lists %s, which does not exist" % (page, line, path)
    lines = [ln.rstrip() for ln in path.read_text().splitlines()]
    at = 0
    for n, ln in enumerate(body.splitlines()):
        ln = ln.rstrip()
        if not ln.strip() or ln.strip() in ("...", "# ..."):
            continue
        assert ln in lines[at:], "%s:%d: %r is not in %s (after line %d); the listing has " \
            "drifted from the file" % (page, line + 1 + n, ln, path.relative_to(ROOT), at)
        at = lines.index(ln, at) + 1


@pytest.mark.parametrize("page, found", params())
def test_page_samples_run(page, found, sample_folder):
    ns = {"__name__": "__doc_sample__", "print": lambda *a, **k: None}
    ran = 0
    for line, code, why in found:
        if why is not None:
            continue
        if code.startswith("# file:"):
            check_listing(page, line, code)
            continue
        # compiled with the page's name and the sample's line, so a failure points into the docs
        exec(compile("\n" * (line - 1) + code, str(ROOT / page), "exec"), ns)
        ran += 1
    if not ran and all(why is not None for _l, _c, why in found):
        pytest.skip("every sample on %s needs hardware: %s" % (page, found[0][2]))


def test_the_samples_are_found_and_the_marker_skips_with_its_reason():
    found = {p: samples(p.read_text()) for p in pages()}
    assert len(found[ROOT / "docs" / "simulator.md"]) == 2
    assert sum(len(s) for s in found.values()) >= 7
    text = ("Intro\n\n```python\nx = 1\n```\n\n<!-- no-test: needs a board on USB -->\n"
            "```python\nflash()\n```\n\n```json\n{}\n```\n")
    (l1, c1, w1), (l2, c2, w2) = samples(text)
    assert (c1, w1) == ("x = 1\n", None) and (c2, w2) == ("flash()\n", "needs a board on USB")
    assert (l1, l2) == (4, 9)
    with pytest.raises(ValueError, match="without a reason"):
        samples("<!-- no-test -->\n```python\nx\n```\n")


def test_a_listing_must_match_its_file():
    check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\nNAME = "axis"\n...\n'
                             'CALIBRATE = ("steps_per_mm",)\n')
    with pytest.raises(AssertionError, match="drifted"):
        check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\nNAME = "loom"\n')
    with pytest.raises(AssertionError, match="drifted"):  # out of order
        check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\n'
                                 'CALIBRATE = ("steps_per_mm",)\nNAME = "axis"\n')
