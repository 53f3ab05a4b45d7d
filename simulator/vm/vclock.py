# Virtual time for one simulated board: the `time` module the firmware sees, and the timeline of
# hardware events (pin IRQs, Timer callbacks, model events) that fire as time passes. Time only
# moves when the scheduler or a blocking sleep moves it, so a run is the same bit for bit.
import heapq

_PERIOD = 1 << 30  # MicroPython's ticks wrap here (MICROPY_PY_TIME_TICKS_PERIOD)
_MASK = _PERIOD - 1
_HALF = _PERIOD // 2
EPOCH = 1767225600  # the board's clock at power-on: 2026-01-01T00:00:00Z

now = 0  # virtual microseconds since power-on
_ev = []  # heap of [t_us, seq, fn, arg, live]
_seq = 0
epoch = EPOCH


def reset(t_us=0):
    global now, _ev, _seq
    now = t_us
    _ev = []
    _seq = 0


def at(t_us, fn, arg=None):
    """Run fn(arg) at virtual time t_us; returns a handle for cancel()."""
    global _seq
    _seq += 1
    e = [t_us if t_us > now else now, _seq, fn, arg, True]
    heapq.heappush(_ev, e)
    return e


def cancel(e):
    if e is not None:
        e[4] = False


def next_event():
    while _ev and not _ev[0][4]:
        heapq.heappop(_ev)
    return _ev[0][0] if _ev else None


def fire_next():
    global now
    e = heapq.heappop(_ev)
    e[4] = False  # spent: holders of the handle see it as no longer pending
    if e[0] > now:
        now = e[0]
    e[2](e[3])


def run_to(t_us):
    """Fire every hardware event up to t_us in order, then stand at t_us."""
    global now
    while True:
        t = next_event()
        if t is None or t > t_us:
            break
        fire_next()
    if t_us > now:
        now = t_us


# --- the `time` module as the firmware sees it ---

def ticks_us():
    return now & _MASK


def ticks_ms():
    return (now // 1000) & _MASK


def ticks_cpu():
    return now & _MASK


def ticks_add(t, delta):
    return (t + delta) & _MASK


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def sleep_us(us):
    run_to(now + int(us))


def sleep_ms(ms):
    run_to(now + int(ms) * 1000)


def sleep(s):
    run_to(now + int(s * 1000000))


def time():
    return epoch + now // 1000000


def time_ns():
    return (epoch * 1000000 + now) * 1000


def gmtime(secs=None):
    if secs is None:
        secs = time()
    days, rem = divmod(int(secs), 86400)
    # civil-from-days (Howard Hinnant), the algorithm behind most libc gmtime()s
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return (y, m, d, rem // 3600, rem % 3600 // 60, rem % 60, (days + 3) % 7, 0)


localtime = gmtime


def mktime(t):
    y, m, d = t[0], t[1], t[2]
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return (era * 146097 + doe - 719468) * 86400 + t[3] * 3600 + t[4] * 60 + t[5]
