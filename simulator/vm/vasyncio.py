# `asyncio` on virtual time, after MicroPython's own asyncio core: awaitables queue the current
# task themselves and yield None, so the loop only ever resumes tasks. When no task is ready the
# clock jumps to the next deadline, firing the hardware events on the way.
import heapq

import vclock

_q = []  # heap of [t_us, seq, task]
_seq = 0
cur = None  # the task being run
_handler = None
horizon = 0  # run() returns control to the simulator at this virtual time
# Real sockets: a hook object that only the CPython World installs (microfab_sim.net.Net); it
# stays None in the MicroPython VM, where open_connection() then fails as with no network. Its
# streams are in vstreams.py, which reads the hook from here; run_until() polls it.
_io = None
on_reset = []  # functions called by reset(): a power cycle of the modules that keep state


class CancelledError(BaseException):
    pass


class TimeoutError(Exception):
    pass


class _Sleep:
    # One shared object for every sleep, as in MicroPython: no allocation per await.
    def __init__(self):
        self.t = None

    def __iter__(self):
        return self

    def __await__(self):
        return self

    def __next__(self):
        if self.t is not None:
            _push(cur, self.t)
            self.t = None
            return None
        raise StopIteration


_sleep = _Sleep()


def _push(task, t):
    global _seq
    _seq += 1
    task.queued = True
    heapq.heappush(_q, [t, _seq, task])


def sleep_ms(ms):
    _sleep.t = vclock.now + max(0, int(ms)) * 1000
    return _sleep


def sleep(s):
    _sleep.t = vclock.now + max(0, int(s * 1000000))
    return _sleep


class _Park:
    # Suspends the current task without queueing it; whoever holds it wakes it.
    def __init__(self):
        self.once = False

    def __iter__(self):
        return self

    def __await__(self):
        return self

    def __next__(self):
        if self.once:
            self.once = False
            return None
        raise StopIteration


_park = _Park()


def _suspend():
    _park.once = True
    return _park


class Task:
    def __init__(self, coro):
        self.coro = coro
        self.done_ = False
        self.result = None
        self.exc = None
        self.waiters = []
        self.queued = False
        self.throw = None
        self.retrieved = False

    def done(self):
        return self.done_

    def cancel(self):
        if self.done_:
            return False
        self.throw = CancelledError()
        if not self.queued:
            _push(self, vclock.now)
        else:
            _requeue_now(self)
        return True

    def __iter__(self):
        return _TaskWait(self)

    def __await__(self):
        return _TaskWait(self)


def _requeue_now(task):
    for e in _q:
        if e[2] is task:
            e[2] = None
    _push(task, vclock.now)


class _TaskWait:
    def __init__(self, task):
        self.task = task
        self.waiting = False

    def __iter__(self):
        return self

    def __next__(self):
        t = self.task
        if not t.done_:
            if not self.waiting:
                self.waiting = True
                t.waiters.append(cur)
            return None
        t.retrieved = True
        if t.exc is not None:
            raise t.exc
        raise StopIteration(t.result)


def create_task(coro):
    t = Task(coro)
    _push(t, vclock.now)
    return t


def current_task():
    return cur


class Event:
    def __init__(self):
        self.state = False
        self.waiting = []

    def is_set(self):
        return self.state

    def set(self):
        self.state = True
        for t in self.waiting:
            _push(t, vclock.now)
        self.waiting = []

    def clear(self):
        self.state = False

    async def wait(self):
        if not self.state:
            self.waiting.append(cur)
            await _suspend()
        return True


class ThreadSafeFlag:
    # Set from an IRQ, awaited by one task; wait() clears it.
    def __init__(self):
        self.state = False
        self.waiter = None

    def set(self):
        self.state = True
        if self.waiter is not None:
            _push(self.waiter, vclock.now)
            self.waiter = None

    def clear(self):
        self.state = False

    async def wait(self):
        if not self.state:
            self.waiter = cur
            await _suspend()
        self.state = False


class Lock:
    def __init__(self):
        self.locked_ = False
        self.waiting = []

    def locked(self):
        return self.locked_

    async def acquire(self):
        while self.locked_:
            self.waiting.append(cur)
            await _suspend()
        self.locked_ = True
        return True

    def release(self):
        self.locked_ = False
        if self.waiting:
            _push(self.waiting.pop(0), vclock.now)

    async def __aenter__(self):
        return await self.acquire()

    async def __aexit__(self, a, b, c):
        self.release()


