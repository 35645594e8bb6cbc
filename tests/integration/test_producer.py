"""Application code enqueues with the plugins' routing and no worker in its process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import redis

from platform_core.stores.redis_store import RedisStore
from tests.support import PlatformEnv

APP_CODE = textwrap.dedent('''
    from datetime import datetime, timedelta, timezone
    from platform_admin.tasks import print_hello, send_email
    from platform_quant.tasks import sync_stock_list

    ids = [
        send_email.delay("user@example.com", "Hello", "Body").id,
        send_email.apply_async(args=["user@example.com", "Later", "Body"], countdown=3600).id,
        print_hello.apply_async(eta=datetime.now(timezone.utc) + timedelta(hours=1)).id,
        sync_stock_list.s().delay().id,
    ]
    print(" ".join(ids))
''')


def queued(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_delay_in_a_plain_process_routes_like_the_platform(platform_env: PlatformEnv,
                                                           redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    done = subprocess.run([sys.executable, "-c", APP_CODE], env=platform_env.environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    client = redis.Redis.from_url(redis_url)
    email = queued(client, "admin.email")
    assert [m["headers"]["task"] for m in email] == ["admin.send_email"]
    assert email[0]["headers"]["id"] == ids[0]
    assert [m["headers"]["task"] for m in queued(client, "quant.data")] == [
        "quant.sync_stock_list"]
    assert all(m["content-type"] == "application/json"
               for q in ("admin.email", "quant.data") for m in queued(client, q))
    # an hour away is beyond the visibility timeout: held until due, routed the same way
    held = {item.task_id: item.message for item in RedisStore(redis_url).delays.pending()}
    assert set(held) == set(ids[1:3])
    assert (held[ids[1]].queue, held[ids[1]].headers["task"]) == ("admin.email", "admin.send_email")
    assert (held[ids[2]].queue, held[ids[2]].headers["task"]) == ("admin", "admin.print_hello")
    assert all(m.headers["eta"] and m.content_type == "application/json" for m in held.values())
