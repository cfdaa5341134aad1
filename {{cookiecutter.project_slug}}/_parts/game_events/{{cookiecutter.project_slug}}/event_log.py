"""The local event log: the broker when there is no Kafka.

A folder of segments, each a file of JSON lines. Every writer appends to a segment of
its own, `<UTC time>-<pid>-<8 hex>.jsonl.open`, so writers never share a file and
several processes can write at once with no lock. Each line goes out in one `os.write`
on an O_APPEND descriptor: once `append` returns, the line is in the kernel's hands
and survives the writer's process dying (not a power cut: Kafka with acks=all is the
leg for that).

A segment is sealed by renaming it to `.jsonl`, after which nobody writes to it: when
its writer closes, when it has been idle for `IDLE_SECONDS`, or when it is older than
`MAX_AGE_SECONDS` or bigger than `MAX_BYTES`. Readers only read sealed segments, so a
reader never sees half of a line that is still being written, and Spark's file source
can read the folder too (it wants files that appear whole); a reader that must see
everything written so far first waits for the open segments to be sealed. A crashed
writer leaves an `.open` segment behind whose pid is not alive: readers and new
writers seal it, and its last line, if the crash cut it short, is read as torn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .lake import LINES

SEALED = ".jsonl"
OPEN = ".jsonl.open"
IDLE_SECONDS = 0.5
MAX_AGE_SECONDS = 5.0
MAX_BYTES = 16 * 1024 * 1024


class EventLogWriter:
    """Appends lines to this writer's own segment, sealing it as it goes.

    One writer per event loop; its methods are not meant to be called from threads.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._size = 0
        self._idle: asyncio.TimerHandle | None = None

    async def append(self, line: bytes) -> None:
        """Write one event line (without its newline) to the open segment."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        data = line + b"\n"
        # One write per line, never a loop of partial writes: with O_APPEND the line
        # lands whole at the end of the file. Writing to the page cache takes
        # microseconds, so it is done right here on the event loop.
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to {self._path}: {written} of {len(data)}")
        self._size += written
        if (
            self._size >= MAX_BYTES
            or time.monotonic() - self._opened >= MAX_AGE_SECONDS
        ):
            self._seal()
        else:
            self._rearm_idle_timer()

    async def close(self) -> None:
        """Seal the open segment, if any; the writer can still append afterwards."""
        self._seal()

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        seal_dead_writers(self.directory)
        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{now}-{os.getpid()}-{secrets.token_hex(4)}{OPEN}"
        self._path = self.directory / name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self._fd = os.open(self._path, flags, 0o644)
        self._opened = time.monotonic()
        self._size = 0

    def _rearm_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(IDLE_SECONDS, self._seal)

    def _seal(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._fd is None or self._path is None:
            return
        os.close(self._fd)
        self._path.rename(_sealed_name(self._path))
        self._fd = self._path = None


def sealed_segments(directory: Path) -> list[Path]:
    """The sealed segments, oldest first, after sealing those of dead writers."""
    if not directory.is_dir():
        return []
    seal_dead_writers(directory)
    return sorted(directory.glob(f"*{SEALED}"))


def wait_until_sealed(directory: Path) -> None:
    """Return once the segments open now are sealed, so that a reader that starts
    next sees every line written before this call. A live writer seals within
    IDLE_SECONDS of its last line (MAX_AGE_SECONDS under steady writes); a dead one's
    are sealed here. A writer stuck longer keeps its lines for a later reader."""
    if not directory.is_dir():
        return
    seal_dead_writers(directory)
    open_now = list(directory.glob(f"*{OPEN}"))
    deadline = time.monotonic() + MAX_AGE_SECONDS + IDLE_SECONDS
    while any(path.exists() for path in open_now) and time.monotonic() < deadline:
        time.sleep(IDLE_SECONDS / 10)


def seal_dead_writers(directory: Path) -> None:
    """Seal the open segments whose writer's process is gone."""
    for path in directory.glob(f"*{OPEN}"):
        pid = _writer_pid(path)
        if pid is not None and not _is_alive(pid):
            # Another reader may have sealed it first.
            with contextlib.suppress(FileNotFoundError):
                path.rename(_sealed_name(path))


def read_lines(data: bytes, segment: str) -> pa.Table:
    """The lines of a segment's contents, as the rows that lake.parse_lines reads:
    (line, `<segment>:<line number from 1>`, torn).

    Every whole line ends with a newline; a last line without one was cut short by a
    crash, and is torn. Arrow splits the segment: a Python loop over its lines would
    take longer than parsing them.
    """
    pieces = pc.split_pattern(pa.scalar(data, pa.large_binary()), b"\n").values
    torn = bool(data) and not data.endswith(b"\n")
    # What follows the last newline is b"" in a whole segment, not a line.
    count = len(pieces) if torn else len(pieces) - 1
    numbers = pa.array(range(1, count + 1), pa.int64()).cast(pa.string())
    flags = [False] * count
    if torn:
        flags[-1] = True
    return pa.table(
        [
            pieces.slice(0, count).cast(pa.binary()),
            pc.binary_join_element_wise(f"{segment}:", numbers, ""),
            pa.array(flags, pa.bool_()),
        ],
        schema=LINES,
    )


def _sealed_name(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(OPEN) + SEALED)


def _writer_pid(path: Path) -> int | None:
    """The pid in a segment's name; None for a file no writer of ours named."""
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True
