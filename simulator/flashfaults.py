"""Power cuts in the middle of a flash write, for a simulated board's world.

A real power cut leaves a file being written with a prefix of what the firmware wrote: LittleFS
is copy-on-write per block, so a torn append shows either the old content or the old content plus
a prefix of the new bytes. The model here is the harsher of the two: exactly `n` more bytes reach
the flash, then the power goes.

    world.cut_power_after(100)   # the 101st byte written from now on never reaches the flash
    board.advance(10)            # the firmware writes; SimBoard reboots it (a power-on reset)
    world.cut_power_after(100, 30)  # and once more 30 bytes into what the rebooted board writes

Every file the firmware opens for writing goes through a FlashFile, which counts the bytes it
passes on (`Flash.written`: a flash-wear figure) and flushes them at once, so that what was
written is on the host's disk when the cut comes, whatever Python buffered. Renames and removals
are not cut: they are atomic on LittleFS.
"""
from __future__ import annotations

_WRITE_MODES = set("wax+")


class Flash:
    """The flash of one world: bytes written, and a power cut armed to fire after `budget` more."""

    def __init__(self, world):
        self.world = world
        self.written = 0  # bytes the firmware wrote to flash since power-on of the simulator
        self.writes = 0  # write() calls that reached the flash
        self.budget: int | None = None  # bytes still allowed through before the cut; None: no cut
        self.then: list[int] = []  # the budgets of the cuts that follow it
        # (path on the board, bytes of the write that was cut, bytes of it that reached the flash)
        self.cuts: list[tuple[str, int, int]] = []
        self.generation = 0  # bumped by each cut: files opened before it are dead

    def cut_after(self, n: int, *then: int):
        """Cut after n more bytes; then, after each reboot, again after each of `then` (power
        that flickers while the board recovers)."""
        for x in (n,) + then:
            if not isinstance(x, int) or isinstance(x, bool) or x < 0:
                raise ValueError("cut_power_after: expected a whole number of bytes >= 0, got %r"
                                 % (x,))
        self.budget = n
        self.then = list(then)

    def disarm(self):
        self.budget = None
        self.then = []

    def wrap(self, f, mode: str, name: str):
        if _WRITE_MODES.isdisjoint(mode):
            return f
        return FlashFile(self, f, name)

    def _power_off(self, name: str, size: int, reached: int):
        self.cuts.append((name, size, reached))
        self.budget = self.then.pop(0) if self.then else None
        self.generation += 1
        vm = self.world.modules["vmachine"]
        raise vm.ResetRequest(vm.PWRON_RESET)


class FlashFile:
    """A file open for writing on the simulated flash (text or binary)."""

    def __init__(self, flash: Flash, f, name: str):
        self._flash = flash
        self._f = f
        self._name = name
        self._gen = flash.generation

    def write(self, data):
        fl = self._flash
        if self._gen != fl.generation:
            # Opened before a power cut: the code holding it runs no more on a board.
            vm = fl.world.modules["vmachine"]
            raise vm.ResetRequest(vm.PWRON_RESET)
        text = isinstance(data, str)
        raw = data.encode() if text else bytes(data)
        size = len(raw)
        if fl.budget is not None and size >= fl.budget and size:
            reached = fl.budget
            if reached:
                self._put(raw[:reached], text)
            fl.written += reached
            fl._power_off(self._name, size, reached)
        self._put(raw, text)
        fl.written += size
        fl.writes += 1
        if fl.budget is not None:
            fl.budget -= size
        return len(data)

    def _put(self, raw: bytes, text: bool):
        f = self._f
        if text:
            f.flush()
            f.buffer.write(raw)  # bytes, so that a cut may fall inside a UTF-8 sequence
            f.buffer.flush()
        else:
            f.write(raw)
            f.flush()

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self._f)

    def __getattr__(self, name):
        return getattr(self._f, name)
