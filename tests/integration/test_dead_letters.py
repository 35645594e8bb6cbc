"""Dead letters with real workers: lost processes, malformed messages, exhausted retries."""

from __future__ import annotations

import json
import pickle
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from platform_core import stores
from platform_core.host import Host
from platform_core.stores.records import DeadLetter
from tests.integration.reliability_plugin import SOURCE
from tests.support import PlatformEnv, Process, output_of, wait_until

QUEUE = "rel"


@pytest.fixture
def rel_env(broker_env: PlatformEnv) -> PlatformEnv:
    broker_env.plugins.add("rel", SOURCE)
    broker_env.set(PLATFORM_MAX_REDELIVERIES="2")
    return broker_env


def letters(host: Host) -> list[DeadLetter]:
    return stores.for_app(host.app).dead_letters.list()


def wait_for_letters(host: Host, count: int, timeout: float = 60) -> list[DeadLetter]:
    def enough() -> list[DeadLetter] | None:
        found = letters(host)
        return found if len(found) >= count else None

    return wait_until(enough, timeout, f"{count} dead letters")  # type: ignore[no-any-return]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def status(host: Host, task_id: str) -> str:
    return str(host.app.backend.get_task_meta(task_id)["status"])


def test_a_task_that_kills_its_process_is_dead_lettered_after_its_redeliveries(
    rel_env: PlatformEnv, tmp_path: Path
) -> None:
    worker = rel_env.worker("--plugins", "rel")
    host = rel_env.host()
    log, healed = tmp_path / "crash.log", tmp_path / "healed"
    result = host.app.tasks["rel.crash"].delay(str(log), str(healed))
    (entry,) = wait_for_letters(host, 1)
    assert entry.reason == "worker lost: exit signal 9 (SIGKILL)"
    assert entry.deliveries == 3  # the first delivery and max_redeliveries=2 more
    assert lines(log) == 3
    assert (entry.task, entry.task_id, entry.plugin, entry.queue) == (
        "rel.crash", result.id, "rel", QUEUE)
    assert json.loads(entry.message.body)[0] == [str(log), str(healed)]
    wait_until(lambda: status(host, result.id) == "FAILURE", 30, "the failure to be recorded")
    # the worker goes on serving other tasks
    assert host.app.tasks["rel.echo"].delay("still here").get(timeout=30) == "still here"
    assert worker.alive()
    assert lines(log) == 3

    # replay: the same message runs again and, healed, succeeds under the same task id
    healed.write_text("ok")
    replayed = rel_env.run("dlq", "replay", entry.id[:8])
    assert replayed.returncode == 0, output_of(replayed)
    assert f"to queue {QUEUE}" in replayed.stdout
    wait_until(lambda: status(host, result.id) == "SUCCESS", 30, "the replayed task")
    assert host.app.backend.get_task_meta(result.id)["result"] == "survived"
    assert letters(host) == []
    assert lines(log) == 4


def test_a_task_that_is_not_idempotent_is_not_redelivered_but_kept(
    rel_env: PlatformEnv, tmp_path: Path
) -> None:
    rel_env.worker("--plugins", "rel")
    host = rel_env.host()
    log = tmp_path / "plain.log"
    result = host.app.tasks["rel.crash_plain"].delay(str(log))
    (entry,) = wait_for_letters(host, 1)
    assert entry.reason == ("worker lost: exit signal 9 (SIGKILL); not redelivered: the task "
                            "is not idempotent")
    assert entry.task_id == result.id and entry.deliveries == 1
    assert host.app.tasks["rel.echo"].delay(1).get(timeout=30) == 1
    assert lines(log) == 1


def _bad_messages(host: Host, env: PlatformEnv) -> dict[str, str]:
    """Publish malformed messages straight onto the queue; return secret -> expected reason."""
    from kombu import Producer

    expected: dict[str, str] = {}
    with host.app.connection_for_write() as conn:
        producer = Producer(conn, auto_declare=False)
        queue = host.app.amqp.queues[QUEUE]

        def publish(body: Any, **kwargs: Any) -> None:
            producer.publish(body, exchange="", routing_key=QUEUE, declare=[queue], **kwargs)

        publish({"note": "secret-NOTASK-5521"}, serializer="json")
        expected["secret-NOTASK-5521"] = "not a task message"
        publish(b"\xff\xfe secret-UNDECODABLE-3310", content_type="application/json",
                content_encoding="utf-8",
                headers={"task": "rel.echo", "id": str(uuid.uuid4())})
        expected["secret-UNDECODABLE-3310"] = "body is not JSON in UTF-8"
        publish(pickle.dumps(((["secret-PICKLE-9902"],), {}, {})),
                content_type="application/x-python-serialize", content_encoding="binary",
                headers={"task": "rel.echo", "id": str(uuid.uuid4())})
        expected["secret-PICKLE-9902"] = "content type should be application/json"
        publish([["secret-UNKNOWN-6634"], {}, {}], serializer="json",
                headers={"task": "rel.nosuch", "id": str(uuid.uuid4())})
        expected["secret-UNKNOWN-6634"] = "unknown task `rel.nosuch`"
        publish([["secret-NOID-1200"], {}, {}], serializer="json", headers={"task": "rel.echo"})
        expected["secret-NOID-1200"] = "header id is missing"
    if env.vars.get("PLATFORM_BROKER_URL", "").startswith("redis"):
        import redis

        client = redis.Redis.from_url(env.vars["PLATFORM_BROKER_URL"])
        client.lpush(QUEUE, b"\x00\xff garbage secret-RAW-7781")
        expected["secret-RAW-7781"] = "not a message envelope: "
        client.lpush(QUEUE, json.dumps({"args": ["secret-JSON-4412"]}))
        expected["secret-JSON-4412"] = "not a message envelope: no properties"
        envelope = {"body": "abc", "content-type": "application/json",
                    "content-encoding": "utf-8", "headers": {"task": "rel.echo", "id": "x"},
                    "properties": {"body_encoding": "base64", "delivery_tag": "t1",
                                   "delivery_info": {"exchange": "", "routing_key": QUEUE}},
                    "secret": "secret-BASE64-8123"}
        client.lpush(QUEUE, json.dumps(envelope))
        expected["secret-BASE64-8123"] = "cannot decode the message body"
        client.close()
    else:
        folder = env.home / "broker" / "queue"
        name = f"{int(time.monotonic() * 1000)}_{uuid.uuid4()}.{QUEUE}.msg"
        (folder / name).write_bytes(b"{truncated secret-RAW-7781")
        expected["secret-RAW-7781"] = "not a message envelope: "
    return expected


