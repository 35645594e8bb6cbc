"""The embedded broker's transport on real files: atomic writes, odd queue-folder entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from platform_core.deadletter.envelopes import GuardedConnection
from platform_core.deadletter.letters import UNREADABLE
from platform_core.receive.filesystem import PARTIAL

QUEUE = "jobs"
WRITES = 150

WRITER = textwrap.dedent("""
    import sys
    from kombu import Producer
    from platform_core.deadletter.envelopes import GuardedConnection

    options = {"data_folder_in": sys.argv[1], "data_folder_out": sys.argv[1],
               "control_folder": sys.argv[2]}
    with GuardedConnection("filesystem://", transport_options=options) as conn:
        producer = Producer(conn.default_channel)
        for n in range(int(sys.argv[3])):
            producer.publish({"n": n, "pad": "x" * 400_000}, routing_key="jobs",
                             serializer="json")
""")


def options(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "broker" / "queue"
    folder.mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(folder), "data_folder_out": str(folder),
            "control_folder": str(tmp_path / "broker" / "control")}


def test_a_reader_never_sees_a_partial_message_file(tmp_path: Path) -> None:
    """A writer process publishes large messages while this process opens every message
    file the moment it is listed: each one is complete JSON. (kombu's own writer creates
    the file, then fills it: this reader then sees empty and half-written files.)"""
    opts = options(tmp_path)
    folder = Path(opts["data_folder_in"])
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), opts["control_folder"], str(WRITES)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stderr=subprocess.PIPE,
    )
    seen: set[str] = set()
    partial: list[str] = []
    deadline = time.monotonic() + 120
    while len(seen) < WRITES:
        assert time.monotonic() < deadline, f"only {len(seen)} of {WRITES} files appeared"
        finished = writer.poll() is not None
        for name in os.listdir(folder):
            if name in seen or name.partition(".")[2] != f"{QUEUE}.msg":
                continue
            seen.add(name)
            data = (folder / name).read_bytes()
            try:
                json.loads(data)
            except ValueError:
                partial.append(f"{name}: {len(data)} bytes")
        if finished and len(seen) < WRITES:
            _, err = writer.communicate()
            raise AssertionError(f"writer exited {writer.returncode} after {len(seen)} "
                                 f"files: {err.decode()[-2000:]}")
    assert writer.wait(30) == 0
    assert partial == []
    assert not [n for n in os.listdir(folder) if n.endswith(PARTIAL)]

    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        channel = conn.default_channel
        got = []
        while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
            assert message.content_type != UNREADABLE, message.headers
            got.append(json.loads(message.body)["n"])
    assert sorted(got) == list(range(WRITES))
