"""Images into needle rows for the knitting machine: placement, colours, modes, and refusals."""
import json

import pytest

pytest.importorskip("PIL", reason="Pillow reads the pattern images (pip install pillow)")
from PIL import Image  # noqa: E402

from microfab.patterns import knit  # noqa: E402
from microfab.patterns.knit import PatternError  # noqa: E402


def picture(path, rows, mode="L", scale=None):
    """An image from strings of '#' (black) and '.' (white), top row first."""
    w, h = len(rows[0]), len(rows)
    im = Image.new("L", (w, h), 255)
    for y, line in enumerate(rows):
        for x, c in enumerate(line):
            if c == "#":
                im.putpixel((x, y), 0)
    if mode != "L":
        im = im.convert(mode)
    im.save(path)
    return path


ARROW = ["..#..",
         ".###.",
         "#####",
         "..#..",
         "..#.."]


def test_an_image_is_centred_and_knitted_from_its_bottom_row(tmp_path):
    pat = knit.read(picture(tmp_path / "arrow.png", ARROW))
    assert (pat.width, pat.height, pat.first, pat.last) == (5, 5, 97, 101)
    assert all(len(r) == 200 for r in pat.rows)
    window = [r[97:102] for r in pat.rows]
    assert window == ["00100", "00100", "11111", "01110", "00100"]  # bottom row first
    assert all(set(r[:97] + r[102:]) == {"0"} for r in pat.rows)
    assert pat.start_args() == {"first": 97, "last": 101, "rows": 5}


def test_an_offset_puts_the_left_column_on_that_needle(tmp_path):
    pat = knit.read(picture(tmp_path / "a.png", ARROW), left=0)
    assert pat.rows[2][:5] == "11111" and pat.first == 0
    pat = knit.read(picture(tmp_path / "a.png", ARROW), left=195)
    assert pat.rows[2][195:] == "11111" and pat.last == 199
    with pytest.raises(PatternError) as e:
        knit.read(tmp_path / "a.png", left=196)
    assert str(e.value) == ("a.png: 5 pixels wide from needle 196 needs needles 196..200, but "
                            "the KH-910 bed has needles 0..199")


def test_double_bed_jacquard_knits_two_passes_a_row_one_per_colour(tmp_path):
    pat = knit.read(picture(tmp_path / "a.png", ARROW), mode="dbj")
    assert len(pat.rows) == 10
    for k in range(5):
        a, b = pat.rows[2 * k][97:102], pat.rows[2 * k + 1][97:102]
        assert all(x != y for x, y in zip(a, b))  # every needle in exactly one pass
    assert pat.rows[0][97:102] == "00100" and pat.rows[1][97:102] == "11011"
    assert all(set(r[:97] + r[102:]) == {"0"} for r in pat.rows)  # nothing off the image


def test_colours_threshold_invert_transparency_and_mirror(tmp_path):
    im = Image.new("RGBA", (4, 1), (255, 255, 255, 255))
    im.putpixel((0, 0), (0, 0, 0, 255))  # black
    im.putpixel((1, 0), (100, 100, 100, 255))  # dark grey
    im.putpixel((2, 0), (0, 0, 0, 0))  # transparent: white
    im.putpixel((3, 0), (200, 200, 200, 255))  # light grey
    im.save(tmp_path / "c.png")
    row = lambda **kw: knit.read(tmp_path / "c.png", left=0, **kw).rows[0][:4]  # noqa: E731
    assert row() == "1100"
    assert row(threshold=60) == "1000"
    assert row(threshold=250) == "1101"
    assert row(invert=True) == "0011"
    assert row(mirror=True) == "0011"
    with pytest.raises(PatternError, match="threshold 0 is out of range; expected 1 to 255"):
        row(threshold=0)


@pytest.mark.parametrize("suffix,mode", [(".jpg", "RGB"), (".bmp", "RGB"), (".gif", "P"),
                                         (".png", "1")])
def test_jpeg_bmp_gif_and_bilevel_images_read_the_same(tmp_path, suffix, mode):
    # 8 x 8 pixels a cell, so that JPEG's blur stays off the threshold mid-cell
    big = ["".join(c * 8 for c in line) for line in ARROW for _ in range(8)]
    p = picture(tmp_path / ("a" + suffix), big, mode)
    pat = knit.read(p, left=0)
    assert len(pat.rows) == 40
    mid = [pat.rows[8 * k + 4][4:40:8] for k in range(5)]  # mid-cell, bottom row first
    assert mid == ["00100", "00100", "11111", "01110", "00100"]


def test_an_image_wider_than_the_bed_is_refused(tmp_path):
    Image.new("L", (240, 3), 0).save(tmp_path / "pattern.png")
    with pytest.raises(PatternError) as e:
        knit.read(tmp_path / "pattern.png")
    assert str(e.value) == "pattern.png: 240 pixels wide, the KH-910 bed has 200 needles"
    Image.new("L", (120, 3), 0).save(tmp_path / "wide.png")
    with pytest.raises(PatternError) as e:
        knit.read(tmp_path / "wide.png", machine="kh270")
    assert str(e.value) == "wide.png: 120 pixels wide, the KH-270 bed has 112 needles"
    assert len(knit.read(tmp_path / "wide.png").rows[0]) == 200  # fine on a KH-910


def test_unreadable_images_say_so_in_one_line(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(PatternError) as e:
        knit.read(tmp_path / "notes.png")
    assert str(e.value) == "notes.png: not an image Pillow can read: expected PNG, JPEG, BMP or GIF"
    with pytest.raises(PatternError, match="no such file"):
        knit.read(tmp_path / "missing.png")
    with pytest.raises(PatternError, match="mode 'fair' is not known; expected single or dbj"):
        knit.read(picture(tmp_path / "a.png", ARROW), mode="fair")
    with pytest.raises(PatternError, match="unknown machine 'loom'"):
        knit.read(tmp_path / "a.png", machine="loom")


def test_rows_go_to_the_board_lsb_first_and_to_json_one_char_per_needle(tmp_path):
    row = "1" + "0" * 8 + "1" + "0" * 190
    assert knit.row_hex(row) == "0102" + "00" * 23
    assert knit.row_b64("1" * 200) == "/" * 32 + "/w=="
    pat = knit.read(picture(tmp_path / "a.png", ARROW))
    assert knit.to_json(pat.rows) == {"rows": pat.rows}


def test_show_prints_the_selection_as_it_will_look_or_json(tmp_path):
    p = picture(tmp_path / "arrow.png", ARROW)
    text = knit.show(p, False, "knitter")
    lines = text.splitlines()
    assert lines[0] == "arrow.png: 5 x 5 pixels on the KH-910 (200 needles), single bed"
    assert "needles 97..101 (bed L3..R2), 5 rows" in lines[1]
    assert lines[2:] == ["    5 ..#..", "    4 .###.", "    3 #####", "    2 ..#..",
                         "    1 ..#.."]
    data = json.loads(knit.show(p, True, "knitter"))
    assert data["rows"] == knit.read(p).rows and (data["first"], data["last"]) == (97, 101)
    dbj = knit.show(p, False, "kh270", mode="dbj").splitlines()
    assert "KH-270 (112 needles), double-bed jacquard" in dbj[0]
    assert dbj[2:4] == ["   5a ..#..", "   5b ##.##"]


def test_needle_labels_follow_the_bed_markings():
    assert [knit.needle_label(i) for i in (0, 99, 100, 199)] == ["L100", "L1", "R1", "R100"]
    assert [knit.needle_label(i, 112) for i in (0, 55, 56, 111)] == ["L56", "L1", "R1", "R56"]
