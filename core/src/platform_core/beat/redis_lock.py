"""The beat lock on Redis: a key taken with SET NX PX and renewed while it is ours."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from platform_core.beat.lock import UNKNOWN, BeatLock, EntryState, decode

logger = logging.getLogger("platform.beat")

LOCK_KEY = "platform:beat:lock"
STATE_KEY = "platform:beat:schedule"  # hash: entry name -> its run state (JSON)
_SOCKET_OPTIONS = ("socket_timeout", "socket_connect_timeout", "socket_keepalive",
                   "health_check_interval")

# Redis scripts: each acts only while the caller's value is still in the lock key.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
_SAVE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('hset', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""


class RedisLock(BeatLock):
    def __init__(self, app: Any, timeout: float, scope: str = "") -> None:
        super().__init__(timeout, scope)
        self.app = app
        options = app.conf.broker_transport_options or {}
        prefix = options.get("global_keyprefix", "")
        self.key = prefix + self.named(LOCK_KEY, ":")
        self.state_key = prefix + STATE_KEY
        self._client: Any = None

    @property
    def description(self) -> str:
        return f"Redis key {self.key}"

    @property
    def freed(self) -> str:
        return f"once its holder has not renewed it for {self.timeout:g}s"

    def _redis(self) -> Any:
        if self._client is None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            from platform_core.stores.redis_client import redis_client

            conf = self.app.conf
            options = conf.broker_transport_options or {}
            # The broker's socket options; no retry inside a call: the beat tries again
            # at its next tick, and (Sentinel) asks the sentinels for the master then.
            socket = {k: options[k] for k in _SOCKET_OPTIONS if options.get(k) is not None}
            self._client = redis_client(conf.broker_url, options.get("master_name"),
                                        retry=Retry(NoBackoff(), 0), **socket)
        return self._client

    def _reset(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._client = None

    def _run(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._redis())
        except Exception as exc:  # noqa: BLE001 - redis-py and kombu raise many kinds
            logger.warning("beat: cannot %s the beat lock (%s): %s: %s",
                           what, self.description, type(exc).__name__, exc)
            self._reset()
            raise _Unreachable from None

    def acquire(self) -> tuple[bool, str | None]:
        ttl = int(self.timeout * 1000)
        try:
            # Twice: a holder's key that expires between the take and the read leaves
            # nothing to read, and is free to take.
            for _ in range(2):
                if self._run("take", lambda r: r.set(self.key, self.identity, nx=True, px=ttl)):
                    return True, None
                if self._run("renew",
                             lambda r: r.eval(_RENEW, 1, self.key, self.identity, ttl)):
                    return True, None
                value = self._run("read", lambda r: r.get(self.key))
                if value:
                    return False, value.decode()
        except _Unreachable:
            return False, None
        return False, UNKNOWN

    def renew(self) -> bool:
        ttl = int(self.timeout * 1000)
        try:
            return bool(self._run("renew",
                                  lambda r: r.eval(_RENEW, 1, self.key, self.identity, ttl)))
        except _Unreachable:
            return False

    def release(self) -> None:
        with contextlib.suppress(_Unreachable):
            self._run("release", lambda r: r.eval(_RELEASE, 1, self.key, self.identity))
        self.close()

    def holder(self) -> str | None:
        value = self._redis().get(self.key)
        return value.decode() if value else None

    def load_state(self) -> dict[str, EntryState]:
        try:
            raw = self._run("read the schedule of", lambda r: r.hgetall(self.state_key))
        except _Unreachable:
            return {}
        return {k.decode(): decode(v) for k, v in raw.items() if decode(v)}

    def save_state(self, name: str, state: EntryState) -> bool:
        try:
            return bool(self._run("record a run under", lambda r: r.eval(
                _SAVE, 2, self.key, self.state_key, self.identity, name, json.dumps(state))))
        except _Unreachable:
            return True  # unknown; the local lease still says the lock is ours

    def close(self) -> None:
        self._reset()


class _Unreachable(Exception):
    pass
