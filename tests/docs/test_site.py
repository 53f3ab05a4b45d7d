"""The docs site builds with warnings as errors, every page is in its nav, and the generated
references (commands, config keys, wiring pictures) are what the code says today."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REGEN = "run `python docs/gen_reference.py` and commit the result"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                        str(ROOT / "mkdocs.yml"), "-d", str(out)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, "mkdocs build --strict failed:\n" + r.stdout + r.stderr
    return out


def test_site_builds_strict_with_every_page_in_the_nav(site):
    home = (site / "index.html").read_text()
    for page in sorted(DOCS.rglob("*.md")):
        rel = page.relative_to(DOCS).with_suffix("")
        url = "" if rel.name == "index" else str(rel) + "/"
        assert (site / url / "index.html").exists(), rel
        # the nav is on every page: a page missing from mkdocs.yml's nav is not reachable
        assert 'href="%s"' % url in home or 'href="./%s"' % url in home, (
            "docs/%s.md is not in the nav of mkdocs.yml" % rel)


def test_machine_pages_show_their_wiring_pictures(site):
    for page in sorted((DOCS / "machines").glob("*.md")):
        html = (site / "machines" / page.stem / "index.html").read_text()
        pics = re.findall(r'<img alt="[^"]*" src="\.\./\.\./wiring/([^"]+\.svg)"', html)
        assert "pico-%s.svg" % page.stem in pics, page.name
        for pic in pics:
            assert (site / "wiring" / pic).read_text().startswith("<svg"), pic


def test_nav_leaves_out_pages_not_written_yet_and_takes_new_machine_pages(gen, tmp_path):
    (tmp_path / "machines").mkdir()
    for name in ("overview.md", "machines/loom.md", "machines/spinner.md"):
        (tmp_path / name).write_text("# x\n")
    nav = [{"Home": "index.md"}, {"Code overview": "overview.md"}, {"Journal": "journal.md"},
           {"Machines": ["machines/loom.md", "machines/knitter.md"]},
           {"Reference": [{"Commands": "reference/commands.md"}]}]
    assert gen._prune(nav, tmp_path) == [
        {"Home": "index.md"}, {"Code overview": "overview.md"},
        {"Machines": ["machines/loom.md", "machines/spinner.md"]}]


def test_generated_references_are_up_to_date(tmp_path):
    r = subprocess.run([sys.executable, str(DOCS / "gen_reference.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    fresh = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*")
             if p.is_file()}
    assert "reference/commands.md" in fresh and "wiring/pico-loom.svg" in fresh
    stale = [rel for rel, text in sorted(fresh.items())
             if not (DOCS / rel).exists() or (DOCS / rel).read_text() != text]
    assert not stale, "out of date: %s; %s" % (", ".join("docs/" + s for s in stale), REGEN)
    extra = [p.name for p in (DOCS / "wiring").glob("*.svg") if "wiring/" + p.name not in fresh]
    assert not extra, "docs/wiring holds pictures nothing generates: %s; %s" % (extra, REGEN)


def test_references_cover_every_command_and_key(gen):
    from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
    from fab import config as fw
    from microfab_sim.board import SimBoard

    commands = (DOCS / "reference" / "commands.md").read_text()
    with SimBoard(board="pico", machine="axis", seed=1) as b:
        table = b.send("hello")["commands"]
    assert "| `move` | `to` float, `speed` float (optional) |" in commands
    for name in table:
        assert "| `%s` |" % name in commands
    keys = (DOCS / "reference" / "config.md").read_text()
    for m in gen.machines():
        section = keys.split("## Machine ")[1:]
        text = next(s for s in section if s.startswith(("`%s`" % m, "[%s]" % m)))
        for field in fw.machine_module(m).SCHEMA:
            assert "| `%s` |" % field[0] in text, (m, field[0])
    for field in fw.RUNTIME + fw.BOARD:
        assert "| `%s` |" % field[0] in keys
    assert "| `watchdog_ms` | int | 8000 | 0 to 8388 | ms |" in keys
