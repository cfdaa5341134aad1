"""The local event log: segments, sealing, crashed writers, many writers at once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lake_samples import lake_rows, make_settings, sample_event

from {{ cookiecutter.project_slug }} import event_log
from {{ cookiecutter.project_slug }}.event_log import (
    OPEN,
    SEALED,
    EventLogWriter,
    read_lines,
    sealed_segments,
)
from {{ cookiecutter.project_slug }}.events import encode
from {{ cookiecutter.project_slug }}.landing import land


def open_segments(directory: Path) -> list[Path]:
    return list(directory.glob(f"*{OPEN}"))


def lines_of(directory: Path) -> list[bytes]:
    return [
        line
        for path in sealed_segments(directory)
        for line in read_lines(path.read_bytes(), path.name).column("raw").to_pylist()
    ]


async def test_close_seals_the_segment_with_every_line(tmp_path: Path) -> None:
    writer = EventLogWriter(tmp_path)
    for number in range(3):
        await writer.append(b'{"n":%d}' % number)
    await writer.close()
    (segment,) = sealed_segments(tmp_path)
    assert segment.read_bytes() == b'{"n":0}\n{"n":1}\n{"n":2}\n'
    assert open_segments(tmp_path) == []


async def test_an_open_segment_of_a_live_writer_is_not_read(tmp_path: Path) -> None:
    writer = EventLogWriter(tmp_path)
    await writer.append(b"{}")
    assert sealed_segments(tmp_path) == []
    assert len(open_segments(tmp_path)) == 1
    await writer.close()
    assert lines_of(tmp_path) == [b"{}"]


async def test_land_right_after_the_last_event_lands_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    writer = EventLogWriter(settings.events_dir)
    event = sample_event("default")
    await writer.append(encode(event))
    # As `land` typed the moment `load` ends: serve's segment is still open.
    report = await asyncio.to_thread(land, settings, progress=None)
    await writer.close()
    assert report.landed["visits"] == 1
    assert [row["event_id"] for row in lake_rows(settings.lake_dir, "visits")] == [
        event["event_id"]
    ]


async def test_an_idle_segment_seals_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_log, "IDLE_SECONDS", 0.01)
    writer = EventLogWriter(tmp_path)
    await writer.append(b"{}")
    # The loop runs timers in the order they are due: the idle timer comes first.
    await asyncio.sleep(event_log.IDLE_SECONDS * 2)
    assert lines_of(tmp_path) == [b"{}"]
    await writer.close()


@pytest.mark.parametrize("limit", ["MAX_AGE_SECONDS", "MAX_BYTES"])
async def test_an_old_or_big_segment_is_sealed_and_a_new_one_begun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    monkeypatch.setattr(event_log, limit, 0)
    writer = EventLogWriter(tmp_path)
    for number in range(3):
        await writer.append(b'{"n":%d}' % number)
    await writer.close()
    assert len(sealed_segments(tmp_path)) == 3
    assert lines_of(tmp_path) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']


def test_lines_of_a_segment_and_its_torn_tail() -> None:
    def lines(data: bytes) -> list[tuple[bytes, str, bool]]:
        table = read_lines(data, "s")
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    assert lines(b"a\nb\n") == [(b"a", "s:1", False), (b"b", "s:2", False)]
    assert lines(b"a\n{") == [(b"a", "s:1", False), (b"{", "s:2", True)]
    assert lines(b"\n\xff\n") == [(b"", "s:1", False), (b"\xff", "s:2", False)]
    assert lines(b"") == []


def test_an_open_file_no_writer_named_is_left_alone(tmp_path: Path) -> None:
    stranger = tmp_path / f"notes{OPEN}"
    stranger.write_bytes(b"{}\n")
    assert sealed_segments(tmp_path) == []
    assert stranger.exists()


# A writer that appends three events and dies (SIGKILL, so nothing is cleaned up)
# halfway through a fourth line, written straight into its segment.
CRASHING_WRITER = """
import asyncio, os, signal, sys
from pathlib import Path
from {{ cookiecutter.project_slug }}.event_log import (
    EventLogWriter,
    OPEN,
)

async def main(folder, lines):
    writer = EventLogWriter(folder)
    for line in lines:
        await writer.append(line.encode())
    (segment,) = folder.glob(f"*-{os.getpid()}-*{OPEN}")
    with segment.open("ab") as torn:
        torn.write(b'{"event_id": "cut sh')
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
"""


def test_a_writer_killed_mid_line_loses_nothing_else(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    events = [sample_event("login", username=f"p{number}") for number in range(3)]
    lines = [encode(event).decode() for event in events]
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(settings.events_dir), *lines],
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL
    assert len(open_segments(settings.events_dir)) == 1

    report = land(settings, progress=None)

    assert open_segments(settings.events_dir) == []  # sealed by the reader
    assert report.landed["accounts"] == 3
    landed = {row["event_id"] for row in lake_rows(settings.lake_dir, "accounts")}
    assert landed == {event["event_id"] for event in events}
    (torn,) = lake_rows(settings.lake_dir, "quarantine")
    assert torn["reason"] == "torn_line"
    assert torn["raw"] == '{"event_id": "cut sh'
    assert torn["source"].endswith(f"{SEALED}:4")


# Writes `count` events through `writers` writers at once, segments rotating every
# few lines, then prints their ids.
MANY_WRITERS = """
import asyncio, json, sys, uuid
from pathlib import Path
from {{ cookiecutter.project_slug }} import event_log
from {{ cookiecutter.project_slug }}.event_log import (
    EventLogWriter,
)

event_log.MAX_BYTES = 4000

async def write(folder, count, ids):
    writer = EventLogWriter(folder)
    for _ in range(count):
        event_id = str(uuid.uuid4())
        ids.append(event_id)
        line = {"event_id": event_id, "event_type": "default",
                "timestamp": "2026-12-02T14:36:34.123456Z", "success": True,
                "reason": None, "username": None, "host": "h", "user_agent": "u"}
        await writer.append(json.dumps(line).encode())
        await asyncio.sleep(0)  # let the other writers in between two lines
    await writer.close()

async def main(folder, writers, count):
    ids = []
    await asyncio.gather(*(write(folder, count, ids) for _ in range(writers)))
    print(json.dumps(ids))

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
"""


def test_many_writers_at_once_land_every_line_exactly_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    command = [sys.executable, "-c", MANY_WRITERS, str(settings.events_dir), "3"]
    processes = [
        subprocess.Popen([*command, "200"], stdout=subprocess.PIPE) for _ in range(4)
    ]
    written = []
    for process in processes:
        output, _ = process.communicate()
        assert process.returncode == 0
        written += json.loads(output)

    report = land(settings, progress=None)

    assert len(written) == len(set(written)) == 4 * 3 * 200
    assert len(sealed_segments(settings.events_dir)) > 12  # the segments rotated
    landed = [row["event_id"] for row in lake_rows(settings.lake_dir, "visits")]
    assert sorted(landed) == sorted(written)
    assert report.landed["visits"] == len(written)
    assert report.duplicates == report.quarantined == 0
