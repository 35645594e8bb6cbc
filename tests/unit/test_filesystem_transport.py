"""The embedded broker's transport on real files: atomic writes, odd queue-folder entries."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Producer

from platform_core.deadletter.letters import PROBLEM_HEADER, UNREADABLE
from platform_core.worker.receive.filesystem import PARTIAL
from platform_core.worker.receive.transports import GuardedConnection
from tests.queue_folder import odd_entries

QUEUE = "jobs"
WRITES = 150

WRITER = textwrap.dedent("""
    import sys
    from kombu import Producer
    from platform_core.worker.receive.transports import GuardedConnection

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


def test_odd_entries_are_moved_aside_and_real_messages_still_come(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    opts = options(tmp_path)
    folder = Path(opts["data_folder_in"])
    quarantine = folder.parent / "quarantine"
    odd = odd_entries(folder, QUEUE, tmp_path / "elsewhere")
    (folder / f"0_half.{QUEUE}.msg").write_bytes(b'{"body": "eyJh')  # a writer died mid-write
    caplog.set_level(logging.ERROR, "platform.receive")
    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        channel = conn.default_channel
        Producer(channel).publish({"real": 1}, routing_key=QUEUE, serializer="json")
        half = channel.basic_get(QUEUE, no_ack=True)
        real = channel.basic_get(QUEUE, no_ack=True)
        assert channel.basic_get(QUEUE) is None
    assert half.content_type == UNREADABLE  # a regular file: the dead-letter store's
    assert half.body == b'{"body": "eyJh'
    assert json.loads(real.body) == {"real": 1}
    assert sorted(os.listdir(quarantine)) == sorted(odd)
    assert os.listdir(folder) == []
    assert stat.S_ISFIFO(os.lstat(tmp_path / "elsewhere" / "pipe").st_mode)  # untouched
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == len(odd)
    for name, what in odd.items():
        (line,) = [m for m in logged if f"moved {name} " in m]
        assert f"moved {name} out of the folder of queue {QUEUE} ({folder}) to " \
               f"{quarantine / name}: it is {what}, not a message file; nothing was " \
               "delivered from it. Fix: delete it, and find what put it there" in line


def test_an_entry_that_cannot_be_moved_aside_is_skipped_and_reported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    opts = options(tmp_path)
    folder = Path(opts["data_folder_in"])
    (tmp_path / "not-a-folder").write_text("")
    opts["quarantine_folder"] = str(tmp_path / "not-a-folder" / "quarantine")
    os.mkfifo(folder / f"0_fifo.{QUEUE}.msg")
    caplog.set_level(logging.ERROR, "platform.receive")
    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        channel = conn.default_channel
        assert channel.basic_get(QUEUE) is None
        Producer(channel).publish({"real": 1}, routing_key=QUEUE, serializer="json")
        assert json.loads(channel.basic_get(QUEUE, no_ack=True).body) == {"real": 1}
        assert channel.basic_get(QUEUE) is None
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"Embedded broker: skipping 0_fifo.{QUEUE}.msg in the folder of queue {QUEUE} "
        f"({folder}) until the worker restarts: it is a FIFO (named pipe), not a message "
        f"file, and it cannot be moved to {opts['quarantine_folder']} (NotADirectoryError")
    assert os.listdir(folder) == [f"0_fifo.{QUEUE}.msg"]


def test_consumers_sharing_a_folder_take_each_message_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Files taken by the other consumer vanish between listing and reading: that is
    not a problem to report, and no message is delivered twice or lost."""
    opts = options(tmp_path)
    count = 300
    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        producer = Producer(conn.default_channel)
        for n in range(count):
            producer.publish({"n": n}, routing_key=QUEUE, serializer="json")
    caplog.set_level(logging.WARNING)
    got: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def consume(mine: list[int]) -> None:
        with GuardedConnection("filesystem://", transport_options=opts) as conn:
            channel = conn.default_channel
            start.wait()
            while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
                mine.append(json.loads(message.body)["n"])

    threads = [threading.Thread(target=consume, args=(mine,)) for mine in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(got[0] + got[1]) == list(range(count))
    assert got[0] and got[1], "one consumer took everything: no contention was tested"
    assert caplog.records == []
    assert not (Path(opts["data_folder_in"]).parent / "quarantine").exists()


def test_a_file_nested_too_deep_to_parse_is_unreadable(tmp_path: Path) -> None:
    """kombu's JSON parser raises RecursionError, not ValueError, on deep nesting."""
    opts = options(tmp_path)
    deep = b'{"headers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (Path(opts["data_folder_in"]) / f"0_deep.{QUEUE}.msg").write_bytes(deep)
    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        message = conn.default_channel.basic_get(QUEUE, no_ack=True)
    assert message.content_type == UNREADABLE
    assert message.headers[PROBLEM_HEADER] == \
        "not a message envelope: JSON nested too deep to read"
    assert message.body == deep


