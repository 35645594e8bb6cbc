"""Guarded transports hand unreadable queue items over as messages (real Redis, real files)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import redis

from platform_core.deadletter.letters import PROBLEM_HEADER, QUEUE_HEADER, UNREADABLE
from platform_core.worker.receive.envelope import envelope_problem, unreadable
from platform_core.worker.receive.transports import (
    GuardedConnection,
    GuardedFilesystemTransport,
    GuardedRedisTransport,
)


def test_envelope_problems() -> None:
    good = unreadable(b"x", "q", "why")
    assert envelope_problem(good) is None
    assert envelope_problem([1, 2]) == "not a message envelope: a JSON list"
    assert envelope_problem({"body": "x"}) == "not a message envelope: no properties"
    no_info = {"properties": {"delivery_tag": "t"}}
    assert envelope_problem(no_info) == \
        "not a message envelope: no delivery info with an exchange and a routing key"
    key_not_text = {"properties": {"delivery_info": {"exchange": "", "routing_key": {}}}}
    assert envelope_problem(key_not_text) == envelope_problem(no_info)
    # an unusable delivery tag is no problem: the worker assigns its own
    assert envelope_problem(dict(good, properties=dict(good["properties"], delivery_tag={}))) \
        is None
    bad_headers = dict(good, headers=["x"])
    assert envelope_problem(bad_headers) == \
        "not a message envelope: headers are not a mapping"


def test_the_connection_picks_guarded_transports(tmp_path: Path) -> None:
    assert GuardedConnection("redis://127.0.0.1:1/0").get_transport_cls() is \
        GuardedRedisTransport
    assert GuardedConnection("rediss://127.0.0.1:1/0").get_transport_cls() is \
        GuardedRedisTransport
    assert GuardedConnection("filesystem://").get_transport_cls() is GuardedFilesystemTransport
    assert GuardedConnection("memory://").get_transport_cls().__module__ == \
        "kombu.transport.memory"
    assert GuardedConnection("redis://:pw@127.0.0.1:1/0").as_uri() == \
        "redis://:**@127.0.0.1:1/0"


@pytest.mark.parametrize("item", [b"\x00\xff not json", b"{truncated", b"[1, 2]"])
def test_redis_get_returns_unreadable_items_as_messages(redis_url: str, item: bytes) -> None:
    queue = f"q{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    client.lpush(queue, item)
    with GuardedConnection(redis_url) as conn:
        channel = conn.default_channel
        channel.queue_declare(queue)
        message = channel.basic_get(queue, no_ack=False)
        assert message is not None
        assert message.content_type == UNREADABLE
        assert message.body == item
        assert message.headers[QUEUE_HEADER] == queue
        assert message.headers[PROBLEM_HEADER].startswith("not a message envelope")
        message.ack()
        assert channel.basic_get(queue) is None
    client.close()


def test_redis_body_that_cannot_be_decoded(redis_url: str) -> None:
    queue = f"q{uuid.uuid4().hex[:6]}"
    envelope = {"body": "abc", "content-type": "application/json", "headers": {},
                "properties": {"body_encoding": "base64", "delivery_tag": "t",
                               "delivery_info": {"exchange": "", "routing_key": queue}}}
    client = redis.Redis.from_url(redis_url)
    client.lpush(queue, json.dumps(envelope))
    with GuardedConnection(redis_url) as conn:
        channel = conn.default_channel
        channel.queue_declare(queue)
        message = channel.basic_get(queue, no_ack=True)
        assert message.content_type == UNREADABLE
        assert json.loads(message.body) == envelope
        assert "binascii.Error" in message.headers[PROBLEM_HEADER]
    client.close()


@pytest.mark.parametrize("item", [b"\xffpartial {", b'{"args": [1]}'])
def test_filesystem_garbage_file_becomes_an_unreadable_message(tmp_path: Path,
                                                               item: bytes) -> None:
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path / "control")}
    (folder / f"1_{uuid.uuid4()}.jobs.msg").write_bytes(item)
    with GuardedConnection("filesystem://", transport_options=options) as conn:
        channel = conn.default_channel
        channel.queue_declare("jobs")
        message = channel.basic_get("jobs", no_ack=True)
        assert message.content_type == UNREADABLE
        assert message.body == item
        assert message.headers[QUEUE_HEADER] == "jobs"
        assert base64.b64decode(unreadable(item, "jobs", "x")["body"]) == item
        assert channel.basic_get("jobs") is None


def test_closing_after_the_broker_died_mid_brpop_does_not_stop_the_worker(tmp_path: Path) -> None:
    """kombu's close first reads the outstanding BRPOP; with the server gone that read
    raised and left the channel half closed. Celery's consumer closes a lost connection
    twice (collect, then close), and the second close, on a transport already torn
    down, raised AttributeError: an "Unrecoverable error" that stopped the worker.
    A server of the test's own, so that it can die."""
    from tests.faults.scenarios import OwnedRedis

    server = OwnedRedis(tmp_path)
    server.start()
    try:
        conn = GuardedConnection(server.url)
        channel = conn.default_channel
        channel.queue_declare("q")
        channel._put("q", channel.prepare_message("body"))
        assert channel.basic_get("q", no_ack=False) is not None  # delivered, not acked
        channel.basic_consume("q", False, lambda message: None, "tag")
        with pytest.raises(TimeoutError):
            conn.drain_events(timeout=0.2)
        assert channel._in_poll  # the BRPOP a waiting worker has outstanding
    finally:
        server.stop()
    conn.maybe_close_channel(channel)  # the read raised: the channel stayed open
    assert channel.closed
    conn.collect(socket_timeout=1)
    conn.close()
