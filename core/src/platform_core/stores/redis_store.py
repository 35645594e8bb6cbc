"""Reliability stores in Redis, under keys ``platform:dlq:*`` and ``platform:delay:*``."""

from __future__ import annotations

import time

import redis

from platform_core.stores.base import Delayed, dump_entry, load_entry
from platform_core.stores.records import DeadLetter
from platform_core.stores.redis_client import redis_client

ENTRIES = "platform:dlq:entries"        # hash: id -> entry JSON
ORDER = "platform:dlq:order"            # sorted set: id -> failed_at
DELIVERIES = "platform:dlq:deliveries:"  # counter per task message
DUE = "platform:delay:due"              # sorted set: id -> due time
CLAIMED = "platform:delay:claimed"      # sorted set: id -> claim time
HELD = "platform:delay:messages"        # hash: id -> item JSON

# Moves due ids from DUE to CLAIMED in one step, so each id goes to one caller only.
# Claims older than the lease go back to DUE first (their claimer died).
CLAIM = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 0, id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local item = redis.call('HGET', KEYS[3], id)
  if item then
    redis.call('ZADD', KEYS[2], ARGV[4], id)
    table.insert(out, item)
  end
end
return out
"""


class RedisDeadLetters:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client

    def add(self, entry: DeadLetter) -> None:
        pipe = self.client.pipeline()
        pipe.hset(ENTRIES, entry.id, dump_entry(entry))
        pipe.zadd(ORDER, {entry.id: entry.failed_at.timestamp()})
        pipe.execute()

    def list(self) -> list[DeadLetter]:
        ids = self.client.zrange(ORDER, 0, -1)
        if not ids:
            return []
        return [load_entry(v) for v in self.client.hmget(ENTRIES, ids) if v is not None]

    def get(self, entry_id: str) -> DeadLetter | None:
        value = self.client.hget(ENTRIES, entry_id)
        return None if value is None else load_entry(value)

    def remove(self, entry_id: str) -> bool:
        pipe = self.client.pipeline()
        pipe.hdel(ENTRIES, entry_id)
        pipe.zrem(ORDER, entry_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def clear(self) -> int:
        pipe = self.client.pipeline()
        pipe.hlen(ENTRIES)
        pipe.delete(ENTRIES, ORDER)
        count, _ = pipe.execute()
        return int(count)


class RedisDeliveries:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client

    def increment(self, key: str, ttl: int) -> int:
        pipe = self.client.pipeline()
        pipe.incr(DELIVERIES + key)
        pipe.expire(DELIVERIES + key, ttl)
        count, _ = pipe.execute()
        return int(count)

    def get(self, key: str) -> int:
        return int(self.client.get(DELIVERIES + key) or 0)

    def forget(self, key: str) -> None:
        self.client.delete(DELIVERIES + key)


class RedisDelays:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client
        self._claim = client.register_script(CLAIM)

    def add(self, item: Delayed) -> None:
        pipe = self.client.pipeline()
        pipe.hset(HELD, item.id, item.dumps())
        pipe.zadd(DUE, {item.id: item.due})
        pipe.execute()

    def claim_due(self, until: float, limit: int, lease: float) -> list[Delayed]:
        now = time.time()
        found = self._claim(keys=[DUE, CLAIMED, HELD], args=[until, limit, now - lease, now])
        return [Delayed.loads(v) for v in found]

    def done(self, item_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.zrem(CLAIMED, item_id)
        pipe.zrem(DUE, item_id)
        pipe.hdel(HELD, item_id)
        pipe.execute()

    def pending(self) -> list[Delayed]:
        items = [Delayed.loads(v) for v in self.client.hvals(HELD)]
        return sorted(items, key=lambda item: item.due)


class RedisStore:
    def __init__(self, url: str, master_name: str | None = None) -> None:
        self.url = url
        self.client: redis.Redis[bytes] = redis_client(
            url, master_name, socket_timeout=10, socket_connect_timeout=5,
            health_check_interval=30)
        self.dead_letters = RedisDeadLetters(self.client)
        self.deliveries = RedisDeliveries(self.client)
        self.delays = RedisDelays(self.client)

    def describe(self) -> str:
        from platform_core.redaction import redact

        return redact(self.url)

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"<RedisStore {self.describe()}>"