def _secret_of(entry: DeadLetter) -> str:
    data = entry.message.body_bytes + json.dumps(entry.message.headers).encode()
    match = re.search(rb"secret-[A-Z0-9]+-[0-9]+", data)
    assert match, f"no secret in {entry}"
    return match.group().decode()


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(
    rel_env: PlatformEnv,
) -> None:
    worker: Process = rel_env.worker("--plugins", "rel")
    host = rel_env.host()
    expected = _bad_messages(host, rel_env)
    assert host.app.tasks["rel.echo"].delay("after").get(timeout=30) == "after"
    found = {_secret_of(e): e for e in wait_for_letters(host, len(expected))}
    assert set(found) == set(expected)
    for secret, reason in expected.items():
        entry = found[secret]
        assert reason in entry.reason, (secret, entry.reason)
        assert entry.queue == QUEUE, (secret, entry)
    unknown = found["secret-UNKNOWN-6634"]
    assert (unknown.task, unknown.plugin) == ("rel.nosuch", None)
    assert found["secret-NOID-1200"].plugin == "rel"
    assert found["secret-RAW-7781"].message.raw
    assert status(host, unknown.task_id or "") == "FAILURE"  # as Celery: NotRegistered
    assert worker.alive()
    output = worker.output()
    for secret in expected:
        assert secret not in output, f"{secret} was logged:\n{output[-3000:]}"
    assert "Unrecoverable error" not in output and "Traceback" not in output, output[-3000:]
    assert output.count("Dead letter ") == len(expected)


def test_exhausted_retries_are_dead_lettered(rel_env: PlatformEnv, tmp_path: Path) -> None:
    rel_env.worker("--plugins", "rel")
    host = rel_env.host()
    flaky_log, manual_log, healed = tmp_path / "flaky.log", tmp_path / "manual.log", \
        tmp_path / "healed"
    flaky = host.app.tasks["rel.flaky"].delay(str(flaky_log), str(healed))
    manual = host.app.tasks["rel.manual"].delay(str(manual_log))
    with pytest.raises(ConnectionError, match="refused 2"):
        flaky.get(timeout=60)
    with pytest.raises(ValueError, match="bad input"):
        manual.get(timeout=60)
    by_task = {e.task: e for e in wait_for_letters(host, 2)}
    assert by_task["rel.flaky"].reason == \
        "retries exhausted after 1 retries: ConnectionError: refused 2"
    assert by_task["rel.manual"].reason == \
        "retries exhausted after 1 retries: ValueError: bad input"
    assert by_task["rel.flaky"].task_id == flaky.id
    assert by_task["rel.flaky"].message.headers["retries"] == 1

    healed.write_text("ok")
    replayed = rel_env.run("dlq", "replay", by_task["rel.flaky"].id)
    assert replayed.returncode == 0, output_of(replayed)
    wait_until(lambda: status(host, flaky.id) == "SUCCESS", 30, "the replayed task")
    assert host.app.backend.get_task_meta(flaky.id)["result"] == 3
    assert [e.task for e in letters(host)] == ["rel.manual"]


def test_a_whole_worker_that_keeps_dying_stops_getting_the_message(
    platform_env: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    """Redelivered by Redis after the visibility timeout, counted on arrival."""
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_MAX_REDELIVERIES="1",
                     PLATFORM_VISIBILITY_TIMEOUT="2", PLATFORM_PLUGINS="rel",
                     PLATFORM_TASK_TIME_LIMIT="1.5", PLATFORM_TASK_SOFT_TIME_LIMIT="1")
    host = platform_env.host()
    log = tmp_path / "kill.log"
    result = host.app.tasks["rel.kill_worker"].delay(str(log))
    for delivery in (1, 2):
        worker = platform_env.worker("--plugins", "rel")
        wait_until(lambda n=delivery: lines(log) == n, 60, f"delivery {delivery}")
        wait_until(lambda w=worker: not w.alive(), 30, "the worker to die")
        worker.stop()
        # the message becomes visible again once it was unacknowledged that long
        last = float(log.read_text().splitlines()[-1].split()[1])
        time.sleep(max(0.0, last + 2.5 - time.time()))
    survivor = platform_env.worker("--plugins", "rel")
    (entry,) = wait_for_letters(host, 1)
    assert entry.deliveries == 3 and entry.task_id == result.id
    assert entry.reason.startswith("worker lost: delivered 3 times and never finished")
    assert host.app.tasks["rel.echo"].delay(2).get(timeout=30) == 2
    assert survivor.alive() and lines(log) == 2
    wait_until(lambda: status(host, result.id) == "FAILURE", 30, "the failure to be recorded")
