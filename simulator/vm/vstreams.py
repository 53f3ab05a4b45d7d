# The streams of the virtual board's `asyncio` (vasyncio imports them, so the firmware sees them
# as asyncio.StreamReader, asyncio.open_connection, ...): the USB console's reader and writer, and
# TCP/UDP streams on the socket hook `vasyncio._io`, which only the CPython World installs.
# The hook is read from vasyncio at each call, never copied here: World, net.py and tests set it
# on vasyncio, after this module is loaded.
import vasyncio as core


class StreamReader:
    """Over a virtual stream with any(), read(n) and a ThreadSafeFlag `ready` set on input."""

    def __init__(self, stream):
        self.s = stream

    async def read(self, n=-1):
        while not self.s.any():
            await self.s.ready.wait()
        return self.s.read(n)

    async def readline(self):
        buf = b""
        while True:
            b = await self.read(1)
            buf += b
            if b == b"\n":
                return buf


class StreamWriter:
    def __init__(self, stream):
        self.s = stream

    def write(self, data):
        self.s.write(data)

    async def drain(self):
        pass


# --- TCP streams on real sockets (CPython simulator only), as MicroPython's asyncio.Stream ---


async def _io_wait(h, mode):
    # Park the task until the hook finds the socket readable (0) or writable (1).
    core._io.wait(h, mode, core.cur)
    try:
        await core._suspend()
    finally:
        core._io.unwait(h, mode)


class Stream:
    def __init__(self, h):
        self.h = h
        self.out = b""

    def get_extra_info(self, name):
        return core._io.peer(self.h) if name == "peername" else None

    async def read(self, n=-1):
        while True:
            data = core._io.recv(self.h, n)
            if data is not None:
                return data  # b"" at the end of the stream
            await _io_wait(self.h, 0)

    async def readinto(self, buf):
        data = await self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    async def readexactly(self, n):
        out = b""
        while len(out) < n:
            data = await self.read(n - len(out))
            if not data:
                raise EOFError()
            out += data
        return out

    async def readline(self):
        out = b""
        while not out.endswith(b"\n"):
            data = await self.read(1)
            if not data:
                break
            out += data
        return out

    def write(self, buf):
        # As MicroPython's Stream.write: straight to the socket when nothing waits before it.
        if not self.out:
            n = core._io.send(self.h, buf)
            if n == len(buf):
                return
            if n:
                buf = buf[n:]
        self.out += bytes(buf)

    async def drain(self):
        if not self.out:
            await core.sleep_ms(0)  # drain always yields, as MicroPython's does
            return
        while self.out:
            n = core._io.send(self.h, self.out)
            if n is None:
                await _io_wait(self.h, 1)
            else:
                self.out = self.out[n:]

    def close(self):
        core._io.close(self.h)

    async def wait_closed(self):
        core._io.close(self.h)


async def open_connection(host, port):
    if core._io is None:
        raise OSError(113, "EHOSTUNREACH")  # no network where this runs
    h = core._io.connect(host, port)
    try:
        while not core._io.connected(h):  # OSError when refused
            await _io_wait(h, 1)
    except BaseException:
        core._io.close(h)
        raise
    s = Stream(h)
    return s, s


async def open_datagram(host, port):
    """A connected UDP socket as a Stream (read: one datagram). MicroPython's asyncio has no
    such call: fab.hal makes the socket itself there, and uses this one when it exists."""
    if core._io is None:
        raise OSError(113, "EHOSTUNREACH")
    return Stream(core._io.connect(host, port, udp=True))
