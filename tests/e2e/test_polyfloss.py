"""The polyfloss spinner end to end: the heater PID brings the simulated drum to its setpoint, the
drum refuses to spin before that, every interlock cuts the heater within one control period and
latches a fault until cleared, the relay autotune proposes gains that hold, and a production run
counts grams and kWh/kg as the model made and used them.

Run with -s to see the heat-up and production figures."""
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_pages  # noqa: E402  (beside this file)

# Pico: free pins for the machine's roles (docs/machines/polyfloss.md); step/dir/enable for the
# feed stepper and spi0 (CS GP17) for the thermocouple come from the board file.
PINS = {"heater": 6, "contactor": 7, "drum": 10, "hall": 11, "lid": 12, "hx_clk": 13, "hx_data": 14}
PERIOD = 0.5  # s, period_ms by default


def floss(make_board, model=None, seed=1, **cfg):
    c = {"machine": "polyfloss", "pins": PINS}
    c.update(cfg)
    return make_board(machine=c, model=model, seed=seed)


def hot(make_board, model=None, **cfg):
    """A board heating at its setpoint, in band (the drum starts warm to keep tests short)."""
    m = {"start_c": 215.0}
    m.update(model or {})
    b = floss(make_board, model=m, **cfg)
    assert b.send("heat")["ok"]
    wait_for(b, lambda st: st["in_band"] and abs(st["temp"] - st["setpoint"]) < 3, 300, 5.0)
    return b


def wait_for(b, cond, limit, step=1.0):
    t_end = b.now + limit
    while b.now < t_end:
        st = b.send("status")
        if cond(st):
            return st
        b.advance(step)
    raise AssertionError("condition not met within %s s: %s" % (limit, b.send("status")))


def outputs(b):
    """(SSR pin, contactor pin, drum PWM duty) as the board drives them now."""
    return (b.hw.role("heater").read(), b.hw.role("contactor").read(), b.hw.role("drum").duty)


def to_phase(b, offset=0.1):
    """Advance to `offset` s after a control tick (the ticks fall on multiples of PERIOD)."""
    b.advance(PERIOD - (b.now % PERIOD) + offset)


def test_heats_to_setpoint_with_little_overshoot_and_keeps_its_period(make_board):
    b = floss(make_board)
    m = b.hw.polyfloss
    assert b.send("heat", setpoint=230.0)["ok"]
    trace = []
    for _ in range(900):
        b.advance(1.0)
        trace.append((b.now, m.temp()))
    sp = 230.0
    overshoot = max(t for _, t in trace) - sp
    to_band = next(s for s, t in trace if t >= sp - 10)
    settled = next(trace[i][0] for i in range(len(trace))
                   if all(abs(t - sp) <= 2.0 for _, t in trace[i:]))
    hold = [t - sp for s, t in trace if s > 600]
    print("\nheat-up 22 -> 230 C: in band (10 C) after %.0f s, overshoot %.2f C, settled within "
          "2 C after %.0f s, then held %+.2f..%+.2f C" % (to_band, overshoot, settled,
                                                         min(hold), max(hold)))
    assert 0 <= overshoot < 5.0
    assert to_band < 360 and settled < 480
    assert max(abs(x) for x in hold) < 1.5
    st = b.send("status")
    assert st["heater"] == "heat" and st["in_band"] and st["fault"] == "" and st["contactor"]
    # The control task kept its period: one tick per 500 ms since boot, never late.
    assert st["ticks"] == int(b.now / PERIOD) + 1 and st["late_ms"] == 0 and st["overruns"] == 0
    # Heater energy: rated power x SSR on-time, the same as the model's band received.
    assert st["heater_wh"] == pytest.approx(m.status()["heater_wh"], rel=0.002)


