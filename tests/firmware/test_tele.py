"""Production and energy records (fab/tele.py): what each machine counts, totals that carry on
across resets and power cuts from the journal, and a machine re-configured to another unit that
starts its own count."""
import json

import pytest

from microfab import pinouts  # noqa: F401  (the firmware's `fab` on sys.path)

RIG_PINS = {"anemometer": 6, "rotor": 7, "row": 10, "brake": 11, "motor": 12}
LOOM = {"machine": "loom", "shafts": 8, "shaft_pins": [10, 11, 12, 13, 14, 15, 22, 26],
        "pins": {"pedal": 6}, "report_s": 2}


def rig(make_board, **cfg):
    machine = dict({"machine": "windrig", "pins": RIG_PINS, "report_s": 60, "mode": "direct"},
                   **cfg)
    return make_board(machine=machine, model={"wind": {"replay": [[0, 9.0]]}}, seed=2)


def last(b, kind):
    recs = b.telemetry(kind)
    return recs[-1] if recs else None


def test_a_wind_rigs_energy_and_rows_carry_on_after_a_reset(make_board):
    b = rig(make_board, journal=True)
    b.advance(1800)
    e1, p1 = last(b, "energy"), last(b, "production")
    assert e1["harvested_wh"] > 1.0 and p1["unit"] == "rows" and p1["units"] > 50
    # the energy record is the meter the status shows, since this boot
    st = b.send("status")
    assert st["harvested_wh"] == pytest.approx(e1["harvested_wh"], abs=0.2)
    b.send("soc", value=0.83)  # as if a re-zero had found it so
    b.advance(60)
    e1, p1 = last(b, "energy"), last(b, "production")
    assert e1["soc"] == pytest.approx(0.83, abs=0.01)

    b.reset()  # the power goes: the board counts from 0 again
    b.advance(600)
    e2, p2 = last(b, "energy"), last(b, "production")
    st = b.send("status")
    assert st["harvested_wh"] < e1["harvested_wh"]  # status: since this boot
    # (the status is read a moment after the record: ~50 W of harvest)
    assert e2["harvested_wh"] == pytest.approx(e1["harvested_wh"] + st["harvested_wh"], abs=0.05)
    assert e2["used_wh"] >= e1["used_wh"] and e2["bat_in_wh"] >= e1["bat_in_wh"]
    assert p2["units"] == p1["units"] + st["rows"] and st["rows"] > 0
    # the battery's state of charge came back too, not soc_start's 0.5
    after = [r for r in b.telemetry("energy") if r["seq"] > e1["seq"]]
    assert after[0]["soc"] == pytest.approx(0.83, abs=0.02)


def test_without_a_journal_the_totals_count_from_boot(make_board):
    b = rig(make_board)
    b.advance(600)
    before = last(b, "energy")["harvested_wh"]
    b.reset()
    b.advance(120)
    assert last(b, "energy")["harvested_wh"] < before


def test_energy_records_are_journaled_and_a_piece_label_is_a_record(make_board):
    b = rig(make_board, journal=True, piece_rows=20)
    b.advance(900)
    pieces = b.lines("piece")
    assert pieces and all(isinstance(p["seq"], int) for p in pieces)
    on_flash = {seq: (kind, rec) for seq, ts, kind, rec in
                b.world.get("fab.journal").Journal(segments=8).pending()}
    kind, rec = on_flash[pieces[0]["seq"]]
    assert kind == "piece" and rec["rows"] == 20 and rec["harvested_wh"] == pieces[0]["harvested_wh"]
    assert {k for k, r in on_flash.values()} >= {"status", "production", "energy", "piece"}


def press(b):
    b.hw.models["loom"].press_pedal(hold_ms=150)
    b.advance(0.4)


def test_a_loom_counts_the_picks_the_cloth_grew_by_and_keeps_them_over_a_reset(make_board):
    from microfab.patterns import weave
    from pathlib import Path

    b = make_board(machine=dict(LOOM, journal=True))
    twill = weave.read(Path(__file__).resolve().parents[1] / "data" / "point_twill_8.wif")
    weave.upload(lambda cmd, args: b.send(cmd, **args), twill, loom_shafts=8)
    for _ in range(10):
        press(b)
    b.send("direction", dir="unweave")
    for _ in range(3):  # a mistake, taken out...
        press(b)
    b.send("direction", dir="weave")
    for _ in range(3):  # ...and woven again: not counted twice
        press(b)
    b.advance(61)  # a changed total is recorded at most once a minute
    assert last(b, "production") == {"units": 10, "unit": "picks", "seq": last(b, "production")[
        "seq"], "tele": "production"}
    press(b)
    b.advance(61)  # the 11th pick is on flash
    press(b)  # the 12th is not, when the power goes
    b.reset()
    b.advance(3)
    assert last(b, "production")["units"] == 11


def test_a_board_configured_as_another_machine_starts_its_own_count(make_board):
    b = make_board(machine={"machine": "axis", "report_s": 2, "journal": True})
    b.send("home")
    assert b.send("job", moves=[[50.0, 40.0], [10.0, 40.0]], repeat=3)["ok"]
    b.advance(61)
    assert last(b, "production")["units"] == 6
    cfg = b.root / "config" / "machine.json"
    cfg.write_text(json.dumps(dict(LOOM, journal=True)))
    b.reset()
    b.advance(3)
    assert last(b, "production") == {"units": 0, "unit": "picks",
                                     "seq": last(b, "production")["seq"], "tele": "production"}


def test_a_polyfloss_reports_grams_and_the_heaters_energy(make_board):
    pins = {"heater": 6, "contactor": 7, "drum": 10, "hall": 11, "lid": 12, "hx_clk": 13,
            "hx_data": 14}
    b = make_board(machine={"machine": "polyfloss", "pins": pins, "report_s": 5},
                   model={"start_c": 25.0})
    b.send("heat")
    b.advance(120)
    e, p = last(b, "energy"), last(b, "production")
    # the status record of the same report: just before them
    st = [t for t in b.telemetry("status") if t["seq"] < p["seq"]][-1]
    assert p["unit"] == "g" and p["units"] == st["produced_g"]
    assert e["used_wh"] > 0 and e["power_w"] >= 0 and set(e) == {
        "used_wh", "power_w", "seq", "tele"}
    st = [t for t in b.telemetry("status") if t["seq"] < e["seq"]][-1]
    assert e["used_wh"] == pytest.approx(st["heater_wh"] + st["drum_wh"], abs=0.01)


def test_a_machine_that_names_a_field_its_status_lacks_gets_a_reason_not_a_crash(make_board):
    # An extension's machine with a typo in PRODUCTION: the fab.tele of a running board, fed
    # what that machine's status would give.
    b = make_board(machine={"machine": "axis", "report_s": 2})
    tele = b.world.get("fab.tele")

    class Winder:
        PRODUCTION = ("total_mm", "m")  # its status says total_m
        ENERGY = ("used_wh",)

    sent = []
    rt = type("Rt", (), {"machine": Winder(), "emit": lambda self, r: sent.append(r)})()
    t = tele.Tele(rt)
    t.report({"total_m": 5.0, "used_wh": 1.5})
    assert [r["tele"] for r in sent] == ["status", "energy"]  # the rest goes out as ever
    out: dict = {}
    t.status(out)
    assert out["tele_error"] == "PRODUCTION names total_mm, which the machine's status does not have"
