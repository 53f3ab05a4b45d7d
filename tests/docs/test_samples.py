"""Every ```python sample in the README and the docs runs as printed (on the simulator), unless
the line before its fence says why it cannot:

    <!-- no-test: needs a board on USB -->
    ```python
    ...

Use the marker only for samples that need hardware. The samples of a page run in order in one
namespace, as a reader would type them, from a folder that looks like the repository's root (its
entries linked in) and also holds motif.png, the 40 x 12 picture the knitter page knits. A
one-line print(...) whose comment is a Python literal (`print(n)  # 12`) says what it prints,
and must print that. A block whose first line is `# file: PATH` is a listing of a file in the
repository: its lines must be there, in that order (elided parts may be left out), and it is not
run. A page in RUN_BY has its samples run by the test module named there instead, which needs
what the run leaves behind; they are not run twice."""
import ast
import re
import sys
from pathlib import Path

import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path, as on a host

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*no-test\b\s*(?::\s*(?P<why>[^>]*?))?\s*-->\s*$")
STATED = re.compile(r"^\s*print\(.*\)\s*#\s*(?P<said>.+?)\s*$")
# page: (the test module that runs its samples as printed, why there and not here)
RUN_BY = {
    "docs/machines/windrig.md": ("tests/e2e/test_windrig.py", "its simulated day is that "
                                 "module's buffered day, which its tests look into"),
}


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


def stated(code: str, line: int) -> dict:
    """{page line: value} for each one-line print(...) of a sample starting at `line` whose
    comment is a Python literal: what the page says it prints. Prose comments are left alone."""
    out = {}
    for n, ln in enumerate(code.splitlines()):
        m = STATED.match(ln)
        if m:
            try:
                out[line + n] = ast.literal_eval(m.group("said"))
            except (ValueError, SyntaxError):
                pass
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
    for x in range(0, 40, 2):  # a checkered band: every other needle in the last row
        im.putpixel((x, 11), (0, 0, 0))
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
    printed: dict = {}

    def record(*args, **kw):
        f = sys._getframe(1)
        if f.f_code.co_filename == str(ROOT / page):
            printed.setdefault(f.f_lineno, []).append(args[0] if len(args) == 1 else args)

    ns = {"__name__": "__doc_sample__", "print": record}
    ran = 0
    for line, code, why in found:
        if why is not None:
            continue
        if code.startswith("# file:"):
            check_listing(page, line, code)
            continue
        if page in RUN_BY:
            continue
        # compiled with the page's name and the sample's line, so a failure points into the docs
        exec(compile("\n" * (line - 1) + code, str(ROOT / page), "exec"), ns)
        ran += 1
        for at, said in stated(code, line).items():
            assert at in printed, "%s:%d never printed; the page says it prints %r" % (
                page, at, said)
            for got in printed[at]:
                assert got == said, "%s:%d printed %r; the page says %r" % (page, at, got, said)
    if page in RUN_BY:
        pytest.skip("%s runs these samples: %s" % RUN_BY[page])
    if not ran and all(why is not None for _l, _c, why in found):
        pytest.skip("every sample on %s needs hardware: %s" % (page, found[0][2]))


def test_a_page_left_to_another_module_is_run_there():
    for page, (module, _why) in RUN_BY.items():
        text = (ROOT / module).read_text()
        assert Path(page).name in text and "exec(" in text, (
            "%s is left to %s, which does not run its samples" % (page, module))
        assert any(why is None and not code.startswith("# file:")
                   for _l, code, why in samples((ROOT / page).read_text())), page


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
    code = 'print(n)  # 12\nprint(s)   # [1, 2]\nprint(b)  # bytes in use\nn = 1  # 3\n'
    assert stated(code, 40) == {40: 12, 41: [1, 2]}


def test_a_listing_must_match_its_file():
    check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\nNAME = "axis"\n...\n'
                             'CALIBRATE = ("steps_per_mm",)\n')
    with pytest.raises(AssertionError, match="drifted"):
        check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\nNAME = "loom"\n')
    with pytest.raises(AssertionError, match="drifted"):  # out of order
        check_listing("x.md", 1, '# file: firmware/fab/machines/axis.py\n'
                                 'CALIBRATE = ("steps_per_mm",)\nNAME = "axis"\n')