def test_ssr_is_time_proportioned_in_its_window(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    b.advance(120)
    t0 = b.now
    b.advance(30)
    edges = [(e[0] / 1e6, e[1]) for e in m.edges if e[0] / 1e6 > t0]
    ons = [t for t, level in edges if level == 1]
    # Holding takes a part of the power: one pulse per 2 s window at most, starting the window.
    assert 5 < len(ons) <= 15
    assert all(abs(t / 2.0 - round(t / 2.0)) < 1e-6 for t in ons)
    pulses = [t2 - t1 for (t1, l1), (t2, l2) in zip(edges, edges[1:]) if l1 == 1 and l2 == 0]
    assert all(0 < p < 2.0 for p in pulses)
    duty = sum(pulses) / 30
    assert 0.1 < duty < 0.6  # what holding 230 C takes from 600 W (no spinning, no plastic)


def test_drum_refuses_to_spin_before_the_heater_is_in_band(make_board):
    b = floss(make_board)
    m = b.hw.polyfloss
    r = b.send("spin", rpm=3000.0)
    assert not r["ok"] and "the heater is off: send heat first" in r["error"]
    assert b.send("heat")["ok"]
    b.advance(60)
    r = b.send("spin", rpm=3000.0)
    assert not r["ok"] and "not yet within 10.0 C of the setpoint 230.0 C" in r["error"]
    assert b.hw.role("drum").duty == 0 and m.rotor.rpm() == 0
    st = wait_for(b, lambda s: s["in_band"], 400)
    assert abs(st["temp"] - 230) <= 10
    r = b.send("spin", rpm=3000.0)
    assert r["ok"] and r["rpm_target"] == 3000.0
    b.advance(8)
    assert m.rotor.rpm() == pytest.approx(3000, rel=0.03)
    st = b.send("status")
    assert st["rpm"] == pytest.approx(3000, rel=0.05) and st["drum_drive"] > 0.5
    r = b.send("spin", rpm=5000.0)
    assert not r["ok"] and "expected 0 to drum_max_rpm 3000.0" in r["error"]
    # Switching the heat off stops the drum too: plastic sets in a cooling drum.
    assert b.send("stop-heat")["was"] == "heat"
    assert outputs(b) == (0, 0, 0)
    b.advance(10)
    assert m.rotor.rpm() < 50


@pytest.mark.parametrize("inject, words", [
    (lambda m: m.break_sensor(), "thermocouple open"),
    (lambda m: m.short_sensor("gnd"), "thermocouple shorted to GND"),
    (lambda m: m.short_sensor("vcc"), "thermocouple shorted to VCC"),
    (lambda m: m.unplug_sensor(), "no thermocouple converter answers"),
], ids=["open", "short-gnd", "short-vcc", "unplugged"])
def test_thermocouple_fault_cuts_the_heater_within_a_period(make_board, inject, words):
    b = hot(make_board)
    m = b.hw.polyfloss
    assert b.send("spin", rpm=2500.0)["ok"]
    to_phase(b)
    inject(m)
    b.advance(PERIOD)
    assert outputs(b) == (0, 0, 0) and not m.heating
    st = b.send("status")
    assert st["heater"] == "fault" and words in st["fault"] and st["temp"] is None
    event = b.lines("heater_fault")[-1]
    assert event["fault"] == st["fault"] and event["temp"] is None
    assert st["rpm_target"] == 0 and not st["contactor"]
    # Latched: nothing restarts it until the cause is gone and it is cleared.
    r = b.send("heat")
    assert not r["ok"] and "fault latched: " + words in r["error"]
    r = b.send("clear")
    assert not r["ok"] and "still faulty: " + words in r["error"]
    m.heal_sensor()
    b.advance(1)
    assert b.send("clear")["cleared"].startswith(words)
    assert b.send("heat")["ok"]
    b.advance(5)
    assert b.send("status")["heater"] == "heat" and b.hw.role("contactor").read() == 1


def test_stale_reading_trips_after_stale_periods(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    to_phase(b)
    m.freeze_sensor()  # the converter stops converting: the same word on every read
    b.advance(19 * PERIOD - 0.2)  # 19 reads at most: still trusted
    assert b.send("status")["fault"] == ""
    b.advance(PERIOD + 0.2)  # the 20th identical word
    assert outputs(b)[:2] == (0, 0) and not m.heating
    st = b.send("status")
    assert "thermocouple reading stale: the same word 20 reads in a row" in st["fault"]
    m.heal_sensor()
    b.advance(1)
    assert b.send("clear")["ok"] and b.send("heat")["ok"]


def test_over_temperature_cutoff_stops_a_stuck_ssr_through_the_contactor(make_board):
    # noise_c 0: the firmware's reading is the sensor's temperature, to the 0.25 C step. The
    # heating check is off, so that the over-temperature cutoff is what trips.
    b = hot(make_board, model={"noise_c": 0.0}, heat_watch_s=0)
    m = b.hw.polyfloss
    m.stick_ssr()  # the SSR fails shorted: the band heats whatever the firmware drives
    t_cross = None
    while b.now < 2000 and b.hw.role("contactor").read() == 1:
        b.advance(0.05)
        if t_cross is None and m.status()["sensor_c"] >= 300.0 - 0.125:
            t_cross = b.now
    t_cut = [e[0] for e in m.edges if e[2] == 0][-1] / 1e6
    st = b.send("status")
    assert "over-temperature" in st["fault"] and "max_temp 300.0 C" in st["fault"]
    assert t_cross is not None and t_cut - t_cross <= PERIOD + 0.05
    assert b.hw.role("heater").read() == 0 and not m.heating  # stuck, but no longer powered
    r = b.send("clear")
    assert not r["ok"] and "wait until it is below 290.0 C" in r["error"]
    b.advance(120)
    s = m.status()
    print("\nstuck SSR: contactor cut %.2f s after the sensor reached 300 C; drum peaked at %.1f C,"
          " %.1f C two minutes later" % (t_cut - t_cross, s["peak_c"], s["drum_c"]))
    assert s["peak_c"] < 310 and s["drum_c"] < 290
    assert b.send("clear")["ok"]


def test_heating_check_finds_a_stuck_ssr_before_max_temp(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    b.advance(60)
    m.stick_ssr()
    st = wait_for(b, lambda s: s["fault"], 300)
    assert "with the SSR off; the SSR has probably failed shorted" in st["fault"]
    assert b.hw.role("contactor").read() == 0 and not m.heating
    print("\nstuck SSR found by the heating check at %.1f C (peak %.1f C)"
          % (st["temp"], m.status()["peak_c"]))
    assert m.status()["peak_c"] < 290


def test_lid_open_stops_drum_and_heater_at_once(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    assert b.send("spin", rpm=3000.0)["ok"]
    b.advance(6)
    assert m.rotor.rpm() > 2500
    to_phase(b, 0.2)
    m.open_lid()
    assert outputs(b) == (0, 0, 0)  # in the pin interrupt, before any task ran
    b.advance(PERIOD)
    st = b.send("status")
    assert st["fault"] == "lid opened: drum and heater stopped" and st["lid"] == "open"
    assert not b.send("heat")["ok"]
    r = b.send("clear")
    assert not r["ok"] and "lid is open" in r["error"]
    b.advance(10)
    assert m.rotor.rpm() < 100  # coasted down
    m.close_lid()
    assert b.send("clear")["ok"] and b.send("heat")["ok"]


def test_opening_the_lid_of_an_idle_machine_is_no_fault(make_board):
    b = floss(make_board)
    m = b.hw.polyfloss
    m.open_lid()
    b.advance(1)
    st = b.send("status")
    assert st["fault"] == "" and st["lid"] == "open"
    r = b.send("heat")
    assert not r["ok"] and r["error"] == "lid is open: close it first"
    m.close_lid()
    assert b.send("heat")["ok"]


def test_max6675_cannot_see_a_short_but_the_heating_check_can(make_board):
    b = floss(make_board, sensor="max6675")
    m = b.hw.polyfloss
    m.short_sensor("gnd")  # reads the cold junction (~25 C) and flags nothing
    assert b.send("heat")["ok"]
    b.advance(59)
    assert b.send("status")["fault"] == "" and m.heating
    b.advance(2)
    st = b.send("status")
    assert st["fault"].startswith("heating check: 60 s at full power raised the drum")
    assert outputs(b)[:2] == (0, 0)
    assert m.temp() < 150  # a minute of blind heating, then cut


def test_max6675_heats_and_flags_an_open_thermocouple(make_board):
    b = hot(make_board, sensor="max6675")
    assert abs(b.send("status")["temp"] - 230) <= 10
    to_phase(b)
    b.hw.polyfloss.break_sensor()
    b.advance(PERIOD)
    assert outputs(b)[:2] == (0, 0)
    assert "thermocouple open" in b.send("status")["fault"]


def test_autotune_proposes_gains_that_hold_the_setpoint(make_board):
    b = floss(make_board)
    m = b.hw.polyfloss
    r = b.send("autotune", timeout=3600)
    assert r["ok"] and r["applied"] and r["setpoint"] == 230.0
    assert 0 < r["kp"] < 1 and 0 < r["ki"] < 0.1 and 0 < r["kd"] < 20
    assert 20 < r["tu_s"] < 200 and r["amplitude"] > 1.0
    tuned_at = b.now
    print("\nautotune: Ku %.3f /C, Tu %.1f s, amplitude %.2f C -> kp %.4f, ki %.5f, kd %.3f after "
          "%.0f s" % (r["ku"], r["tu_s"], r["amplitude"], r["kp"], r["ki"], r["kd"], tuned_at))
    st = b.send("status")
    assert st["heater"] == "heat" and st["kp"] == r["kp"]
    temps = []
    for _ in range(300):
        b.advance(1)
        temps.append(m.temp())
    print("held with the tuned gains: %.2f..%.2f C" % (min(temps[60:]), max(temps[60:])))
    assert max(abs(t - 230) for t in temps[60:]) < 2.0
    # The gains hold a new setpoint too.
    assert b.send("heat", setpoint=240.0)["ok"]
    b.advance(400)
    assert abs(m.temp() - 240) < 2.0


def test_autotune_stops_on_stop_and_refuses_heat_meanwhile(make_board):
    b = floss(make_board)
    rid = b.request("autotune", {"setpoint": 200.0})
    b.advance(30)
    r = b.send("heat")
    assert not r["ok"] and "autotune is running" in r["error"]
    st = b.send("status")
    assert st["heater"] == "tune" and st["busy"] == "autotune"
    assert b.send("stop")["stopped"] == "tune"
    b.advance(1)
    assert b.replies[rid]["error"] == "autotune stopped: stop"
    assert outputs(b) == (0, 0, 0)
    r = b.send("autotune", setpoint=295.0)
    assert not r["ok"] and "setpoint 295.0 C is out of range" in r["error"]


def test_production_run_counts_grams_and_energy_per_kg(make_board):
    b = hot(make_board, model={"charge_g": 20.0}, feed_driver="tmc2209")
    m = b.hw.polyfloss
    r = b.send("feed", g_min=10.0)
    assert not r["ok"] and "the drum is not spinning: send spin first" in r["error"]
    assert b.send("tare")["ok"]
    floss0, wh0 = m.floss, b.send("status")["heater_wh"]
    assert b.send("spin", rpm=3000.0)["ok"]
    b.advance(5)
    assert b.send("feed", g_min=15.0)["ok"]
    b.advance(150)
    made_before = m.floss
    m.empty_bowl()  # the maker takes the floss out halfway: production counting goes on
    b.advance(150)
    st = b.send("status")
    truth = m.status()
    made = made_before - floss0 + truth["floss_g"]
    print("\nproduction, 5 min at 3000 rpm fed 15 g/min: %.1f g counted (model %.1f g), %.0f g/h, "
          "%.2f kWh/kg (heater %.1f Wh incl. %.1f Wh heat-up, drum %.2f Wh)"
          % (st["produced_g"], made, st["g_per_h"], st["kwh_per_kg"], st["heater_wh"], wh0,
             st["drum_wh"]))
    # Counted from a 4 s average, once a second: the count lags about 2 s of production at the
    # end and loses as much when the bowl is emptied.
    assert st["produced_g"] == pytest.approx(made, rel=0.03)
    assert st["fed_g"] == pytest.approx(truth["fed_g"], abs=0.1) and st["fed_g"] > 70
    assert st["grams"] == pytest.approx(truth["floss_g"], abs=1.0)  # the bowl now, 4 s average
    assert st["heater_wh"] == pytest.approx(truth["heater_wh"], rel=0.002)
    assert st["g_per_h"] == pytest.approx(st["produced_g"] / (st["spin_s"] / 3600), rel=0.01)
    assert 600 < st["g_per_h"] < 1200
    wh = st["heater_wh"] + st["drum_wh"]
    assert st["kwh_per_kg"] == pytest.approx(wh / st["produced_g"], rel=0.01)
    assert 0.3 < st["kwh_per_kg"] < 3
    assert st["in_band"] and st["feed_g_min"] == 15.0
    assert b.send("feed", g_min=0.0)["ok"] and b.hw.role("enable").read() == 1


def test_stop_turns_everything_off(make_board):
    b = hot(make_board, feed_driver="a4988")
    assert b.send("spin", rpm=3000.0)["ok"] and b.send("feed", g_min=5.0)["ok"]
    b.advance(3)
    assert b.hw.role("enable").read() == 0
    assert b.send("stop")["stopped"] == "heat, spin"
    assert outputs(b) == (0, 0, 0) and b.hw.role("enable").read() == 1
    st = b.send("status")
    assert st["heater"] == "off" and st["fault"] == "" and st["feed_g_min"] == 0


def test_a_reset_brings_the_outputs_up_off(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    assert b.send("spin", rpm=3000.0)["ok"]
    b.advance(5)
    b.reset()
    assert b.boots == 2 and outputs(b) == (0, 0, 0) and not m.heating
    b.advance(15)
    st = b.send("status")
    assert st["heater"] == "off" and st["rpm"] < 50 and m.rotor.rpm() < 50
    assert st["temp"] < 235  # the hot drum, read again after the reboot


def test_the_watchdog_resets_a_board_whose_sampler_died_and_outputs_come_up_off(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss
    assert b.send("spin", rpm=3000.0)["ok"]

    def broken():
        raise OSError(5, "EIO")  # the supply sensor fails: the sampler task dies

    b.hw.analogs[b.board_cfg["pins"]["vsense"]] = broken
    b.advance(1.5)
    assert b.lines("fault")[-1]["task"] == "sampler"
    assert outputs(b) == (0, 0, 0)  # made safe at once, the machine's safe() included
    assert b.send("status")["fault"].startswith("task fault")
    b.advance(10)  # no more beats: the watchdog (8 s) resets the board
    assert b.boots == 2 and b.lines("boot")[-1]["reset_cause"] == "watchdog"
    assert outputs(b) == (0, 0, 0) and not m.heating
    st = b.send("status")
    assert st["heater"] == "off" and st["fault"] == "" and st["temp"] is not None


def test_a_crashed_control_task_leaves_everything_off(make_board):
    b = hot(make_board)
    m = b.hw.polyfloss

    def broken(data):
        raise RuntimeError("bus wedged")  # not an OSError: a bug, which crashes the task

    m.tc.transfer = broken
    b.advance(1)
    fault = b.lines("fault")[0]
    assert fault["task"] == "polyfloss" and "RuntimeError" in fault["error"]
    assert outputs(b) == (0, 0, 0) and not m.heating
    st = b.send("status")
    assert st["state"] == "fault" and st["fault"].startswith("task fault: outputs made safe")
    r = b.send("clear")
    assert not r["ok"] and "the control task has stopped: reset the board" in r["error"]


def test_esc_drive_sends_servo_pulses(make_board):
    b = hot(make_board, drum_drive="esc", hall_per_rev=2)
    m = b.hw.polyfloss
    pin = b.hw.role("drum")
    assert pin.freq == 50 and pin.duty == pytest.approx(1.0 / 20, abs=1e-4)  # 1 ms: stopped
    assert b.send("spin", rpm=2400.0)["ok"]
    b.advance(10)
    assert 1.0 / 20 < pin.duty < 2.0 / 20
    assert m.rotor.rpm() == pytest.approx(2400, rel=0.03)


def test_runs_on_an_esp32_with_the_documented_wiring(make_board):
    pins = {"heater": 32, "contactor": 4, "drum": 13, "hall": 2, "lid": 15, "hx_clk": 14,
            "hx_data": 36}
    b = make_board(board="esp32_devkitc", machine={"machine": "polyfloss", "pins": pins},
                   model={"start_c": 215.0})
    assert b.send("heat")["ok"]
    wait_for(b, lambda st: st["in_band"], 200, 5.0)
    assert b.send("spin", rpm=3000.0)["ok"]
    b.advance(8)
    assert b.send("status")["rpm"] == pytest.approx(3000, rel=0.05)


def test_same_seed_same_run(make_board):
    def run():
        b = hot(make_board, feed_driver="tmc2209")
        b.send("tare")
        b.send("spin", rpm=2800.0)
        b.send("feed", g_min=8.0)
        b.advance(30)
        return b.log, b.hw.polyfloss.status(), b.now

    assert run() == run()


def test_telemetry_carries_the_heater_and_production_fields(make_board):
    b = hot(make_board)
    b.advance(20)
    tele = b.telemetry()[-1]
    assert tele["heater"] == "heat" and abs(tele["temp"] - 230) < 10
    assert {"produced_g", "kwh_per_kg", "rpm", "duty", "fault"} <= set(tele)


@pytest.mark.parametrize("cfg, words", [
    ({"setpoint": 295.0}, "setpoint 295.0 + band 10.0 must stay below max_temp 300.0"),
    ({"sensor": "max6677"}, "'sensor' is 'max6677', expected one of max31855, max6675"),
    ({"period_ms": 100}, "'period_ms' is 100, expected a whole number from 250 to 5000 ms"),
])
def test_bad_config_boots_into_config_error(make_board, cfg, words):
    b = floss(make_board, **cfg)
    assert words in b.lines("config_error")[0]["error"]
    assert b.hw.role("heater").read() == 0


def test_the_host_names_a_role_the_config_does_not_wire():
    from microfab import config

    with pytest.raises(config.ConfigError) as e:
        config.check(config.board_data("pico"), {"machine": "polyfloss"})
    assert "'heater' is not wired on board pico" in str(e.value)
    ok = config.check(config.board_data("pico"), {"machine": "polyfloss", "pins": PINS})
    assert ok["pins"]["step"] == 2 and ok["pins"]["heater"] == 6


DOC = Path(__file__).resolve().parents[2] / "docs" / "machines" / "polyfloss.md"


def test_docs_name_every_key_role_command_and_argument(make_board):
    from fab.machines import polyfloss

    page = DOC.read_text()
    assert machine_pages.unnamed(page, [f[0] for f in polyfloss.SCHEMA], "| `%s` |") == []
    assert machine_pages.unnamed(page, polyfloss.PINS) == []
    table = floss(make_board).send("hello")["commands"]
    assert machine_pages.unnamed_commands(page, table, ("heat", "stop-heat", "spin", "feed",
                                                        "autotune", "tare", "clear"),
                                          "| `%s` |") == []


@pytest.mark.parametrize("name, col", machine_pages.BOARD_COLUMNS)
def test_docs_wiring_is_valid_on_every_board(name, col):
    import microfab_boards
    from microfab import config

    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4:
            rows[cells[0].split(" ")[0]] = cells[col]
    pins = {role: int(re.search(r"(\d+)", rows[role]).group(1)) for role in PINS}
    board = microfab_boards.load(name)
    cfg = config.check(board, {"machine": "polyfloss", "pins": pins})  # valid, no two alike
    clash = machine_pages.taken(board) & set(pins.values())
    assert not clash, (name, clash)
    # The rows for what the board file wires say what the board file says.
    spi = board["buses"]["spi0"]
    assert [int(x) for x in re.findall(r"(\d+)", rows["thermocouple"])] == \
        [spi["miso"], spi["sck"], spi["cs"]]
    assert [int(x) for x in re.findall(r"(\d+)", rows["feed"])] == \
        [cfg["pins"]["step"], cfg["pins"]["dir"], cfg["pins"]["enable"]]
