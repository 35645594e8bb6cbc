"""Bulk sends (delay_many, apply_many, send_many) on real brokers and real workers.

Each message of a bulk send must be the message ``apply_async`` would have sent for the
same call; every task must run exactly once; a broker failing part-way must leave an
exact account of what it has.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection

from platform_sdk.exceptions import InvalidTaskCall, PartiallySent, PayloadTooLarge
from tests.integration.test_brokers import free_port, start_redis, stop
from tests.support import PlatformEnv, wait_until

PLUGIN = '''
import os
from typing import Any

from platform_sdk import Queue, hookimpl, task


@task(name="fan.record", queue="fan", ignore_result=True)
def record(path: str, n: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{n}\\n".encode())
    finally:
        os.close(fd)


@task(name="fan.echo", queue="fan.other")
def echo(value: Any) -> Any:
    return value


@task(name="fan.double", queue="fan")
def double(n: int) -> int:
    return 2 * n


@hookimpl
def register_tasks(register):
    for t in (record, echo, double):
        register(t)


@hookimpl
def register_queues(register):
    register(Queue(name="fan"))
    register(Queue(name="fan.other", max_priority=9))
'''


@pytest.fixture
def fan(platform_env: PlatformEnv) -> PlatformEnv:
    platform_env.plugins.add("fan", PLUGIN, distribution="platform-fan")
    platform_env.set(PLATFORM_PLUGINS="fan")
    return platform_env


def runs(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().split()) if path.exists() else Counter()


def wait_runs(path: Path, count: int, timeout: float) -> Counter[int]:
    wait_until(lambda: sum(runs(path).values()) >= count, timeout, f"{count} runs")
    return runs(path)


def messages(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """Messages of ``queue`` in the order a worker takes them (all priority lists)."""
    keys = sorted(k.decode() for k in client.keys(f"{queue}*")
                  if k.decode() == queue or k.decode().startswith(f"{queue}\x06\x16"))
    out = []
    for key in keys:
        out += [json.loads(raw) for raw in reversed(client.lrange(key, 0, -1))]
    return out


def test_20000_tasks_sent_in_bulk_on_redis_each_run_exactly_once(
    fan: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    fan.set(PLATFORM_BROKER_URL=redis_url)
    app = fan.host().app
    log = tmp_path / "runs.log"
    sent = app.send_many("fan.record", [(str(log), n) for n in range(20_000)], {})
    assert len(sent) == 20_000 and len(set(sent.ids)) == 20_000
    client = redis.Redis.from_url(redis_url)
    assert client.llen("fan") == 20_000
    fan.worker("-c", "2", "--prefetch-multiplier", "64")
    seen = wait_runs(log, 20_000, timeout=600)
    assert set(seen) == set(range(20_000))
    assert max(seen.values()) == 1  # none twice
    assert client.llen("fan") == 0


@pytest.fixture(params=["embedded", "redis", "rabbitmq"])
def any_broker(request: pytest.FixtureRequest, fan: PlatformEnv) -> Iterator[PlatformEnv]:
    if request.param == "redis":
        fan.set(PLATFORM_BROKER_URL=request.getfixturevalue("redis_url"))
    elif request.param == "rabbitmq":
        url = request.getfixturevalue("amqp_url")
        fan.set(PLATFORM_BROKER_URL=url, PLATFORM_RESULT_BACKEND=request.getfixturevalue(
            "redis_url"))
    yield fan
    if request.param == "rabbitmq":
        fan.close()
        with Connection(fan.vars["PLATFORM_BROKER_URL"]) as conn, contextlib.suppress(Exception):
            for queue in ("fan", "fan.other"):
                conn.channel().queue_delete(queue)


def test_every_form_of_call_and_send_many_run_once_with_results_in_order(
    any_broker: PlatformEnv, tmp_path: Path
) -> None:
    env = any_broker
    app = env.host().app
    log = tmp_path / "runs.log"
    env.worker("-Q", "fan")
    calls = [(str(log), 0), {"path": str(log), "n": 1}, ((str(log),), {"n": 2})]
    calls += [(str(log), n) for n in range(3, 300)]
    app.send_many("fan.record", calls, {})
    echoed = app.send_many("fan.echo", [({"k": [i, "ü"]},) for i in range(50)],
                           {"priority": 5})
    group = app.send_many("fan.double", [(i,) for i in range(20)], {"countdown": 1},
                          group=True)
    mixed = app.send_signatures(
        [app.tasks["fan.double"].s(7), app.tasks["fan.echo"].s("x"),
         app.tasks["fan.double"].s(8).set(queue="fan.other")], {})
    assert [r.get(timeout=60) for r in echoed] == [{"k": [i, "ü"]} for i in range(50)]
    assert group.get(timeout=60) == [2 * i for i in range(20)]
    assert [r.get(timeout=60) for r in mixed] == [14, "x", 16]
    seen = wait_runs(log, 300, timeout=120)
    assert set(seen) == set(range(300)) and max(seen.values()) == 1


def test_one_bad_call_sends_nothing_and_is_named_by_index(fan: PlatformEnv,
                                                          redis_url: str) -> None:
    fan.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_MAX_PAYLOAD_BYTES="4096")
    app = fan.host().app
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(InvalidTaskCall) as bad:
        app.send_many("fan.double", [(1,), (2,), ("secret-value",), (4,)], {})
    assert str(bad.value).startswith("call 2 of 4: task `fan.double`")
    assert "nothing was sent" in str(bad.value) and "secret-value" not in str(bad.value)
    assert bad.value.index == 2  # type: ignore[attr-defined]
    with pytest.raises(PayloadTooLarge) as big:
        app.send_many("fan.echo", [("x",), ("y" * 5000,)], {})
    assert str(big.value).startswith("call 1 of 2:") and big.value.limit == 4096
    with pytest.raises(InvalidTaskCall, match=r"call 0 of 1: .* a set; pass a tuple"):
        app.send_many("fan.echo", [{1, 2}], {})
    with pytest.raises(InvalidTaskCall, match="task_id cannot be shared"):
        app.send_many("fan.echo", [(1,)], {"task_id": "abc"})
    assert client.keys("fan*") == []


def test_a_batch_due_beyond_the_visibility_timeout_is_held_not_published(
    fan: PlatformEnv, redis_url: str
) -> None:
    from platform_core.stores.redis_store import RedisStore

    fan.set(PLATFORM_BROKER_URL=redis_url)
    app = fan.host().app
    sent = app.send_many("fan.double", [(i,) for i in range(30)], {"countdown": 7200})
    held = {d.task_id: d for d in RedisStore(redis_url).delays.pending()}
    assert set(held) == set(sent.ids)
    assert redis.Redis.from_url(redis_url).llen("fan") == 0
    assert {json.loads(held[i].message.body_bytes)[0][0]
            for i in sent.ids} == set(range(30))


def test_application_code_sends_in_bulk_without_a_worker_in_its_process(
    fan: PlatformEnv, redis_url: str
) -> None:
    fan.set(PLATFORM_BROKER_URL=redis_url)
    fan.prepare()
    module = fan.plugins.written[0]
    code = textwrap.dedent(f'''
        from platform_sdk import send_many
        from {module} import double, echo
        a = double.delay_many([(1,), (2,)])
        b = echo.apply_many([("x",)], priority=3)
        c = send_many([double.s(3), echo.s("y")])
        print(" ".join(r.id for r in [*a, *b, *c]))
    ''')
    done = subprocess.run([sys.executable, "-c", code], env=fan.environ, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    client = redis.Redis.from_url(redis_url)
    queued = [m["headers"]["id"] for q in ("fan", "fan.other")
              for m in messages(client, q)]
    assert sorted(queued) == sorted(ids) and len(ids) == 5


def normalized(message: dict[str, Any]) -> dict[str, Any]:
    """A message without what differs between any two sends: ids, tags, times."""
    copy = json.loads(json.dumps(message))
    headers, properties = copy["headers"], copy["properties"]
    for key in ("id", "root_id", "platform_sent_at", "eta", "expires"):
        headers[key] = key in message["headers"] and message["headers"][key] is not None
    properties.pop("delivery_tag")
    properties.pop("correlation_id")
    copy["body"] = json.loads(base64.b64decode(copy["body"]))
    return copy


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
CALL = JSON.flatmap(lambda v: st.sampled_from([(v,), {"value": v}, ((v,), {})]))
OPTIONS = st.fixed_dictionaries({}, optional={
    "priority": st.integers(0, 9),
    "countdown": st.floats(0.5, 600),
    "expires": st.integers(600, 7200),
    "queue": st.sampled_from(["fan", "fan.other"]),
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(calls=st.lists(CALL, min_size=1, max_size=12), options=OPTIONS)
def test_each_bulk_message_is_the_message_apply_async_sends(
    fan: PlatformEnv, redis_url: str, calls: list[Any], options: dict[str, Any]
) -> None:
    fan.set(PLATFORM_BROKER_URL=redis_url)
    app = fan.host().app
    client = redis.Redis.from_url(redis_url)
    task = app.tasks["fan.echo"]
    queue = options.get("queue", "fan.other")
    client.flushdb()
    sent = app.send_many("fan.echo", calls, options)
    bulk = messages(client, queue)
    client.flushdb()
    for call in calls:
        args, kwargs = (call, {}) if isinstance(call, tuple) and not (
            len(call) == 2 and isinstance(call[0], tuple)) else (
            call if isinstance(call, tuple) else ((), call))
        task.apply_async(args, kwargs, **options)
    single = messages(client, queue)
    client.flushdb()
    assert [m["headers"]["id"] for m in bulk] == list(sent.ids)
    assert len({m["properties"]["delivery_tag"] for m in bulk}) == len(calls)
    assert [normalized(m) for m in bulk] == [normalized(m) for m in single]
    for message, task_id in zip(bulk, sent.ids, strict=True):
        assert message["headers"]["root_id"] == task_id
        assert message["properties"]["correlation_id"] == task_id


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[Any]:
    port = free_port()
    server = start_redis(tmp_path / "redis-small", "--port", str(port),
                         "--maxmemory-policy", "noeviction",
                         url=f"redis://127.0.0.1:{port}/0", port=port, client={})
    yield server
    stop(server)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(total=st.integers(600, 5000), headroom_kb=st.integers(1, 1500))
def test_a_broker_refusing_part_way_leaves_an_exact_account_and_resend_completes(
    fan: PlatformEnv, small_redis: Any, total: int, headroom_kb: int
) -> None:
    fan.set(PLATFORM_BROKER_URL=small_redis.url)
    app = fan.host().app
    client = redis.Redis.from_url(small_redis.url)
    client.config_set("maxmemory", 0)
    client.flushdb()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + headroom_kb * 1024)
    try:
        sent = app.send_many("fan.echo", [("v" * 400,)] * total, {})
    except PartiallySent as exc:
        assert sorted([*exc.published, *exc.unsent, *exc.in_doubt]) == list(range(total))
        assert exc.in_doubt == []  # a refusal is an answer: nothing is in doubt
        assert exc.unsent and "v" * 20 not in str(exc)
        queued = [m["headers"]["id"] for m in messages(client, "fan.other")]
        assert queued == [r.id for r in exc.results]  # exactly the published ones, in order
        client.config_set("maxmemory", 0)
        again = exc.resend()
        assert len(again) == len(exc.unsent)
        queued = [m["headers"]["id"] for m in messages(client, "fan.other")]
        assert len(queued) == total and len(set(queued)) == total
        assert set(queued) == {r.id for r in exc.results} | {r.id for r in again}
    else:  # enough room for everything: all there, once
        queued = [m["headers"]["id"] for m in messages(client, "fan.other")]
        assert queued == list(sent.ids)
    finally:
        client.config_set("maxmemory", 0)


def test_a_full_broker_refuses_the_rest_of_a_batch_and_resend_sends_exactly_those(
    fan: PlatformEnv, small_redis: Any
) -> None:
    fan.set(PLATFORM_BROKER_URL=small_redis.url)
    app = fan.host().app
    client = redis.Redis.from_url(small_redis.url)
    app.send_many("fan.echo", [("warm-up",)], {})  # the exchange's binding is in place
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 4 * 1024 * 1024)  # room for about 3,000 messages
    with pytest.raises(PartiallySent) as failed:
        app.send_many("fan.echo", [("v" * 400,)] * 8000, {})
    exc = failed.value
    assert 0 < len(exc.published) < 8000 and exc.in_doubt == []
    assert exc.published == list(range(len(exc.published)))  # a prefix, in order
    assert "OutOfMemoryError" in str(exc) or "OOM" in str(exc)
    client.config_set("maxmemory", 0)
    exc.resend()
    queued = [m["headers"]["id"] for m in messages(client, "fan.other")][1:]
    assert len(queued) == 8000 == len(set(queued))


def test_a_connection_lost_mid_write_leaves_the_round_in_doubt_and_nothing_doubled(
    fan: PlatformEnv, small_redis: Any
) -> None:
    import threading

    fan.set(PLATFORM_BROKER_URL=small_redis.url)
    app = fan.host().app
    admin = redis.Redis.from_url(small_redis.url)
    app.send_many("fan.echo", [("warm-up",)], {})
    admin.client_pause(30_000, all=False)  # writes wait in the server
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            app.send_many("fan.echo", [(n,) for n in range(5000)], {})
        except BaseException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    me = admin.client_id()

    def writing() -> list[int]:
        return [c["id"] for c in admin.client_list()
                if c["cmd"] == "lpush" and "b" in c["flags"] and c["id"] != me]

    blocked = wait_until(writing, 30, "the batch's first round waiting in Redis")
    for client_id in blocked:
        admin.client_kill_filter(_id=client_id)
    admin.client_unpause()
    sender.join(30)
    assert outcome and isinstance(outcome[0], PartiallySent), outcome
    exc = outcome[0]
    assert exc.published == [] and len(exc.in_doubt) > 0
    assert sorted([*exc.in_doubt, *exc.unsent]) == list(range(5000))
    assert admin.llen("fan.other") == 1  # killed before running: the doubtful ones are not there
    exc.resend(in_doubt=True)
    bodies = [json.loads(base64.b64decode(m["body"]))[0][0]
              for m in messages(admin, "fan.other")[1:]]
    assert sorted(bodies) == list(range(5000))


def test_platform_send_many_reads_json_lines_checks_all_then_sends(
    fan: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    fan.set(PLATFORM_BROKER_URL=redis_url)
    client = redis.Redis.from_url(redis_url)
    calls = tmp_path / "calls.jsonl"
    calls.write_text('[1]\n\n{"n": 2}\n[[3], {}]\n')
    done = fan.run("send", "fan.double", "--many", str(calls))
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == 3
    assert [m["headers"]["id"] for m in messages(client, "fan")] == ids
    bodies = [json.loads(base64.b64decode(m["body"]))[:2] for m in messages(client, "fan")]
    assert bodies == [[[1], {}], [[], {"n": 2}], [[3], {}]]
    client.flushdb()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('[1]\n["not-a-number"]\n[3]\n')
    refused = fan.run("send", "fan.double", "--many", str(bad))
    assert refused.returncode != 0
    assert f"{bad}, line 2: task `fan.double`" in refused.stderr
    assert "not-a-number" not in refused.stderr and client.keys("fan*") == []
    piped = fan.run("send", "fan.double", "--many", "-", input="[5]\n[6]\n")
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.split()) == 2 and client.llen("fan") == 2
    broken = fan.run("send", "fan.double", "--many", "-", input="[5]\n{oops\n")
    assert broken.returncode != 0 and "line 2: not JSON" in broken.stderr
