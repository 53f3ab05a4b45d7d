"""Virtual time: MicroPython's tick arithmetic, and a scheduler that jumps to the next deadline."""
import pytest

from microfab_sim.world import World


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.modules["vclock"].reset()
    w.modules["vasyncio"].reset()
    return w


def test_ticks_wrap_like_micropython(world):
    t = world.modules["vclock"]
    period = 1 << 30
    assert t.ticks_add(period - 5, 10) == 5
    assert t.ticks_diff(5, period - 5) == 10
    assert t.ticks_diff(period - 5, 5) == -10
    t.now = 1000 * (period + 7)  # ticks_ms wraps after 2**30 ms
    assert t.ticks_ms() == 7


def test_gmtime_mktime_round_trip(world):
    t = world.modules["vclock"]
    assert t.gmtime(t.EPOCH)[:6] == (2026, 1, 1, 0, 0, 0)
    for secs in (0, 951782400, 1767225600, 1767225600 + 86400 * 59 + 3723):
        assert t.mktime(t.gmtime(secs)) == secs


def test_tasks_run_in_deadline_order_and_time_jumps(world):
    aio, clock = world.modules["vasyncio"], world.modules["vclock"]
    seen = []

    async def sleeper(name, ms):
        await aio.sleep_ms(ms)
        seen.append((name, clock.now))

    for name, ms in (("c", 3000), ("a", 1000), ("b", 2000)):
        aio.create_task(sleeper(name, ms))
    aio.run_until(10_000_000)
    assert seen == [("a", 1_000_000), ("b", 2_000_000), ("c", 3_000_000)]
    assert clock.now == 10_000_000


def test_events_flags_cancel_and_timeouts(world):
    aio = world.modules["vasyncio"]
    ev = aio.Event()
    out = []

    async def waiter():
        await ev.wait()
        out.append("woke")

    async def forever():
        try:
            await aio.sleep(1e6)
        except aio.CancelledError:
            out.append("cancelled")
            raise

    async def slow():
        await aio.sleep_ms(5000)

    async def main():
        aio.create_task(waiter())
        t = aio.create_task(forever())
        await aio.sleep_ms(10)
        ev.set()
        t.cancel()
        try:
            await aio.wait_for_ms(slow(), 100)
        except aio.TimeoutError:
            out.append("timeout")
        return 42

    main_task = aio.create_task(main())
    aio.run_until(1_000_000)
    assert out == ["woke", "cancelled", "timeout"]
    assert main_task.done() and main_task.result == 42


def test_hardware_events_fire_before_tasks_due_at_the_same_time(world):
    aio, clock = world.modules["vasyncio"], world.modules["vclock"]
    order = []

    async def task():
        await aio.sleep_ms(5)
        order.append("task")

    aio.create_task(task())
    aio.run_until(0)
    clock.at(5000, lambda _: order.append("irq"))
    aio.run_until(10_000)
    assert order == ["irq", "task"]
