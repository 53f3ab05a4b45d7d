"""Weaving drafts on the host: WIF (threading x tie-up x treadling, or a liftplan) and, through
dtx-to-wif, FiberWorks .dtx, into a lift plan; malformed files named by section, line and value;
the plan cut into board commands."""
import json
from pathlib import Path

import pytest

from microfab import patterns
from microfab.patterns import weave
from microfab.patterns.weave import PatternError

DATA = Path(__file__).resolve().parents[1] / "data"
TWILL = DATA / "point_twill_8.wif"


def twill_plan():
    # The draft's own definition: a 3/1/1/3 twill tie-up, treadled 1-8-2 as a point.
    tie = {t: {((t - 1 + k) % 8) + 1 for k in (0, 1, 2, 4)} for t in range(1, 9)}
    return [sorted(tie[t]) for t in [1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3, 2]]


def test_point_twill_is_threading_x_tieup_x_treadling():
    d = weave.read(TWILL)
    assert d.picks == twill_plan()
    assert (d.shafts, d.treadles, d.used(), d.source) == (8, 8, 8, "tieup x treadling")
    assert d.threading[:9] == [[1], [2], [3], [4], [5], [6], [7], [8], [7]] and len(d.threading) == 28
    assert d.masks()[0] == 0b00010111  # shafts 1, 2, 3, 5
    assert patterns.read(TWILL).picks == d.picks


def test_point_twill_agrees_with_dtx_to_wif():
    dtx_to_wif = pytest.importorskip("dtx_to_wif")
    data = dtx_to_wif.read_pattern_file(TWILL)
    lift = dtx_to_wif.make_liftplan(data)
    assert [sorted(lift.get(p, ())) for p in range(1, 15)] == weave.read(TWILL).picks


LIFTPLAN = """\
; a dobby draft: no tie-up, the liftplan says it all (lower case, spaces, comments)
[wif]
version = 1.1
[Contents]
weaving = yes
liftplan = yes
threading = no
[weaving]
shafts = 4
[threading]
this section is ignored: [CONTENTS] says no
[LiftPlan]
1 = 1, 3
2=2,4
4 = 1,2,3,4
; pick 3 is not listed: it lifts nothing
"""


def test_liftplan_is_read_as_is():
    d = weave.read_wif(LIFTPLAN, "dobby.wif")
    assert d.picks == [[1, 3], [2, 4], [], [1, 2, 3, 4]]
    assert d.source == "liftplan" and d.threading == [] and d.shafts == 4
    assert weave.to_json(d.picks) == {"picks": [[1, 3], [2, 4], [], [1, 2, 3, 4]]}


def test_liftplan_wins_over_treadling_and_sinking_shed_is_inverted():
    text = ("[WEAVING]\nShafts=4\nTreadles=2\nRising Shed=false\n[TIEUP]\n1=1\n2=2\n"
            "[TREADLING]\n1=1\n2=2\n[LIFTPLAN]\n1=1,2\n2=3\n")
    d = weave.read_wif(text, "sink.wif")
    assert d.source == "liftplan" and not d.rising
    assert d.picks == [[3, 4], [1, 2, 4]]  # the listed shafts sink, the others rise


def test_compound_treadling():
    text = ("[WEAVING]\nShafts=4\nTreadles=3\n[TIEUP]\n1=1\n2=2,3\n3=4\n"
            "[TREADLING]\n1=1,3\n2=2\n3=0\n")
    assert weave.read_wif(text, "c.wif").picks == [[1, 4], [2, 3], []]


BASE = "[WIF]\nVersion=1.1\n[WEAVING]\nShafts=8\nTreadles=4\n[TIEUP]\n1=1,2\n2=3,4\n[TREADLING]\n1=1\n2=2\n"


@pytest.mark.parametrize("text, message", [
    (BASE.replace("2=3,4", "2=3,4\n3=5,9"),
     "t.wif: [TIEUP] line 9: treadle 3 lists shaft 9, but [WEAVING] Shafts=8"),
    (BASE.replace("2=3,4", "2=3,x"),
     "t.wif: [TIEUP] line 8: treadle 2 lists shaft 'x', expected a whole number from 0 to 8 "
     "([WEAVING] Shafts=8)"),
    (BASE.replace("[TIEUP]", "[TIEUP"),
     "t.wif: line 6: '[TIEUP' is not a section header: expected a name in brackets, like [TIEUP]"),
    (BASE.replace("2=2\n", "2=5\n"),
     "t.wif: [TREADLING] line 11: pick 2 lists treadle 5, but [WEAVING] Treadles=4"),
    (BASE.replace("2=2\n", "two=2\n"),
     "t.wif: [TREADLING] line 11: 'two' is not a pick number: expected a whole number from 1"),
    (BASE.replace("2=2\n", "0=2\n"),
     "t.wif: [TREADLING] line 11: '0' is not a pick number"),
    (BASE.replace("2=3,4", "5=3,4"),
     "t.wif: [TIEUP] line 8: treadle 5, but [WEAVING] Treadles=4"),
    (BASE.replace("Shafts=8", "Shafts=eight"),
     "t.wif: [WEAVING] line 4: Shafts=eight, expected a whole number from 1 to 256"),
    (BASE.replace("Shafts=8\n", ""),
     "t.wif: [WEAVING] has no Shafts: expected Shafts=<number>, which the lift plan needs"),
    (BASE.replace("Treadles=4\n", ""),
     "t.wif: [WEAVING] has no Treadles"),
    (BASE.replace("[TIEUP]\n1=1,2\n2=3,4\n", ""),
     "t.wif: no lift plan ([TIEUP] is missing): expected [LIFTPLAN], or [TIEUP] with [TREADLING]"),
    (BASE.replace("1=1\n2=2\n", "1=1\n1=2\n"),
     "t.wif: [TREADLING] line 11: '1' comes twice (first on line 10)"),
    (BASE.replace("2=2\n", "2 2\n"),
     "t.wif: [TREADLING] line 11: '2 2' is not KEY=VALUE"),
    ("Shafts=8\n" + BASE, "t.wif: line 1: 'Shafts=8' comes before any section"),
    (BASE + "[WEAVING]\nShafts=4\n", "t.wif: line 12: section [WEAVING] comes twice (first on line 3)"),
    (BASE.replace("[WIF]", "[CONTENTS]\nLIFTPLAN=true\n[WIF]"),
     "t.wif: [CONTENTS] line 2: LIFTPLAN=true, but the file has no [LIFTPLAN] section"),
    (BASE.replace("Treadles=4", "Treadles=4\nRising Shed=maybe"),
     "t.wif: [WEAVING] line 6: Rising Shed=maybe, expected true or false"),
    ("[WEAVING]\nShafts=4\n[LIFTPLAN]\n", "t.wif: the lift plan has no picks: [LIFTPLAN] is empty"),
])
def test_malformed_files_name_section_line_value_and_expectation(text, message):
    with pytest.raises(PatternError) as e:
        weave.read_wif(text, "t.wif")
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_a_line_that_is_not_key_value_is_fine_in_a_section_not_read():
    text = BASE + "[NOTES]\nfree text from some weaving program\n"
    assert weave.read_wif(text, "t.wif").picks == [[1, 2], [3, 4]]


