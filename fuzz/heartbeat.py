"""The file a fuzzing child and its runner share: how many inputs ran, and the one running now.

The child copies every input here before it runs it, so when the child hangs, is killed for its
memory, or dies in C code, the runner still has the input that did it. A memory-mapped file
costs a copy per input, a few microseconds, and survives the child's death.

Layout: inputs started (u64), inputs finished (u64), input length (u64), wall-clock time of the
first input (f64), input bytes. Time spent between inputs (mutating, shrinking) is not the target's.
"""

from __future__ import annotations

import mmap
import struct
import time
from pathlib import Path

_HEADER = struct.Struct("<QQQd")
CAPACITY = 2 * 1024 * 1024
"""Inputs longer than this are recorded cut short (no target accepts one that long)."""


class Heartbeat:
    def __init__(self, path: Path, *, create: bool = False) -> None:
        if create:
            path.write_bytes(b"\0" * (_HEADER.size + CAPACITY))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), _HEADER.size + CAPACITY)
        self._count = 0

    def record(self, data: bytes) -> None:
        """Called by the child before it runs `data`."""
        kept = data[:CAPACITY]
        self._map[_HEADER.size:_HEADER.size + len(kept)] = kept
        self._count += 1
        started = _HEADER.unpack_from(self._map)[3] or time.time()
        # Everything else first, the count last: the runner reads while the child writes.
        struct.pack_into("<Qd", self._map, 16, len(kept), started)
        struct.pack_into("<QQ", self._map, 0, self._count, self._count - 1)

    def finish(self) -> None:
        """Called by the child when the input it recorded last has ended, however it ended."""
        struct.pack_into("<Q", self._map, 8, self._count)

    def read(self) -> tuple[int, bool, float]:
        """How many inputs have started, whether one is running now, and when the first one
        started (0.0 before it)."""
        started_count, finished, _, started = _HEADER.unpack_from(self._map)
        return started_count, finished < started_count, started

    def current(self) -> bytes:
        """The input that started last."""
        length = _HEADER.unpack_from(self._map)[2]
        return bytes(self._map[_HEADER.size:_HEADER.size + length])

    def close(self) -> None:
        self._map.close()
        self._file.close()