async def wait_for_ms(aw, timeout_ms):
    # A timeout is a timer event that cancels the task: no polling, so a task that waits on a
    # socket for minutes costs nothing until something happens.
    task = aw if isinstance(aw, Task) else create_task(aw)
    fired = []

    def expire(_):
        if not task.done_:
            fired.append(1)
            task.cancel()

    h = vclock.at(vclock.now + max(0, int(timeout_ms)) * 1000, expire)
    try:
        return await task
    except CancelledError:
        if fired:
            raise TimeoutError()
        task.cancel()  # the waiter itself was cancelled: so is what it waited for
        raise
    finally:
        vclock.cancel(h)


def wait_for(aw, timeout):
    return wait_for_ms(aw, int(timeout * 1000))


async def gather(*aws, return_exceptions=False):
    tasks = [a if isinstance(a, Task) else create_task(a) for a in aws]
    out = []
    for t in tasks:
        try:
            out.append(await t)
        except Exception as e:
            if not return_exceptions:
                raise
            out.append(e)
    return out


def _wake_io(block):
    woke = False
    for t in _io.poll(block):
        if not t.queued and not t.done_:  # a task cancelled meanwhile is queued already
            _push(t, vclock.now)
            woke = True
    return woke


def _step(task):
    global cur
    if task.done_:
        return  # woken twice, e.g. cancelled while parked on an Event that was then set
    cur = task
    task.queued = False
    try:
        if task.throw is not None:
            exc = task.throw
            task.throw = None
            task.coro.throw(exc)
        else:
            task.coro.send(None)
    except StopIteration as e:
        _finish(task, e.value if e.args else None, None)
    except CancelledError as e:
        _finish(task, None, e)
    except Exception as e:
        _finish(task, None, e)
    cur = None


def _finish(task, result, exc):
    task.done_ = True
    task.result = result
    task.exc = exc
    for w in task.waiters:
        _push(w, vclock.now)
    if exc is not None and not task.waiters and not isinstance(exc, CancelledError):
        if _handler is not None:
            _handler(None, {"message": "Task exception wasn't retrieved", "exception": exc,
                            "future": task})
        else:
            print("Task exception wasn't retrieved:", type(exc).__name__, exc)


def run_until(t_us):
    """Run every task and hardware event due up to t_us, then stand at t_us."""
    steps = 0
    while True:
        tt = _q[0][0] if _q else None
        te = vclock.next_event()
        if _io is not None and _io.waiting():
            # Sockets are looked at before the clock moves on, and every 16 steps meanwhile.
            nxt = t_us
            if tt is not None and tt < nxt:
                nxt = tt
            if te is not None and te < nxt:
                nxt = te
            steps += 1
            if nxt > vclock.now or steps >= 16:
                steps = 0
                if _wake_io(nxt > vclock.now):
                    continue
        if te is not None and te <= t_us and (tt is None or te <= tt):
            vclock.fire_next()  # interrupts come before tasks due at the same instant
            continue
        if tt is None or tt > t_us:
            break
        e = heapq.heappop(_q)
        if e[2] is None:
            continue
        if tt > vclock.now:
            vclock.now = tt
        _step(e[2])
    if t_us > vclock.now:
        vclock.now = t_us


def next_deadline():
    tt = _q[0][0] if _q else None
    te = vclock.next_event()
    if tt is None:
        return te
    return tt if te is None or tt < te else te


def reset():
    global _q, cur, _handler
    _q = []
    cur = None
    _handler = None
    if _io is not None:
        _io.reset()  # a reset drops every connection without a goodbye
    for fn in on_reset:
        fn()


def run(coro):
    # The firmware's asyncio.run(): queue the main task and run to the simulator's horizon; the
    # simulator then keeps calling run_until(). See fab.runtime.main().
    t = create_task(coro)
    run_until(horizon)
    return t


class Loop:
    def create_task(self, coro):
        return create_task(coro)

    def set_exception_handler(self, handler):
        global _handler
        _handler = handler

    def get_exception_handler(self):
        return _handler

    def run_forever(self):
        run_until(horizon)

    def run_until_complete(self, aw):
        return run(aw)


_loop = Loop()


def get_event_loop():
    return _loop


def new_event_loop():
    reset()
    return _loop


# Last, because vstreams imports this module back: every name it uses is defined by now. The
# firmware reaches them as asyncio.StreamReader, asyncio.open_connection, ...
from vstreams import StreamReader, StreamWriter, Stream, open_connection, open_datagram