def test_the_broker_view_never_opens_a_fifo_in_the_queue_folder(tmp_path: Path) -> None:
    """``platform doctor`` reads message files to find a task: a FIFO named like one must
    not block it (it is run in a thread here with a deadline, so a hang fails the test)."""
    import threading

    from kombu import Connection

    from platform_core.broker.view import BrokerView

    folder = tmp_path / "queue"
    folder.mkdir()
    os.mkfifo(folder / "0_fifo.q.msg")
    (folder / "1_x.q.msg").write_text('{"headers": {"id": "t1", "task": "a.b"}}')
    url_options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    found: list[object] = []
    with Connection("filesystem://", transport_options=url_options) as conn:
        view = BrokerView(conn)
        thread = threading.Thread(target=lambda: found.append(view.find("t1", ["q"])),
                                  daemon=True)
        thread.start()
        thread.join(20)
        assert not thread.is_alive(), "reading the queue folder blocked on a FIFO"
        view.close()
    assert found and getattr(found[0], "task", None) == "a.b"


def test_the_event_loop_takes_a_message_as_soon_as_the_prefetch_window_opens(
    tmp_path: Path,
) -> None:
    """A worker consumes through kombu's event loop (a real ``Hub``, stepped here one
    iteration at a time): with a window of one, the second message comes at the loop's
    next step after the first is acknowledged, not after a backed-off polling wait."""
    from kombu import Consumer, Queue
    from kombu.asynchronous import Hub

    hub = Hub()
    received: list[Any] = []
    opts = {**options(tmp_path), "polling_interval": 30}
    with GuardedConnection("filesystem://", transport_options=opts) as conn:
        assert conn.transport.implements.asynchronous
        producer = Producer(conn.default_channel)
        for n in range(2):
            producer.publish({"n": n}, routing_key=QUEUE, serializer="json")
        channel = conn.channel()
        channel.basic_qos(0, 1, False)
        consumer = Consumer(channel, [Queue(QUEUE, routing_key=QUEUE)],
                            callbacks=[lambda body, message: received.append(message)],
                            accept=["json"])
        consumer.consume()
        conn.transport.register_with_event_loop(conn.connection, hub)
        loop = hub.create_loop()
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            next(loop)
        assert len(received) == 1  # (two files written in one millisecond: either first)
        for _ in range(20):  # the window is full: the loop waits, however often it steps
            next(loop)
        assert len(received) == 1
        received[0].ack()
        next(loop)
        assert sorted(m.payload["n"] for m in received) == [0, 1]
        received[1].ack()
        hub.close()
    assert conn.transport._on_tick not in hub.on_tick


@pytest.mark.parametrize("url", ["filesystem://", "redis://127.0.0.1:1/0",
                                 "amqp://guest:guest@127.0.0.1:1//"])
def test_producers_publish_through_the_guarded_transport(url: str, tmp_path: Path) -> None:
    """Celery's producers take connections from a kombu pool, which builds its own; each
    must carry the guarded transport (for the embedded broker: files written atomically).
    Nothing connects: a transport is built without reaching the broker."""
    from celery import Celery

    from platform_core.app.platform_celery import PlatformCelery
    from platform_core.worker.receive.transports import GUARDED

    app: Celery = PlatformCelery("seam", broker=url, set_as_current=False)
    app.conf.broker_transport_options = {"data_folder_in": str(tmp_path),
                                         "data_folder_out": str(tmp_path)}
    with app.producer_or_acquire() as producer:
        transport = type(producer.connection.transport)
    assert transport in GUARDED.values(), transport
    with app.pool.acquire() as connection:
        assert type(connection.transport) in GUARDED.values()
