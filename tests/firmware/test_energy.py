"""fab.energy: Wh per channel at a fixed sample rate, state of charge by coulomb counting and its
re-zeroing at full and at cut-off, and the policy machines ask before they run."""
import pytest

from microfab import config  # noqa: F401  puts the firmware's `fab` package on sys.path
from fab import config as fw  # noqa: E402
from fab import energy  # noqa: E402


def settings(**kw):
    return fw.check("machine config", kw, energy.SCHEMA)


def run(e, seconds, volts, gen_a, load_a, dt=1.0):
    """Feed `seconds` of constant samples; returns the re-zero reasons reported."""
    out = []
    for _ in range(int(seconds / dt)):
        why = e.sample(volts, gen_a, load_a, volts * gen_a, volts * load_a, dt)
        if why:
            out.append(why)
    return out


def test_wh_per_channel_at_any_sample_rate():
    for dt in (1.0, 0.25, 5.0):
        e = energy.Energy(settings())
        run(e, 3600, 12.5, 2.0, 0.8, dt)  # 25 W in, 10 W out for an hour
        assert e.harvested_wh == pytest.approx(25.0)
        assert e.used_wh == pytest.approx(10.0)
        assert e.bat_in_wh == pytest.approx(15.0) and e.bat_out_wh == 0.0
        run(e, 1800, 12.0, 0.0, 2.5, dt)  # calm: 30 W from the battery for half an hour
        assert e.bat_out_wh == pytest.approx(15.0)
        assert e.harvested_wh - e.used_wh == pytest.approx(e.bat_in_wh - e.bat_out_wh, abs=1e-9)
        assert e.samples == int(3600 / dt) + int(1800 / dt)


def test_soc_counts_charge_at_its_efficiency_and_discharge_in_full():
    e = energy.Energy(settings(battery_ah=40.0, charge_eff=0.9, soc_start=0.5))
    run(e, 3600, 12.6, 5.0, 1.0)  # 4 A into the battery for an hour: 3.6 Ah stored
    assert e.soc == pytest.approx(0.5 + 3.6 / 40)
    run(e, 3600, 12.2, 0.0, 4.0)  # 4 Ah out
    assert e.soc == pytest.approx(0.5 + 3.6 / 40 - 4 / 40)
    assert e.bat_a == pytest.approx(-4.0)


def test_soc_re_zeroes_at_full_only_with_a_tail_current_held():
    e = energy.Energy(settings(soc_start=0.8, full_v=14.1, full_a=0.5))
    assert run(e, 600, 14.4, 3.0, 0.4) == []  # bulk: high voltage, but 2.6 A still going in
    assert e.soc < 0.9
    assert run(e, 59, 14.4, 0.7, 0.4) == [] and e.soc < 0.9  # tail current, not yet a minute
    assert run(e, 2, 14.4, 0.7, 0.4) == ["full"]
    assert e.soc == 1.0 and e.rezeros == 1 and e.rezeroed == "full"
    assert run(e, 600, 14.4, 0.7, 0.4) == []  # staying full is not news
    e.set_soc(0.95)
    assert run(e, 600, 13.2, 0.7, 0.4) == [] and e.soc < 1.0  # low voltage: not full


def test_soc_re_zeroes_at_the_cut_off_but_not_on_one_dip():
    e = energy.Energy(settings(soc_start=0.4, cutoff_v=11.6))
    for volts in (11.5, 12.0, 11.4, 12.0):  # motor start-up dips, one sample each
        e.sample(volts, 0.0, 3.0, 0.0, volts * 3.0, 1.0)
    assert e.soc > 0.35
    assert run(e, 3, 11.55, 0.0, 2.0) == ["cutoff"]
    assert e.soc == 0.0 and e.rezeroed == "cutoff"
    assert run(e, 10, 11.5, 0.0, 2.0) == []  # already empty


def test_forecast_follows_the_harvest_over_its_time_constant():
    e = energy.Energy(settings(forecast_s=600))
    run(e, 600, 13.0, 40 / 13, 0.0)
    assert e.forecast_w == pytest.approx(40 * (1 - 2.718281828 ** -1), rel=0.01)
    run(e, 6000, 13.0, 40 / 13, 0.0)
    assert e.forecast_w == pytest.approx(40, rel=0.001)


def test_a_missed_sample_holds_the_soc_and_counts_as_a_gap():
    e = energy.Energy(settings(soc_start=0.6))
    run(e, 10, 12.4, 1.0, 0.5)
    soc, wh = e.soc, e.harvested_wh
    for _ in range(30):
        e.missed(1.0)
    assert e.soc == soc and e.harvested_wh == wh and e.gap_s == 30.0


def policy(soc, forecast_w=0.0, **kw):
    e = energy.Energy(settings(battery_ah=40.0, soc_start=soc, **kw))
    run(e, 1, 12.0, 0.0, 0.0)
    e.forecast_w = forecast_w
    return e, energy.Policy(e, settings(**kw), 0.3)


def test_policy_speed_from_soc_and_forecast():
    e, p = policy(0.8)  # 0.5 of 40 Ah at 12 V above the floor, over 2 h: 120 W, full speed
    assert p.speed(30.0) == 1.0 and p.why == "ok"
    e.soc = 0.35  # 24 Wh above the floor: 12 W over the horizon
    assert p.speed(30.0) == pytest.approx(12 / 30)
    e.forecast_w = 9.0  # and the wind brings 9 W
    assert p.speed(30.0) == pytest.approx(21 / 30)
    e.forecast_w, e.soc = 0.0, 0.31  # 2.4 W: under the minimum speed, not worth running
    assert p.speed(30.0) == 0.0 and p.why == "budget"
    e.forecast_w = 9.0  # 11.4 W = 0.38: above the minimum, but a stopped load needs a margin
    assert p.speed(30.0) == 0.0
    e.forecast_w = 10.0
    assert p.speed(30.0) == pytest.approx(12.4 / 30)


def test_policy_never_runs_at_the_floor_and_waits_for_resume():
    e, p = policy(0.5, forecast_w=100.0, floor_soc=0.3, resume_soc=0.4)
    assert p.speed(30.0) == 1.0
    e.soc = 0.3  # however windy the forecast
    assert p.speed(30.0) == 0.0 and p.why == "floor"
    e.soc = 0.39
    assert p.speed(30.0) == 0.0 and p.why == "floor"
    e.soc = 0.4
    assert p.speed(30.0) == 1.0 and p.why == "ok"


def test_policy_stops_without_readings():
    e, p = policy(0.9)
    assert p.speed(30.0) == 1.0
    for _ in range(energy.STALE_S + 1):
        e.missed(1.0)
    assert p.speed(30.0) == 0.0 and p.why == "no reading"


@pytest.mark.parametrize("kw, words", [
    ({"floor_soc": 0.5, "resume_soc": 0.4}, "resume_soc 0.4 must be above floor_soc 0.5"),
    ({"cutoff_v": 14.5}, "cutoff_v 14.5 V must be below full_v 14.1 V"),
])
def test_contradictory_settings_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        energy.Energy(settings(**kw))
    with pytest.raises(ValueError, match="soc must be from 0.0 to 1.0"):
        energy.Energy(settings()).set_soc(1.5)