def test_files_by_suffix(tmp_path):
    with pytest.raises(PatternError, match="x.txt: unknown draft file type '.txt'"):
        weave.read(tmp_path / "x.txt")
    with pytest.raises(PatternError, match="gone.wif: cannot be read"):
        weave.read(tmp_path / "gone.wif")
    latin = tmp_path / "café.wif"
    latin.write_bytes(("; tissé\n" + LIFTPLAN).encode("latin-1"))
    assert weave.read(latin).picks[0] == [1, 3]


# FiberWorks PCW's text format: tie-up rows are shafts (shaft 1 last), columns treadles.
DTX = """\
@@StartDTX
@@Info
%%shafts 4
%%treadles 4
@@Threading
1 2 3 4 1 2 3 4
@@Tieup
1001
0011
0110
1100
@@Treadling
1 2 3 4 1
@@Color Palet
%%Range 255
240,230,200
40,60,140
@@Warp colors
0 0 0 0 0 0 0 0
@@Weft colors
1 1 1 1 1
@@EndDTX
"""


def test_fiberworks_dtx_through_dtx_to_wif(tmp_path):
    pytest.importorskip("dtx_to_wif")
    f = tmp_path / "twill.dtx"
    f.write_text(DTX)
    d = weave.read(f)
    assert d.picks == [[1, 4], [1, 2], [2, 3], [3, 4], [1, 4]]  # treadle 1 lifts shafts 1 and 4
    assert d.threading == [[1], [2], [3], [4], [1], [2], [3], [4]] and d.shafts == 4
    bad = tmp_path / "bad.dtx"
    bad.write_text("@@StartDTX\n@@Info\n%%shafts 4\n@@EndDTX\n")
    with pytest.raises(PatternError, match="bad.dtx: not a .dtx file dtx-to-wif can read"):
        weave.read(bad)


def test_commands_chunk_the_plan_into_lines_the_board_takes():
    plan = [[s for s in range(1, 33) if (s * 7 + p) % 3] for p in range(300)]
    d = weave.Draft("big.wif", 32, plan)
    cmds = weave.commands(d)
    assert cmds[0] == ("pattern", {"name": "big.wif", "shafts": 32, "picks": 300})
    got = []
    for cmd, args in cmds[1:]:
        assert cmd == "picks" and args["start"] == len(got)
        assert 1 <= len(args["masks"]) <= weave.CHUNK
        line = json.dumps({"id": 12345, "cmd": cmd, "args": args})
        assert len(line) <= weave.MAX_LINE
        got += args["masks"]
    assert got == weave.masks(plan)


def test_a_draft_that_declares_more_shafts_than_it_uses_still_fits():
    d = weave.Draft("template.wif", 16, [[1, 2], [3, 4]], threading=[[1], [2], [3], [4]])
    weave.fits(d, 4)
    assert weave.commands(d)[0][1]["shafts"] == 4
    with pytest.raises(PatternError, match="template.wif needs 4 shafts, but the loom has 3"):
        weave.fits(d, 3)


def test_upload_stops_at_the_first_refusal():
    sent = []

    def send(cmd, args):
        sent.append(cmd)
        return {"ok": cmd != "picks", "error": "busy: nope"}

    with pytest.raises(PatternError, match="twill.wif: the loom refused `picks`: busy: nope"):
        weave.upload(send, weave.Draft("twill.wif", 4, [[1]] * 100))
    assert sent == ["pattern", "picks"]


def test_show_as_text_and_json():
    text = weave.show(TWILL)
    first = text.splitlines()
    assert first[0] == "point_twill_8.wif: 8 shafts (8 used), 14 picks, from tieup x treadling"
    assert first[1] == "    1  ###.#...  1,2,3,5"
    assert "drawdown (first 14 picks, 28 ends):" in text
    data = json.loads(weave.show(TWILL, as_json=True))
    assert data["picks"] == twill_plan() and data["shafts"] == 8 and data["ends"] == 28
    with pytest.raises(PatternError):
        weave.show(TWILL.with_suffix(".txt"))
